"""The peer of every benchmark: transformers' BltForCausalLM and blt_core's BLT on the same weights."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blt_core import BLT, preset  # noqa: E402
from blt_core.checkpoint import load_hf_state  # noqa: E402
from blt_core.config import to_hf_dict  # noqa: E402


def model_pair(preset_name: str, device, dtype, seed: int = 0):
    """(transformers model, blt_core model) with identical random weights (transformers' init),
    or both loaded from a checkpoint directory (e.g. models/blt-studio); blt_core's fused
    projections are copies of transformers' separate ones."""
    from transformers import BltConfig, BltForCausalLM
    if Path(preset_name).is_dir():
        hf = BltForCausalLM.from_pretrained(preset_name, dtype=dtype).to(device).eval()
        return hf, BLT.from_pretrained(preset_name, device=device, dtype=dtype).eval()
    cfg = preset(preset_name)
    torch.manual_seed(seed)
    with torch.device(device):
        hf = BltForCausalLM(BltConfig(**to_hf_dict(cfg))).to(dtype).eval()
    with torch.device("meta"):
        ours = BLT(cfg)
    load_hf_state(ours, hf.state_dict(), device=device)
    return hf, ours.eval()
