"""The pages through Flask's test client: HTML that a strict Content-Security-Policy allows (no inline
scripts, handlers or styles; nothing from other origins), and plotly.js served from the package."""
from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from app import create_app
from app.pages import plotly_csp_style_src

PAGES = {"/": "Explore", "/generate": "Generate", "/compare": "Compare", "/corpus": "Corpus", "/scaling": "Scaling",
         "/figures": "Figures", "/api": "API"}
STATIC_JS = Path(__file__).resolve().parents[1] / "static" / "js"


@pytest.fixture(scope="module")
def client():
    return create_app({"TESTING": True}).test_client()


@pytest.mark.parametrize("path", PAGES)
def test_page_is_html_a_strict_csp_allows(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert f"<title>{PAGES[path]} · BLT Studio</title>" in html
    assert '<script defer src="/static/vendor/plotly.min.js?v=' in html
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert len(scripts) >= 3                                   # plotly.js, the badge, the page's module
    for attrs, body in scripts:
        assert body.strip() == "", f"inline script in {path}"
        assert re.search(r'\bsrc="/static/', attrs), attrs
    assert not re.search(r"""\b(?:src|href)=["']?(?:https?:)?//""", html), "reference to another origin"
    assert not re.search(r"\son[a-z]+\s*=", html, flags=re.I), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html, flags=re.I), "inline style attribute"
    assert "<style" not in html


def test_nav_marks_the_current_page(client):
    html = client.get("/compare").get_data(as_text=True)
    assert re.findall(r'<a href="([^"]+)" aria-current="page">', html) == ["/compare"]
    for path in PAGES:
        assert f'href="{path}"' in html


def test_plotly_js_comes_from_the_installed_package_with_a_long_cache(client):
    response = client.get("/static/vendor/plotly.min.js?v=1")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.cache_control.max_age == 365 * 24 * 3600
    assert response.get_data()[:40].lstrip().startswith(b"/**\n* plotly.js v")


def test_plotly_css_is_served_so_plotly_needs_no_inline_style(client):
    """Each <style> plotly.js would insert has a linked sheet with the id plotly.js checks for."""
    html = client.get("/").get_data(as_text=True)
    links = re.findall(r'<link id="([^"]+)" class="no-inline-styles" rel="stylesheet" href="([^"]+)">', html)
    assert "plotly.js-style-global" in dict(links) and len(links) >= 2
    for _sheet_id, href in links:
        response = client.get(href)
        assert response.status_code == 200 and response.mimetype == "text/css"
        assert response.cache_control.max_age == 365 * 24 * 3600
    glob = client.get(dict(links)["plotly.js-style-global"]).get_data(as_text=True)
    assert ".js-plotly-plot .plotly .main-svg{position:absolute;" in glob
    assert client.get("/static/vendor/plotly-css/unknown.css").status_code == 404


def test_every_page_module_and_its_imports_are_served(client):
    """Each module a template loads is served as JavaScript, and each relative import resolves."""
    modules = set()
    for path in PAGES:
        modules.update(re.findall(r'<script type="module" src="/static/js/([\w.]+)\?v=\w+"', client.get(path).get_data(as_text=True)))
    assert {"badge.js", "explore.js", "generate.js", "compare.js", "scaling.js", "figures.js", "apidocs.js"} <= modules
    todo = list(modules)
    while todo:
        for imported in re.findall(r'from "\./([\w.]+)"', (STATIC_JS / todo.pop()).read_text()):
            if imported not in modules:
                modules.add(imported)
                todo.append(imported)
    for module in modules:
        response = client.get(f"/static/js/{module}")
        assert response.status_code == 200, module
        assert response.mimetype in ("text/javascript", "application/javascript"), module


def test_csp_style_src_allows_only_plotly_fixed_style_attributes():
    """What a CSP needs for plotly.js's <sup>/<b>/<i> labels: exact hashes, no 'unsafe-inline'."""
    style_src = plotly_csp_style_src().split()
    sup = base64.b64encode(hashlib.sha256(b"font-size:70%").digest()).decode()
    assert style_src[:2] == ["'self'", "'unsafe-hashes'"] and f"'sha256-{sup}'" in style_src
    assert "'unsafe-inline'" not in style_src and all(s.startswith("'sha256-") for s in style_src[2:])
