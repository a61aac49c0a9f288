"""Decode options: which schedule drives the stepper, and how the fused kernels are launched.

Every choice decodes the same bytes as the eager path (the tests compare them); they differ in
speed only. `DecodeOptions.fastest` picks the fastest exact choice for a device and sampling.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable

import torch

from ..sampling import SamplingParams


@dataclass(frozen=True)
class KernelConfig:
    """Launch tuning of the fused Triton layer steps (decode_kernels.py). The defaults were
    measured best on an H100 (bench/README.md); benchmarks and tests pass their own."""
    # Programmatic dependent launch (sm_90+): each kernel starts loading its weights while the one
    # before it finishes. None: on where the GPU has it.
    pdl: bool | None = None
    # Causal attention loads its first tile of earlier keys before waiting for the previous kernel.
    early_keys: bool = True
    # Self-attention's launch shape: programs per head, keys per tile, warps per program. One warp
    # was fastest on an H100 for both head widths of blt-1b (bench/profile_layer_step.py --attention).
    attention_splits: int = 32
    # With B rows, attention_splits // B programs per head, at least this many: 8 per head at 8
    # rows took 10.1 us a global layer where 32 took 16.3 (bench/attention_sweep.py, H100).
    attention_min_splits: int = 8
    attention_block: int = 16
    attention_warps: int = 1
    # A row's keys shared among only as many of those programs as give each at least this many
    # (the rest do nothing, and the merge waits for fewer shares); 0: among all of them. 16 (one
    # tile) took the library on an H100 from 665.1-667.3 to 670.0-670.2 bytes/s at one byte per
    # patch, and from 1,398.6-1,399.6 to 1,410.6-1,412.1 at static patches of 4; 8 gave 668.5, 32
    # 654.6 (bench/kernel_config_sweep.py, bench/long_patches.py --kernel-configs).
    attention_min_keys: int = 16
    # Several rows (tensor-core tiles) where K is at least twice N (the MLP's down projection): K
    # shared among this many programs per block of outputs, summed in share order by the block's
    # last program. 4 took blt-1b's global down projection at 8 rows from 13.1 to 11.9 us, the
    # decoder's from 7.2 to 6.1 (H100, bench/matvec_sweep.py --splits --handed-stats); elsewhere
    # a split was slower. 1: unsplit.
    long_k_split: int = 4
    # The one-row matrix-vector kernels' eviction policy for weights, which a step reads once:
    # first out of L2 took the library's batch-1 rate on an H100 from 665.4-666.8 to 671.0
    # bytes/s; not kept in L1 (.cg, which cannot be combined with it) to 670.2
    # (bench/kernel_config_sweep.py, kernel_config_sweep_h100_blt1b_weight_loads.jsonl). Several
    # rows keep the default policy: with it there too, 8 streams through the server gave
    # 3,101-3,350 bytes/s against 3,406-3,419 without, on one lease (bench/README.md). "": default.
    weight_eviction: str = "evict_first"
    # One row: the decoder's cross-attention over its patch's slots is computed inside its output
    # projection's programs (decode_kernels.cross_output), one launch fewer per layer.
    cross_in_output: bool = True
    # (N outputs, K inputs, rows BP, epilogue, head width D) -> the matrix-vector kernel's block
    # shape, on any device. None: decode_kernels.block_config on CUDA, INTERPRETER_BLOCK in
    # Triton's CPU interpreter.
    block_shape: Callable[[int, int, int, int, int], dict] | None = None


@dataclass(frozen=True)
class DecodeOptions:
    """How generation runs; the eager host loop (all False) is the reference.

    cuda_graphs  replay the step's three parts (byte, patch, decoder) as CUDA graphs (CUDA only;
                 ignored elsewhere)
    compile      torch.compile the step's parts
    compile_tuning  with compile: inductor's coordinate-descent tuning of the compiled kernels
                 (slower compile; bench/README.md has the measured trade)
    speculative  each byte always takes the global step and keeps it where a patch completed,
                 with no host decision inside (`SpeculativeStep`): in `generate`, greedy without
                 repetition penalty only, one CUDA graph per byte with the argmax inside
                 (`GreedyGraph`); in the batch engine, any sampling (rows sample outside it);
                 fastest when most bytes end a patch
    decoder_first  host-decided steps (`DecoderFirstStep`) whose decoder step runs beside the
                 entropy model on the guess that no patch completes, and again after the global
                 step where one did: fastest at several bytes per patch. Any sampling. With
                 speculative too, a lone row's greedy steps (in `generate` and in the batch
                 engine) switch between the two by how many of them complete a patch
                 (schedules.SPECULATIVE_FROM), several rows' take the speculative step, and
                 sampled ones in `generate` are decoder-first
    kernels      each layer's single-row step as fused Triton kernels (CUDA, or Triton's
                 interpreter), launched as `kernel_config` says
    device_decides  with decoder_first and cuda_graphs on CUDA: greedy decoder-first bytes run
                 their patch part where the GPU decides it (CUDA graph conditional nodes,
                 device_branch.py), so the host queues bytes without reading their boundary
                 flags; needs the CUDA toolkit's NVRTC and device runtime
                 (`device_branch.unavailable()` says why not; the steps then stay host-decided)
    """
    cuda_graphs: bool = False
    compile: bool = False
    compile_tuning: bool = True
    speculative: bool = False
    decoder_first: bool = False
    kernels: bool = False
    kernel_config: KernelConfig = KernelConfig()
    device_decides: bool = False

    @classmethod
    def fastest(cls, device, params: SamplingParams | None = None) -> DecodeOptions:
        """The fastest exact options on `device` for `params` (None: greedy): on CUDA, CUDA graphs
        of compiled parts with the fused kernels (when Triton is there), decoder-first steps
        (decided on the device where it can: device_branch.py), and for greedy decoding without
        repetition penalty speculative ones too (a lone row takes them while most of its bytes
        end a patch); elsewhere the eager path."""
        if torch.device(device).type != "cuda":
            return cls()
        from . import device_branch
        params = params or SamplingParams()
        return cls(cuda_graphs=True, compile=True, kernels=importlib.util.find_spec("triton") is not None,
                   speculative=params.greedy and params.repetition_penalty == 1.0, decoder_first=True,
                   device_decides=device_branch.unavailable() is None)
