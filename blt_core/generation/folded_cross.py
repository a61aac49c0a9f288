"""The local decoder's cross-attention step with its query and output weights folded into the
patch's slots (CUDA fast path: one launch a layer where there were three).

A decoder byte attends only to the k slots of its own patch, without RoPE, so the two products
around that attention can move onto the slots, once per patch (h a head of width D, j a slot):

    score[h, j] = (Wq_h qn(x)) . key[h, j] / sqrt(D)  = qn(x) . u[j, h] / sqrt(D),  u[j, h] = Wq_h^T key[h, j]
    o           = sum_h Wo[:, h] sum_j p[h, j] val[h, j] = sum_{j, h} p[h, j] w[j, h],  w[j, h] = Wo[:, h] val[h, j]

`fold_slots` computes u and w (float32, C wide each) for every layer in one launch, after the
slots' keys and values are written (`IncrementalBLT._set_decoder_patch`); `cross_folded` then
takes a byte's step from x alone: the RMSNorm, k H dot products, a softmax over each head's k
slots and a sum of k H vectors. At blt-1b's decoder (C 1024, 16 heads, k 2) it reads 256 KB of
u and w per row where the unfolded step (decode_kernels._cross) read Wq and Wo, 4 MB, in three
dependent launches; `fold_slots` reads Wq and Wo once per patch instead.

The sums run in another order than the unfolded step's, and q and the attention's output are not
rounded to the weights' dtype in between, so the step agrees with `layers.CrossAttention` to
rounding (tests/test_folded_cross.py), as the other kernels do; the rest of the step rounds
where the eager one does (the norm's output, o, and each of the two residual sums).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from .options import KernelConfig


@dataclass
class FoldedSlots:
    """One decoder layer's folded slots, per row: u, w (B, k, H, C) float32 (see the module
    docstring; rows and slots as the slots' KVCache has them)."""
    u: torch.Tensor
    w: torch.Tensor

    @classmethod
    def empty(cls, cross, batch: int, k: int, device) -> FoldedSlots:
        shape = (batch, k, cross.n_heads, cross.q_proj.in_features)
        return cls(torch.zeros(shape, dtype=torch.float32, device=device),
                   torch.zeros(shape, dtype=torch.float32, device=device))


@triton.jit
def _fold_kernel(wq_tab, wo_tab, kc_tab, vc_tab, u_tab, w_tab, dt_ref, B, C, HKV,
                 H: tl.constexpr, KS: tl.constexpr, D: tl.constexpr, BC: tl.constexpr):
    """Program (c block, head h, layer * 2 + part), for every row b and slot j of the layer (its
    addresses from the tables): part 0, u[b, j, h, c] = sum_d Wq[h D + d, c] key[b, hk, j, d];
    part 1, w[b, j, h, c] = sum_d Wo[c, h D + d] val[b, hk, j, d] (hk: h's key head)."""
    cb, h, lp = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    layer, part = lp // 2, lp % 2
    dt = dt_ref.dtype.element_ty
    c = cb * BC + tl.arange(0, BC)
    cm = c < C
    d = tl.arange(0, D)
    hk = h // (H // HKV)
    if part == 0:
        wq = tl.load(wq_tab + layer).to(tl.pointer_type(dt))
        keys = tl.load(kc_tab + layer).to(tl.pointer_type(dt))
        out = tl.load(u_tab + layer).to(tl.pointer_type(tl.float32))
        wq_t = tl.load(wq + (h * D + d)[:, None] * C + c[None, :], mask=cm[None, :], other=0.0).to(tl.float32)
        for b in range(B):                                                       # wq_t (D, BC)
            for j in tl.static_range(KS):
                key = tl.load(keys + ((b * HKV + hk) * KS + j) * D + d).to(tl.float32)
                tl.store(out + ((b * KS + j) * H + h) * C + c, tl.sum(wq_t * key[:, None], 0), mask=cm)
    else:
        wo = tl.load(wo_tab + layer).to(tl.pointer_type(dt))
        vals = tl.load(vc_tab + layer).to(tl.pointer_type(dt))
        out = tl.load(w_tab + layer).to(tl.pointer_type(tl.float32))
        wo_t = tl.load(wo + c[:, None] * (H * D) + (h * D + d)[None, :], mask=cm[:, None], other=0.0).to(tl.float32)
        for b in range(B):                                                       # wo_t (BC, D)
            for j in tl.static_range(KS):
                val = tl.load(vals + ((b * HKV + hk) * KS + j) * D + d).to(tl.float32)
                tl.store(out + ((b * KS + j) * H + h) * C + c, tl.sum(wo_t * val[None, :], 1), mask=cm)


@triton.jit
def _cross_folded_kernel(x_ptr, nw_ptr, u_ptr, w_ptr, out_ptr, C, eps, scale,
                         H: tl.constexpr, HP: tl.constexpr, KS: tl.constexpr, KP: tl.constexpr,
                         CK: tl.constexpr, BO: tl.constexpr, PDL: tl.constexpr):
    """Program (row b, output block): the whole row's scores (every program takes them alike),
    then its block of 2 x + o. Score rows r = j HP + h (HP, KP: H, k padded to powers of two)."""
    if PDL:
        tl.extra.cuda.gdc_launch_dependents()
        tl.extra.cuda.gdc_wait()                         # x, and u and w where a patch just ended
    b, ob = tl.program_id(0), tl.program_id(1)
    dt = x_ptr.dtype.element_ty
    r = tl.arange(0, KP * HP)
    j, h = r // HP, r % HP
    valid = (j < KS) & (h < H)
    rows = ((b * KS + j) * H + h).to(tl.int64) * C
    ss = tl.zeros((CK,), tl.float32)
    for c0 in range(0, C, CK):                           # the RMSNorm's statistics
        cc = c0 + tl.arange(0, CK)
        xv = tl.load(x_ptr + b * C + cc, mask=cc < C, other=0.0).to(tl.float32)
        ss += xv * xv
    inv = tl.rsqrt(tl.sum(ss, 0) / C + eps)
    acc = tl.zeros((KP * HP,), tl.float32)
    for c0 in range(0, C, CK):                           # qn(x) . u, as the eager norm rounds qn(x)
        cc = c0 + tl.arange(0, CK)
        cm = cc < C
        xv = tl.load(x_ptr + b * C + cc, mask=cm, other=0.0).to(tl.float32)
        nw = tl.load(nw_ptr + cc, mask=cm, other=0.0).to(tl.float32)
        xn = (nw * (xv * inv).to(dt).to(tl.float32)).to(dt).to(tl.float32)
        ut = tl.load(u_ptr + rows[:, None] + cc[None, :], mask=valid[:, None] & cm[None, :], other=0.0)
        acc += tl.sum(ut * xn[None, :], 1)
    s = tl.reshape(tl.where(valid, acc * scale, -1e30), (KP, HP))
    e = tl.exp(s - tl.max(s, 0)[None, :])                 # softmax over each head's slots
    p = tl.reshape(e / tl.sum(e, 0)[None, :], (KP * HP,))
    p = tl.where(valid, p, 0.0)
    oc = ob * BO + tl.arange(0, BO)
    om = oc < C
    wt = tl.load(w_ptr + rows[:, None] + oc[None, :], mask=valid[:, None] & om[None, :], other=0.0)
    o = tl.sum(p[:, None] * wt, 0).to(dt).to(tl.float32)
    xb = tl.load(x_ptr + b * C + oc, mask=om, other=0.0).to(tl.float32)
    once = (xb + o).to(dt).to(tl.float32)                # x + o(attn), as CrossAttention.attend rounds it
    tl.store(out_ptr + b * C + oc, (xb + once).to(dt), mask=om)


def fold_tables(decoder, caches, folds) -> tuple:
    """Device tables of each layer's addresses for `fold_slots` (Wq, Wo, the slots' keys and
    values, u, w), int64, in layer order. Make them outside graph capture and keep them as long
    as graphs that use them (IncrementalBLT makes them once, with its caches)."""
    crosses = decoder.cross_attn_layers
    groups = ([c.q_proj.weight for c in crosses], [c.o_proj.weight for c in crosses], [c.k for c in caches],
              [c.v for c in caches], [f.u for f in folds], [f.w for f in folds])
    for group in groups:
        if len({(t.shape, t.dtype) for t in group}) != 1:
            raise ValueError("fold_slots needs every layer's weights and caches of one shape and dtype")
    return tuple(torch.tensor([t.data_ptr() for t in group], dtype=torch.int64, device=group[0].device)
                 for group in groups)


@torch.compiler.disable
def fold_slots(decoder, caches, folds, tables=None) -> None:
    """u and w of every decoder layer from its slots' keys and values in `caches` (B, Hkv, k, D),
    for the first B rows (a view's; the tables hold the whole stepper's addresses), in one launch."""
    cross = decoder.cross_attn_layers[0]
    B, HKV, k, D = caches[0].k.shape
    C = cross.q_proj.in_features
    tables = tables if tables is not None else fold_tables(decoder, caches, folds)
    BC = 128 if caches[0].k.is_cuda else 16
    _fold_kernel[(triton.cdiv(C, BC), cross.n_heads, 2 * len(folds))](
        *tables, cross.q_proj.weight, B, C, HKV, H=cross.n_heads, KS=k, D=D, BC=BC)


@torch.compiler.disable
def cross_folded(cross, x, fold: FoldedSlots, config: KernelConfig) -> torch.Tensor:
    """x (B, C) -> 2 x + o(attention of qn(x) over the row's k slots) (B, C), from the slots as
    `fold_slots` folded them: `decode_kernels._cross`'s step in one launch."""
    B, C = x.shape
    H, k = cross.n_heads, fold.u.shape[1]
    out = torch.empty_like(x)
    pdl = x.is_cuda and (config.pdl if config.pdl is not None else torch.cuda.get_device_capability(x.device)[0] >= 9)
    BO, CK = (128, 256) if x.is_cuda else (16, 32)
    _cross_folded_kernel[(B, triton.cdiv(C, BO))](
        x, cross.q_norm.weight, fold.u, fold.w, out, C, cross.q_norm.eps, cross.head_dim ** -0.5,
        H=H, HP=triton.next_power_of_2(H), KS=k, KP=triton.next_power_of_2(k), CK=CK, BO=BO, PDL=pdl,
        **({"launch_pdl": True} if pdl else {}))
    return out
