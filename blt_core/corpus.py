"""A long text as a whole: the BLT's bits per byte over it, its patch sizes, the passages it
predicts best and worst, and the token counts of real BPE vocabularies beside its patches.

    report = analyse(model, text, progress=print)          # progress(bytes_done, bytes_total)
    steps = analysis(model, text)      # a generator: bytes done after each window; returns the report
    python -m blt_core corpus --file notes.txt --json

The text is read as blt_core.eval reads held-out data: consecutive windows of WINDOW_BYTES bytes
(the shipped model's training length), each after its own BOS, so the memory held is one
window's whatever the text's length (plus 4 bytes a byte for the per-byte losses). Each window's
first byte is predicted from BOS alone, and starts a patch, as in evaluation.

bits_per_byte[i] = the cross-entropy of byte i given the bytes before it in its window, in bits;
the text's bits per byte is their mean. A passage is a run of about `passage_bytes` bytes cut at
character boundaries; passages of less than half that (the text's tail) are not ranked.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict
from typing import Callable, Generator

import numpy as np
import torch
import torch.nn.functional as F

from . import bpe
from .patching import PatchingParams, patches_from_mask

WINDOW_BYTES = 512


def byte_losses(model, data: bytes, patching: PatchingParams = PatchingParams()
                ) -> Generator[int, None, tuple[np.ndarray, Counter]]:
    """A generator: yields the bytes done after each window; returns (bits for each byte (N,)
    float32, Counter of patch sizes in bytes)."""
    bits = np.empty(len(data), dtype=np.float32)
    sizes: Counter = Counter()
    for start in range(0, len(data), WINDOW_BYTES):
        window = data[start:start + WINDOW_BYTES]
        with torch.no_grad():
            ids = torch.tensor([model.tokenizer.encode(window)], device=model.device)  # (1, 1 + W): BOS, bytes
            starts = model.start_mask(ids, patching=patching)                           # (1, 2 + W)
            logits = model.logits(ids, starts)[0, :-1]                                  # (W, V): byte i from BOS..i-1
            nats = F.cross_entropy(logits, ids[0, 1:], reduction="none")
        bits[start:start + len(window)] = (nats / math.log(2)).cpu().numpy()
        sizes.update(patches_from_mask(starts[0].cpu()).lengths[1:])               # without the BOS patch
        yield start + len(window)
    return bits, sizes


def passages(data: bytes, bits: np.ndarray, passage_bytes: int, count: int) -> dict:
    """The `count` passages of lowest and of highest mean bits per byte (no array over the text
    but `bits`: a 1 MiB text needs no more than its 4 MiB of per-byte bits)."""
    cuts = [0]
    while cuts[-1] < len(data):
        cut = min(cuts[-1] + passage_bytes, len(data))
        while cut < len(data) and (data[cut] & 0xC0) == 0x80:        # not inside a character
            cut += 1
        cuts.append(cut)
    rows = [{"start": s, "length": e - s, "bits_per_byte": float(bits[s:e].mean(dtype=np.float64))}
            for s, e in zip(cuts, cuts[1:]) if 2 * (e - s) >= passage_bytes]
    ranked = sorted(rows, key=lambda r: (r["bits_per_byte"], r["start"]))

    def shown(chosen):
        return [{**r, "text": data[r["start"]:r["start"] + r["length"]].decode("utf-8", errors="replace")}
                for r in chosen]
    return {"passage_bytes": passage_bytes, "ranked": len(rows),
            "most_predictable": shown(ranked[:count]), "least_predictable": shown(ranked[::-1][:count])}


def token_counts(text: str, n_bytes: int, tokenizers=tuple(bpe.VOCABULARIES)) -> list[dict]:
    """Tokens of the text under each vocabulary, and bytes per token."""
    rows = []
    for name in tokenizers:
        enc = bpe.encoding(name)
        n = enc.count(text)
        rows.append({"name": name, "label": enc.vocab.label, "tokens": n, "bytes_per_token": n_bytes / n if n else None})
    return rows


def analysis(model, text: str, patching: PatchingParams = PatchingParams(), passage_bytes: int = 200,
             passage_count: int = 5, tokenizers=tuple(bpe.VOCABULARIES)) -> Generator[int, None, dict]:
    """A generator: yields the bytes analysed after each window; returns everything the corpus
    view shows, JSON-ready (the web app's /api/corpus answer)."""
    data = text.encode("utf-8")
    if not data:
        raise ValueError("the text is empty")
    bits, sizes = yield from byte_losses(model, data, patching)
    n_patches = sum(sizes.values())
    return {
        "bytes": len(data), "characters": len(text), "window_bytes": WINDOW_BYTES,
        "patching": asdict(patching.resolve(model.config)),
        "bits_per_byte": float(bits.mean(dtype=np.float64)),
        "patches": n_patches, "bytes_per_patch": len(data) / n_patches,
        "patch_size_histogram": {str(size): count for size, count in sorted(sizes.items())},
        "tokenizers": token_counts(text, len(data), tokenizers),
        "passages": passages(data, bits, passage_bytes, passage_count),
    }


def analyse(model, text: str, progress: Callable[[int, int], None] | None = None, **options) -> dict:
    """`analysis` run to its end; progress(bytes_done, bytes_total) after each window."""
    steps, total = analysis(model, text, **options), len(text.encode("utf-8"))
    while True:
        try:
            done = next(steps)
        except StopIteration as finished:
            return finished.value
        if progress is not None:
            progress(done, total)
