"""The serving stack under real gunicorn (the repository's gunicorn.conf.py: app/worker.py and
app/bridge.py) with the shipped model, against slow, idle and malformed clients: held connections
never starve the server, every deadline closes what it should, and gunicorn's own errors come in
the app's JSON shape with its security headers."""
from __future__ import annotations

import json
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from webapp_helpers import REPO, SHIPPED_MODEL

sys.path.insert(0, str(REPO / "bench"))
from server import GUNICORN, Server  # noqa: E402
from soak import FRAMING, chunked, get, post, raw, status_of  # noqa: E402

TIMEOUTS = {"BLT_HEAD_TIMEOUT_S": "1", "BLT_READ_TIMEOUT_S": "1", "BLT_WRITE_TIMEOUT_S": "2"}
PLOTLY_PATH = "/static/vendor/plotly.min.js"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not GUNICORN.exists():
        pytest.skip(f"gunicorn is not installed next to {sys.executable}")
    env = {"BLT_MODEL": str(SHIPPED_MODEL), "BLT_DEVICE": "cpu", **TIMEOUTS}
    with Server(env, log_path=tmp_path_factory.mktemp("gunicorn") / "server.log") as server:
        assert post(server.port, "/api/patch", {"text": "load the model"})[0] == 200
        yield server


def connect(server, first: bytes, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", server.port))
    s.sendall(first)
    return s


def closed_by_server(s: socket.socket, within_s: float) -> bool:
    """Whether the server closes s (after any answer) within the time."""
    s.settimeout(within_s)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def response_of(answer: bytes) -> tuple[int, dict, dict]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_held_connections_do_not_starve_the_server(server):
    held = [connect(server, b"GET /healthz HTTP/1.1\r\n") for _ in range(40)]
    held += [connect(server, b"POST /api/patch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 2000\r\n\r\n{") for _ in range(40)]
    held += [connect(server, f"GET {PLOTLY_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), rcvbuf=4096)
             for _ in range(16)]
    try:
        with ThreadPoolExecutor(4) as pool:       # several normal clients at once, twice the thread count
            answers = list(pool.map(lambda i: get(server.port, "/healthz", timeout=5), range(16)))
        assert all(status == 200 for status, _, _ in answers)
        assert max(seconds for _, _, seconds in answers) < 1.0
        status, body, seconds = post(server.port, "/api/patch", {"text": "Slow clients hold no thread. " * 70})
        assert status == 200 and seconds < 2.0 and json.loads(body)["stats"]["bytes"] == 29 * 70
    finally:
        for s in held:
            s.close()


def test_an_unfinished_request_head_is_closed(server):
    s = connect(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    assert closed_by_server(s, within_s=5) and time.monotonic() - t0 < 3


def test_a_trickled_body_gets_408(server):
    s = connect(server, b"POST /api/patch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100\r\n\r\n{")
    s.settimeout(5)
    status, headers, body = response_of(s.recv(65536))
    s.close()
    assert status == 408 and body["error_type"] == "request_timeout" and "1 s" in body["error"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_a_client_that_never_reads_is_dropped(server):
    s = connect(server, f"GET {PLOTLY_PATH} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), rcvbuf=4096)
    time.sleep(4)                                 # past WRITE_TIMEOUT_S without reading
    received = 0
    s.settimeout(5)
    try:
        while chunk := s.recv(65536):
            received += len(chunk)
    except ConnectionResetError:
        pass
    s.close()
    size = len(get(server.port, PLOTLY_PATH)[1])
    assert 0 < received < size, "the server kept writing to a client that read nothing"


@pytest.mark.parametrize("case", sorted(FRAMING))
def test_bad_chunked_framing_is_a_json_400(server, case):
    status, headers, body = response_of(raw(server.port, chunked("/api/patch", FRAMING[case]), timeout=5))
    # a truncated chunk's rest never comes (408); trailers are discarded unread (RFC 9112 7.1.2
    # allows it), so a malformed trailer line behind a well-framed body leaves a valid request
    expected = {"truncated chunk": 408, "bad trailer": 200}.get(case, 400)
    assert status == expected, body
    assert headers["Content-Type"] == "application/json" and headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_body_of_exactly_the_cap_is_accepted_either_way(server, framing):
    cap = json.loads(get(server.port, "/api/models")[1])["limits"]["max_request_bytes"]
    body = json.dumps({"text": "cap"}).encode()
    body += b" " * (cap - len(body))
    for size, expected in ((cap, 200), (cap + 1, 413)):
        payload = body + b" " * (size - cap)
        head = (f"Transfer-Encoding: chunked\r\n\r\n{size:x}\r\n" if framing == "chunked"
                else f"Content-Length: {size}\r\n\r\n").encode()
        tail = b"\r\n0\r\n\r\n" if framing == "chunked" else b""
        answer = raw(server.port, b"POST /api/patch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\n" + head + payload + tail, timeout=30)
        assert status_of(answer) == expected, (framing, size, answer[:300])


@pytest.mark.parametrize("request_head, status", [
    (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
    (b"GET /healthz HTTP/9.9\r\n\r\n", 400),
])
def test_gunicorns_own_errors_are_the_apps_json(server, request_head, status):
    got, headers, body = response_of(raw(server.port, request_head))
    assert got == status and set(body) == {"error", "error_type"} and len(body["error"]) <= 200
    assert headers["Content-Security-Policy"].startswith("default-src")
