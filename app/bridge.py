"""The Flask app (WSGI) served from an asyncio event loop, so that slow or idle clients cost a
coroutine, never a thread.

gunicorn's `asgi` worker reads and writes every socket on one event loop. This bridge runs the
WSGI app on a small pool of threads only while there is work for it:

    request    the whole body is read on the loop first (at most MAX_REQUEST_BYTES, a corpus
               upload MAX_CORPUS_BYTES (app.api.CORPUS_PATHS), within
               READ_TIMEOUT_S: a body trickled at 1 byte/s gets 408, an over-long one 413, the
               same for Content-Length and chunked framing); then one thread call runs the view
    response   each chunk of the response iterator is fetched by one thread call and written on
               the loop; a client that does not read holds no thread (only its socket's 64 kB
               write buffer) and is dropped after WRITE_TIMEOUT_S without progress
    disconnect a client that hangs up is noticed on the loop; the response iterator is then
               closed (a streamed generation frees its slot) after the chunk being computed

The app's own handlers still produce every error a view can raise; the few answered here (408,
413, 400 for a malformed body) use the app's JSON error shape and security headers.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from . import start_loading
from .api import CORPUS_PATHS
from .errors import ApiError

log = logging.getLogger(__name__)

FILE_BLOCK = 65536          # bytes per chunk of a file response (werkzeug's default is 8 kB)
_DONE = object()


class _FileWrapper:
    """wsgi.file_wrapper reading larger blocks: one thread call per 64 kB of a static file."""

    def __init__(self, file, block_size=FILE_BLOCK):
        self.file, self.block_size = file, max(block_size, FILE_BLOCK)

    def __iter__(self):
        return iter(lambda: self.file.read(self.block_size), b"")

    def close(self):
        self.file.close()


class WSGIBridge:
    def __init__(self, app: Flask):
        cfg = app.config
        self.app = app
        self.max_body = cfg["MAX_REQUEST_BYTES"]
        self.max_corpus_body = max(cfg["MAX_CORPUS_BYTES"], self.max_body)
        self.read_timeout, self.write_timeout = cfg["READ_TIMEOUT_S"], cfg["WRITE_TIMEOUT_S"]
        self.pool = ThreadPoolExecutor(cfg["REQUEST_THREADS"], thread_name_prefix="request")
        # /healthz never waits behind model work for a thread (Render restarts a service whose
        # health check times out)
        self.health_pool = ThreadPoolExecutor(1, thread_name_prefix="healthz")
        self.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in cfg["SECURITY_HEADERS"].items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        # websocket: not served; returning without accepting closes it

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                start_loading(self.app)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in (self.pool, self.health_pool):
                    pool.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ------------------------------------------------------------------ request
    async def _http(self, scope, receive, send):
        try:
            body = await asyncio.wait_for(self._read_body(scope, receive), self.read_timeout)
        except ApiError as err:
            await self._error(send, err)
            return
        except asyncio.TimeoutError:
            await self._error(send, ApiError(408, "request_timeout",
                                                f"the request body did not arrive within {self.read_timeout:g} s"))
            return
        if body is None:
            return                                              # the client left before its body ended
        loop = asyncio.get_running_loop()
        pool = self.health_pool if scope["path"] == "/healthz" else self.pool
        started: list = []

        def start_response(status, headers, exc_info=None):
            if exc_info and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return lambda data: None                            # the legacy write() is not supported

        environ = self._environ(scope, body)
        iterable = await loop.run_in_executor(pool, self.app, environ, start_response)
        try:
            await self._respond(receive, send, iterable, started, loop, pool)
        finally:
            if hasattr(iterable, "close"):
                await loop.run_in_executor(pool, iterable.close)

    async def _read_body(self, scope, receive) -> bytes | None:
        limit = self.max_corpus_body if scope["path"] in CORPUS_PATHS else self.max_body
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise self._too_large(limit)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise self._too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _too_large(limit: int) -> ApiError:
        return ApiError(413, "payload_too_large", f"request body is larger than the limit of {limit} bytes")

    def _environ(self, scope, body: bytes) -> dict:
        server = scope.get("server") or ("127.0.0.1", 80)
        client = scope.get("client") or ("", 0)
        environ = {
            "REQUEST_METHOD": scope["method"], "SCRIPT_NAME": scope.get("root_path", "").encode().decode("latin-1"),
            "PATH_INFO": scope["path"].encode("utf-8").decode("latin-1"),
            "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
            "SERVER_NAME": str(server[0]), "SERVER_PORT": str(server[1]),
            "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
            "REMOTE_ADDR": client[0], "REMOTE_PORT": str(client[1]),
            "CONTENT_LENGTH": str(len(body)),                   # the body as read, whatever its framing
            "wsgi.version": (1, 0), "wsgi.url_scheme": scope.get("scheme", "http"),
            "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.multithread": True,
            "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.file_wrapper": _FileWrapper,
        }
        for name, value in scope["headers"]:
            key = name.decode("latin-1").upper().replace("-", "_")
            if key in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
                continue
            key = key if key == "CONTENT_TYPE" else f"HTTP_{key}"
            value = value.decode("latin-1")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    # ------------------------------------------------------------------ response
    async def _respond(self, receive, send, iterable, started, loop, pool):
        iterator = iter(iterable)
        gone = asyncio.Event()
        watcher = asyncio.ensure_future(self._watch_disconnect(receive, gone))
        try:
            head_sent = False
            while not gone.is_set():
                chunk = await loop.run_in_executor(pool, next, iterator, _DONE)
                if not head_sent:
                    status, headers = started
                    await self._send(send, {
                        "type": "http.response.start", "status": int(status.split(" ", 1)[0]),
                        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
                    head_sent = True
                if chunk is _DONE:
                    await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})
                    return
                if chunk and not gone.is_set():
                    await self._send(send, {"type": "http.response.body", "body": bytes(chunk), "more_body": True})
        finally:
            watcher.cancel()

    async def _send(self, send, message):
        """Write on the loop; a reader that takes no data for WRITE_TIMEOUT_S is dropped."""
        await asyncio.wait_for(send(message), self.write_timeout)

    @staticmethod
    async def _watch_disconnect(receive, gone: asyncio.Event):
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    async def _error(self, send, err: ApiError):
        body = json.dumps(err.body()).encode()
        headers = [(b"Content-Type", b"application/json"), (b"Content-Length", str(len(body)).encode()),
                   (b"Connection", b"close"), *self.headers]
        await send({"type": "http.response.start", "status": err.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
