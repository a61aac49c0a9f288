"""Fused Triton kernels for one decoding step of a transformer block (CUDA fast path).

A decoding step of one byte runs every layer on a single row per sequence, so a layer is four
matrix-vector products whose weights must be read once, plus small work between them. Compiled
piecewise, that small work becomes a dozen kernels per layer that each pay launch and tail
latency (bench/profile_generate.py --parts: the blt-1b global layer took 80 us for 34 us of
weight reads). Here a block step is five kernels, each matrix-vector product carrying its
neighbours in its prologue and epilogue:

    1. RMSNorm -> q/k/v projection -> RoPE; q to a buffer, k and v into the KV cache at pos
    2. attention of the query over the cache's valid keys (pos and window read on the device),
       split over S programs per head so the keys are read in parallel; the last program of
       a head to finish merges the S partial softmaxes
    3. output projection + residual
    4. RMSNorm -> gate/up projection -> SiLU(gate) * up
    5. down projection + residual

A decoder layer's cross-attention step over its patch's k slots is RMSNorm -> q projection, then
for one row the output projection with both residuals, each of whose programs first computes
the attention over the few slots itself (`cross_output`); several rows take the attention's own
launch between the two.

On sm_90 and later the kernels are launched as programmatic dependents (`KernelConfig.pdl`):
each starts reading its weights while the one before it finishes (the matrix-vector products of
several rows excepted: `block_config` launches those without it). One row's weights, read once a
step, are loaded to leave L2 first (`KernelConfig.weight_eviction`). Every launch choice (PDL, early
keys, the attention's shape, the block shape of the matrix-vector kernel) comes from the
`KernelConfig` passed in (options.py); its defaults are the measured best on an H100.

Rounding follows the eager layers (bf16 results rounded where PyTorch rounds them), accumulation
is float32; results agree with `layers.Block` to bf16 rounding (tests/test_decode_kernels.py).
Rows of a batch are handled together (the weights are read once for all rows). With several
rows an RMSNorm's statistics came from a pass over x before any weight was read (8 trips to
memory at blt-1b's width: 4.4 of the global q/k/v's 16.5 us at 8 rows, 3.4 of gate/up's 23.7).
Now each residual launch also leaves its rows' sums of squares, one partial sum per program,
and the next norm adds those up in one load (`stack_step` hands them from launch to launch;
the first layer of a stack still makes the pass). Summing the squares inside the product's loop
instead was slower (16.5 -> 36 us for the global q/k/v at 8 rows), as were wider loads for the
pass (bench/README.md). At several rows the MLP's down projection (K >= 2N) shares K among 4
programs per block of outputs (`KernelConfig.long_k_split`): blt-1b's global one at 8 rows has
only 128 blocks for 132 SMs (13.1 -> 11.9 us). Each share writes its partial sums to its own
slice and the block's last program adds them in share order, so every launch rounds alike.
"""
from __future__ import annotations

from dataclasses import replace

import torch
import triton
import triton.language as tl

from .options import KernelConfig

PLAIN, RESIDUAL, DOUBLE_RESIDUAL, SWIGLU, ROPE_CACHE, SLOTS = 0, 1, 2, 3, 4, 5        # epilogues
_PLAIN, _RESIDUAL, _DOUBLE_RESIDUAL, _SWIGLU, _ROPE_CACHE, _SLOTS = map(tl.constexpr, range(6))   # the same, in kernels

# Programmatic dependent launch (sm_90+, KernelConfig.pdl): each kernel lets the next one start as
# soon as all its programs are running; the next loads what no kernel of this module writes (its
# first weight tiles; positions, RoPE rows and earlier steps' keys, written by the step's other
# kernels, which finish before a chain of these starts), then waits (griddepcontrol.wait) for the
# previous kernel's results. This hides the launch and the first trips to memory behind the
# previous kernel's tail. Causal attention also loads its first tile of earlier keys before that
# wait (KernelConfig.early_keys, _attention_kernel).
#
# Self-attention's launch shape (KernelConfig.attention_*): one warp per program was fastest on an
# H100 for both head widths of blt-1b (128 and 64), 2-6 us per layer less than four warps
# (bench/profile_layer_step.py --attention, layer_step_h100.jsonl): with a 16-key tile a
# program's reductions need no shared memory or barriers across warps. Of a head's S programs, a
# row's keys take only as many as give each a tile's worth (KernelConfig.attention_min_keys): a
# short context then has fewer shares to wait for and merge, a long one all S (bench/README.md).
DEFAULT = KernelConfig()


def block_config(N: int, K: int, BP: int, epi: int, D: int = 1, config: KernelConfig = DEFAULT) -> dict:
    """Block shape of the matrix-vector kernel for N outputs over K. Chosen from candidates timed
    alone on an H100 (bench/matvec_sweep.py, bench/results/matvec_sweep_h100.jsonl): for one row,
    tiles of 2 x 1024 weights per 4-warp program, the next tile loaded before this one is reduced
    and the lane sums reduced once after the loop. That was best or within 15 % of the best on
    all eight projections of blt-1b's global model and decoder (73-86 % of copy bandwidth on the
    global ones). Splitting K among programs never won, so SPLIT stays 1 (the kernel keeps it
    for the sweep). Triton's autotuner chose worse: it times one launch at a time, where a step
    chains launches back to back. The signature is KernelConfig.block_shape's; one row's shape is
    the same for every epilogue, several rows' is wider after an RMSNorm (below; `_launch` keeps
    a RoPE block inside one head of width D). Several rows take from `config` where K is split
    (long_k_split)."""
    if 1 < BP < 16:                              # a few rows (_bp's few): products summed
        # 2 rows, H100 (decoder_slots, blt-1b's 9 layers in one launch): 8 x 512 tiles 26.5 us,
        # 2 x 1024 45.2; a 2-row q projection: 2 x 1024 3.5 us, 8 x 512 3.7
        bk = min(512 if epi == SLOTS else 1024, triton.next_power_of_2(K))
        bn = 8 if epi == SLOTS else max(2, 2048 // bk // BP)
        return dict(BLOCK_N=bn, BLOCK_K=bk, LATE=False, PREFETCH=True, SPLIT=1, num_warps=4, num_stages=1, PDL=True)
    if BP > 1:                                   # several rows: tensor-core tiles (BP, BLOCK_K) x (BLOCK_K, BLOCK_N)
        # bench/matvec_sweep.py --rows 8 (H100): 32 outputs and 3 stages where an RMSNorm comes
        # first (q/k/v, gate/up) or K is split (K >= 2N), 16 and 4 stages otherwise, and no PDL: a
        # dependent waiting early holds shared memory the running products need (blt-1b's global
        # output projection: 10.1 us with PDL, 6.6 without; cuBLAS 6.4). PDL on the local models'
        # narrow layers alone (N or K <= 1024, whose few programs leave SMs free) was slower too:
        # the 8-row step 2.62 ms against 2.35-2.57 (bench/README.md).
        split = config.long_k_split if K >= 2 * N else 1
        wide = epi in (ROPE_CACHE, SWIGLU) or split > 1
        bk = min(256, max(16, triton.next_power_of_2(K)))
        while split > 1 and K < split * bk:                      # a whole tile in every share
            split //= 2
        return dict(BLOCK_N=32 if wide else 16, BLOCK_K=bk, LATE=False, PREFETCH=False, SPLIT=split, num_warps=4,
                    num_stages=3 if wide else 4, PDL=False)
    bk = min(1024, triton.next_power_of_2(K))
    return dict(BLOCK_N=2048 // bk, BLOCK_K=bk, LATE=True, PREFETCH=True, SPLIT=1, num_warps=4, num_stages=1)


@triton.jit
def _weights(ptrs, mask, EVICT: tl.constexpr):
    """A tile of weights (zeros where masked), loaded by the eviction policy EVICT."""
    return tl.load(ptrs, mask=mask, other=0.0, eviction_policy=EVICT)


@triton.jit
def _matvec_kernel(x_ptr, nw_ptr, w_ptr, out_ptr, res_ptr, pos_ptr, cos_ptr, sin_ptr, kc_ptr, vc_ptr, ws_ptr, cnt_ptr,
                   si_ptr, so_ptr, B, N, K, eps, NQ, NKV, L, NSI,
                   BP: tl.constexpr, KP: tl.constexpr, SI: tl.constexpr, SO: tl.constexpr, D: tl.constexpr,
                   NORM: tl.constexpr, EPI: tl.constexpr,
                   BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, LATE: tl.constexpr, PREFETCH: tl.constexpr,
                   SPLIT: tl.constexpr, PDL: tl.constexpr, DOT: tl.constexpr, IEEE: tl.constexpr,
                   AT_POS: tl.constexpr = False, TABLES: tl.constexpr = False, WEVICT: tl.constexpr = "",
                   XATT: tl.constexpr = False, KS: tl.constexpr = 1):
    """out[b, n] = epilogue(sum_k W[n, k] * prologue(x)[b, k]) for rows b < B, W (N, K)
    (SWIGLU: W (2N, K), gate rows then up rows). Program (i, s): outputs i * BLOCK_N.., the s-th
    of SPLIT shares of K; ws (SPLIT, BP, 2N) float32 holds each share's partial sums, which the
    block's last program to arrive adds up in share order (the same sum every launch), and cnt
    (programs along N) int32 starts at zero and is left at zero. DOT (several rows): the tiles'
    products on tensor cores (IEEE: float32 exactly, not TF32). Sums of squares of x's rows for
    the RMSNorm (several rows): SI > 0 takes them from si (BP, NSI), the partial sums the kernel
    that wrote x left, one per program of it; SO (residual epilogues) leaves those of out in so
    (BP, programs along N). WEVICT: the weights' eviction policy (KernelConfig.weight_eviction).
    XATT (one row, K within one tile): x holds the queries of a cross-attention (NQ channels, heads
    of D) over L slots in kc / vc (NKV channels: (NKV // D, L, D)), scale eps; the product is over
    their attention, computed by every program (`cross_output`; KS: L as a power of two)."""
    if PDL:
        tl.extra.cuda.gdc_launch_dependents()
    dt = x_ptr.dtype.element_ty
    if TABLES:                   # layer program_id(2) of several (decoder_slots): its pointers from tables
        layer = tl.program_id(2)
        w_ptr = tl.load(w_ptr + layer).to(tl.pointer_type(dt))
        nw_ptr = tl.load(nw_ptr + layer).to(tl.pointer_type(dt))
        kc_ptr = tl.load(kc_ptr + layer).to(tl.pointer_type(dt))
        vc_ptr = tl.load(vc_ptr + layer).to(tl.pointer_type(dt))
    rows = tl.arange(0, BP)
    rmask = rows < B
    n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    nmask = n < N
    kk = tl.arange(0, BLOCK_K)
    share = tl.cdiv(K, SPLIT * BLOCK_K) * BLOCK_K                   # this program's K range, whole tiles
    k_lo = tl.program_id(1) * share
    k_hi = tl.minimum(K, k_lo + share)
    w_rows, w2_rows = w_ptr + n[:, None] * K, w_ptr + (n + N)[:, None] * K
    omask = rmask[:, None] & nmask[None, :]
    # Before the wait, what no kernel of this module writes: the first weight tiles, and (RoPE)
    # the positions and their rows of the cos / sin tables.
    if PREFETCH:
        first = nmask[:, None] & ((k_lo + kk) < k_hi)[None, :]
        w_next = _weights(w_rows + (k_lo + kk)[None, :], first, WEVICT)
        if EPI == _SWIGLU:
            w2_next = _weights(w2_rows + (k_lo + kk)[None, :], first, WEVICT)
    if EPI == _ROPE_CACHE:
        pos = tl.load(pos_ptr + rows, mask=rmask, other=0)
        d = n % D
        cos = tl.load(cos_ptr + pos[:, None] * D + d[None, :], mask=omask, other=0.0).to(tl.float32)
        sin = tl.load(sin_ptr + pos[:, None] * D + d[None, :], mask=omask, other=0.0).to(tl.float32)
    if PDL:                                                       # the previous kernel's results
        tl.extra.cuda.gdc_wait()
    if EPI == _RESIDUAL or EPI == _DOUBLE_RESIDUAL:               # in the same trip as x
        res = tl.load(res_ptr + rows[:, None] * N + n[None, :], mask=omask, other=0.0).to(tl.float32)
    if NORM:                                                      # RMSNorm statistics of x
        if SI > 0:                                                # the writer's partial sums: one trip
            part = tl.arange(0, SI)
            ss = tl.sum(tl.load(si_ptr + rows[:, None] * NSI + part[None, :],
                                mask=rmask[:, None] & (part < NSI)[None, :], other=0.0), 1)
        elif KP > 0:                                              # whole rows in one load: no serial trips
            kp = tl.arange(0, KP)
            xa = tl.load(x_ptr + rows[:, None] * K + kp[None, :], mask=rmask[:, None] & (kp < K)[None, :],
                         other=0.0).to(tl.float32)
            ss = tl.sum(xa * xa, 1)
        else:
            ss = tl.zeros((BP,), tl.float32)
            for k0 in range(0, K, BLOCK_K):
                m = rmask[:, None] & ((k0 + kk) < K)[None, :]
                xk = tl.load(x_ptr + rows[:, None] * K + (k0 + kk)[None, :], mask=m, other=0.0).to(tl.float32)
                ss += tl.sum(xk * xk, 1)
        r = 1.0 / tl.sqrt(ss / K + eps)
    if BP == 1:                  # one row: 2-D weight tiles reduced along K, no layout shuffles
        if XATT:                 # x: the attention of the queries at x over the slots (one tile of K)
            xa = _slot_attention(x_ptr, kc_ptr, vc_ptr, K, NQ // D, NKV // D, L, eps, D, KS, BLOCK_K)
        a1 = tl.zeros((BLOCK_N,), tl.float32)
        a2 = tl.zeros((BLOCK_N,), tl.float32)
        p1 = tl.zeros((BLOCK_N, BLOCK_K), tl.float32)                 # LATE: products summed per lane
        p2 = tl.zeros((BLOCK_N, BLOCK_K), tl.float32)
        for k0 in range(k_lo, k_hi, BLOCK_K):
            kmask = (k0 + kk) < k_hi
            if XATT:
                xk = xa
            else:
                xk = tl.load(x_ptr + k0 + kk, mask=kmask, other=0.0).to(tl.float32)
            if NORM:                                              # (x * r) rounded, times the weight, rounded
                nw = tl.load(nw_ptr + k0 + kk, mask=kmask, other=0.0).to(tl.float32)
                xk = ((xk * tl.sum(r, 0)).to(dt).to(tl.float32) * nw).to(dt).to(tl.float32)
            wmask = nmask[:, None] & kmask[None, :]
            if PREFETCH:
                following = nmask[:, None] & ((k0 + BLOCK_K + kk) < k_hi)[None, :]
                w = w_next.to(tl.float32)
                w_next = _weights(w_rows + (k0 + BLOCK_K + kk)[None, :], following, WEVICT)
            else:
                w = _weights(w_rows + (k0 + kk)[None, :], wmask, WEVICT).to(tl.float32)
            if LATE:
                p1 += w * xk[None, :]
            else:
                a1 += tl.sum(w * xk[None, :], 1)
            if EPI == _SWIGLU:
                if PREFETCH:
                    w2 = w2_next.to(tl.float32)
                    w2_next = _weights(w2_rows + (k0 + BLOCK_K + kk)[None, :], following, WEVICT)
                else:
                    w2 = _weights(w2_rows + (k0 + kk)[None, :], wmask, WEVICT).to(tl.float32)
                if LATE:
                    p2 += w2 * xk[None, :]
                else:
                    a2 += tl.sum(w2 * xk[None, :], 1)
        if LATE:
            a1 = tl.sum(p1, 1)
            a2 = tl.sum(p2, 1)
        acc = tl.reshape(a1, (1, BLOCK_N))
        acc2 = tl.reshape(a2, (1, BLOCK_N))
    else:                        # several rows share each weight tile
        acc = tl.zeros((BP, BLOCK_N), tl.float32)
        acc2 = tl.zeros((BP, BLOCK_N), tl.float32)
        for k0 in range(k_lo, k_hi, BLOCK_K):
            kmask = (k0 + kk) < k_hi
            xk = tl.load(x_ptr + rows[:, None] * K + (k0 + kk)[None, :], mask=rmask[:, None] & kmask[None, :],
                         other=0.0).to(tl.float32)
            if NORM:
                nw = tl.load(nw_ptr + k0 + kk, mask=kmask, other=0.0).to(tl.float32)
                xk = ((xk * r[:, None]).to(dt).to(tl.float32) * nw[None, :]).to(dt).to(tl.float32)
            wmask = nmask[:, None] & kmask[None, :]
            if PREFETCH:                                          # this tile was loaded one step ago
                following = nmask[:, None] & ((k0 + BLOCK_K + kk) < k_hi)[None, :]
                w = w_next
                w_next = _weights(w_rows + (k0 + BLOCK_K + kk)[None, :], following, WEVICT)
            else:
                w = _weights(w_rows + (k0 + kk)[None, :], wmask, WEVICT)
            if DOT:
                acc = _dot(xk.to(dt), w, acc, IEEE)
            else:
                acc += tl.sum(xk[:, None, :] * w.to(tl.float32)[None, :, :], 2)
            if EPI == _SWIGLU:
                if PREFETCH:
                    w2 = w2_next
                    w2_next = _weights(w2_rows + (k0 + BLOCK_K + kk)[None, :], following, WEVICT)
                else:
                    w2 = _weights(w2_rows + (k0 + kk)[None, :], wmask, WEVICT)
                if DOT:
                    acc2 = _dot(xk.to(dt), w2, acc2, IEEE)
                else:
                    acc2 += tl.sum(xk[:, None, :] * w2.to(tl.float32)[None, :, :], 2)
    smask = rmask                # rows whose sums of squares this program stores (SO)
    if SPLIT > 1:                # partial sums into this share's slice; the block's last program adds them in order
        wat = rows[:, None] * 2 * N + n[None, :]
        mine = ws_ptr + tl.program_id(1) * BP * 2 * N + wat
        tl.store(mine, acc, mask=omask)
        if EPI == _SWIGLU:
            tl.store(mine + N, acc2, mask=omask)
        tl.debug_barrier()                                        # all of this program's stores are issued
        last = tl.atomic_add(cnt_ptr + tl.program_id(0), 1, sem="acq_rel") == SPLIT - 1
        omask = omask & last
        smask = rmask & last
        acc = tl.zeros((BP, BLOCK_N), tl.float32)
        acc2 = tl.zeros((BP, BLOCK_N), tl.float32)
        for s in tl.static_range(SPLIT):                          # the same order every launch
            acc += tl.load(ws_ptr + s * BP * 2 * N + wat, mask=omask, other=0.0, cache_modifier=".cg")
            if EPI == _SWIGLU:
                acc2 += tl.load(ws_ptr + s * BP * 2 * N + wat + N, mask=omask, other=0.0, cache_modifier=".cg")
        tl.store(cnt_ptr + tl.program_id(0), 0, mask=last)
    y = acc.to(dt).to(tl.float32)
    if EPI == _PLAIN:
        tl.store(out_ptr + rows[:, None] * N + n[None, :], y.to(dt), mask=omask)
    if EPI == _RESIDUAL or EPI == _DOUBLE_RESIDUAL:                 # x + o (cross-attention: x + (x + o))
        y = (y + res).to(dt).to(tl.float32)
        if EPI == _DOUBLE_RESIDUAL:
            y = (y + res).to(dt).to(tl.float32)
        tl.store(out_ptr + rows[:, None] * N + n[None, :], y.to(dt), mask=omask)
        if SO:                                                    # this block's share of the rows' squares
            tl.store(so_ptr + rows * tl.num_programs(0) + tl.program_id(0), tl.sum(y * y, 1), mask=smask)
    if EPI == _SWIGLU:
        silu = (y * tl.sigmoid(y)).to(dt).to(tl.float32)
        tl.store(out_ptr + rows[:, None] * N + n[None, :], (silu * acc2.to(dt).to(tl.float32)).to(dt), mask=omask)
    if EPI == _SLOTS:            # keys then values into the caches (B, NKV // D, L, D)
        if AT_POS:               # row b at position pos[b] (the encoder's byte, for the pooling)
            seq = rows
            slot = tl.load(pos_ptr + rows, mask=rmask, other=0)
            kept = rmask
        else:                    # rows b * L + slot, where keep[b] (pos_ptr; the decoder's slots of a patch)
            seq, slot = rows // L, rows % L
            kept = tl.load(pos_ptr + seq, mask=rmask, other=0) != 0
        ch = n % NKV
        into = ((seq[:, None] * (NKV // D) + ch[None, :] // D) * L + slot[:, None]) * D + ch[None, :] % D
        tl.store(kc_ptr + into, y.to(dt), mask=omask & kept[:, None] & (n < NKV)[None, :])
        tl.store(vc_ptr + into, y.to(dt), mask=omask & kept[:, None] & (n >= NKV)[None, :])
    if EPI == _ROPE_CACHE:
        n0 = tl.program_id(0) * BLOCK_N                           # a block lies within one head
        if n0 < NQ + NKV:                                         # q and k are rotated pairwise
            even, odd = tl.split(tl.reshape(y, (BP, BLOCK_N // 2, 2)))
            rot = tl.reshape(tl.join(-odd, even), (BP, BLOCK_N))
            y = ((y * cos).to(dt).to(tl.float32) + (rot * sin).to(dt).to(tl.float32))
        if n0 < NQ:
            tl.store(out_ptr + rows[:, None] * NQ + n[None, :], y.to(dt), mask=omask)
        else:
            j = (n - NQ) % NKV                                    # kv channel: head * D + d
            at = ((rows[:, None] * (NKV // D) + j[None, :] // D) * L + pos[:, None]) * D + j[None, :] % D
            if n0 < NQ + NKV:
                tl.store(kc_ptr + at, y.to(dt), mask=omask)
            else:
                tl.store(vc_ptr + at, y.to(dt), mask=omask)


@triton.jit
def _slot_attention(q_ptr, k_ptr, v_ptr, K, HQ, HKV, L, scale, D: tl.constexpr, KS: tl.constexpr,
                    BLOCK_K: tl.constexpr):
    """One row's queries q (HQ heads of D: K channels) over L slots k, v (HKV, L, D), as
    _attention_kernel computes them in one share: (BLOCK_K,) float32 of the heads' outputs,
    rounded to q's dtype (channels from K on are zero)."""
    H: tl.constexpr = BLOCK_K // D
    c = tl.arange(0, BLOCK_K)
    j = tl.arange(0, KS)
    cm = c < K
    at = ((c // D) // (HQ // HKV) * L)[None, :] * D + j[:, None] * D + (c % D)[None, :]
    valid = j < L
    m2 = valid[:, None] & cm[None, :]
    kt = tl.load(k_ptr + at, mask=m2, other=0.0).to(tl.float32)                 # (KS, BLOCK_K)
    vt = tl.load(v_ptr + at, mask=m2, other=0.0).to(tl.float32)
    q = tl.load(q_ptr + c, mask=cm, other=0.0).to(tl.float32)
    sc = tl.where(valid[:, None], tl.sum(tl.reshape(kt * q[None, :], (KS, H, D)), 2) * scale, -1e30)   # (KS, H)
    m = tl.max(sc, 0)
    p = tl.where(valid[:, None], tl.exp(sc - m[None, :]), 0.0)
    l = tl.sum(p, 0)
    pv = tl.reshape(tl.broadcast_to(p[:, :, None], (KS, H, D)), (KS, BLOCK_K))
    y = tl.sum(pv * vt, 0) / tl.reshape(tl.broadcast_to(l[:, None], (H, D)), (BLOCK_K,))
    return y.to(q_ptr.dtype.element_ty).to(tl.float32)


@triton.jit
def _dot(x, w, acc, IEEE: tl.constexpr):
    """acc + x (BP, BLOCK_K) @ w (BLOCK_N, BLOCK_K)^T, accumulated in float32: on tensor cores,
    or (IEEE) in float32 exactly, for float32 weights and in Triton's CPU interpreter (whose
    dot does not take bfloat16; bfloat16 products are exact in float32 either way)."""
    if IEEE:
        return tl.dot(x.to(tl.float32), tl.trans(w.to(tl.float32)), acc, input_precision="ieee")
    return tl.dot(x, tl.trans(w), acc)


@triton.jit
def _softmax_tile(q, kb, vb, valid, m, l, acc, scale):
    """A tile of keys kb, values vb (BLOCK, D) folded into an online softmax's running max m,
    sum l and weighted values acc (D,); rows not valid count for nothing."""
    sc = tl.where(valid, tl.sum(kb * q[None, :], 1) * scale, -1e30)
    m_new = tl.maximum(m, tl.max(sc, 0))
    alpha = tl.exp(m - m_new)
    p = tl.where(valid, tl.exp(sc - m_new), 0.0)
    return m_new, l * alpha + tl.sum(p, 0), acc * alpha + tl.sum(p[:, None] * vb, 0)


@triton.jit
def _attention_kernel(q_ptr, k_ptr, v_ptr, pos_ptr, start_ptr, part_ptr, ml_ptr, cnt_ptr, y_ptr, HQ, HKV, HG, L, window,
                      scale, S: tl.constexpr, D: tl.constexpr, BLOCK: tl.constexpr, CAUSAL: tl.constexpr,
                      STARTS: tl.constexpr, EARLY: tl.constexpr, PDL: tl.constexpr, MIN_KEYS: tl.constexpr = 0):
    """Program (row*head, s): online softmax of one query over the s-th share of its valid keys.
    With S > 1 the shares go to part / ml; the last program of the head to finish (cnt, left
    at zero) merges them into y. MIN_KEYS > 0: a row's keys are shared among only as many of
    the S programs as give each at least MIN_KEYS (at least one); the others do nothing, and the
    merge waits for and reads just the shares made. EARLY (causal): the first tile's keys before
    pos, which earlier steps wrote, are loaded before waiting for the previous kernel (the one
    that writes the key at pos and the query); pos itself is never written by these kernels.
    STARTS (causal): no key before the row's start either."""
    if PDL:
        tl.extra.cuda.gdc_launch_dependents()
    bh, s = tl.program_id(0), tl.program_id(1)
    b, h = bh // HQ, bh % HQ
    hk = (h % HG) // (HG // HKV)                                  # HG: the query heads' cycle (HQ, or H of k slots)
    if CAUSAL:                                                    # keys pos-window+1 .. pos
        hi = tl.load(pos_ptr + b) + 1
        lo = tl.maximum(hi - window, 0)
        if STARTS:
            lo = tl.maximum(lo, tl.load(start_ptr + b))
    else:
        hi = L
        lo = 0
    active = S
    if MIN_KEYS > 0:
        active = tl.minimum(S, tl.maximum(1, tl.cdiv(hi - lo, MIN_KEYS)))
    if s < active:
        _attend_share(q_ptr, k_ptr, v_ptr, part_ptr, ml_ptr, cnt_ptr, y_ptr, b, hk, bh, s, lo, hi, active, HKV, L,
                      scale, S, D, BLOCK, EARLY, PDL)


@triton.jit
def _attend_share(q_ptr, k_ptr, v_ptr, part_ptr, ml_ptr, cnt_ptr, y_ptr, b, hk, bh, s, lo, hi, active, HKV, L, scale,
                  S: tl.constexpr, D: tl.constexpr, BLOCK: tl.constexpr, EARLY: tl.constexpr, PDL: tl.constexpr):
    """_attention_kernel's program s of `active` for row*head bh: keys lo..hi-1 shared out."""
    per = tl.cdiv(hi - lo, active)
    start = lo + s * per
    end = tl.minimum(hi, start + per)
    d = tl.arange(0, D)
    base = (b * HKV + hk).to(tl.int64) * L * D
    j = start + tl.arange(0, BLOCK)                               # the first tile
    valid = j < end
    rows = base + j[:, None] * D + d[None, :]
    if EARLY:
        early = valid & (j < hi - 1)
        kb = tl.load(k_ptr + rows, mask=early[:, None], other=0.0)
        vb = tl.load(v_ptr + rows, mask=early[:, None], other=0.0)
        if PDL:
            tl.extra.cuda.gdc_wait()
        now = valid & (j == hi - 1)                               # the key written by the previous kernel
        kb = tl.where(now[:, None], tl.load(k_ptr + rows, mask=now[:, None], other=0.0), kb)
        vb = tl.where(now[:, None], tl.load(v_ptr + rows, mask=now[:, None], other=0.0), vb)
    else:
        if PDL:
            tl.extra.cuda.gdc_wait()
        kb = tl.load(k_ptr + rows, mask=valid[:, None], other=0.0)
        vb = tl.load(v_ptr + rows, mask=valid[:, None], other=0.0)
    q = tl.load(q_ptr + bh * D + d).to(tl.float32)
    m, l, acc = _softmax_tile(q, kb.to(tl.float32), vb.to(tl.float32), valid, tl.full((), -1e30, tl.float32),
                              tl.zeros((), tl.float32), tl.zeros((D,), tl.float32), scale)
    for j0 in range(start + BLOCK, end, BLOCK):                   # the later tiles
        jt = j0 + tl.arange(0, BLOCK)
        vt = jt < end
        kt = tl.load(k_ptr + base + jt[:, None] * D + d[None, :], mask=vt[:, None], other=0.0).to(tl.float32)
        vals = tl.load(v_ptr + base + jt[:, None] * D + d[None, :], mask=vt[:, None], other=0.0).to(tl.float32)
        m, l, acc = _softmax_tile(q, kt, vals, vt, m, l, acc, scale)
    if S == 1:
        tl.store(y_ptr + bh * D + d, (acc / l).to(y_ptr.dtype.element_ty))
    else:
        tl.store(part_ptr + (bh * S + s) * D + d, acc)
        tl.store(ml_ptr + (bh * S + s) * 2, m)
        tl.store(ml_ptr + (bh * S + s) * 2 + 1, l)
        tl.debug_barrier()                                        # this program's share is written
        last = tl.atomic_add(cnt_ptr + bh, 1, sem="acq_rel") == active - 1
        ss = tl.arange(0, S)
        made = last & (ss < active)
        ms = tl.load(ml_ptr + (bh * S + ss) * 2, mask=made, other=-1e30, cache_modifier=".cg")
        ls = tl.load(ml_ptr + (bh * S + ss) * 2 + 1, mask=made, other=1.0, cache_modifier=".cg")
        w = tl.exp(ms - tl.max(ms, 0))
        parts = tl.load(part_ptr + (bh * S + ss)[:, None] * D + d[None, :], mask=made[:, None], other=0.0,
                        cache_modifier=".cg")
        y = tl.sum(parts * w[:, None], 0) / tl.sum(ls * w, 0)
        tl.store(y_ptr + bh * D + d, y.to(y_ptr.dtype.element_ty), mask=last)
        tl.store(cnt_ptr + bh, 0, mask=last)


def check_head_dims(stacks: dict) -> None:
    """The attention kernels take a head's width as one tile: it must be a power of two."""
    bad = {name: c.head_dim for name, c in stacks.items() if c is not None and c.head_dim & (c.head_dim - 1)}
    if bad:
        raise ValueError(f"kernels=True needs head widths that are a power of two; this model has {bad}")


def _bp(B: int, few: bool = False) -> int:
    """Rows a program holds: one, or at least 16 (a tensor-core tile's rows; the rest masked).
    few: up to 4 rows as 2 or 4 without tensor cores (the k slots of a patch, where a 16-row tile
    held 2: 5.9 us for a 4 MB projection on an H100, bench/README.md)."""
    if B == 1:
        return 1
    return triton.next_power_of_2(B) if few and B <= 4 else max(16, triton.next_power_of_2(B))


def _kp(BP: int, K: int) -> int:
    """Width of the one-load RMSNorm prologue for BP rows (0: loop over K instead, for wide
    batched rows)."""
    kp = triton.next_power_of_2(K)
    return kp if BP * kp <= 8192 else 0


# The block shape Triton's interpreter runs on the CPU unless KernelConfig.block_shape says otherwise.
INTERPRETER_BLOCK = {"BLOCK_N": 8, "BLOCK_K": 32, "LATE": False, "PREFETCH": False, "SPLIT": 1}


def _pdl(device: torch.device, config: KernelConfig) -> bool:
    if device.type != "cuda":
        return False
    return config.pdl if config.pdl is not None else torch.cuda.get_device_capability(device)[0] >= 9


_WORKSPACES: dict = {}


def _workspace(weight, BP, N, split):
    """The split-K partial sums (one slice per share of K, written whole by every launch) and
    arrival counters (zeros, which every launch leaves at zero) of one weight's products. One
    pair per weight (and batch width and split), so kernels running side by side on different
    streams (the entropy model beside the global model) never share one."""
    key = (weight.device, weight.data_ptr(), BP, N, split)
    if key not in _WORKSPACES:
        _WORKSPACES[key] = (torch.empty(split, BP, 2 * N, dtype=torch.float32, device=weight.device),
                            torch.zeros(N, dtype=torch.int32, device=weight.device))
    return _WORKSPACES[key]


_COUNTERS: dict = {}


def _counters(device, n):
    """Arrival counters of the attention's programs, one per head: zeros, left at zero by every
    launch. Attention kernels run one after another on a stream, except the entropy model's
    beside the others; one set per stream keeps those apart. Never replaced once made (a
    captured CUDA graph may hold it)."""
    stream = torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
    key = (device, stream, n)
    if key not in _COUNTERS:
        _COUNTERS[key] = torch.zeros(n, dtype=torch.int32, device=device)
    return _COUNTERS[key]


def _launch(config: KernelConfig, N, x, nw, w, *args, x_stats=None, stats=False, **meta):
    """The matrix-vector kernel over x (B, K), cdiv(N, BLOCK_N) x SPLIT programs: the config's
    block_shape if it has one, else block_config's on CUDA and on the CPU (Triton's interpreter,
    TRITON_INTERPRET=1, used by the tests) one small fixed shape. x_stats: x's partial sums of
    squares, from the launch that wrote x. stats: return the output's (BP, programs) float32, or
    None where this launch leaves none (one row, or no residual epilogue)."""
    if config.block_shape is not None:
        cfg = dict(config.block_shape(N, x.shape[1], meta["BP"], meta["EPI"], meta["D"]))
    elif x.is_cuda:
        if "LAYERS" in meta:                     # one counter per block: a launch over layers stays unsplit
            config = replace(config, long_k_split=1)
        cfg = block_config(N, x.shape[1], meta["BP"], meta["EPI"], meta["D"], config)
    else:
        cfg = dict(INTERPRETER_BLOCK)
    if meta["EPI"] == ROPE_CACHE:                # RoPE pairs and the cache layout: a block inside one head
        cfg["BLOCK_N"] = min(cfg["BLOCK_N"], meta["D"])
    if meta.get("XATT"):                         # the attention over the slots is made for all of K at once
        cfg["BLOCK_K"] = triton.next_power_of_2(x.shape[1])
        cfg.update(BLOCK_N=max(1, min(cfg["BLOCK_N"], 2048 // cfg["BLOCK_K"])), SPLIT=1)
    meta["KP"] = _kp(meta["BP"], x.shape[1])
    split = _workspace(w, meta["BP"], N, cfg["SPLIT"]) if cfg["SPLIT"] > 1 else (x, x)    # unused without a split
    programs = triton.cdiv(N, cfg["BLOCK_N"])
    so = (torch.empty(meta["BP"], programs, dtype=torch.float32, device=x.device)
          if stats and meta["BP"] > 1 and meta["EPI"] in (RESIDUAL, DOUBLE_RESIDUAL) else None)
    si = x_stats if meta["NORM"] else None
    meta["SI"], meta["SO"] = (triton.next_power_of_2(si.shape[1]) if si is not None else 0), so is not None
    args = (x, nw, w, *args[:7], *split, si if si is not None else x, so if so is not None else x, *args[7:],
            si.shape[1] if si is not None else 0)
    pdl = cfg.pop("PDL", True) and _pdl(x.device, config)    # a block shape may launch without PDL
    launch = {"launch_pdl": True} if pdl else {}
    # tensor cores take tiles of at least 16 rows, outputs and K (smaller ones: the products summed)
    dot = meta["BP"] >= 16 and cfg["BLOCK_N"] >= 16 and cfg["BLOCK_K"] >= 16
    layers = meta.pop("LAYERS", None)           # given: w, nw and the caches are pointer tables (TABLES)
    if layers is not None and cfg["SPLIT"] > 1:
        raise ValueError("a launch over several layers' tables cannot split K (one counter per block)")
    _matvec_kernel[(programs, cfg["SPLIT"], layers or 1)](*args, **meta, **cfg, PDL=pdl, DOT=dot,
                                                          TABLES=layers is not None,
                                                          WEVICT=config.weight_eviction if meta["BP"] == 1 else "",
                                                          IEEE=x.dtype == torch.float32 or not x.is_cuda, **launch)
    return so


def matvec(x, weight, epi=PLAIN, norm=None, res=None, out_features=None, config: KernelConfig = DEFAULT,
           x_stats=None, stats=False, few_rows=False, out=None):
    """x (B, K) -> (B, N): epilogue(weight @ prologue(x)); norm: an RMSNorm applied first;
    res (B, N): the residual of RESIDUAL / DOUBLE_RESIDUAL. x_stats: x's row statistics as the
    launch that wrote x returned them (the norm then makes no pass over x for them). stats: return
    (out, out's statistics or None) for the next launch's norm. few_rows: up to 4 rows without
    tensor-core tiles (`_bp`). out: (B, N) rows of stride N to write (PLAIN; results rounded to
    x's dtype, then stored in out's)."""
    B, K = x.shape
    N = out_features or weight.shape[0]
    if out is None:
        out = torch.empty(B, N, dtype=x.dtype, device=x.device)
    elif out.shape != (B, N) or out.stride() != (N, 1) or epi != PLAIN:
        raise ValueError(f"out must be a ({B}, {N}) tensor of rows of stride {N}, for a plain product")
    so = _launch(config, N, x, norm.weight if norm is not None else x, weight, out, res if res is not None else x,
                 x, x, x, x, x, B, N, K, norm.eps if norm is not None else 0.0, 0, 0, 0,
                 BP=_bp(B, few_rows), D=1, NORM=norm is not None, EPI=epi, x_stats=x_stats, stats=stats)
    return (out, so) if stats else out


def qkv_rope_cache(x, attn, norm, cache, pos, cos, sin, config: KernelConfig = DEFAULT, x_stats=None):
    """x (B, C): RMSNorm, q/k/v projection, RoPE at pos (B,); k, v written into the cache at pos.
    Returns q (B, H * D). x_stats: as for `matvec`."""
    B, K = x.shape
    D, L = attn.head_dim, cache.k.shape[2]
    NQ, NKV = attn.n_heads * D, attn.n_kv_heads * D
    q = torch.empty(B, NQ, dtype=x.dtype, device=x.device)
    N = NQ + 2 * NKV
    _launch(config, N, x, norm.weight, attn.qkv_proj.weight, q, x, pos, cos, sin, cache.k, cache.v,
            B, N, K, norm.eps, NQ, NKV, L, BP=_bp(B), D=D, NORM=True, EPI=ROPE_CACHE, x_stats=x_stats)
    return q


def attention_splits(config: KernelConfig, B: int) -> int:
    """Programs per head for B rows: the config's splits shared among the rows, at least its
    minimum, as a power of two (the merge loads the shares as one tile)."""
    splits = max(config.attention_splits // B, min(config.attention_min_splits, config.attention_splits))
    return 1 << (splits.bit_length() - 1)


def attention(q, k, v, n_heads, pos=None, window=None, splits=None, block=None, num_warps=None,
              config: KernelConfig = DEFAULT, start=None, head_cycle=None):
    """q (B, H * D) over k, v (B, Hkv, L, D): causal at pos (B,) within `window` keys and from
    start (B,) on if given, or over all L keys when pos is None. Query heads map to key heads as
    in grouped-query attention (head h reads key head h // (H / Hkv)). Returns (B, H * D) in q's
    dtype. The valid keys are shared out
    among `splits` programs per head (a few hundred keys: one tile of `block` each), so the chain
    of dependent loads stays short; programs with no keys left skip the loop. Unset launch
    parameters come from the config's attention_splits (divided among the rows, at least
    attention_min_splits), attention_block, attention_warps; of those programs, a row's keys
    take only as many as give each config.attention_min_keys (0: all). head_cycle: query heads repeat the
    key heads' mapping every head_cycle heads (the pooling's k slots of H heads: head j reads key
    head (j % H) // (H / Hkv)); None: n_heads."""
    B = q.shape[0]
    splits = splits or attention_splits(config, B)
    block = block or config.attention_block
    num_warps = num_warps or config.attention_warps
    Hkv, L, D = k.shape[1], k.shape[2], k.shape[3]
    part = torch.empty(B * n_heads, splits, D, dtype=torch.float32, device=q.device)
    ml = torch.empty(B * n_heads, splits, 2, dtype=torch.float32, device=q.device)
    y = torch.empty_like(q)
    pdl = _pdl(q.device, config)
    _attention_kernel[(B * n_heads, splits)](
        q, k, v, pos if pos is not None else q, start if start is not None else q, part, ml,
        _counters(q.device, B * n_heads), y, n_heads, Hkv, head_cycle or n_heads, L, window or L + 1, D ** -0.5,
        S=splits, D=D, BLOCK=block,
        CAUSAL=pos is not None, STARTS=start is not None, EARLY=pos is not None and config.early_keys, PDL=pdl,
        MIN_KEYS=config.attention_min_keys if splits > 1 else 0,
        num_warps=num_warps,
        **({"launch_pdl": True} if pdl else {}))
    return y


@torch.library.custom_op("blt_studio::cached_attention", mutates_args=())
def cached_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor, n_heads: int,
                     window: int, start: torch.Tensor | None = None) -> torch.Tensor:
    """`attention` at pos within `window` keys (0: no window), from `start` on if given, as one
    opaque operator, so compiled torch layers call it without a graph break: the batched step's
    attention (layers.CachedAttention), which reads each row's keys up to its own position
    instead of the whole cache, and the encoder's pooling of the open patch (start: its first byte)."""
    return attention(q.contiguous(), k, v, n_heads, pos, window or None, start=start)


@cached_attention.register_fake
def _(q, k, v, pos, n_heads, window, start=None):
    return torch.empty_like(q)


@torch.compiler.disable          # compiled step parts call these as opaque steps (a graph break each)
def block_step(layer, x, pos, cache, cos, sin, window=None, config: KernelConfig = DEFAULT):
    """One decoding step of `layers.Block` for x (B, 1, C) at positions pos (B,), writing the
    cache; cos, sin: the stack's whole RoPE tables (L, D). Returns (B, 1, C)."""
    B, _, C = x.shape
    return _block(layer, x.reshape(B, C).contiguous(), pos, cache, cos, sin, window, config)[0][:, None]


@torch.compiler.disable
def cross_step(cross, x, k, v, config: KernelConfig = DEFAULT):
    """h + cross.attend(h, k, v) for one row per sequence, x (B, 1, C) over cached slots k, v
    (B, Hkv, k, D): the decoder's cross-attention step (2h + o(attn), as in layers.CrossAttention)."""
    B, _, C = x.shape
    return _cross(cross, x.reshape(B, C).contiguous(), k, v, config)[0][:, None]


@torch.compiler.disable          # one opaque call per stack (a graph break per layer would recompile per index)
def stack_step(layers, caches, x, pos, cos, sin, window=None, config: KernelConfig = DEFAULT, crosses=()):
    """`block_step` through every layer of a stack (x (B, 1, C)), each after its cross-attention
    step if `crosses` has one for it ((cross, k, v), the decoder's first layers). Each launch that
    writes x hands its rows' sums of squares to the next RMSNorm (several rows)."""
    B, _, C = x.shape
    x, stats = x.reshape(B, C).contiguous(), None                        # rows of stride C
    for i, (layer, cache) in enumerate(zip(layers, caches)):
        if i < len(crosses):
            x, stats = _cross(crosses[i][0], x, *crosses[i][1:], config, stats)
        x, stats = _block(layer, x, pos, cache, cos, sin, window, config, stats)
    return x[:, None]


def slot_tables(decoder, caches) -> tuple:
    """For `decoder_slots`: device tables of each layer's addresses (k/v projection, k_norm, the
    cache's keys and values), int64, in layer order. Make them outside graph capture and keep
    them as long as graphs that use them (IncrementalBLT makes them once, with its caches)."""
    crosses = decoder.cross_attn_layers
    groups = ([c.kv_proj.weight for c in crosses], [c.k_norm.weight for c in crosses], [c.k for c in caches],
              [c.v for c in caches])
    for group in groups:
        if len({(t.shape, t.dtype) for t in group}) != 1:
            raise ValueError("decoder_slots needs every layer's weights and caches of one shape and dtype")
    return tuple(torch.tensor([t.data_ptr() for t in group], dtype=torch.int64, device=group[0].device)
                 for group in groups)


@torch.compiler.disable
def decoder_slots(decoder, g, caches, keep, config: KernelConfig = DEFAULT, tables=None):
    """The decoder's cross-attention keys and values of the k slots of global output g (B, 1, Cg),
    written into each layer's cache (B, Hkv, k, D) for rows where keep (B,) bool, others left as
    they are: the slots' projection, then one launch for every layer (k_norm, k/v projection, the
    masked write; each layer's weights and caches from `slot_tables`, made here if not given), as
    `IncrementalBLT._set_decoder_patch` computes them eagerly. (One launch per layer took 5.6 us
    each, 9 in a row, for 4 MB apiece on an H100: bench/README.md.)"""
    B = g.shape[0]
    slots = matvec(g.reshape(B, -1).contiguous(), decoder.patch_embedding_projection.weight, config=config)
    x = slots.view(B * decoder.k, -1)                                   # row b * k + slot
    cross, K = decoder.cross_attn_layers[0], x.shape[1]
    NKV = cross.n_kv_heads * cross.head_dim
    w, nw, kc, vc = tables if tables is not None else slot_tables(decoder, caches)
    _launch(config, 2 * NKV, x, nw, w, x, x, keep, x, x, kc, vc, B * decoder.k, 2 * NKV, K, cross.k_norm.eps, 0, NKV,
            decoder.k, BP=_bp(B * decoder.k, few=True), D=cross.head_dim, NORM=True, EPI=SLOTS,
            LAYERS=len(decoder.cross_attn_layers))


def cross_output(q, cross, x, k, v, config: KernelConfig = DEFAULT):
    """One row's cross-attention output x + (x + o(attention of q over the slots k, v)), q, x (1, C),
    k, v (1, Hkv, L, D), in one launch: each program of the output projection computes the
    attention over the L slots itself (a few KB from L2), so the step saves the attention's
    launch (KernelConfig.cross_in_output; bench/README.md)."""
    B, K = q.shape
    N, L = cross.o_proj.weight.shape[0], k.shape[2]
    if B != 1:
        raise ValueError("cross_output takes one row")
    out = torch.empty(B, N, dtype=x.dtype, device=x.device)
    _launch(config, N, q, q, cross.o_proj.weight, out, x, x, x, x, k, v, B, N, K, cross.head_dim ** -0.5,
            cross.n_heads * cross.head_dim, cross.n_kv_heads * cross.head_dim, L, BP=1, D=cross.head_dim,
            NORM=False, EPI=DOUBLE_RESIDUAL, XATT=True, KS=triton.next_power_of_2(L))
    return out


@torch.compiler.disable
def norm_head(x, norm, weight, config: KernelConfig = DEFAULT, out=None):
    """weight @ norm(x) for x (B, C) in one launch -> (B, V), rounded to x's dtype (the decoder's
    final norm and the byte head); into `out` (B, V) if given, of any float dtype (the stepper's
    float32 logits: no copy launched after)."""
    return matvec(x.contiguous(), weight, norm=norm, config=config, out=out)


@torch.compiler.disable
def kv_at(cross, h, cache, pos, config: KernelConfig = DEFAULT):
    """Keys and values of one state per row, h (B, C), into cache (B, Hkv, L, D) at pos (B,): the
    encoder's byte for the patch pooling (k_norm, k/v projection and the write in one launch)."""
    B, C = h.shape
    NKV = cross.n_kv_heads * cross.head_dim
    _launch(config, 2 * NKV, h, cross.k_norm.weight, cross.kv_proj.weight, h, h, pos, h, h, cache.k, cache.v,
            B, 2 * NKV, C, cross.k_norm.eps, 0, NKV, cache.k.shape[2], BP=_bp(B), D=cross.head_dim, NORM=True,
            EPI=SLOTS, AT_POS=True)


@torch.compiler.disable
def pool_patch(encoder, pooled, cache, pos, start, config: KernelConfig = DEFAULT):
    """The open patch's k slots, encoder.patch_embedding_projection(pooled (B, C)), each attending
    to the patch's bytes (cached keys start..pos) -> (B, k * C): q + (q + o(attention)), as
    `IncrementalBLT.global_step` computes it eagerly."""
    B, C = pooled.shape
    k, cross = encoder.k, encoder.cross_attn_layers[-1]
    H, D = cross.n_heads, cross.head_dim
    q = matvec(pooled.contiguous(), encoder.patch_embedding_projection.weight, config=config).view(B * k, C)
    heads = matvec(q, cross.q_proj.weight, norm=cross.q_norm, config=config, few_rows=True)   # rows (b, slot)
    # row b's k * H heads in (slot, h) order; head j reads key head (j % H) // (H / Hkv)
    y = attention(heads.view(B, k * H * D), cache.k, cache.v, k * H, pos, None, config=config, start=start,
                  head_cycle=H)
    return matvec(y.view(B * k, H * D), cross.o_proj.weight, DOUBLE_RESIDUAL, res=q, config=config,
                  few_rows=True).view(B, k * C)


def _block(layer, x, pos, cache, cos, sin, window, config, x_stats=None):
    """block_step on x (B, C) -> (B, C) and its row statistics (or None)."""
    att, mlp = layer.self_attn, layer.mlp
    q = qkv_rope_cache(x, att, layer.input_layernorm, cache, pos, cos, sin, config, x_stats)
    y = attention(q, cache.k, cache.v, att.n_heads, pos, window, config=config)
    x, x_stats = matvec(y, att.o_proj.weight, RESIDUAL, res=x, config=config, stats=True)
    h = matvec(x, mlp.gate_up_proj.weight, SWIGLU, norm=layer.post_attention_layernorm,
               out_features=mlp.down_proj.weight.shape[1], config=config, x_stats=x_stats)
    return matvec(h, mlp.down_proj.weight, RESIDUAL, res=x, config=config, stats=True)


def _cross(cross, x, k, v, config, x_stats=None):
    """cross_step on x (B, C) -> (B, C) and its row statistics (or None)."""
    q = matvec(x, cross.q_proj.weight, PLAIN, norm=cross.q_norm, config=config, x_stats=x_stats)
    if x.shape[0] == 1 and config.cross_in_output:
        return cross_output(q, cross, x, k, v, config), None
    y = attention(q, k, v, cross.n_heads, splits=1, block=triton.next_power_of_2(k.shape[2]), config=config)
    return matvec(y, cross.o_proj.weight, DOUBLE_RESIDUAL, res=x, config=config, stats=True)
