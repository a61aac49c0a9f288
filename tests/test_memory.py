"""Memory by design (app/memory.py): the estimate of one worst-case analysis, the analysis slots
sized from it and the memory setting (or set outright), what /api/models reports, and the
entropy model reading a long text in bounded chunks."""
from __future__ import annotations

import pytest
import torch

from app import memory
from blt_core import BLT
from blt_core.entropy import STREAM_CHUNK
from webapp_helpers import SHIPPED_MODEL, assert_error, make_app

MIB = 2 ** 20


@pytest.fixture(scope="module")
def shipped_config():
    return BLT.from_pretrained(SHIPPED_MODEL, device="cpu").config


def test_analysis_peak_of_the_shipped_model(shipped_config):
    """The docstring's formula on the shipped entropy model (D 128, I 352, 4 layers, window 512,
    KV 128, V 260) at 16 kB: a 512-position chunk's MLP, the window caches, 1 kB per text byte."""
    activations = 4 * 512 * (4 * 352 + 3 * 128)
    caches = 4 * 2 * 4 * (512 + 512) * 128
    answer = 1024 * 16384
    assert memory.analysis_peak_bytes(shipped_config, 16384) == activations + caches + answer
    assert round((activations + caches + answer) / MIB, 1) == 23.5


def test_analysis_peak_grows_with_the_text_limit(shipped_config):
    peaks = [memory.analysis_peak_bytes(shipped_config, n) for n in (100, 1000, 16384, 65536)]
    assert peaks == sorted(peaks) and len(set(peaks)) == 4


def limits(**config) -> dict:
    return make_app(**config).test_client().get("/api/models").json["limits"]


@pytest.mark.parametrize("memory_mb", [1, 24, 96, 300])
def test_analysis_slots_follow_the_memory_budget(memory_mb, shipped_config):
    found = limits(ANALYSIS_MEMORY_MB=memory_mb)
    peak = memory.analysis_peak_bytes(shipped_config, 16384)
    assert found["analysis_slots"] == max(1, memory_mb * MIB // peak)
    assert found["analysis_memory_mb"] == memory_mb and found["analysis_peak_mb"] == 23.5
    assert found["analysis_slots_setting"] is None


def test_default_budget_gives_the_shipped_model_four_slots():
    found = limits()
    assert found["analysis_slots"] == 4 and found["analysis_memory_mb"] == 96


def test_a_longer_text_limit_leaves_fewer_slots():
    assert limits(ANALYSIS_MEMORY_MB=300, MAX_TEXT_BYTES=65536)["analysis_slots"] < \
        limits(ANALYSIS_MEMORY_MB=300)["analysis_slots"]


def test_analysis_slots_setting_overrides_the_budget(monkeypatch):
    assert limits(ANALYSIS_SLOTS=3, ANALYSIS_MEMORY_MB=10_000)["analysis_slots"] == 3
    monkeypatch.setenv("BLT_ANALYSIS_SLOTS", "2")
    found = limits()
    assert found["analysis_slots"] == 2 and found["analysis_slots_setting"] == 2


def test_analysis_beyond_the_derived_slots_gets_429():
    app = make_app(ANALYSIS_MEMORY_MB=1, ANALYSIS_WAIT_S=0)
    client = app.test_client()
    assert client.post("/api/patch", json={"text": "load"}).status_code == 200
    slots = app.extensions["blt_model"].analysis
    assert slots.size == 1
    with slots.held():
        assert_error(client.post("/api/patch", json={"text": "busy"}), 429, "overloaded", "all 1 analysis slots")
    assert client.post("/api/patch", json={"text": "free again"}).status_code == 200


def test_unloaded_model_reports_no_derived_slots():
    found = limits(MODEL="/no/such/model")
    assert found["analysis_slots"] is None and found["analysis_peak_mb"] is None
    assert found["analysis_memory_mb"] == 96


def test_long_text_reaches_the_entropy_model_in_chunks(monkeypatch):
    """A text longer than the window and the chunk never puts more than STREAM_CHUNK positions
    through the entropy model's layers at once (one pass over 16 kB held ~100 MB of activations),
    and its entropies are those of one pass."""
    model = BLT.from_pretrained(SHIPPED_MODEL, device="cpu")
    em = model.entropy_model
    ids = torch.randint(4, 260, (1, 3000), generator=torch.Generator().manual_seed(0))
    seen = []
    hook = em.layers[0].register_forward_hook(lambda module, args, out: seen.append(out.shape[1]))
    try:
        chunked = em.entropies(ids)
    finally:
        hook.remove()
    assert max(seen) == STREAM_CHUNK and sum(seen) == 3000
    # float32 over blocks vs one masked call: summation order differs (seen up to 1.3e-5 on random bytes)
    torch.testing.assert_close(chunked, em.entropies(ids, chunk=3000), atol=5e-5, rtol=0)
