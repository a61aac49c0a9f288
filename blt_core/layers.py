"""Transformer building blocks shared by the four BLT stacks.

RMSNorm, interleaved RoPE, self-attention (causal, optional sliding window, GQA), SwiGLU, the
pre-norm block, and the patch cross-attention. Attention is `F.scaled_dot_product_attention` on
every device. Numerics follow transformers' BLT: RMSNorm in float32, RoPE tables in float32 cast
to the activation dtype, RoPE rotating adjacent pairs (x[2i], x[2i+1]), not the Llama half split.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import StackConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_tables(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype):
    """cos, sin of shape (T, head_dim) for integer positions (T,), each angle repeated for its pair."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    angles = positions.float()[:, None] * inv_freq[None, :]           # (T, head_dim/2)
    angles = angles.repeat_interleave(2, dim=-1)                       # (T, head_dim)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x (B, H, T, D) rotated pairwise: (a, b) -> (a cos - b sin, b cos + a sin)."""
    a, b = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack((-b, a), dim=-1).flatten(-2)                 # (B, H, T, D)
    return x * cos + rotated * sin


def causal_mask(t_q: int, t_k: int, window: int | None, device) -> torch.Tensor | None:
    """Boolean (t_q, t_k) mask, True = may attend. Queries are the last t_q of t_k positions.
    Key j is visible to query i iff j <= i and (no window or i - j < window). None = plain causal
    over equal lengths, which SDPA handles with is_causal."""
    if window is not None and window >= t_k:
        window = None                                                    # nothing falls outside
    if window is None and t_q == t_k:
        return None
    i = torch.arange(t_k - t_q, t_k, device=device)[:, None]
    j = torch.arange(t_k, device=device)[None, :]
    mask = j <= i
    if window is not None:
        mask &= (i - j) < window
    return mask


class FusedLinear(nn.Linear):
    """Bias-free projections of one input computed as one matrix product (fewer, larger kernels).
    `parts` maps each projection's transformers name (q_proj, k_proj, ...) to its output width;
    checkpoint.py splits and joins the weight rows in that order."""

    def __init__(self, dim: int, parts: dict[str, int]):
        super().__init__(dim, sum(parts.values()), bias=False)
        self.parts = dict(parts)

    def forward(self, x):
        return super().forward(x).split(list(self.parts.values()), dim=-1)


class KVCache:
    """Keys and values of one attention layer for B rows and up to `length` positions.
    Rows advance independently: a decoding step writes row b at its own position pos[b]."""

    def __init__(self, batch, n_kv_heads, length, head_dim, dtype, device):
        self.k = torch.zeros(batch, n_kv_heads, length, head_dim, dtype=dtype, device=device)
        self.v = torch.zeros_like(self.k)

    def fill(self, k, v):
        """Prefill: k, v (B, Hkv, T, D) become positions 0..T-1."""
        T = k.shape[2]
        self.k[:, :, :T], self.v[:, :, :T] = k, v

    def write(self, pos, k, v):
        """One step: k, v (B, Hkv, 1, D) go to position pos[b] of row b; returns the whole cache."""
        rows = torch.arange(k.shape[0], device=k.device)
        self.k[rows, :, pos], self.v[rows, :, pos] = k[:, :, 0], v[:, :, 0]
        return self.k, self.v


class WindowCache:
    """Keys and values of the last `window - 1` positions of one attention layer: all that later
    queries under a sliding window of `window` can see, so a long input can be read chunk by chunk
    (`Stack.run_layers(..., start=...)`) with memory bounded by the chunk and the window."""

    def __init__(self, window: int):
        self.keep = window - 1
        self.k = self.v = None

    def extend(self, k, v):
        """k, v (B, Hkv, T, D) of the next T positions -> those of the kept past and these
        (B, Hkv, past + T, D); keeps the last window - 1 for the next call."""
        if self.k is not None:
            k, v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        first = max(0, k.shape[2] - self.keep)
        self.k, self.v = k[:, :, first:], v[:, :, first:]
        return k, v


class Attention(nn.Module):
    """Multi-head self-attention with RoPE; n_kv_heads < n_heads shares keys/values (GQA).
    With a cache: pos None fills it from position 0 (prefill); pos (B,) is one decoding step
    whose query attends over the whole cache under `mask` (B, 1, 1, length). With a WindowCache,
    x continues the positions it holds (under a SlidingWindow mask)."""

    def __init__(self, cfg: StackConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        q, kv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
        self.qkv_proj = FusedLinear(cfg.dim, {"q_proj": q, "k_proj": kv, "v_proj": kv})
        self.o_proj = nn.Linear(q, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask=None, cache: KVCache | None = None, pos=None):
        B, T, _ = x.shape
        q, k, v = self.qkv_proj(x)
        q = q.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)                 # (B, H, T, D)
        k = k.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)              # (B, Hkv, T, D)
        v = v.view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if isinstance(cache, WindowCache):
            k, v = cache.extend(k, v)                                      # (B, Hkv, past + T, D)
        elif cache is not None and pos is not None:
            k, v = cache.write(pos, k, v)                                  # (B, Hkv, length, D)
        elif cache is not None:
            cache.fill(k, v)
        if isinstance(mask, SlidingWindow):
            y = windowed_attend(q, k, v, mask.size)
        elif isinstance(mask, CachedAttention):                            # one query per row
            y = mask.fn(q.reshape(B, -1), k, v, mask.pos, self.n_heads, mask.window or 0)
            y = y.view(B, self.n_heads, 1, self.head_dim)
        else:
            y = attend(q, k, v, mask, is_causal=mask is None and pos is None)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


@dataclass(frozen=True)
class CachedAttention:
    """Marks a decoding step whose attention is `fn(q (B, H * D), k, v, pos (B,), n_heads,
    window or 0) -> (B, H * D)`: a kernel that reads only each row's valid cached keys
    (generation/decode_kernels.cached_attention), where a masked SDPA would read the whole cache
    of every row, however short its text. start (B,), for a cross-attention over the open
    patch's bytes (start..pos; CrossAttention.attend), is passed as fn's seventh argument."""
    fn: Callable
    pos: torch.Tensor
    window: int | None
    start: torch.Tensor | None = None


@dataclass(frozen=True)
class SlidingWindow:
    """Marks causal attention within `size` positions, computed block by block (`windowed_attend`)."""
    size: int


def windowed_attend(q, k, v, window: int, block: int = 128):
    """Causal sliding-window attention of queries q (B, H, Tq, D), the last Tq of the Tk positions
    of k, v (B, H, Tk, D), exact: each block of `block` queries attends only to the keys its
    window can reach, so the cost is O(Tq (window + block)) instead of the O(Tq Tk) of one dense
    masked call."""
    T, past = q.shape[2], k.shape[2] - q.shape[2]
    out, masks = [], {}                                                  # interior blocks share one mask
    for s in range(0, T, block):
        e = min(T, s + block)
        lo, hi = max(0, past + s - window + 1), past + e                 # the keys any query here sees
        if (e - s, hi - lo) not in masks:
            masks[e - s, hi - lo] = causal_mask(e - s, hi - lo, window, q.device)
        mask = masks[e - s, hi - lo]
        out.append(attend(q[:, :, s:e], k[:, :, lo:hi], v[:, :, lo:hi], mask, is_causal=mask is None))
    return torch.cat(out, dim=2)                                         # (B, H, Tq, D)


def patch_sums(x: torch.Tensor, lengths: torch.Tensor, dim: int) -> torch.Tensor:
    """x (B, ..., T, ...) with positions on `dim`, patches in order along it, lengths (B, P) from
    `bytes_per_patch` -> (B, ..., P, ...): each patch's sum of its positions (empty patches 0).
    Each patch adds its positions in order, so the sums are the same on every run: on CUDA
    scatter_add adds them with atomics in arrival order, which changed the float rounding from
    run to run (greedy bytes on random blt-1b weights parted at byte 200 of 512)."""
    return torch.segment_reduce(x.movedim(dim, 1), "sum", lengths=lengths, axis=1, unsafe=True).movedim(1, dim)


def bytes_per_patch(patch_ids: torch.Tensor, n_patches: int) -> torch.Tensor:
    """patch_ids (B, T) -> (B, n_patches) int64: how many positions each patch has."""
    lengths = torch.zeros(patch_ids.shape[0], n_patches, dtype=torch.long, device=patch_ids.device)
    return lengths.scatter_add_(1, patch_ids, torch.ones_like(patch_ids))   # integer counts: exact in any order


def expand_kv_heads(k, v, n_heads: int):
    """Grouped key/value heads (B, Hkv, ...) repeated to n_heads query heads (B, n_heads, ...)."""
    if k.shape[1] == n_heads:
        return k, v
    rep = n_heads // k.shape[1]
    return k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)


def attend(q, k, v, mask=None, is_causal=False):
    """SDPA with grouped key/value heads expanded to the query heads. mask: bool or additive."""
    k, v = expand_kv_heads(k, v, q.shape[1])
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate_up_proj = FusedLinear(dim, {"gate_proj": hidden, "up_proj": hidden})
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        gate, up = self.gate_up_proj(x)
        return self.down_proj(F.silu(gate) * up)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then + mlp(norm(.))."""

    def __init__(self, cfg: StackConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = SwiGLU(cfg.dim, cfg.intermediate_size)

    def forward(self, x, cos, sin, mask=None, cache=None, pos=None):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, pos)
        return x + self.mlp(self.post_attention_layernorm(x))


class Stack(nn.Module):
    """A plain list of blocks with the stack's RoPE; the BLT parts add their own heads and glue."""

    def __init__(self, cfg: StackConfig):
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.register_buffer("rope_cos", torch.empty(0), persistent=False)
        self.register_buffer("rope_sin", torch.empty(0), persistent=False)
        self.init_rope()

    def init_rope(self, device=None):
        """cos, sin tables (max_seq_len, head_dim) in float32, made once. Made in every forward
        instead, torch.compile fuses their sines into each layer's kernels, forward and backward
        (14 % of a blt-base training step on an H100). Not saved: a model built on the meta device
        calls this again once loaded (checkpoint.load_hf_state)."""
        positions = torch.arange(self.cfg.max_seq_len, device=device or self.rope_cos.device)
        self.rope_cos, self.rope_sin = rope_tables(positions, self.cfg.head_dim, self.cfg.rope_theta, torch.float32)

    def rope(self, T: int, device, dtype, start: int = 0):
        """cos, sin (T, head_dim) of positions start .. start + T - 1 (computed when beyond the table)."""
        if start + T <= self.rope_cos.shape[0] and self.rope_cos.device == torch.device(device):
            return self.rope_cos[start:start + T].to(dtype), self.rope_sin[start:start + T].to(dtype)
        return rope_tables(torch.arange(start, start + T, device=device), self.cfg.head_dim, self.cfg.rope_theta,
                           dtype)

    def run_layers(self, x, caches=None, start=0):
        """x (B, T, C), positions start .. start + T - 1, through every block, causal. caches (one
        per layer): KVCaches are filled (start 0); WindowCaches hold the earlier positions a
        window still sees, so a windowed stack reads a long input in chunks."""
        T = x.shape[1]
        cos, sin = self.rope(T, x.device, x.dtype, start)
        window = self.cfg.sliding_window
        # beyond the window (or after earlier chunks), attend block by block (linear in T)
        # instead of one T x T mask
        mask = (SlidingWindow(window) if window is not None and (start > 0 or T > window)
                else causal_mask(T, T, window, x.device))
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, None if caches is None else caches[i])
        return x

    def new_caches(self, batch, length, dtype, device) -> list[KVCache]:
        c = self.cfg
        return [KVCache(batch, c.n_kv_heads, length, c.head_dim, dtype, device) for _ in range(c.n_layers)]


class CrossAttention(nn.Module):
    """Queries attend to a separate sequence; no RoPE. Three forms of one attention: `attend`
    (queries over given keys, optionally masked: a decoding step over its cache), `attend_patches`
    (the encoder's patch slots over their own patch's bytes) and `attend_selected` (the decoder's
    bytes over the k slots of their patch); the last two compute only the pairs that a group mask
    (transformers' form) would admit, which is the same attention.

    Returns queries + o_proj(attention): transformers' BLT adds the residual inside the layer and
    the caller adds it once more, so a BLT cross-attention step computes 2q + o(attn). Kept exactly
    so that the public checkpoints give the same logits.
    """

    def __init__(self, cfg: StackConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        kv = cfg.n_kv_heads * cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.kv_proj = FusedLinear(cfg.dim, {"k_proj": kv, "v_proj": kv})
        self.o_proj = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)
        self.q_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.k_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def kv(self, states):
        """states (B, Tk, C) -> keys, values (B, Hkv, Tk, D); cacheable per key position."""
        B, Tk, _ = states.shape
        k, v = self.kv_proj(self.k_norm(states))
        k = k.view(B, Tk, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = v.view(B, Tk, self.n_kv_heads, self.head_dim).transpose(1, 2)
        return k, v

    def attend(self, x, k, v, mask=None):
        """x (B, Tq, C) queries over keys/values from `kv`; mask (B, 1, Tq, Tk) additive or bool,
        or a CachedAttention (keys start..pos of each row's cache, read by a kernel)."""
        B, Tq, _ = x.shape
        q = self.q_proj(self.q_norm(x)).view(B, Tq, self.n_heads, self.head_dim).transpose(1, 2)
        if isinstance(mask, CachedAttention):         # each (head, query) a head of its own: (B, H * Tq * D)
            y = mask.fn(q.reshape(B, -1), k, v, mask.pos, self.n_heads * Tq, mask.window or 0, mask.start)
            y = y.view(B, self.n_heads, Tq, self.head_dim)
        else:
            y = attend(q, k, v, mask)                                      # (B, H, Tq, D)
        return x + self.o_proj(y.transpose(1, 2).reshape(B, Tq, -1))

    def attend_patches(self, slots, states, patch_ids, k_per_patch: int):
        """slots (B, P*k, C): the k queries of each of P patches; states (B, T, C): byte states,
        patch_ids (B, T): the patch of each byte. Each slot attends to its own patch's bytes
        only, as a softmax per patch over its bytes computed per byte (O(T k C)) rather than
        over all (P*k, T) pairs under a mask. A patch without bytes (only ever after every real
        patch, where no logit reads it) gets 0, where transformers' mask gives all bytes' mean."""
        B, T, _ = states.shape
        H, D, k = self.n_heads, self.head_dim, k_per_patch
        P = slots.shape[1] // k
        keys, values = self.kv(states)                                                    # (B, Hkv, T, D)
        keys, values = expand_kv_heads(keys, values, H)
        q = self.q_proj(self.q_norm(slots)).view(B, P, k, H, D).permute(0, 3, 1, 2, 4)   # (B, H, P, k, D)
        per_byte = patch_ids[:, None, :, None].expand(B, H, T, k)                          # (B, H, T, k)
        q = q.gather(2, per_byte[..., None].expand(-1, -1, -1, -1, D))                    # each byte's patch's queries
        acc = _at_least_float32(q)                      # exact products of bf16 values, summed in float32
        scores = (q.to(acc) * keys[:, :, :, None].to(acc)).sum(-1) * D ** -0.5            # (B, H, T, k)
        top = scores.new_zeros(B, H, P, k).scatter_reduce(2, per_byte, scores.detach(), "amax", include_self=False)
        weights = (scores - top.gather(2, per_byte)).exp()                                # the top one is exactly 1
        lengths = bytes_per_patch(patch_ids, P)                                           # (B, P)
        total = patch_sums(weights, lengths, 2)                                           # (B, H, P, k), >= 1 unless empty
        mixed = weights[..., None] * values[:, :, :, None]                                # (B, H, T, k, D)
        y = patch_sums(mixed, lengths, 2)                                                 # (B, H, P, k, D)
        y = (y / total.clamp(min=1)[..., None]).to(slots.dtype)                          # (B, H, P, k, D)
        return slots + self.o_proj(y.permute(0, 2, 3, 1, 4).reshape(B, P * k, H * D))

    def attend_selected(self, x, k, v, keys):
        """x (B, Tq, C) queries, each attending only to its own n keys: keys (B, Tq, n) indexes
        k, v (B, Hkv, Tk, D). The same as `attend` under a mask that admits exactly those keys
        (the others get weight exactly 0 there), without the (Tq, Tk) scores and mask: the local
        decoder's bytes each see the k slots of one patch out of thousands."""
        B, Tq, n = keys.shape
        H, D = self.n_heads, self.head_dim
        q = self.q_proj(self.q_norm(x)).view(B, Tq, H, D).transpose(1, 2)              # (B, H, Tq, D)
        index = keys.reshape(B, 1, Tq * n, 1).expand(-1, k.shape[1], -1, D)
        k = k.gather(2, index).view(B, -1, Tq, n, D)                                  # (B, Hkv, Tq, n, D)
        v = v.gather(2, index).view(B, -1, Tq, n, D)
        k, v = expand_kv_heads(k, v, H)
        acc = _at_least_float32(q)                      # exact products of bf16 values, summed in float32
        scores = (q[:, :, :, None].to(acc) * k.to(acc)).sum(-1) * D ** -0.5            # (B, H, Tq, n)
        y = (scores.softmax(-1)[..., None] * v).sum(3).to(q.dtype)                    # (B, H, Tq, D)
        return x + self.o_proj(y.transpose(1, 2).reshape(B, Tq, -1))


def _at_least_float32(x: torch.Tensor) -> torch.dtype:
    """Attention scores and softmax in float32 for bf16/fp16 activations, as SDPA's kernels
    accumulate them (float64 stays float64)."""
    return torch.promote_types(x.dtype, torch.float32)
