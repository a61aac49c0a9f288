"""Byte windows for training and evaluation from a `.bin` split.

A split is documents' UTF-8 bytes, each followed by the byte 0xFF (never valid in UTF-8), which
reads back as EOS.
"""
from __future__ import annotations

import numpy as np
import torch

from ..tokenizer import BOS_ID, EOS_ID, OFFSET

SEPARATOR = 0xFF


class ByteCorpus:
    """Random windows of a .bin split: each row is BOS + seq_len bytes (0xFF read as EOS), as ids."""

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

    def sequential(self, max_bytes: int | None = None):
        """Consecutive non-overlapping windows covering the split (evaluation), each (1, seq_len+1)."""
        end = len(self.data) if max_bytes is None else min(len(self.data), max_bytes)
        for s in range(0, end - 1, self.seq_len):
            chunk = np.asarray(self.data[s:min(s + self.seq_len, end)])
            yield torch.cat([torch.tensor([BOS_ID]), self.to_ids(chunk)])[None]
