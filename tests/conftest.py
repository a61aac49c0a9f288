import pytest
import torch

from blt_core import BLT, preset


@pytest.fixture(scope="session")
def tiny_model():
    """A seeded random blt-tiny; the threshold is its median entropy so patches vary."""
    torch.manual_seed(0)
    model = BLT(preset("blt-tiny")).eval()
    ids = torch.tensor([model.tokenizer.encode("The quick brown fox jumps over the lazy dog, again and again.")])
    model.config.patching_threshold = float(model.entropies(ids).median())
    return model
