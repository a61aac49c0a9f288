import os

import pytest
import torch

# On a machine without CUDA, Triton (when installed) must run its CPU interpreter for the fused
# kernels' tests (tests/test_decode_kernels.py); it reads this when it is first imported, and
# torch.compile's tests may import it first, so it is set for the whole session.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from blt_core import BLT, preset


def _tiny_model():
    """A seeded random blt-tiny; the threshold is its median entropy so patches vary."""
    torch.manual_seed(0)
    model = BLT(preset("blt-tiny")).eval()
    ids = torch.tensor([model.tokenizer.encode("The quick brown fox jumps over the lazy dog, again and again.")])
    model.config.patching_threshold = float(model.entropies(ids).median())
    return model


@pytest.fixture(scope="session")
def tiny_model():
    """The seeded random blt-tiny, shared by the session's tests (which leave it as they found it)."""
    return _tiny_model()


@pytest.fixture
def own_tiny_model():
    """The same model built for one test, which may change its config or weights."""
    return _tiny_model()
