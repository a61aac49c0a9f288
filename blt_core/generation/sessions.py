"""Decode sessions kept between calls of `generate` / `stream`: a stepper (its caches) with its
schedule's compiled and captured steps, for one model and one set of shapes.

Building them costs a generation more than its bytes: on CUDA the speculative byte's graph is
captured anew (its ~350 launches recorded and instantiated) each time a stepper is made. A call
with the same shapes, patching, options and in-graph sampling rule (`key`) now takes the kept
session, prefills its prompt into the same caches and replays the same graphs. The last session
of each model is kept (a call with other shapes replaces it, so memory stays one session's, and
`release(model)` frees it); a call takes it out while it runs, so two threads never share one.
The key holds every parameter's address too: weights moved or replaced (`model.to`,
`load_state_dict` with assign) give a new session rather than graphs reading the old memory.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

from ..patching import PatchingParams
from ..sampling import SamplingParams
from .options import DecodeOptions
from .schedules import Schedule
from .stepper import IncrementalBLT

_LOCK = threading.Lock()
_ATTR = "_kept_decode_session"           # on the model: (key, Session)


@dataclass
class Session:
    inc: IncrementalBLT
    schedule: Schedule


def key(model, batch: int, length: int, patching: PatchingParams, options: DecodeOptions,
        params: SamplingParams) -> tuple:
    """What a session's steps depend on: shapes, patching, options, what a captured greedy step
    samples by, and the weights' addresses and dtypes."""
    in_graph = (params.greedy and params.repetition_penalty == 1.0, params.stop_at_eos)
    weights = tuple((p.data_ptr(), p.dtype) for p in model.parameters())
    return batch, length, patching.resolve(model.config), options, in_graph, weights   # the config's defaults now


def take(model, batch: int, length: int, patching: PatchingParams, options: DecodeOptions,
         params: SamplingParams) -> tuple[tuple, Session]:
    """(key, session): the kept one if its key matches (taken out until `keep`), else a new one."""
    k = key(model, batch, length, patching, options, params)
    with _LOCK:
        kept = model.__dict__.get(_ATTR)
        if kept is not None and kept[0] == k:
            del model.__dict__[_ATTR]
            return k, kept[1]
    kernels = options.kernel_config if options.kernels else None
    inc = IncrementalBLT(model, batch, length, patching, kernels)
    return k, Session(inc, Schedule(inc, params, options))


def keep(model, k: tuple, session: Session) -> None:
    """Keep `session` for the next call with key k (replacing any other)."""
    with _LOCK:
        model.__dict__[_ATTR] = (k, session)


def kept(model) -> Session | None:
    """The model's kept session, if any (tests)."""
    kept = model.__dict__.get(_ATTR)
    return kept[1] if kept is not None else None


def release(model) -> None:
    """Drop the model's kept session (its caches and graphs are freed with it)."""
    with _LOCK:
        model.__dict__.pop(_ATTR, None)
