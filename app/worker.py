"""The gunicorn worker BLT Studio runs in: gunicorn's asyncio (`asgi`) worker serving the Flask
app through `bridge.WSGIBridge`, with two additions to gunicorn's HTTP/1 protocol:

- a deadline for the request head: a connection must deliver a complete request line and
  headers within HEAD_TIMEOUT_S of opening (later requests on a kept-alive connection get
  gunicorn's `keepalive` seconds), else it is closed. gunicorn's asyncio worker has no such
  limit, so a client that sends half a request line would hold its socket for ever;
- gunicorn's own error answers (400 for bad framing, 414, 431, ...) in the app's JSON error
  shape with its security headers, instead of text/plain without them.

Both hook into gunicorn's `ASGIProtocol` (pinned to gunicorn 27 in requirements.txt); the tests
in tests/test_serving.py exercise them on a real gunicorn process.
"""
from __future__ import annotations

import json
from http import HTTPStatus

from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers import gasgi

from .bridge import WSGIBridge
from .errors import HTTP_ERROR_TYPES



class StudioProtocol(ASGIProtocol):
    head_timeout_s = 10.0
    security_headers: dict = {}

    def connection_made(self, transport):
        super().connection_made(transport)
        # the first request's head shares the keep-alive timer: it closes the connection unless
        # headers complete first (gunicorn cancels the timer when they do)
        if self._request_ready is not None:
            self._keepalive_handle = self.worker.loop.call_later(self.head_timeout_s, self._keepalive_timeout)

    def _send_error_response(self, status, message, extra_headers=()):
        body = json.dumps({"error": message[:200], "error_type": HTTP_ERROR_TYPES.get(status, "http_error")}).encode()
        head = [f"HTTP/1.1 {status} {_reason(status)}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in extra_headers),
                *(f"{k}: {v}" for k, v in self.security_headers.items()), "Connection: close"]
        self._safe_write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class StudioWorker(gasgi.ASGIWorker):
    """gunicorn's asgi worker serving `app:create_app()` (a Flask app) through the bridge."""

    def load_wsgi(self):
        super().load_wsgi()
        flask_app = self.asgi
        self.asgi = WSGIBridge(flask_app)
        StudioProtocol.head_timeout_s = flask_app.config["HEAD_TIMEOUT_S"]
        StudioProtocol.security_headers = flask_app.config["SECURITY_HEADERS"]
        # the worker builds its protocol by this module-level name; this process serves ours
        gasgi.ASGIProtocol = StudioProtocol

