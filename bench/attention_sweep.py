"""The decoding attention kernel (decode_kernels.attention) timed alone at several rows: one query
per row and head over its cached keys up to its position, for each launch shape (programs per
head x keys per tile x warps), against the floor of its key and value reads.

Each shape runs over enough distinct caches (about 400 MB) that none stays in L2, all launches in
one captured CUDA graph; the time is the median replay divided by the launches.

    python3 bench/attention_sweep.py --rows 8 --heads 16 --head-dim 128 --length 4096 --positions 213 500
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from matvec_sweep import graph_us  # noqa: E402
from profile_layer_step import bandwidth  # noqa: E402
from blt_core.generation import KernelConfig  # noqa: E402
from blt_core.generation import decode_kernels as dk  # noqa: E402

SHAPES = [(32, 16, 1), (16, 16, 1), (8, 16, 1), (8, 32, 1), (4, 32, 1), (4, 64, 2), (2, 64, 2), (16, 32, 1),
          (8, 64, 4), (4, 128, 4), (1, 256, 4)]


def sweep(B, H, D, L, pos, window, bw):
    """Every launch shape at rows of positions around `pos` (row r at pos + 7 r)."""
    keys = min(pos, window or pos) if pos else L
    kv_bytes = 2 * B * H * (keys + 1) * D * 2
    R = max(2, min(64, 400_000_000 // (2 * B * H * L * D * 2)))
    caches = [(torch.randn(B, H, L, D, device="cuda", dtype=torch.bfloat16),
               torch.randn(B, H, L, D, device="cuda", dtype=torch.bfloat16)) for _ in range(R)]
    q = torch.randn(B, H * D, device="cuda", dtype=torch.bfloat16)
    p = (pos + 7 * torch.arange(B, device="cuda")).clamp(max=L - 1)
    head = {"rows": B, "heads": H, "head_dim": D, "length": L, "pos": pos, "window": window,
            "MB": round(kv_bytes / 1e6, 2), "floor_us": round(1e6 * kv_bytes / bw, 2)}
    rows = []
    for splits, block, warps in SHAPES:
        for pdl in (True, False):
            config = KernelConfig(pdl=pdl)

            def run():
                for k, v in caches:
                    dk.attention(q, k, v, H, p, window, splits=splits, block=block, num_warps=warps, config=config)
            us = graph_us(run, R)
            rows.append({"splits": splits, "block": block, "warps": warps, "pdl": pdl, "us": round(us, 2),
                         "of_floor": round(head["floor_us"] / us, 3)})
    best = min(rows, key=lambda r: r["us"])
    default = [r for r in rows if (r["splits"], r["block"], r["warps"]) == (32, 16, 1)]
    print(json.dumps({**head, "best": best, "default": default}), flush=True)
    for r in sorted(rows, key=lambda r: r["us"]):
        print(json.dumps({**head, **r}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--length", type=int, default=4096, help="cache positions (the engine's stack length)")
    ap.add_argument("--positions", type=int, nargs="+", default=[213, 500])
    ap.add_argument("--window", type=int, default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    bw = bandwidth()
    print(json.dumps({"copy_GBps": round(bw / 1e9), "device": torch.cuda.get_device_name()}), flush=True)
    with torch.no_grad():
        for pos in args.positions:
            sweep(args.rows, args.heads, args.head_dim, args.length, pos, args.window, bw)


if __name__ == "__main__":
    main()
