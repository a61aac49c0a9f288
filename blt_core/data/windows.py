"""Byte windows for training and evaluation from a `.bin` split.

A split is documents' UTF-8 bytes, each followed by the byte 0xFF (never valid in UTF-8), which
reads back as EOS.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..tokenizer import BOS_ID, EOS_ID, OFFSET

SEPARATOR = 0xFF


class ByteCorpus:
    """Windows of a .bin split, random (training) or in order or spread (evaluation): each row is BOS +
    seq_len bytes (0xFF read as EOS), as ids."""

    def __init__(self, path, seq_len: int, seed: int = 0):
        self.data = np.memmap(path, dtype=np.uint8, mode="r")
        if len(self.data) <= seq_len:
            raise ValueError(f"{path} holds {len(self.data)} bytes, fewer than seq_len + 1 = {seq_len + 1}")
        self.seq_len = seq_len
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.data)

    def to_ids(self, chunk: np.ndarray) -> torch.Tensor:
        ids = torch.from_numpy(chunk.astype(np.int64)) + OFFSET
        ids[torch.from_numpy(chunk == SEPARATOR)] = EOS_ID
        return ids

    def batch(self, batch_size: int) -> torch.Tensor:
        """(batch_size, seq_len + 1) ids: BOS then seq_len bytes from a random offset."""
        starts = self.rng.integers(0, len(self.data) - self.seq_len, batch_size)
        rows = [self.to_ids(np.asarray(self.data[s:s + self.seq_len])) for s in starts]
        bos = torch.full((batch_size, 1), BOS_ID, dtype=torch.long)
        return torch.cat([bos, torch.stack(rows)], dim=1)

    def _window(self, start: int, end: int) -> torch.Tensor:
        """(1, end - start + 1) ids: BOS then the bytes [start, end)."""
        return torch.cat([torch.tensor([BOS_ID]), self.to_ids(np.asarray(self.data[start:end]))])[None]

    def sequential(self, max_bytes: int | None = None):
        """Consecutive non-overlapping windows from the split's start (evaluation), each (1, seq_len+1)
        (the last one shorter): the first `max_bytes` bytes, or the whole split."""
        end = len(self.data) if max_bytes is None else min(len(self.data), max_bytes)
        for s in range(0, end - 1, self.seq_len):
            yield self._window(s, min(s + self.seq_len, end))

    def spread(self, max_bytes: int | None = None):
        """About `max_bytes` of the split as ceil(max_bytes / seq_len) windows of seq_len bytes at evenly
        spaced offsets, the first at byte 0 and the last ending at the split's end, none overlapping:
        a sample of every part of a split whose documents are in no meaningful order (the first
        `max_bytes` are often one document). Where those windows would cover the split anyway, the
        whole split, as `sequential()`."""
        n = math.ceil(max_bytes / self.seq_len) if max_bytes is not None else 0
        if max_bytes is None or n * self.seq_len >= len(self.data):
            yield from self.sequential()
            return
        room = len(self.data) - self.seq_len                     # the last window starts here
        for i in range(n):
            s = i * room // (n - 1) if n > 1 else 0               # gaps >= seq_len as n * seq_len < size
            yield self._window(s, s + self.seq_len)
