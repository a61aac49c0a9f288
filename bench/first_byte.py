"""Prefill time of prompts whose lengths the process has not seen before, with each SDPA backend
allowed: a backend that plans per shape (cuDNN) pays its planning on every new prompt length,
which is the first byte's delay of a request.

    python3 bench/first_byte.py --preset blt-1b --out bench/results/first_byte_h200.json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blt_core import BLT, preset  # noqa: E402
from blt_core.generation import IncrementalBLT  # noqa: E402

BACKENDS = {"default": None, "no cudnn": [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]}


@torch.no_grad()
def prefill_ms(model, length: int) -> float:
    ids = torch.randint(4, 260, (1, length), device="cuda")
    inc = IncrementalBLT(model, 1, length + 8)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    inc.prefill(ids, torch.tensor([length], device="cuda"))
    torch.cuda.synchronize()
    return round(1000 * (time.perf_counter() - t0), 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="blt-1b")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = BLT(preset(args.preset)).to("cuda", torch.bfloat16).eval()
    prefill_ms(model, 50)                                # CUDA context, cuBLAS handles
    rows, length = [], 100
    for name, backends in BACKENDS.items():
        with sdpa_kernel(backends) if backends else contextlib.nullcontext():
            for _ in range(5):                           # new lengths, then one repeated
                length += 37
                rows.append({"backends": name, "prompt_bytes": length, "first_ms": prefill_ms(model, length),
                             "again_ms": prefill_ms(model, length)})
                print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"command": "python3 " + " ".join(sys.argv),
                                              "device": torch.cuda.get_device_name(), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
