"""Real gunicorn with the repository's config and the shipped model, on a free loopback port:
health, the API, a streamed generation read as server-sent events, a client that hangs up
mid-stream freeing the model at once, corpus uploads past the request limit up to their own, and
plotly.js gzip-compressed."""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from webapp_helpers import REPO, SHIPPED_MODEL

GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Content-Type": "application/json"} if body is not None else {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, json.loads(data)


def read_event(response) -> tuple[str, dict]:
    """The next server-sent event of a streaming response."""
    fields = {}
    while True:
        line = response.readline().decode().rstrip("\n")
        if not line:
            return fields["event"], json.loads(fields["data"])
        key, value = line.split(": ", 1)
        fields[key] = value


def open_stream(port, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/generate/stream", body=json.dumps(body), headers={"Content-Type": "application/json"})
    return conn, conn.getresponse()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not GUNICORN.exists():
        pytest.skip(f"gunicorn is not installed next to {sys.executable}")
    port = free_port()
    env = {**os.environ, "BLT_MODEL": str(SHIPPED_MODEL), "BLT_DEVICE": "cpu", "PORT": str(port),
           "BLT_GENERATION_SLOTS": "2", "BLT_MAX_REQUEST_BYTES": "2000", "BLT_MAX_CORPUS_BYTES": "6000"}
    log = tmp_path_factory.mktemp("gunicorn") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(GUNICORN), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                                 "app:create_app()"], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body = request(port, "GET", "/healthz", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not come up: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        # the worker (never the master) starts loading at boot, in the background: no request needed
        assert status == 200 and body["status"] in ("loading", "ok"), body
        while body["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.2)
            body = request(port, "GET", "/healthz", timeout=2)[1]
        assert body["status"] == "ok" and body["model"]["loaded"], body
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_patch_and_models(server):
    status, body = request(server, "POST", "/api/patch", {"text": "Hello from gunicorn, in patches."})
    assert status == 200 and sum(body["patch_lengths"]) == len(body["bytes"]) == 32
    status, models = request(server, "GET", "/api/models")
    assert status == 200 and models["model"]["name"] == "models/blt-studio" and models["model"]["device"] == "cpu"
    health = request(server, "GET", "/healthz")[1]
    assert health["status"] == "ok"
    # the worker froze the heap its load made, and counts its collections (app/gc_pauses.py)
    assert health["model"]["gc"]["frozen_objects"] > 10_000
    assert set(health["model"]["gc"]["collections"]) == {"0", "1", "2"}


def test_streamed_generation(server):
    conn, response = open_stream(server, {"prompt": "The patch", "max_new_bytes": 30})
    assert response.status == 200 and response.getheader("Content-Type").startswith("text/event-stream")
    events = [read_event(response) for _ in range(31)]
    conn.close()
    assert [name for name, _ in events] == ["byte"] * 30 + ["done"]
    assert events[-1][1]["stats"]["new_bytes"] == 30 and events[-1][1]["stop_reason"] == "max_new_bytes"
    _, full = request(server, "POST", "/api/generate", {"prompt": "The patch", "max_new_bytes": 30})
    assert "".join(data["text"] for _, data in events[:-1]) == full["text"]


def test_concurrent_streams_are_batched_and_each_gets_what_it_gets_alone(server):
    bodies = [{"prompt": "The patch", "max_new_bytes": 40, "temperature": 0.9, "seed": 4},
              {"prompt": "def f(x):", "max_new_bytes": 25, "mode": "space"}]
    streams = [open_stream(server, body) for body in bodies]           # both run at once (2 slots)
    texts = []
    for conn, response in streams:
        events = []
        while not events or events[-1][0] == "byte":
            events.append(read_event(response))
        conn.close()
        assert events[-1][0] == "done"
        texts.append("".join(data["text"] for _, data in events[:-1]))
    for body, text in zip(bodies, texts):
        assert request(server, "POST", "/api/generate", body)[1]["text"] == text


def test_disconnect_mid_stream_frees_the_model(server):
    conn, response = open_stream(server, {"prompt": "Once", "max_new_bytes": 1000})
    assert read_event(response)[0] == "byte"
    other, other_response = open_stream(server, {"prompt": "Twice", "max_new_bytes": 1000})
    assert read_event(other_response)[0] == "byte"
    status, body = request(server, "POST", "/api/generate", {"prompt": "x", "max_new_bytes": 2})
    assert status == 429 and body["error_type"] == "overloaded"
    t0 = time.monotonic()
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()
    while request(server, "GET", "/healthz")[1]["model"]["serving"]["running"] > 1:
        assert time.monotonic() - t0 < 1, "the generation still holds its row 1 s after the client left"
        time.sleep(0.05)
    assert request(server, "POST", "/api/generate", {"prompt": "x", "max_new_bytes": 2})[0] == 200
    other.close()


def raw(port, method, path, body: bytes | None = None, headers=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def test_a_corpus_upload_has_its_own_body_limit(server):
    text = ("Patches grow where the next byte is easy to guess. " * 80)[:4000].encode()   # over MAX_REQUEST_BYTES
    response, data = raw(server, "POST", "/api/corpus", text, {"Content-Type": "text/plain; charset=utf-8"})
    assert response.status == 200, data[:300]
    assert json.loads(data)["bytes"] == 4000
    response, data = raw(server, "POST", "/api/corpus", b"a" * 6001, {"Content-Type": "text/plain"})
    assert response.status == 413 and "limit of 6000 bytes" in json.loads(data)["error"]
    response, data = raw(server, "POST", "/api/patch", json.dumps({"text": "a" * 3000}).encode(),
                         {"Content-Type": "application/json"})
    assert response.status == 413 and "limit of 2000 bytes" in json.loads(data)["error"]


def test_plotly_js_is_served_gzipped(server):
    import gzip

    from app.pages import PLOTLY_JS
    response, data = raw(server, "GET", "/static/vendor/plotly.min.js?v=1", headers={"Accept-Encoding": "gzip"})
    assert response.status == 200 and response.getheader("Content-Encoding") == "gzip"
    assert "immutable" in response.getheader("Cache-Control") and response.getheader("ETag")
    assert gzip.decompress(data) == PLOTLY_JS.read_bytes() and len(data) < PLOTLY_JS.stat().st_size / 3
