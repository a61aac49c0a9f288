"""Static files through Flask's test client: gzip for clients that take it (the same bytes once
decompressed), ETags and 304s, a year's immutable cache for versioned URLs, revalidation for
the rest, and every URL the pages write versioned."""
from __future__ import annotations

import gzip
import re

import pytest

from app.pages import PLOTLY_JS
from webapp_helpers import REPO, make_app

GZIP = {"Accept-Encoding": "gzip, deflate, br"}


@pytest.fixture(scope="module")
def client():
    return make_app().test_client()


def asset_urls(client) -> list[str]:
    html = client.get("/").get_data(as_text=True)
    return re.findall(r'(?:src|href)="(/static/[^"]+)"', html)


def test_every_asset_url_of_a_page_is_versioned(client):
    urls = asset_urls(client)
    assert any("plotly.min.js" in u for u in urls) and any(u.startswith("/static/js/") for u in urls)
    assert all(re.search(r"\?v=[\w.]+$", u) for u in urls), urls


@pytest.mark.parametrize("path, original", [
    ("/static/vendor/plotly.min.js", PLOTLY_JS), ("/static/js/ui.js", REPO / "static/js/ui.js"),
    ("/static/css/studio.css", REPO / "static/css/studio.css")])
def test_gzip_decompresses_to_the_same_bytes(client, path, original):
    plain = client.get(path)
    packed = client.get(path, headers=GZIP)
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain.headers and plain.get_data() == original.read_bytes()
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
    assert gzip.decompress(packed.get_data()) == original.read_bytes()
    assert plain.headers["ETag"] != packed.headers["ETag"]
    assert packed.mimetype == plain.mimetype


def test_plotly_js_shrinks_to_under_a_third(client):
    packed = client.get("/static/vendor/plotly.min.js?v=1", headers=GZIP)
    assert len(packed.get_data()) < PLOTLY_JS.stat().st_size / 3


def test_versioned_urls_are_immutable_for_a_year_the_rest_revalidate(client):
    for url in asset_urls(client):
        response = client.get(url, headers=GZIP)
        assert response.cache_control.max_age == 365 * 24 * 3600 and response.cache_control.immutable, url
        assert response.cache_control.public, url
    bare = client.get("/static/js/ui.js")            # as a module import reaches it
    assert bare.cache_control.no_cache and not bare.cache_control.max_age


@pytest.mark.parametrize("headers", [{}, GZIP])
def test_etag_answers_304(client, headers):
    first = client.get("/static/js/explore.js", headers=headers)
    again = client.get("/static/js/explore.js", headers={**headers, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


def test_gzip_refused_by_q0_is_not_sent(client):
    response = client.get("/static/js/ui.js", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in response.headers


def test_small_files_and_missing_files(client):
    assert client.get("/static/js/nope.js").status_code == 404
    assert client.get("/static/../app/api.py").status_code == 404
    svg = client.get("/static/favicon.svg", headers=GZIP)
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"


def test_version_changes_with_the_content(tmp_path):
    from app.static_files import Versions
    (tmp_path / "a.js").write_text("one")
    versions = Versions(tmp_path)
    first = versions.of("a.js")
    (tmp_path / "a.js").write_text("two!")
    assert versions.of("a.js") != first and versions.of("missing.js") is None
