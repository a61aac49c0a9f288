"""Candidate block shapes of the fused matrix-vector kernel timed alone on each projection of a
model's decoding step, beside cuBLAS and inductor's reduction on the same shapes: which reach the
GPU's copy bandwidth (decode_kernels.block_config is chosen from these), with and without
programmatic dependent launch (PDL).

Each shape runs on enough distinct weight matrices (about 400 MB) that none stays in L2, all
launches captured in one CUDA graph; the time is the median replay divided by the launches.

    python3 bench/matvec_sweep.py --dim 2048 --hidden 5632      # blt-1b global layer
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from cuda_timing import median_replay_ms  # noqa: E402
from profile_layer_step import bandwidth  # noqa: E402
from blt_core.generation import KernelConfig  # noqa: E402
from blt_core.generation import decode_kernels as dk  # noqa: E402


# (BLOCK_N, BLOCK_K, LATE, PREFETCH, SPLIT, warps): the best of an earlier, wider sweep
# (bench/results/matvec_sweep_h100.jsonl, autotuner configurations) and neighbours of them.
CANDIDATES = [(2, 1024, True, True, 1, 4), (2, 1024, True, False, 1, 4), (4, 512, True, True, 1, 4),
              (8, 256, True, True, 1, 4), (4, 512, True, False, 1, 4), (1, 2048, True, True, 1, 4),
              (4, 1024, True, True, 1, 8), (16, 256, True, True, 1, 8), (4, 512, True, False, 2, 4),
              (8, 256, True, False, 4, 4)]


def shapes(dim, hidden):
    """(name, N, K, epilogue, norm): the four projections of a layer step (q/k/v as one)."""
    return [("qkv", 3 * dim, dim, dk.PLAIN, True), ("o", dim, dim, dk.RESIDUAL, False),
            ("gate_up", hidden, dim, dk.SWIGLU, True), ("down", dim, hidden, dk.RESIDUAL, False)]


def graph_us(fn, launches, reps=50):
    fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return 1000 * median_replay_ms(g, reps) / launches


def sweep(name, N, K, epi, norm, bw):
    rows_w = 2 * N if epi == dk.SWIGLU else N
    nbytes = rows_w * K * 2
    R = max(2, min(64, 400_000_000 // nbytes))
    ws = [torch.randn(rows_w, K, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(R)]
    x = torch.randn(1, K, device="cuda", dtype=torch.bfloat16)
    res = torch.randn(1, N, device="cuda", dtype=torch.bfloat16)
    norm_layer = SimpleNamespace(weight=torch.ones(K, device="cuda", dtype=torch.bfloat16), eps=1e-5) if norm else None
    head = {"shape": name, "N": N, "K": K, "MB": round(nbytes / 1e6, 1), "floor_us": round(1e6 * nbytes / bw, 2)}
    rows = []

    def one(cfg, pdl):                                   # the kernel launched with this block shape
        config = KernelConfig(pdl=pdl, block_shape=lambda *_: cfg)
        def run():
            for w in ws:
                dk.matvec(x, w, epi, norm=norm_layer, res=res, out_features=N, config=config)
        return run

    chosen = dk.block_config(N, K, 1, epi)
    cands = [dict(BLOCK_N=n, BLOCK_K=k, LATE=late, PREFETCH=pf, SPLIT=split, num_warps=w, num_stages=1 if pf else 2)
             for n, k, late, pf, split, w in CANDIDATES]
    for cfg, pdl in [(c, True) for c in cands] + [(chosen, False)]:
        us = graph_us(one(cfg, pdl), R)
        rows.append({**cfg, "pdl": pdl, "block_config": cfg == chosen, "us": round(us, 2),
                     "of_floor": round(head["floor_us"] / us, 3)})
    lin = lambda: [torch.nn.functional.linear(x, w) for w in ws]
    red = torch.compile(lambda x, w: (x.float() * w.float()).sum(-1).to(x.dtype), dynamic=False)
    peers = {"cuBLAS linear": graph_us(lin, R),
             "inductor reduction": graph_us(lambda: [red(x, w) for w in ws], R)}
    best = min(rows, key=lambda r: r["us"])
    mine = [r for r in rows if r["block_config"]]
    print(json.dumps({**head, "peers_us": {k: round(v, 2) for k, v in peers.items()}, "best": best,
                      "block_config": mine}), flush=True)
    for r in sorted(rows, key=lambda r: r["us"]):
        print(json.dumps({"shape": name, **r}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=5632)
    args = ap.parse_args()
    torch.manual_seed(0)
    bw = bandwidth()
    print(json.dumps({"copy_GBps": round(bw / 1e9), "device": torch.cuda.get_device_name()}), flush=True)
    with torch.no_grad():
        for s in shapes(args.dim, args.hidden):
            sweep(*s, bw)


if __name__ == "__main__":
    main()
