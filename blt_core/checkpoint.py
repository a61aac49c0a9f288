"""Checkpoints in the Hugging Face transformers BLT format, in and out.

A checkpoint is a directory with `config.json` (transformers' `BltConfig`) and the weights as
`model.safetensors`, or as shards `model-0000i-of-0000n.safetensors` listed in
`model.safetensors.index.json`. The entropy model lives in the same checkpoint under
`model.patcher.*`, as in transformers. Loading is strict: a missing, unexpected or mis-shaped
tensor, or an unreadable file, is an error that names it.

This module knows nothing of the model class: `load_pretrained` takes it as an argument (BLT's
`from_pretrained` passes itself), so blt.py imports this module and never the other way round.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import _stack_from_hf, _stack_to_hf, from_hf_dict, to_hf_dict
from .entropy import EntropyModel
from .layers import FusedLinear, Stack

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"

# Our module prefixes <-> transformers' BltForCausalLM names; inner names are identical, except
# that our fused projections (FusedLinear: qkv_proj, kv_proj, gate_up_proj) hold several of
# transformers' weights stacked by rows.
PREFIXES = (
    ("entropy_model.", "model.patcher."),
    ("local_encoder.", "model.local_encoder."),
    ("global_transformer.", "model.global_transformer."),
    ("local_decoder.", "model.local_decoder."),
    ("hash_embeddings.weight", "model.encoder_hash_tok_embedding.weight"),
    ("lm_head.", "lm_head."),
)


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded, with the file or tensor at fault in the message."""


# A standalone byte LM (entropy model, byte-level baseline) uses transformers' BltPatcher names;
# inside a whole BLT checkpoint the same names sit under PATCHER.
BYTE_LM_PREFIXES = (("", ""),)
PATCHER = "model.patcher."


def to_hf_name(name: str, prefixes=PREFIXES) -> str:
    for ours, theirs in prefixes:
        if name.startswith(ours):
            return theirs + name[len(ours):]
    raise KeyError(f"no transformers name for parameter {name!r}")


def hf_layout(model, prefixes=PREFIXES) -> dict[str, tuple[str, int, int, tuple]]:
    """transformers tensor name -> (our parameter name, first row, end row, expected shape)."""
    fused = {name: mod for name, mod in model.named_modules() if isinstance(mod, FusedLinear)}
    layout = {}
    for name, p in model.state_dict().items():
        module = name.rsplit(".", 1)[0]
        if module in fused:
            parent, row = module.rsplit(".", 1)[0], 0
            for part, width in fused[module].parts.items():
                layout[to_hf_name(f"{parent}.{part}.weight", prefixes)] = (name, row, row + width, (width, p.shape[1]))
                row += width
        else:
            layout[to_hf_name(name, prefixes)] = (name, 0, p.shape[0] if p.dim() else 0, tuple(p.shape))
    return layout


def to_hf_state(model, prefixes=PREFIXES) -> dict[str, torch.Tensor]:
    """Our parameters as transformers' tensors (fused projections split again), on the CPU."""
    state = model.state_dict()
    return {hf: (state[ours][r0:r1] if state[ours].dim() else state[ours]).detach().cpu().contiguous().clone()
            for hf, (ours, r0, r1, _) in hf_layout(model, prefixes).items()}


def load_hf_state(model, tensors: dict, device=None, dtype=None, where: str = "checkpoint", prefixes=PREFIXES):
    """Strictly load transformers-named tensors into `model` (built on any device, e.g. meta):
    every missing, unexpected or mis-shaped tensor is named. dtype None keeps the tensors', except
    that half-precision weights load as float32 on the CPU (where bf16 matrix products are slow
    and round every intermediate: a checkpoint shipped in bf16 for size runs in float32)."""
    layout = hf_layout(model, prefixes)
    parts, unexpected, wrong = {}, [], []
    for hf_name, tensor in tensors.items():
        if hf_name not in layout:
            unexpected.append(hf_name)
        elif tuple(tensor.shape) != layout[hf_name][3]:
            wrong.append(f"{hf_name} (expected shape {layout[hf_name][3]}, found {tuple(tensor.shape)})")
        else:
            ours, r0, _, _ = layout[hf_name]
            parts.setdefault(ours, []).append((r0, tensor))
    problems = [f"lacks tensor {n} (expected shape {layout[n][3]})" for n in layout
                if n not in tensors] + [f"has mis-shaped tensor {w}" for w in wrong] + \
               [f"has unexpected tensor {u}" for u in unexpected]
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise CheckpointError(f"{where}: {shown}")
    device = torch.device(device or "cpu")
    if dtype is None:
        dtype = next(t.dtype for t in tensors.values() if t.is_floating_point())
        if device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
            dtype = torch.float32
    state = {}
    for ours, pieces in parts.items():
        pieces = [t.to(device=device, dtype=dtype) for _, t in sorted(pieces, key=lambda p: p[0])]
        state[ours] = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
    model.load_state_dict(state, strict=True, assign=True)
    for module in model.modules():
        if isinstance(module, Stack):
            module.init_rope(device)                    # unsaved tables: still on meta if built there
    return model


# ---------------------------------------------------------------------------------- saving
def save_pretrained(model, directory, max_shard_bytes: int | None = None) -> None:
    """Write config.json and the weights; shards of at most max_shard_bytes each when the
    weights are larger (None: always one file)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = to_hf_state(model)
    config = to_hf_dict(model.config)
    config["dtype"] = str(next(iter(tensors.values())).dtype).removeprefix("torch.")
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for stale in [directory / SINGLE_NAME, directory / INDEX_NAME, *directory.glob("model-*-of-*.safetensors")]:
        stale.unlink(missing_ok=True)
    shards = _split(tensors, max_shard_bytes)
    if len(shards) == 1:
        save_file(shards[0], directory / SINGLE_NAME, metadata={"format": "pt"})
        return
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, directory / name, metadata={"format": "pt"})
        weight_map.update({k: name for k in shard})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (directory / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")


def save_byte_lm(model, directory) -> None:
    """An entropy model or byte-level baseline as transformers' BltPatcher checkpoint."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {"architectures": ["BltPatcher"], "model_type": "blt_patcher", "tie_word_embeddings": False,
              **_stack_to_hf(model.cfg, vocab_size=model.lm_head.weight.shape[0])}
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file(to_hf_state(model, BYTE_LM_PREFIXES), directory / SINGLE_NAME, metadata={"format": "pt"})


def load_byte_lm(path, device=None, dtype=None):
    """A BltPatcher-format checkpoint (see save_byte_lm) -> EntropyModel; given a whole BLT
    checkpoint, its entropy model (its `model.patcher.*` tensors; so experiments can reuse a
    shipped model's patcher)."""
    directory = resolve(path)
    try:
        d = json.loads((directory / "config.json").read_text())
        if d.get("model_type") == "blt":
            blt_cfg = from_hf_dict(d)
            if blt_cfg.entropy_model is None:
                raise ValueError("this BLT checkpoint has no entropy model")
            cfg, vocab, prefix = blt_cfg.entropy_model, blt_cfg.vocab_size, PATCHER
        else:
            cfg, vocab, prefix = _stack_from_hf(d, 10000.0, "byte LM config"), d.get("vocab_size", 260), ""
    except (OSError, json.JSONDecodeError, ValueError) as err:
        raise CheckpointError(f"{directory / 'config.json'}: {err}") from None
    with torch.device("meta"):
        model = EntropyModel(cfg, vocab)
    tensors = {name: t for name, t in read_tensors(weight_files(directory)).items() if name.startswith(prefix)}
    return load_hf_state(model, tensors, device, dtype, f"checkpoint {directory}", (("", prefix),)).eval()


def _split(tensors: dict, max_bytes: int | None) -> list[dict]:
    shards, size = [{}], 0
    for name, t in tensors.items():
        n = t.numel() * t.element_size()
        if max_bytes and shards[-1] and size + n > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += n
    return shards


# ---------------------------------------------------------------------------------- loading
def resolve(path_or_repo) -> Path:
    """A local directory as is; otherwise a Hugging Face repo id, fetched with huggingface_hub
    (from its cache when offline). Fails at once, naming the repo, when it cannot be had."""
    path = Path(os.path.expanduser(str(path_or_repo)))
    if path.is_dir():
        return path
    text = str(path_or_repo)
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise CheckpointError(f"checkpoint directory {text!r} does not exist")
    from huggingface_hub import snapshot_download
    patterns = ["config.json", "*.safetensors", INDEX_NAME]
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        return Path(snapshot_download(text, allow_patterns=patterns, local_files_only=offline))
    except Exception as err:  # offline, no network, gated repo, unknown repo: one clear message
        why = "HF_HUB_OFFLINE is set and it is not in the local cache" if offline else f"{type(err).__name__}: {err}"
        raise CheckpointError(
            f"cannot download Hugging Face repo {text!r} ({why.splitlines()[0]}). Download it where a "
            f"network is available (e.g. `huggingface-cli download {text} --local-dir DIR`) and pass "
            f"that local directory instead.") from None


def read_config(directory: Path):
    file = directory / "config.json"
    if not file.is_file():
        raise CheckpointError(f"{file} is missing: a checkpoint needs config.json")
    try:
        return from_hf_dict(json.loads(file.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{file} is not valid JSON: {err}") from None
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{file}: {err}") from None


def weight_files(directory: Path) -> list[Path]:
    index = directory / INDEX_NAME
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as err:
            raise CheckpointError(f"{index} is not a valid safetensors index: {err!r}") from None
        return [directory / n for n in names]
    if (directory / SINGLE_NAME).is_file():
        return [directory / SINGLE_NAME]
    raise CheckpointError(f"{directory} holds no {SINGLE_NAME} and no {INDEX_NAME}")


def read_tensors(files: list[Path]) -> dict[str, torch.Tensor]:
    """All tensors of the files, by transformers name; any unreadable file is named."""
    out = {}
    for file in files:
        if not file.is_file():
            raise CheckpointError(f"weight file {file} is missing")
        try:
            with safe_open(str(file), framework="pt") as f:
                for name in f.keys():
                    out[name] = f.get_tensor(name)
        except Exception as err:
            raise CheckpointError(f"weight file {file} is corrupt or truncated: {err}") from None
    return out


def load_pretrained(cls, path_or_repo, device=None, dtype=None):
    directory = resolve(path_or_repo)
    config = read_config(directory)
    tensors = read_tensors(weight_files(directory))
    with torch.device("meta"):
        model = cls(config)
    return load_hf_state(model, tensors, device=device, dtype=dtype, where=f"checkpoint {directory}").eval()
