"""How long one full garbage collection pauses the serving worker: the heap that the app's model
load and warm-up made, left to the collector and then frozen (app/gc_pauses.py), in one process.

The app is made as a worker makes it and its model loaded (on CUDA with its whole warm-up, which
ends by freezing the heap); a few generations run through its engine as requests would. Then the
heap is unfrozen and `gc.collect()` timed `--reps` times (what an automatic collection of the
oldest generation costs without the freeze), frozen again and timed as often.

    python3 bench/gc_pause.py --model models/blt-studio --out bench/results/gc_pause_cpu_blt_studio.json
    python3 bench/gc_pause.py --model random:blt-1b --out bench/results/gc_pause_h100_blt1b.json
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import machine  # noqa: E402
from serve import PROMPT, materialise  # noqa: E402


def collect_ms(reps: int) -> list[float]:
    """`reps` full collections, each timed in ms."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        gc.collect()
        times.append(round(1000 * (time.perf_counter() - t0), 2))
    return times


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/blt-studio")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--generations", type=int, default=3, help="requests through the engine before timing")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    from app import create_app
    from blt_core.patching import PatchingParams
    from blt_core.sampling import SamplingParams

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        holder = create_app({"MODEL": materialise(args.model, Path(tmp))}).extensions["blt_model"]
        loaded = holder.get()                              # the load, and on CUDA the warm-up
        ready_s = time.perf_counter() - t0
        params = SamplingParams(max_new_bytes=128, stop_at_eos=False)
        for _ in range(args.generations):
            for _ in holder.engine.submit(PROMPT, params, PatchingParams()):
                pass
        frozen = gc.get_freeze_count()
        gc.unfreeze()
        tracked = len(gc.get_objects())
        unfrozen = collect_ms(args.reps)
        gc.freeze()
        after = collect_ms(args.reps)
        holder.engine.stop()
    result = {"command": "python3 bench/gc_pause.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "device": str(loaded.model.device),
              "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
              "model": args.model, "ready_after_s": round(ready_s, 1), "frozen_by_the_app": frozen,
              "tracked_objects": tracked, "full_collection_ms_left_to_the_collector": unfrozen,
              "full_collection_ms_frozen": after,
              "median_ms": {"left": statistics.median(unfrozen), "frozen": statistics.median(after)},
              "worker_gc": holder.describe()["gc"]}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
