"""The entropy model: a small causal byte LM whose next-byte entropy decides patch boundaries.

`entropies(ids)[b, t]` is H_t = -sum_v p(v | ids[b, :t+1]) ln p(v | ...), in nats: the model's
uncertainty about byte t+1 after reading bytes 0..t (transformers' `BltPatcher` entropies).

Long inputs: a model with a sliding window reads any length exactly, `STREAM_CHUNK` positions
at a time, each layer keeping the keys and values its window still sees (`WindowCache`): the
same blocks of queries over the same keys as one pass, with the activations of one chunk however
long the input (one pass over 16 kB held ~100 MB of them). A model without one processes a
sequence longer than its `max_seq_len` in overlapping chunks; every position after the first
chunk is computed with at least `max_seq_len // 2` bytes of left context (RoPE is relative, so
chunks restart at position 0). Rows never interact: a row gives the same entropies alone or
inside any batch, and right padding cannot reach real bytes because attention is causal.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .config import StackConfig
from .layers import RMSNorm, Stack, WindowCache

STREAM_CHUNK = 512      # positions per pass of a windowed model (a multiple of the attention block)


class EntropyModel(Stack):
    def __init__(self, cfg: StackConfig, vocab_size: int = 260):
        super().__init__(cfg)
        self.embed_tokens = nn.Embedding(vocab_size, cfg.dim)
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, vocab_size, bias=False)

    def forward(self, ids: torch.Tensor, caches=None, start: int = 0) -> torch.Tensor:
        """ids (B, T) at positions start.. -> next-byte logits (B, T, V), one pass (caches: see
        `Stack.run_layers`)."""
        x = self.run_layers(self.embed_tokens(ids), caches, start)        # (B, T, C)
        return self.lm_head(self.norm(x))

    @torch.no_grad()
    def entropies(self, ids: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
        """ids (B, T) -> entropies (B, T) in nats, float32. chunk: positions per forward pass
        (default STREAM_CHUNK with a sliding window, else max_seq_len); see the module docstring."""
        return self._over_positions(ids, lambda logits: (entropy_of_logits(logits),), chunk)[0]

    @torch.no_grad()
    def next_byte_stats(self, ids: torch.Tensor, top_k: int, chunk: int | None = None):
        """ids (B, T) -> (entropies (B, T) nats, probs (B, T, k), token ids (B, T, k)): each
        position's entropy, as `entropies` gives it, and the k most likely next tokens of the same
        prediction with their probabilities, most likely first (ids as the tokenizer's: byte b is
        b + 4, ids < 4 are special)."""
        return self._over_positions(ids, lambda logits: (entropy_of_logits(logits), *top_k_of_logits(logits, top_k)),
                                    chunk)

    def _over_positions(self, ids: torch.Tensor, reduce, chunk: int | None) -> tuple[torch.Tensor, ...]:
        """reduce(logits (B, t, V)) -> tensors (B, t, ...) over the whole of ids, one chunk of
        positions at a time (see the module docstring), so only one chunk's logits exist at once."""
        window = self.cfg.sliding_window
        chunk = chunk or (STREAM_CHUNK if window is not None else self.cfg.max_seq_len)
        T = ids.shape[1]
        if T <= chunk:
            return reduce(self(ids))
        if window is not None:
            parts = [part for _, part in self.windowed_chunks(ids, reduce, chunk)]
        else:
            parts, context, start = [], chunk // 2, 0
            while start < T:
                end = min(T, start + (chunk if start == 0 else chunk - context))
                lo = max(0, end - chunk)
                parts.append(tuple(x[:, start - lo:] for x in reduce(self(ids[:, lo:end]))))
                start = end
        return tuple(torch.cat(pieces, dim=1) for pieces in zip(*parts))

    def windowed_chunks(self, ids: torch.Tensor, reduce, chunk: int, start: int = 0, caches=None):
        """Yields (end, reduce(logits of ids[:, s:end])) for each chunk s = start, start + chunk, ..
        of a model with a sliding window: the chunks `entropies` reads when T > chunk. caches (one
        WindowCache per layer) hold the window before `start` (start: 0 or a multiple of chunk)
        and are advanced in place: after each yield they hold the window before `end`."""
        caches = caches if caches is not None else [WindowCache(self.cfg.sliding_window) for _ in self.layers]
        for s in range(start, ids.shape[1], chunk):
            yield min(s + chunk, ids.shape[1]), reduce(self(ids[:, s:s + chunk], caches, start=s))


def entropy_of_logits(logits: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of softmax(logits) over the last dim, returned in float32."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def top_k_of_logits(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k most likely tokens of softmax(logits) over the last dim: (probs float32, ids), each
    (..., k), most likely first."""
    probs, ids = torch.softmax(logits.float(), dim=-1).topk(k, dim=-1)
    return probs, ids
