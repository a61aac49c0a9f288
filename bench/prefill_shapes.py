"""What a prefill costs the first time it meets a shape: the batch engine prefills the prompts
that arrive together eagerly (`IncrementalBLT.prefill`, cuDNN attention off as in the app), so a
prompt length or cache length it has not seen may pay one-time costs (library heuristics, memory
from the driver). Each case runs twice in a row: first and again.

    python3 bench/prefill_shapes.py --out bench/results/prefill_shapes_h100_blt1b.jsonl
    python3 bench/prefill_shapes.py --warm-lengths 16 64 200 700 --out ...   # other lengths first
    python3 bench/prefill_shapes.py --engine-rounding --warm-lengths 63 127 191 255 319 383 447 511 --out ...

--engine-rounding pads each prefill's positions as the batch engine does (stepper.PREFILL_ROUND,
within the cache), so a prompt meets the shape of the rounded length the app's warm-up prefilled
(the last command's --warm-lengths: with BOS, the positions of its ladder).

Cases (random blt-1b bf16, byte patching, 8 rows unless said): the app's warm-up prompt at cache
length 512 (as its warm-up prefills it), the serving benchmark's prompt at 512 (a new prompt
length), the same prompt at 1024 (a new cache length: what bench/serve.py's 512 new bytes take),
the warm-up prompt at 1536, a new prompt length at 2048, and the benchmark's prompt at 1024 alone.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="blt-1b")
    ap.add_argument("--warm-lengths", type=int, nargs="*", default=[],
                    help="prompt lengths (bytes) prefilled at 1 and 8 rows, cache 512 or more, before the cases")
    ap.add_argument("--engine-rounding", action="store_true",
                    help="pad positions to the batch engine's multiple (stepper.PREFILL_ROUND)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    import torch
    from app.models import WARM_UP_PROMPT
    from blt_core import BLT, preset
    from blt_core.generation.driver import right_padded
    from blt_core.generation.stepper import PREFILL_ROUND, IncrementalBLT
    from blt_core.patching import PatchingParams
    from blt_core.tokenizer import ByteTokenizer
    from cuda_timing import write_rows
    from serve import PROMPT

    if not torch.cuda.is_available():
        raise SystemExit("prefill_shapes.py times CUDA prefills: it needs a GPU")
    torch.backends.cuda.enable_cudnn_sdp(False)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = BLT(preset(args.preset)).to(torch.bfloat16).eval()
    byte = PatchingParams(mode="byte").resolve(model.config)

    def prefill_ms(text: str, rows: int, length: int) -> float:
        ids = ByteTokenizer().encode(text)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        inc = IncrementalBLT(model, rows, length, byte)
        round_to = PREFILL_ROUND if args.engine_rounding else 1
        cap = min(length, model.config.patch_context - 1)
        with torch.no_grad():
            inc.prefill(*right_padded([ids] * rows, model.device, round_to, cap))
        torch.cuda.synchronize()
        return round(1000 * (time.perf_counter() - t0), 1)

    cases = [("warm-up prompt", WARM_UP_PROMPT, 8, 512), ("serve prompt: new prompt length", PROMPT, 8, 512),
             ("serve prompt: new cache length", PROMPT, 8, 1024),
             ("warm-up prompt: new cache length", WARM_UP_PROMPT, 8, 1536),
             ("new prompt length and cache length", PROMPT + "x" * 37, 8, 2048),
             ("serve prompt alone: new batch", PROMPT, 1, 1024)]
    rows = []
    for n_bytes in args.warm_lengths:
        for n in (1, 8):
            ms = prefill_ms("w" * n_bytes, n, max(512, -(-(n_bytes + 2) // 512) * 512))
            rows.append({"warm": n_bytes, "rows": n, "ms": ms})
            print(json.dumps(rows[-1]), flush=True)
    for name, text, n, length in cases:
        first, again = prefill_ms(text, n, length), prefill_ms(text, n, length)
        rows.append({"case": name, "rows": n, "prompt_ids": len(ByteTokenizer().encode(text)), "cache_length": length,
                     "first_ms": first, "again_ms": again})
        print(json.dumps(rows[-1]), flush=True)
    if args.out:
        write_rows(args.out, rows)


if __name__ == "__main__":
    main()
