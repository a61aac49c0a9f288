"""Do rows of the batch engine get exactly their solo bytes on this device? (A check, not a timing.)

    python3 bench/batched_vs_solo.py --out bench/results/batched_vs_solo_h100.json    # CUDA, float32
    python3 bench/batched_vs_solo.py --dtype bfloat16 --out bench/results/batched_vs_solo_h100_bf16.json

Runs the shipped model (in float32 unless --dtype says otherwise) through `BatchEngine` with the app's options for the device
(`app.models.decode_options("fastest", device)`), two ways: the join order of
tests/test_batching.py's CUDA test (a greedy row alone for 12 bytes, then five rows of mixed
sampling and patching joining), and the first four of those rows submitted together. Each row's
bytes and patch starts are compared with `model.generate` alone on the eager path. On CUDA the
batch shape's matrix products (cuBLAS at several rows) round differently from the solo path's
single-row products; in bfloat16 that is enough to flip a near tie in an argmax (a top-two
logit gap of 0.03 at byte 16 of the first row), in float32 it is not.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from app.models import decode_options  # noqa: E402
from blt_core import BLT  # noqa: E402
from blt_core.generation.batching import BatchEngine  # noqa: E402
from test_batching import MODES, PROMPTS, SAMPLINGS, SHIPPED_MODEL, drain  # noqa: E402


def compare(model, engine, jobs, streams) -> list[dict]:
    rows = []
    for (prompt, params, patching), stream in zip(jobs, streams):
        _, result = drain(stream)
        alone = model.generate(prompt, patching=patching, **vars(params))
        same = result.bytes == alone.bytes and result.patch_starts == alone.patch_starts
        first = next((i for i, (a, b) in enumerate(zip(result.bytes, alone.bytes)) if a != b), None)
        rows.append({"prompt": prompt[:24], "same": same, "first_differing_byte": first})
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = BLT.from_pretrained(SHIPPED_MODEL, device=device, dtype=getattr(torch, args.dtype))
    engine = BatchEngine(model, slots=4, options=decode_options("fastest", device))
    jobs = [(PROMPTS[i % 3], SAMPLINGS[i % 4], MODES[i]) for i in range(6)]
    try:
        streams = [engine.submit(*jobs[0])]
        for _ in range(12):
            next(streams[0])
        streams += [engine.submit(*job) for job in jobs[1:3]]
        next(streams[1])
        streams += [engine.submit(*job) for job in jobs[3:]]
        joining = compare(model, engine, jobs, streams)
        together = compare(model, engine, jobs[:4], [engine.submit(*job) for job in jobs[:4]])
    finally:
        engine.stop()
    result = {"bench": "batched_vs_solo", "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
              "torch": torch.__version__, "dtype": args.dtype, "joining": joining, "together": together,
              "command": "python3 bench/batched_vs_solo.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
