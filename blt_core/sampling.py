"""Sampling parameters and the one sampling function shared by every generator.

Greedy when temperature is 0; otherwise repetition penalty, temperature, top-k, top-p, in that
order, then a draw from each row's own seeded generator (a row samples the same bytes alone or
in a batch). Special ids other than EOS are never produced, EOS only when it stops generation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .tokenizer import BOE_ID, BOS_ID, EOS_ID, PAD_ID


@dataclass
class SamplingParams:
    max_new_bytes: int = 256
    temperature: float = 0.0            # 0: greedy
    top_k: int | None = None            # keep the k most likely bytes
    top_p: float | None = None          # keep the smallest set with probability >= top_p
    repetition_penalty: float = 1.0     # > 1 discourages bytes already in prompt or output
    seed: int | None = None
    stop: tuple[str, ...] = ()          # stop strings (not included in the output)
    stop_at_eos: bool = True            # False: EOS is never sampled (exactly max_new_bytes)

    def __post_init__(self):
        self.stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        checks = [
            (_is_int(self.max_new_bytes) and self.max_new_bytes >= 0, "max_new_bytes must be an integer >= 0"),
            (_is_num(self.temperature) and 0 <= self.temperature <= 100, "temperature must be a number in [0, 100]"),
            (self.top_k is None or (_is_int(self.top_k) and self.top_k >= 1), "top_k must be an integer >= 1"),
            (self.top_p is None or (_is_num(self.top_p) and 0 < self.top_p <= 1), "top_p must be in (0, 1]"),
            (_is_num(self.repetition_penalty) and 0 < self.repetition_penalty <= 100,
             "repetition_penalty must be a number in (0, 100]"),
            (self.seed is None or _is_int(self.seed), "seed must be an integer"),
            (all(isinstance(s, str) and s for s in self.stop), "stop strings must be non-empty strings"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def make_generators(params: SamplingParams, batch: int, device) -> list[torch.Generator] | None:
    """One generator per row, each seeded with the request's seed (None: random seed)."""
    if params.greedy:
        return None
    seed = params.seed if params.seed is not None else int(torch.randint(0, 2**62, ()).item())
    gens = []
    for _ in range(batch):
        g = torch.Generator(device=device)
        g.manual_seed(seed)
        gens.append(g)
    return gens


def sample_next(logits: torch.Tensor, history: torch.Tensor | None, params: SamplingParams,
                generators: list[torch.Generator] | None) -> torch.Tensor:
    """logits (B, V) for the next byte, history (B, T) ids seen so far, read only by the
    repetition penalty (negative entries are ignored; may be None without it) -> next ids (B,)."""
    logits = logits.float().clone()
    for banned in (BOE_ID, BOS_ID, PAD_ID) if params.stop_at_eos else (BOE_ID, BOS_ID, PAD_ID, EOS_ID):
        logits[:, banned] = -float("inf")                  # scalar writes: no host-to-device copy
    if params.repetition_penalty != 1.0:
        seen = torch.zeros_like(logits, dtype=torch.bool)
        seen.scatter_(1, history.clamp(min=0), history >= 0)
        r = max(params.repetition_penalty, 1e-30)         # float32 would round a smaller one to 0
        penalised = torch.where(logits > 0, logits / r, logits * r)
        penalised = penalised.nan_to_num(posinf=torch.finfo(logits.dtype).max, neginf=-float("inf"))  # overflow
        logits = torch.where(seen, penalised, logits)
    if params.greedy:
        return logits.argmax(-1)
    # Shifted so the largest logit is 0 first: a tiny temperature then sends the rest to -inf
    # instead of overflowing everything to inf (softmax, top-k and top-p are unchanged by the
    # shift). Below 1e-30 (float32 would round it to 0 and divide 0 by 0) it acts as 1e-30.
    logits = (logits - logits.amax(-1, keepdim=True)) / max(params.temperature, 1e-30)
    if params.top_k is not None and params.top_k < logits.shape[-1]:
        kth = logits.topk(params.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    if params.top_p is not None and params.top_p < 1:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        drop = probs.cumsum(-1) - probs >= params.top_p         # keep up to and including the crossing byte
        drop[:, 0] = False                   # and always the likeliest (a top_p below float32's range is 0)
        logits = logits.masked_fill(drop.scatter(1, order, drop), -float("inf"))
    probs = logits.softmax(-1)
    return torch.cat([torch.multinomial(p[None], 1, generator=g)[0] for p, g in zip(probs, generators)])
