"""Forward-pass benchmark: blt_core vs transformers' BltForCausalLM on the same weights.

Builds transformers' model from our preset's config (random weights), hands the very same
tensors to blt_core (fused projections copied), and times full forwards (entropy model + BLT) in one run.
With random weights every entropy is above the threshold, so every byte is its own patch, as in
the reference anchor; a second pair of timings passes fixed 4-byte patches to both.

    python bench/forward.py --preset blt-1b --batch 4 --seq 4096 --dtype bfloat16 \
        --out bench/results/forward_h100.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer import model_pair  # noqa: E402


def timed(fn, device, warmup=1, reps=5):
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="blt-1b")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=4096)
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args()

    import transformers

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    rows = []

    def emit(**kw):
        print(json.dumps(kw), flush=True)
        rows.append(kw)

    emit(torch=torch.__version__, transformers=transformers.__version__, python=platform.python_version(),
         device=torch.cuda.get_device_name() if device.type == "cuda" else platform.processor(),
         preset=args.preset, batch=args.batch, seq=args.seq, dtype=args.dtype)
    t0 = time.perf_counter()
    hf, ours = model_pair(args.preset, device, dtype)
    emit(init_s=round(time.perf_counter() - t0, 1), params_M=round(ours.num_params() / 1e6, 1))

    text = ("The quick brown fox jumps over the lazy dog. " * 400).encode()
    ids = (torch.tensor([list(text[:args.seq - 1])] * args.batch, device=device) + 4)
    ids = torch.cat([torch.ones_like(ids[:, :1]), ids], dim=1)                     # BOS + bytes
    T = ids.shape[1]
    fixed = torch.tensor([[1] + [4] * ((T - 1) // 4) + ([(T - 1) % 4] if (T - 1) % 4 else [])] * args.batch,
                         device=device)

    with torch.no_grad():
        diff = (ours(ids[:1, :512]) - hf(ids[:1, :512], use_cache=False).logits).abs().max().item()
        emit(check="max |logit diff| ours vs transformers, 1x512", value=diff)
        for label, kwargs in (("config patching (entropy)", {}), ("fixed 4-byte patches", {"patch_lengths": fixed})):
            for name, fn in (("transformers", lambda: hf(ids, use_cache=False, **kwargs)),
                             ("blt_core", lambda: ours(ids, **kwargs))):
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                try:
                    s = timed(fn, device, reps=args.reps)
                    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
                    emit(measure="forward", patching=label, impl=name, seconds=round(s, 4),
                         bytes_per_s=round(args.batch * T / s), peak_mem_GiB=peak and round(peak, 2))
                except Exception as err:  # record a failure of either side instead of losing the run
                    emit(measure="forward", patching=label, impl=name, error=repr(err)[:300])
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"command": " ".join(["python"] + sys.argv), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
