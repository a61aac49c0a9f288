"""Hash n-gram embeddings of the local encoder (BLT paper section 3.2.1).

For every position t, n-gram size n and hash function f, the window ids[t-n+1 .. t] (left
padded with id 0 = BOE) is hashed with a rolling polynomial

    h = (sum_i ids[t-n+1+i] * P_f**i) mod hash_vocab        (oldest byte gets P**0)

computed in signed 64-bit integers with wrap-around, then floor-modded into [0, hash_vocab), as
Meta's BLT and transformers do. Table (f, n) occupies rows [k*V, (k+1)*V) of one fused embedding,
k = f * len(sizes) + index of n. The byte embedding and each table's row are summed in that order.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .config import HASH_PRIMES


_POWERS: dict = {}


def _wrapped_powers(prime: int, n: int) -> list[int]:
    """prime**i for i < n as the signed int64 values they wrap to."""
    vals = [pow(prime, i, 1 << 64) for i in range(n)]
    return [v - (1 << 64) if v >= 1 << 63 else v for v in vals]


def _powers(prime: int, n: int, device) -> torch.Tensor:
    """prime**i for i < n as wrapped signed int64, made once per device (no host copy in the hot
    path, which CUDA graph capture forbids). Under torch.compile a constant of the graph instead:
    a guard on the cache would recompile the graph once the first call has filled it."""
    def make():
        return torch.tensor(_wrapped_powers(prime, n), dtype=torch.int64, device=device)
    if torch.compiler.is_compiling():
        return make()
    key = (prime, n, str(device))
    if key not in _POWERS:
        _POWERS[key] = make()
    return _POWERS[key]


def ngram_hashes(ids: torch.Tensor, n: int, prime: int, vocab: int) -> torch.Tensor:
    """ids (B, T) int64 -> hash of the n-gram ending at each position (B, T) in [0, vocab)."""
    padded = torch.cat([ids.new_zeros(ids.shape[0], n - 1), ids], dim=1)   # (B, T+n-1)
    windows = padded.unfold(1, n, 1)                                       # (B, T, n)
    return (windows * _powers(prime, n, ids.device)).sum(-1) % vocab


class HashNgramEmbedding(nn.Module):
    """Sum of all hash tables' rows for each position; the caller adds the byte embedding first."""

    def __init__(self, sizes: tuple[int, ...], n_functions: int, vocab: int, dim: int):
        super().__init__()
        self.sizes, self.n_functions, self.vocab = tuple(sizes), n_functions, vocab
        self.weight = nn.Parameter(torch.empty(n_functions * len(self.sizes) * vocab, dim))

    def table_rows(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """Row index into the fused table for every (function, size), each (B, T)."""
        ids = ids.long()
        rows = []
        for f in range(self.n_functions):
            for n in self.sizes:
                rows.append(ngram_hashes(ids, n, HASH_PRIMES[f], self.vocab) + len(rows) * self.vocab)
        return rows

    def last_rows(self, window: torch.Tensor) -> torch.Tensor:
        """Row index into the fused table for every (function, size) of the n-grams ending at the
        last of window's (B, W) ids (the W >= max(sizes) bytes up to it, 0 before the first)
        -> (B, tables): `table_rows` of the last position, as plain products and sums of
        columns, so a compiled step makes them inside its gather (one launch a byte, where
        the window's rolling sums took one of their own)."""
        ids, W = window.long(), window.shape[1]
        rows = []
        for f in range(self.n_functions):
            powers = _wrapped_powers(HASH_PRIMES[f], max(self.sizes))
            for n in self.sizes:
                h = sum(ids[:, W - n + i] * powers[i] for i in range(n))
                rows.append(h % self.vocab + len(rows) * self.vocab)
        return torch.stack(rows, dim=-1)

    def add_last(self, x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        """x (B, 1, C), the byte embedding of window's (B, W) last id, + every table's row for the
        n-grams ending there, added in `add_to`'s order (the same sums)."""
        embedded = nn.functional.embedding(self.last_rows(window), self.weight)   # (B, tables, C)
        for k in range(embedded.shape[1]):
            x = x + embedded[:, None, k]
        return x

    def add_to(self, x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) byte embeddings + every table's embedding, added one table at a time.
        The rows of all tables are looked up together: one lookup's backward writes one dense
        gradient of the fused table, where a lookup per table wrote (and autograd summed) one
        each (blt-base: 6 x 1.2 GB per backward; the sums are the same, bit for bit)."""
        rows = torch.stack(self.table_rows(ids), dim=-1)                     # (B, T, tables)
        embedded = nn.functional.embedding(rows, self.weight)                # (B, T, tables, C)
        for k in range(embedded.shape[2]):
            x = x + embedded[:, :, k]
        return x
