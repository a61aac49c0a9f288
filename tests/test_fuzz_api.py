"""Property-based fuzzing of every JSON endpoint (hypothesis): random JSON values and objects with
plausible and implausible fields, random bytes and random content types never give a 5xx, and
every answer is strict JSON (no bare NaN or Infinity); a stream is text/event-stream whose data
lines are strict JSON. Small limits keep each model call short (runs in well under a minute)."""
from __future__ import annotations

import json
import math
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from app.validation import MODES, PATCH_FIELDS
from webapp_helpers import make_app

POST_ENDPOINTS = ["/api/entropy", "/api/entropy/detail", "/api/patch", "/api/compare", "/api/tokenize", "/api/generate",
                  "/api/generate/stream"]


def fuzz(examples: int):
    return settings(max_examples=examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def client():
    return make_app(MAX_REQUEST_BYTES=4096, MAX_TEXT_BYTES=256, MAX_NEW_BYTES=4, DEFAULT_NEW_BYTES=2).test_client()


def reject_constant(name):
    raise ValueError(f"bare {name} in a response")


def strict_json(text: str):
    return json.loads(text, parse_constant=reject_constant)


def check(response) -> None:
    """Never a 5xx; JSON (an error of the one shape for 4xx), or an event stream of JSON lines."""
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    text = response.get_data(as_text=True)
    if response.mimetype == "text/event-stream":
        assert response.status_code == 200
        data = [strict_json(line[len("data: "):]) for line in text.splitlines() if line.startswith("data: ")]
        assert data and all(isinstance(d, dict) for d in data)
        return
    assert response.mimetype == "application/json", (response.status_code, text[:200])
    body = strict_json(text)
    if response.status_code >= 400:
        assert set(body) == {"error", "error_type"} and body["error"], body


# ---------------------------------------------------------------------------------- strategies
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)
printable = st.characters(max_codepoint=0x2FFF, exclude_categories=("Cc", "Cs"))
small_text = st.text(printable, min_size=1, max_size=40) | st.text(max_size=20)
PLAUSIBLE = {   # field -> values near and across its limits
    "text": small_text, "prompt": small_text, "mode": st.sampled_from([*MODES, "tokens", ""]),
    "threshold": st.floats(-8, 8) | st.integers(-8, 8), "max_patch_length": st.integers(-1, 300),
    "patch_size": st.integers(-1, 300), "max_new_bytes": st.integers(-1, 6),
    "temperature": st.floats(0, 12) | st.sampled_from([0, 5e-324, 1e-30, 1e-8]), "top_k": st.integers(-1, 300),
    "top_p": st.floats(0, 1.2) | st.sampled_from([5e-324, 1e-30, 1]), "repetition_penalty": st.floats(0, 12),
    "seed": st.integers(-1, 2**64), "stop": st.lists(st.text(max_size=4), max_size=5),
    "tokenizers": st.lists(st.sampled_from(["r50k_base", "cl100k_base", "o200k_base", "gpt5", ""]), max_size=4),
    "blt": st.booleans() | st.sampled_from([0, 1, "true"]),
    "start": st.integers(-1, 300), "length": st.integers(-1, 70), "top_k": st.integers(-1, 25),
    "fields": st.lists(st.sampled_from([*PATCH_FIELDS, "tokens"]), max_size=4),
}
PATCHING = ["mode", "threshold", "max_patch_length", "patch_size"]
FIELDS = {   # endpoint -> its fields, the text field first
    "/api/entropy": ["text", "fields"], "/api/entropy/detail": ["text", "start", "length", "top_k"],
    "/api/patch": ["text", *PATCHING, "fields"], "/api/compare": ["text", *PATCHING[1:]],
    "/api/tokenize": ["text", "tokenizers", "blt", *PATCHING],
    "/api/generate": ["prompt", "max_new_bytes", "temperature", "top_k", "top_p", "repetition_penalty", "seed",
                      "stop", *PATCHING],
}
FIELDS["/api/generate/stream"] = FIELDS["/api/generate"]


@st.composite
def bodies(draw, url: str) -> str:
    """A JSON text: mostly an object of the endpoint's fields with plausible values (now and then
    a random value, a missing text, a key of another endpoint or a random key), sometimes any
    JSON value; NaN and Infinity literals included."""
    if draw(st.integers(0, 9)) == 0:
        return json.dumps(draw(json_values), allow_nan=True)
    text_field, *options = FIELDS[url]
    fields = draw(st.lists(st.sampled_from(options), max_size=len(options), unique=True)) if options else []
    if draw(st.integers(0, 9)) > 0:
        fields.insert(0, text_field)
    value = {f: draw(json_values if draw(st.integers(0, 7)) == 0 else PLAUSIBLE[f]) for f in fields}
    if draw(st.integers(0, 4)) == 0:
        value[draw(st.sampled_from(sorted(PLAUSIBLE)) | st.text(max_size=12))] = draw(json_values)
    return json.dumps(value, allow_nan=True)


# ---------------------------------------------------------------------------------- properties
@pytest.mark.parametrize("url", POST_ENDPOINTS)
@fuzz(80)
@given(data=st.data())
def test_random_json_bodies(client, url, data):
    check(client.post(url, data=data.draw(bodies(url)), content_type="application/json"))


content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain", "",
                                 "application/x-www-form-urlencoded", "multipart/form-data"]) \
    | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@pytest.mark.parametrize("url", POST_ENDPOINTS)
@fuzz(25)
@given(data=st.binary(max_size=300) | bodies("/api/patch").map(str.encode), content_type=content_types)
def test_random_bytes_and_content_types(client, url, data, content_type):
    check(client.post(url, data=data, content_type=content_type))


@pytest.mark.parametrize("url", ["/api/corpus", "/api/corpus/stream"])
@fuzz(30)
@given(data=st.binary(max_size=200) | st.text(printable, max_size=80).map(str.encode),
       content_type=st.sampled_from(["text/plain", "text/plain; charset=utf-8"]) | content_types,
       query=st.dictionaries(st.sampled_from(["passages", "passage_bytes", "mode", "threshold", "patch_size", "x"]),
                             st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=6), max_size=3))
def test_random_corpus_uploads(client, url, data, content_type, query):
    check(client.post(url, data=data, content_type=content_type, query_string=query))


@fuzz(60)
@given(name=st.text(max_size=40) | st.sampled_from(["languages", "scaling", "threshold_sweep"]),
       fmt=st.sampled_from(["json", "html", "png", ""]) | st.text(max_size=8), encode=st.booleans())
def test_random_figure_names_and_formats(client, name, fmt, encode):
    response = client.get(f"/api/figures/{quote(name, safe='') if encode else name}?format={quote(fmt)}")
    if response.status_code == 200 and fmt != "json":
        return                                                  # a figure as HTML or PNG
    check(response)


@fuzz(60)
@given(prefix=st.sampled_from(["/data/", "/images/", "/visualizations/"]),
       name=st.text(max_size=60) | st.sampled_from(["languages.json", "..", "../README.md"]), encode=st.booleans())
def test_random_file_names(client, prefix, name, encode):
    response = client.get(prefix + (quote(name, safe="") if encode else name))
    if response.status_code != 200:
        check(response)


@pytest.mark.parametrize("url", ["/healthz", "/api/models", "/api/figures", "/api/languages",
                                 "/api/visualizations", "/api/openapi.json"])
@fuzz(5)
@given(query=st.text(max_size=20))
def test_get_endpoints_with_random_queries(client, url, query):
    check(client.get(f"{url}?{quote(query)}"))


def test_strict_json_rejects_bare_constants():
    """The check itself: what a NaN-leaking server would send fails it."""
    for text in ('{"x": NaN}', "[Infinity]", "-Infinity"):
        with pytest.raises(ValueError):
            strict_json(text)
    assert math.isnan(json.loads('{"x": NaN}')["x"])                 # which plain json.loads lets through
