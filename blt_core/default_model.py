"""Which model to use when none is named: `$BLT_MODEL`, else the shipped default checkpoint
(models/blt-studio), else a seeded random-weight `blt-tiny`, clearly labelled as such.
`random:<preset>` asks for a random-weight model explicitly."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .blt import BLT

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "models" / "blt-studio"
RANDOM_NOTE = "random weights: entropies and patches are not meaningful"


@dataclass
class LoadedModel:
    model: BLT
    name: str                # what was loaded: a directory, a repo id, or 'random:blt-tiny'
    trained: bool            # False for the random-weight stand-in


def load_model(name: str | None = None, device: str | None = None, dtype=None) -> LoadedModel:
    """Load `name` (directory or HF repo id), or the default described in the module docstring."""
    name = name or os.environ.get("BLT_MODEL") or (str(SHIPPED_DIR) if SHIPPED_DIR.is_dir() else None)
    if name is None or name.startswith("random:"):
        preset_name = name.split(":", 1)[1] if name else "blt-tiny"
        torch.manual_seed(0)
        model = BLT(preset_name).to(device or "cpu").eval()
        return LoadedModel(model, f"random:{preset_name}", trained=False)
    return LoadedModel(BLT.from_pretrained(name, device=device, dtype=dtype), name, trained=True)
