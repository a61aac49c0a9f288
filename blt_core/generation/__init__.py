"""Exact incremental generation for BLT, with real-time patching.

    stepper.py    IncrementalBLT: the caches and per-row state, and the public step methods
    schedules.py  the loops that drive it: the host loop (eager, compiled, CUDA graphs of its
                  parts) and GreedyGraph (one CUDA graph per greedy byte)
    driver.py     prompts in, ByteEvents and GenerationResults out (stream_batch, generate, stream)
    sessions.py   the stepper and schedule of the last call's shapes, kept for the next call
    batching.py   BatchEngine: continuous batching of many generations in one stepper
    prefill_graphs.py  the batch engine's prefills as CUDA graphs into kept steppers
    reference.py  generate_reference: the naive recompute-everything loop the others must match
    options.py    DecodeOptions (which schedule) and KernelConfig (the fused kernels' tuning)
    device_branch.py  a decoder-first byte as one graph whose patch part the GPU decides (CUDA
                  graph conditional nodes through the driver API)
    decode_kernels.py   fused Triton layer steps (CUDA); imported only when asked for
"""
from .driver import ByteEvent, GenerationResult, generate, stream, stream_batch
from .options import DecodeOptions, KernelConfig
from .reference import generate_reference
from .stepper import IncrementalBLT, StepOutput

__all__ = ["ByteEvent", "DecodeOptions", "GenerationResult", "IncrementalBLT", "KernelConfig", "StepOutput",
           "generate", "generate_reference", "stream", "stream_batch"]
