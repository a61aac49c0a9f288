"""Security headers on every kind of response: pages, static files, API answers and errors,
server-sent events, stored files; and the three Content-Security-Policies (app/security.py)."""
from __future__ import annotations

import re

import pytest

from app import security
from webapp_helpers import make_app

FIGURE_HTML = (b"<html><head><script>window.PlotlyConfig = {};</script></head><body>"
               b"<script charset='utf-8'>/* plotly.js */</script></body></html>")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    exports = tmp_path_factory.mktemp("exports")
    (exports / "figure.html").write_bytes(FIGURE_HTML)
    (exports / "figure.svg").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    return make_app(EXPORT_DIR=str(exports), MAX_REQUEST_BYTES=1000).test_client()


def directives(policy: str) -> dict[str, str]:
    """'a b c; d' -> {'a': 'b c', 'd': ''}"""
    return {name: value.strip() for name, _, value in (part.strip().partition(" ") for part in policy.split(";"))}


RESPONSES = {
    "page": ("GET", "/", None),
    "page not found (HTML)": ("GET", "/no-such-page", None),
    "static module": ("GET", "/static/js/explore.js", None),
    "plotly.js": ("GET", "/static/vendor/plotly.min.js", None),
    "plotly css": ("GET", "/static/vendor/plotly-css/plotly.js-style-global.css", None),
    "healthz": ("GET", "/healthz", None),
    "api answer": ("POST", "/api/patch", {"text": "headers"}),
    "api 422": ("POST", "/api/patch", {}),
    "api 404": ("GET", "/api/nope", None),
    "api 405": ("GET", "/api/patch", None),
    "api 413": ("POST", "/api/entropy", {"text": "a" * 2000}),
    "server-sent events": ("POST", "/api/generate/stream", {"prompt": "a", "max_new_bytes": 2}),
    "figure json": ("GET", "/api/figures/languages", None),
    "figure html": ("GET", "/api/figures/languages?format=html", None),
    "stored data": ("GET", "/data/languages.json", None),
    "stored image": ("GET", "/images/figure.svg", None),
    "stored figure html": ("GET", "/visualizations/figure.html", None),
    "stored file 404": ("GET", "/data/..%2fREADME.md", None),
}


@pytest.mark.parametrize("method, url, body", RESPONSES.values(), ids=RESPONSES.keys())
def test_every_response_has_the_security_headers(client, method, url, body):
    response = client.open(url, method=method, json=body)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == "'none'"
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]


def test_page_policy_allows_scripts_from_this_server_only(client):
    policy = directives(client.get("/").headers["Content-Security-Policy"])
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'self'"
    assert "'unsafe-inline'" not in policy["style-src"] and policy["style-src"].startswith("'self'")
    assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"


def test_pages_hold_no_inline_script_or_style(client):
    """What makes the page policy workable: every script is a file, every stylesheet a link."""
    for url in ("/", "/generate", "/compare", "/scaling", "/figures", "/api"):
        html = client.get(url).get_data(as_text=True)
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], url
        assert "<style" not in html and " style=" not in html, url


def test_stored_files_run_no_script(client):
    policy = directives(client.get("/images/figure.svg").headers["Content-Security-Policy"])
    assert policy["default-src"] == "'none'" and "script-src" not in policy and "sandbox" in policy


@pytest.mark.parametrize("url", ["/visualizations/figure.html", "/api/figures/languages?format=html"])
def test_figure_html_allows_exactly_its_inline_scripts(client, url):
    response = client.get(url)
    policy = directives(response.headers["Content-Security-Policy"])
    expected = security.figure_policy(response.data)
    assert response.headers["Content-Security-Policy"] == expected
    sources = policy["script-src"].split()
    hashes = [s for s in sources if s.startswith("'sha256-")]
    assert len(hashes) == len(security.INLINE_SCRIPT.findall(response.data)) >= 2
    # the API's page loads this server's plotly.js; the stored (exported) file inlines it
    assert set(sources) - set(hashes) == ({"'self'"} if url.startswith("/api/") else set())
    assert "'unsafe-inline'" not in policy["script-src"]
    assert policy["default-src"] == "'none'" and "connect-src" not in policy
    assert policy["sandbox"] == "allow-scripts allow-downloads"


def test_figure_policy_hashes_the_script_text():
    """sha256 of 'alert(1)' in base64, as a browser computes it for <script>alert(1)</script>."""
    policy = security.figure_policy(b"<p><SCRIPT type='x'>alert(1)</script >")
    assert "script-src 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='" in policy
    assert "script-src 'none'" in security.figure_policy(b"<p>no script</p>")
    loads = security.figure_policy(b"<script src='/static/vendor/plotly.min.js'></script><script>alert(1)</script>")
    assert "script-src 'self' 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=';" in loads
