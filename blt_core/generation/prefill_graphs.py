"""Prefills replayed as CUDA graphs, for the batch engine.

An eager prefill of blt-1b launches ~2,600 kernels, one Python call each: ~60 ms on an H100 for
~12 ms of GPU work, and every new request waits for it before its first byte (bench/README.md).
`PrefillGraphs` keeps one stepper per row count it serves, a few hundred positions long, and
prefills into it in the stepper's four parts (`IncrementalBLT.prefill`):

    prefill_entropies     the entropy model over the prompts   CUDA graph per (rows, positions)
    prefill_patches       the boundaries by the request's rule  eager (a few launches; the rule
                                                                 and its threshold vary freely)
    prefill_patch_count   the global model's patches            one read from the device
    prefill_rest          encoder, global model, decoder, state  CUDA graph per (rows, positions,
                                                                 patches)

The first prefill of a row count captures every shape it can meet: each length the engine pads
prompts to (PREFILL_ROUND) up to POSITIONS, with each patch count the global model's slots are
rounded to (18 graphs a row count at 256 positions). In the app that is its warm-up's first
prefills (blt-1b's server on an H100 was ready after 40.6 s; 29.9 s, on another machine, when it
captured each shape as it first came). Capturing then and never later keeps captures out of the
serving: a capture in one thread fails another thread's device-wide synchronize (and is lost
itself), as a CUDA test found when its own eager runs met a capture. The graphs replay over input
buffers kept per shape, and share one memory pool: they run one at a time and keep nothing in it.

The engine copies the prefilled rows into its batch (`IncrementalBLT.load_row`) as from an eager
prefill. A group of fewer prompts than a kept stepper's rows is padded with copies of its first
prompt (rows are independent; the copies are not loaded), so the engine keeps steppers for one
row and for all its slots only. Prompts longer than the kept steppers (POSITIONS), or of a shape
without a graph (its capture failed, or a length the engine did not round), prefill eagerly.
Without `cuda_graphs` the same parts run eagerly (the CPU tests' check of everything but the
capture).
"""
from __future__ import annotations

import logging
import time

import torch

from ..patching import PatchingParams
from .schedules import capture
from .stepper import PREFILL_ROUND, IncrementalBLT

log = logging.getLogger(__name__)
# Positions of the kept steppers: prompts (rounded up to PREFILL_ROUND) up to this many bytes
# prefill from graphs. blt-1b keeps ~0.3 MB of caches a position and row (its global model's
# 25 layers at 2,048 wide): ~80 MB for one row and ~620 MB for 8 at 256 positions.
POSITIONS = 256


class PrefillGraphs:
    def __init__(self, model, rows: tuple[int, ...], positions: int = POSITIONS, cuda_graphs: bool = True):
        self.model, self.sizes, self.positions = model, sorted(set(rows)), positions
        self.steppers: dict[int, IncrementalBLT] = {}
        self.inputs: dict[tuple[int, int], dict[str, torch.Tensor]] = {}
        self.graphs: dict | None = {} if cuda_graphs else None
        self.pool = torch.cuda.graph_pool_handle() if cuda_graphs else None
        self.failed: set = set()                           # shapes whose capture failed: eager

    def rows_for(self, n: int, positions: int) -> int | None:
        """The kept stepper's rows that a prefill of n prompts of `positions` (padded) takes, or
        None: it does not fit any."""
        if positions > self.positions:
            return None
        return next((size for size in self.sizes if size >= n), None)

    @torch.no_grad()
    def prefill(self, ids: torch.Tensor, lengths: torch.Tensor, patching: PatchingParams) -> IncrementalBLT:
        """ids (n, T0) right-padded prompts with true lengths (n,) (rows_for(n, T0) not None) ->
        the kept stepper, its first n rows prefilled as `IncrementalBLT.prefill` would. Its state
        stays until the next prefill of that many rows: load its rows before then."""
        n, T0 = ids.shape
        B = self.rows_for(n, T0)
        if B is None:
            raise ValueError(f"{n} prompts of {T0} positions do not fit the kept prefill steppers")
        if B not in self.steppers:
            self.steppers[B] = IncrementalBLT(self.model, B, self.positions)
            if self.graphs is not None:
                self._capture_all(B)
        inc = self.steppers[B]
        inc.set_patching(patching)
        buf = self._inputs(B, T0)
        pad = B - n                                              # copies of the first prompt
        buf["ids"].copy_(torch.cat([ids, ids[:1].expand(pad, -1)]) if pad else ids)
        buf["lengths"].copy_(torch.cat([lengths, lengths[:1].expand(pad)]) if pad else lengths)
        H = None
        if inc.ent is not None:
            self._run(("entropies", B, T0), lambda: buf["H"].copy_(inc.prefill_entropies(buf["ids"])))
            H = buf["H"]
        starts, count = inc.prefill_patches(buf["ids"], H)
        buf["starts"].copy_(starts)
        buf["count"].copy_(count)
        P = inc.prefill_patch_count(count)
        self._run(("rest", B, T0, P), lambda: inc.prefill_rest(buf["ids"], buf["lengths"], H, buf["starts"],
                                                                 buf["count"], P))
        return inc

    def _inputs(self, B: int, T0: int) -> dict[str, torch.Tensor]:
        if (B, T0) not in self.inputs:
            z = lambda *shape, dt: torch.zeros(*shape, dtype=dt, device=self.model.device)
            self.inputs[B, T0] = {"ids": z(B, T0, dt=torch.long), "lengths": z(B, dt=torch.long),
                                  "H": z(B, T0, dt=torch.float32), "starts": z(B, T0 + 1, dt=torch.bool),
                                  "count": z(B, T0 + 1, dt=torch.long)}
        return self.inputs[B, T0]

    def _capture_all(self, B: int) -> None:
        """Capture B rows' graphs at every padded length up to POSITIONS and every patch count
        a prefill of that length rounds to, over stand-in prompts (one patch a position up to
        the count, then one long patch: valid patch indices for any count)."""
        t0 = time.perf_counter()
        inc = self.steppers[B]
        for T0 in range(PREFILL_ROUND, self.positions + 1, PREFILL_ROUND):
            buf = self._inputs(B, T0)
            buf["ids"].fill_(ord("x"))
            buf["lengths"].fill_(T0)
            H = buf["H"] if inc.ent is not None else None
            if H is not None:
                self._capture(("entropies", B, T0), lambda: buf["H"].copy_(inc.prefill_entropies(buf["ids"])))
            positions = torch.arange(T0 + 1, device=inc.device)
            # up to T0 + 1 patches (a start at every position and after the last), rounded, capped
            rounded = range(PREFILL_ROUND, T0 + 1 + PREFILL_ROUND, PREFILL_ROUND)
            for P in sorted({min(p, inc.glob.length) for p in rounded}):
                buf["starts"].copy_((positions < min(P, T0 + 1)).expand(B, -1))
                buf["count"].copy_(buf["starts"].long().cumsum(1))
                self._capture(("rest", B, T0, P), lambda: inc.prefill_rest(buf["ids"], buf["lengths"], H, buf["starts"],
                                                                            buf["count"], P))
        log.info("captured %d-row prefill graphs in %.1f s", B, time.perf_counter() - t0)

    def _capture(self, name: tuple, fn) -> None:
        try:
            self.graphs[name] = capture(fn, self.pool)
        except RuntimeError:                                     # e.g. an operation that reads the device
            log.exception("could not capture the prefill's %s graph; that shape prefills eagerly", name)
            self.failed.add(name)

    def _run(self, name: tuple, fn) -> None:
        """fn replayed from its graph, or eagerly where it has none."""
        if self.graphs is not None and name in self.graphs:
            self.graphs[name].replay()
        else:
            fn()
