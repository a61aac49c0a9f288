"""Continuous batching: many generations share one batch of the stepper, joining and leaving
between byte steps.

One engine thread owns the decoding state, an `IncrementalBLT` of `slots` rows. `submit` queues
a request and returns its `RowStream` at once. Between two byte steps the engine takes queued
requests into free rows: it prefills the prompts that came together (and patch alike) in one
batch, as `generate` prefills several prompts, and copies each one's caches and state into its
row. An idle engine first waits a moment while requests keep arriving (GATHER_GAP_S, and at most
a share of what its last prefill took), so clients that start together share one prefill. With
CUDA graphs, prompts of up to a few hundred bytes prefill from captured graphs into kept steppers
(prefill_graphs.py), not eagerly, and each one's rows are copied by views kept from the first
copy. Without them, an idle engine gives its caches back after IDLE_KEEP_S. Each step then
feeds every running row one byte: each row samples with its own parameters and seeded generator,
patches by its own rule, and stops on its own (max_new_bytes, EOS, a stop string, a full global
context) or when its consumer closes the stream (a client that hung up), which frees the row at
the next step boundary. A row decodes the same bytes as it would alone: layers treat rows
independently and sampling runs per row.

Running rows are kept at the front of the batch. Without CUDA graphs a step runs eagerly on
just those rows (`IncrementalBLT.rows`). With CUDA graphs (of compiled parts, as `options` asks)
there are two captured shapes: one row and all `slots` rows, both with the fused kernels when
asked. At several rows those read each weight tile once for all rows and multiply on tensor cores
(8 rows of blt-1b on an H100: 2.21 ms a step queued, 2.30 before the down projections' K was
shared among programs; 2.59 before the RMSNorms took their statistics from the launch before,
when torch's layers and cuBLAS took 2.73-2.82 ms; bench/README.md),
and their attention reads each row's cached keys only up to its own position. A step runs the
smaller shape that holds every running row; its idle rows are parked at position 1, where their
writes touch only their own caches.

A step is one of three kinds. The host-decided one (`StepGraphs`, or `IncrementalBLT.step`
eagerly) reads whether any row completed a patch and runs the global model only then. With
`options.speculative`, a `SpeculativeStep` runs the global step on every byte, kept where a patch
completed, with the entropy model beside it on a second stream, and waits for nothing from the
host. With `options.decoder_first`, a `DecoderFirstStep` is host-decided too, but runs the
decoder beside the entropy model on the guess that no patch completes (and again after the
global step where one did). Where speculative is asked the batch shape always takes it (many
rows together complete some patch on nearly every byte), and a lone row while at least half its
bytes end a patch (with decoder_first too: schedules.SPECULATIVE_FROM); otherwise a step is decoder-first
where that is asked, else the plain host-decided one. When every running row decodes greedily
(no repetition penalty, one EOS rule) the argmax runs inside the step's graph (`step_greedy`):
no sampling launched from the host.

A greedy decoder-first step ends in a host read of its boundary flag, so the engine queues the
next byte's body as soon as the step is queued (`_queue_next`), when nothing would change before
the next tick (the same rows, none waiting or closing): the GPU then starts it while the host
reads bytes back, and the next tick only finishes it. With `options.device_decides` (where
device_branch.py can run) a greedy decoder-first step reads no flag: the GPU runs its patch part
where a patch completed, and the engine queues it and reads it back behind, as a speculative one.

The host runs one step behind the GPU: it queues byte k+1 (sampling on the device from byte k's
logits, which are already there) before it reads byte k back and turns it into events, so its
per-byte Python overlaps the GPU's work. A row that stopped at byte k (EOS, a stop string, a full
context, a closed stream) has then taken one byte more, which is dropped: rows are independent,
so no other row sees it. A row whose last byte (max_new_bytes) is in flight is read back before
the next step, so no row steps past the positions it reserved.

Events reach a row's stream at most every DELIVERY_S (the first byte and the end at once): each
delivery wakes the consumer's thread, and through the server also the event loop, all of which
share the GIL with the engine thread; at a byte every 2 ms, waking them per byte cost the lone
stream a fifth of its speed (bench/README.md, serving).
"""
from __future__ import annotations

import atexit
import itertools
import logging
import queue
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field

import torch

from ..patching import PatchingParams
from ..sampling import SamplingParams, make_generators, sample_next
from ..tokenizer import ByteTokenizer
from .driver import GenerationResult, RowState, cache_length, right_padded
from .options import DecodeOptions
from .prefill_graphs import POSITIONS, PrefillGraphs
from .schedules import SPECULATIVE_FROM, DecoderFirstStep, SpeculativeStep, StepGraphs, step_record
from .stepper import PREFILL_ROUND, IncrementalBLT

log = logging.getLogger(__name__)
SWITCH_INTERVAL_S = 0.0002
DELIVERY_S = 0.01               # a row's events are handed to its stream at most this often
# An idle engine given a request waits while more keep coming (each within the gap of the last,
# GATHER_S in all), so requests sent together share one prefill: an eager prefill of blt-1b took
# ~45 ms on an H100 (launch-bound, about the same for 1 or 8 prompts), and 8 streams started
# together took two prefills before any first byte (bench/README.md, serve.py). Through gunicorn
# a 2 ms gap still split them in one of two runs, 5 ms in one of four, so the gap is 10 ms at
# most. Waiting costs a lone request the whole gap, while a split costs the later requests one
# more prefill, so the gap is also at most GATHER_SHARE of the engine's last prefill: blt-1b
# prefills from graphs in ~9 ms on an H100, where a lone request's first byte waited 10 ms for
# companions on top of its ~12 ms. A quarter (~2 ms) split 8 streams started together in one of
# two rounds, whose first bytes then came at 0.08-0.10 s instead of ~0.03 (bench/README.md).
GATHER_GAP_S, GATHER_S, GATHER_SHARE = 0.01, 0.03, 0.5
# Without CUDA graphs an idle engine gives its batch's caches back, but only after this long
# idle: the shipped model's 4 slots on a 2-core CPU took ~21 ms to allocate again, about a quarter
# of a lone request's first byte there, each time a person pressed Generate again.
IDLE_KEEP_S = 30.0
_ENGINES: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _stop_engines() -> None:
    """Stop every engine thread before the interpreter tears torch down under it."""
    for engine in list(_ENGINES):
        engine.stop()


@dataclass
class _Request:
    prompt: str | bytes
    ids: list[int]
    params: SamplingParams
    patching: PatchingParams
    events: queue.Queue = field(default_factory=queue.Queue)
    closed: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Row:
    request: _Request
    state: RowState
    generators: list | None
    next_starts_patch: bool          # the byte this row generates next opens a patch
    prefill_s: float
    started: float = field(default_factory=time.perf_counter)
    index: int = 0                   # bytes read back
    launched: int = 0                # bytes queued on the device
    freed: bool = False              # left the batch: bytes still in flight for it are dropped
    outbox: list = field(default_factory=list)    # events not yet handed to the stream
    delivered: float = 0.0           # when they last were (perf_counter)

    def deliver(self, now: float) -> None:
        if self.outbox:
            self.request.events.put(self.outbox)
            self.outbox, self.delivered = [], now


class RowStream:
    """One request's events: ByteEvents as the engine makes them, then the GenerationResult.
    An error of the request (a prompt the model cannot take: ValueError) is raised from the
    iteration; `close()` stops the generation and frees its row."""

    def __init__(self, engine: "BatchEngine", request: _Request):
        self._engine, self._request, self._done = engine, request, False
        self._buffer: deque = deque()          # delivered together, not yet taken

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        if not self._buffer:
            item = self._request.events.get()
            self._buffer.extend(item if isinstance(item, list) else [item])
        item = self._buffer.popleft()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if isinstance(item, GenerationResult):
            self._done = True
        return item

    def ready(self) -> bool:
        """Whether the next event is already made (a consumer can send what is ready together)."""
        return not self._done and (bool(self._buffer) or not self._request.events.empty())

    def close(self) -> None:
        if not self._request.closed.is_set():
            self._request.closed.set()
            self._engine.wake()


class BatchEngine:
    """`call(fn)`, if given, runs the engine's torch work (fn: one step, returns nothing) where
    the caller wants it; else it runs on the engine thread. BLT Studio on CPU runs it on the one
    thread that runs all its torch work (app/torch_thread.py)."""

    def __init__(self, model, slots: int, options: DecodeOptions = DecodeOptions(), call=None,
                 gather: tuple[float, float] = (GATHER_GAP_S, GATHER_S), prefill_positions: int = POSITIONS,
                 idle_keep_s: float = IDLE_KEEP_S):
        if slots < 1:
            raise ValueError(f"slots must be at least 1, found {slots}")
        self.model, self.slots, self.options, self.gather = model, slots, options, gather
        self.idle_keep_s = idle_keep_s
        self.last_prefill_s: float | None = None              # the last prefill's seconds (host, to its end)
        self.call = call or (lambda fn: fn())
        self.graphs = options.cuda_graphs and model.device.type == "cuda"
        # with CUDA graphs, prompts of up to prefill_positions (padded) prefill from graphs of
        # their shape into kept steppers of 1 and `slots` rows (prefill_graphs.py; 0: eagerly)
        self.prefill_graphs = (PrefillGraphs(model, (1, slots), prefill_positions)
                               if self.graphs and prefill_positions > 0 else None)
        if self.graphs:
            # The engine thread lets go of the GIL at every wait for the GPU (twice a step); at
            # Python's default 5 ms switch interval a busy request thread (writing the last
            # bytes to a client) then keeps it for up to 5 ms more, which capped 8 streams at
            # half the engine's speed (bench/results/serve_h200_blt1b*.json).
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        self.inc: IncrementalBLT | None = None
        self.step_graphs: dict[int, StepGraphs] = {}         # CUDA graphs: rows -> the step of that shape
        self.spec_steps: dict[tuple, SpeculativeStep] = {}   # (rows, SpeculativeStep or DecoderFirstStep) -> step
        self.patch_rate = 1.0          # moving share of bytes that ended some running row's patch
        # what the engine thread did: prefill passes (and how many from graphs), byte steps
        # queued (and how many of them speculative, how many decoder-first, how many of those
        # queued ahead by the step before: _queue_next, how many decided on the device:
        # device_branch.py), bytes given to rows, seconds inside ticks
        # (admitting, prefilling, stepping, reading back); on CUDA also the GPU's seconds in the
        # steps (step_gpu_s) and between steps queued one after another with rows running and
        # no prefill between them (between_steps_s: the host late). A step after a prefill or
        # an idle engine adds no gap: counting those once put a whole round's first-byte wait
        # (~0.2 s) into the gaps of its 512 steps. late_flags: decoder-first steps whose early
        # boundary flag was not there when its event said so (each then waited for its whole step).
        # gather_s: seconds an idle engine given a request waited for more (_gather).
        self.counts = {"prefills": 0, "graph_prefills": 0, "steps": 0, "speculative_steps": 0,
                       "decoder_first_steps": 0, "queued_ahead": 0, "decided_on_device": 0, "late_flags": 0,
                       "bytes": 0, "tick_s": 0.0, "gather_s": 0.0,
                       "step_gpu_s": 0.0, "between_steps_s": 0.0}
        self._last_done = None                               # the end of the last step read back (CUDA)
        self._after_break = True                             # no step to time a gap from (idle, prefill)
        self._pending: deque = deque()                       # steps queued, not yet read back
        self._host: list[torch.Tensor] = []                  # their read-back buffers (pinned on CUDA)
        self._views: dict[int, IncrementalBLT] = {}
        self._queued: tuple | None = None                    # (its begun event,): a byte queued ahead (_queue_next)
        self.rows: list[_Row] = []
        self._holding, self._leaving = False, []    # rows that stopped during a step (_read_meanwhile)
        self._queue: deque[_Request] = deque()
        self._cv = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="batch-engine", daemon=True)
        self._thread.start()
        _ENGINES.add(self)

    # ------------------------------------------------------------------ consumer side
    def submit(self, prompt, params: SamplingParams, patching: PatchingParams = PatchingParams()) -> RowStream:
        """Queue a generation; its events come from the returned stream. Raises ValueError at once
        for a prompt + max_new_bytes longer than the model's byte context."""
        request = _Request(prompt, ByteTokenizer().encode(prompt), params, patching.resolve(self.model.config))
        context = self.model.config.byte_context
        if len(request.ids) + params.max_new_bytes > context:
            raise ValueError(f"prompt + max_new_bytes = {len(request.ids) + params.max_new_bytes} bytes exceeds "
                             f"the model's context of {context} bytes")
        with self._cv:
            if self._stopped:
                raise RuntimeError("the batch engine is stopped")
            self._queue.append(request)
            self._cv.notify()
        return RowStream(self, request)

    def wake(self) -> None:
        with self._cv:
            self._cv.notify()

    def running(self) -> int:
        return len(self.rows)

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        self._thread.join(timeout=10)

    # ------------------------------------------------------------------ engine thread
    def _loop(self) -> None:
        while True:
            with self._cv:
                keep_until = time.perf_counter() + self.idle_keep_s
                while not self._stopped and not self._queue and not self.rows:
                    left = keep_until - time.perf_counter()
                    if self.inc is None or self.graphs:
                        self._cv.wait()
                    elif left > 0:
                        self._cv.wait(left)
                    else:                              # idle that long: give the caches' memory back
                        self.inc, self._views = None, {}
                if self._stopped:
                    break
            t0 = time.perf_counter()
            try:
                self.call(self._tick)
            except Exception as err:                   # e.g. out of memory: fail the running rows
                log.exception("batched generation failed")
                try:
                    self.call(lambda: self._read(0))    # steps queued before it finished: their bytes
                except Exception:
                    log.exception("could not read back the steps before the failure")
                for row in self.rows:
                    row.deliver(time.perf_counter())   # the bytes made before it, then the error
                    row.request.events.put(err)
                self.rows, self.inc, self.step_graphs, self._views = [], None, {}, {}
                if self.prefill_graphs is not None:           # what a failure left in them is not trusted
                    self.prefill_graphs = PrefillGraphs(self.model, (1, self.slots), self.prefill_graphs.positions)
                self.spec_steps, self._pending, self._leaving, self._last_done = {}, deque(), [], None
                self._queued = None
                self._after_break = True
            self.counts["tick_s"] += time.perf_counter() - t0
        for row in self.rows:
            row.deliver(time.perf_counter())
            row.request.events.put(RuntimeError("the batch engine stopped"))
        for request in self._queue:
            request.events.put(RuntimeError("the batch engine stopped"))

    def _tick(self) -> None:
        with torch.no_grad():
            if self._queued is None:                   # else finish the byte queued first (_queue_next)
                self._admit()
                self._retire_closed()
                if any(row.launched >= row.state.params.max_new_bytes for row in self.rows):
                    self._read(0)                      # a last byte is in flight: finish those rows first
            if self.rows:
                self._launch()
            self._read(1 if self.rows else 0)          # all but the step just queued
            if not self.rows:
                self._read(0)                          # every row stopped: nothing stays queued

    def _admit(self) -> None:
        """Queued requests into free rows. Those that came together and patch alike are prefilled
        together (one pass for 8 prompts instead of 8: the first byte of each comes sooner)."""
        taken: list[_Request] = []
        with self._cv:
            if self._queue and not self.rows:
                self._gather()
            while self._queue and len(self.rows) + len(taken) < self.slots:
                request = self._queue.popleft()
                if not request.closed.is_set():
                    taken.append(request)
        if not taken:
            return
        self._after_break = True                       # the prefill's time is no gap between steps
        now = time.perf_counter()
        for row in self.rows:                          # a prefill takes a while: send what is made
            row.deliver(now)
        groups: dict[PatchingParams, list[_Request]] = {}
        for request in taken:
            groups.setdefault(request.patching, []).append(request)
        for requests in groups.values():
            self.counts["prefills"] += 1
            try:
                admitted = self._prefill(requests)
            except Exception as err:
                if len(requests) == 1:
                    admitted = []
                    self._fail(requests[0], err)
                else:                                  # find the one it cannot take: each alone
                    admitted = [pair for request in requests for pair in self._prefill_alone(request)]
            for stepper, pairs in itertools.groupby(admitted, key=lambda pair: pair[1]):
                pairs = list(pairs)                    # a prefill's rows 0.., in order: one copy each tensor
                self._reserve(stepper.L)
                kept = self.prefill_graphs is not None and stepper in self.prefill_graphs.steppers.values()
                self.inc.load_row(len(self.rows), stepper, pairs[0][2], count=len(pairs), keep=kept)
                self.rows += [row for row, _, _ in pairs]

    def _gather(self) -> None:
        """Idle, with requests queued (holding _cv): wait while more keep coming, each within the
        gap of the last (at most GATHER_SHARE of the last prefill), up to the limit in all or until
        they fill the slots."""
        gap, limit = self.gather
        if self.last_prefill_s is not None:
            gap = min(gap, GATHER_SHARE * self.last_prefill_s)
        t0 = time.perf_counter()
        deadline = t0 + limit
        try:
            while len(self._queue) < self.slots and not self._stopped:
                seen, left = len(self._queue), min(gap, deadline - time.perf_counter())
                if left <= 0:
                    return
                self._cv.wait(left)
                if len(self._queue) == seen:             # none came within the gap
                    return
        finally:
            self.counts["gather_s"] += time.perf_counter() - t0

    def _prefill_alone(self, request: _Request) -> list:
        self.counts["prefills"] += 1
        try:
            return self._prefill([request])
        except Exception as err:
            self._fail(request, err)
            return []

    @staticmethod
    def _fail(request: _Request, err: Exception) -> None:
        """A prompt the model cannot take (ValueError), or out of memory: only this request fails."""
        if not isinstance(err, ValueError):
            log.exception("prefill failed")
        request.events.put(err)

    def _prefill(self, requests: list[_Request]) -> list[tuple[_Row, IncrementalBLT, int]]:
        """Prompts of one patching rule in one batch, right-padded, as `generate` prefills
        several prompts (rows of a batch are independent) -> (row, stepper, its row there)."""
        model, patching = self.model, requests[0].patching
        length = max(cache_length(model, len(r.ids), r.params.max_new_bytes) for r in requests)
        t0 = time.perf_counter()
        # prompt lengths rounded up (PREFILL_ROUND), within the caches and so that padding's
        # patches (one a position at most) never pass the global model's context
        cap = min(length, model.config.patch_context - 1)
        ids, lengths = right_padded([r.ids for r in requests], model.device, PREFILL_ROUND, cap)
        graphs = self.prefill_graphs
        if graphs is not None and graphs.rows_for(len(requests), ids.shape[1]) is not None:
            stepper = graphs.prefill(ids, lengths, patching)
            self.counts["graph_prefills"] += 1
        else:
            stepper = IncrementalBLT(model, len(requests), length, patching)
            stepper.prefill(ids, lengths)
        for r in requests:
            stepper.check_patches_ahead(len(r.ids) + r.params.max_new_bytes)
        starts = stepper.next_start[:len(requests)].tolist()
        prefill_s = self.last_prefill_s = time.perf_counter() - t0
        return [(_Row(r, RowState(r.params), make_generators(r.params, 1, model.device), bool(starts[i]), prefill_s),
                 stepper, i) for i, r in enumerate(requests)]

    def _reserve(self, length: int) -> None:
        """A batch whose caches hold `length` positions: with CUDA graphs always the model's whole
        byte context (one set of shapes); otherwise grown to the longest running row's need."""
        if self.graphs:
            length = self.model.config.byte_context
        if self.inc is not None and self.inc.L >= length:
            return
        self._read(0)                                  # rows may leave: copy the ones that stay
        kernels = self.options.kernel_config if self.options.kernels else None
        grown = IncrementalBLT(self.model, self.slots, length, kernels=kernels)
        for i in range(len(self.rows)):
            grown.load_row(i, self.inc, i)
        self.inc, self._views, self.step_graphs, self.spec_steps = grown, {}, {}, {}
        if self.graphs:
            for n in sorted({1, self.slots}):
                self._views[n] = grown.rows(n)
                self.step_graphs[n] = StepGraphs(self._views[n], self.options)

    def _retire_closed(self) -> None:
        for i in reversed(range(len(self.rows))):
            if self.rows[i].request.closed.is_set():
                self._free(i)

    def _free(self, i: int) -> None:
        """Free row i; the last running row moves into its place (running rows stay in front)."""
        last = len(self.rows) - 1
        self.rows[i].freed = True
        if i != last:
            self.inc.load_row(i, self.inc, last)
            self.rows[i] = self.rows[last]
        self.rows.pop()
        if not self.rows:
            self._after_break = True                   # the next step starts after an idle spell

    def _step_fn(self, n: int):
        """The batch view for n running rows, its step (next ids (B,) -> record (B, 4) of byte id,
        entropy, next byte starts a patch, global context full), and the SpeculativeStep (or
        DecoderFirstStep) behind it, if it is one: see the module docstring for which."""
        if self.graphs:
            shape = 1 if n == 1 else self.slots
            batch = self._views[shape]
            if n < shape:
                batch.park(torch.arange(shape, device=batch.device) >= n)
        else:
            shape = n
            batch = self._views.get(n) or self._views.setdefault(n, self.inc.rows(n))
        kind = self._kind(shape)
        if kind is not None:
            if (shape, kind) not in self.spec_steps:
                decides = {"device_decides": self.options.device_decides and self.graphs} \
                    if kind is DecoderFirstStep else {}
                self.spec_steps[shape, kind] = kind(batch, self.options.compile and self.graphs,
                                                    self.options.compile_tuning, **decides)
            self.counts["speculative_steps" if kind is SpeculativeStep else "decoder_first_steps"] += 1
            return batch, self.spec_steps[shape, kind].step, self.spec_steps[shape, kind]
        step = self.step_graphs[shape].step if self.graphs else batch.step

        def host_decided(nxt):
            step(nxt)
            return step_record(batch, nxt)
        return batch, host_decided, None

    def _kind(self, shape: int):
        """SpeculativeStep, DecoderFirstStep or None (host-decided) for a step of this shape."""
        lone_from = SPECULATIVE_FROM if self.options.decoder_first else 0.5
        if self.options.speculative and (shape > 1 or self.patch_rate >= lone_from):
            return SpeculativeStep
        return DecoderFirstStep if self.options.decoder_first else None

    def _greedy_rule(self) -> SamplingParams | None:
        """The sampling params of every running row if they all decode greedily, without a
        repetition penalty, by one EOS rule (their argmax can then run inside the step's graph)."""
        first = self.rows[0].state.params
        for row in self.rows:
            params = row.state.params
            if not params.greedy or params.repetition_penalty != 1.0 or params.stop_at_eos != first.stop_at_eos:
                return None
        return first

    def _launch(self) -> None:
        """Queue one byte of every running row and its read-back (not waited for)."""
        rows = list(self.rows)
        n = len(rows)
        batch, step, stepper = self._step_fn(n)
        if self._queued is not None:                  # its byte runs already: _queue_next
            (begun,), self._queued = self._queued, None
        else:
            begun = torch.cuda.Event(enable_timing=True) if self.model.device.type == "cuda" else None
            if begun is not None:
                begun.record()
        # A decoder-first step waits for its byte's boundary flag: meanwhile the steps queued
        # before it are read back (rows that stop then leave once it is queued), so the host's
        # per-byte Python runs while the GPU works instead of between its steps.
        meanwhile = self._read_meanwhile if isinstance(stepper, DecoderFirstStep) else None
        greedy = self._greedy_rule() if stepper is not None else None
        late = stepper.late_flags if isinstance(stepper, DecoderFirstStep) else 0
        decided = greedy is not None and isinstance(stepper, DecoderFirstStep) and stepper.device_decides
        if decided:                                   # nothing to wait for: read back behind, as speculative
            on_device = stepper.device_steps
            record = stepper.step_decided(greedy)
            self.counts["decided_on_device"] += stepper.device_steps - on_device
        elif greedy is not None:
            record = stepper.step_greedy(greedy, meanwhile)                # (B, 4) on the device
        elif stepper is not None:
            record = stepper.step(self._sample(batch), meanwhile)
        else:
            record = step(self._sample(batch))
        if isinstance(stepper, DecoderFirstStep):
            self.counts["late_flags"] += stepper.late_flags - late
        if not self._host:
            pin = self.model.device.type == "cuda"
            self._host = [torch.empty(self.slots, 4, pin_memory=pin) for _ in range(3)]
        host = self._host[0]
        self._host.append(self._host.pop(0))        # at most two steps pending: three buffers
        host[:n].copy_(record[:n], non_blocking=True)
        done = torch.cuda.Event(enable_timing=True) if begun is not None else None
        if done is not None:
            done.record()
        for row in rows:
            row.launched += 1
        self.counts["steps"] += 1
        self._pending.append((host, (begun, done, self._after_break), rows))
        self._after_break = False
        for row in self._leaving:                   # stopped while the step was being queued
            self._free(self.rows.index(row))
        self._leaving = []
        if greedy is not None and isinstance(stepper, DecoderFirstStep) and not decided:
            self._queue_next(rows, batch, stepper, greedy)

    def _queue_next(self, rows: list[_Row], batch: IncrementalBLT, stepper: "DecoderFirstStep",
                    greedy: SamplingParams) -> None:
        """Queue the next byte of a greedy decoder-first step at once, if the next tick would take
        the same step: the same rows, all running (none parked, none closed, none at its last
        byte), no request waiting, and the same kind of step. Its body then starts on the GPU
        right after this byte's end instead of after the host's Python between two steps (the
        next tick only finishes it). A decoder-first step ends in a host read of its boundary flag,
        so without this the GPU waited for the host on every byte."""
        if (len(self.rows) != len(rows) or any(a is not b for a, b in zip(self.rows, rows))
                or len(rows) != batch.B or self._queue
                or any(row.request.closed.is_set() or row.launched >= row.state.params.max_new_bytes
                       for row in rows)
                or self._kind(batch.B) is not DecoderFirstStep):
            return
        begun = torch.cuda.Event(enable_timing=True) if self.model.device.type == "cuda" else None
        if begun is not None:
            begun.record()
        stepper.queue_greedy(greedy)
        self._queued = (begun,)
        self.counts["queued_ahead"] += 1

    def _read_meanwhile(self) -> None:
        self._holding = True
        try:
            self._read(0)
        finally:
            self._holding = False

    def _read(self, keep: int) -> None:
        """Read back the queued steps but the newest `keep`, in order: each running row's byte
        becomes its event; rows that stopped leave the batch."""
        while len(self._pending) > keep:
            host, (begun, done, after_break), rows = self._pending.popleft()
            if done is not None:
                done.synchronize()
                self._time_step(begun, done, after_break)
            ids, entropies, global_steps, full = host[:len(rows)].t().tolist()
            self.patch_rate = 0.8 * self.patch_rate + 0.2 * float(any(global_steps))
            for i, row in enumerate(rows):
                if row.freed:
                    continue
                event = row.state.push(int(ids[i]), entropies[i], row.next_starts_patch, bool(global_steps[i]),
                                       row.index, context_full=bool(full[i]))
                row.next_starts_patch, row.index = bool(global_steps[i]), row.index + 1
                if event is not None:
                    row.outbox.append(event)
                self.counts["bytes"] += 1
                now = time.perf_counter()
                if row.state.done:
                    row.outbox.append(row.state.result(row.request.prompt, row.prefill_s, now - row.started))
                    row.deliver(now)
                    if self._holding:              # inside a step: its rows stay put until it is queued
                        row.freed = True
                        self._leaving.append(row)
                    else:
                        self._free(self.rows.index(row))
                elif now - row.delivered >= DELIVERY_S:
                    row.deliver(now)

    def _time_step(self, begun, done, after_break: bool) -> None:
        """The GPU's time in a step read back, and since the step before it ended unless a
        prefill or an empty batch came between them."""
        self.counts["step_gpu_s"] += begun.elapsed_time(done) / 1000
        if self._last_done is not None and not after_break:
            self.counts["between_steps_s"] += max(0.0, self._last_done.elapsed_time(begun) / 1000)
        self._last_done = done

    def _sample(self, batch: IncrementalBLT) -> torch.Tensor:
        """The next byte of every row in the batch (B,): running rows by their own parameters
        (greedy rows without a repetition penalty together, one argmax for each EOS rule), idle
        rows a filler."""
        nxt = torch.full((batch.B,), 4, dtype=torch.long, device=batch.device)
        greedy: dict[bool, list[int]] = {}                      # stop_at_eos -> rows
        for i, row in enumerate(self.rows):
            params = row.state.params
            if params.greedy and params.repetition_penalty == 1.0:
                greedy.setdefault(params.stop_at_eos, []).append(i)
        for rows in greedy.values():
            params = self.rows[rows[0]].state.params
            if rows[-1] == len(rows) - 1:        # the first rows: a slice, no index copied to the device
                nxt[:len(rows)] = sample_next(batch.logits[:len(rows)], None, params, None)
            else:
                idx = torch.tensor(rows, device=batch.device)
                nxt[idx] = sample_next(batch.logits[idx], None, params, None)
        grouped = {i for rows in greedy.values() for i in rows}
        positions = None
        for i, row in enumerate(self.rows):
            if i in grouped:
                continue
            params, history = row.state.params, None
            if params.repetition_penalty != 1.0:
                positions = positions if positions is not None else torch.arange(batch.L, device=batch.device)
                history = torch.where(positions[None] < batch.pos[i:i + 1, None], batch.ids[i:i + 1], -1)
            nxt[i] = sample_next(batch.logits[i:i + 1], history, params, row.generators)[0]
        return nxt
