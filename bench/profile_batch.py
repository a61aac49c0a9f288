"""Where the time of a batched byte step goes: the continuous-batching engine's step shapes (one
row with the fused kernels; `rows` rows through torch's layers, with their attention as a masked
SDPA over the whole cache or as the kernels' attention, which reads each row's keys only up to its
position), each timed as the engine runs it (sample, step graphs, one read-back per step), then
the top CUDA kernels of each.

    python3 bench/profile_batch.py --preset blt-1b --rows 8 --steps 64 --out bench/results/profile_batch_h200.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from kernel_config_sweep import kernel_config  # noqa: E402
from profile_generate import _kernel_rows  # noqa: E402
from blt_core import BLT, preset  # noqa: E402
from blt_core.generation import DecodeOptions, IncrementalBLT, KernelConfig  # noqa: E402
from blt_core.generation.schedules import SpeculativeStep, StepGraphs  # noqa: E402
from blt_core.sampling import SamplingParams  # noqa: E402

OPTIONS = DecodeOptions(cuda_graphs=True, compile=True, kernels=True)


def block_shape(spec: str):
    """'16x64x4' or '16x64x4x3' -> KernelConfig.block_shape giving BLOCK_N 16, BLOCK_K 64 (at most
    K's next power of two), 4 warps (and 3 pipeline stages; default 2) for several rows (one row
    keeps decode_kernels.block_config's), launched without PDL as block_config launches several
    rows."""
    import triton
    from blt_core.generation.decode_kernels import block_config
    block_n, block_k, warps, *stages = (int(x) for x in spec.split("x"))

    def shape(N, K, BP, epi, D):
        if BP == 1:
            return block_config(N, K, BP, epi, D)
        return {"BLOCK_N": block_n, "BLOCK_K": min(block_k, triton.next_power_of_2(K)), "LATE": False,
                "PREFETCH": False, "SPLIT": 1, "num_warps": warps, "num_stages": stages[0] if stages else 2,
                "PDL": False}
    return shape


def batch(model, rows: int, prompt: int, kernels: KernelConfig = KernelConfig()):
    """A stepper of `rows` rows over the whole byte context (its fused kernels as `kernels` says),
    each row a random prompt prefilled alone and loaded in, as the engine does."""
    inc = IncrementalBLT(model, rows, model.config.byte_context, kernels=kernels)
    gen = torch.Generator().manual_seed(0)
    for r in range(rows):
        ids = torch.randint(4, 260, (1, prompt + 13 * r), generator=gen).cuda()
        solo = IncrementalBLT(model, 1, ids.shape[1] + 8)
        solo.prefill(ids, torch.tensor([ids.shape[1]], device="cuda"))
        inc.load_row(r, solo, 0)
    return inc


@torch.no_grad()
def run_shape(inc, name, view, steps, options=OPTIONS, speculative=False):
    """`steps` engine-like steps of view (greedy), after warm-up: ms per step, bytes/s over its
    rows, global steps per byte, and the kernels of the timed steps. speculative: the engine's
    SpeculativeStep with the argmax inside its graph (one graph per byte, the global step on every
    byte), else StepGraphs (the host reads whether a patch completed). ms_per_step reads each
    step back before the next; speculative steps are also timed queued back to back, as the
    engine's host runs ahead of the GPU (queued_ms_per_step: the GPU's time, steadier)."""
    if speculative:
        spec = SpeculativeStep(view, options.compile, options.compile_tuning)
        greedy = SamplingParams(stop_at_eos=False)

        def one():
            return spec.step_greedy(greedy).t()[:3].tolist()
    else:
        graphs = StepGraphs(view, options)
        nxt = torch.zeros(view.B, dtype=torch.long, device="cuda")

        def one():
            nxt.copy_(view.logits.argmax(-1))
            out = graphs.step(nxt)
            return torch.stack([nxt.float(), out.entropy, out.global_step.float()]).tolist()

    t0 = time.perf_counter()
    for _ in range(8):                               # compile and capture every part
        one()
    warm = time.perf_counter() - t0
    torch.cuda.synchronize()
    t0, globals_ = time.perf_counter(), 0
    for _ in range(steps):
        globals_ += sum(one()[2])
    ms = 1000 * (time.perf_counter() - t0) / steps
    queued = None
    if speculative:
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        for _ in range(steps):
            spec.step_greedy(greedy)
        end.record()
        end.synchronize()
        queued = round(begin.elapsed_time(end) / steps, 3)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            one()
        torch.cuda.synchronize()
    per_stream, top = _kernel_rows(prof, steps)
    row = {"shape": name, "compile": options.compile, "compile_tuning": options.compile and options.compile_tuning,
           "rows": view.B, "ms_per_step": round(ms, 3), "queued_ms_per_step": queued,
           "bytes_per_s": round(1000 * view.B / ms, 1), "global_steps_per_byte": round(globals_ / steps / view.B, 3),
           "warmup_s": round(warm, 1), "mean_position": round(float(view.pos.float().mean()), 1),
           "streams": per_stream, "top_us_per_step": top[:12]}
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="blt-1b")
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=64, help="prompt bytes of row 0 (row r: + 13 r)")
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--shapes", nargs="+",
                    choices=["1", "batch", "kernels", "sdpa", "1-spec", "batch-spec", "kernels-spec"],
                    default=["1", "batch", "sdpa"],
                    help="1 row with the fused kernels; all rows through torch's layers with the kernels' "
                         "attention; all rows through the fused kernels (each weight tile read once for all "
                         "rows); through torch's layers with masked SDPA; 1-spec, batch-spec and kernels-spec: "
                         "the first three as the engine's speculative step")
    ap.add_argument("--kernel-blocks", nargs="+", default=[],
                    help="with --shapes kernels or kernels-spec: also these block shapes of the batched "
                         "matrix-vector kernel, each BLOCK_NxBLOCK_KxWARPS[xSTAGES] (e.g. 16x64x4, 32x128x4x4)")
    ap.add_argument("--kernel-configs", nargs="+", default=[""],
                    help="with --shapes kernels or kernels-spec: the default block shapes under each of these "
                         "KernelConfig settings in turn, each 'field=int,...' (e.g. long_k_split=1; '' the defaults)")
    ap.add_argument("--no-compile", action="store_true",
                    help="CUDA graphs of the eager parts (no torch.compile): how much of the warm-up and the "
                         "step compiling buys")
    ap.add_argument("--no-tuning", action="store_true",
                    help="compile without inductor's coordinate-descent tuning: how much of the warm-up the "
                         "tuning takes and what it buys per step")
    ap.add_argument("--out")
    args = ap.parse_args()
    options = DecodeOptions(cuda_graphs=True, compile=not args.no_compile, compile_tuning=not args.no_tuning,
                            kernels=True)
    torch.manual_seed(0)
    model = BLT(preset(args.preset)).to("cuda", torch.bfloat16).eval()
    results = []
    if "1" in args.shapes:
        inc = batch(model, args.rows, args.prompt)
        results.append(run_shape(inc, "1 row, fused kernels", inc.rows(1), args.steps, options))
    if "batch" in args.shapes:
        inc = batch(model, args.rows, args.prompt)
        results.append(run_shape(inc, f"{args.rows} rows, torch layers + kernel attention",
                                 inc.rows(args.rows, kernels=False), args.steps, options))
    if "1-spec" in args.shapes:
        inc = batch(model, args.rows, args.prompt)
        results.append(run_shape(inc, "1 row, fused kernels, speculative", inc.rows(1), args.steps, options, True))
    if "batch-spec" in args.shapes:
        inc = batch(model, args.rows, args.prompt)
        results.append(run_shape(inc, f"{args.rows} rows, torch layers + kernel attention, speculative",
                                 inc.rows(args.rows, kernels=False), args.steps, options, True))
    for shape in ("kernels", "kernels-spec"):
        if shape not in args.shapes:
            continue
        variants = [(None, spec) for spec in args.kernel_configs] + [(blocks, "") for blocks in args.kernel_blocks]
        for blocks, spec in variants:
            config = KernelConfig(block_shape=block_shape(blocks)) if blocks else kernel_config(spec)
            kernel_options = replace(options, kernel_config=config)
            inc = batch(model, args.rows, args.prompt, kernel_options.kernel_config)
            name = f"{args.rows} rows, fused kernels" + (", speculative" if shape == "kernels-spec" else "")
            name += f" {blocks}" if blocks else f", {spec or 'defaults'}"
            results.append(run_shape(inc, name, inc.rows(args.rows), args.steps, kernel_options,
                                     shape == "kernels-spec"))
    if "sdpa" in args.shapes:
        inc = batch(model, args.rows, args.prompt)
        sdpa = inc.rows(args.rows, kernels=False)
        sdpa.attention_kernel = None
        results.append(run_shape(inc, f"{args.rows} rows, torch layers + masked SDPA", sdpa, args.steps, options))
    doc = {"command": "python3 " + " ".join(sys.argv), "device": torch.cuda.get_device_name(),
           "torch": torch.__version__, "preset": args.preset, "results": results}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
