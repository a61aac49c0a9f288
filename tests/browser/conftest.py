"""Browser tests: Debian's Chromium (never a downloaded browser) driven by Playwright against the
real app served by werkzeug on a free loopback port, with the shipped model on CPU."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}


@contextmanager
def serve(**config):
    """Base URL of the app, configured by `config`, on a free port of 127.0.0.1 with the shipped model."""
    from werkzeug.serving import make_server

    from app import create_app

    # the app's own security headers, strict Content-Security-Policy included (app/security.py)
    app = create_app({"MODEL": str(Path(__file__).resolve().parents[2] / "models" / "blt-studio"), "DEVICE": "cpu",
                      **config})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(5)


@pytest.fixture(scope="session")
def server():
    with serve() as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium (make setup-test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[test])")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class ConsoleLog(list):
    """Console errors, page errors and failed requests seen by a page."""

    def attach(self, page):
        page.on("console", lambda m: self.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.append(f"request failed: {r.url} {r.failure}")
                if "aborted" not in (r.failure or "").lower() else None)
        return self


@pytest.fixture
def new_page(browser, server):
    """new_page(base_url=server) -> a fresh page (own context, so downloads and storage don't leak)
    whose console errors are collected in `page.errors`; closed after the test."""
    contexts = []

    def make(base_url=server):
        context = browser.new_context(viewport=VIEWPORT, base_url=base_url, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.errors = ConsoleLog().attach(page)
        page.set_default_timeout(15_000)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture(scope="session")
def one_slot_server(tmp_path_factory):
    """The app with one generation slot (a second generation gets 429) and an export folder of
    its own, empty as on a fresh clone: yields (base URL, export folder)."""
    exports = tmp_path_factory.mktemp("exports")
    with serve(GENERATION_SLOTS=1, EXPORT_DIR=str(exports)) as url:
        yield url, exports
