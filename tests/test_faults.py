"""Faults: a model that cannot be loaded (missing, truncated, corrupt, config not matching the
weights) leaves the app running degraded, saying why on /healthz, /api/models and every model
endpoint (503), while stored figures still serve; an out-of-memory error during a request is a
503 and the next request works."""
from __future__ import annotations

import json
import shutil
import time

import pytest
import torch

from blt_core.generation.stepper import IncrementalBLT

from webapp_helpers import SHIPPED_MODEL, assert_error, make_app, sse_events

SHARD_1, SHARD_2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"


def truncate(directory):
    shard = directory / SHARD_2
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])


def corrupt_header(directory):
    shard = directory / SHARD_1
    data = bytearray(shard.read_bytes())
    data[:64] = b"\xff" * 64
    shard.write_bytes(bytes(data))


def edit_config(**decoder):
    def edit(directory):
        config = json.loads((directory / "config.json").read_text())
        config["decoder_config"].update(decoder)
        (directory / "config.json").write_text(json.dumps(config))
    return edit


FAULTS = {   # id: (how to break a copy of the shipped model, what the reason says)
    "directory missing": (lambda d: shutil.rmtree(d), "does not exist"),
    "shard truncated": (truncate, f"{SHARD_2} is corrupt or truncated"),
    "shard header corrupt": (corrupt_header, f"{SHARD_1} is corrupt or truncated"),
    "shard missing": (lambda d: (d / SHARD_2).unlink(), f"{SHARD_2} is missing"),
    "config with more layers than the weights": (edit_config(num_hidden_layers=4), "lacks tensor"),
    "config with other shapes than the weights": (edit_config(intermediate_size=320), "shape"),
    "config.json not JSON": (lambda d: (d / "config.json").write_text("{not json"), "config.json is not valid JSON"),
}
MODEL_REQUESTS = [("/api/entropy", {"text": "hello"}), ("/api/patch", {"text": "hello"}),
                  ("/api/compare", {"text": "hello"}), ("/api/generate", {"prompt": "x", "max_new_bytes": 2}),
                  ("/api/generate/stream", {"prompt": "x", "max_new_bytes": 2})]
STORED = ["/api/figures", "/api/figures/languages", "/api/figures/languages?format=html", "/api/languages",
          "/data/languages.json", "/api/visualizations", "/api/openapi.json", "/"]


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_broken_model_degrades_with_the_reason(tmp_path, fault):
    break_it, reason = fault
    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model_dir)
    break_it(model_dir)
    client = make_app(MODEL=str(model_dir)).test_client()
    assert client.get("/healthz").json["status"] == "not_loaded"          # booted; loads on first use
    for url, body in MODEL_REQUESTS:
        error = assert_error(client.post(url, json=body), 503, "model_unavailable", reason)
        assert error["error"].startswith("the model is unavailable")
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json["status"] == "degraded"
    assert health.json["model"]["state"] == "failed" and reason in health.json["model"]["error"]
    models = client.get("/api/models")
    assert models.status_code == 200 and models.json["model"]["error"] == health.json["model"]["error"]
    assert models.json["defaults"] is None and models.json["limits"]["max_text_bytes"] > 0
    for url in STORED:
        assert client.get(url).status_code == 200, url


def test_background_load_reports_a_broken_model_without_a_request(tmp_path):
    """What a server's worker does at start (gunicorn.conf.py): /healthz turns degraded with the
    reason while no model request has been made."""
    app = make_app(MODEL=str(tmp_path / "no-such-model"))
    client = app.test_client()
    app.extensions["blt_model"].load_in_background()
    for _ in range(100):
        health = client.get("/healthz").json
        if health["status"] not in ("not_loaded", "loading"):
            break
        time.sleep(0.05)
    assert health["status"] == "degraded" and "does not exist" in health["model"]["error"]


# ---------------------------------------------------------------------------------- out of memory
@pytest.fixture(scope="module")
def app():
    return make_app(DEFAULT_NEW_BYTES=8)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def model(app):
    return app.extensions["blt_model"].get().model


def out_of_memory(*args, **kwargs):
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def steps_failing_after(n_steps: int):
    """IncrementalBLT.step that runs out of memory on the call after n_steps (the batch engine's
    steps: every running row fails with it)."""
    real, calls = IncrementalBLT.step, []

    def step(self, next_ids):
        calls.append(1)
        if len(calls) > n_steps:
            out_of_memory()
        return real(self, next_ids)
    return step


def assert_still_serving(app, client):
    holder = app.extensions["blt_model"]
    assert holder.generation.in_use == 0 and holder.analysis.in_use == 0
    assert client.get("/healthz").json["status"] == "ok"
    assert client.post("/api/patch", json={"text": "after the fault"}).status_code == 200
    assert client.post("/api/generate", json={"prompt": "after", "max_new_bytes": 4}).status_code == 200


@pytest.mark.parametrize("url", ["/api/entropy", "/api/patch", "/api/compare"])
def test_out_of_memory_in_analysis_is_503_then_served(app, client, model, monkeypatch, url):
    monkeypatch.setattr(model, "entropies", out_of_memory)
    assert_error(client.post(url, json={"text": "hello"}), 503, "out_of_memory", "ran out of memory")
    monkeypatch.undo()
    assert_still_serving(app, client)


@pytest.mark.parametrize("url", ["/api/generate", "/api/generate/stream"])
def test_out_of_memory_at_prefill_is_503_then_served(app, client, monkeypatch, url):
    monkeypatch.setattr(IncrementalBLT, "prefill", out_of_memory)
    assert_error(client.post(url, json={"prompt": "hello"}), 503, "out_of_memory", "ran out of memory")
    monkeypatch.undo()
    assert_still_serving(app, client)


@pytest.mark.parametrize("error, status, error_type", [
    (ValueError("temperature must be a number in [0, 100]"), 422, "validation"),
    (torch.cuda.OutOfMemoryError("CUDA out of memory"), 503, "out_of_memory")])
def test_generation_refused_before_it_starts_frees_its_slot(app, client, monkeypatch, error, status, error_type):
    """blt_core checks a request when it is submitted, before any byte (e.g. an operator's
    BLT_MAX_TEMPERATURE above blt_core's own limit)."""
    def refuse(*args, **kwargs):
        raise error
    monkeypatch.setattr(app.extensions["blt_model"].engine, "submit", refuse)
    assert_error(client.post("/api/generate", json={"prompt": "hello"}), status, error_type)
    monkeypatch.undo()
    assert_still_serving(app, client)


def test_out_of_memory_mid_generation(app, client, monkeypatch):
    monkeypatch.setattr(IncrementalBLT, "step", steps_failing_after(3))
    assert_error(client.post("/api/generate", json={"prompt": "hello"}), 503, "out_of_memory", "ran out of memory")
    monkeypatch.undo()
    monkeypatch.setattr(IncrementalBLT, "step", steps_failing_after(3))
    events = sse_events(client.post("/api/generate/stream", json={"prompt": "hello"}).get_data(as_text=True))
    assert [name for name, _ in events] == ["byte"] * 3 + ["error"]
    assert events[-1][1] == {"error": "the model ran out of memory", "error_type": "out_of_memory"}
    monkeypatch.undo()
    assert_still_serving(app, client)


def test_while_the_fast_path_warms_up_generations_wait_and_analyses_are_served(monkeypatch):
    """On CUDA the engine's compile and capture run as part of loading; meanwhile /healthz says
    'warming' and which path will serve, generations get 503 warming_up with Retry-After, and
    analyses are served. Simulated on CPU: the warm-up waits for the test's signal."""
    import threading

    from app import models
    from blt_core.generation import DecodeOptions

    release, real_warm_up = threading.Event(), models.ModelHolder._warm_up
    monkeypatch.setattr(models, "decode_options", lambda decode, device: DecodeOptions(compile=True))
    monkeypatch.setattr(models.ModelHolder, "_warm_up", lambda self: (release.wait(30), real_warm_up(self)))
    app = make_app()
    client = app.test_client()
    app.extensions["blt_model"].load_in_background()
    deadline = time.monotonic() + 30
    while client.get("/healthz").json["status"] != "warming":
        assert time.monotonic() < deadline, "the model never reported warming"
        time.sleep(0.05)
    assert client.get("/healthz").json["model"]["serving"]["path"] == "torch.compile"
    response = client.post("/api/generate", json={"prompt": "hello", "max_new_bytes": 4})
    assert_error(response, 503, "warming_up", "warming up")
    assert response.headers["Retry-After"] == "5"
    assert client.post("/api/patch", json={"text": "served while warming"}).status_code == 200
    release.set()
    while client.get("/healthz").json["status"] != "ok":
        assert time.monotonic() < deadline, "the warm-up never finished"
        time.sleep(0.05)
    assert client.get("/healthz").json["model"]["serving"]["warmup_s"] is not None
    assert client.post("/api/generate", json={"prompt": "hello", "max_new_bytes": 4}).status_code == 200
