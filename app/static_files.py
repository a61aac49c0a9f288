"""Static files (static/, plotly.js and its stylesheets) sent gzip-compressed to clients that
accept it, with validators and cache lifetimes that fit their URLs.

- gzip: a file's compressed bytes are made once, on its first request (level 9; plotly.min.js:
  4.7 MB -> 1.4 MB in about half a second) and kept in memory for as long as the file is
  unchanged (its size and modification time); about 1.5 MB in all. Brotli would need a package
  outside the standard library, so it is not offered. Responses carry `Vary: Accept-Encoding`.
- Validators: a strong ETag per encoding (a hash of the file's bytes, `-gz` for the gzip body);
  If-None-Match answers 304.
- Lifetimes: a URL with `?v=<version>` (every URL the templates write: `url_for` adds the file's
  content hash, plotly's URLs its package version) is immutable for a year; the same file
  without it (the ES-module imports between static/js files, which cannot carry a query) is
  `no-cache`: reused after a 304 revalidation, never stale after a deploy.
"""
from __future__ import annotations

import gzip
import hashlib
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, abort, request, send_file
from werkzeug.security import safe_join

YEAR_S = 365 * 24 * 3600
COMPRESSIBLE = {"text/javascript", "application/javascript", "text/css", "image/svg+xml", "application/json",
                "text/plain", "text/html"}
MIN_GZIP_BYTES = 1024             # below this gzip saves less than its headers cost


@dataclass(frozen=True)
class Encoded:
    stamp: tuple                  # what the bytes were made from: (size, mtime_ns) of a file, or a version
    digest: str                   # sha256 of the original bytes, hex (the ETag's root)
    gz: bytes | None              # gzip body, or None when not worth compressing


class EncodedCache:
    """Compressed bodies and digests of static assets by key, rebuilt when their stamp changes."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, Encoded] = {}

    def get(self, key: str, stamp: tuple, load) -> Encoded:
        entry = self._entries.get(key)
        if entry is not None and entry.stamp == stamp:
            return entry
        with self._lock:                       # one build at a time (plotly.js: ~0.5 s)
            entry = self._entries.get(key)
            if entry is None or entry.stamp != stamp:
                data = load()
                gz = gzip.compress(data, compresslevel=9, mtime=0) if len(data) >= MIN_GZIP_BYTES else None
                entry = self._entries[key] = Encoded(stamp, hashlib.sha256(data).hexdigest()[:32], gz)
        return entry


def accepts_gzip() -> bool:
    return any(enc.strip().split(";")[0] == "gzip" and not enc.strip().endswith("q=0")
               for enc in request.headers.get("Accept-Encoding", "").split(","))


def respond(cache: EncodedCache, key: str, stamp: tuple, load, mimetype: str, versioned: bool,
            path: Path | None = None) -> Response:
    """The asset as gzip when the client takes it and it is worth it, else as is (from `path`,
    streamed, when it is a file), with ETag, Vary and Cache-Control; conditional requests answered."""
    entry = cache.get(key, stamp, load)
    if entry.gz is not None and mimetype in COMPRESSIBLE and accepts_gzip():
        response = Response(entry.gz, mimetype=mimetype)
        response.headers["Content-Encoding"] = "gzip"
        response.set_etag(f"{entry.digest}-gz")
    else:
        response = send_file(path, mimetype=mimetype, etag=False, conditional=False) if path else \
            Response(load(), mimetype=mimetype)
        response.set_etag(entry.digest)
    response.vary.add("Accept-Encoding")
    if versioned:
        response.cache_control.public = True
        response.cache_control.max_age = YEAR_S
        response.cache_control.immutable = True
    else:
        response.cache_control.no_cache = True
    return response.make_conditional(request)


def file_stamp(path: Path) -> tuple:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def send_static(cache: EncodedCache, folder: Path, filename: str, mimetype: str | None = None) -> Response:
    """One file of a static folder (404 outside it or when missing)."""
    joined = safe_join(str(folder), filename)
    path = Path(joined) if joined else None
    if path is None or not path.is_file():
        abort(404)
    mimetype = mimetype or _mimetype(path)
    return respond(cache, str(path), file_stamp(path), path.read_bytes, mimetype, "v" in request.args, path)


def _mimetype(path: Path) -> str:
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return "text/javascript" if guessed == "application/javascript" else guessed


class Versions:
    """Content hashes of static files for their URLs (`?v=`), cached by size and mtime."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._known: dict[str, tuple[tuple, str]] = {}

    def of(self, filename: str) -> str | None:
        joined = safe_join(str(self.folder), filename)
        if not joined or not Path(joined).is_file():
            return None
        path = Path(joined)
        stamp = file_stamp(path)
        known = self._known.get(filename)
        if known is None or known[0] != stamp:
            known = self._known[filename] = (stamp, hashlib.sha256(path.read_bytes()).hexdigest()[:12])
        return known[1]


def register(app: Flask) -> None:
    """Serve static/ through `send_static` and version every url_for('static', ...)."""
    folder = Path(app.static_folder)
    cache = app.extensions["blt_static"] = EncodedCache()
    versions = Versions(folder)

    def static(filename):
        return send_static(cache, folder, filename)

    app.view_functions["static"] = static

    @app.url_defaults
    def static_version(endpoint, values):
        if endpoint == "static" and "v" not in values:
            version = versions.of(values.get("filename", ""))
            if version:
                values["v"] = version
