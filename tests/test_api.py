"""The JSON API through Flask's test client, on the shipped model: every endpoint with good and
bad input, and the numbers checked against blt_core called directly."""
from __future__ import annotations

import io
import json
import threading
import time

import pandas as pd
import pytest
import torch

from blt_core.generation import DecodeOptions

from webapp_helpers import REPO, assert_error, make_app, sse_events

ENGLISH = "Byte Latent Transformers read bytes, not tokens. Patches grow where text is predictable."
MIXED = "añ 中文 😀\tok\n"


@pytest.fixture(scope="module")
def app():
    return make_app()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def model(app):
    return app.extensions["blt_model"].get().model


def post(client, url, body):
    return client.post(url, json=body)


# ---------------------------------------------------------------------------------- service
def test_healthz_does_not_load_the_model():
    app = make_app()
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "not_loaded" and response.json["model"]["loaded"] is False
    assert app.extensions["blt_model"].loaded is None


def test_models_reports_model_defaults_and_configured_limits():
    client = make_app(MAX_TEXT_BYTES=1000, MAX_NEW_BYTES=50).test_client()
    body = client.get("/api/models").json
    model = body["model"]
    assert model["name"] == "models/blt-studio" and model["trained"] is True and model["loaded"] is True
    assert model["device"] == "cpu" and model["dtype"] == "float32" and model["params"] > 1_000_000
    assert model["error"] is None and model["default_threshold"] == body["defaults"]["threshold"]
    assert body["modes"] == ["entropy", "entropy_monotonic", "static", "space"]
    assert body["limits"]["max_text_bytes"] == 1000 and body["limits"]["max_new_bytes"] == 50
    assert body["limits"]["max_stop_bytes"] == 64 and body["limits"]["max_stop_strings"] == 4   # what pages check
    assert body["limits"]["detail_bytes"] == [1, 64] and body["limits"]["detail_top_k"] == [1, 20]
    assert client.get("/healthz").json["status"] == "ok"


def test_security_headers_on_every_response(client):
    for response in (client.get("/healthz"), client.get("/api/nope"), post(client, "/api/patch", {})):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"


def test_openapi_documents_every_endpoint_with_examples(app, client):
    doc = client.get("/api/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    api_rules = {r.rule.replace("<name>", "{name}").replace("<path:name>", "{name}")
                 for r in app.url_map.iter_rules() if r.endpoint.split(".")[0] in ("api", "files")}
    assert api_rules == set(doc["paths"])
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert "example" in next(iter(op["responses"]["200"]["content"].values())), (method, path)
            if method == "post":                                # examples are valid requests
                ((media, content),) = op["requestBody"]["content"].items()
                query = {p["name"]: p["example"] for p in op.get("parameters", []) if "example" in p}
                if media == "application/json":
                    response = client.post(path, json=content["example"], query_string=query)
                else:
                    response = client.post(path, data=content["example"].encode(), content_type=media,
                                           query_string=query)
                assert response.status_code == 200, path
                if path in ("/api/tokenize", "/api/corpus"):           # examples given in full
                    assert response.json == op["responses"]["200"]["content"]["application/json"]["example"], path


# ---------------------------------------------------------------------------------- entropy and patches
def test_entropy_matches_blt_core(client, model):
    body = post(client, "/api/entropy", {"text": ENGLISH}).json
    ids = torch.tensor([model.tokenizer.encode(ENGLISH)])
    assert body["entropies"] == pytest.approx(model.entropies(ids)[0, 1:].tolist(), abs=1e-6)
    assert body["bytes"] == list(ENGLISH.encode()) and body["model"] == "models/blt-studio"


def test_entropy_byte_table_of_multibyte_text(client):
    body = post(client, "/api/entropy", {"text": MIXED}).json
    data = MIXED.encode()
    assert body["bytes"] == list(data) and len(body["entropies"]) == len(data)
    assert body["chars"][:3] == ["a", "ñ", "ñ"] and body["chars"][-1] == "\\n" and body["chars"][-4] == "\\t"
    assert body["chars"].count("😀") == 4 and body["chars"].count("中") == 3
    assert [MIXED[k] for k in body["char_index"]] == [ch for ch in MIXED for _ in ch.encode()]


@pytest.mark.parametrize("options", [
    {}, {"mode": "entropy", "threshold": 1.0}, {"mode": "entropy", "threshold": 2.0, "max_patch_length": 3},
    {"mode": "entropy_monotonic", "threshold": 0.5}, {"mode": "static", "patch_size": 5},
    {"mode": "space"}, {"mode": "space", "max_patch_length": 4}])
def test_patch_matches_blt_core(client, model, options):
    body = post(client, "/api/patch", {"text": ENGLISH, **options}).json
    ref = model.patch(ENGLISH, **options)
    assert body["patch_lengths"] == ref.lengths[1:]                    # BOS's own patch left out
    assert body["patch_starts"] == [s - 1 for s in ref.starts[1:]]
    assert body["entropies"] == pytest.approx(ref.entropies[1:], abs=1e-6)
    assert body["next_starts_patch"] == ref.next_starts_patch
    n = len(ENGLISH.encode())
    assert sum(body["patch_lengths"]) == n and len(body["patch_ids"]) == n
    assert "".join(p["text"] for p in body["patches"]) == ENGLISH
    stats = body["stats"]
    assert stats["bytes"] == n and stats["patches"] == len(ref.lengths) - 1
    assert stats["global_steps_saved"] == n - stats["patches"]
    assert stats["mean_patch_bytes"] == pytest.approx(n / stats["patches"])
    assert sum(stats["histogram"].values()) == stats["patches"]
    cfg = model.config
    assert body["mode"] == options.get("mode", cfg.patching_mode)
    assert body["threshold"] == options.get("threshold", cfg.patching_threshold)


def test_patch_rule_in_byte_terms(client):
    """The documented byte-level rule: byte i >= 1 starts a patch iff entropies[i-1] > threshold."""
    body = post(client, "/api/patch", {"text": ENGLISH, "mode": "entropy", "threshold": 1.5}).json
    expected = [0] + [i for i in range(1, len(body["bytes"])) if body["entropies"][i - 1] > 1.5]
    assert body["patch_starts"] == expected


def test_compare_equals_patch_for_every_mode(client):
    options = {"threshold": 1.2, "max_patch_length": 6, "patch_size": 3}
    body = post(client, "/api/compare", {"text": ENGLISH, **options}).json
    assert list(body["modes"]) == ["entropy", "entropy_monotonic", "static", "space"]
    for mode, result in body["modes"].items():
        single = post(client, "/api/patch", {"text": ENGLISH, "mode": mode, **options}).json
        assert result["patch_lengths"] == single["patch_lengths"]
        assert result["patch_starts"] == single["patch_starts"]
        assert result["stats"] == single["stats"]


@pytest.mark.parametrize("start, length, top_k", [(0, None, None), (3, 5, 3), (10, 64, 20)])
def test_entropy_detail_is_the_entropy_models_prediction(client, model, start, length, top_k):
    """Each byte's entropy equals /api/entropy's, and its next bytes are the top-k of the entropy
    model's softmax after that byte (blt_core called directly), most likely first."""
    body = {"text": MIXED, "start": start, **({"length": length} if length else {}), **({"top_k": top_k} if top_k else {})}
    detail = post(client, "/api/entropy/detail", body).json
    data, k = MIXED.encode(), top_k or 5
    stop = min(len(data), start + (length or 1))
    assert (detail["start"], detail["stop"], detail["top_k"]) == (start, stop, k)
    full = post(client, "/api/entropy", {"text": MIXED}).json
    ids = torch.tensor([model.tokenizer.encode(MIXED)])
    with torch.no_grad():
        probs = torch.softmax(model.entropy_model(ids)[0].float(), dim=-1)       # (1 + bytes, 260)
    assert [p["i"] for p in detail["positions"]] == list(range(start, stop))
    for row in detail["positions"]:
        i = row["i"]
        assert (row["byte"], row["char"]) == (full["bytes"][i], full["chars"][i])
        assert row["entropy"] == full["entropies"][i]                   # the same pass over the text
        top = probs[1 + i].topk(k)
        assert [n.get("byte", -1) + 4 if "byte" in n else None for n in row["next"]] == \
            [t if t >= 4 else None for t in top.indices.tolist()]
        assert [n["p"] for n in row["next"]] == pytest.approx(top.values.tolist(), abs=1e-6)


@pytest.mark.parametrize("body, mentions", [
    ({"text": "abc"}, "start is required"),
    ({"text": "abc", "start": 3}, "start must be less than the text's 3 bytes"),
    ({"text": "abc", "start": -1}, "start must be in"),
    ({"text": "abc", "start": 0, "length": 65}, "length must be in [1, 64]"),
    ({"text": "abc", "start": 0, "top_k": 0}, "top_k must be in [1, 20]"),
    ({"text": "abc", "start": 0, "top_k": 2.5}, "top_k must be an integer"),
])
def test_entropy_detail_rejects_bad_fields(client, body, mentions):
    assert_error(post(client, "/api/entropy/detail", body), 422, "validation", mentions)


@pytest.mark.parametrize("url, fields", [("/api/entropy", ["entropies"]), ("/api/entropy", ["chars", "bytes"]),
                                         ("/api/patch", ["patch_starts", "patch_lengths", "stats"])])
def test_fields_sends_only_the_fields_asked_for(client, url, fields):
    full = post(client, url, {"text": MIXED}).json
    some = post(client, url, {"text": MIXED, "fields": fields})
    assert list(some.json) == [name for name in full if name in fields]      # the response's own order
    assert some.json == {name: full[name] for name in fields}
    assert len(some.get_data()) < len(json.dumps(full))


def test_fields_name_the_response_exactly(client):
    """The validation layer's field lists are the responses' keys, so every field can be asked for."""
    from app.validation import ENTROPY_FIELDS, PATCH_FIELDS
    assert tuple(post(client, "/api/entropy", {"text": "ab"}).json) == ENTROPY_FIELDS
    assert tuple(post(client, "/api/patch", {"text": "ab"}).json) == PATCH_FIELDS


@pytest.mark.parametrize("fields, mentions", [([], "found an empty list"), ("entropies", "must be a non-empty list"),
                                              (["entropies", "tokens"], "fields[1] must be one of")])
def test_fields_rejects_unknown_names(client, fields, mentions):
    assert_error(post(client, "/api/patch", {"text": "ab", "fields": fields}), 422, "validation", mentions)


# ---------------------------------------------------------------------------------- generation
GREEDY = {"prompt": "The patch", "max_new_bytes": 24}


def test_generate_matches_blt_core(client, model):
    body = post(client, "/api/generate", GREEDY).json
    ref = model.generate("The patch", max_new_bytes=24)
    assert body["text"] == ref.text and body["bytes"] == list(ref.bytes)
    assert body["entropies"] == pytest.approx(ref.entropies, abs=1e-5)
    assert [i for i, s in enumerate(body["starts_patch"]) if s] == ref.patch_starts
    stats = body["stats"]
    assert stats["new_bytes"] == 24 and stats["global_steps"] == ref.global_steps
    assert stats["global_step_share"] == pytest.approx(ref.global_steps / 24)
    assert stats["seconds"] > 0 and stats["bytes_per_s"] > 0 and body["stop_reason"] == "max_new_bytes"


def test_generate_can_ignore_eos(client, model):
    body = post(client, "/api/generate", {**GREEDY, "max_new_bytes": 40, "stop_at_eos": False}).json
    ref = model.generate("The patch", max_new_bytes=40, stop_at_eos=False)
    assert body["bytes"] == list(ref.bytes) and len(body["bytes"]) == 40 and body["stop_reason"] == "max_new_bytes"


def test_generate_sampling_and_stop_strings(client, model):
    request = {"prompt": "def f(", "max_new_bytes": 40, "temperature": 0.8, "top_k": 40, "top_p": 0.9,
               "repetition_penalty": 1.1, "seed": 7}
    first, second = (post(client, "/api/generate", request).json for _ in range(2))
    assert first["text"] == second["text"]                            # per-request seed
    ref = model.generate("def f(", max_new_bytes=40, temperature=0.8, top_k=40, top_p=0.9,
                         repetition_penalty=1.1, seed=7)
    assert first["text"] == ref.text
    stop = first["text"][5:7]
    stopped = post(client, "/api/generate", {**request, "stop": [stop]}).json
    assert stopped["stop_reason"] == "stop" and stop not in stopped["text"]
    assert first["text"].startswith(stopped["text"])


def test_stream_sends_bytes_then_done(client, model):
    response = post(client, "/api/generate/stream", GREEDY)
    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    assert response.headers["X-Accel-Buffering"] == "no"
    events = sse_events(response.get_data(as_text=True))
    names = [name for name, _ in events]
    assert names == ["byte"] * 24 + ["done"]
    ref = model.generate("The patch", max_new_bytes=24)
    assert "".join(data["text"] for _, data in events[:-1]) == ref.text
    assert [data["byte"] for _, data in events[:-1]] == list(ref.bytes)
    assert [data["i"] for _, data in events[:-1]] == list(range(24))
    done = events[-1][1]
    assert done["stop_reason"] == "max_new_bytes" and done["stats"]["global_steps"] == ref.global_steps


def test_stream_validation_errors_are_plain_json(client):
    assert_error(post(client, "/api/generate/stream", {"prompt": "x", "temperature": -1}), 422, "validation",
                 "temperature")


def test_generations_beyond_the_slots_get_429_then_a_disconnect_frees_one(app, client):
    slots = app.extensions["blt_model"].generation
    assert slots.size == 4                                             # CPU's default: batched together
    held = [client.post("/api/generate/stream", json={"prompt": "a", "max_new_bytes": 500}, buffered=False)
            for _ in range(slots.size)]
    assert all(h.status_code == 200 for h in held) and slots.in_use == slots.size
    for h in held:
        next(h.iter_encoded())                                         # each client reads one event ...
    assert_error(post(client, "/api/generate", GREEDY), 429, "overloaded", "overloaded")
    assert post(client, "/api/generate", GREEDY).headers["Retry-After"] == "1"
    assert client.get("/healthz").json["model"]["generations_running"] == slots.size
    assert post(client, "/api/patch", {"text": "still served"}).status_code == 200
    held[0].close()                                                    # ... and one goes away
    assert slots.in_use == slots.size - 1
    assert post(client, "/api/generate", GREEDY).status_code == 200
    for h in held[1:]:
        h.close()
    assert slots.in_use == 0


def test_the_app_reports_how_it_generates(client):
    assert client.post("/api/generate", json={"prompt": "a", "max_new_bytes": 2}).status_code == 200
    deadline = time.monotonic() + 1                  # rows closed by the test above leave at the next step
    while (serving := client.get("/healthz").json["model"]["serving"])["running"] and time.monotonic() < deadline:
        time.sleep(0.01)
    engine = serving.pop("engine")              # what the engine did so far: all host-decided on CPU
    assert serving == {"path": "eager", "batching": "continuous", "slots": 4, "running": 0, "warmup_s": None}
    assert engine["steps"] >= 2 and engine["bytes"] >= 2 and engine["tick_s"] > 0 and engine["speculative_steps"] == 0


def test_the_app_serves_the_fastest_exact_path_without_compile_tuning():
    """On CUDA: CUDA graphs of compiled parts with the fused kernels and the speculative global
    step, compiled without coordinate-descent tuning (half the warm-up); on CPU and with
    BLT_DECODE=eager the eager reference."""
    from app.models import decode_options, describe_options
    cuda = decode_options("fastest", "cuda")
    assert cuda.cuda_graphs and cuda.compile and cuda.speculative and not cuda.compile_tuning
    assert describe_options(cuda).startswith("cuda graphs + torch.compile")
    assert ("decided on the device" in describe_options(cuda)) == cuda.device_decides   # where the GPU can
    assert decode_options("fastest", "cpu") == decode_options("eager", "cuda") == DecodeOptions()
    with pytest.raises(ValueError, match="BLT_DECODE"):
        decode_options("fast", "cuda")


def test_generation_longer_than_the_model_context_is_refused(client):
    body = {"prompt": "a" * 4000, "max_new_bytes": 200}
    assert_error(post(client, "/api/generate", body), 422, "validation", "context")


# ---------------------------------------------------------------------------------- torch thread
@pytest.mark.parametrize("url, body", [
    ("/api/entropy", {}), ("/api/patch", {}), ("/api/compare", {}), ("/api/tokenize", {}),
    ("/api/entropy/detail", {"start": 2, "length": 3}), ("/api/corpus", None), ("/api/corpus/stream", None),
    ("/api/generate", {"max_new_bytes": 8}), ("/api/generate/stream", {"max_new_bytes": 8})])
def test_on_cpu_every_model_call_runs_on_the_one_torch_thread(client, model, url, body):
    """A second thread that runs a parallel region slows every one of them (app/models.py)."""
    text = f"{url} runs its model on the torch thread, nowhere else."    # new to the entropy memo
    threads = set()
    hooks = [module.register_forward_pre_hook(lambda *_: threads.add(threading.current_thread().name))
             for module in model.modules()]
    try:
        if body is None:
            response = client.post(url, data=text.encode(), content_type="text/plain")
        else:
            response = post(client, url, {"prompt" if "generate" in url else "text": text, **body})
        assert response.status_code == 200
        response.get_data()                                   # a stream runs as it is read
    finally:
        for hook in hooks:
            hook.remove()
    assert threads == {"torch"}


# ---------------------------------------------------------------------------------- bad input
TEXT_BODY = {"text": "fine"}


@pytest.mark.parametrize("body, status, error_type, mentions", [
    ({}, 422, "validation", "text is required"),
    ({"text": ""}, 422, "validation", "text must not be empty"),
    ({"text": 5}, 422, "validation", "text must be a string"),
    ({"text": "a\x00b"}, 422, "validation", "U+0000"),
    ({"text": "a\x1bb"}, 422, "validation", "U+001B"),
    ({"text": "x" * 20000}, 413, "payload_too_large", "max_text_bytes"),
    ({"text": "ok", "extra": 1}, 422, "validation", "unknown field 'extra'"),
    ({"text": "ok", "mode": "tokens"}, 422, "validation", "mode must be one of"),
    ({"text": "ok", "threshold": "1.5"}, 422, "validation", "threshold must be a number"),
    ({"text": "ok", "threshold": True}, 422, "validation", "threshold must be a number"),
    ({"text": "ok", "threshold": 99}, 422, "validation", "threshold must be in"),
    ({"text": "ok", "max_patch_length": 0}, 422, "validation", "max_patch_length must be in"),
    ({"text": "ok", "max_patch_length": 2.0}, 422, "validation", "max_patch_length must be an integer"),
    ({"text": "ok", "patch_size": -3}, 422, "validation", "patch_size"),
])
def test_patch_rejects_bad_fields(client, body, status, error_type, mentions):
    assert_error(post(client, "/api/patch", body), status, error_type, mentions)


@pytest.mark.parametrize("body, mentions", [
    ({"prompt": "x", "max_new_bytes": 10**9}, "max_new_bytes must be in"),
    ({"prompt": "x", "max_new_bytes": -1}, "max_new_bytes must be in"),
    ({"prompt": "x", "temperature": -0.5}, "temperature must be in"),
    ({"prompt": "x", "top_p": 0}, "top_p must be in (0.0, 1.0]"),
    ({"prompt": "x", "top_p": 1.5}, "top_p"),
    ({"prompt": "x", "top_k": 1.5}, "top_k must be an integer"),
    ({"prompt": "x", "seed": "7"}, "seed must be an integer"),
    ({"prompt": "x", "repetition_penalty": 0}, "repetition_penalty"),
    ({"prompt": "x", "stop": "\n"}, "stop must be a list"),
    ({"prompt": "x", "stop": [""]}, "stop[0] must not be empty"),
    ({"prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, "at most 4"),
    ({"prompt": 3}, "prompt must be a string"),
    ({"prompt": "x", "stop_at_eos": "no"}, "stop_at_eos must be true or false"),
])
def test_generate_rejects_bad_fields(client, body, mentions):
    assert_error(post(client, "/api/generate", body), 422, "validation", mentions)


@pytest.mark.parametrize("data, content_type, status, error_type, mentions", [
    ("not json", "application/json", 400, "invalid_json", "not valid JSON"),
    ('{"text": "a", "threshold": NaN}', "application/json", 400, "invalid_json", "NaN"),
    ('{"text": "a", "threshold": Infinity}', "application/json", 400, "invalid_json", "Infinity"),
    (b'{"text": "\xff\xfe"}', "application/json", 400, "invalid_json", "UTF-8"),
    ("[" * 50000 + "]" * 50000, "application/json", 400, "invalid_json", "nested"),
    ('{"text": "a", "threshold": 1e999}', "application/json", 422, "validation", "finite"),
    ('["text"]', "application/json", 422, "validation", "JSON object"),
    ('{"text": "\\ud800"}', "application/json", 422, "validation", "lone surrogate"),
    ('{"text": "a"}', "text/plain", 415, "unsupported_media_type", "application/json"),
    ('{"text": "a"}', None, 415, "unsupported_media_type", "application/json"),
])
def test_bodies_that_are_not_usable_json(client, data, content_type, status, error_type, mentions):
    response = client.post("/api/patch", data=data, content_type=content_type)
    assert_error(response, status, error_type, mentions)


def test_request_over_the_size_cap_is_413():
    client = make_app(MAX_REQUEST_BYTES=1000).test_client()
    assert_error(client.post("/api/entropy", json={"text": "a" * 2000}), 413, "payload_too_large", "1000 bytes")


def test_unknown_paths_and_methods_are_json(client):
    assert_error(client.get("/api/nope"), 404, "not_found", "/api/nope")
    response = client.get("/api/patch")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


# ---------------------------------------------------------------------------------- degraded
def test_missing_model_degrades_with_the_reason(tmp_path):
    missing = tmp_path / "no-such-model"
    client = make_app(MODEL=str(missing)).test_client()
    for url in ("/api/entropy", "/api/patch", "/api/compare"):      # named without the server's path
        error = assert_error(post(client, url, {"text": "hello"}), 503, "model_unavailable", "'no-such-model'")
        assert str(tmp_path) not in error["error"]
    assert_error(post(client, "/api/generate/stream", {"prompt": "x"}), 503, "model_unavailable")
    health = client.get("/healthz").json
    assert health["status"] == "degraded" and "'no-such-model' does not exist" in health["model"]["error"]
    models = client.get("/api/models")
    assert models.status_code == 200 and models.json["model"]["error"] == health["model"]["error"]
    assert client.get("/data/languages.json").status_code == 200            # stored figures still serve
    assert client.get("/api/figures/languages").status_code == 200


def test_non_finite_floats_are_written_as_null(app):
    with app.app_context():
        assert json.loads(app.json.dumps({"x": [1.0, float("nan"), float("inf")]})) == {"x": [1.0, None, None]}


# ---------------------------------------------------------------------------------- data and figures
def test_languages_json_and_csv(client):
    rows = json.loads((REPO / "plot_data" / "languages.json").read_text())["rows"]
    assert client.get("/api/languages").json == {"rows": rows}
    response = client.get("/api/languages.csv")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    table = pd.read_csv(io.StringIO(response.get_data(as_text=True)))
    assert table["language"].tolist() == [r["language"] for r in rows]
    assert table["mean_patch_bytes"].tolist() == pytest.approx([r["mean_patch_bytes"] for r in rows])


def test_figures_list_and_formats(client):
    listed = client.get("/api/figures").json
    names = {f["name"] for f in listed}
    assert {"threshold_sweep", "languages", "training_curves"} <= names
    for name in names:
        fig = client.get(f"/api/figures/{name}").json
        assert fig["data"] and fig["layout"]["title"]["text"]
    page = client.get("/api/figures/languages?format=html")
    assert page.mimetype == "text/html" and b"<html>" in page.data
    assert_error(client.get("/api/figures/nope"), 404, "not_found", "nope")
    assert_error(client.get("/api/figures/languages?format=gif"), 422, "validation", "format")
