"""Launch settings of the fused kernels timed in place: the library's batch-1 rate (as
bench/library_rate.py measures it: random blt-1b bf16, 512 greedy bytes, every byte a patch, the
speculative graph with compile and the kernels) under each `KernelConfig` variant, all in one
process on one GPU. bench/matvec_sweep.py and bench/attention_sweep.py time one kernel alone;
here a variant meets the others a byte chains (PDL overlap, the entropy model beside the global
model), which is what a setting must win. `default` runs first and last, so drift shows.

    python3 bench/kernel_config_sweep.py --out bench/results/kernel_config_sweep_h100_blt1b.jsonl
    python3 bench/kernel_config_sweep.py --variants default splits16 default   # some of them

Each output row: variant, bytes/s of two timed runs after a warm one, share of the roofline, and
whether the bytes equal the first variant's. Other tiles or attention splits add in another
order, so results differ in bf16 rounding and greedy bytes on random weights may part after a
while; every byte is a patch either way, so each byte costs the same work.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def kernel_config(spec: str):
    """A KernelConfig from 'field=int,...' ('' the defaults): the --kernel-configs of
    profile_batch.py and long_patches.py."""
    from blt_core.generation import KernelConfig
    return KernelConfig(**{k: int(v) for k, v in (item.split("=") for item in spec.split(",") if item)})


def one_row(bn: int, bk: int, warps: int = 4, late: bool = True, ks=None, ns=None):
    """A block_shape: block_config's, but one-row products over K in ks (None: all) with N in ns
    (None: all) take BLOCK_N x BLOCK_K tiles of `warps` warps."""
    from blt_core.generation import decode_kernels as dk

    def shape(N, K, BP, epi, D):
        cfg = dk.block_config(N, K, BP, epi, D)
        if BP == 1 and (ks is None or K in ks) and (ns is None or N in ns):
            cfg.update(BLOCK_N=bn, BLOCK_K=min(bk, 1 << (K - 1).bit_length()), num_warps=warps, LATE=late)
        return cfg
    return shape


def variants() -> dict:
    from blt_core.generation import KernelConfig
    wide = (2048, 2816, 5632)                        # blt-1b's K of the global model and the down projections
    return {
        "default": KernelConfig(),
        # self-attention's programs per head and keys per tile
        "splits16": KernelConfig(attention_splits=16),
        "splits64": KernelConfig(attention_splits=64),
        # as many of the 32 programs per head as give each at least 8, 16 or 32 keys
        "min_keys8": KernelConfig(attention_min_keys=8),
        "min_keys16": KernelConfig(attention_min_keys=16),
        "min_keys32": KernelConfig(attention_min_keys=32),
        "block32": KernelConfig(attention_block=32),
        "block32_splits16": KernelConfig(attention_block=32, attention_splits=16),
        # one-row tiles: same size, other shape; smaller programs; wider tiles for the local models
        "tiles_4x512": KernelConfig(block_shape=one_row(4, 512)),
        "tiles_2x512_2warps": KernelConfig(block_shape=one_row(2, 512, 2)),
        "tiles_4x1024_local": KernelConfig(block_shape=one_row(4, 1024, ks=(768, 1024))),
        # a K of 2048 as one tile, so a program loads all its weights before waiting (PDL)
        "k2048_one_tile_8warps": KernelConfig(block_shape=one_row(2, 2048, 8, late=False, ks=(2048,))),
        "k2048_one_tile_4warps": KernelConfig(block_shape=one_row(2, 2048, 4, late=False, ks=(2048,))),
        "o_proj_one_tile_8warps": KernelConfig(block_shape=one_row(2, 2048, 8, late=False, ks=(2048,), ns=(2048,))),
        "wide_k_2048_tiles_8warps": KernelConfig(block_shape=one_row(2, 2048, 8, late=False, ks=wide)),
        "down_2048_tiles_8warps": KernelConfig(block_shape=one_row(2, 2048, 8, late=False, ks=wide[1:])),
        # per-shape bests of matvec_sweep_h100.jsonl (one kernel alone, PDL): the global down
        # projection at 4 x 1024 on 8 warps; the local models' down at 1 x 2048 and gate/up at 8 x 256
        "global_down_4x1024_8warps": KernelConfig(block_shape=one_row(4, 1024, 8, ks=(5632,))),
        "global_down_4x1024": KernelConfig(block_shape=one_row(4, 1024, 4, ks=(5632,))),
        "local_down_1x2048": KernelConfig(block_shape=one_row(1, 2048, ks=(2816,))),
        "local_gate_up_8x256": KernelConfig(block_shape=one_row(8, 256, ks=(1024,), ns=(2816,))),
        "global_gate_up_8warps": KernelConfig(block_shape=one_row(2, 1024, 8, ks=(2048,), ns=(5632,))),
        # weights loaded by the default eviction policy (the default config's: first out of L2)
        "weights_evict_normal": KernelConfig(weight_eviction=""),
        # one row: the decoder's cross-attention as its own launch, not inside the output projection
        "cross_apart": KernelConfig(cross_in_output=False),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="blt-1b")
    ap.add_argument("--new-bytes", type=int, default=512)
    ap.add_argument("--variants", nargs="+", help="names to run, in order (default: all, then default again)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    import torch
    from blt_core import BLT, preset
    from blt_core.generation import DecodeOptions
    from cuda_timing import write_rows
    from generate import PROMPT, copy_bandwidth, weight_bytes_per_byte

    if not torch.cuda.is_available():
        raise SystemExit("kernel_config_sweep.py times the fused CUDA kernels: it needs a GPU")
    table = variants()
    names = args.variants or [*table, "default"]
    unknown = sorted(set(names) - set(table))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {sorted(table)}")
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = BLT(preset(args.preset)).to(torch.bfloat16).eval()
    bandwidth = copy_bandwidth(torch.device("cuda"))
    rows, reference = [], None
    for name in names:
        options = DecodeOptions(cuda_graphs=True, compile=True, speculative=True, kernels=True,
                                kernel_config=table[name])
        kw = dict(max_new_bytes=args.new_bytes, stop_at_eos=False, options=options)
        try:
            model.generate(PROMPT, **kw)                  # compile and capture this variant
        except Exception as err:                          # a shape Triton cannot build: say so, go on
            rows.append({"variant": name, "error": f"{type(err).__name__}: {str(err)[:200]}"})
            print(json.dumps(rows[-1]), flush=True)
            continue
        runs = [model.generate(PROMPT, **kw) for _ in range(2)]
        reference = reference or runs[0].bytes
        share = runs[-1].global_steps / len(runs[-1].bytes)
        roof = bandwidth / weight_bytes_per_byte(model, share)
        rates = [r.timings["bytes_per_s"] for r in runs]
        rows.append({"variant": name, "bytes_per_s": rates, "roofline_bytes_per_s": round(roof),
                     "share_of_roofline": round(max(rates) / roof, 4),
                     "same_bytes": all(r.bytes == reference for r in runs)})
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        write_rows(args.out, rows)


if __name__ == "__main__":
    main()
