"""Python's cyclic garbage collector in a serving worker: the long-lived heap frozen once the model
is loaded (and warm), and every collection's pause counted for /healthz.

A collection of the collector's oldest generation walks every tracked object still alive. Once a
model is loaded and warm, that is the whole heap of torch.compile, Triton and CUDA-graph objects,
which live as long as the worker: on an H100 serving blt-1b, one such collection paused the worker
for 417 ms, every stream and request with it (bench/README.md, "Garbage collection"). `freeze()`
collects once, then moves every object alive into the collector's permanent generation
(`gc.freeze`), which later collections skip. The worker holds one model for its whole life, so
nothing frozen is waiting to be freed; a frozen object is still freed by reference counting when
the last reference goes, only a reference cycle among frozen objects would stay.
"""
from __future__ import annotations

import gc
import threading
import time

GENERATIONS = 3


class GcPauses:
    """How many collections ran, per generation, and their longest and total pause in ms (from
    `gc.callbacks`, installed by `watch`). One per process: the collector is."""

    def __init__(self):
        self._lock = threading.Lock()
        self._started: float | None = None      # collections never overlap: they hold the GIL
        self.counts = [0] * GENERATIONS
        self.longest_ms = [0.0] * GENERATIONS
        self.total_ms = [0.0] * GENERATIONS
        self.installed = False

    def watch(self) -> None:
        """Start counting (once; later calls change nothing)."""
        with self._lock:
            if not self.installed:
                gc.callbacks.append(self._callback)
                self.installed = True

    def _callback(self, phase: str, info: dict) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._started = now
            return
        if self._started is None:               # installed during a collection
            return
        ms, g = 1000 * (now - self._started), info["generation"]
        self._started = None
        self.counts[g] += 1
        self.total_ms[g] += ms
        self.longest_ms[g] = max(self.longest_ms[g], ms)

    def describe(self) -> dict:
        """What /healthz reports: objects frozen, and per generation the collections counted,
        their longest and total pause (ms) since `watch`."""
        return {"frozen_objects": gc.get_freeze_count(),
                "collections": {str(g): {"count": self.counts[g], "longest_ms": round(self.longest_ms[g], 1),
                                         "total_ms": round(self.total_ms[g], 1)} for g in range(GENERATIONS)}}


PAUSES = GcPauses()


def freeze() -> int:
    """Collect what is garbage now, then freeze every object alive (see the module docstring).
    Returns how many objects are frozen in all."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
