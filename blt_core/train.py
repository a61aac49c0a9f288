"""Training: the entropy model, the BLT (patched by a frozen entropy model in real time), and a
byte-level transformer baseline of the global model's shape, on one process or data-parallel.

    python -m blt_core.train entropy --preset blt-tiny --data data/corpora/english --steps 2000 --out runs/entropy
    python -m blt_core.train blt --preset blt-tiny --entropy-model runs/entropy --target-patch-bytes 4 \
        --data data/corpora/english --steps 2000 --out runs/blt
    python -m blt_core.train bytes --preset blt-tiny --data data/corpora/english --steps 2000 --out runs/bytes
    torchrun --nproc_per_node=2 -m blt_core.train blt ...      # the same run on 2 GPUs (DDP)

Each run folder gets the model (HF format: BltForCausalLM for `blt`, BltPatcher for the others),
`trainer_state.pt` (optimizer, step, data generator and random state: `--resume` continues from
it, on any number of processes), `log.jsonl` (one line per log interval, with bytes/s, TFLOP/s
and MFU, and one per evaluation) and `run.json` (the configuration and command); only rank 0
writes them. AdamW (fused on CUDA) with warmup and cosine decay, gradient clipping 1.0, bf16
autocast, TF32 and optional torch.compile on CUDA, a tqdm bar with loss, bytes/s, MFU and ETA.

`--batch-size` is the global batch in rows of `--seq-len` bytes: every process takes its share of
the same batch (blt_core/batches.py), in micro-batches of `--micro-batch` rows whose gradients
add up before the step, so the run takes the same steps on the same bytes at any world size and
micro-batch size, and the logged loss is the mean over the whole batch.
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
import torch.nn as nn
import torch.nn.functional as F
from torch.profiler import record_function
from tqdm import tqdm

from .batches import RankBatches
from .blt import BLT
from .checkpoint import load_byte_lm, save_byte_lm
from .config import preset
from .data import ByteCorpus
from .distributed import Distributed
from .entropy import EntropyModel
from .eval import bits_per_byte, solve_threshold
from .flops import blt_training_flops, byte_lm_training_flops, peak_tflops


@dataclass
class TrainConfig:
    kind: str                      # entropy | blt | bytes
    preset: str = "blt-tiny"
    data: str = "data/corpora/english"
    out: str = "runs/run"
    steps: int = 1000
    batch_size: int = 16                   # global: rows per step over all processes
    micro_batch: int | None = None         # rows per forward/backward on a process (None: its whole share)
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
    patch_bucket: int = 64                 # blt, compiled: patch axis rounded up to a multiple (few shapes)
    peak_tflops: float | None = None       # bf16 peak of one device for MFU (None: from the GPU's name)
    entropy_model: str | None = None       # blt: checkpoint of the trained entropy model
    patching_mode: str = "entropy"         # blt
    threshold: float | None = None         # blt: entropy threshold (nats)
    target_patch_bytes: float | None = None  # blt: solve the threshold for this mean patch size
    threshold_data: str | None = None      # blt: the .bin split it is solved on (default: DATA/heldout.bin)
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


class NextByteLoss(nn.Module):
    """Mean next-byte cross-entropy (nats) of ids (B, T+1): predict ids[:, 1:] from ids[:, :-1].
    A BLT reads its patches from the start mask `starts` (B, T+1), computed beforehand without
    gradients. This is the module DDP wraps and torch.compile compiles: all that backward runs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, ids, starts=None, n_patches=None):
        x = ids[:, :-1]
        logits = self.model.logits(x, starts, n_patches) if starts is not None else self.model(x)
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


class Trainer:
    """One process's part of a run: the model, its optimizer and its batches. `step()` is one
    optimizer step over the next global batch; `state()` what `--resume` needs (the same on every
    rank, so rank 0 saves it and any world size loads it)."""

    def __init__(self, tc: TrainConfig, dist: Distributed, resume: bool = False):
        self.tc, self.dist = tc, dist
        device = self.device = dist.device
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(tc.seed)
        random.seed(tc.seed)
        np.random.seed(tc.seed)
        self.model = model = build_model(tc, device).to(device)
        self.is_blt = isinstance(model, BLT)
        self.heldout = ByteCorpus(Path(tc.data) / "heldout.bin", tc.seq_len)
        if self.is_blt and model.config.patching_mode.startswith("entropy"):
            threshold = tc.threshold
            if threshold is None:
                if tc.target_patch_bytes is None:
                    raise ValueError("a BLT with entropy patching needs --threshold or --target-patch-bytes")
                sample = ByteCorpus(tc.threshold_data, tc.seq_len) if tc.threshold_data else self.heldout
                threshold = dist.broadcast(solve_threshold(model, sample, tc.target_patch_bytes, device)
                                           if dist.is_main else None)
            model.config.patching_threshold = threshold
        local_rows = tc.batch_size // dist.world_size
        self.micro_batch = tc.micro_batch or local_rows
        if tc.batch_size % dist.world_size or local_rows % self.micro_batch:
            raise ValueError(f"--batch-size {tc.batch_size} must split into {dist.world_size} process(es) of "
                             f"whole micro-batches of {self.micro_batch} rows")
        self.batches = RankBatches(ByteCorpus(Path(tc.data) / "train.bin", tc.seq_len, seed=tc.seed),
                                   tc.batch_size, dist.rank, dist.world_size, device)
        self.params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in self.params if p.dim() >= 2]
        no_decay = [p for p in self.params if p.dim() < 2]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": tc.weight_decay},
                                      {"params": no_decay, "weight_decay": 0.0}], lr=tc.lr, betas=(0.9, 0.95),
                                     fused=device.type == "cuda")
        self.step_count = 0
        if resume and (Path(tc.out) / "trainer_state.pt").is_file():
            self.load_state(torch.load(Path(tc.out) / "trainer_state.pt", map_location=device, weights_only=False))
        self.compiled = tc.compile and device.type == "cuda"
        self.loss = dist.wrap(NextByteLoss(model))
        self.loss_fn = torch.compile(self.loss, dynamic=False) if self.compiled else self.loss
        self.start_mask = (torch.compile(model.start_mask, dynamic=False) if self.compiled and self.is_blt
                           else getattr(model, "start_mask", None))
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
        self.peak_tflops = peak_tflops(device, tc.peak_tflops)

    # ------------------------------------------------------------------ one step
    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step over the next global batch. Returns this rank's mean loss (nats)
        and the number of patches its rows were cut into (BLT; else 0), as device scalars. The
        only host sync is the patch counts a compiled BLT rounds up, read once per step for all
        micro-batches, so their forwards and backwards queue back to back. Phases are named for
        torch.profiler (patching, forward_backward, optimizer)."""
        for group in self.opt.param_groups:
            group["lr"] = lr_at(self.step_count, self.tc)
        ids = next(self.batches)                                         # (B / world, T+1)
        parts = ids.split(self.micro_batch)
        starts, n_patches = [None] * len(parts), [None] * len(parts)
        patches = torch.zeros((), dtype=torch.long, device=self.device)
        if self.is_blt:
            with record_function("patching"), torch.no_grad(), self.autocast:
                mask = self.start_mask(ids[:, :-1])                      # (B / world, T+1)
            patches = mask[:, :-1].sum()
            starts = mask.split(self.micro_batch)
            if self.compiled:
                bucket = self.tc.patch_bucket
                n_patches = [-(-n // bucket) * bucket for n in torch.stack([s.sum(1).max() for s in starts]).tolist()]
        loss_sum = torch.zeros((), device=self.device)
        for i, part in enumerate(parts):
            weight = part.shape[0] / ids.shape[0]
            with record_function("forward_backward"), self.dist.grad_sync(self.loss, enabled=i == len(parts) - 1):
                with self.autocast:
                    loss = self.loss_fn(part, starts[i], n_patches[i])
                (loss * weight).backward()
            loss_sum += loss.detach() * weight
        with record_function("optimizer"):
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
        self.step_count += 1
        return loss_sum, patches

    def training_flops(self, n_bytes: float, mean_patch_bytes: float | None) -> float:
        """FLOPs of training on n_bytes (blt_core/flops.py), the entropy model's forward counted
        when the patching runs it."""
        if not self.is_blt:
            return byte_lm_training_flops(self.model.cfg, n_bytes, self.tc.seq_len)
        cfg = self.model.config
        return blt_training_flops(cfg, n_bytes, mean_patch_bytes, self.tc.seq_len,
                                  include_entropy_model=cfg.patching_mode.startswith("entropy"))

    def throughput(self, loss_sum: torch.Tensor, patches: torch.Tensor, steps: int, since: float) -> dict:
        """Loss and speed of the last `steps` steps, begun at time.perf_counter() `since`. Every
        rank calls this: the reductions over ranks wait for all of them and their devices, so the
        time is taken after them. bytes/s and TFLOP/s are global; MFU is over world_size devices'
        peak (None when the peak is unknown, e.g. on the CPU)."""
        n_bytes = steps * self.tc.batch_size * self.tc.seq_len
        loss = float(self.dist.mean(loss_sum / steps))
        mean_patch = n_bytes / max(1, int(self.dist.sum(patches))) if self.is_blt else None
        seconds = time.perf_counter() - since
        tflops = self.training_flops(n_bytes, mean_patch) / seconds / 1e12
        peak = self.peak_tflops * self.dist.world_size if self.peak_tflops else None
        row = {"loss": loss, "bpb": loss / math.log(2), "seconds": round(seconds, 3),
               "bytes_per_s": round(n_bytes / seconds), "tflops": float(f"{tflops:.4g}"),
               "mfu": float(f"{tflops / peak:.4g}") if peak else None}
        if self.is_blt:
            row["mean_patch_bytes"] = round(mean_patch, 3)
        return row

    # ------------------------------------------------------------------ resume
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step_count,
                "data_rng": self.batches.state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "world_size": self.dist.world_size}

    def load_state(self, state: dict):
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.step_count = state["step"]
        self.batches.load_state(state["data_rng"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if state.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), self.device)

    def close(self):
        self.batches.close()


def train(tc: TrainConfig, resume: bool = False, argv: list[str] | None = None) -> dict:
    """Run (or with `resume`, continue) a training run; returns the last evaluation. Under
    torchrun every process calls this; see the module docstring."""
    dist = Distributed.from_env(tc.device)
    trainer = None
    try:
        trainer = Trainer(tc, dist, resume)
        return _run(trainer, argv)
    finally:
        if trainer is not None:
            trainer.close()
        dist.close()


def _run(trainer: Trainer, argv: list[str] | None) -> dict:
    tc, dist, model = trainer.tc, trainer.dist, trainer.model
    out = Path(tc.out)
    launcher = (f"torchrun --nproc_per_node={dist.world_size} -m blt_core.train" if dist.parallel
                else "python -m blt_core.train")
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        run_info = {"train_config": asdict(tc), "command": " ".join([launcher] + (argv or [])),
                    "parameters": sum(p.numel() for p in trainer.params), "device": str(dist.device),
                    "world_size": dist.world_size, "micro_batch": trainer.micro_batch}
        if trainer.is_blt:
            run_info["model_config"] = asdict(model.config)
        (out / "run.json").write_text(json.dumps(run_info, indent=2, default=str))
    log = open(out / "log.jsonl", "a") if dist.is_main else None
    bar = tqdm(total=tc.steps, initial=trainer.step_count, desc=f"train {tc.kind}", unit="step",
               dynamic_ncols=True, disable=not dist.is_main)
    zeros = lambda dtype: torch.zeros((), dtype=dtype, device=dist.device)
    loss_sum, patches, steps_since, t_last = zeros(torch.float32), zeros(torch.long), 0, time.perf_counter()
    result = {}
    model.train()
    while trainer.step_count < tc.steps:
        step_loss, step_patches = trainer.step()
        loss_sum, patches, steps_since = loss_sum + step_loss, patches + step_patches, steps_since + 1
        step = trainer.step_count
        if step % tc.log_every == 0 or step == tc.steps:
            speed = trainer.throughput(loss_sum, patches, steps_since, since=t_last)
            row = {"step": step, **speed, "lr": lr_at(step - 1, tc), "bytes_seen": step * tc.batch_size * tc.seq_len}
            if log is not None:
                log.write(json.dumps(row) + "\n")
                log.flush()
            mfu = f"{row['mfu']:.1%}" if row["mfu"] is not None else "-"
            bar.set_postfix(loss=f"{row['loss']:.3f}", bytes_s=f"{row['bytes_per_s']:,}",
                            tflops=f"{row['tflops']:.3g}", mfu=mfu)
            loss_sum, patches, steps_since, t_last = zeros(torch.float32), zeros(torch.long), 0, time.perf_counter()
        bar.update(1)
        if step % tc.eval_every == 0 or step == tc.steps:
            t_eval = time.perf_counter()
            if dist.is_main:
                model.eval()
                result = evaluate_run(model, tc, trainer.heldout, dist.device, step)
                model.train()
                log.write(json.dumps(result) + "\n")
                log.flush()
                save(model, tc, out)
                torch.save(trainer.state(), out / "trainer_state.pt")
            result = dist.broadcast(result)
            t_last += time.perf_counter() - t_eval       # the evaluation is not training time
    bar.close()
    if log is not None:
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
            if name in ("threshold", "target_patch_bytes", "peak_tflops"):
                kind = float
            if name in ("max_patch_length", "patch_size", "micro_batch"):
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
    if Distributed.rank_from_env() == 0:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
