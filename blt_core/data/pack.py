"""A corpus folder as compressed parts small enough to carry, and back.

`pack` cuts train.bin at document boundaries into consecutive slices whose xz compression (preset 9)
is at most `part_bytes` each: `train-001.xz`, `train-002.xz`, ... Since the build writes the training
documents in hash order across all sources, part 1 alone is a shuffled sample of the whole split,
and so is any run of parts. Every other file of the folder (the held-out files, manifest.json)
goes into `heldout.tar.xz`. `pack.json` records each part's size, documents and the SHA-256 of its
uncompressed bytes, and the SHA-256 of the whole train.bin.

`unpack` rebuilds the folder from the parts present (or those asked for), verifying every
checksum; with every part, train.bin is byte for byte the packed one.
"""
from __future__ import annotations

import hashlib
import json
import lzma
import tarfile
from pathlib import Path

from tqdm import tqdm

from .windows import SEPARATOR

PRESET = 9
STEP = 1_000_000       # raw bytes fed to the encoder at a time (each step ends at a document end)
LAG = 2_200_000        # raw bytes the encoder may hold before its output shows them (an LZMA2 chunk)


def _compress_part(data: bytes, start: int, limit: int) -> tuple[int, bytes]:
    """xz-compress train bytes from `start` on, whole documents only, into at most `limit` bytes;
    returns the end offset and the compressed part. The encoder's output lags its input, so the
    part's size is predicted from the ratio so far (1.0, the worst, until it shows), and a part
    that comes out too large is made again a little shorter."""
    budget = 0.98 * limit
    while True:
        encoder, out, pos, emitted = lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=PRESET), [], start, 0
        while pos < len(data):
            fed = pos - start
            ratio = emitted / (fed - LAG) if emitted and fed > 2 * LAG else 1.0
            step = min(STEP, max(1, int(budget) // 4))
            end = data.find(bytes([SEPARATOR]), min(pos + step, len(data)) - 1) + 1 or len(data)
            if pos > start and emitted + (min(fed, LAG) + end - pos) * ratio + 1024 > budget:
                break
            out.append(encoder.compress(memoryview(data)[pos:end]))
            emitted += len(out[-1])
            pos = end
        out.append(encoder.flush())
        blob = b"".join(out)
        if len(blob) <= limit:
            return pos, blob
        if budget < 0.5 * limit:
            raise ValueError(f"cannot fit the document at byte {start} into a part of {limit:,} bytes")
        budget *= 0.95


def pack(corpus: Path, out: Path, part_bytes: int, progress: bool = True) -> dict:
    train = (corpus / "train.bin").read_bytes()
    if train and train[-1] != SEPARATOR:
        raise ValueError(f"{corpus / 'train.bin'} does not end with a document separator (0xFF)")
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("train-*.xz"), out / "heldout.tar.xz", out / "pack.json"]:
        stale.unlink(missing_ok=True)
    view, parts, pos = memoryview(train), [], 0
    bar = tqdm(total=len(train), unit="B", unit_scale=True, desc="pack", disable=not progress)
    while pos < len(train):
        end, blob = _compress_part(train, pos, part_bytes)
        name = f"train-{len(parts) + 1:03d}.xz"
        (out / name).write_bytes(blob)
        parts.append({"file": name, "bytes": end - pos, "xz_bytes": len(blob),
                      "documents": train.count(SEPARATOR, pos, end),
                      "sha256": hashlib.sha256(view[pos:end]).hexdigest()})
        bar.update(end - pos)
        pos = end
    bar.close()
    others = sorted(f for f in corpus.iterdir() if f.is_file() and f.name != "train.bin")
    with tarfile.open(out / "heldout.tar.xz", "w:xz", preset=PRESET) as tar:
        for f in others:
            tar.add(f, arcname=f.name)
    blob = (out / "heldout.tar.xz").read_bytes()
    info = {"corpus": corpus.name, "part_bytes_limit": part_bytes, "train_bytes": len(train),
            "train_documents": train.count(SEPARATOR), "train_sha256": hashlib.sha256(train).hexdigest(),
            "parts": parts, "heldout": {"file": "heldout.tar.xz", "xz_bytes": len(blob),
                                        "sha256": hashlib.sha256(blob).hexdigest(),
                                        "files": {f.name: f.stat().st_size for f in others}}}
    (out / "pack.json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def unpack(parts_folder: Path, out: Path, only: list[int] | None = None) -> dict:
    info = json.loads((parts_folder / "pack.json").read_text())
    numbers = only or [i for i, p in enumerate(info["parts"], 1) if (parts_folder / p["file"]).exists()]
    if not numbers:
        raise FileNotFoundError(f"no train part of {parts_folder / 'pack.json'} is in {parts_folder}")
    held = parts_folder / info["heldout"]["file"]
    if hashlib.sha256(held.read_bytes()).hexdigest() != info["heldout"]["sha256"]:
        raise ValueError(f"{held}: SHA-256 differs from the one in pack.json")
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(held, "r:xz") as tar:
        tar.extractall(out, filter="data")
    digest, size = hashlib.sha256(), 0
    with open(out / "train.bin", "wb") as f:
        for n in sorted(numbers):
            if not 1 <= n <= len(info["parts"]):
                raise ValueError(f"part {n}: pack.json lists parts 1 to {len(info['parts'])}")
            part = info["parts"][n - 1]
            data = lzma.decompress((parts_folder / part["file"]).read_bytes())
            if hashlib.sha256(data).hexdigest() != part["sha256"]:
                raise ValueError(f"{parts_folder / part['file']}: SHA-256 of its bytes differs from pack.json")
            f.write(data)
            digest.update(data)
            size += len(data)
    complete = sorted(numbers) == list(range(1, len(info["parts"]) + 1))
    if complete and digest.hexdigest() != info["train_sha256"]:
        raise ValueError(f"{out / 'train.bin'}: rebuilt from every part, its SHA-256 differs from pack.json")
    result = {"corpus": str(out), "parts": sorted(numbers), "of_parts": len(info["parts"]), "complete": complete,
              "train_bytes": size, "train_share": round(size / info["train_bytes"], 4),
              "heldout_files": sorted(info["heldout"]["files"])}
    (out / "unpacked.json").write_text(json.dumps(result, indent=1) + "\n")
    return result
