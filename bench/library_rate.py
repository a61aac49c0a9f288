"""The library's batch-1 rate on the GPU: `model.generate` on random blt-1b bf16 weights, 512 greedy
bytes (every byte a patch), fastest exact options but decoder-first (the speculative graph with
compile and the fused kernels), warmed once and timed `--reps` times, each against the roofline of
bench/generate.py (weights a byte reads over the copy bandwidth measured in the same run).

--root times the blt_core of another checkout (e.g. the commit before a change, unpacked with
`git archive`) in the same session, so a change is compared on one machine:

    python3 bench/library_rate.py --root /tmp/base --reps 3     # before
    python3 bench/library_rate.py --reps 3                      # this checkout
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                    help="checkout whose blt_core (and bench/generate.py) to time")
    ap.add_argument("--preset", default="blt-1b")
    ap.add_argument("--new-bytes", type=int, default=512)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    sys.path[:0] = [str(args.root), str(args.root / "bench")]
    import torch
    from blt_core import BLT, preset
    from blt_core.generation import DecodeOptions
    from generate import PROMPT, copy_bandwidth, weight_bytes_per_byte

    if not torch.cuda.is_available():
        raise SystemExit("library_rate.py times the CUDA fast path: it needs a GPU")
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = BLT(preset(args.preset)).to(torch.bfloat16).eval()
    options = DecodeOptions(cuda_graphs=True, compile=True, speculative=True, kernels=True)
    kw = dict(max_new_bytes=args.new_bytes, stop_at_eos=False, options=options)
    bandwidth = copy_bandwidth(torch.device("cuda"))
    model.generate(PROMPT, **kw)                         # compile and capture
    for rep in range(args.reps):
        res = model.generate(PROMPT, **kw)
        share = res.global_steps / len(res.bytes)
        roof = bandwidth / weight_bytes_per_byte(model, share)
        rate = res.timings["bytes_per_s"]
        print(json.dumps({"root": str(args.root), "rep": rep, "bytes_per_s": rate, "roofline_bytes_per_s": round(roof),
                          "share_of_roofline": round(rate / roof, 4), "global_step_share": share,
                          "first_bytes_hex": res.bytes[:16].hex()}), flush=True)


if __name__ == "__main__":
    main()
