"""Training throughput: timed optimizer steps of blt_core.train's own Trainer, on one process or
under torchrun (the same flags), so what is timed is what training runs: patching, micro-batches,
bf16 autocast, torch.compile, DDP, fused AdamW.

    python bench/train_throughput.py --preset blt-base --batch-size 64 --micro-batch 16 --seq-len 4096 \
        --compile --out bench/results/train_h100_blt_base.json
    torchrun --standalone --nproc_per_node=2 bench/train_throughput.py --preset blt-base --batch-size 64 \
        --micro-batch 16 --seq-len 4096 --compile --out bench/results/train_2xh100_blt_base.json
    python bench/train_throughput.py --preset blt-tiny --batch-size 4 --seq-len 256 --steps 3 --warmup 1   # CPU smoke

The data are random bytes (or `--data`, a folder with train.bin and heldout.bin). With entropy
patching the entropy model is random too (or `--entropy-model`) and its threshold is solved on the
held-out bytes for `--target-patch-bytes`, as training does; `--patching static` or `space` leave
it out of the loop. Warm-up steps (compilation) are not timed. One JSON object, printed and with
`--out` written: global bytes/s, TFLOP/s by blt_core/flops.py's accounting, MFU against the bf16
peak of the devices (null on the CPU), peak memory of rank 0, mean patch size, the command.
`--profile N` then profiles N more steps with torch.profiler and prints the kernels and the
trainer's phases (patching, forward_backward, optimizer) by device time; `--trace FILE` also
writes the Chrome trace (rank 0).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blt_core.checkpoint import save_byte_lm  # noqa: E402
from blt_core.config import preset  # noqa: E402
from blt_core.distributed import Distributed  # noqa: E402
from blt_core.entropy import EntropyModel  # noqa: E402
from blt_core.train import Trainer, TrainConfig  # noqa: E402


def random_corpus(folder: Path, train_bytes: int, seed: int = 0) -> Path:
    """train.bin and heldout.bin of seeded random bytes (the same on every rank)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.bin").write_bytes(rng.integers(0, 256, train_bytes, dtype=np.uint8).tobytes())
    (folder / "heldout.bin").write_bytes(rng.integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
    return folder


def random_entropy_model(folder: Path, preset_name: str, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    save_byte_lm(EntropyModel(preset(preset_name).entropy_model), folder)
    return folder


def synchronize(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_steps(trainer: Trainer, n: int):
    """n steps; the loss and patch count summed on the device."""
    loss, patches = torch.zeros((), device=trainer.device), torch.zeros((), dtype=torch.long, device=trainer.device)
    for _ in range(n):
        step_loss, step_patches = trainer.step()
        loss, patches = loss + step_loss, patches + step_patches
    return loss, patches


def profile(trainer: Trainer, steps: int, trace: str | None) -> str:
    """Profile `steps` steps; the table of the top device-time entries (kernels and phases)."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if trainer.device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        run_steps(trainer, steps)
        synchronize(trainer.device)
    with tempfile.TemporaryDirectory() as tmp:
        path = trace or str(Path(tmp) / "trace.json")
        prof.export_chrome_trace(path)
        kinds = kernel_kinds(path, steps) if trainer.device.type == "cuda" else []
    sort = "self_device_time_total" if trainer.device.type == "cuda" else "self_cpu_time_total"
    phases = [e for e in prof.key_averages() if e.key in ("patching", "forward_backward", "optimizer")]
    lines = [f"{e.key}: cpu {e.cpu_time_total / 1e3 / steps:.1f} ms/step, device "
             f"{getattr(e, 'device_time_total', 0) / 1e3 / steps:.1f} ms/step" for e in phases]
    return "\n".join(lines + kinds + [prof.key_averages().table(sort_by=sort, row_limit=40)])


KERNEL_KINDS = (("matmul", ("gemm", "cutlass", "xmma", "nvjet", "cublas")),
                ("attention", ("flash", "fmha", "attention", "sdpa", "dot_do_o")),
                ("triton (fused by inductor)", ("triton",)),
                ("copy/fill", ("memcpy", "memset", "copy_", "fill")),
                ("nccl", ("nccl",)),
                ("index/scatter/gather", ("index", "scatter", "gather", "embedding")))


def kernel_kinds(trace: str, steps: int) -> list[str]:
    """Device time per step by kind of kernel (matmul, attention, inductor's fused Triton...),
    from the kernels of a Chrome trace (the profiler's own averages mix in the CPU ops')."""
    totals: dict[str, float] = {}
    for e in json.loads(Path(trace).read_text())["traceEvents"]:
        if e.get("ph") != "X" or e.get("cat") not in ("kernel", "gpu_memcpy", "gpu_memset"):
            continue
        name = e["name"].lower()
        kind = next((k for k, words in KERNEL_KINDS if any(w in name for w in words)), "other")
        totals[kind] = totals.get(kind, 0.0) + e["dur"] / 1e3 / steps
    whole = sum(totals.values()) or 1.0
    return [f"kernels {k}: {ms:.1f} ms/step ({100 * ms / whole:.0f} %)"
            for k, ms in sorted(totals.items(), key=lambda kv: -kv[1])]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["blt", "bytes", "entropy"], default="blt")
    ap.add_argument("--preset", default="blt-base")
    ap.add_argument("--batch-size", type=int, default=64, help="global rows per step")
    ap.add_argument("--micro-batch", type=int, help="rows per forward/backward on a process")
    ap.add_argument("--seq-len", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation)")
    ap.add_argument("--patching", choices=["entropy", "static", "space"], default="entropy")
    ap.add_argument("--target-patch-bytes", type=float, default=4.0)
    ap.add_argument("--entropy-model", help="a trained entropy model (default: a random one)")
    ap.add_argument("--data", help="a corpus folder (default: random bytes)")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--patch-bucket", type=int, default=64)
    ap.add_argument("--peak-tflops", type=float)
    ap.add_argument("--device")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="then profile N steps")
    ap.add_argument("--trace", help="Chrome trace file of the profiled steps")
    ap.add_argument("--out")
    args = ap.parse_args(argv)

    dist = Distributed.from_env(args.device)
    scratch = tempfile.TemporaryDirectory(prefix="train_throughput_")
    try:
        work = Path(scratch.name)
        data = Path(args.data) if args.data else random_corpus(work / "data", 8 * 2**20)
        entropy = args.entropy_model
        if args.kind == "blt" and args.patching == "entropy" and entropy is None:
            entropy = str(random_entropy_model(work / "entropy", args.preset))
        tc = TrainConfig(kind=args.kind, preset=args.preset, data=str(data), out=str(work / "run"),
                         steps=args.warmup + args.steps + args.profile, batch_size=args.batch_size,
                         micro_batch=args.micro_batch, seq_len=args.seq_len, warmup=1, device=args.device,
                         compile=args.compile, patch_bucket=args.patch_bucket, peak_tflops=args.peak_tflops,
                         entropy_model=entropy if args.kind == "blt" else None, patching_mode=args.patching,
                         target_patch_bytes=args.target_patch_bytes)
        trainer = Trainer(tc, dist)
        try:
            t = time.perf_counter()
            run_steps(trainer, args.warmup)
            synchronize(dist.device)
            warmup_s = time.perf_counter() - t
            if dist.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dist.device)
            dist.barrier()
            t = time.perf_counter()
            loss, patches = run_steps(trainer, args.steps)
            speed = trainer.throughput(loss, patches, args.steps, since=t)      # waits for every device
            report = profile(trainer, args.profile, args.trace if dist.is_main else None) if args.profile else None
        finally:
            trainer.close()
    finally:
        scratch.cleanup()
        dist.close()

    launcher = (f"torchrun --standalone --nproc_per_node={dist.world_size} bench/train_throughput.py"
                if dist.parallel else "python bench/train_throughput.py")
    cfg = preset(args.preset)
    result = {
        "bench": "train_throughput", "kind": args.kind, "preset": args.preset,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "trainable_parameters": sum(p.numel() for p in trainer.params),
        "hash_table_parameters": cfg.n_hash_tables * cfg.hash_vocab * cfg.encoder.dim if args.kind == "blt" else 0,
        "world_size": dist.world_size,
        "device": (torch.cuda.get_device_name(dist.device) if dist.device.type == "cuda"
                   else platform.processor() or "cpu"),
        "torch": torch.__version__, "batch_size": args.batch_size, "micro_batch": trainer.micro_batch,
        "seq_len": args.seq_len, "bytes_per_step": args.batch_size * args.seq_len, "patching": args.patching if args.kind == "blt" else None,
        "compile": trainer.compiled, "warmup_steps": args.warmup, "warmup_s": round(warmup_s, 1),
        "steps": args.steps, **speed, "step_ms": round(1e3 * speed["seconds"] / args.steps, 1),
        "peak_tflops_per_device": trainer.peak_tflops,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(dist.device) / 2**30, 2)
        if dist.device.type == "cuda" else None,
        "command": " ".join([launcher] + list(sys.argv[1:] if argv is None else argv)),
    }
    if dist.is_main:
        if report:
            print(report, file=sys.stderr)
        print(json.dumps(result))
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
