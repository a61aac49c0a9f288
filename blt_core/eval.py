"""Evaluation: bits per byte on held-out text, patch sizes, and FLOPs per byte.

    python -m blt_core.eval --model runs/blt --data data/corpora/english/heldout.bin --json

BPB = sum of next-byte cross-entropies (nats) / ln 2 / bytes predicted, over windows of `seq_len`
bytes (each starting with BOS): the first `--max-bytes` of the file in consecutive windows, or with
`--spread` about `--max-bytes` in windows spread evenly over the whole file (ByteCorpus.spread).
For a BLT the patch statistics are those of the patches the model itself used, without the BOS
patch; `--mode`, `--threshold`, `--max-patch-length` and `--patch-size` evaluate it under other
patching (unset: its config's).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter

import torch
import torch.nn.functional as F

from .blt import BLT
from .checkpoint import load_byte_lm, resolve
from .config import PATCHING_MODES
from .data import ByteCorpus
from .flops import blt_flops_per_byte, byte_lm_flops_per_byte
from .patching import PatchingParams, patches_from_mask


@torch.no_grad()
def bits_per_byte(model, corpus: ByteCorpus, device, max_bytes: int | None = None,
                  patching: PatchingParams = PatchingParams(), spread: bool = False) -> dict:
    """Bits per byte over the corpus's windows (`max_bytes` from its start, or spread over it);
    for a BLT, patched as `patching` says."""
    total_nats, n_bytes, n_patches, sizes = 0.0, 0, 0, Counter()
    for ids in (corpus.spread if spread else corpus.sequential)(max_bytes):
        ids = ids.to(device)
        x, y = ids[:, :-1], ids[:, 1:]
        if isinstance(model, BLT):
            starts = model.start_mask(x, patching=patching)
            logits = model.logits(x, starts)
            lengths = patches_from_mask(starts[0]).lengths[1:]            # without the BOS patch
            sizes.update(lengths)
            n_patches += len(lengths)
        else:
            logits = model(x)
        total_nats += F.cross_entropy(logits.float()[0], y[0], reduction="sum").item()
        n_bytes += y.shape[1]
    out = {"bpb": total_nats / math.log(2) / n_bytes, "bytes": n_bytes}
    if isinstance(model, BLT):
        out["mean_patch_bytes"] = n_bytes / max(n_patches, 1)
        out["patch_size_histogram"] = dict(sorted(sizes.items()))
    return out


@torch.no_grad()
def solve_threshold(model: BLT, corpus: ByteCorpus, target_patch_bytes: float, device,
                    sample_bytes: int = 50_000) -> float:
    """The global entropy threshold at which 1 / target of the held-out positions start a patch
    (the paper tunes the threshold to a target mean patch size; Meta's issue #106). The sample is
    `sample_bytes` spread over the whole split (its first bytes are often one document)."""
    ents = [model.entropies(ids.to(device))[0, :-1] for ids in corpus.spread(sample_bytes)]
    ents = torch.cat(ents).float()
    return float(torch.quantile(ents, 1 - 1 / target_patch_bytes))


def flops_per_byte(model, mean_patch_bytes: float | None, context: int) -> float:
    if isinstance(model, BLT):
        return blt_flops_per_byte(model.config, mean_patch_bytes or 1.0, context)["total"]
    return byte_lm_flops_per_byte(model.cfg, context)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m blt_core.eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a BLT checkpoint or a byte LM (entropy / bytes) checkpoint")
    ap.add_argument("--data", required=True, help="a .bin split (see blt_core.data)")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--max-bytes", type=int, default=200_000)
    ap.add_argument("--spread", action="store_true",
                    help="take the --max-bytes as windows spread evenly over the file, not from its start")
    ap.add_argument("--device", default=None)
    ap.add_argument("--mode", choices=PATCHING_MODES, help="BLT patching mode (default: the model's)")
    ap.add_argument("--threshold", type=float, help="entropy threshold, nats")
    ap.add_argument("--max-patch-length", type=int)
    ap.add_argument("--patch-size", type=int, help="static patch size")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        directory = resolve(args.model)
        byte_lm = json.loads((directory / "config.json").read_text()).get("model_type") == "blt_patcher"
        load = load_byte_lm if byte_lm else BLT.from_pretrained
        model = load(directory, device=device, dtype=torch.float32)
        patching = PatchingParams(args.mode, args.threshold, args.max_patch_length, args.patch_size)
        result = bits_per_byte(model, ByteCorpus(args.data, args.seq_len), device, args.max_bytes, patching,
                               args.spread)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result["inference_flops_per_byte"] = flops_per_byte(model, result.get("mean_patch_bytes"), args.seq_len)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
