"""FLOP accounting as in the BLT paper: the global model runs once per patch, the local models and
the entropy model once per byte.

A transformer stack costs, per token it processes, 2 FLOPs per non-embedding weight (multiply and
add) plus attention: 2 * n_layers * context * dim for the query-key and value products over a
causal context of `context` tokens (half the window on average is counted as the full window, as
Chinchilla does). Training costs 3x the forward (backward = 2x forward); a frozen entropy model
only runs forward.
"""
from __future__ import annotations

from .config import BLTConfig, StackConfig


def stack_flops(cfg: StackConfig, context: int) -> float:
    """Forward FLOPs per token of one stack (no embeddings, no output head)."""
    hd, kv = cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    per_layer = cfg.dim * (cfg.dim + 2 * kv) + cfg.dim * cfg.dim + 3 * cfg.dim * cfg.intermediate_size
    window = min(context, cfg.sliding_window or context)
    return 2 * cfg.n_layers * per_layer + 2 * cfg.n_layers * window * cfg.n_heads * hd


def byte_lm_flops_per_byte(cfg: StackConfig, context: int, vocab: int = 260) -> float:
    """Forward FLOPs per byte of a byte-level LM (entropy model or byte baseline), head included."""
    return stack_flops(cfg, context) + 2 * cfg.dim * vocab


def blt_flops_per_byte(cfg: BLTConfig, mean_patch_bytes: float, context_bytes: int,
                       include_entropy_model: bool = True) -> dict[str, float]:
    """Forward FLOPs per byte of a BLT, by part. context_bytes: the bytes the model attends over."""
    k, e, d, g = cfg.cross_attn_k, cfg.encoder, cfg.decoder, cfg.global_model
    patches = context_bytes / mean_patch_bytes
    cross = lambda c, kv_len: 2 * (4 * c.dim * c.dim) + 4 * kv_len * c.dim   # q, k, v, o + scores
    parts = {
        "entropy_model": byte_lm_flops_per_byte(cfg.entropy_model, context_bytes)
        if include_entropy_model and cfg.entropy_model else 0.0,
        "local_encoder": stack_flops(e, context_bytes)
        + (2 * e.dim * e.dim * k + (k * cross(e, mean_patch_bytes) if cfg.encoder_pooling != "mean" else 0))
        / mean_patch_bytes,
        "global_model": (stack_flops(g, patches)
                         + (2 * e.dim * k * g.dim if e.dim * k != g.dim else 0)) / mean_patch_bytes,
        "local_decoder": stack_flops(d, context_bytes) + 2 * g.dim * d.dim * k / mean_patch_bytes
        + (d.n_layers if cfg.decoder_cross_attn_all_layers else 1) * cross(d, k) + 2 * d.dim * cfg.vocab_size,
    }
    parts["total"] = sum(parts.values())
    return parts


def blt_training_flops(cfg: BLTConfig, n_bytes: float, mean_patch_bytes: float, context_bytes: int) -> float:
    """Training FLOPs: 3x forward for the trained parts, 1x for the frozen entropy model."""
    p = blt_flops_per_byte(cfg, mean_patch_bytes, context_bytes)
    return n_bytes * (3 * (p["total"] - p["entropy_model"]) + p["entropy_model"])


def byte_lm_training_flops(cfg: StackConfig, n_bytes: float, context: int) -> float:
    return 3 * n_bytes * byte_lm_flops_per_byte(cfg, context)
