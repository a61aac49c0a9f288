"""The training batches of one rank: its rows of each global batch, made ready ahead of time.

Every rank draws the same global batch (B, T+1) from the corpus's one seeded generator and keeps
its own B / world_size consecutive rows, so the sequence of global batches, and with it the loss
curve, does not depend on how many processes share it. A thread draws the batches a few steps
ahead (in pinned memory when they go to a GPU, so the copy is asynchronous), off the path of the
training step. `state()` is the generator's state after the last batch handed out (not after the
ones drawn ahead): restored with `load_state`, on any world size, it continues the same sequence.
"""
from __future__ import annotations

import copy
import queue
import threading

import torch


class RankBatches:
    def __init__(self, corpus, global_batch: int, rank: int = 0, world_size: int = 1,
                 device: torch.device | str = "cpu", ahead: int = 2):
        if global_batch % world_size:
            raise ValueError(f"the global batch ({global_batch} rows) must divide by the number of "
                             f"processes ({world_size})")
        self.corpus, self.global_batch = corpus, global_batch
        self.rows = slice(rank * global_batch // world_size, (rank + 1) * global_batch // world_size)
        self.device = torch.device(device)
        self.ahead = ahead
        self._state = copy.deepcopy(corpus.rng.bit_generator.state)
        self._queue: queue.Queue | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def state(self) -> dict:
        """The generator state that draws the next global batch this iterator will hand out."""
        return copy.deepcopy(self._state)

    def load_state(self, state: dict):
        """Continue from a `state()` (before the first batch is taken)."""
        if self._thread is not None:
            raise RuntimeError("load_state must come before the first batch")
        self.corpus.rng.bit_generator.state = copy.deepcopy(state)
        self._state = copy.deepcopy(state)

    def _draw(self):
        pin = self.device.type == "cuda"
        if pin:   # pinning from this thread must not open a context on GPU 0 for every rank
            torch.cuda.set_device(self.device)
        try:
            while not self._stop.is_set():
                rows = self.corpus.batch(self.global_batch)[self.rows]        # (B / world, T+1)
                item = (rows.pin_memory() if pin else rows, copy.deepcopy(self.corpus.rng.bit_generator.state))
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except Exception as err:                 # handed to the training loop, which raises it
            self._queue.put(err)

    def __iter__(self):
        return self

    def __next__(self) -> torch.Tensor:
        """(B / world_size, T+1) ids of this rank, on the device."""
        if self._thread is None:
            self._queue = queue.Queue(maxsize=self.ahead)
            self._thread = threading.Thread(target=self._draw, name="batches", daemon=True)
            self._thread.start()
        item = self._queue.get()
        if isinstance(item, Exception):
            raise item
        rows, self._state = item
        return rows.to(self.device, non_blocking=True)

    def close(self):
        """Stop the drawing thread (the corpus generator is then ahead of `state()`)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
