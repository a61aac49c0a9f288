"""Patchers: pure functions from per-byte entropies (or bytes) to patches. No model inside.

Positions are those of the id sequence, usually BOS + bytes: position 0 is BOS. Every patcher
decides, for each position p in 1..T, whether p starts a new patch; position T is the byte that
has not been seen yet, so `next_starts_patch` says whether the next byte would open a new patch
(whether the current last patch is complete). The exact rules, for p >= 2:

    entropy            H[p-1] > threshold            (global threshold; H[t] = entropy of the
                                                      prediction of byte t+1 made after byte t)
    entropy_monotonic  H[p-1] - H[p-2] > threshold   (relative rise; p = 2 always starts, as in
                                                      Meta's code, which has no earlier entropy)
    static             (p - 1) % patch_size == 0     (BOS alone, then fixed-size patches)
    space              byte p-1 is space-like        (an ASCII byte that is not a letter or digit:
                                                      spaces, punctuation, controls; special ids
                                                      count too. Meta's rule also counts UTF-8 lead
                                                      bytes, which splits characters; we do not)
    byte               always

Positions 0 and 1 always start a patch, so BOS is a patch of its own: the local decoder needs
it (the prediction at byte t may only see patches that are complete at t).

`max_patch_length = m` then splits any longer patch into pieces of m bytes and a remainder,
counted from the patch's start; a full last patch also makes `next_starts_patch` true.
Lengths always sum to the input length T.

`start_mask` is the batched form the model uses: (B, T) -> (B, T+1) booleans. `PatchingParams`
carries the four options together; `resolve` fills the unset ones from a model's config.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .config import PATCHING_MODES
from .tokenizer import OFFSET


@dataclass(frozen=True)
class PatchingParams:
    """How to cut bytes into patches. None means the model's default (its config's
    patching_mode, patching_threshold, max_patch_length, patch_size); `resolve` is the one place
    that rule is applied."""
    mode: str | None = None                 # one of PATCHING_MODES
    threshold: float | None = None          # nats: entropy (global) or entropy_monotonic (rise)
    max_patch_length: int | None = None     # bytes; longer patches are split (config None: no limit)
    patch_size: int | None = None           # bytes per patch in static mode

    def resolve(self, config) -> PatchingParams:
        """Every unset option taken from `config` (a BLTConfig); max_patch_length stays None
        when the config sets no limit either."""
        return PatchingParams(
            mode=config.patching_mode if self.mode is None else self.mode,
            threshold=config.patching_threshold if self.threshold is None else self.threshold,
            max_patch_length=config.max_patch_length if self.max_patch_length is None else self.max_patch_length,
            patch_size=config.patch_size if self.patch_size is None else self.patch_size)


@dataclass
class Patches:
    """Patches of one sequence of T positions."""
    lengths: list[int]                  # bytes per patch, sum == T
    starts: list[int]                   # first position of each patch
    next_starts_patch: bool             # the next byte (position T) would start a new patch
    entropies: list[float] | None = field(default=None, repr=False)  # nats, one per position
    ids: list[int] | None = field(default=None, repr=False)          # the ids that were patched

    @property
    def count(self) -> int:
        return len(self.lengths)

    @property
    def mean_length(self) -> float:
        return sum(self.lengths) / len(self.lengths) if self.lengths else 0.0

    def patch_ids(self) -> list[int]:
        """Patch index of every position."""
        return [j for j, n in enumerate(self.lengths) for _ in range(n)]


def _check(mode, threshold, patch_size, max_patch_length):
    if mode not in PATCHING_MODES:
        raise ValueError(f"patching mode must be one of {PATCHING_MODES}, found {mode!r}")
    if mode.startswith("entropy") and threshold is None:
        raise ValueError(f"mode {mode!r} needs a threshold (nats)")
    if threshold is not None and not math.isfinite(float(threshold)):
        raise ValueError(f"threshold must be a finite number, found {threshold!r}")
    if mode == "static" and (patch_size is None or int(patch_size) < 1):
        raise ValueError(f"static patching needs patch_size >= 1, found {patch_size!r}")
    if max_patch_length is not None and int(max_patch_length) < 1:
        raise ValueError(f"max_patch_length must be >= 1 or None, found {max_patch_length!r}")


def is_space_like(ids: torch.Tensor) -> torch.Tensor:
    """Byte ids -> bool: ASCII but not [0-9A-Za-z], or a special id (< 4)."""
    b = ids - OFFSET
    alnum = ((b >= 48) & (b <= 57)) | ((b >= 65) & (b <= 90)) | ((b >= 97) & (b <= 122))
    return (b < 0) | ((b < 0x80) & ~alnum)


def boundary_rule(mode: str, p, *, h_prev=None, h_prev2=None, id_prev=None, threshold=None, patch_size=None):
    """The mode's rule for positions p >= 2 (tensors broadcast): h_prev = H[p-1], h_prev2 = H[p-2],
    id_prev = id at p-1. Shared by `start_mask` and the incremental generator."""
    if mode == "entropy":
        return h_prev > threshold
    if mode == "entropy_monotonic":
        return ((h_prev - h_prev2) > threshold) | (p == 2)
    if mode == "static":                # patch_size: an int, or one per row (B,)
        return (p - 1) % (patch_size if torch.is_tensor(patch_size) else int(patch_size)) == 0
    if mode == "space":
        return is_space_like(id_prev)
    return torch.ones_like(p, dtype=torch.bool)


def split_long(starts, p, last_start, max_patch_length):
    """Add the starts that max_patch_length forces: every m-th position after a patch start.
    max_patch_length: None (no limit), an int, or one per row (B,) where 0 means no limit."""
    if max_patch_length is None:
        return starts
    if torch.is_tensor(max_patch_length):
        limited = max_patch_length > 0
        return starts | (limited & ((p - last_start) % max_patch_length.clamp(min=1) == 0))
    return starts | ((p - last_start) % int(max_patch_length) == 0)


def start_mask(mode: str, T: int, *, entropies=None, ids=None, threshold=None, patch_size=None,
               max_patch_length=None, device=None) -> torch.Tensor:
    """Batched boundary rule: returns (B, T+1) bool, True where position p starts a patch.
    entropies (B, T) for the entropy modes, ids (B, T) for space; B from whichever is given."""
    _check(mode, threshold, patch_size, max_patch_length)
    src = entropies if entropies is not None else ids
    if mode.startswith("entropy") and entropies is None:
        raise ValueError(f"mode {mode!r} needs entropies")
    if mode == "space" and ids is None:
        raise ValueError("space patching needs the byte ids")
    B = src.shape[0] if src is not None else 1
    device = src.device if src is not None else device
    if T == 0:
        return torch.ones(B, 1, dtype=torch.bool, device=device)
    p = torch.arange(T + 1, device=device)                              # (T+1,)
    shift = lambda x, n: torch.cat([x[:, :1].expand(-1, n), x], dim=1)[:, :T + 1]  # x[p-n] at p
    h = None if entropies is None else entropies.float()
    rule = boundary_rule(mode, p, threshold=threshold, patch_size=patch_size,
                         h_prev=None if h is None else shift(h, 1), h_prev2=None if h is None else shift(h, 2),
                         id_prev=None if ids is None else shift(ids, 1))
    mask = rule.expand(B, T + 1) | (p <= 1)
    last_start = torch.where(mask, p, 0).cummax(dim=1).values          # (B, T+1)
    return split_long(mask, p, last_start, max_patch_length)


def patches_from_mask(mask: torch.Tensor, entropies=None) -> Patches:
    """One row of a start mask (T+1,) -> Patches."""
    mask = mask.tolist()
    T = len(mask) - 1
    starts = [p for p in range(T) if mask[p]]
    lengths = [b - a for a, b in zip(starts, starts[1:] + [T])]
    ent = None if entropies is None else [float(x) for x in entropies]
    return Patches(lengths=lengths, starts=starts, next_starts_patch=bool(mask[T]), entropies=ent)


def patch(mode: str, *, entropies=None, ids=None, threshold=None, patch_size=None,
          max_patch_length=None, length: int | None = None) -> Patches:
    """One sequence. entropies: (T,) nats for the entropy modes; ids: (T,) for space mode;
    length: T for static/byte when neither is given."""
    ent = None if entropies is None else torch.as_tensor(entropies, dtype=torch.float32).reshape(1, -1)
    idt = None if ids is None else torch.as_tensor(ids, dtype=torch.long).reshape(1, -1)
    src = ent if ent is not None else idt
    T = src.shape[1] if src is not None else length
    if T is None:
        raise ValueError(f"mode {mode!r} needs entropies, ids or length")
    mask = start_mask(mode, T, entropies=ent, ids=idt, threshold=threshold, patch_size=patch_size,
                      max_patch_length=max_patch_length)
    return patches_from_mask(mask[0], None if ent is None else ent[0])


def entropy_patches(entropies, threshold: float, max_patch_length: int | None = None) -> Patches:
    """Global threshold: p >= 2 starts a patch iff H[p-1] > threshold."""
    return patch("entropy", entropies=entropies, threshold=threshold, max_patch_length=max_patch_length)


def monotonic_patches(entropies, threshold: float, max_patch_length: int | None = None) -> Patches:
    """Relative threshold: p >= 3 starts a patch iff H[p-1] - H[p-2] > threshold (p <= 2 always)."""
    return patch("entropy_monotonic", entropies=entropies, threshold=threshold,
                 max_patch_length=max_patch_length)


def static_patches(length: int, patch_size: int, max_patch_length: int | None = None) -> Patches:
    """BOS alone, then patches of patch_size bytes (the last may be shorter)."""
    return patch("static", length=length, patch_size=patch_size, max_patch_length=max_patch_length)


def space_patches(ids, max_patch_length: int | None = None) -> Patches:
    """A patch starts after each space-like byte (see module docstring)."""
    return patch("space", ids=ids, max_patch_length=max_patch_length)


def mask_from_lengths(patch_lengths: torch.Tensor, T: int) -> torch.Tensor:
    """Explicit patch lengths (B, P), transformers' layout, -> start mask (B, T+1).
    A trailing zero-length patch (lengths summing to T) marks that the next byte starts a patch;
    bytes past the sum belong to the last patch."""
    if (patch_lengths < 0).any():
        raise ValueError("patch_lengths must be >= 0")
    starts = torch.cumsum(patch_lengths, dim=1) - patch_lengths        # (B, P)
    mask = torch.zeros(patch_lengths.shape[0], T + 2, dtype=torch.bool, device=patch_lengths.device)
    mask.scatter_(1, starts.clamp(max=T + 1).long(), True)
    mask = mask[:, :T + 1]
    mask[:, :2] = True
    return mask
