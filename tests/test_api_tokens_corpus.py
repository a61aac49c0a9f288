"""/api/tokenize and /api/corpus(/stream) through Flask's test client, on the shipped model: the
numbers against blt_core called directly, and every bad input as a JSON 4xx."""
from __future__ import annotations

import pytest

from blt_core import bpe, corpus
from blt_core.patching import PatchingParams

from webapp_helpers import REPO, assert_error, make_app, sse_events

MIXED = "Hello, 世界! 👍🏽 it's naïve"
TEXT_PLAIN = "text/plain; charset=utf-8"


@pytest.fixture(scope="module")
def app():
    return make_app(MAX_CORPUS_BYTES=20_000)


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def model(app):
    return app.extensions["blt_model"].get().model


# ---------------------------------------------------------------------------------- tokenize
def test_tokenize_equals_the_encoders_and_blt_core(client, model):
    out = client.post("/api/tokenize", json={"text": MIXED}).json
    data = MIXED.encode("utf-8")
    assert out["bytes"] == len(data) and [t["name"] for t in out["tokenizers"]] == list(bpe.VOCABULARIES)
    for row in out["tokenizers"]:
        tokens = bpe.encoding(row["name"]).encode(MIXED)
        assert (row["token_ids"], row["token_starts"], row["token_lengths"]) == (tokens.ids, tokens.starts, tokens.lengths)
        assert row["tokens"] == len(tokens.ids) and row["bytes_per_token"] == pytest.approx(len(data) / len(tokens.ids))
        # spans: whole characters, in order, covering the text, and as many tokens as there are
        assert "".join(s["text"] for s in row["spans"]) == MIXED
        assert sum(s["tokens"] for s in row["spans"]) == row["tokens"]
        assert all(s["text"].encode("utf-8") == data[s["start"]:s["start"] + s["length"]] for s in row["spans"])
    patches = model.patch(MIXED)
    assert out["blt"]["patch_lengths"] == patches.lengths[1:]
    assert out["blt"]["stats"]["mean_patch_bytes"] == pytest.approx(len(data) / (patches.count - 1))
    assert out["blt"]["mode"] == "entropy"


def test_tokenize_splits_a_character_across_tokens_into_one_span(client):
    out = client.post("/api/tokenize", json={"text": "🏽", "tokenizers": ["cl100k_base"], "blt": False}).json
    (row,) = out["tokenizers"]
    assert row["tokens"] == 3 and row["spans"] == [{"start": 0, "length": 4, "tokens": 3, "text": "🏽"}]
    assert "blt" not in out


def test_tokenize_with_patching_options(client, model):
    out = client.post("/api/tokenize", json={"text": MIXED, "mode": "static", "patch_size": 3,
                                             "tokenizers": ["o200k_base"]}).json
    assert out["blt"]["patch_lengths"] == model.patch(MIXED, patching=PatchingParams("static", patch_size=3)).lengths[1:]


@pytest.mark.parametrize("body, mentions", [
    ({"text": "x", "tokenizers": ["gpt5"]}, "tokenizers[0] must be one of r50k_base"),
    ({"text": "x", "tokenizers": []}, "non-empty list"),
    ({"text": "x", "tokenizers": "cl100k_base"}, "non-empty list"),
    ({"text": "x", "tokenizers": ["cl100k_base", "cl100k_base"]}, "twice"),
    ({"text": "x", "blt": 1}, "blt must be true or false"),
    ({"text": ""}, "text must not be empty"),
    ({}, "text is required"),
])
def test_tokenize_rejects_bad_fields(client, body, mentions):
    assert_error(client.post("/api/tokenize", json=body), 422, "validation", mentions)


def test_tokenize_text_over_the_limit(client):
    assert_error(client.post("/api/tokenize", json={"text": "a" * 20_000}), 413, "payload_too_large", "max_text_bytes")


# ---------------------------------------------------------------------------------- corpus
@pytest.fixture(scope="module")
def corpus_text():
    return (REPO / "tests" / "fixtures" / "corpus" / "heldout.bin").read_bytes()[:2500].decode("utf-8", "ignore")


def test_corpus_equals_blt_core(client, model, corpus_text):
    response = client.post("/api/corpus?passages=3&passage_bytes=150", data=corpus_text.encode(), content_type=TEXT_PLAIN)
    assert response.status_code == 200, response.json
    expected = corpus.analyse(model, corpus_text, passage_bytes=150, passage_count=3)
    assert response.json == expected


def test_corpus_stream_sends_progress_then_the_same_report(client, corpus_text):
    plain = client.post("/api/corpus", data=corpus_text.encode(), content_type=TEXT_PLAIN).json
    response = client.post("/api/corpus/stream", data=corpus_text.encode(), content_type=TEXT_PLAIN)
    assert response.mimetype == "text/event-stream"
    events = sse_events(response.get_data(as_text=True))
    n = plain["bytes"]
    assert events[:-1] == [("progress", {"bytes_done": min(end, n), "bytes_total": n})
                           for end in range(512, n + 512, 512)]
    assert events[-1] == ("done", plain)


@pytest.mark.parametrize("data, content_type, status, error_type, mentions", [
    (b"\xff\xfeabc", TEXT_PLAIN, 422, "validation", "not UTF-8 text: byte 0 is 0xff"),
    (b"a\x00b", TEXT_PLAIN, 422, "validation", "control character U+0000"),
    (b"", TEXT_PLAIN, 422, "validation", "must not be empty"),
    (b'{"text": "x"}', "application/json", 415, "unsupported_media_type", "must be text/plain"),
    (b"a" * 20_001, TEXT_PLAIN, 413, "payload_too_large", "larger than the limit of 20000 bytes"),
])
def test_corpus_rejects_bad_bodies(client, data, content_type, status, error_type, mentions):
    for url in ("/api/corpus", "/api/corpus/stream"):
        assert_error(client.post(url, data=data, content_type=content_type), status, error_type, mentions)


@pytest.mark.parametrize("query, mentions", [
    ("passages=0", "passages must be in [1, 50]"), ("passage_bytes=2.5", "passage_bytes must be an integer"),
    ("mode=bpe", "mode must be one of"), ("nope=1", "unknown field 'nope'"), ("threshold=abc", "must be a number"),
])
def test_corpus_rejects_bad_options(client, query, mentions):
    assert_error(client.post(f"/api/corpus?{query}", data=b"abc", content_type=TEXT_PLAIN), 422, "validation", mentions)


def test_corpus_body_over_the_request_limit_is_413_by_its_own_limit():
    client = make_app(MAX_CORPUS_BYTES=5000, MAX_REQUEST_BYTES=1000).test_client()
    assert client.post("/api/corpus", data=b"ab " * 1000, content_type=TEXT_PLAIN).status_code == 200
    assert_error(client.post("/api/corpus", data=b"a" * 5001, content_type=TEXT_PLAIN), 413, "payload_too_large")


def test_a_second_corpus_at_once_gets_429(app, client):
    slots = app.extensions["blt_corpus"]
    slots.acquire()
    try:
        assert_error(client.post("/api/corpus", data=b"abc", content_type=TEXT_PLAIN), 429, "overloaded", "corpus")
    finally:
        slots.release()
    assert client.post("/api/corpus", data=b"abc", content_type=TEXT_PLAIN).status_code == 200


def test_a_corpus_refused_for_want_of_an_analysis_slot_frees_its_corpus_slot():
    app = make_app(ANALYSIS_SLOTS=1, ANALYSIS_WAIT_S=0.0)
    client = app.test_client()
    analysis = app.extensions["blt_model"]
    analysis.get()
    analysis.analysis.acquire()
    try:
        for url in ("/api/corpus", "/api/corpus/stream"):
            assert_error(client.post(url, data=b"abc", content_type=TEXT_PLAIN), 429, "overloaded", "analysis")
    finally:
        analysis.analysis.release()
    assert app.extensions["blt_corpus"].in_use == 0
    assert client.post("/api/corpus/stream", data=b"abc", content_type=TEXT_PLAIN).status_code == 200


def test_models_reports_the_corpus_limits_and_tokenizers(client):
    info = client.get("/api/models").json
    assert info["limits"]["max_corpus_bytes"] == 20_000 and info["limits"]["corpus_slots"] == 1
    assert [t["name"] for t in info["tokenizers"]] == ["r50k_base", "cl100k_base", "o200k_base"]
