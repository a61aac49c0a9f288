"""The incremental BLT: caches and per-row state of B rows being decoded, stepped one byte at a time.

Every part of BLT is causal, so generation can keep caches and do per byte only the work that
byte needs. After the prompt is prefilled in one pass, each new byte at position t costs:

    entropy model      one token step through its layers (KV cache) -> H[t], which decides at once
                       whether byte t+1 starts a patch (real-time patching)
    local encoder      one token step (KV cache); the byte's key/value for the patch
                       cross-attention are cached and the open patch's max-pool is updated
    global transformer only when a patch completes: the patch's k slots cross-attend to its cached
                       bytes, then ONE global step (KV cache over patches), and the decoder's
                       cross-attention keys/values for that patch are computed once
    local decoder      one token step (KV cache); byte t cross-attends to the k slots of the last
                       complete patch

so the big global model runs 1 / (mean patch length) times per byte, and the byte-level parts do
O(1) FFN work per byte (attention reads O(t) cached keys). The result equals the full forward at
every step (tests compare logits and bytes with `reference.generate_reference`).

The public step interface, in the order one byte runs it (`step` composes them eagerly; the
schedules in schedules.py compile, capture or reorder the same calls):

    entropy_step(next_ids) -> H     entropy model step (touches only its own cache)
    encoder_step(next_ids)          encoder step; the byte joins (or opens) the open patch
                                    (in two parts where the schedule wants them apart:
                                    `encoder_layers()` -> h, which the decoder step may take
                                    at once, then `encoder_finish(h)`)
    decide_boundary(H, next_ids)    does the following byte start a patch? -> next_start
    global_step() -> g              pool the open patch, one global step (at the slot
                                    `global_slot()` sets; a schedule may run that apart,
                                    then `global_step(slot_placed=True)`)
    commit_patch(g)                 rows whose patch completed take g as their latest patch
                                    (in two parts where the schedule wants them apart:
                                    `choose_commits()`, which needs no g, then
                                    `commit_patch(g, chosen=True)`)
    decoder_step()                  decoder step -> logits; the position advances
                                    (advance=False, then `advance()`: it may run before the
                                    boundary is decided, and again after a patch completes)

Rows advance independently (own positions, patches, caches and patching rule); a row's bytes
are the same alone or in any batch. State is updated in place, because captured CUDA graphs read
these very tensors. For continuous batching (batching.py), `load_row` copies a row in from
another stepper (a prompt prefilled alone), `rows(n)` is a view of the first n rows that steps
only them, and `park` keeps an idle row stepping harmlessly inside its own caches.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import torch

from ..config import PATCHING_MODES
from ..entropy import entropy_of_logits
from ..layers import CachedAttention, KVCache
from ..patching import PatchingParams, boundary_rule, split_long, start_mask
from .options import KernelConfig

# A prefill's matrix products take (rows x positions) and (rows x patches) inputs, and its first
# products at a shape not met before cost more: ~40 ms of blt-1b's ~60 ms prefill on an H100 at a
# new prompt length (bench/prefill_shapes.py). Every prefill rounds the global model's patches up
# to a multiple of this, and the batch engine its positions (driver.right_padded), so prompts of
# nearby lengths meet shapes met before; the app's warm-up meets them first.
PREFILL_ROUND = 64


def step_mask(pos: torch.Tensor, length: int, window: int | None) -> torch.Tensor:
    """(B, 1, 1, length) bool: key j visible to a query at pos[b] (j <= pos, within the window)."""
    j = torch.arange(length, device=pos.device)
    ok = j[None] <= pos[:, None]
    if window is not None:
        ok &= (pos[:, None] - j[None]) < window
    return ok[:, None, None, :]


class StackSteps:
    """One stack's caches and RoPE tables for single-token steps at per-row positions."""

    def __init__(self, stack, batch, length, dtype, device):
        self.stack, self.length = stack, length
        self.caches = stack.new_caches(batch, length, dtype, device)
        self.cos, self.sin = stack.rope(length, device, dtype)          # the stack's own tables

    def rope(self, pos):
        return self.cos[pos][:, None, None, :], self.sin[pos][:, None, None, :]   # (B, 1, 1, D)

    def mask(self, pos):
        return step_mask(pos, self.length, self.stack.cfg.sliding_window)


# Per-row state, beside the caches' keys and values: what `load_row` copies and `rows` views.
ROW_STATE = ("ids", "pos", "n_patches", "global_pos", "patch_start", "next_start", "commit", "prev_entropy",
             "context_full", "pooled", "h", "entropy", "logits", "row_mode", "row_threshold", "row_patch_size",
             "row_max_length")
PARKED_PATCH_SIZE = 2 ** 30     # a parked row patches statically at this size: it never completes one


@dataclass
class StepOutput:
    logits: torch.Tensor        # (B, V) prediction of the next byte
    entropy: torch.Tensor       # (B,) entropy (nats) after the byte just fed
    global_step: torch.Tensor   # (B,) bool: this step completed a patch and ran the global model
    context_full: torch.Tensor  # (B,) bool: a patch completed with the global context full; logits invalid


class IncrementalBLT:
    """Caches and per-row state of B rows of at most `length` positions (BOS + prompt + new
    bytes); see the module docstring. kernels: run every layer step as the fused Triton kernels
    with this launch tuning (None: the eager layers)."""

    def __init__(self, model, batch: int, length: int, patching: PatchingParams = PatchingParams(),
                 kernels: KernelConfig | None = None):
        cfg = model.config
        self.model, self.B, self.L = model, batch, length
        limits = {"local encoder": cfg.encoder.max_seq_len, "local decoder": cfg.decoder.max_seq_len}
        if model.entropy_model is not None:          # it runs in every mode (entropies are reported)
            limits["entropy model"] = cfg.entropy_model.max_seq_len
        for part, limit in limits.items():
            if length > limit:
                raise ValueError(f"prompt + max_new_bytes = {length} bytes exceeds the {part}'s context of {limit}")
        dtype, device = model.lm_head.weight.dtype, model.device
        self.device = device
        self.patching = patching.resolve(cfg)
        enc, dec = model.local_encoder, model.local_decoder
        self.ent = StackSteps(model.entropy_model, batch, length, dtype, device) if model.entropy_model else None
        self.enc = StackSteps(enc, batch, length, dtype, device)
        # Patches never outnumber positions + 1; the global model takes at most its context of them.
        self.glob = StackSteps(model.global_transformer, batch, min(length + 1, cfg.patch_context), dtype, device)
        self.dec = StackSteps(dec, batch, length, dtype, device)
        self.mean_pool = enc.pooling == "mean"
        cross = enc.cross_attn_layers[-1] if enc.cross_attn_layers else None
        self.enc_kv = KVCache(batch, cross.n_kv_heads, length, cross.head_dim, dtype, device) if cross else None
        k = cfg.cross_attn_k
        self.dec_kv = [KVCache(batch, c.n_kv_heads, k, c.head_dim, dtype, device) for c in dec.cross_attn_layers]
        z = lambda dt: torch.zeros(batch, dtype=dt, device=device)
        self.ids = torch.zeros(batch, length, dtype=torch.long, device=device)
        self.pos, self.n_patches, self.patch_start = z(torch.long), z(torch.long), z(torch.long)
        self.next_start, self.prev_entropy = z(torch.bool), z(torch.float32)
        self.commit = z(torch.bool)            # this step's global output is kept (choose_commits)
        self.global_pos = z(torch.long)        # this step's global slot (global_slot)
        self.context_full = z(torch.bool)      # a patch completed with the global context full: stop the row
        self.pooled = torch.zeros(batch, cfg.encoder.dim, dtype=dtype, device=device)   # max, or sum (mean)
        self.h = torch.zeros(batch, 1, cfg.encoder.dim, dtype=dtype, device=device)
        self.entropy, self.logits = z(torch.float32), torch.zeros(batch, cfg.vocab_size, device=device)
        # Each row's patching rule, as tensors: compiled steps and captured graphs serve every
        # setting, and rows of one batch may patch differently. max_length 0: no limit.
        self.row_mode, self.row_patch_size, self.row_max_length = z(torch.long), z(torch.long), z(torch.long)
        self.row_threshold = z(torch.float32)
        self.set_patching(patching)
        self.kernels = kernels
        self.dk = _decode_kernels(model) if kernels is not None else None
        # the decoder's per-layer addresses for its slots' one launch (made here, outside any capture)
        self.slot_tables = self.dk.slot_tables(dec, self.dec_kv) if self.dk is not None and self.dec_kv else None
        self.attention_kernel = None     # rows(n, kernels=False): torch layers around the kernels' attention
        self._kept_copies: dict[tuple, tuple] = {}   # load_row(keep=True): (src, its views, these views)

    def set_patching(self, patching: PatchingParams) -> None:
        """Every row patches by this rule from the next prefill on (a stepper kept for prefills:
        prefill_graphs.py)."""
        self.patching = p = patching.resolve(self.model.config)
        if p.mode.startswith("entropy") and self.model.entropy_model is None:
            raise ValueError("this checkpoint has no entropy model; use a non-entropy patching mode")
        self.row_mode.fill_(PATCHING_MODES.index(p.mode))
        self.row_threshold.fill_(0.0 if p.threshold is None else float(p.threshold))
        self.row_patch_size.fill_(p.patch_size)
        self.row_max_length.fill_(p.max_patch_length or 0)

    def check_patches_ahead(self, positions: int) -> None:
        """Static and byte patching know every patch ahead: refuse a generation whose positions
        (BOS + prompt + max_new_bytes) make more patches than the global model's context. Other
        modes are checked on the prompt at prefill, then stop a row with stop_reason 'context'
        when a patch completes with the global context full (`commit_patch`)."""
        p = self.patching
        if p.mode not in ("static", "byte"):
            return
        starts = start_mask(p.mode, positions, patch_size=p.patch_size, max_patch_length=p.max_patch_length,
                            device=self.device)
        n, limit = int(starts[0, :positions].sum()), self.model.config.patch_context
        if n > limit:
            raise ValueError(f"BOS + prompt + max_new_bytes = {positions} bytes make {n} patches in {p.mode} "
                             f"mode, more than the global model's context of {limit} patches")

    # ------------------------------------------------------------------ prefill
    @torch.no_grad()
    def prefill(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T0) right-padded prompts with true lengths (B,) -> next-byte logits (B, V).
        In four parts, so prefill_graphs.py can replay the first and the last as CUDA graphs."""
        H = self.prefill_entropies(ids)
        starts, count = self.prefill_patches(ids, H)
        return self.prefill_rest(ids, lengths, H, starts, count, self.prefill_patch_count(count))

    def prefill_entropies(self, ids: torch.Tensor) -> torch.Tensor | None:
        """The entropy model over the prompts (B, T0), filling its caches -> H (B, T0) nats, or
        None without an entropy model."""
        if self.ent is None:
            return None
        return entropy_of_logits(self.model.entropy_model(ids, self.ent.caches))

    def prefill_patches(self, ids: torch.Tensor, H: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The prompts' patches by the stepper's rule -> starts (B, T0+1) bool, and count (B, T0+1):
        patches begun at or before each position."""
        p = self.patching
        starts = start_mask(p.mode, ids.shape[1], entropies=H, ids=ids, threshold=p.threshold,
                            patch_size=p.patch_size, max_patch_length=p.max_patch_length)
        return starts, starts.long().cumsum(1)

    def prefill_patch_count(self, count: torch.Tensor) -> int:
        """The global model's patches for a prefill (one read from the device): the most any
        prompt makes, rounded up within its cache (PREFILL_ROUND); the extra ones are empty, after
        every real patch, and no later step reads them before writing them. Raises ValueError
        past the global context."""
        n_patches, limit = int(count[:, -1].max()), self.model.config.patch_context
        if n_patches > limit:
            raise ValueError(f"the prompt makes {n_patches} patches in {self.patching.mode} mode, more than the "
                             f"global model's context of {limit} patches; use a shorter prompt or longer patches")
        return min(-(-n_patches // PREFILL_ROUND) * PREFILL_ROUND, self.glob.length)

    def prefill_rest(self, ids: torch.Tensor, lengths: torch.Tensor, H: torch.Tensor | None, starts: torch.Tensor,
                     count: torch.Tensor, P: int) -> torch.Tensor:
        """The prefill after the patches are known (P global slots): encoder, global model and
        decoder over the prompts, and every row's state -> logits (B, V). No read from the device."""
        m, B = self.model, self.B
        T0 = ids.shape[1]
        rows = torch.arange(B, device=self.device)
        last = lengths - 1                                                  # (B,) last prompt position
        self.ids[:, :T0] = ids
        x = m.hash_embeddings.add_to(m.local_encoder.embed_tokens(ids), ids)
        h, patches = m.local_encoder(x, count[:, :T0] - 1, P, self.enc.caches)
        if self.enc_kv is not None:
            self.enc_kv.fill(*m.local_encoder.cross_attn_layers[-1].kv(h))
        g = m.global_transformer(patches, self.glob.caches)                 # (B, P, Cg)
        out = m.local_decoder(h, g, count[:, 1:] - 2, self.dec.caches)
        logits = m.lm_head(out[rows, last]).float()                         # (B, V)

        positions = torch.arange(T0 + 1, device=self.device)
        self.pos.copy_(lengths)
        self.next_start.copy_(starts[rows, lengths])
        if H is not None:
            self.prev_entropy.copy_(H[rows, last])
        self.n_patches.copy_(count[rows, lengths] - 1)                      # complete patches
        self.context_full.zero_()                  # (a stepper may be prefilled again: sessions.py)
        self.patch_start.copy_(torch.where(starts, positions, 0).cummax(1).values[rows, last])
        in_open = (positions[None, :T0] >= self.patch_start[:, None]) & (positions[None, :T0] <= last[:, None])
        if self.mean_pool:
            self.pooled.copy_(torch.where(in_open[..., None], h, 0).sum(1))
        else:
            self.pooled.copy_(torch.where(in_open[..., None], h, torch.finfo(h.dtype).min).amax(1))
        self._set_decoder_patch(g[rows, self.n_patches - 1][:, None], torch.ones_like(self.next_start))
        self.logits.copy_(logits)
        return self.logits

    # ------------------------------------------------------------------ one byte
    @torch.no_grad()
    def step(self, next_ids: torch.Tensor) -> StepOutput:
        """Feed the byte at each row's position (B,) -> logits for the following byte: the step
        methods below in order, the global step only when some row completed a patch."""
        H = self.entropy_step(next_ids)
        self.encoder_step(next_ids)
        self.decide_boundary(H, next_ids)
        if bool(self.next_start.any()):
            self.commit_patch(self.global_step())
        self.decoder_step()
        return self.output()

    def output(self) -> StepOutput:
        """The state a step leaves for the driver (the tensors themselves, updated in place)."""
        return StepOutput(self.logits, self.entropy, self.next_start, self.context_full)

    def entropy_step(self, next_ids: torch.Tensor) -> torch.Tensor:
        """Entropy model step at each row's position -> H (B,) nats (zeros without an entropy
        model). Touches only its own cache, so it may run beside the encoder and global steps
        (the speculative greedy graph)."""
        m = self.model
        if self.ent is None:
            return torch.zeros(self.B, device=self.device)
        x = m.entropy_model.embed_tokens(next_ids)[:, None]                 # (B, 1, Ce)
        x = self._run(self.ent, x, self.pos)
        return entropy_of_logits(m.entropy_model.lm_head(m.entropy_model.norm(x)))[:, 0]

    def encoder_step(self, next_ids: torch.Tensor) -> None:
        """Encoder step of the byte (B,); adds it to the open patch, or opens one if it starts a patch."""
        self.encoder_finish(self.encoder_layers(next_ids))

    def encoder_layers(self, next_ids: torch.Tensor) -> torch.Tensor:
        """The encoder step up to its layers' output h (B, 1, C), which the decoder step may take
        at once (`decoder_step(h=h)`); `encoder_finish(h)` ends the step, before the boundary is
        decided and before the pooling reads it."""
        m, t = self.model, self.pos.clone()
        rows = torch.arange(self.B, device=self.device)
        self.ids[rows, t] = next_ids
        starts_here = self.next_start
        n = max(m.hash_embeddings.sizes)                                    # bytes t-n+1..t for the n-grams
        idx = t[:, None] - torch.arange(n - 1, -1, -1, device=self.device)
        window = torch.where(idx >= 0, self.ids.gather(1, idx.clamp(min=0)), 0)   # (B, n)
        x = m.hash_embeddings.add_last(m.local_encoder.embed_tokens(window[:, -1:]), window)   # (B, 1, C)
        # the open patch's start before the layers (it needs only starts_here), where the
        # compiled step folds it into the byte's first launch: not a launch of its own between
        # the encoder's layers and the pooling
        self.patch_start.copy_(torch.where(starts_here, t, self.patch_start))
        return self._run(self.enc, x, t)                                    # (B, 1, C)

    def encoder_finish(self, h: torch.Tensor) -> None:
        """The rest of the encoder step: the pooling's keys and values at the byte, the open
        patch's pooled state, and h kept for the decoder step."""
        m, t, starts_here = self.model, self.pos, self.next_start
        if self.enc_kv is not None and self.dk is not None:                # one launch
            self.dk.kv_at(m.local_encoder.cross_attn_layers[-1], h[:, 0], self.enc_kv, t, self.kernels)
        elif self.enc_kv is not None:
            self.enc_kv.write(t, *m.local_encoder.cross_attn_layers[-1].kv(h))
        merged = self.pooled + h[:, 0] if self.mean_pool else torch.maximum(self.pooled, h[:, 0])
        self.pooled.copy_(torch.where(starts_here[:, None], h[:, 0], merged))
        self.h.copy_(h)

    def decide_boundary(self, H: torch.Tensor, next_ids: torch.Tensor) -> None:
        """Real-time patching: does the byte after this one start a patch (i.e. this one ends
        it)? H (B,) nats from entropy_step -> next_start (B,) bool, by each row's own rule."""
        pos = self.pos + 1
        rules = torch.stack([boundary_rule(mode, pos, h_prev=H, h_prev2=self.prev_entropy, id_prev=next_ids,
                                           threshold=self.row_threshold, patch_size=self.row_patch_size)
                             for mode in PATCHING_MODES])                   # (modes, B)
        rule = rules.gather(0, self.row_mode[None])[0] | (pos <= 1)
        self.next_start.copy_(split_long(rule, pos, self.patch_start, self.row_max_length))
        self.prev_entropy.copy_(H)
        self.entropy.copy_(H)

    def global_slot(self) -> None:
        """The global step's slot -> global_pos (B,): n_patches, or the last slot where the
        global context is full (a row steps there, never past the cache, and commits nothing)."""
        self.global_pos.copy_(self.n_patches.clamp(max=self.glob.length - 1))

    def global_step(self, slot_placed: bool = False) -> torch.Tensor:
        """The open patch (through the byte just fed) pooled and one global step at slot n_patches
        (`global_slot`, run here unless slot_placed=True says it ran since the last commit) -> g
        (B, 1, Cg). Harmless for rows whose patch goes on: nothing reads slot n_patches before
        the patch that completes next writes it again."""
        if not slot_placed:
            self.global_slot()
        m, enc = self.model, self.model.local_encoder
        B, C, k = self.B, self.h.shape[-1], self.model.config.cross_attn_k
        # a mean divides by the open patch's bytes, patch_start..pos
        pooled = self.pooled / (self.pos - self.patch_start + 1)[:, None] if self.mean_pool else self.pooled
        if self.enc_kv is not None and self.dk is not None:                 # the same as below, fused
            q = self.dk.pool_patch(enc, pooled, self.enc_kv, self.pos, self.patch_start, self.kernels)
        else:
            q = enc.patch_embedding_projection(pooled).reshape(B, k, C)     # (B, k, C)
            if self.enc_kv is not None:                                     # over the patch's bytes
                q = q + enc.cross_attn_layers[-1].attend(q, self.enc_kv.k, self.enc_kv.v, self._patch_mask())
        g = q.reshape(B, 1, k * C)
        glob = m.global_transformer
        if glob.token_embedding_projection is not None:
            g = glob.token_embedding_projection(g)
        return self._run(self.glob, g, self.global_pos)                     # (B, 1, Cg)

    def _patch_mask(self):
        """Which cached encoder states the pooling reads: the open patch's bytes, patch_start..pos.
        With the kernels' attention (`rows(n, kernels=False)`; the fused kernels pool in
        `decode_kernels.pool_patch`), a kernel reads just those; else a mask over all L,
        which SDPA reads whole (blt-1b's byte context, 24,576 positions in the batch engine, took
        0.5 ms a byte with PyTorch's memory-efficient attention: bench/README.md)."""
        if self.attention_kernel is not None:
            return CachedAttention(self.attention_kernel, self.pos, None, self.patch_start)
        j = torch.arange(self.L, device=self.device)
        in_patch = (j[None] >= self.patch_start[:, None]) & (j[None] <= self.pos[:, None])
        return in_patch[:, None, None, :]                                   # (B, 1, 1, L)

    def choose_commits(self) -> None:
        """Which rows keep this step's global output -> commit (B,) bool: those whose patch
        completed (next_start) with a global slot left, counted in n_patches; a completed patch
        with none left marks the row context_full (its next logits would be wrong, so the driver
        stops it). Needs only the boundary decision, not g (the global step reads its slot from
        global_pos): the speculative step runs it beside the global step."""
        fits = self.n_patches < self.glob.length
        self.context_full.logical_or_(self.next_start & ~fits)
        self.commit.copy_(self.next_start & fits)
        self.n_patches.add_(self.commit.long())             # (the global step's slot is in global_pos)

    def commit_patch(self, g: torch.Tensor, chosen: bool = False) -> None:
        """Rows chosen by `choose_commits` (run here unless chosen=True says it ran since the
        boundary decision) take global output g (B, 1, Cg) as their latest patch."""
        if not chosen:
            self.choose_commits()
        self._set_decoder_patch(g, self.commit)

    def decoder_step(self, advance: bool = True, h: torch.Tensor | None = None) -> None:
        """Decoder step of the byte just fed -> logits (B, V) for the following byte; every row's
        position advances by one. advance=False leaves the position (and so the byte's other
        steps) where it is: the step may then run before the boundary is decided and be run again
        after a patch completes (it rewrites the same cache slot); `advance()` moves on.
        h: the encoder's output for the byte (`encoder_layers`), when not yet kept by `encoder_finish`."""
        m, dec, t = self.model, self.model.local_decoder, self.pos       # moves on only after the layers
        crosses = [(c, kv.k, kv.v) for c, kv in zip(dec.cross_attn_layers, self.dec_kv)]
        h = self._run(self.dec, self.h if h is None else h, t, crosses)
        if self.dk is not None:                                             # norm and head in one launch
            self.dk.norm_head(h[:, 0], dec.norm, m.lm_head.weight, self.kernels, out=self.logits)
        else:
            self.logits.copy_(m.lm_head(dec.norm(h))[:, 0].float())
        if advance:
            self.advance()

    def advance(self) -> None:
        """Every row's position moves on by one (the end of a byte's steps)."""
        self.pos.add_(1)

    # ------------------------------------------------------------------ rows (continuous batching)
    def load_row(self, row: int, src: "IncrementalBLT", src_row: int = 0, count: int = 1, keep: bool = False) -> None:
        """Rows src_row.. of `src` (this stepper or one of the same model with caches no longer than
        these) become rows row..: their caches, state and patching rule, `count` rows in one copy
        per tensor (a prefill's 8 rows: 8 times fewer copies than one row at a time). keep: `src`
        lives on (a kept prefill stepper), so the views of both sides are kept for the next copy
        of the same rows: making them took ~1.8 ms of a 2.8 ms copy of blt-1b's 135 tensors on an
        H100, which a lone request's first byte waits for."""
        key = (id(src), row, src_row, count)
        views = self._kept_copies.get(key)
        if views is None or views[0] is not src:
            dst, from_ = [], []
            for (obj, name), (src_obj, _) in zip(self._per_row(), src._per_row()):
                value = getattr(src_obj, name)[src_row:src_row + count]
                from_.append(value)
                dst.append(getattr(obj, name)[(slice(row, row + count),) + tuple(slice(0, n) for n in value.shape[1:])])
            views = (src, dst, from_)
            if keep:
                self._kept_copies[key] = views
        torch._foreach_copy_(views[1], views[2])

    def rows(self, n: int, kernels: bool = True) -> "IncrementalBLT":
        """A view of the first n rows: stepping it steps just them, in these very tensors.
        kernels=False: the view runs its layers through torch (cuBLAS), but where this stepper
        has the kernels, their attention, which reads each row's cached keys only up to its
        position (bench/profile_batch.py compares it with the fused kernels at several rows)."""
        view = copy.copy(self)
        view._kept_copies = {}
        if not kernels:
            view.attention_kernel = self.dk.cached_attention if self.dk is not None else None
            view.dk = view.kernels = None
        view.B = n
        for name in ("ent", "enc", "glob", "dec"):
            stack = getattr(self, name)
            if stack is not None:
                setattr(view, name, copy.copy(stack))
                getattr(view, name).caches = [copy.copy(c) for c in stack.caches]
        view.enc_kv = copy.copy(self.enc_kv)
        view.dec_kv = [copy.copy(c) for c in self.dec_kv]
        for obj, name in view._per_row():
            setattr(obj, name, getattr(obj, name)[:n])
        return view

    def park(self, rows: torch.Tensor) -> None:
        """Idle rows (B,) bool mask: back at position 1, patching statically so they never
        complete a patch, so a full-batch step writes only into their own caches' first slots."""
        for name, value in (("pos", 1), ("patch_start", 1), ("n_patches", 0), ("global_pos", 0),
                            ("row_mode", PATCHING_MODES.index("static")), ("row_patch_size", PARKED_PATCH_SIZE),
                            ("row_max_length", 0)):
            getattr(self, name).masked_fill_(rows, value)
        self.next_start.masked_fill_(rows, False)
        self.context_full.masked_fill_(rows, False)

    def _per_row(self) -> list[tuple[object, str]]:
        """(holder, attribute) of every tensor with one row per batch row, in a fixed order."""
        caches = [c for stack in (self.ent, self.enc, self.glob, self.dec) if stack is not None for c in stack.caches]
        caches += ([self.enc_kv] if self.enc_kv is not None else []) + list(self.dec_kv)
        return [(c, name) for c in caches for name in ("k", "v")] + [(self, name) for name in ROW_STATE]

    # ------------------------------------------------------------------ internals
    def _set_decoder_patch(self, g, rows_mask):
        """Decoder cross-attention keys/values of the k slots of global output g (B, 1, Cg), for
        rows where rows_mask (B,) bool. With the kernels: the slots' projection, then one launch for
        all layers with the masked write inside (eagerly a product and two masked copies per
        layer: 90 us a byte of blt-1b's speculative step, bench/README.md)."""
        dec = self.model.local_decoder
        if self.dk is not None:
            self.dk.decoder_slots(dec, g, self.dec_kv, rows_mask, self.kernels, self.slot_tables)
            return
        slots = dec.patch_embedding_projection(g).reshape(self.B, dec.k, -1)   # (B, k, Cd)
        keep = rows_mask[:, None, None, None]
        for cache, cross in zip(self.dec_kv, dec.cross_attn_layers):
            k, v = cross.kv(slots)
            cache.k.copy_(torch.where(keep, k, cache.k))
            cache.v.copy_(torch.where(keep, v, cache.v))

    def _run(self, stack: StackSteps, x, pos, crosses=()):
        """Every layer of a stack, one step at pos; crosses: (cross-attention, k, v) run before the
        first layers (the decoder's)."""
        if self.dk is not None:
            return self.dk.stack_step(stack.stack.layers, stack.caches, x, pos, stack.cos, stack.sin,
                                      stack.stack.cfg.sliding_window, self.kernels, crosses)
        cos, sin = stack.rope(pos)
        mask = (CachedAttention(self.attention_kernel, pos, stack.stack.cfg.sliding_window)
                if self.attention_kernel is not None else stack.mask(pos))
        for i, (layer, cache) in enumerate(zip(stack.stack.layers, stack.caches)):
            if i < len(crosses):
                cross, k, v = crosses[i]
                x = x + cross.attend(x, k, v)
            x = layer(x, cos, sin, mask, cache, pos)
        return x


def _decode_kernels(model):
    """The fused Triton layer steps (decode_kernels.py): CUDA, or Triton's CPU interpreter."""
    if model.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError("kernels=True needs a CUDA device (fused Triton kernels)")
    try:
        from . import decode_kernels
    except ImportError as e:
        raise ValueError(f"kernels=True needs Triton, which comes with torch's CUDA builds: {e}") from e
    cfg = model.config
    decode_kernels.check_head_dims({"entropy model": cfg.entropy_model, "local encoder": cfg.encoder,
                                    "global model": cfg.global_model, "local decoder": cfg.decoder})
    return decode_kernels
