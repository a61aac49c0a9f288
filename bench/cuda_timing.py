"""Timing of captured CUDA graphs with device events (shared by the profiling scripts)."""
from __future__ import annotations

import torch


def median_replay_ms(graph: torch.cuda.CUDAGraph, reps: int) -> float:
    """Median over `reps` replays of the graph's device time, in milliseconds."""
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]
