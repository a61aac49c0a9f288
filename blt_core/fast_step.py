"""Fast paths for generation steps: torch.compile of the step parts, CUDA graphs of them, and one
CUDA graph per greedy byte that needs no host round trip.

The eager parts of `generate.IncrementalBLT` are the reference; everything here replays the same
functions, so tests compare bytes and logits with the eager path.

`GreedyGraph` is the fastest path. A greedy step is a chain: argmax of the last logits -> encoder
step -> (global step if the byte ends a patch) -> decoder step -> logits. Only the global step
depends on the boundary decision, and only through whether its result is kept, so the graph runs
it on every byte (speculatively) while the entropy model decides the boundary on a second stream;
the result is committed for rows whose patch did complete. No host decision is needed, so the
host queues many steps ahead and reads bytes back in chunks. With one byte per patch (the worst
case) nothing is wasted and the entropy model's time is hidden; at several bytes per patch the
global step is wasted work on most bytes (see bench/README.md for when that pays).
"""
from __future__ import annotations

from collections import deque

import torch
import torch._inductor.config

from .sampling import SamplingParams, sample_next

_COMPILED: dict = {}


def compiled(fns: tuple) -> tuple:
    """torch.compile'd versions of step functions, compiled once per process and shared."""
    out = []
    for fn in fns:
        if fn not in _COMPILED:
            # Tune the single-row matrix-vector products like gpt-fast: inductor turns them into
            # reductions whose launch parameters coordinate descent tunes towards memory bandwidth.
            torch._inductor.config.coordinate_descent_tuning = True
            _COMPILED[fn] = torch.compile(fn, dynamic=False)
        out.append(_COMPILED[fn])
    return tuple(out)


def _capture(fn, pool) -> torch.cuda.CUDAGraph:
    """Run fn once for real on a side stream (warming its kernels), then record it in a graph."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):       # recorded, not executed
        fn()
    return graph


class StepGraphs:
    """CUDA graphs of the three step parts (byte, patch, decoder) of an IncrementalBLT. Each part
    runs for real the first time, is then captured, and is replayed from then on. The host reads
    whether any row completed a patch to decide whether to replay the patch graph."""

    def __init__(self, inc):
        self.inc, self.graphs = inc, {}
        self.next_ids = torch.zeros(inc.B, dtype=torch.long, device=inc.device)
        self.pool = torch.cuda.graph_pool_handle()

    def _run(self, name, fn):
        graph = self.graphs.get(name)
        if graph is None:
            self.graphs[name] = _capture(fn, self.pool)
        else:
            graph.replay()

    def step(self, next_ids):
        inc = self.inc
        byte_part, patch_part, decoder_part = inc.parts
        self.next_ids.copy_(next_ids)
        self._run("byte", lambda: byte_part(inc, self.next_ids))
        if bool(inc.next_start.any()):
            self._run("patch", lambda: patch_part(inc))
        self._run("decoder", lambda: decoder_part(inc))
        return inc.logits, inc.entropy, inc.next_start


def _encode_and_global(inc, next_ids):
    inc._encoder_part(next_ids)
    return inc._global_part()


def _finish(inc, next_ids, H, g):
    inc._decide(H, next_ids)
    inc._commit_patch(g)
    inc._decoder_part()


def _entropy(inc, next_ids):
    return inc._entropy_part(next_ids)


class GreedyGraph:
    """Greedy decoding of an IncrementalBLT, one whole byte per call of `step` (see the module
    docstring). Each step appends (byte id, entropy, next byte starts a patch) to `record`
    (max_steps, B, 3) at the step's index, on the device. On CUDA the step is one captured graph
    with the entropy model on a second stream; elsewhere it runs eagerly (the tests' CPU check)."""

    def __init__(self, inc, params: SamplingParams, max_steps: int):
        if not params.greedy or params.repetition_penalty != 1.0:
            raise ValueError("GreedyGraph decodes greedily without a repetition penalty")
        self.inc, self.params = inc, params
        self.parts = compiled((_entropy, _encode_and_global, _finish)) if inc.compile else \
            (_entropy, _encode_and_global, _finish)
        self.record = torch.zeros(max_steps, inc.B, 3, device=inc.device)
        self.index = torch.zeros(1, dtype=torch.long, device=inc.device)
        self.cuda = inc.device.type == "cuda"
        self.side = torch.cuda.Stream() if self.cuda else None
        self.graph = None

    @torch.no_grad()
    def _body(self):
        inc, (entropy, encode_and_global, finish) = self.inc, self.parts
        nxt = sample_next(inc.logits, None, self.params, None)          # (B,)
        if self.cuda:
            main = torch.cuda.current_stream()
            self.side.wait_stream(main)
            with torch.cuda.stream(self.side):
                H = entropy(inc, nxt)                                    # (B,) on the side stream
            g = encode_and_global(inc, nxt)                              # (B, 1, Cg) meanwhile
            main.wait_stream(self.side)
            if not torch.cuda.is_current_stream_capturing():
                H.record_stream(main)
        else:
            H = entropy(inc, nxt)
            g = encode_and_global(inc, nxt)
        finish(inc, nxt, H, g)
        rec = torch.stack([nxt.float(), inc.entropy, inc.next_start.float()], dim=-1)   # (B, 3)
        self.record.index_copy_(0, self.index, rec[None])
        self.index.add_(1)

    def step(self):
        if not self.cuda:
            self._body()
        elif self.graph is None:
            self.graph = _capture(self._body, torch.cuda.graph_pool_handle())
        else:
            self.graph.replay()

    def run(self, n_steps: int, chunk: int = 8):
        """Queue n_steps steps, `chunk` at a time, and yield each step's (ids, entropies,
        next_starts) as lists over rows, reading a chunk back while the next one runs."""
        host = torch.empty_like(self.record, device="cpu", pin_memory=self.cuda)
        pending, launched = deque(), 0
        while launched < n_steps or pending:
            if launched < n_steps:
                n = min(chunk, n_steps - launched)
                for _ in range(n):
                    self.step()
                host[launched:launched + n].copy_(self.record[launched:launched + n], non_blocking=self.cuda)
                done = torch.cuda.Event() if self.cuda else None
                if done is not None:
                    done.record()
                pending.append((launched, n, done))
                launched += n
            if len(pending) > 1 or launched >= n_steps:
                first, n, done = pending.popleft()
                if done is not None:
                    done.synchronize()
                for ids, ent, starts in host[first:first + n].permute(0, 2, 1).tolist():
                    yield ids, ent, starts
