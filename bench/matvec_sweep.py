"""Candidate block shapes of the fused matrix-vector kernel timed alone on each projection of a
model's decoding step, beside cuBLAS and inductor's reduction on the same shapes: which reach the
GPU's copy bandwidth (decode_kernels.block_config is chosen from these), with and without
programmatic dependent launch (PDL).

Each shape runs on enough distinct weight matrices (about 400 MB) that none stays in L2, all
launches captured in one CUDA graph; the time is the median replay divided by the launches.

    python3 bench/matvec_sweep.py --dim 2048 --hidden 5632      # blt-1b global layer
    python3 bench/matvec_sweep.py --dim 2048 --hidden 5632 --rows 8       # the same, 8 rows at once
    python3 bench/matvec_sweep.py --rows 8 --several 16x256x4x4 32x256x4x3 --splits 1 2 4 8 --no-pdl
                                                        # K shared among 1-8 programs per block

With several rows the candidates are tensor-core tiles of 16 padded rows; the peer is cuBLAS at
the same rows, and the projections that carry an RMSNorm prologue are also timed without it
(what the prologue costs). --handed-stats gives those the rows' sums of squares as the launch
before hands them on in a stack (decode_kernels.stack_step), instead of each program making its
own pass over x for them.
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


# Several rows, 16 padded rows on tensor cores: (BLOCK_N, BLOCK_K, warps, stages), each launched with
# and without PDL (a waiting dependent holds its shared memory). Two kernel branches an earlier
# run of this sweep timed are gone, as neither won: tiles of 8 rows with the products summed late
# on CUDA cores (2-6x slower on every shape, matvec_sweep_h100_rows8_cuda_cores.jsonl), and tiles
# spanning all of K taking the RMSNorm statistics from the tile itself (its 1024- and 2048-wide
# rows in matvec_sweep_h100_rows8.jsonl).
SEVERAL = [(16, 256, 4, 4), (16, 512, 4, 2), (16, 1024, 4, 2), (16, 1024, 8, 2), (16, 2048, 8, 1), (16, 2048, 4, 1),
           (32, 256, 4, 3), (32, 512, 4, 2), (32, 1024, 8, 2), (64, 256, 4, 3), (64, 512, 8, 2)]


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


def sweep(name, N, K, epi, norm, bw, B=1, several=SEVERAL, splits=(1,), pdls=(True, False), handed=False):
    rows_w = 2 * N if epi == dk.SWIGLU else N
    nbytes = rows_w * K * 2
    R = max(2, min(64, 400_000_000 // nbytes))
    ws = [torch.randn(rows_w, K, device="cuda", dtype=torch.bfloat16) * 0.02 for _ in range(R)]
    x = torch.randn(B, K, device="cuda", dtype=torch.bfloat16)
    res = torch.randn(B, N, device="cuda", dtype=torch.bfloat16)
    norm_layer = SimpleNamespace(weight=torch.ones(K, device="cuda", dtype=torch.bfloat16), eps=1e-5) if norm else None
    stats = None
    if handed and norm and B > 1:                    # 64 partial sums per row, as a residual launch leaves them
        stats = torch.zeros(dk._bp(B), 64, device="cuda")
        stats[:B, 0] = x.float().pow(2).sum(1)
    head = {"shape": name, "rows": B, "N": N, "K": K, "MB": round(nbytes / 1e6, 1),
            "floor_us": round(1e6 * nbytes / bw, 2), "handed_stats": stats is not None}
    rows = []

    def one(cfg, pdl, norm=norm_layer):                  # the kernel launched with this block shape
        config = KernelConfig(pdl=pdl, block_shape=lambda *_: cfg)
        def run():
            for w in ws:
                dk.matvec(x, w, epi, norm=norm, res=res, out_features=N, config=config,
                          x_stats=stats if norm is not None else None)
        return run

    chosen = dk.block_config(N, K, dk._bp(B), epi)
    if B == 1:
        cands = [dict(BLOCK_N=n, BLOCK_K=k, LATE=late, PREFETCH=pf, SPLIT=split, num_warps=w,
                      num_stages=1 if pf else 2) for n, k, late, pf, split, w in CANDIDATES]
    else:
        tile = lambda k: min(k, 1 << (K - 1).bit_length())          # BLOCK_K within K's next power of two
        cands = [dict(BLOCK_N=n, BLOCK_K=tile(k), LATE=False, PREFETCH=False, SPLIT=split,
                      num_warps=w, num_stages=st, **({} if pdl else {"PDL": False}))
                 for n, k, w, st in several for split in splits for pdl in pdls
                 if split == 1 or K >= split * tile(k)]                  # a whole tile in every share
    runs = [(c, True, norm_layer) for c in cands] + [(chosen, False, norm_layer)]
    if norm and B > 1:                                   # what the RMSNorm prologue costs
        runs.append(({**chosen, "no_norm": True}, True, None))
    for cfg, pdl, nl in runs:
        launch = {k: v for k, v in cfg.items() if k != "no_norm"}
        us = graph_us(one(launch, pdl, nl), R)
        rows.append({**cfg, "pdl": pdl, "block_config": cfg == chosen, "us": round(us, 2),
                     "of_floor": round(head["floor_us"] / us, 3)})
    lin = lambda: [torch.nn.functional.linear(x, w) for w in ws]
    peers = {"cuBLAS linear": graph_us(lin, R)}
    if B == 1:
        red = torch.compile(lambda x, w: (x.float() * w.float()).sum(-1).to(x.dtype), dynamic=False)
        peers["inductor reduction"] = graph_us(lambda: [red(x, w) for w in ws], R)
    best = min(rows, key=lambda r: r["us"])
    mine = [r for r in rows if r["block_config"]]
    print(json.dumps({**head, "peers_us": {k: round(v, 2) for k, v in peers.items()}, "best": best,
                      "block_config": mine}), flush=True)
    for r in sorted(rows, key=lambda r: r["us"]):
        print(json.dumps({"shape": name, "rows": B, **r}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--hidden", type=int, default=5632)
    ap.add_argument("--rows", type=int, default=1, help="rows multiplied at once (the batched step's)")
    ap.add_argument("--several", nargs="+", help="several rows: these block shapes, each BLOCK_NxBLOCK_KxWARPSxSTAGES, "
                                                  "instead of the built-in list")
    ap.add_argument("--splits", nargs="+", type=int, default=[1],
                    help="several rows: each shape with K shared among this many programs per block")
    ap.add_argument("--no-pdl", action="store_true", help="several rows: launch the candidates without PDL only")
    ap.add_argument("--handed-stats", action="store_true",
                    help="several rows: the RMSNorm's statistics handed in, as in a stack's later launches")
    args = ap.parse_args()
    several = [tuple(int(v) for v in spec.split("x")) for spec in args.several] if args.several else SEVERAL
    torch.manual_seed(0)
    bw = bandwidth()
    print(json.dumps({"copy_GBps": round(bw / 1e9), "device": torch.cuda.get_device_name()}), flush=True)
    with torch.no_grad():
        for s in shapes(args.dim, args.hidden):
            sweep(*s, bw, args.rows, several, args.splits, (False,) if args.no_pdl else (True, False),
                  args.handed_stats)


if __name__ == "__main__":
    main()
