"""Schedules: the loops that drive an IncrementalBLT through its public step methods.

    host_steps   the reference: sample on the host, one `step` per byte (eager), or the step in
                 three parts (`StepGraphs`: byte, patch, decoder) each torch.compile'd and/or
                 replayed as a CUDA graph; the host decides per byte whether the patch part runs
    GreedyGraph  greedy only: one CUDA graph per byte that needs no host decision
    SpeculativeStep  one byte of every row (next ids in) as one CUDA graph with no host
                 decision: the global step on every byte, kept where a patch completed
    DecoderFirstStep  for long patches: the decoder beside the entropy model before the boundary
                 is known; the host runs the patch part and the decoder again where one completed
                 (or, device_decides, the GPU does: one graph a greedy byte, device_branch.py)
    Schedule     the one of these that DecodeOptions ask for, built once over a stepper and run
                 for each prompt prefilled into it (its graphs captured on the first run only);
                 asked for both, a lone row's greedy steps switch between GreedyGraph and
                 DecoderFirstStep by the share of its bytes that end a patch

Every schedule calls the same step methods in an order that gives the same state, so tests
compare bytes and logits with the eager path.

`GreedyGraph` is the fastest path. A greedy step is a chain: argmax of the last logits -> encoder
step -> (global step if the byte ends a patch) -> decoder step -> logits. Only the global step
depends on the boundary decision, and only through whether its result is kept, so the graph runs
it on every byte (speculatively) while the entropy model decides the boundary on a second stream;
the result is committed for rows whose patch did complete. No host decision is needed, so the
host queues many steps ahead and reads bytes back in chunks. With one byte per patch (the worst
case) nothing is wasted and the entropy model's time is hidden; at several bytes per patch the
global step is wasted work on most bytes (see bench/README.md for when that pays).

At several bytes per patch the host-decided step is better, and `DecoderFirstStep` better
still: the entropy model sits on a host-decided step's critical path (it decides whether the
global model runs), so the decoder runs beside it on the guess that no patch completes, and is
run again only on bytes where one did.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Callable, Iterator

import torch

from ..sampling import SamplingParams, make_generators, sample_next
from . import device_branch
from .options import DecodeOptions
from .stepper import IncrementalBLT, StepOutput

log = logging.getLogger(__name__)
_COMPILED: dict = {}
# A lone row's greedy bytes take the speculative step over the decoder-first one while at least
# this share of them end a patch (Schedule with both; the batch engine's lone row). blt-1b on an
# H100, when it was set: the speculative byte ~1.75 ms at any share, a decoder-first byte ~0.6 ms
# + share x ~1.35 ms (the global step and the decoder again). Later (long_patches.py, both
# faster): ~1.50 ms against ~0.45 + share x ~1.35, equal near 0.78. Measured against 0.78 and
# 0.70 at shares 0.97-0.22 (long_patches.py --speculative-from), lower rules won at most 0.5 %
# and lost 5-7 % at shares of 0.61 and below, so 0.85 stays
# (long_patches_h100_blt1b_switching_rule.json, bench/README.md).
SPECULATIVE_FROM = 0.85


def compiled(fns: tuple, tuning: bool = True) -> tuple:
    """torch.compile'd versions of step functions, compiled once per process (per tuning) and
    shared. tuning: like gpt-fast, inductor's coordinate-descent tuning of its kernels' launch
    parameters (its reductions include the single-row matrix-vector products), which benchmarks
    candidate launches of every kernel while compiling: slower to compile."""
    out = []
    for fn in fns:
        if (fn, tuning) not in _COMPILED:
            _COMPILED[fn, tuning] = torch.compile(fn, dynamic=False,
                                                  options={"coordinate_descent_tuning": tuning})
        out.append(_COMPILED[fn, tuning])
    return tuple(out)


def capture(fn, pool, keep: bool = False, warm: bool = True) -> torch.cuda.CUDAGraph:
    """Run fn once for real (warming its kernels), then record it in a graph, both on torch's
    capture stream: what the kernels make once per stream (decode_kernels' attention counters)
    is then made by the real run, not recorded as a fill the graph would replay every time (an
    extra launch ahead of the encoder's and the pooling's attention, which also broke their
    early start). keep: the graph keeps its cudaGraph_t (device_branch builds on it); warm=False
    records without the real run, for steps whose kernels a real run has warmed already."""
    graph = torch.cuda.CUDAGraph(keep_graph=True) if keep else torch.cuda.CUDAGraph()
    # recorded, not executed; thread_local: CUDA calls of other threads (a server's analyses)
    # during the capture do not invalidate it
    recording = torch.cuda.graph(graph, pool=pool, capture_error_mode="thread_local")
    stream = recording.capture_stream
    if warm:
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            fn()
        torch.cuda.current_stream().wait_stream(stream)
    with recording:
        fn()
    return graph


def run_captured(graphs: dict | None, pool, name: str, fn, keep: bool = False) -> None:
    """fn eagerly (graphs None), or as the CUDA graph `name` in graphs: captured on first use
    (after one real run; keep: as `capture`), replayed from then on."""
    if graphs is None:
        fn()
    elif name not in graphs:
        graphs[name] = capture(fn, pool, keep)
    else:
        graphs[name].replay()


def step_record(inc: IncrementalBLT, next_ids: torch.Tensor) -> torch.Tensor:
    """What a step leaves for the host to read, (B, 4): byte id, entropy, next byte starts a
    patch, global context full."""
    return torch.stack([next_ids.float(), inc.entropy, inc.next_start.float(), inc.context_full.float()], dim=-1)


# ---------------------------------------------------------------------------------- host loop
def byte_part(inc: IncrementalBLT, next_ids):
    """Entropy model and encoder steps, patch bookkeeping, and the boundary decision."""
    H = inc.entropy_step(next_ids)
    inc.encoder_step(next_ids)
    inc.decide_boundary(H, next_ids)


def patch_part(inc: IncrementalBLT):
    """Rows whose open patch just completed: pool it, one global step, decoder patch keys."""
    inc.commit_patch(inc.global_step())


def decoder_part(inc: IncrementalBLT):
    """The decoder step: logits for the next byte."""
    inc.decoder_step()


class StepGraphs:
    """IncrementalBLT.step as its three parts, as `options` asks: compile runs each through
    torch.compile (which fuses their many small element-wise kernels: norms, RoPE, residuals,
    patch bookkeeping); cuda_graphs (on CUDA; ignored elsewhere) runs each for real the first
    time, captures it, and replays it from then on. The host reads whether any row completed a
    patch to decide whether the patch part runs."""

    def __init__(self, inc: IncrementalBLT, options: DecodeOptions):
        self.inc = inc
        parts = (byte_part, patch_part, decoder_part)
        self.parts = compiled(parts, options.compile_tuning) if options.compile else parts
        cuda_graphs = options.cuda_graphs and inc.device.type == "cuda"
        self.graphs = {} if cuda_graphs else None
        self.pool = torch.cuda.graph_pool_handle() if cuda_graphs else None
        self.next_ids = torch.zeros(inc.B, dtype=torch.long, device=inc.device)   # the graphs' input

    def _run(self, name, fn):
        run_captured(self.graphs, self.pool, name, fn)

    @torch.no_grad()
    def step(self, next_ids: torch.Tensor) -> StepOutput:
        inc, (byte, patch, decoder) = self.inc, self.parts
        self.next_ids.copy_(next_ids)
        self._run("byte", lambda: byte(inc, self.next_ids))
        if bool(inc.next_start.any()):
            self._run("patch", lambda: patch(inc))
        self._run("decoder", lambda: decoder(inc))
        return inc.output()


def host_steps(inc: IncrementalBLT, params: SamplingParams, step: Callable[[torch.Tensor], StepOutput],
               n_steps: int) -> Iterator[list]:
    """Sample on the host's schedule, one `step` at a time (inc.step or StepGraphs.step); yields
    (ids, entropies, next_starts, context_full) as lists over rows."""
    gens = make_generators(params, inc.B, inc.device)
    positions = torch.arange(inc.L, device=inc.device)
    logits = inc.logits
    for _ in range(n_steps):
        history = (torch.where(positions[None] < inc.pos[:, None], inc.ids, -1)
                   if params.repetition_penalty != 1.0 else None)
        nxt = sample_next(logits, history, params, gens)
        out = step(nxt)
        logits = out.logits
        # one device-to-host copy per step: byte, entropy, whether the next byte opens a patch, and
        # whether the global context was full for it
        yield torch.stack([nxt.float(), out.entropy, out.global_step.float(), out.context_full.float()]).tolist()


# ---------------------------------------------------------------------------------- speculative greedy
def _encode(inc: IncrementalBLT, next_ids):
    inc.encoder_step(next_ids)


def _global(inc: IncrementalBLT):
    return inc.global_step(slot_placed=True)


def _slot(inc: IncrementalBLT):
    inc.global_slot()


def _choose(inc: IncrementalBLT, next_ids, H, record):
    inc.decide_boundary(H, next_ids)
    inc.choose_commits()
    record.copy_(step_record(inc, next_ids))


def _commit_and_decode(inc: IncrementalBLT, g):
    inc.commit_patch(g, chosen=True)
    inc.decoder_step()


def _entropy(inc: IncrementalBLT, next_ids):
    return inc.entropy_step(next_ids)


class SpeculativeStep:
    """One byte of every row with the global step taken speculatively (see the module docstring).
    On CUDA a second stream takes what the critical chain (encoder, global model, decoder) need
    not wait for: the global step's slot, the entropy model, then (once the encoder step is done)
    the boundary decision, which rows keep the global step, and the byte's record. The main
    stream waits for the slot before the global step and for the rest before the commit, both
    long done by then, so no small bookkeeping launch sits between the encoder, the global model
    and the decoder. The next ids are an input, so each row may sample by its own rule outside;
    nothing inside waits for the host, so on CUDA the byte is one captured graph that the host
    can queue before it reads the previous byte back (the batch engine). `record` (B, 4) after
    each step: byte id, entropy, next byte starts a patch, global context full."""

    PARTS = (_entropy, _encode, _global, _choose, _commit_and_decode, _slot)

    def __init__(self, inc: IncrementalBLT, compile: bool = False, tuning: bool = True):
        self.inc = inc
        self.parts = compiled(self.PARTS, tuning) if compile else self.PARTS
        self.argmax = compiled((_argmax,), tuning)[0] if compile else _argmax     # greedy next ids inside a graph
        self.cuda = inc.device.type == "cuda"
        self.side = torch.cuda.Stream() if self.cuda else None
        self.next_ids = torch.zeros(inc.B, dtype=torch.long, device=inc.device)   # the graph's input
        self.record = torch.zeros(inc.B, 4, device=inc.device)
        self.graph = None
        self.greedy_graphs: dict[bool, torch.cuda.CUDAGraph] = {}     # stop_at_eos -> graph
        self.queued: bool | None = None     # queue_greedy ran the next byte's body with this EOS rule
        self.bodies = 0                     # bodies launched (each runs once: eagerly, or one replay)

    def body(self, nxt: torch.Tensor, then: Callable[[], None] | None = None) -> None:
        """The byte's work on the current stream (captured or not). then: more work that reads
        the record, run right after it is made (on the second stream on CUDA)."""
        inc, (entropy, encode, glob, choose, commit_and_decode, slot) = self.inc, self.parts
        if not self.cuda:
            slot(inc)
            H = entropy(inc, nxt)
            encode(inc, nxt)
            choose(inc, nxt, H, self.record)
            if then is not None:
                then()
            commit_and_decode(inc, glob(inc))
            return
        main = torch.cuda.current_stream()
        self.side.wait_stream(main)
        with torch.cuda.stream(self.side):
            slot(inc)                               # the global step's slot, off the critical path
            placed = torch.cuda.Event()
            placed.record()
            H = entropy(inc, nxt)
        encode(inc, nxt)
        self.side.wait_stream(main)                 # the decision reads the encoder's patch start
        with torch.cuda.stream(self.side):
            choose(inc, nxt, H, self.record)
            if then is not None:
                then()
        main.wait_event(placed)
        g = glob(inc)                               # (B, 1, Cg); reads none of what choose writes
        main.wait_stream(self.side)
        commit_and_decode(inc, g)

    @torch.no_grad()
    def step(self, next_ids: torch.Tensor, meanwhile=None) -> torch.Tensor:
        """Feed next_ids (B,); returns `record`, updated in place. meanwhile: host work to run
        once the byte is queued, before anything this step waits for."""
        if self.queued is not None:
            raise RuntimeError("a greedy byte is queued: finish it with step_greedy")
        self.next_ids.copy_(next_ids)
        self.bodies += 1
        if not self.cuda:
            self.body(self.next_ids)
        elif self.graph is None:
            self.graph = capture(lambda: self.body(self.next_ids), torch.cuda.graph_pool_handle())
        else:
            self.graph.replay()
        if meanwhile is not None:
            meanwhile()
        self._after()
        return self.record

    @torch.no_grad()
    def step_greedy(self, params: SamplingParams, meanwhile=None) -> torch.Tensor:
        """A step whose next ids are every row's argmax of its last logits by params' EOS rule
        (params greedy, no repetition penalty), taken inside the same captured graph: no
        sampling launches from the host. Returns `record`, updated in place; meanwhile: as in
        `step`."""
        if not params.greedy or params.repetition_penalty != 1.0:
            raise ValueError("step_greedy samples greedily without a repetition penalty")
        if self.queued is None:
            self._greedy_body(params)
        elif self.queued != params.stop_at_eos:
            raise RuntimeError("the byte queued by queue_greedy took another EOS rule")
        self.queued = None
        if meanwhile is not None:
            meanwhile()
        self._after()
        return self.record

    def queue_greedy(self, params: SamplingParams) -> None:
        """Queue the next greedy byte's body now (the captured graph on CUDA), so the GPU starts
        it before the host's bookkeeping of the byte just made; the next `step_greedy`, with the
        same params, then runs only what follows the body. Nothing may change the stepper's
        state in between: the queued byte has read it."""
        if self.queued is not None:
            raise RuntimeError("a byte is queued already")
        self._greedy_body(params)
        self.queued = params.stop_at_eos

    def _greedy_body(self, params: SamplingParams) -> None:
        body = lambda: self.body(self._greedy_ids(params))
        self.bodies += 1
        if not self.cuda:
            body()
        elif params.stop_at_eos not in self.greedy_graphs:
            self.greedy_graphs[params.stop_at_eos] = capture(body, torch.cuda.graph_pool_handle())
        else:
            self.greedy_graphs[params.stop_at_eos].replay()

    def _greedy_ids(self, params: SamplingParams) -> torch.Tensor:
        """The greedy next ids (B,) from the last logits (inside the byte's graph on CUDA)."""
        return self.argmax(self.inc.logits, params)

    def _after(self) -> None:
        """What a step runs after its captured body (subclasses); here nothing."""


def _encode_layers(inc: IncrementalBLT, next_ids):
    return inc.encoder_layers(next_ids)


def _encode_finish(inc: IncrementalBLT, h):
    inc.encoder_finish(h)


def _decode_guess(inc: IncrementalBLT, h):
    inc.decoder_step(advance=False, h=h)


def _decide(inc: IncrementalBLT, next_ids, H, seq, flag):
    """The boundary decision, and flag (1,) int32 = the body's number (seq, counted here, modulo
    2^30) * 2 + whether any row completed a patch: one value for the host to read."""
    inc.decide_boundary(H, next_ids)
    seq.add_(1)
    flag.copy_(seq.remainder(2 ** 30) * 2 + inc.next_start.any())


def _patch_and_decode(inc: IncrementalBLT):
    inc.commit_patch(inc.global_step())
    inc.decoder_step(advance=False)


def _advance(inc: IncrementalBLT, next_ids, record):
    record.copy_(step_record(inc, next_ids))
    inc.advance()


class DecoderFirstStep(SpeculativeStep):
    """One byte of every row for long patches, where most bytes complete no patch: the decoder
    step runs on the guess that none does, beside the entropy model (second stream on CUDA)
    instead of after it; the boundary is then decided, and where some row did complete a patch
    the host runs the patch part (pool, global step, commit) and the decoder step again (it
    rewrites the same cache slot, so the guess costs nothing when wrong but that decoder step).
    The host reads one flag per byte. Same interface as `SpeculativeStep` (next ids in, `record`
    out; `step_greedy` takes the argmax inside the byte's graph); on CUDA three captured graphs:
    the byte, the patch part, and the record with the position's advance. After the flag read
    the GPU would wait for the host's next launch: `queue_greedy` queues the next greedy byte
    right after a step, and the next `step_greedy` finishes it.

    On CUDA the decoder's guess takes the encoder layers' output at once, while a third stream
    ends the encoder step (the pooling's keys and the pooled state, which only the patch part
    reads). The decision runs on the entropy model's stream as soon as the entropy model and the
    encoder are done, and its flag goes straight to pinned host memory, marked by an event: the
    host reads it while the decoder's guess still runs, and queues the patch part or the advance
    (and the next byte) behind it, so the GPU need not wait for the host between bytes. The flag
    carries the body's number; one that is not this body's (never expected) falls back to
    waiting for the whole step (`late_flags` counts those).

    device_decides (CUDA): `step_decided` runs a greedy byte as one graph whose patch part the
    GPU runs where the boundary flag says (device_branch.py), so the host reads nothing inside a
    byte and queues the next one at once. Its first steps, until a patch part and an advance
    have been captured, are host-decided (`step_greedy`); so is every step where the graph
    cannot be built (`device_branch.unavailable()`)."""

    PARTS = (_entropy, _encode_layers, _encode_finish, _decode_guess, _decide, _patch_and_decode, _advance)

    def __init__(self, inc: IncrementalBLT, compile: bool = False, tuning: bool = True,
                 device_decides: bool = False):
        super().__init__(inc, compile, tuning)
        self.device_decides = device_decides and self.cuda
        self.tail = torch.cuda.Stream() if self.cuda else None              # the encoder step's end
        self.branch_graphs: dict[bool, device_branch.BranchGraph] = {}  # stop_at_eos -> graph
        self.device_steps = 0                                           # steps decided on the device
        self.graphs: dict[str, torch.cuda.CUDAGraph] | None = {} if self.cuda else None
        self.pool = torch.cuda.graph_pool_handle() if self.cuda else None
        self.seq = torch.zeros(1, dtype=torch.long, device=inc.device)      # bodies run, on the device
        self.flag = torch.zeros(1, dtype=torch.int32, device=inc.device)
        self.flag_host = torch.zeros(1, dtype=torch.int32, pin_memory=self.cuda)
        # recorded inside the captured body (an event record node), so the host can wait for it
        self.decided = torch.cuda.Event(external=True) if self.cuda else None
        self.late_flags = 0
        self.argmax_into = compiled((_argmax_into,), tuning)[0] if compile else _argmax_into

    def body(self, nxt: torch.Tensor, host_flag: bool = True) -> None:
        """The byte until the boundary decision, on the current stream (captured or not).
        host_flag: the flag is copied to pinned host memory and marked by `decided`."""
        inc, (entropy, encode_layers, encode_finish, decode_guess, decide, _, _) = self.inc, self.parts
        if nxt is not self.next_ids:
            self.next_ids.copy_(nxt)                                     # the argmax, for the record
        if not self.cuda:
            H = entropy(inc, self.next_ids)
            h = encode_layers(inc, self.next_ids)
            encode_finish(inc, h)
            decide(inc, self.next_ids, H, self.seq, self.flag)
            decode_guess(inc, h)                                         # logits if no patch completed
            return
        main = torch.cuda.current_stream()
        self.side.wait_stream(main)
        with torch.cuda.stream(self.side):         # H is made and read on this stream only
            H = entropy(inc, self.next_ids)
        h = encode_layers(inc, self.next_ids)
        # the encoder step's end (the pooling's keys, the pooled state: only the patch part reads
        # them) on a third stream, beside the decoder's guess, which takes h at once
        self.tail.wait_stream(main)
        with torch.cuda.stream(self.tail):
            encode_finish(inc, h)
        self.side.wait_stream(self.tail)     # the decision overwrites next_start, which the end reads
        with torch.cuda.stream(self.side):
            decide(inc, self.next_ids, H, self.seq, self.flag)
            if host_flag:
                self.flag_host.copy_(self.flag, non_blocking=True)
                self.decided.record()
        decode_guess(inc, h)                 # beside the decision (it reads none of what that writes)
        main.wait_stream(self.side)          # (which waited for the third stream)

    def _greedy_ids(self, params: SamplingParams) -> torch.Tensor:
        """The argmax written into next_ids by its own launch, so the body copies nothing: a copy
        node fewer in each byte's graph (+0.2-0.4 % at static patches of 4 on an H100)."""
        self.argmax_into(self.inc.logits, params, self.next_ids)
        return self.next_ids

    def _patch_completed(self) -> bool:
        """Whether any row's byte completed a patch: the one read per byte."""
        if not self.cuda:
            return bool(self.inc.next_start.any())
        self.decided.synchronize()
        value, want = int(self.flag_host[0]), self.bodies % 2 ** 30
        if value >> 1 != want:                                           # not this body's flag
            self.late_flags += 1
            torch.cuda.current_stream().synchronize()
            value = int(self.flag_host[0])
            if value >> 1 != want:
                raise RuntimeError(f"decoder-first flag of body {value >> 1}, expected {want}")
        return bool(value & 1)

    def _after(self) -> None:
        inc, (_, _, _, _, _, patch_and_decode, advance) = self.inc, self.parts
        if self._patch_completed():
            run_captured(self.graphs, self.pool, "patch", lambda: patch_and_decode(inc), self.device_decides)
        run_captured(self.graphs, self.pool, "advance", lambda: advance(inc, self.next_ids, self.record),
                     self.device_decides)

    @torch.no_grad()
    def step_decided(self, params: SamplingParams) -> torch.Tensor:
        """A greedy step as `step_greedy`, decided on the device where it can be (see the class
        docstring): nothing waits for the GPU. Returns `record`, updated in place."""
        graph = self.branch_graphs.get(params.stop_at_eos)
        if graph is None:
            record = self.step_greedy(params)
            self._build_decided(params)
            return record
        if self.queued is not None:
            raise RuntimeError("a greedy byte is queued: finish it with step_greedy")
        self.bodies += 1                                # the body counts itself on the device too
        self.device_steps += 1
        graph.launch()
        return self.record

    def _build_decided(self, params: SamplingParams) -> None:
        """The device-decided graph for params' EOS rule, once the host-decided steps have
        captured (and warmed) its parts."""
        eos = params.stop_at_eos
        if (not self.device_decides or eos in self.branch_graphs or eos not in self.greedy_graphs
                or "patch" not in self.graphs or "advance" not in self.graphs):
            return
        try:
            body = capture(lambda: self.body(self._greedy_ids(params), host_flag=False),
                           self.pool, keep=True, warm=False)
            self.branch_graphs[eos] = device_branch.BranchGraph(body, self.graphs["patch"],
                                                                self.graphs["advance"], self.flag)
        except Exception as err:                        # a toolkit or driver that cannot: stay host-decided
            log.warning("decoder-first steps stay host-decided: %s", err)
            self.device_decides = False


def _argmax(logits, params: SamplingParams):
    return sample_next(logits, None, params, None)


def _argmax_into(logits, params: SamplingParams, out) -> None:
    out.copy_(_argmax(logits, params))


def _append(records, index, record):
    """record (B, 4) into records (steps, B, 4) at index, which moves on by one."""
    records.index_copy_(0, index, record[None])
    index.add_(1)


class GreedyGraph:
    """Greedy decoding of an IncrementalBLT, one whole byte per call of `step`: the argmax of the
    last logits, then a `SpeculativeStep` body. Each step appends its record (byte id, entropy,
    next byte starts a patch, global context full) to `record` (max_steps, B, 4) at the step's
    index, on the device. On CUDA the step is one captured graph with the entropy model on a
    second stream; elsewhere it runs eagerly (the tests' CPU check)."""

    def __init__(self, inc: IncrementalBLT, params: SamplingParams, max_steps: int, compile: bool = False,
                 tuning: bool = True):
        if not params.greedy or params.repetition_penalty != 1.0:
            raise ValueError("GreedyGraph decodes greedily without a repetition penalty")
        self.inc, self.params = inc, params
        self.byte = SpeculativeStep(inc, compile, tuning)
        self.append = compiled((_append,), tuning)[0] if compile else _append
        self.record = torch.zeros(max_steps, inc.B, 4, device=inc.device)
        self.index = torch.zeros(1, dtype=torch.long, device=inc.device)
        self.cuda = inc.device.type == "cuda"
        self.graph = None

    @torch.no_grad()
    def _body(self):
        nxt = self.byte.argmax(self.inc.logits, self.params)            # (B,)
        self.byte.body(nxt, then=lambda: self.append(self.record, self.index, self.byte.record))

    def step(self):
        if not self.cuda:
            self._body()
        elif self.graph is None:
            self.graph = capture(self._body, torch.cuda.graph_pool_handle())
        else:
            self.graph.replay()

    def run(self, n_steps: int, chunk: int = 8, switch: Callable[[], bool] | None = None) -> Iterator[list]:
        """Queue n_steps steps, `chunk` at a time, and yield each step's (ids, entropies,
        next_starts, context_full) as lists over rows, reading a chunk back while the next one runs.
        Each run records from index 0 (a graph captured by an earlier run is replayed). switch:
        asked before each chunk is queued; True ends the run early, once what is queued is read."""
        if n_steps > self.record.shape[0]:
            raise ValueError(f"{n_steps} steps do not fit a record of {self.record.shape[0]}")
        self.index.zero_()
        host = torch.empty_like(self.record, device="cpu", pin_memory=self.cuda)

        def queue(first: int, n: int) -> None:
            for _ in range(n):
                self.step()
            host[first:first + n].copy_(self.record[first:first + n], non_blocking=self.cuda)
        return _read_chunks(queue, host, n_steps, chunk, switch, self.cuda)


def _read_chunks(queue: Callable[[int, int], None], host: torch.Tensor, n_steps: int, chunk: int,
                 switch: Callable[[], bool] | None, cuda: bool) -> Iterator[list]:
    """Steps queued `chunk` at a time (queue(first, n): n steps and their records' copy into
    host[first:first + n]) and yielded as (ids, entropies, next_starts, context_full) lists over
    rows, each chunk read while the next one runs. switch: as in GreedyGraph.run."""
    pending, launched = deque(), 0
    while launched < n_steps or pending:
        if launched < n_steps and launched and switch is not None and switch():
            n_steps = launched                                           # no more: read what is queued
        if launched < n_steps:
            n = min(chunk, n_steps - launched)
            queue(launched, n)
            done = torch.cuda.Event() if cuda else None
            if done is not None:
                done.record()
            pending.append((launched, n, done))
            launched += n
        if len(pending) > 1 or launched >= n_steps:
            first, n, done = pending.popleft()
            if done is not None:
                done.synchronize()
            yield from host[first:first + n].permute(0, 2, 1).tolist()


def _read_decided(byte: DecoderFirstStep, params: SamplingParams, n: int, chunk: int = 8,
                  switch: Callable[[], bool] | None = None) -> Iterator[list]:
    """n greedy decoder-first steps decided on the device (`step_decided`), queued back to back
    and read back a chunk behind, as GreedyGraph.run reads speculative ones."""
    host = torch.empty(n, *byte.record.shape, pin_memory=byte.cuda)

    def queue(first: int, count: int) -> None:
        for k in range(first, first + count):
            host[k].copy_(byte.step_decided(params), non_blocking=byte.cuda)
    return _read_chunks(queue, host, n, chunk, switch, byte.cuda)


def _read_behind(byte: DecoderFirstStep, params: SamplingParams, n: int,
                 switch: Callable[[], bool] | None = None) -> Iterator[list]:
    """n greedy decoder-first steps, each step's record read back while the next one's byte runs
    on the device (the host's per-byte work then hides behind the GPU's). Each next byte is
    queued as soon as the step before it is (`queue_greedy`), before the host's Python. switch:
    asked before each next byte is queued; True ends the steps there."""
    bufs = [torch.empty_like(byte.record, device="cpu", pin_memory=byte.cuda) for _ in range(2)]
    pending = None                                       # (host copy, its event) of the step before
    try:
        for k in range(n):
            ready = []

            def read_previous():
                if pending is not None:
                    if pending[1] is not None:
                        pending[1].synchronize()
                    ready.append(pending[0].t().tolist())
            record = byte.step_greedy(params, read_previous)
            bufs[k % 2].copy_(record, non_blocking=byte.cuda)
            event = torch.cuda.Event() if byte.cuda else None
            if event is not None:
                event.record()
            last = k + 1 >= n or (switch is not None and switch())
            if not last:
                byte.queue_greedy(params)
            pending = (bufs[k % 2], event)
            yield from ready
            if last:
                break
        if pending is not None:
            if pending[1] is not None:
                pending[1].synchronize()
            yield pending[0].t().tolist()
    finally:
        # a consumer that stopped early leaves a byte queued past its last: the next run
        # prefills the stepper again, which sets what that byte wrote
        byte.queued = None


# ---------------------------------------------------------------------------------- choice
class Schedule:
    """The steps of generations over one IncrementalBLT as `options` ask: built once, then `run`
    once per prompt prefilled into that stepper, so a later run replays the graphs the first one
    compiled and captured (sessions.py keeps it between calls of `generate`). CUDA graphs only
    on CUDA. `params`: what the captured steps bake in (greedy argmax, EOS rule); runs must
    agree with it on those (sessions.key). With both `speculative` and `decoder_first`, a lone
    row's greedy steps switch between the two by the share of its bytes that end a patch
    (`_switching`), several rows' take the speculative graph (as the batch engine's batch shape
    does: together they complete some patch on most bytes), and sampled steps are decoder-first."""

    def __init__(self, inc: IncrementalBLT, params: SamplingParams, options: DecodeOptions):
        self.inc, self.greedy, self.byte, self.step = inc, None, None, None
        if options.speculative and (not options.decoder_first or _in_graph(params)):
            self.greedy = GreedyGraph(inc, params, inc.L, compile=options.compile, tuning=options.compile_tuning)
        if options.decoder_first and (self.greedy is None or inc.B == 1):
            self.byte = DecoderFirstStep(inc, options.compile and inc.device.type == "cuda", options.compile_tuning,
                                         options.device_decides and options.cuda_graphs)
        if self.greedy is None and self.byte is None:
            graphs = options.cuda_graphs and inc.device.type == "cuda"
            self.step = StepGraphs(inc, options).step if options.compile or graphs else inc.step

    def run(self, params: SamplingParams) -> Iterator[list]:
        """The steps of `params.max_new_bytes` bytes from the stepper's prefilled state, each
        yielded as (ids, entropies, next_starts, context_full) lists over rows."""
        inc, n = self.inc, params.max_new_bytes
        if self.greedy is not None and self.byte is not None:
            return self._switching(params, n)
        if self.greedy is not None:
            return self.greedy.run(n)
        if self.byte is not None:
            if _in_graph(params) and self.byte.device_decides:
                return _read_decided(self.byte, params, n)
            if _in_graph(params):
                return _read_behind(self.byte, params, n)
            return host_steps(inc, params, lambda nxt: (self.byte.step(nxt), inc.output())[1], n)
        return host_steps(inc, params, self.step, n)

    def _switching(self, params: SamplingParams, n: int) -> Iterator[list]:
        """A lone row's greedy steps on the speculative graph while at least SPECULATIVE_FROM of
        them (a moving share, as the batch engine keeps it) complete a patch, else decoder-first;
        each switch waits for the steps queued before it. The first kind follows the prompt's share."""
        rate = float((self.inc.n_patches.float() / self.inc.pos.clamp(min=1)).clamp(max=1)[0])
        speculative, done, steps = rate >= SPECULATIVE_FROM, 0, None
        try:
            while done < n:
                decided = _read_decided if self.byte.device_decides else _read_behind
                steps = (self.greedy.run(n - done, switch=lambda: rate < SPECULATIVE_FROM) if speculative else
                         decided(self.byte, params, n - done, switch=lambda: rate >= SPECULATIVE_FROM))
                for record in steps:
                    rate = 0.8 * rate + 0.2 * float(record[2][0])
                    done += 1
                    yield record
                speculative = not speculative
        finally:
            if steps is not None:
                steps.close()


def _in_graph(params: SamplingParams) -> bool:
    """Whether greedy steps can take their argmax inside the captured graph."""
    return params.greedy and params.repetition_penalty == 1.0
