"""Timing of captured CUDA graphs with device events, reading torch.profiler's trace, and writing
a GPU script's rows with the command that made them (shared by the profiling scripts)."""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

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


def trace_events(prof) -> list[dict]:
    """The events of a profile's Chrome trace (which, unlike key_averages, keeps streams)."""
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        prof.export_chrome_trace(path)
        with open(path) as f:
            return json.load(f)["traceEvents"]
    finally:
        os.remove(path)


def busy_us(spans) -> float:
    """Time covered by the union of (start, end) spans (dependent launches overlap)."""
    busy, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        busy += max(0.0, b - max(a, end))
        end = max(end, b)
    return busy


def write_rows(path: Path, rows: list[dict]) -> None:
    """rows to path as JSON lines after a head row: the command that made them (run from the
    repository root), the GPU and torch's version."""
    head = {"command": " ".join(["python3", *sys.argv]), "device": torch.cuda.get_device_name(),
            "torch": torch.__version__}
    path.write_text("".join(json.dumps(r) + "\n" for r in [head, *rows]))
