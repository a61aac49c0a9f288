"""Memory of the worker by design: what one analysis holds at its peak, and so how many analyses
may run at once.

    worker peak <= resident (Python, torch, the app, the weights)
                   + one generation's prefill (the engine prefills one request at a time)
                   + generation slots x one row's caches, twice while the batch grows
                   + analysis slots x analysis_peak_bytes
                   + the figure cache bound (FIGURE_CACHE_MB)

The analysis slots (ANALYSIS_SLOTS, when not set) are sized when the model loads, from its
config: as many worst-case analyses as fit in ANALYSIS_MEMORY_MB. README.md ("Memory") has the
measured terms of the shipped model.
"""
from __future__ import annotations

from dataclasses import dataclass

from blt_core.config import BLTConfig
from blt_core.entropy import STREAM_CHUNK

MIB = 2 ** 20
FLOAT_BYTES = 4                 # activations in float32 (a bfloat16 model holds less)
ANSWER_BYTES_PER_TEXT_BYTE = 1024  # Python lists, dicts and JSON of a per-byte answer; measured
                                   # 750 on the largest (/api/patch, one patch per byte, 4-byte chars)


def analysis_peak_bytes(cfg: BLTConfig, max_text_bytes: int) -> int:
    """Bytes one worst-case analysis (/api/entropy, /api/entropy/detail, /api/patch or /api/compare
    on max_text_bytes of text) holds at its peak, an upper bound (the detail's top-k tensors, 12 x
    top_k <= 240 bytes a byte, are within the answer's share):

          4 x C x max(4 I + 3 D, 10 D, 4 V + 2 D)   one pass's activations: the MLP (gate and
                                                      up, SiLU, product, residuals), attention
                                                      (q, k, v, RoPE, output) or the head
                                                      (logits, log-softmax, exp, product)
        + 4 x 2 L (W + C) KV                          keys and values the window keeps, and a
                                                      chunk's
        + 1024 x N                                    the answer: per-byte lists, patches, JSON

    N = max_text_bytes; T = N + 1 positions (BOS); for the entropy model, D its width, I its
    MLP width, L its layers, KV = n_kv_heads x head_dim, V the vocabulary; C = min(T, chunk)
    positions per pass (STREAM_CHUNK with a sliding window W, else max_seq_len and W = C). A
    model without an entropy model computes no entropies: only the answer counts."""
    answer = ANSWER_BYTES_PER_TEXT_BYTE * max_text_bytes
    s = cfg.entropy_model
    if s is None:
        return answer
    chunk = min(max_text_bytes + 1, STREAM_CHUNK if s.sliding_window is not None else s.max_seq_len)
    window = s.sliding_window or chunk
    per_position = max(4 * s.intermediate_size + 3 * s.dim, 10 * s.dim, 4 * cfg.vocab_size + 2 * s.dim)
    caches = 2 * s.n_layers * (window + chunk) * s.n_kv_heads * s.head_dim
    return FLOAT_BYTES * (chunk * per_position + caches) + answer


@dataclass(frozen=True)
class AnalysisBudget:
    """How many analyses may run at once: `slots` when set (> 0), else as many worst-case
    analyses of the loaded model as fit in memory_mb (MiB), and at least one."""
    memory_mb: float
    max_text_bytes: int
    slots: int = 0

    def peak_bytes(self, cfg: BLTConfig) -> int:
        return analysis_peak_bytes(cfg, self.max_text_bytes)

    def slots_for(self, cfg: BLTConfig) -> int:
        return self.slots or max(1, int(self.memory_mb * MIB // self.peak_bytes(cfg)))

    def limits(self, cfg: BLTConfig | None) -> dict:
        """What /api/models reports (None where the model is not loaded)."""
        return {"analysis_slots": None if cfg is None else self.slots_for(cfg),
                "analysis_slots_rule": "analysis_slots_setting if set, else "
                                       "max(1, floor(analysis_memory_mb / analysis_peak_mb))",
                "analysis_slots_setting": self.slots or None, "analysis_memory_mb": self.memory_mb,
                "analysis_peak_mb": None if cfg is None else round(self.peak_bytes(cfg) / MIB, 1)}
