"""Training: the entropy model, the BLT (patched by a frozen entropy model in real time), and a
byte-level transformer baseline of the global model's shape.

    python -m blt_core.train entropy --preset blt-tiny --data data/corpora/english --steps 2000 --out runs/entropy
    python -m blt_core.train blt --preset blt-tiny --entropy-model runs/entropy --target-patch-bytes 4 \
        --data data/corpora/english --steps 2000 --out runs/blt
    python -m blt_core.train bytes --preset blt-tiny --data data/corpora/english --steps 2000 --out runs/bytes

Each run folder gets the model (HF format: BltForCausalLM for `blt`, BltPatcher for the others),
`trainer_state.pt` (optimizer, step, random state: `--resume` continues from it), `log.jsonl`
(one line per log interval and evaluation) and `run.json` (the configuration and command).
AdamW with warmup and cosine decay, gradient clipping 1.0, bf16 autocast and optional
torch.compile on CUDA, a tqdm bar with loss, bytes/s and ETA.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .blt import BLT
from .checkpoint import load_byte_lm, save_byte_lm
from .config import preset
from .data import ByteCorpus
from .entropy import EntropyModel
from .eval import bits_per_byte, solve_threshold
from .flops import blt_training_flops, byte_lm_training_flops


@dataclass
class TrainConfig:
    kind: str                      # entropy | blt | bytes
    preset: str = "blt-tiny"
    data: str = "data/corpora/english"
    out: str = "runs/run"
    steps: int = 1000
    batch_size: int = 16
    seq_len: int = 512
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup: int = 100
    weight_decay: float = 0.1
    eval_every: int = 250
    eval_bytes: int = 100_000
    log_every: int = 10
    seed: int = 0
    device: str | None = None
    compile: bool = False
    entropy_model: str | None = None       # blt: checkpoint of the trained entropy model
    patching_mode: str = "entropy"         # blt
    threshold: float | None = None         # blt: entropy threshold (nats)
    target_patch_bytes: float | None = None  # blt: solve the threshold for this mean patch size
    max_patch_length: int | None = None
    patch_size: int | None = None          # blt: static patch size (default: the preset's)
    encoder_pooling: str = "cross_attention"  # blt: or "mean" (the pooling ablation)


def build_model(tc: TrainConfig, device):
    """The model to train and, for BLT, its patching settings."""
    cfg = preset(tc.preset)
    if tc.kind == "entropy":
        return EntropyModel(cfg.entropy_model)
    if tc.kind == "bytes":
        return EntropyModel(cfg.global_model)
    if tc.kind != "blt":
        raise ValueError(f"kind must be entropy, blt or bytes, found {tc.kind!r}")
    entropy = load_byte_lm(tc.entropy_model, device=device, dtype=torch.float32) if tc.entropy_model else None
    if entropy is None and tc.patching_mode.startswith("entropy"):
        raise ValueError("training a BLT with entropy patching needs --entropy-model (a trained entropy model)")
    cfg = cfg.replace(entropy_model=entropy.cfg if entropy else None, patching_mode=tc.patching_mode,
                      max_patch_length=tc.max_patch_length, patch_size=tc.patch_size or cfg.patch_size,
                      encoder_pooling=tc.encoder_pooling)
    model = BLT(cfg)
    if entropy is not None:
        model.entropy_model.load_state_dict(entropy.state_dict())
        model.entropy_model.requires_grad_(False)
    return model


def loss_of(model, ids: torch.Tensor) -> torch.Tensor:
    """Mean next-byte cross-entropy (nats) of ids (B, T+1): predict ids[:, 1:] from ids[:, :-1]."""
    logits = model(ids[:, :-1])
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def lr_at(step: int, tc: TrainConfig) -> float:
    if step < tc.warmup:
        return tc.lr * (step + 1) / tc.warmup
    progress = (step - tc.warmup) / max(1, tc.steps - tc.warmup)
    return tc.lr * (tc.min_lr_ratio + (1 - tc.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def save(model, tc: TrainConfig, out: Path):
    if isinstance(model, BLT):
        model.save_pretrained(out)
    else:
        save_byte_lm(model, out)


def train(tc: TrainConfig, resume: bool = False, argv: list[str] | None = None) -> dict:
    out = Path(tc.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(tc.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(tc.seed)
    random.seed(tc.seed)
    np.random.seed(tc.seed)
    model = build_model(tc, device).to(device)
    train_data = ByteCorpus(Path(tc.data) / "train.bin", tc.seq_len, seed=tc.seed)
    heldout = ByteCorpus(Path(tc.data) / "heldout.bin", tc.seq_len)
    if isinstance(model, BLT) and model.config.patching_mode.startswith("entropy"):
        threshold = tc.threshold
        if threshold is None:
            if tc.target_patch_bytes is None:
                raise ValueError("a BLT with entropy patching needs --threshold or --target-patch-bytes")
            threshold = solve_threshold(model, heldout, tc.target_patch_bytes, device)
        model.config.patching_threshold = threshold
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr, betas=(0.9, 0.95),
                            fused=device.type == "cuda")
    step = 0
    state_file = out / "trainer_state.pt"
    if resume and state_file.is_file():
        state = torch.load(state_file, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
        train_data.rng.bit_generator.state = state["data_rng"]
        torch.set_rng_state(state["torch_rng"])
    run_info = {"train_config": asdict(tc), "command": " ".join(["python -m blt_core.train"] + (argv or [])),
                "parameters": sum(p.numel() for p in params), "device": str(device)}
    if isinstance(model, BLT):
        run_info["model_config"] = asdict(model.config)
    (out / "run.json").write_text(json.dumps(run_info, indent=2, default=str))
    step_fn = torch.compile(loss_of) if tc.compile and device.type == "cuda" else loss_of
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    log = open(out / "log.jsonl", "a")
    bytes_per_step = tc.batch_size * tc.seq_len
    bar = tqdm(total=tc.steps, initial=step, desc=f"train {tc.kind}", unit="step", dynamic_ncols=True)
    t_last, bytes_since, losses = time.perf_counter(), 0, []
    result = {}
    model.train()
    while step < tc.steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, tc)
        ids = train_data.batch(tc.batch_size).to(device)
        with autocast:
            loss = step_fn(model, ids)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        losses.append(loss.item())
        bytes_since += bytes_per_step
        if step % tc.log_every == 0 or step == tc.steps:
            now = time.perf_counter()
            rate = bytes_since / (now - t_last)
            row = {"step": step, "loss": float(np.mean(losses)), "bpb": float(np.mean(losses)) / math.log(2),
                   "lr": lr_at(step - 1, tc), "bytes_per_s": round(rate), "bytes_seen": step * bytes_per_step}
            log.write(json.dumps(row) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{row['loss']:.3f}", bytes_s=f"{rate:,.0f}")
            t_last, bytes_since, losses = now, 0, []
        bar.update(1)
        if step % tc.eval_every == 0 or step == tc.steps:
            model.eval()
            result = evaluate_run(model, tc, heldout, device, step)
            log.write(json.dumps(result) + "\n")
            log.flush()
            model.train()
            save(model, tc, out)
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                        "data_rng": train_data.rng.bit_generator.state, "torch_rng": torch.get_rng_state()},
                       state_file)
    bar.close()
    log.close()
    return result


def evaluate_run(model, tc: TrainConfig, heldout: ByteCorpus, device, step: int) -> dict:
    ev = bits_per_byte(model, heldout, device, max_bytes=tc.eval_bytes)
    n_bytes = step * tc.batch_size * tc.seq_len
    if isinstance(model, BLT):
        flops = blt_training_flops(model.config, n_bytes, ev.get("mean_patch_bytes", 1.0), tc.seq_len)
    else:
        flops = byte_lm_training_flops(model.cfg, n_bytes, tc.seq_len)
    return {"eval_step": step, "heldout_bpb": ev["bpb"], "mean_patch_bytes": ev.get("mean_patch_bytes"),
            "train_bytes": n_bytes, "train_flops": flops,
            "threshold": model.config.patching_threshold if isinstance(model, BLT) else None}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m blt_core.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=["entropy", "blt", "bytes"])
    defaults = TrainConfig(kind="entropy")
    for name, value in asdict(defaults).items():
        if name == "kind":
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            ap.add_argument(flag, action="store_true")
        else:
            kind = {int: int, float: float}.get(type(value), str)
            if name in ("threshold", "target_patch_bytes"):
                kind = float
            if name in ("max_patch_length", "patch_size"):
                kind = int
            ap.add_argument(flag, type=kind, default=value)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/trainer_state.pt")
    args = vars(ap.parse_args(argv))
    resume = args.pop("resume")
    try:
        result = train(TrainConfig(**args), resume=resume, argv=argv)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
