"""FLOP accounting as in the BLT paper: the global model runs once per patch, the local models and
the entropy model once per byte.

A transformer stack costs, per token it processes, 2 FLOPs per non-embedding weight (multiply and
add) plus attention: 2 * n_layers * context * dim for the query-key and value products over a
causal context of `context` tokens (half the window on average is counted as the full window, as
Chinchilla does). Training costs 3x the forward (backward = 2x forward); a frozen entropy model
only runs forward. Model FLOPs utilisation (MFU) is these FLOPs per second over the devices' bf16
peak (`peak_tflops`): work the accounting does not count (padding, masked attention) is not
credited.
"""
from __future__ import annotations

import torch

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


def blt_training_flops(cfg: BLTConfig, n_bytes: float, mean_patch_bytes: float, context_bytes: int,
                       include_entropy_model: bool = True) -> float:
    """Training FLOPs: 3x forward for the trained parts, 1x for the frozen entropy model
    (include_entropy_model=False: patching that does not run it, e.g. static or space)."""
    p = blt_flops_per_byte(cfg, mean_patch_bytes, context_bytes, include_entropy_model)
    return n_bytes * (3 * (p["total"] - p["entropy_model"]) + p["entropy_model"])


def byte_lm_training_flops(cfg: StackConfig, n_bytes: float, context: int) -> float:
    return 3 * n_bytes * byte_lm_flops_per_byte(cfg, context)


# Dense bf16 tensor-core peaks (no sparsity), TFLOP/s per GPU, by a substring of the device name;
# the first match wins, so the more specific names come first.
PEAK_BF16_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0),
                    ("A100", 312.0))


def peak_tflops(device, override: float | None = None) -> float | None:
    """bf16 peak TFLOP/s of one device, for MFU: the override if given, else from the name of a
    CUDA device in PEAK_BF16_TFLOPS; None (MFU not reported) for the CPU or an unknown GPU."""
    if override is not None:
        return override
    device = torch.device(device)
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None)
