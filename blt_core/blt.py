"""The Byte Latent Transformer: local encoder -> global latent transformer -> local decoder.

    ids (B, T) --byte + hash n-gram embeddings--> (B, T, Ce)
      local encoder: causal layers over bytes, then each patch's k slots (max-pooled byte states,
        projected to k*Ce) cross-attend to that patch's bytes        -> (B, P, k*Ce)
      global transformer: causal layers over patches                 -> (B, P, Cg)
      local decoder: byte t cross-attends to the k slots of patch dec(t), the last patch complete
        at t (dec(t) = patch(t+1) - 1), then causal layers; RMSNorm   -> (B, T, Cd)
      lm_head                                                        -> logits (B, T, 260)

Patches come from a start mask (B, T+1) (see patching.py): patch(t) = #starts <= t, minus 1.
Module and parameter names follow transformers' `BltForCausalLM` so checkpoints map 1:1.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .checkpoint import load_pretrained, save_pretrained
from .config import BLTConfig, preset
from .entropy import EntropyModel
from .entropy_memo import EntropyMemo
from .generation import DecodeOptions, generate, stream
from .hash_embedding import HashNgramEmbedding
from .layers import CrossAttention, RMSNorm, Stack, bytes_per_patch, causal_mask, patch_sums
from .patching import Patches, PatchingParams, mask_from_lengths, patches_from_mask, start_mask
from .sampling import SamplingParams
from .tokenizer import ByteTokenizer


class LocalEncoder(Stack):
    def __init__(self, cfg: BLTConfig):
        super().__init__(cfg.encoder)
        self.k = cfg.cross_attn_k
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.encoder.dim)
        self.patch_embedding_projection = nn.Linear(cfg.encoder.dim, cfg.encoder.dim * self.k, bias=False)
        # BLT pools a patch by max then cross-attention; the "mean" ablation averages its bytes.
        # transformers keeps one cross-attention per layer when cross_attn_all_layers is set, but
        # each one's result is overwritten by the next: only the last layer's counts.
        self.pooling = cfg.encoder_pooling
        n_cross = 0 if self.pooling == "mean" else cfg.encoder.n_layers if cfg.encoder_cross_attn_all_layers else 1
        self.cross_attn_layers = nn.ModuleList(CrossAttention(cfg.encoder) for _ in range(n_cross))

    def forward(self, x, patch_ids, n_patches, caches=None):
        """x (B, T, C) embeddings, patch_ids (B, T) -> byte states (B, T, C), patches (B, P, k*C)."""
        B, T, C = x.shape
        x = self.run_layers(x, caches)
        if self.pooling == "mean":                                        # (B, P, C), empty -> 0
            lengths = bytes_per_patch(patch_ids, n_patches)
            pooled = (patch_sums(x, lengths, 1) / lengths.clamp(min=1)[..., None]).to(x.dtype)
        else:
            pooled = x.new_zeros(B, n_patches, C).scatter_reduce(1, patch_ids[..., None].expand(-1, -1, C), x,
                                                                 reduce="amax", include_self=False)
        q = self.patch_embedding_projection(pooled).reshape(B, n_patches * self.k, C)  # (B, P*k, C)
        if self.cross_attn_layers:
            q = q + self.cross_attn_layers[-1].attend_patches(q, x, patch_ids, self.k)
        return x, q.reshape(B, n_patches, self.k * C)


class GlobalTransformer(Stack):
    def __init__(self, cfg: BLTConfig):
        super().__init__(cfg.global_model)
        in_dim = cfg.encoder.dim * cfg.cross_attn_k
        self.token_embedding_projection = (nn.Linear(in_dim, cfg.global_model.dim, bias=False)
                                           if in_dim != cfg.global_model.dim else None)

    def forward(self, h, caches=None):
        """h (B, P, k*Ce) -> (B, P, Cg); causal over patches, no final norm."""
        if self.token_embedding_projection is not None:
            h = self.token_embedding_projection(h)
        return self.run_layers(h, caches)


class LocalDecoder(Stack):
    def __init__(self, cfg: BLTConfig):
        super().__init__(cfg.decoder)
        self.k = cfg.cross_attn_k
        self.patch_embedding_projection = nn.Linear(cfg.global_model.dim, cfg.decoder.dim * self.k, bias=False)
        self.norm = RMSNorm(cfg.decoder.dim, cfg.decoder.norm_eps)
        n_cross = cfg.decoder.n_layers if cfg.decoder_cross_attn_all_layers else 1
        self.cross_attn_layers = nn.ModuleList(CrossAttention(cfg.decoder) for _ in range(n_cross))

    def forward(self, h, patches, dec_ids, caches=None):
        """h (B, T, C) encoder byte states, patches (B, P, Cg), dec_ids (B, T) -> (B, T, C)."""
        B, T, C = h.shape
        P = patches.shape[1]
        kv = self.patch_embedding_projection(patches).reshape(B, P * self.k, C)   # (B, P*k, C)
        slots = dec_ids[..., None] * self.k + torch.arange(self.k, device=h.device)  # (B, T, k): patch dec(t)'s
        cos, sin = self.rope(T, h.device, h.dtype)
        mask = causal_mask(T, T, self.cfg.sliding_window, h.device)
        for i, layer in enumerate(self.layers):
            if i < len(self.cross_attn_layers):
                cross = self.cross_attn_layers[i]
                h = h + cross.attend_selected(h, *cross.kv(kv), slots)
            h = layer(h, cos, sin, mask, None if caches is None else caches[i])
        return self.norm(h)


class BLT(nn.Module):
    def __init__(self, config: BLTConfig | str):
        super().__init__()
        cfg = preset(config) if isinstance(config, str) else config
        self.config = cfg
        self.entropy_model = EntropyModel(cfg.entropy_model, cfg.vocab_size) if cfg.entropy_model else None
        self.local_encoder = LocalEncoder(cfg)
        self.hash_embeddings = HashNgramEmbedding(cfg.hash_ngram_sizes, cfg.hash_functions,
                                                  cfg.hash_vocab, cfg.encoder.dim)
        self.global_transformer = GlobalTransformer(cfg)
        self.local_decoder = LocalDecoder(cfg)
        self.lm_head = nn.Linear(cfg.decoder.dim, cfg.vocab_size, bias=False)
        self.tokenizer = ByteTokenizer()
        self.entropy_memo: EntropyMemo | None = None     # a server's: see `remember_entropies`
        self.apply(_init_weights)

    # ------------------------------------------------------------------ forward
    def forward(self, input_ids: torch.Tensor, patch_lengths: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids (B, T) -> logits (B, T, vocab) float32. Patches come from `patch_lengths`
        (B, P) when given (transformers' layout), else from the config's patching mode."""
        T = input_ids.shape[1]
        if patch_lengths is not None:
            starts = mask_from_lengths(patch_lengths.to(input_ids.device), T)
        else:
            starts = self.start_mask(input_ids)
        return self.logits(input_ids, starts)

    def logits(self, ids: torch.Tensor, starts: torch.Tensor, n_patches: int | None = None) -> torch.Tensor:
        """ids (B, T), start mask (B, T+1) -> logits (B, T, vocab) float32. n_patches: the length
        of the patch axis, at least the most patches of any row (the default); a longer axis only
        adds empty patches after every real one, which no logit can see (the global model is
        causal, no byte reads them), so a trainer can round it up to keep compiled shapes few."""
        T = ids.shape[1]
        if T == 0:
            raise ValueError("input_ids is empty: need at least one position")
        count = starts.long().cumsum(1)                                  # (B, T+1)
        patch_ids = count[:, :T] - 1                                     # (B, T)
        dec_ids = count[:, 1:] - 2                                       # (B, T)
        if n_patches is None:
            n_patches = int(count[:, T].max())
        x = self.hash_embeddings.add_to(self.local_encoder.embed_tokens(ids), ids)   # (B, T, Ce)
        h, patches = self.local_encoder(x, patch_ids, n_patches)         # (B, T, Ce), (B, P, k*Ce)
        g = self.global_transformer(patches)                             # (B, P, Cg)
        h = self.local_decoder(h, g, dec_ids)                            # (B, T, Cd)
        return self.lm_head(h).float()

    # ------------------------------------------------------------------ patching
    @torch.no_grad()
    def entropies(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids (B, T) -> next-byte entropies (B, T), nats, float32."""
        if self.entropy_memo is not None:
            return self.entropy_memo.entropies(input_ids)
        return self._entropy_model().entropies(input_ids)

    def remember_entropies(self, max_bytes: int) -> None:
        """From now on, a text that begins like a recent one reuses that text's entropy-model work
        up to where they differ (`EntropyMemo`: exact, at most max_bytes held; 0 turns it off).
        For a model whose weights no longer change (a server's)."""
        model = self._entropy_model()
        self.entropy_memo = EntropyMemo(model, max_bytes) if max_bytes > 0 else None

    @torch.no_grad()
    def next_byte_stats(self, input_ids: torch.Tensor, top_k: int):
        """input_ids (B, T) -> (entropies (B, T) nats, probs (B, T, k), ids (B, T, k)): the entropy
        model's next-byte entropy at every position and its k most likely next tokens."""
        return self._entropy_model().next_byte_stats(input_ids, top_k)

    def _entropy_model(self) -> EntropyModel:
        if self.entropy_model is None:
            raise ValueError("this checkpoint has no entropy model (patch_in_forward is false); "
                             "use a non-entropy patching mode or pass patch_lengths")
        return self.entropy_model

    def start_mask(self, ids, mode=None, threshold=None, max_patch_length=None, patch_size=None,
                   entropies=None, *, patching: PatchingParams | None = None) -> torch.Tensor:
        """(B, T) -> (B, T+1) patch start mask. Options: `patching`, or the same four as keywords;
        unset ones come from the config (PatchingParams.resolve)."""
        p = _patching(patching, mode, threshold, max_patch_length, patch_size).resolve(self.config)
        if p.mode.startswith("entropy") and entropies is None:
            entropies = self.entropies(ids)
        return start_mask(p.mode, ids.shape[1], entropies=entropies, ids=ids, threshold=p.threshold,
                          patch_size=p.patch_size, max_patch_length=p.max_patch_length)

    @torch.no_grad()
    def patch(self, text_or_bytes, mode=None, threshold=None, max_patch_length=None, patch_size=None, *,
              patching: PatchingParams | None = None) -> Patches:
        """Patch one text (BOS + its UTF-8 bytes). Entropies are always computed when the model
        has an entropy model, so they can be shown beside any mode."""
        ids = torch.tensor([self.tokenizer.encode(text_or_bytes)], device=self.device)
        ent = self.entropies(ids) if self.entropy_model is not None else None
        patching = _patching(patching, mode, threshold, max_patch_length, patch_size)
        mask = self.start_mask(ids, entropies=ent, patching=patching)
        out = patches_from_mask(mask[0], None if ent is None else ent[0].cpu())
        out.ids = ids[0].tolist()
        return out

    # ------------------------------------------------------------------ generation
    def generate(self, prompt, *, patching: PatchingParams | None = None, options: DecodeOptions | None = None,
                 mode=None, threshold=None, max_patch_length=None, patch_size=None,
                 cuda_graphs=False, compile=False, speculative=False, kernels=False, **sampling):
        """Generate from a prompt (str or bytes) or a list of prompts (-> list of results).
        Sampling options: see `SamplingParams`. Patching: `patching`, or mode / threshold /
        max_patch_length / patch_size as keywords (unset: the config's). How it runs: `options`
        (DecodeOptions, e.g. DecodeOptions.fastest(device)), or its flags as keywords:
        cuda_graphs / compile (CUDA graphs of the step's parts, torch.compile of them),
        speculative (greedy as one CUDA graph per byte that always runs the global step: the
        fastest path when most bytes end a patch), kernels (each layer's step as five fused
        Triton kernels, CUDA)."""
        prompts = prompt if isinstance(prompt, list) else [prompt]
        results = generate(self, prompts, SamplingParams(**sampling),
                           _patching(patching, mode, threshold, max_patch_length, patch_size),
                           _options(options, cuda_graphs, compile, speculative, kernels))
        return results if isinstance(prompt, list) else results[0]

    def stream(self, prompt, *, patching: PatchingParams | None = None, options: DecodeOptions | None = None,
               mode=None, threshold=None, max_patch_length=None, patch_size=None,
               cuda_graphs=False, compile=False, speculative=False, kernels=False, **sampling):
        """Iterator of ByteEvent (byte, text delta, entropy, starts_patch), then the
        GenerationResult; options as for `generate`."""
        return stream(self, prompt, SamplingParams(**sampling),
                      _patching(patching, mode, threshold, max_patch_length, patch_size),
                      _options(options, cuda_graphs, compile, speculative, kernels))

    # ------------------------------------------------------------------ checkpoints
    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    def save_pretrained(self, directory, max_shard_bytes: int | None = None):
        save_pretrained(self, directory, max_shard_bytes=max_shard_bytes)

    @classmethod
    def from_pretrained(cls, path_or_repo, device=None, dtype=None) -> "BLT":
        return load_pretrained(cls, path_or_repo, device=device, dtype=dtype)

    def num_params(self, exclude_embeddings: bool = False) -> int:
        skip = {id(self.hash_embeddings.weight)} if exclude_embeddings else set()
        return sum(p.numel() for p in self.parameters() if id(p) not in skip)


def _patching(patching: PatchingParams | None, mode, threshold, max_patch_length, patch_size) -> PatchingParams:
    """The patching options of a call: the object, or one built from the loose keywords."""
    loose = PatchingParams(mode, threshold, max_patch_length, patch_size)
    if patching is None:
        return loose
    if loose != PatchingParams():
        raise TypeError("pass either patching=PatchingParams(...) or mode / threshold / max_patch_length / "
                        "patch_size, not both")
    return patching


def _options(options: DecodeOptions | None, cuda_graphs, compile, speculative, kernels) -> DecodeOptions:
    """The decode options of a call: the object, or one built from the loose flags."""
    loose = DecodeOptions(cuda_graphs=cuda_graphs, compile=compile, speculative=speculative, kernels=kernels)
    if options is None:
        return loose
    if loose != DecodeOptions():
        raise TypeError("pass either options=DecodeOptions(...) or cuda_graphs / compile / speculative / kernels, "
                        "not both")
    return options


@torch.no_grad()
def _init_weights(m: nn.Module):
    """Truncated normal (±3 std) with std = fan_in**-0.5, as transformers' BLT initialises."""
    if isinstance(m, nn.Linear):
        std = m.in_features ** -0.5
        nn.init.trunc_normal_(m.weight, std=std, a=-3 * std, b=3 * std)
    elif isinstance(m, (nn.Embedding, HashNgramEmbedding)):
        std = m.weight.shape[1] ** -0.5
        nn.init.trunc_normal_(m.weight, std=std, a=-3 * std, b=3 * std)
