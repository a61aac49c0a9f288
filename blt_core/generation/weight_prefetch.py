"""A stack's weights streamed into L2 ahead of its one-row products (CUDA, sm_90+).

A decoding step of one row reads every weight of a stack once, product after product, and HBM
waits between them: while a kernel launches and drains, and while the attention reads its few
keys (blt-1b's global layer took ~46 us for ~34 us of weight reads, bench/README.md). Here the
products themselves keep HBM busy through those gaps: each issues bulk L2 prefetches
(`cp.async.bulk.prefetch.L2`, fire and forget, one instruction per chunk) for the weights the
stack will read `ahead` bytes after its own, so later products, and the attention between them,
find their weights in L2 or on the way.

The stack's weights, in the order its products read them, are cut into chunks (the walk, one
device table of addresses and sizes). Product j, whose own weights are chunks c_j..c_{j+1}-1 of
the walk, prefetches chunks c_j + a..c_{j+1} + a - 1 (a: `ahead` in chunks; the first product
also the first a), shared among every PREFETCH_EVERY-th of its programs in program order. As the
programs start in order while the product runs, its prefetches keep pace with its own reads, so
no more than about `ahead` bytes wait in L2. Each prefetching program loads its rows of the
table and issues them before waiting for the previous kernel (PDL). Prefetching changes no
result: the products compute the same values either way (tests/test_weight_prefetch.py).

An earlier try prefetched line by line from inside the attention's programs and lost
(bench/README.md): its loop of prefetch instructions sat on the chain. Here a program issues at
most a few instructions.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

CHUNK = 64 * 1024               # bytes of weights per walk entry (one bulk prefetch)
PREFETCH_EVERY = 8              # every 8th program of a product issues prefetches


@dataclass(frozen=True)
class Prefetch:
    """One product's share of its stack's walk: chunks lo..lo+n-1 of `table` ((chunks, 2) int64:
    address, bytes)."""
    table: torch.Tensor
    lo: int
    n: int


def stack_weights(layers, crosses=()) -> list[list[torch.Tensor]]:
    """A stack's one-row product weights in the order decode_kernels.stack_step reads them, each
    as the regions its programs read side by side (the gate/up projection: its two halves, whose
    rows n and N + n one program reads together)."""
    out = []
    for i, layer in enumerate(layers):
        if i < len(crosses):
            out += [[crosses[i][0].q_proj.weight], [crosses[i][0].o_proj.weight]]
        gu = layer.mlp.gate_up_proj.weight
        half = gu.shape[0] // 2
        out += [[layer.self_attn.qkv_proj.weight], [layer.self_attn.o_proj.weight], [gu[:half], gu[half:]],
                [layer.mlp.down_proj.weight]]
    return out


def walk(weights: list[list[torch.Tensor]]) -> tuple[list[tuple[int, int]], list[int]]:
    """The chunks (address, bytes) of `weights` in reading order, the regions of one weight
    interleaved chunk by chunk, and the index of each weight's first chunk (then the total)."""
    chunks, starts = [], []
    for regions in weights:
        starts.append(len(chunks))
        spans = [(r.data_ptr(), r.numel() * r.element_size()) for r in regions]
        for j in range(0, max(size for _, size in spans), CHUNK):
            chunks += [(ptr + j, min(CHUNK, size - j)) for ptr, size in spans if j < size]
    return chunks, starts + [len(chunks)]


class PrefetchPlan:
    """The walk of one stack and each product's share of it, `ahead` bytes past its own weights."""

    def __init__(self, weights: list[list[torch.Tensor]], ahead: int):
        chunks, starts = walk(weights)
        a, total = -(-ahead // CHUNK), len(chunks)
        self.table = torch.tensor(chunks, dtype=torch.int64).to(weights[0][0].device)
        self.shares = {}
        for j, regions in enumerate(weights):
            lo = min(starts[j] + a, total) if j > 0 else 0
            hi = min(starts[j + 1] + a, total)
            self.shares[regions[0].data_ptr()] = Prefetch(self.table, lo, hi - lo)

    def share(self, weight: torch.Tensor) -> Prefetch | None:
        """The product of `weight`'s share (None: nothing left to prefetch)."""
        p = self.shares[weight.data_ptr()]
        return p if p.n > 0 else None


_PLANS: dict = {}


def plan_for(layers, crosses, ahead_mib: int) -> PrefetchPlan:
    """The stack's plan, made on its first step and kept: graphs captured later hold its table.
    A step first run inside a CUDA graph capture cannot make one (a host-to-device copy)."""
    first = layers[0].self_attn.qkv_proj.weight
    key = (first.device, first.data_ptr(), len(layers), len(crosses), ahead_mib)
    if key not in _PLANS:
        if first.is_cuda and torch.cuda.is_current_stream_capturing():
            raise RuntimeError("weight prefetch: run the stack once before capturing it in a CUDA graph "
                               "(its plan's table is made on the first step)")
        _PLANS[key] = PrefetchPlan(stack_weights(layers, crosses), ahead_mib << 20)
    return _PLANS[key]
