"""Held-out English narrative prose, whole and by source, against issue 14's target (<= 1.8 bits
per byte at >= 3.5 bytes per patch), on CPU with the shipped model.

    python bench/english_prose.py --out bench/results/english_prose_cpu.json

Evaluates the model on every byte of `heldout_english_prose.bin` (the English prose of the
corpus's own held-out split), on each of that file's three sources, and on every byte of
`heldout_unseen_english_prose.bin` (prose no build ever trained on). A source is the file's
documents (cut at the 0xFF separators) from `first` to `last`, read from the built corpus in
order; the JSON keeps each part's first words so the cut can be checked. Each part is predicted
in consecutive windows of `--seq-len` bytes from its own start (blt_core.eval.bits_per_byte with
no byte limit), so the parts' windows are not the whole file's and their byte-weighted mean is
close to, not equal to, the whole file's figure.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blt_core.blt import BLT  # noqa: E402
from blt_core.data import SEPARATOR, ByteCorpus  # noqa: E402
from blt_core.eval import bits_per_byte  # noqa: E402

PROSE = "heldout_english_prose.bin"
UNSEEN = "heldout_unseen_english_prose.bin"
DOCUMENTS = 22                                   # in PROSE as built by `python -m blt_core.data` (broad)
SOURCES = [("Melville, Moby-Dick (a chapter)", 0, 0), ("Brown corpus (13 samples)", 1, 13),
           ("State of the Union addresses (8 pieces)", 14, 21)]    # (source, first, last document)


def documents(path: Path) -> list[bytes]:
    """The file's documents, each with its separator."""
    data = path.read_bytes()
    if not data.endswith(bytes([SEPARATOR])):
        raise ValueError(f"{path} does not end with a document separator (0xFF)")
    return [d + bytes([SEPARATOR]) for d in data[:-1].split(bytes([SEPARATOR]))]


def measured(model: BLT, path: Path, seq_len: int) -> dict:
    ev = bits_per_byte(model, ByteCorpus(path, seq_len), torch.device("cpu"))
    return {"bytes": ev["bytes"], "bpb": ev["bpb"], "mean_patch_bytes": ev["mean_patch_bytes"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/blt-studio")
    ap.add_argument("--corpus", default="data/corpora/broad", help="the built broad corpus")
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--out", help="write the results here as JSON")
    args = ap.parse_args(argv)
    corpus = Path(args.corpus)
    docs = documents(corpus / PROSE)
    if len(docs) != DOCUMENTS:
        raise SystemExit(f"{corpus / PROSE} holds {len(docs)} documents, expected {DOCUMENTS}: "
                         "the corpus was rebuilt differently, check SOURCES against its text")
    model = BLT.from_pretrained(args.model, device="cpu", dtype=torch.float32)
    rows = [{"part": f"{PROSE} whole", "documents": len(docs), **measured(model, corpus / PROSE, args.seq_len)}]
    with tempfile.TemporaryDirectory() as tmp:
        for source, first, last in SOURCES:
            part = Path(tmp) / f"{first}-{last}.bin"
            part.write_bytes(b"".join(docs[first:last + 1]))
            rows.append({"part": f"{PROSE} documents {first}-{last}: {source}", "documents": last - first + 1,
                         "first_words": docs[first][:60].decode("utf-8", errors="replace"),
                         **measured(model, part, args.seq_len)})
    rows.append({"part": f"{UNSEEN} whole", "documents": len(documents(corpus / UNSEEN)),
                 **measured(model, corpus / UNSEEN, args.seq_len)})
    for r in rows:
        r["meets_issue_14"] = r["bpb"] <= 1.8 and r["mean_patch_bytes"] >= 3.5
        print(f"{r['part']}: {r['bpb']:.3f} bits/byte, {r['mean_patch_bytes']:.2f} bytes/patch, {r['bytes']:,} bytes")
    result = {"command": " ".join(["python bench/english_prose.py"] + list(sys.argv[1:] if argv is None else argv)),
              "model": args.model, "seq_len": args.seq_len, "device": "cpu", "target": "<= 1.8 bits/byte at "
              ">= 3.5 bytes/patch (issue 14)", "rows": rows}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
