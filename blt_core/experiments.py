"""The project's experiments, each writing one JSON file to plot_data/ with the command that made it.

    python -m blt_core.experiments threshold-sweep --entropy-model runs/entropy --preset blt-studio \
        --data data/corpora/english --targets 2 3 4 6 8 --steps 1500
    python -m blt_core.experiments scaling --presets blt-tiny blt-studio blt-small --data data/corpora/english \
        --entropy-model runs/entropy --steps 1500
    python -m blt_core.experiments pooling --entropy-model runs/entropy --preset blt-studio --steps 1500
    python -m blt_core.experiments languages --model models/blt-studio --corpora data/corpora
    python -m blt_core.experiments training-logs --run-dirs runs/studio-entropy runs/studio-blt --out plot_data/x.json

threshold-sweep: BLTs trained with the entropy threshold solved for each target mean patch size ->
held-out bits per byte, measured mean patch size and inference FLOPs per byte.
pooling: cross-attention pooling (BLT's) against mean pooling of a patch's bytes in the local
encoder, the mean-pooling run given the steps that equalise training FLOPs.
training-logs: the logs of finished runs (loss, held-out BPB, FLOPs by step) gathered into one file.
languages: one trained BLT evaluated on every per-language held-out file of the corpora (and on
code) -> bytes per patch and bits per byte per language and script; --eval-bytes of each file as
windows spread evenly over the whole file (ByteCorpus.spread; a file that small is taken whole).
scaling: for each size, BLT with entropy, static (same mean patch size) and space patching, and
the byte-level transformer of the global model's shape -> bits per byte against training FLOPs.
Every run is a real training run (blt_core.train) in --runs; nothing is reused from elsewhere.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from .train import TrainConfig, train


def _run(tc: TrainConfig, label: str) -> dict:
    from .config import preset
    from .flops import blt_flops_per_byte, byte_lm_flops_per_byte
    t = time.perf_counter()
    result = train(tc)
    cfg = preset(tc.preset)
    if tc.kind == "blt":
        cfg = cfg.replace(encoder_pooling=tc.encoder_pooling)
        result["inference_flops_per_byte"] = blt_flops_per_byte(cfg, result["mean_patch_bytes"], tc.seq_len)["total"]
    else:
        result["inference_flops_per_byte"] = byte_lm_flops_per_byte(cfg.global_model, tc.seq_len)
    return {"label": label, "preset": tc.preset, "kind": tc.kind,
            "patching_mode": tc.patching_mode if tc.kind == "blt" else None,
            "steps": tc.steps, "batch_size": tc.batch_size, "seq_len": tc.seq_len, "run_dir": tc.out,
            "wall_s": round(time.perf_counter() - t, 1), **result}


def threshold_sweep(base: TrainConfig, targets: list[float]) -> list[dict]:
    rows = []
    for target in targets:
        tc = replace(base, kind="blt", target_patch_bytes=target, out=f"{base.out}/sweep-{target:g}")
        rows.append({"target_patch_bytes": target, **_run(tc, f"entropy, target {target:g} B/patch")})
    return rows


def scaling(base: TrainConfig, presets: list[str]) -> list[dict]:
    rows = []
    for name in presets:
        entropy = replace(base, preset=name, kind="blt", patching_mode="entropy", out=f"{base.out}/{name}-entropy")
        first = _run(entropy, f"{name} BLT-entropy")
        patch_size = max(1, round(first["mean_patch_bytes"]))
        rows += [first,
                 _run(replace(entropy, patching_mode="static", entropy_model=None, target_patch_bytes=None,
                              patch_size=patch_size, out=f"{base.out}/{name}-static"),
                      f"{name} BLT-static ps={patch_size}"),
                 _run(replace(entropy, patching_mode="space", entropy_model=None, target_patch_bytes=None,
                              out=f"{base.out}/{name}-space"), f"{name} BLT-space"),
                 _run(replace(entropy, kind="bytes", out=f"{base.out}/{name}-bytes"), f"{name} byte transformer")]
    return rows


def pooling(base: TrainConfig) -> list[dict]:
    from .config import preset
    from .flops import blt_flops_per_byte
    cross = _run(replace(base, kind="blt", encoder_pooling="cross_attention", out=f"{base.out}/pool-cross"),
                 "cross-attention pooling")
    cfg = preset(base.preset)
    ratio = (blt_flops_per_byte(cfg, cross["mean_patch_bytes"], base.seq_len)["total"]
             / blt_flops_per_byte(cfg.replace(encoder_pooling="mean"), cross["mean_patch_bytes"], base.seq_len)["total"])
    steps = round(base.steps * ratio)
    mean = _run(replace(base, kind="blt", encoder_pooling="mean", steps=steps, eval_every=steps,
                        out=f"{base.out}/pool-mean"), "mean pooling (equal training FLOPs)")
    return [cross, mean]


def languages(model_dir: str, corpora: str, seq_len: int, max_bytes: int, device=None) -> list[dict]:
    import torch

    from .blt import BLT
    from .data import SCRIPTS, ByteCorpus
    from .eval import bits_per_byte
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = BLT.from_pretrained(model_dir, device=device, dtype=torch.float32)
    rows = []
    for f in sorted(Path(corpora).glob("*/heldout_*.bin")):
        lang = f.stem.removeprefix("heldout_")
        if f.stat().st_size <= seq_len:
            continue
        corpus = ByteCorpus(f, seq_len)
        ev = bits_per_byte(model, corpus, device, max_bytes, spread=True)   # the file's documents, not its first one
        script = SCRIPTS.get(lang.removeprefix("unseen_"), "?")        # heldout_unseen_<label>: never-seen text
        rows.append({"language": lang, "script": script, "corpus": f.parent.name,
                     "bpb": ev["bpb"], "mean_patch_bytes": ev["mean_patch_bytes"], "bytes": ev["bytes"],
                     "file_bytes": len(corpus), "sampling": "spread", "model": model_dir})
    return rows


def training_logs(run_dirs: list[str]) -> list[dict]:
    rows = []
    for run in run_dirs:
        info = json.loads((Path(run) / "run.json").read_text())
        log = [json.loads(line) for line in (Path(run) / "log.jsonl").read_text().splitlines()]
        rows.append({"run_dir": run, "kind": info["train_config"]["kind"], "preset": info["train_config"]["preset"],
                     "command": info["command"], "parameters": info["parameters"],
                     "steps": [r for r in log if "loss" in r], "evals": [r for r in log if "heldout_bpb" in r]})
    return rows


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m blt_core.experiments", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=["threshold-sweep", "scaling", "pooling", "languages", "training-logs"])
    ap.add_argument("--run-dirs", nargs="+", help="training-logs: finished run folders")
    ap.add_argument("--entropy-model", help="trained entropy model (blt_core.train entropy)")
    ap.add_argument("--model", help="languages: the trained BLT to evaluate")
    ap.add_argument("--corpora", default="data/corpora", help="languages: folder of the prepared corpora")
    ap.add_argument("--data", default="data/corpora/english")
    ap.add_argument("--preset", default="blt-studio", help="threshold-sweep: model size")
    ap.add_argument("--presets", nargs="+", default=["blt-tiny", "blt-studio", "blt-small"], help="scaling: sizes")
    ap.add_argument("--targets", nargs="+", type=float, default=[2, 3, 4, 6, 8])
    ap.add_argument("--target-patch-bytes", type=float, default=4.0, help="scaling: BLT-entropy patch size")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--eval-bytes", type=int, default=100_000)
    ap.add_argument("--device", default=None)
    ap.add_argument("--runs", default="runs/experiments")
    ap.add_argument("--out", default=None, help="JSON file (default plot_data/<experiment>.json)")
    args = ap.parse_args(argv)
    base = TrainConfig(kind="blt", preset=args.preset, data=args.data, out=args.runs, steps=args.steps,
                       batch_size=args.batch_size, seq_len=args.seq_len, eval_every=args.steps,
                       eval_bytes=args.eval_bytes, device=args.device, entropy_model=args.entropy_model,
                       target_patch_bytes=args.target_patch_bytes)
    if args.experiment == "training-logs":
        if not args.run_dirs:
            ap.error("training-logs needs --run-dirs")
        rows = training_logs(args.run_dirs)
    elif args.experiment == "languages":
        if not args.model:
            ap.error("languages needs --model")
        rows = languages(args.model, args.corpora, args.seq_len, args.eval_bytes, args.device)
    elif not args.entropy_model:
        ap.error(f"{args.experiment} needs --entropy-model")
    elif args.experiment == "threshold-sweep":
        rows = threshold_sweep(base, args.targets)
    elif args.experiment == "pooling":
        rows = pooling(base)
    else:
        rows = scaling(base, args.presets)
    out = Path(args.out or f"plot_data/{args.experiment.replace('-', '_')}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"experiment": args.experiment, "source": "BLT Studio's own training runs",
                               "command": " ".join(["python -m blt_core.experiments"] + argv), "rows": rows},
                              indent=2))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
