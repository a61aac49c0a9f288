"""Build the broad corpus: documents from every source, cleaned, cut to a bounded size, deduplicated
by paragraph, split by document, written as `.bin` files with a manifest.

Rules (each a constant below, all recorded in the manifest):
- A document longer than MAX_DOCUMENT_BYTES is cut between paragraphs into documents of about that
  size; its id is the source's id with `#<n>`.
- Dedupe: a paragraph (blank-line separated block) of at least MIN_DEDUPE_BYTES whose
  whitespace-normalised text occurred anywhere earlier is dropped, and a document that loses more
  than half its bytes that way is dropped whole. Code is deduplicated by whole file instead
  (dropping a repeated licence header would leave a comment unclosed). Never-seen sources go
  first, so no paragraph of them appears in training or in the split held-out text.
- Split: a document is held out when the first byte of sha256(`<source>/<id>`) is below the
  source's `heldout_byte` (5 of 256: about 2 %), so rebuilds give the same split.
- Sampled sources (`budget`) take their documents in the order of sha256(`sample:<source>/<id>`)
  until the budget; the next `unseen_budget` bytes become never-seen text.
- train.bin holds the training documents in the order of sha256(`order:<source>/<id>`) across all
  sources (another hash than the sample's, so a sample is not all at the start), so any prefix of
  it is a shuffled sample of the whole (what `pack` relies on).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from .packages import Packages
from .source import Source
from .text import clean, cut, paragraphs
from .windows import SEPARATOR

MAX_DOCUMENT_BYTES = 64_000
MIN_DEDUPE_BYTES = 64
END = bytes([SEPARATOR])


def is_heldout(document_id: str, heldout_byte: int = 5) -> bool:
    return hashlib.sha256(document_id.encode()).digest()[0] < heldout_byte


def order_key(document_id: str) -> bytes:
    """Where a training document goes in train.bin."""
    return hashlib.sha256(f"order:{document_id}".encode()).digest()


def sample_key(document_id: str) -> bytes:
    """In which order a sampled source's documents are taken."""
    return hashlib.sha256(f"sample:{document_id}".encode()).digest()


class Deduper:
    """Drops paragraphs (or whole documents) seen before, by an 8-byte hash of their
    whitespace-normalised text."""

    def __init__(self):
        self.seen: set[bytes] = set()

    def first_time(self, block: str) -> bool:
        digest = hashlib.blake2b(" ".join(block.split()).encode(), digest_size=8).digest()
        if digest in self.seen:
            return False
        self.seen.add(digest)
        return True

    def __call__(self, text: str, whole: bool = False) -> str:
        if whole:
            return text if self.first_time(text) else ""
        kept = [block for block in paragraphs(text) if len(block.encode()) < MIN_DEDUPE_BYTES or self.first_time(block)]
        result = "\n\n".join(kept)
        return result if 2 * len(result) >= len(text) else ""


def pieces(source: Source, packages: Packages):
    """(id, label, text) of a source's documents, cleaned and cut; a sampled source's in hash order."""
    def generate():
        for doc in source.documents(packages):
            parts = cut(clean(doc.text), MAX_DOCUMENT_BYTES)
            for i, part in enumerate(parts):
                doc_id = f"{source.name}/{doc.id}" + (f"#{i}" if len(parts) > 1 else "")
                yield doc_id, doc.label or source.label, part
    if source.budget is None:
        return generate()
    return iter(sorted(generate(), key=lambda piece: sample_key(piece[0])))


def build(sources: list[Source], packages: Packages, out: Path, progress: bool = True) -> dict:
    """Write train.bin, heldout.bin, heldout_<label>.bin, heldout_unseen_<label>.bin and
    manifest.json under `out`; returns the manifest."""
    packages.require([p for s in sources for p in s.packages], sorted({t for s in sources for t in s.tools}))
    start = time.time()
    dedupe = Deduper()
    train: list[tuple[bytes, bytes]] = []
    heldout, by_label, unseen = bytearray(), defaultdict(bytearray), defaultdict(bytearray)
    labels = defaultdict(lambda: {"train": 0, "heldout": 0, "unseen": 0})
    records = []
    ordered = sorted(sources, key=lambda s: not s.unseen)       # never-seen text claims its paragraphs first
    bar = tqdm(ordered, unit="source", disable=not progress)
    for source in bar:
        bar.set_description(source.name)
        stats = {"documents": 0, "bytes": 0, "train_bytes": 0, "heldout_bytes": 0, "unseen_bytes": 0,
                 "duplicate_bytes": 0, "not_sampled_bytes": 0}
        for doc_id, label, text in pieces(source, packages):
            size = len(text.encode())
            taken = stats["train_bytes"] + stats["heldout_bytes"]
            rest = source.budget is not None and taken >= source.budget
            if rest and stats["unseen_bytes"] >= source.unseen_budget:
                stats["not_sampled_bytes"] += size
                continue
            kept = dedupe(text, whole=source.dedupe == "document")
            stats["duplicate_bytes"] += size - len(kept.encode())
            if not kept:
                continue
            data = kept.encode()
            if source.unseen or rest:
                split = "unseen"
                unseen[label] += data + END
            elif is_heldout(doc_id, source.heldout_byte):
                split = "heldout"
                heldout.extend(data + END)
                by_label[label] += data + END
            else:
                split = "train"
                train.append((order_key(doc_id), data))
            stats[f"{split}_bytes"] += len(data)
            labels[label][split] += len(data)
            stats["documents"] += 1
            stats["bytes"] += len(data)
        records.append({"name": source.name, "what": source.what, "label": source.label, "licence": source.licence,
                        "packages": [{"registry": p.registry, "name": p.name, "version": packages.info(p)["version"]}
                                     for p in source.packages],
                        "budget": source.budget, "unseen": source.unseen, "heldout_byte": source.heldout_byte,
                        "dedupe": source.dedupe, "left_out": source.left_out, **stats})
        bar.set_postfix(MB=f"{sum(r['bytes'] for r in records) / 1e6:.0f}")

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    train.sort(key=lambda item: item[0])
    with open(out / "train.bin", "wb") as f:
        for _, data in train:
            f.write(data + END)
    files = {"train.bin": (out / "train.bin").stat().st_size}
    for name, data in [("heldout.bin", heldout), *((f"heldout_{k}.bin", v) for k, v in sorted(by_label.items())),
                       *((f"heldout_unseen_{k}.bin", v) for k, v in sorted(unseen.items()))]:
        (out / name).write_bytes(data)
        files[name] = len(data)
    manifest = {
        "corpus": out.name, "built": time.strftime("%Y-%m-%d"), "build_seconds": round(time.time() - start),
        "rules": {"max_document_bytes": MAX_DOCUMENT_BYTES, "min_dedupe_bytes": MIN_DEDUPE_BYTES,
                  "separator": SEPARATOR, "heldout": "sha256('<source>/<id>')[0] < heldout_byte (default 5)"},
        "totals": {"train_bytes": sum(r["train_bytes"] for r in records),
                   "heldout_bytes": sum(r["heldout_bytes"] for r in records),
                   "unseen_bytes": sum(r["unseen_bytes"] for r in records),
                   "duplicate_bytes": sum(r["duplicate_bytes"] for r in records),
                   "train_documents": len(train)},
        "labels": dict(sorted(labels.items())), "files": files, "sources": records,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest
