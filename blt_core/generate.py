"""Exact incremental generation for BLT, with real-time patching.

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

so the big global model runs 1 / (mean patch length) times per byte instead of re-running on
every patch for every byte, and the byte-level parts do O(1) FFN work per byte (attention reads
O(t) cached keys). The result equals the full forward at every step (tests compare logits and
bytes); `generate_reference` is that naive recompute-everything loop, kept as the reference.

Rows of a batch advance independently (own positions, patches and caches); a row's bytes are
the same alone or in any batch. Optional fast paths: `compile=True` runs the three step parts
(byte, patch, decoder) through torch.compile, and on CUDA `cuda_graphs=True` replays them as
captured CUDA graphs; the eager path is the reference, and tests compare all of them with it.
Cache lengths are rounded up to multiples of 512 so compiled code and graphs are reused.
`speculative=True` (greedy only) runs each byte as one CUDA graph that always takes the global
step and keeps it only where a patch completed (`fast_step.GreedyGraph`). `kernels=True` runs
every layer's single-row step (and the decoder's cross-attention) as fused Triton kernels
(`decode_kernels`), on CUDA.
"""
from __future__ import annotations

import codecs
import os
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

from .entropy import entropy_of_logits
from .fast_step import GreedyGraph, StepGraphs, compiled
from .layers import KVCache, rope_tables
from .patching import boundary_rule, split_long, start_mask
from .sampling import SamplingParams, make_generators, sample_next
from .tokenizer import EOS_ID, ByteTokenizer, to_bytes


def step_mask(pos: torch.Tensor, length: int, window: int | None) -> torch.Tensor:
    """(B, 1, 1, length) bool: key j visible to a query at pos[b] (j <= pos, within the window)."""
    j = torch.arange(length, device=pos.device)
    ok = j[None] <= pos[:, None]
    if window is not None:
        ok &= (pos[:, None] - j[None]) < window
    return ok[:, None, None, :]


class _StackStepper:
    """One stack's caches and RoPE tables for single-token steps at per-row positions."""

    def __init__(self, stack, batch, length, dtype, device):
        self.stack, self.length = stack, length
        self.caches = stack.new_caches(batch, length, dtype, device)
        self.cos, self.sin = rope_tables(torch.arange(length, device=device), stack.cfg.head_dim,
                                         stack.cfg.rope_theta, dtype)

    def rope(self, pos):
        return self.cos[pos][:, None, None, :], self.sin[pos][:, None, None, :]   # (B, 1, 1, D)

    def mask(self, pos):
        return step_mask(pos, self.length, self.stack.cfg.sliding_window)


@dataclass
class StepOutput:
    logits: torch.Tensor        # (B, V) prediction of the next byte
    entropy: torch.Tensor       # (B,) entropy (nats) after the byte just fed
    global_step: torch.Tensor   # (B,) bool: this step completed a patch and ran the global model


class IncrementalBLT:
    """Caches and per-row state of B rows being decoded; see the module docstring."""

    def __init__(self, model, batch: int, length: int, mode=None, threshold=None, max_patch_length=None,
                 patch_size=None, cuda_graphs: bool = False, compile: bool = False, kernels: bool = False):
        cfg = model.config
        self.model, self.B, self.L = model, batch, length
        self.mode = mode or cfg.patching_mode
        self.threshold = cfg.patching_threshold if threshold is None else threshold
        self.max_patch_length = cfg.max_patch_length if max_patch_length is None else max_patch_length
        self.patch_size = patch_size or cfg.patch_size
        # a tensor, so compiled steps and captured graphs are shared by all thresholds
        self.threshold_t = None if self.threshold is None else torch.tensor(float(self.threshold), device=model.device)
        if self.mode.startswith("entropy") and model.entropy_model is None:
            raise ValueError("this checkpoint has no entropy model; use a non-entropy patching mode")
        limits = {"local encoder": cfg.encoder.max_seq_len, "local decoder": cfg.decoder.max_seq_len}
        if self.mode.startswith("entropy"):
            limits["entropy model"] = cfg.entropy_model.max_seq_len
        for part, limit in limits.items():
            if length > limit:
                raise ValueError(f"prompt + max_new_bytes = {length} bytes exceeds the {part}'s context of {limit}")
        dtype, device = model.lm_head.weight.dtype, model.device
        self.device = device
        enc, dec = model.local_encoder, model.local_decoder
        self.ent = _StackStepper(model.entropy_model, batch, length, dtype, device) if model.entropy_model else None
        self.enc = _StackStepper(enc, batch, length, dtype, device)
        self.glob = _StackStepper(model.global_transformer, batch, length + 1, dtype, device)
        self.dec = _StackStepper(dec, batch, length, dtype, device)
        self.mean_pool = enc.pooling == "mean"
        cross = enc.cross_attn_layers[-1] if enc.cross_attn_layers else None
        self.enc_kv = KVCache(batch, cross.n_kv_heads, length, cross.head_dim, dtype, device) if cross else None
        k = cfg.cross_attn_k
        self.dec_kv = [KVCache(batch, c.n_kv_heads, k, c.head_dim, dtype, device) for c in dec.cross_attn_layers]
        z = lambda dt: torch.zeros(batch, dtype=dt, device=device)
        self.ids = torch.zeros(batch, length, dtype=torch.long, device=device)
        self.pos, self.n_patches, self.patch_start = z(torch.long), z(torch.long), z(torch.long)
        self.next_start, self.prev_entropy = z(torch.bool), z(torch.float32)
        self.pooled = torch.zeros(batch, cfg.encoder.dim, dtype=dtype, device=device)   # max, or sum (mean)
        self.count = z(torch.long)                                          # bytes in the open patch
        self.h = torch.zeros(batch, 1, cfg.encoder.dim, dtype=dtype, device=device)
        self.entropy, self.logits = z(torch.float32), torch.zeros(batch, cfg.vocab_size, device=device)
        # torch.compile of the step parts fuses their many small element-wise kernels (norms, RoPE,
        # residuals, patch bookkeeping); compiled once per process and shape, shared by instances.
        self.compile = compile
        parts = (IncrementalBLT._byte_part, IncrementalBLT._patch_part, IncrementalBLT._decoder_part)
        self.parts = compiled(parts) if compile else parts
        self.graphs = StepGraphs(self) if cuda_graphs and device.type == "cuda" else None
        self.dk = _decode_kernels(model) if kernels else None

    # ------------------------------------------------------------------ prefill
    @torch.no_grad()
    def prefill(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """ids (B, T0) right-padded prompts with true lengths (B,) -> next-byte logits (B, V)."""
        m, B = self.model, self.B
        T0 = ids.shape[1]
        rows = torch.arange(B, device=self.device)
        last = lengths - 1                                                  # (B,) last prompt position
        self.ids[:, :T0] = ids
        H = None
        if self.ent is not None:
            H = entropy_of_logits(m.entropy_model(ids, self.ent.caches))   # (B, T0)
        starts = start_mask(self.mode, T0, entropies=H, ids=ids, threshold=self.threshold,
                            patch_size=self.patch_size, max_patch_length=self.max_patch_length)
        count = starts.long().cumsum(1)                                     # (B, T0+1)
        n_patches = int(count[:, T0].max())
        x = m.hash_embeddings.add_to(m.local_encoder.embed_tokens(ids), ids)
        h, patches = m.local_encoder(x, count[:, :T0] - 1, n_patches, self.enc.caches)
        if self.enc_kv is not None:
            self.enc_kv.fill(*m.local_encoder.cross_attn_layers[-1].kv(h))
        g = m.global_transformer(patches, self.glob.caches)                 # (B, P, Cg)
        out = m.local_decoder(h, g, count[:, 1:] - 2, self.dec.caches)
        logits = m.lm_head(out[rows, last]).float()                         # (B, V)

        # State is updated in place: captured CUDA graphs read these very tensors.
        p = torch.arange(T0 + 1, device=self.device)
        self.pos.copy_(lengths)
        self.next_start.copy_(starts[rows, lengths])
        if H is not None:
            self.prev_entropy.copy_(H[rows, last])
        self.n_patches.copy_(count[rows, lengths] - 1)                      # complete patches
        self.patch_start.copy_(torch.where(starts, p, 0).cummax(1).values[rows, last])
        in_open = (p[None, :T0] >= self.patch_start[:, None]) & (p[None, :T0] <= last[:, None])
        if self.mean_pool:
            self.pooled.copy_(torch.where(in_open[..., None], h, 0).sum(1))
        else:
            self.pooled.copy_(torch.where(in_open[..., None], h, torch.finfo(h.dtype).min).amax(1))
        self.count.copy_(in_open.sum(1))
        self._set_decoder_patch(g[rows, self.n_patches - 1][:, None], torch.ones_like(self.next_start))
        self.logits.copy_(logits)
        return self.logits

    # ------------------------------------------------------------------ one byte
    @torch.no_grad()
    def step(self, next_ids: torch.Tensor) -> StepOutput:
        """Feed the byte at each row's position (B,) -> logits for the following byte."""
        if self.graphs is not None:
            return StepOutput(*self.graphs.step(next_ids))
        byte_part, patch_part, decoder_part = self.parts
        byte_part(self, next_ids)
        if bool(self.next_start.any()):
            patch_part(self)
        decoder_part(self)
        return StepOutput(self.logits, self.entropy, self.next_start)

    def _byte_part(self, next_ids):
        """Entropy model and encoder steps, patch bookkeeping, and the boundary decision."""
        H = self._entropy_part(next_ids)
        self._encoder_part(next_ids)
        self._decide(H, next_ids)

    def _entropy_part(self, next_ids) -> torch.Tensor:
        """Entropy model step at each row's position -> H (B,) nats. Touches only its own cache,
        so it may run beside the encoder and global steps (the speculative greedy graph)."""
        m = self.model
        if self.ent is None:
            return torch.zeros(self.B, device=self.device)
        x = m.entropy_model.embed_tokens(next_ids)[:, None]                 # (B, 1, Ce)
        x = self._run(self.ent, x, self.pos)
        return entropy_of_logits(m.entropy_model.lm_head(m.entropy_model.norm(x)))[:, 0]

    def _encoder_part(self, next_ids):
        """Encoder step of the byte; adds it to the open patch (or opens one if it starts a patch)."""
        m, t = self.model, self.pos.clone()
        rows = torch.arange(self.B, device=self.device)
        self.ids[rows, t] = next_ids
        starts_here = self.next_start
        n = max(m.hash_embeddings.sizes)                                    # bytes t-n+1..t for the n-grams
        idx = t[:, None] - torch.arange(n - 1, -1, -1, device=self.device)
        window = torch.where(idx >= 0, self.ids.gather(1, idx.clamp(min=0)), 0)   # (B, n)
        x = m.hash_embeddings.add_to(m.local_encoder.embed_tokens(window), window)[:, -1:]
        h = self._run(self.enc, x, t)                                       # (B, 1, C)
        if self.enc_kv is not None:
            self.enc_kv.write(t, *m.local_encoder.cross_attn_layers[-1].kv(h))
        merged = self.pooled + h[:, 0] if self.mean_pool else torch.maximum(self.pooled, h[:, 0])
        self.pooled.copy_(torch.where(starts_here[:, None], h[:, 0], merged))
        self.count.copy_(torch.where(starts_here, 1, self.count + 1))
        self.patch_start.copy_(torch.where(starts_here, t, self.patch_start))
        self.h.copy_(h)

    def _decide(self, H, next_ids):
        """Real-time patching: does the byte after this one start a patch (i.e. this one ends it)?"""
        p = self.pos + 1
        rule = boundary_rule(self.mode, p, h_prev=H, h_prev2=self.prev_entropy, id_prev=next_ids,
                             threshold=self.threshold_t, patch_size=self.patch_size) | (p <= 1)
        self.next_start.copy_(split_long(rule, p, self.patch_start, self.max_patch_length))
        self.prev_entropy.copy_(H)
        self.entropy.copy_(H)

    def _patch_part(self):
        """Rows whose open patch just completed: pool it, one global step, decoder patch keys."""
        self._commit_patch(self._global_part())

    def _global_part(self) -> torch.Tensor:
        """The open patch (through the byte just fed) pooled and one global step at slot n_patches
        -> g (B, 1, Cg). Harmless for rows whose patch goes on: nothing reads slot n_patches
        before the patch that completes next writes it again."""
        m, enc = self.model, self.model.local_encoder
        B, C, k = self.B, self.h.shape[-1], self.model.config.cross_attn_k
        pooled = self.pooled / self.count[:, None] if self.mean_pool else self.pooled
        q = enc.patch_embedding_projection(pooled).reshape(B, k, C)         # (B, k, C)
        if self.enc_kv is not None:
            j = torch.arange(self.L, device=self.device)
            in_patch = (j[None] >= self.patch_start[:, None]) & (j[None] <= self.pos[:, None])
            cross = enc.cross_attn_layers[-1]
            q = q + cross.attend(q, self.enc_kv.k, self.enc_kv.v, in_patch[:, None, None, :])
        g = q.reshape(B, 1, k * C)
        glob = m.global_transformer
        if glob.token_embedding_projection is not None:
            g = glob.token_embedding_projection(g)
        return self._run(self.glob, g, self.n_patches)                     # (B, 1, Cg)

    def _commit_patch(self, g):
        """Rows whose patch completed (next_start) take global output g as their latest patch."""
        self._set_decoder_patch(g, self.next_start)
        self.n_patches.add_(self.next_start.long())

    def _set_decoder_patch(self, g, rows_mask):
        """Decoder cross-attention keys/values of the k slots of global output g (B, 1, Cg)."""
        dec = self.model.local_decoder
        slots = dec.patch_embedding_projection(g).reshape(self.B, dec.k, -1)   # (B, k, Cd)
        keep = rows_mask[:, None, None, None]
        for cache, cross in zip(self.dec_kv, dec.cross_attn_layers):
            k, v = cross.kv(slots)
            cache.k.copy_(torch.where(keep, k, cache.k))
            cache.v.copy_(torch.where(keep, v, cache.v))

    def _decoder_part(self):
        m, dec, t = self.model, self.model.local_decoder, self.pos.clone()
        crosses = [(c, kv.k, kv.v) for c, kv in zip(dec.cross_attn_layers, self.dec_kv)]
        h = self._run(self.dec, self.h, t, crosses)
        self.logits.copy_(m.lm_head(dec.norm(h))[:, 0].float())
        self.pos.add_(1)

    def _run(self, stepper: _StackStepper, x, pos, crosses=()):
        """Every layer of a stack, one step at pos; crosses: (cross-attention, k, v) run before the
        first layers (the decoder's)."""
        if self.dk is not None:
            return _fused_stack(self.dk, stepper, x, pos, crosses)
        (cos, sin), mask = stepper.rope(pos), stepper.mask(pos)
        for i, (layer, cache) in enumerate(zip(stepper.stack.layers, stepper.caches)):
            if i < len(crosses):
                cross, k, v = crosses[i]
                x = x + cross.attend(x, k, v)
            x = layer(x, cos, sin, mask, cache, pos)
        return x


@torch.compiler.disable          # one opaque call per stack for torch.compile (a graph break per
def _fused_stack(dk, stepper: _StackStepper, x, pos, crosses=()):    # layer would recompile per index)
    """_run's layers as the fused Triton kernels, which read pos (and the window) on the device."""
    for i, (layer, cache) in enumerate(zip(stepper.stack.layers, stepper.caches)):
        if i < len(crosses):
            cross, k, v = crosses[i]
            x = dk.cross_step(cross, x, k, v)
        x = dk.block_step(layer, x, pos, cache, stepper.cos, stepper.sin, stepper.stack.cfg.sliding_window)
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


# ---------------------------------------------------------------------------------- drivers
@dataclass
class GenerationResult:
    prompt: str
    text: str                       # generated text (stop string excluded), invalid UTF-8 replaced
    bytes: bytes                    # generated bytes
    entropies: list[float]          # per generated byte, nats (uncertainty about the next byte)
    patch_starts: list[int]         # indices of generated bytes that start a patch
    stop_reason: str                # 'max_new_bytes', 'eos' or 'stop'
    global_steps: int               # global-model steps taken while generating
    timings: dict = field(default_factory=dict)   # prefill_s, decode_s, bytes_per_s, ms_per_byte


@dataclass
class ByteEvent:
    byte: int                       # the generated byte (0..255)
    text: str                       # text completed by this byte ('' inside a multi-byte character)
    entropy: float                  # nats, after this byte
    starts_patch: bool              # this byte opens a new patch
    global_step: bool               # the global model ran after this byte (its patch completed)
    index: int                      # 0-based index among generated bytes


def _prepare(model, prompts, params: SamplingParams):
    """Right-padded prompt ids, their lengths, and the cache length: prompt + new bytes rounded up
    to a multiple of 512 (capped at the model's context), so compiled code and CUDA graphs, which
    are specialised to shapes, are reused across requests."""
    tok = ByteTokenizer()
    rows = [tok.encode(p) for p in prompts]
    T0 = max(len(r) for r in rows)
    ids = torch.tensor([r + [0] * (T0 - len(r)) for r in rows], device=model.device)
    lengths = torch.tensor([len(r) for r in rows], device=model.device)
    cfg = model.config
    cap = min(cfg.encoder.max_seq_len, cfg.decoder.max_seq_len,
              cfg.entropy_model.max_seq_len if cfg.entropy_model else cfg.encoder.max_seq_len)
    need = T0 + params.max_new_bytes
    return ids, lengths, need if need > cap else min(cap, -(-need // 512) * 512)


def stream_batch(model, prompts: list, params: SamplingParams, cuda_graphs=False, compile=False,
                 speculative: bool = False, kernels: bool = False, **patching) -> Iterator[list[ByteEvent | None]]:
    """Yields, for each generated position, one ByteEvent per row (None for a finished row), and
    finally a list of GenerationResult. speculative=True decodes with `fast_step.GreedyGraph`
    (greedy without repetition penalty only): fastest when most bytes end a patch, slower than
    the per-part graphs at a few bytes per patch (bench/README.md)."""
    ids, lengths, length = _prepare(model, prompts, params)
    B = ids.shape[0]
    inc = IncrementalBLT(model, B, length, cuda_graphs=cuda_graphs, compile=compile, kernels=kernels, **patching)
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    inc.prefill(ids, lengths)
    sync()
    prefill_s = time.perf_counter() - t0
    states = [_RowState(params) for _ in range(B)]
    starts = inc.next_start.tolist()
    t1 = time.perf_counter()
    steps = (GreedyGraph(inc, params, params.max_new_bytes).run(params.max_new_bytes) if speculative
             else _host_steps(inc, params, length))
    for i, (nxt_l, ent_l, next_l) in enumerate(steps):
        events = [None if st.done else st.push(int(nxt_l[r]), ent_l[r], starts[r], bool(next_l[r]), i)
                  for r, st in enumerate(states)]
        starts = [bool(x) for x in next_l]                 # the patch just completed <=> next byte starts one
        yield events
        if all(st.done for st in states):
            break
    steps.close()
    sync()
    decode_s = time.perf_counter() - t1
    yield [st.result(p, prefill_s, decode_s) for st, p in zip(states, prompts)]


def _host_steps(inc: IncrementalBLT, params: SamplingParams, length: int):
    """Sample on the host's schedule, one step at a time; yields (ids, entropies, next_starts)
    as lists over rows."""
    gens = make_generators(params, inc.B, inc.device)
    positions = torch.arange(length, device=inc.device)
    logits = inc.logits
    for _ in range(params.max_new_bytes):
        history = (torch.where(positions[None] < inc.pos[:, None], inc.ids, -1)
                   if params.repetition_penalty != 1.0 else None)
        nxt = sample_next(logits, history, params, gens)
        out = inc.step(nxt)
        logits = out.logits
        # one device-to-host copy per step: byte, entropy, and whether the next byte opens a patch
        yield torch.stack([nxt.float(), out.entropy, out.global_step.float()]).tolist()


class _RowState:
    """Bytes, stop handling and UTF-8-safe text deltas of one row."""

    def __init__(self, params: SamplingParams):
        self.params, self.data, self.entropies, self.starts = params, bytearray(), [], []
        self.global_steps, self.done, self.stop_reason = 0, False, "max_new_bytes"
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.stops = [s.encode() for s in params.stop]

    def push(self, byte, entropy, starts_patch, global_step, index):
        if byte == EOS_ID and self.params.stop_at_eos:
            self.done, self.stop_reason = True, "eos"
            return None
        b = byte - 4
        self.data.append(b)
        self.entropies.append(entropy)
        if starts_patch:
            self.starts.append(index)
        self.global_steps += int(global_step)
        for s in self.stops:
            if self.data.endswith(s):
                self.done, self.stop_reason = True, "stop"
        if index + 1 >= self.params.max_new_bytes:
            self.done = True
        return ByteEvent(b, self.decoder.decode(bytes([b]), final=False), entropy, starts_patch,
                         global_step, index)

    def result(self, prompt, prefill_s, decode_s) -> GenerationResult:
        data = bytes(self.data)
        if self.stop_reason == "stop":
            data = data[:-len(next(s for s in self.stops if data.endswith(s)))]
        n = len(self.data)
        return GenerationResult(
            prompt=prompt if isinstance(prompt, str) else to_bytes(prompt).decode("utf-8", "replace"),
            text=data.decode("utf-8", errors="replace"), bytes=data, entropies=self.entropies[:len(data)],
            patch_starts=[i for i in self.starts if i < len(data)], stop_reason=self.stop_reason,
            global_steps=self.global_steps,
            timings={"prefill_s": round(prefill_s, 6), "decode_s": round(decode_s, 6),
                     "bytes_per_s": round(n / decode_s, 2) if decode_s > 0 and n else None,
                     "ms_per_byte": round(1000 * decode_s / n, 4) if n else None})


def generate(model, prompts, params: SamplingParams, cuda_graphs=False, compile=False, speculative=False,
             kernels=False, **patching) -> list[GenerationResult]:
    """Generate for several prompts at once; rows are independent (see the module docstring)."""
    *_, results = stream_batch(model, prompts, params, cuda_graphs=cuda_graphs, compile=compile,
                               speculative=speculative, kernels=kernels, **patching)
    return results


def stream(model, prompt, params: SamplingParams, cuda_graphs=False, compile=False, speculative=False,
           kernels=False, **patching):
    """One prompt: yields a ByteEvent per generated byte, then the GenerationResult."""
    for events in stream_batch(model, [prompt], params, cuda_graphs=cuda_graphs, compile=compile,
                               speculative=speculative, kernels=kernels, **patching):
        if isinstance(events[0], GenerationResult):
            yield events[0]
        elif events[0] is not None:
            yield events[0]


def generate_reference(model, prompt, params: SamplingParams, **patching) -> tuple[bytes, list[torch.Tensor]]:
    """The naive generator: a full forward over the whole sequence for every byte. Returns the
    generated bytes and the logits used at each step; the incremental path must match it."""
    tok = ByteTokenizer()
    ids = torch.tensor([tok.encode(prompt)], device=model.device)
    gens = make_generators(params, 1, model.device)
    out, used = bytearray(), []
    for _ in range(params.max_new_bytes):
        starts = model.start_mask(ids, patching.get("mode"), patching.get("threshold"),
                                  patching.get("max_patch_length"), patching.get("patch_size"))
        with torch.no_grad():
            logits = model.logits(ids, starts)[:, -1]
        used.append(logits[0])
        nxt = sample_next(logits, ids, params, gens)
        if int(nxt) == EOS_ID and params.stop_at_eos:
            break
        out.append(int(nxt) - 4)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        if any(out.endswith(s.encode()) for s in params.stop):
            break
    return bytes(out), used
