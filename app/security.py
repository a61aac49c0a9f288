"""Content-Security-Policy of BLT Studio, one per kind of document the app sends.

- Pages (and every other response by default): scripts only from this server (plotly.js is
  served locally, the pages' JS are modules in static/, no inline script); styles from this
  server plus the hashes of the fixed style attributes plotly.js writes (see
  `pages.plotly_csp_style_src`); no framing.
- Stored files (/images/, /data/): no script at all and a sandbox, so an SVG or HTML-looking
  data file opened directly cannot run anything as this origin.
- Figure HTML (/visualizations/, /api/figures/<name>?format=html): the plot call is inline, and
  plotly.js too in the exported files, so the policy allows exactly those scripts by their
  SHA-256 hashes (read from the document itself, nothing else inline runs); the API's pages load
  this server's plotly.js instead (~4.7 MB not sent with every page), allowed by 'self' only in a
  document that loads a script by URL. Plotly's injected <style> elements by 'unsafe-inline'
  (styles only), no other network, and a sandbox (an opaque origin: the document cannot read this
  server's API or storage even if a script did run).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path

from .pages import plotly_csp_style_src

NO_FRAMING = "frame-ancestors 'none'"

PAGE_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", f"style-src {plotly_csp_style_src()}",
    "img-src 'self' data: blob:", "object-src 'none'", "base-uri 'none'", "form-action 'self'", NO_FRAMING])

STORED_FILE_POLICY = "; ".join(["default-src 'none'", "img-src 'self' data:", "style-src 'unsafe-inline'",
                                "sandbox", NO_FRAMING])

INLINE_SCRIPT = re.compile(rb"<script\b(?![^>]*\ssrc\s*=)[^>]*>(.*?)</script\s*>", re.DOTALL | re.IGNORECASE)
SCRIPT_BY_URL = re.compile(rb"<script\b[^>]*\ssrc\s*=", re.IGNORECASE)


def figure_policy(html: bytes) -> str:
    """The policy of one figure document: its own inline scripts, by hash, and 'self' when it
    loads a script by URL (the API's pages load this server's plotly.js)."""
    hashes = sorted({base64.b64encode(hashlib.sha256(body.replace(b"\r\n", b"\n")).digest()).decode()
                     for body in INLINE_SCRIPT.findall(html)})
    sources = (["'self'"] if SCRIPT_BY_URL.search(html) else []) + [f"'sha256-{h}'" for h in hashes]
    return "; ".join([
        "default-src 'none'", "script-src " + (" ".join(sources) or "'none'"),
        "style-src 'unsafe-inline'", "img-src data: blob:", "base-uri 'none'",
        "form-action 'none'", "sandbox allow-scripts allow-downloads", NO_FRAMING])


def figure_file_policy(path: Path) -> str:
    """figure_policy of a stored file, recomputed only when the file changes."""
    stat = path.stat()
    return _cached_file_policy(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _cached_file_policy(path: str, mtime_ns: int, size: int) -> str:
    return figure_policy(Path(path).read_bytes())
