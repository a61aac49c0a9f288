"""Findings of a hostile probe of the app (issue 16), one regression test per way in: prompts
beyond the global model's context, symlink loops among the stored files, server paths in the
answers of a degraded app, and validation errors that echo whatever was sent."""
from __future__ import annotations

import json
import logging
import shutil

import pytest

from webapp_helpers import REPO, SHIPPED_MODEL, assert_error, make_app, sse_events

GENERATE_URLS = ["/api/generate", "/api/generate/stream"]
EVERY_BYTE_A_PATCH = {"mode": "entropy", "threshold": -6.0}     # entropies are >= 0 nats


@pytest.fixture(scope="module")
def app():
    return make_app(DEFAULT_NEW_BYTES=8)


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


# ---------------------------------------------------------------------------------- the global context
# The shipped model: byte-level stacks of 4,096 positions, a global model of 2,048 patches.
OVER_THE_GLOBAL_CONTEXT = {   # id: request body (each fits 4,096 positions but not 2,048 patches)
    "static, one byte a patch": {"prompt": "a" * 4093, "mode": "static", "patch_size": 1, "max_new_bytes": 2},
    "static, the new bytes overflow": {"prompt": "a" * 2040, "mode": "static", "patch_size": 1, "max_new_bytes": 64},
    "entropy, every byte a patch": {"prompt": "a" * 3000, **EVERY_BYTE_A_PATCH, "max_new_bytes": 8},
    "space, every byte a space": {"prompt": " " * 3000, "mode": "space", "max_new_bytes": 8},
}


@pytest.mark.parametrize("url", GENERATE_URLS)
@pytest.mark.parametrize("body", OVER_THE_GLOBAL_CONTEXT.values(), ids=OVER_THE_GLOBAL_CONTEXT.keys())
def test_prompt_over_the_global_context_is_a_422_naming_it(app, client, url, body):
    assert_error(client.post(url, json=body), 422, "validation", "global model's context of 2048 patches")
    assert app.extensions["blt_model"].generation.in_use == 0
    assert client.post("/api/generate", json={"prompt": "after"}).status_code == 200


@pytest.mark.parametrize("url", GENERATE_URLS)
def test_generation_stops_when_the_global_context_fills(client, url):
    """2,040 one-byte patches + BOS's + the next byte's leave room for 7 more patches: the 8th
    new byte completes a patch the global model has no slot for, and generation stops there."""
    response = client.post(url, json={"prompt": "a" * 2040, **EVERY_BYTE_A_PATCH, "max_new_bytes": 40})
    assert response.status_code == 200
    if url.endswith("stream"):
        events = sse_events(response.get_data(as_text=True))
        assert [name for name, _ in events] == ["byte"] * 8 + ["done"]
        done = events[-1][1]
    else:
        done = response.json
        assert len(done["bytes"]) == 8
    assert done["stop_reason"] == "context" and done["stats"]["new_bytes"] == 8
    assert done["stats"]["global_steps"] == 7


@pytest.mark.parametrize("config, max_prompt_bytes", [
    ({}, 4096 - 1 - 200), ({"DEFAULT_NEW_BYTES": 8}, 4096 - 1 - 8), ({"MAX_TEXT_BYTES": 1000}, 1000)],
    ids=["defaults", "fewer new bytes", "text cap below the context"])
def test_models_reports_the_prompt_limit_of_the_loaded_model(config, max_prompt_bytes):
    limits = make_app(**config).test_client().get("/api/models").json["limits"]
    assert limits["context_bytes"] == 4096 and limits["context_patches"] == 2048
    assert limits["max_prompt_bytes"] == max_prompt_bytes
    assert limits["max_prompt_bytes_rule"] == "min(max_text_bytes, context_bytes - 1 - max_new_bytes)"


@pytest.mark.parametrize("extra, status", [(0, 200), (1, 422)], ids=["at the limit", "one byte over"])
def test_max_prompt_bytes_is_the_real_limit(client, extra, status):
    limits = client.get("/api/models").json["limits"]
    response = client.post("/api/generate", json={"prompt": "a" * (limits["max_prompt_bytes"] + extra)})
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    if status == 422:
        assert f"context of {limits['context_bytes']}" in response.json["error"]


# ---------------------------------------------------------------------------------- symlink loops
@pytest.fixture
def loop_client(tmp_path):
    """plot_data/ and exports/ holding one good file each beside symlink loops: `ln -s x x`
    (names a figure and the languages table would read, too) and a -> b -> a."""
    plot_data, exports = tmp_path / "plot_data", tmp_path / "exports"
    plot_data.mkdir()
    exports.mkdir()
    (plot_data / "rows.json").write_text('{"rows": []}')
    (exports / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    for folder, names in ((plot_data, ["loop.json", "languages.json", "threshold_sweep_loop.json", "loop.png"]),
                          (exports, ["loop.html"])):
        for name in names:
            (folder / name).symlink_to(folder / name)
    (plot_data / "a.json").symlink_to(plot_data / "b.json")
    (plot_data / "b.json").symlink_to(plot_data / "a.json")
    return make_app(PLOT_DATA_DIR=str(plot_data), EXPORT_DIR=str(exports)).test_client()


def test_listings_skip_symlink_loops(loop_client):
    files = loop_client.get("/api/visualizations")
    assert files.status_code == 200 and [f["name"] for f in files.json["files"]] == ["rows.json", "ok.png"]
    figures = loop_client.get("/api/figures")
    assert figures.status_code == 200 and figures.json == []


@pytest.mark.parametrize("url", ["/data/loop.json", "/data/a.json", "/data/b.json", "/data/languages.json",
                                 "/images/loop.png", "/visualizations/loop.html", "/api/languages",
                                 "/api/languages.csv", "/api/figures/languages",
                                 "/api/figures/languages?format=html", "/api/figures/threshold_sweep"])
def test_fetching_a_symlink_loop_is_a_json_404(loop_client, url):
    assert_error(loop_client.get(url), 404, "not_found")


def test_a_stored_folder_that_is_itself_a_loop_holds_nothing(tmp_path):
    plot_data, exports = tmp_path / "plot_data", tmp_path / "exports"
    plot_data.symlink_to(plot_data)
    exports.mkdir()
    (exports / "ok.json").write_text("{}")
    client = make_app(PLOT_DATA_DIR=str(plot_data), EXPORT_DIR=str(exports)).test_client()
    assert [f["name"] for f in client.get("/api/visualizations").json["files"]] == ["ok.json"]
    assert client.get("/api/figures").json == []
    assert client.get("/data/ok.json").status_code == 200
    assert_error(client.get("/api/figures/languages"), 404, "not_found")


# ---------------------------------------------------------------------------------- no server paths
def truncate_shard(directory):
    shard = directory / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])


BROKEN = {   # id: (how to break a copy of the shipped model, what the answers still say)
    "directory missing": (shutil.rmtree, "does not exist"),
    "shard truncated": (truncate_shard, "model/model-00002-of-00002.safetensors is corrupt or truncated"),
    "config.json not JSON": (lambda d: (d / "config.json").write_text("{not json"), "config.json is not valid JSON"),
}
DEGRADED_REQUESTS = [("get", "/healthz", None), ("post", "/api/patch", {"text": "hello"}),
                     ("post", "/api/generate", {"prompt": "x"}), ("post", "/api/generate/stream", {"prompt": "x"}),
                     ("get", "/healthz", None), ("get", "/api/models", None)]


def degraded_answers(client) -> list:
    return [getattr(client, method)(url, json=body) for method, url, body in DEGRADED_REQUESTS]


@pytest.mark.parametrize("fault", BROKEN.values(), ids=BROKEN.keys())
def test_a_broken_model_is_reported_without_server_paths(tmp_path, caplog, fault):
    break_it, reason = fault
    model_dir = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model_dir)
    break_it(model_dir)
    with caplog.at_level(logging.ERROR, logger="app.models"):
        answers = degraded_answers(make_app(MODEL=str(model_dir)).test_client())
    for response in answers:
        text = response.get_data(as_text=True)
        assert str(tmp_path) not in text and str(REPO) not in text, text[:500]
    health, models = answers[-2].json, answers[-1].json
    assert health["status"] == "degraded" and health["model"]["name"] == "model"
    assert reason in health["model"]["error"] and models["model"]["error"] == health["model"]["error"]
    assert_error(answers[1], 503, "model_unavailable", reason)
    assert models["limits"]["max_prompt_bytes"] is None and models["limits"]["context_patches"] is None
    assert str(model_dir) in caplog.text                                   # the server log has it all


@pytest.mark.parametrize("name, shown", [
    (str(REPO / "models" / "no-such-model"), "models/no-such-model"),
    ("./models/no-such-model", "./models/no-such-model"),
    ("/srv/blt/no-such-model", "no-such-model")],
    ids=["absolute in the repository", "relative", "absolute elsewhere"])
def test_a_missing_model_is_named_as_configured_without_server_paths(name, shown):
    answers = degraded_answers(make_app(MODEL=name).test_client())
    for response in answers:
        text = response.get_data(as_text=True)
        assert str(REPO) not in text and "/srv" not in text, text[:500]
    health = answers[-2].json["model"]
    assert health["name"] == shown and health["error"].startswith(f"{shown} could not be loaded")
    assert f"checkpoint directory '{shown}' does not exist" in health["error"]


# ---------------------------------------------------------------------------------- what errors echo
def test_an_unknown_field_name_is_echoed_cut_short(client):
    response = client.post("/api/patch", json={"text": "hello", "k" * 200_000: 1})
    assert_error(response, 422, "validation", "unknown field 'kkkkk")
    assert len(response.data) < 500


@pytest.mark.parametrize("url, field", [("/api/generate", "max_new_bytes"), ("/api/generate", "seed"),
                                        ("/api/patch", "patch_size"), ("/api/compare", "max_patch_length"),
                                        ("/api/patch", "threshold"), ("/api/generate", "temperature")])
@pytest.mark.parametrize("sign", ["", "-"], ids=["positive", "negative"])
def test_an_integer_of_5000_digits_is_a_422_naming_the_field(client, url, field, sign):
    text_field = "prompt" if "generate" in url else "text"
    data = f'{{"{text_field}": "hello", "{field}": {sign}{"9" * 5000}}}'
    response = client.post(url, data=data, content_type="application/json")
    error = assert_error(response, 422, "validation", "too large (an integer of 5000 digits)")["error"]
    assert error.startswith(field) and "set_int_max_str_digits" not in error and len(response.data) < 300


@pytest.mark.parametrize("data, mentions", [
    ('{"text": %s}', "text must be a string, found an integer of 5000 digits"),
    ('{"text": "hello", "mode": %s}', "mode must be one of"),
    ('{"text": "hello", "extra": %s}', "unknown field 'extra'"),
    ('[%s]', "request body must be a JSON object, found a list"),
    ('%s', "request body must be a JSON object, found an integer of 5000 digits")],
    ids=["text field", "mode field", "unknown field", "in a list", "the whole body"])
def test_an_integer_of_5000_digits_anywhere_is_a_plain_422(client, data, mentions):
    response = client.post("/api/patch", data=data % ("9" * 5000), content_type="application/json")
    error = assert_error(response, 422, "validation", mentions)["error"]
    assert "set_int_max_str_digits" not in error and len(response.data) < 300


def test_a_long_integer_out_of_range_is_echoed_cut_short(client):
    response = client.post("/api/generate", json={"prompt": "x", "max_new_bytes": int("9" * 999)})
    assert_error(response, 422, "validation", "max_new_bytes must be in [1, 1024], found 9999")
    assert len(json.loads(response.data)["error"]) < 120
