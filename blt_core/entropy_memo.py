"""Entropies of a text that shares a beginning with a recent one, computing only what changed.

A person typing into a 16 kB text sends the same 16 kB again and again with one byte changed,
usually near the end. The entropy model is causal and a windowed one reads a long text in chunks
(`EntropyModel.windowed_chunks`), carrying only its window's keys and values from one chunk to the
next. `EntropyMemo` keeps, for the last few texts it was asked about, their entropies and that
carried state at some chunk boundaries; a new text resumes from the last kept boundary at or
before its first changed byte and runs the remaining chunks only. The result is exact: the same
chunks over the same state as a full pass, so equal to `EntropyModel.entropies` bit for bit.

Which boundaries are kept: every `stride`-th and the last two of each text (typing at the end
resumes from the last one); a text so long that these would pass `max_bytes` keeps every n-th
for a larger n, and none where even three would not fit. Memory is bounded by `max_bytes` over
the distinct states held (texts share the states of their common beginning); the oldest texts
go first. Models without a
sliding window, batches of several rows and texts of one chunk or less are computed as usual.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import torch

from .entropy import STREAM_CHUNK, EntropyModel, entropy_of_logits
from .layers import WindowCache

State = tuple[tuple[torch.Tensor, torch.Tensor], ...]      # per layer: kept keys, values (1, Hkv, W-1, D)


@dataclass
class _Text:
    ids: torch.Tensor                    # (T,)
    entropies: torch.Tensor              # (T,) float32
    states: dict[int, State] = field(default_factory=dict)    # chunk boundary -> carried state there


class EntropyMemo:
    def __init__(self, model: EntropyModel, max_bytes: int = 32 << 20, max_texts: int = 4, stride: int = 8,
                 chunk: int = STREAM_CHUNK):
        self.model, self.max_bytes, self.max_texts, self.stride, self.chunk = model, max_bytes, max_texts, stride, chunk
        self.texts: list[_Text] = []                     # oldest first
        self.lock = threading.Lock()
        self.computed = 0          # positions of remembered texts run through the model (tests, benches)

    @torch.no_grad()
    def entropies(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) -> entropies (B, T) nats, float32, equal to `model.entropies(ids, chunk)`."""
        T = ids.shape[1]
        if self.model.cfg.sliding_window is None or ids.shape[0] != 1 or T <= self.chunk:
            return self.model.entropies(ids, self.chunk)
        row = ids[0]
        with self.lock:
            base, start = self._resume_point(row)
        stride = self._stride_for(T)
        caches = [WindowCache(self.model.cfg.sliding_window) for _ in self.model.layers]
        kept: dict[int, State] = {}
        if start:
            for cache, (k, v) in zip(caches, base.states[start]):
                cache.k, cache.v = k, v                  # extend() never writes into them
            kept = {b: s for b, s in base.states.items() if b <= start and self._keeps(b, T, stride)}
        parts = [base.entropies[:start]] if start else []
        for end, (part,) in self.model.windowed_chunks(ids, lambda x: (entropy_of_logits(x),), self.chunk,
                                                       start, caches):
            parts.append(part[0])
            if end % self.chunk == 0 and self._keeps(end, T, stride):
                kept[end] = tuple((c.k.clone(), c.v.clone()) for c in caches)
        out = torch.cat(parts)
        with self.lock:
            self.computed += T - start
            self._remember(_Text(row.clone(), out, kept))
        return out[None]

    def _resume_point(self, row: torch.Tensor) -> tuple[_Text | None, int]:
        """The remembered text and boundary to resume from: the latest boundary at or before the
        first byte where row differs, over all texts (0: nothing to reuse)."""
        best, start = None, 0
        for text in self.texts:
            n = min(len(text.ids), len(row))
            diff = (text.ids[:n] != row[:n]).nonzero()
            same = int(diff[0]) if len(diff) else n          # length of the common beginning
            b = max((b for b in text.states if b <= same), default=0)
            if b > start:
                best, start = text, b
        return best, start

    def _stride_for(self, T: int) -> int | None:
        """Every how many chunks a text of T positions keeps a state, so that its states fit in
        max_bytes (None: not even three fit, keep none)."""
        cfg = self.model.cfg
        state_bytes = 2 * cfg.n_layers * (cfg.sliding_window - 1) * cfg.n_kv_heads * cfg.head_dim * \
            self.model.embed_tokens.weight.element_size()
        text_bytes = T * (8 + 4)                                         # its ids and entropies
        room = (self.max_bytes - text_bytes) // state_bytes - 2          # beside the last two
        if room < 1:
            return None
        return max(self.stride, -(-(T // self.chunk) // room))

    def _keeps(self, boundary: int, T: int, stride: int | None) -> bool:
        if stride is None:
            return False
        last = (T // self.chunk) * self.chunk
        return boundary % (stride * self.chunk) == 0 or boundary >= last - self.chunk

    def _remember(self, text: _Text) -> None:
        self.texts.append(text)
        while len(self.texts) > self.max_texts or (len(self.texts) > 1 and self.held_bytes() > self.max_bytes):
            self.texts.pop(0)
        if self.held_bytes() > self.max_bytes:           # one text's states alone are over the budget
            text.states.clear()

    def held_bytes(self) -> int:
        """Bytes of the distinct tensors held (texts share the states of their common beginning)."""
        seen = {}
        for text in self.texts:
            for t in (text.ids, text.entropies, *(x for state in text.states.values() for kv in state for x in kv)):
                seen[id(t)] = t.numel() * t.element_size()
        return sum(seen.values())
