"""Model configs: dataclasses with named presets, and the one place that converts to and from
the Hugging Face `BltConfig` layout (`config.json` of `BltForCausalLM`).

A BLT is four transformer stacks (entropy model, local encoder, global latent transformer, local
decoder), each described by a `StackConfig`, plus the glue in `BLTConfig`.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

PATCHING_MODES = ("entropy", "entropy_monotonic", "static", "space", "byte")
BLT_1B_THRESHOLD = 1.335442066192627


@dataclass
class StackConfig:
    """One pre-norm transformer stack (RMSNorm, interleaved RoPE, SwiGLU, no biases)."""
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int | None = None          # None: same as n_heads (no GQA)
    intermediate_size: int | None = None   # None: int(8 * dim / 3), transformers' default
    rope_theta: float = 500000.0
    norm_eps: float = 1e-5
    max_seq_len: int = 4096                # positions the stack was trained for
    sliding_window: int | None = None      # causal window in tokens (entropy model option)

    def __post_init__(self):
        self.n_kv_heads = self.n_kv_heads or self.n_heads
        self.intermediate_size = self.intermediate_size or int(8 * self.dim / 3)
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(f"dim {self.dim}, n_heads {self.n_heads}, n_kv_heads {self.n_kv_heads}: "
                             "dim must divide by n_heads and n_heads by n_kv_heads")
        if (self.dim // self.n_heads) % 2:
            raise ValueError(f"head dim {self.dim // self.n_heads} must be even for RoPE")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


@dataclass
class BLTConfig:
    encoder: StackConfig
    global_model: StackConfig
    decoder: StackConfig
    entropy_model: StackConfig | None       # None: no entropy model in the checkpoint
    vocab_size: int = 260
    cross_attn_k: int = 2                   # patch slots per patch in the cross-attentions
    encoder_cross_attn_all_layers: bool = False
    decoder_cross_attn_all_layers: bool = True
    hash_ngram_sizes: tuple[int, ...] = (3, 4, 5, 6, 7, 8)
    hash_vocab: int = 500002                # rows per hash table
    hash_functions: int = 1
    patching_mode: str = "entropy"
    patching_threshold: float = BLT_1B_THRESHOLD
    patch_size: int = 4                     # static patch size
    max_patch_length: int | None = None
    encoder_pooling: str = "cross_attention"  # or "mean": the pooling ablation (not in transformers)

    def __post_init__(self):
        self.hash_ngram_sizes = tuple(self.hash_ngram_sizes)
        if self.encoder_pooling not in ("cross_attention", "mean"):
            raise ValueError(f"encoder_pooling must be 'cross_attention' or 'mean', found {self.encoder_pooling!r}")
        if self.patching_mode not in PATCHING_MODES:
            raise ValueError(f"patching_mode must be one of {PATCHING_MODES}, found {self.patching_mode!r}")
        if self.decoder.dim != self.encoder.dim:
            raise ValueError(f"decoder dim {self.decoder.dim} must equal encoder dim {self.encoder.dim}: "
                             "the decoder reads the encoder's byte states")
        if self.hash_functions > len(HASH_PRIMES):
            raise ValueError(f"at most {len(HASH_PRIMES)} hash functions, found {self.hash_functions}")

    @property
    def n_hash_tables(self) -> int:
        return self.hash_functions * len(self.hash_ngram_sizes)

    @property
    def byte_context(self) -> int:
        """Positions (bytes, BOS included) that every byte-level stack generation runs can take:
        the local encoder, the local decoder and the entropy model (it runs in every mode)."""
        stacks = [self.encoder, self.decoder] + ([self.entropy_model] if self.entropy_model else [])
        return min(s.max_seq_len for s in stacks)

    @property
    def patch_context(self) -> int:
        """Patches (BOS patch included) the global model can take."""
        return self.global_model.max_seq_len

    def replace(self, **changes) -> "BLTConfig":
        out = copy.deepcopy(self)
        for k, v in changes.items():
            if not hasattr(out, k):
                raise TypeError(f"BLTConfig has no field {k!r}")
            setattr(out, k, v)
        out.__post_init__()
        return out


# Primes of the rolling n-gram hash, one per hash function (Meta's BLT and transformers).
HASH_PRIMES = (1000000007, 5915587277, 1500450271, 3267000013, 5754853343, 4093082899,
               9576890767, 3628273133, 2860486313, 5463458053, 3367900313)


def _entropy_stack(dim, n_layers, n_heads, intermediate, max_seq_len=8192, window=None):
    return StackConfig(dim, n_layers, n_heads, intermediate_size=intermediate, rope_theta=10000.0,
                       max_seq_len=max_seq_len, sliding_window=window)


def _blt(enc, glob, dec, entropy, **kw) -> BLTConfig:
    return BLTConfig(encoder=enc, global_model=glob, decoder=dec, entropy_model=entropy, **kw)


PRESETS = {
    # The public shapes (transformers' BltConfig defaults and the released checkpoints).
    "blt-entropy": lambda: _entropy_stack(768, 14, 12, 2048),
    "blt-1b": lambda: _blt(
        StackConfig(1024, 1, 16, intermediate_size=2816, max_seq_len=24576),
        StackConfig(2048, 25, 16, intermediate_size=5632, max_seq_len=4096),
        StackConfig(1024, 9, 16, intermediate_size=2816, max_seq_len=24576),
        _entropy_stack(768, 14, 12, 2048)),
    # blt-7b: global 4096x32 as in the paper's 8B row; local widths our best reading (uncertain,
    # the released config.json could not be read offline): load the real one with from_pretrained.
    "blt-7b": lambda: _blt(
        StackConfig(1280, 1, 20, intermediate_size=3584, max_seq_len=24576),
        StackConfig(4096, 32, 32, intermediate_size=11008, max_seq_len=4096),
        StackConfig(1280, 6, 20, intermediate_size=3584, max_seq_len=24576),
        _entropy_stack(768, 14, 12, 2048)),
    # Small trainable sizes (CPU tests, the shipped default model, scaling runs).
    "blt-tiny": lambda: _blt(
        StackConfig(64, 1, 4, intermediate_size=160, max_seq_len=2048),
        StackConfig(128, 2, 4, intermediate_size=320, max_seq_len=1024),
        StackConfig(64, 2, 4, intermediate_size=160, max_seq_len=2048),
        _entropy_stack(64, 2, 4, 160, max_seq_len=2048, window=512),
        hash_vocab=4099, hash_ngram_sizes=(3, 4, 5, 6)),
    # The shipped default model (models/blt-studio): small enough for a 2-core CPU.
    "blt-studio": lambda: _blt(
        StackConfig(128, 1, 4, intermediate_size=352, max_seq_len=4096),
        StackConfig(256, 4, 4, intermediate_size=704, max_seq_len=2048),
        StackConfig(128, 2, 4, intermediate_size=352, max_seq_len=4096),
        _entropy_stack(128, 4, 4, 352, max_seq_len=4096, window=512),
        hash_vocab=4099, hash_ngram_sizes=(3, 4, 5, 6)),
    # The shipped default model since the broad corpus (models/blt-studio): a wider, deeper global
    # model, a third decoder layer and twice the hash rows for many scripts, in bf16 within the
    # old model's 28 MB; the entropy model stays blt-studio's (it sets /api/patch's CPU latency).
    "blt-studio-m": lambda: _blt(
        StackConfig(128, 1, 4, intermediate_size=352, max_seq_len=4096),
        StackConfig(320, 5, 5, intermediate_size=864, max_seq_len=2048),
        StackConfig(128, 3, 4, intermediate_size=352, max_seq_len=4096),
        _entropy_stack(128, 4, 4, 352, max_seq_len=4096, window=512),
        hash_vocab=8209, hash_ngram_sizes=(3, 4, 5, 6)),
    "blt-small": lambda: _blt(
        StackConfig(256, 1, 4, intermediate_size=704, max_seq_len=4096),
        StackConfig(512, 6, 8, intermediate_size=1408, max_seq_len=2048),
        StackConfig(256, 3, 4, intermediate_size=704, max_seq_len=4096),
        _entropy_stack(256, 4, 4, 704, max_seq_len=1024, window=512),
        hash_vocab=50002),
    "blt-base": lambda: _blt(
        StackConfig(512, 1, 8, intermediate_size=1408, max_seq_len=8192),
        StackConfig(1024, 12, 16, intermediate_size=2816, max_seq_len=4096),
        StackConfig(512, 4, 8, intermediate_size=1408, max_seq_len=8192),
        _entropy_stack(384, 6, 6, 1024, max_seq_len=2048, window=512),
        hash_vocab=100002),
}


def preset(name: str, **changes):
    """A fresh config of a named preset (`BLTConfig`, or `StackConfig` for 'blt-entropy')."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    cfg = PRESETS[name]()
    return cfg.replace(**changes) if changes else cfg


# ---------------------------------------------------------------- HF config.json conversion
# transformers' patching modes: only "entropy" runs the patcher; our other modes are stored under
# their own name (transformers then treats every byte as a patch) and the monotonic rule as Meta's
# `monotonicity` flag, which transformers keeps but ignores.

def _stack_to_hf(s: StackConfig, **extra) -> dict:
    d = {"hidden_size": s.dim, "num_hidden_layers": s.n_layers, "num_attention_heads": s.n_heads,
         "num_key_value_heads": s.n_kv_heads, "intermediate_size": s.intermediate_size,
         "rms_norm_eps": s.norm_eps, "max_position_embeddings": s.max_seq_len, "hidden_act": "silu",
         "dropout": 0.0, "rope_parameters": {"rope_theta": s.rope_theta, "rope_type": "default"},
         "head_dim": s.head_dim}
    if s.sliding_window is not None:
        d["sliding_window"] = s.sliding_window
    d.update(extra)
    return d


def _stack_from_hf(d: dict, default_theta: float, where: str) -> StackConfig:
    try:
        rope = d.get("rope_parameters") or {}
        theta = rope.get("rope_theta", d.get("rope_theta", default_theta))
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"{where}: only default RoPE is supported, found {rope.get('rope_type')!r}")
        if d.get("hidden_act", "silu") != "silu":
            raise ValueError(f"{where}: only silu (SwiGLU) is supported, found {d['hidden_act']!r}")
        return StackConfig(dim=d["hidden_size"], n_layers=d["num_hidden_layers"],
                           n_heads=d["num_attention_heads"], n_kv_heads=d.get("num_key_value_heads"),
                           intermediate_size=d.get("intermediate_size"), rope_theta=float(theta),
                           norm_eps=d.get("rms_norm_eps", 1e-5),
                           max_seq_len=d.get("max_position_embeddings", 4096),
                           sliding_window=d.get("sliding_window"))
    except KeyError as err:
        raise ValueError(f"config.json: {where} lacks field {err.args[0]!r}") from None


def to_hf_dict(cfg: BLTConfig) -> dict:
    """BLTConfig -> the dict transformers' `BltConfig` writes to config.json."""
    k, g = cfg.cross_attn_k, cfg.global_model.dim
    enc_out = cfg.encoder.dim * k
    hf_mode = "entropy" if cfg.patching_mode == "entropy_monotonic" else cfg.patching_mode
    d = {
        "architectures": ["BltForCausalLM"], "model_type": "blt", "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.global_model.max_seq_len,
        "patch_in_forward": cfg.entropy_model is not None, "patch_size": cfg.patch_size,
        "patching_mode": hf_mode, "patching_threshold": cfg.patching_threshold,
        "patching_batch_size": 1, "max_patch_length": cfg.max_patch_length, "cross_attn_k": k,
        "encoder_hash_byte_group_size": list(cfg.hash_ngram_sizes),
        "encoder_hash_byte_group_vocab": cfg.hash_vocab,
        "encoder_hash_byte_group_nb_functions": cfg.hash_functions,
        "monotonicity": cfg.patching_mode == "entropy_monotonic",
        "tie_word_embeddings": False, "use_cache": False, "dtype": "float32",
        "rope_parameters": {"rope_theta": cfg.global_model.rope_theta, "rope_type": "default"},
        "encoder_config": _stack_to_hf(cfg.encoder, vocab_size=cfg.vocab_size, cross_attn_k=k,
                                       cross_attn_all_layers=cfg.encoder_cross_attn_all_layers,
                                       hidden_size_global=g),
        "decoder_config": _stack_to_hf(cfg.decoder, vocab_size=cfg.vocab_size, cross_attn_k=k,
                                       cross_attn_all_layers=cfg.decoder_cross_attn_all_layers,
                                       hidden_size_global=g),
        "global_config": _stack_to_hf(cfg.global_model,
                                      encoder_cross_output_size=enc_out if enc_out != g else None),
    }
    if cfg.entropy_model is not None:
        d["patcher_config"] = _stack_to_hf(cfg.entropy_model, vocab_size=cfg.vocab_size)
    if cfg.encoder_pooling != "cross_attention":  # ours only: transformers cannot run such a model
        d["blt_studio_encoder_pooling"] = cfg.encoder_pooling
    return d


def from_hf_dict(d: dict) -> BLTConfig:
    """config.json of a `BltForCausalLM` -> BLTConfig. Unknown fields are ignored."""
    if d.get("model_type", "blt") != "blt":
        raise ValueError(f"config.json: model_type is {d.get('model_type')!r}, expected 'blt'")
    theta = float((d.get("rope_parameters") or {}).get("rope_theta", 500000.0))
    subs = {}
    for key in ("encoder_config", "decoder_config", "global_config"):
        if not isinstance(d.get(key), dict):
            raise ValueError(f"config.json lacks the sub-config {key!r}")
        subs[key] = _stack_from_hf(d[key], theta, key)
    entropy = None
    if d.get("patch_in_forward", True):
        if not isinstance(d.get("patcher_config"), dict):
            raise ValueError("config.json: patch_in_forward is true but patcher_config is missing")
        entropy = _stack_from_hf(d["patcher_config"], 10000.0, "patcher_config")
    g = subs["global_config"].dim
    dec_global = d["decoder_config"].get("hidden_size_global", 2048)
    if dec_global != g:
        raise ValueError(f"config.json: decoder_config.hidden_size_global is {dec_global} but "
                         f"global_config.hidden_size is {g}; they must agree")
    mode = d.get("patching_mode") or "entropy"
    if mode == "entropy" and d.get("monotonicity"):
        mode = "entropy_monotonic"
    return BLTConfig(
        encoder=subs["encoder_config"], global_model=subs["global_config"],
        decoder=subs["decoder_config"], entropy_model=entropy,
        vocab_size=d.get("vocab_size", 260), cross_attn_k=d.get("cross_attn_k", 2),
        encoder_cross_attn_all_layers=d["encoder_config"].get("cross_attn_all_layers", False),
        decoder_cross_attn_all_layers=d["decoder_config"].get("cross_attn_all_layers", True),
        hash_ngram_sizes=tuple(d.get("encoder_hash_byte_group_size") or (3, 4, 5, 6, 7, 8)),
        hash_vocab=d.get("encoder_hash_byte_group_vocab", 500002),
        hash_functions=d.get("encoder_hash_byte_group_nb_functions", 1),
        patching_mode=mode,
        patching_threshold=float(d.get("patching_threshold", BLT_1B_THRESHOLD)),
        patch_size=int(d.get("patch_size") or 4), max_patch_length=d.get("max_patch_length"),
        encoder_pooling=d.get("blt_studio_encoder_pooling", "cross_attention"))


def to_dict(cfg) -> dict:
    """Plain dict of a config (for JSON output and logs)."""
    return asdict(cfg)

