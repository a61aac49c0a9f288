"""Library decoding paths against patch length: the host-decided step, the decoder-first step,
the speculative step, and both of those switching by the share of bytes that end a patch, the
last two also with their decoder-first steps decided on the device (`-device`: what
`DecodeOptions.fastest` asks for greedy decoding where device_branch.py runs), each with compile and the fused kernels,
batch 1, greedy, on one model, in one process; each variant warmed once and timed twice, for
static patches of each size (1: every byte a patch) and for entropy patching at each
`--thresholds` (nats), with the weight-read roofline of that setting. `--paths` picks variants (a
name may repeat, to interleave them); `bytes_sha1` tells whether different paths made the same
bytes. `--speculative-from` runs the switching path once for each value of its rule
(schedules.SPECULATIVE_FROM: the moving share of bytes ending a patch from which a lone row takes
the speculative step), to place that constant. `--kernel-configs` runs every variant under each
KernelConfig setting given (`field=int,...`; '' the defaults).

    python3 bench/long_patches.py --model random:blt-1b --out bench/results/long_patches_h100_blt1b.json
    python3 bench/long_patches.py --sizes --thresholds 4.946875 5.084375 --no-cudnn-sdp \
        --paths speculative decoder-first switching --speculative-from 0.85 0.78 0.7
    python3 bench/long_patches.py --sizes 4 --paths switching-device \
        --kernel-configs '' attention_min_keys=16 '' attention_min_keys=16
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import copy_bandwidth, weight_bytes_per_byte  # noqa: E402
from kernel_config_sweep import kernel_config  # noqa: E402
from latency import machine  # noqa: E402
from serve import PROMPT, materialise  # noqa: E402
from blt_core import BLT  # noqa: E402
from blt_core.generation import DecodeOptions, schedules  # noqa: E402

FAST = dict(cuda_graphs=True, compile=True, kernels=True)
VARIANTS = {"host-decided": DecodeOptions(**FAST), "decoder-first": DecodeOptions(**FAST, decoder_first=True),
            "speculative": DecodeOptions(**FAST, speculative=True),
            "switching": DecodeOptions(**FAST, speculative=True, decoder_first=True),
            "decoder-first-device": DecodeOptions(**FAST, decoder_first=True, device_decides=True),
            "switching-device": DecodeOptions(**FAST, speculative=True, decoder_first=True, device_decides=True)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="random:blt-1b")
    ap.add_argument("--sizes", type=int, nargs="*", default=[1, 4, 8], help="static patch sizes (1: every byte)")
    ap.add_argument("--thresholds", type=float, nargs="*", default=[], help="entropy patching at these thresholds too")
    ap.add_argument("--new-bytes", type=int, default=512)
    ap.add_argument("--paths", nargs="+", choices=list(VARIANTS),
                    default=["host-decided", "decoder-first", "speculative", "switching"])
    ap.add_argument("--reps", type=int, default=2, help="timed runs of each variant after its warm one")
    ap.add_argument("--no-cudnn-sdp", action="store_true",
                    help="prefill attention without cuDNN, as the app runs (app/models.py): other bf16 rounding")
    ap.add_argument("--speculative-from", type=float, nargs="+", default=[schedules.SPECULATIVE_FROM],
                    help="the switching path's rule: run it once at each of these values")
    ap.add_argument("--kernel-configs", nargs="+", default=[""],
                    help="run every variant under each of these KernelConfig settings in turn, each "
                         "'field=int,...' ('' the defaults; values may repeat, to interleave them)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("long_patches.py compares CUDA paths; it needs a GPU")
    result = {"command": "python3 bench/long_patches.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": machine(), "device": torch.cuda.get_device_name(), "model": args.model, "rows": []}
    if args.no_cudnn_sdp:
        torch.backends.cuda.enable_cudnn_sdp(False)
    with tempfile.TemporaryDirectory() as tmp:
        model = BLT.from_pretrained(materialise(args.model, Path(tmp)), device="cuda")
    bandwidth = copy_bandwidth(torch.device("cuda"))
    settings = [dict(mode="static", patch_size=size) for size in args.sizes]
    settings += [dict(mode="entropy", threshold=t) for t in args.thresholds]
    runs_of = [(name, rule, spec) for name in args.paths
               for rule in (args.speculative_from if name.startswith("switching") else [None])
               for spec in args.kernel_configs]
    for patching in settings:
        for name, rule, spec in runs_of:
            options = replace(VARIANTS[name], kernel_config=kernel_config(spec))
            if rule is not None:
                schedules.SPECULATIVE_FROM = rule                   # read by Schedule._switching at each run
            kw = dict(max_new_bytes=args.new_bytes, stop_at_eos=False, options=options, **patching)
            model.generate(PROMPT, **kw)                            # compile and capture
            runs = [model.generate(PROMPT, **kw) for _ in range(args.reps)]
            share = runs[-1].global_steps / len(runs[-1].bytes)
            roof = bandwidth / weight_bytes_per_byte(model, share)
            setting = {"patch_bytes": patching["patch_size"]} if "patch_size" in patching else \
                {"threshold": patching["threshold"], "patch_bytes": round(1 / share, 2) if share else None}
            rule_of = {"speculative_from": rule} if rule is not None else {}
            rule_of.update({"kernel_config": spec} if spec else {})
            row = {**setting, "path": name, **rule_of, "bytes_per_s": [r.timings["bytes_per_s"] for r in runs],
                   "global_step_share": round(share, 3), "roofline_bytes_per_s": round(roof),
                   "share_of_roofline": round(max(r.timings["bytes_per_s"] for r in runs) / roof, 3),
                   "same_bytes": all(r.bytes == runs[0].bytes for r in runs),
                   "bytes_sha1": hashlib.sha1(runs[0].bytes).hexdigest()[:12]}
            result["rows"].append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
