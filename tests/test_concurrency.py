"""Overload under real gunicorn (the repository's config, the shipped model on CPU), configured
with one generation slot and one analysis slot that waits for nothing: while a generation
streams, another generation is refused at once with text-generation-inference's 429 "Model is
overloaded", /healthz and analysis are still served; analysis requests beyond their slot get an
immediate 429; a client that hangs up mid-stream frees the model at once."""
from __future__ import annotations

import http.client
import json
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from webapp_helpers import REPO, SHIPPED_MODEL

sys.path.insert(0, str(REPO / "bench"))
from server import GUNICORN, Server  # noqa: E402

LONG_TEXT = ("Patches grow where the next byte is easy to guess and shrink where it is not. " * 210)[:16000]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not GUNICORN.exists():
        pytest.skip(f"gunicorn is not installed next to {sys.executable}")
    env = {"BLT_MODEL": str(SHIPPED_MODEL), "BLT_DEVICE": "cpu", "BLT_GENERATION_SLOTS": "1",
           "BLT_ANALYSIS_SLOTS": "1", "BLT_ANALYSIS_WAIT_S": "0"}
    with Server(env, log_path=tmp_path_factory.mktemp("gunicorn") / "server.log") as server:
        assert timed(server, "POST", "/api/patch", {"text": "load the model"})[0] == 200
        yield server


def timed(server, method, path, body=None):
    """(status, JSON body, seconds, headers) of one request on a fresh connection."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    t0 = time.perf_counter()
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Content-Type": "application/json"} if body is not None else {})
    response = conn.getresponse()
    data = json.loads(response.read())
    seconds = time.perf_counter() - t0
    conn.close()
    return response.status, data, seconds, dict(response.getheaders())


def open_stream(server, max_new_bytes=1000):
    """A generation streaming to a client that has read its first event."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    conn.request("POST", "/api/generate/stream", body=json.dumps({"prompt": "Once", "max_new_bytes": max_new_bytes}),
                 headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 200
    assert response.readline().startswith(b"event: byte")
    return conn


def test_while_one_generation_streams(server):
    conn = open_stream(server)
    try:
        for path in ("/api/generate", "/api/generate/stream"):
            status, body, seconds, headers = timed(server, "POST", path, {"prompt": "x", "max_new_bytes": 2})
            assert status == 429 and body["error_type"] == "overloaded" and seconds < 1.0, (status, seconds)
            assert body["error"].startswith("Model is overloaded") and headers["Retry-After"] == "1"
        status, health, seconds, _ = timed(server, "GET", "/healthz")
        assert status == 200 and seconds < 1.0 and health["model"]["generations_running"] == 1
        status, body, _, _ = timed(server, "POST", "/api/patch", {"text": "analysis has its own slots"})
        assert status == 200 and body["stats"]["bytes"] == 26
    finally:
        conn.close()


def test_analysis_beyond_its_slots_is_refused_at_once(server):
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: timed(server, "POST", "/api/entropy", {"text": LONG_TEXT}), range(4)))
    statuses = sorted(status for status, *_ in results)
    assert statuses[0] == 200 and statuses[-1] == 429 and set(statuses) == {200, 429}, statuses
    for status, body, seconds, _ in results:
        if status == 429:
            assert body["error"].startswith("Model is overloaded: all 1 analysis slots are busy") and seconds < 1.0


def test_disconnect_mid_stream_frees_the_model_at_once(server):
    conn = open_stream(server)
    assert timed(server, "POST", "/api/generate", {"prompt": "x", "max_new_bytes": 2})[0] == 429
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    t0 = time.perf_counter()
    while (status := timed(server, "POST", "/api/generate", {"prompt": "x", "max_new_bytes": 2})[0]) == 429:
        assert time.perf_counter() - t0 < 1.0, "the model is still held 1 s after the client left"
        time.sleep(0.02)
    assert status == 200 and time.perf_counter() - t0 < 1.5
