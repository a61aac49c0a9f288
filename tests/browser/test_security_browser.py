"""The pages under the app's own security headers, in headless Chromium: every page draws its
Plotly graphs with no console error and no Content-Security-Policy violation, the offline figure
HTML renders under its own policy, and HTML typed into the pages is shown as text, never run."""
from __future__ import annotations

import pytest

from app import security

# Every CSP violation the page reports, as "<directive> <blocked uri>".
RECORD_VIOLATIONS = """window.__csp = [];
document.addEventListener("securitypolicyviolation",
                          (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));"""


@pytest.fixture
def page(page):
    page.add_init_script(RECORD_VIOLATIONS)
    return page


def graph(selector: str) -> str:
    """A Plotly graph drawn into the element(s) `selector`."""
    return f"{selector}.js-plotly-plot svg.main-svg"


def assert_clean(page):
    assert page.evaluate("window.__csp") == []
    assert page.errors == []


@pytest.mark.parametrize("path, ready", [
    ("/", graph("#entropy-plot")),
    ("/compare", graph("#languages-plot")),
    ("/scaling", graph("#scaling-figures div")),
    ("/figures", graph("#figure-preview")),
], ids=["explore", "compare", "scaling", "figures"])
def test_pages_draw_graphs_under_the_app_policy(page, path, ready):
    response = page.goto(path)
    assert response.headers["content-security-policy"] == security.PAGE_POLICY
    page.wait_for_selector(ready)
    page.hover(ready)                                     # hover labels are drawn too
    page.wait_for_load_state("networkidle")
    assert_clean(page)


def test_offline_figure_html_renders_under_its_own_policy(page):
    response = page.goto("/api/figures/languages?format=html")
    assert "'unsafe-inline'" not in response.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    page.wait_for_selector(graph("div.plotly-graph-div"))
    assert_clean(page)


PAYLOADS = {"img onerror": "<img src=x onerror=window.__xss=1>", "script": "<script>window.__xss=1</script>"}


def type_into(page, path: str, field: str, payload: str, shown_in: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    page.fill(field, "")
    page.type(field, payload)
    page.wait_for_function("([id, text]) => document.getElementById(id).textContent.includes(text)",
                           arg=[shown_in, payload])


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_html_in_explore_is_text(page, payload):
    type_into(page, "/", "#text", payload, "chips")
    page.hover(graph("#entropy-plot"))
    assert_inert(page)


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_html_in_compare_is_text(page, payload):
    type_into(page, "/compare", "#text", payload, "modes")
    assert_inert(page)


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_html_in_generate_prompt_is_text(page, payload):
    page.goto("/generate")
    page.wait_for_function("() => document.getElementById('mode').options.length > 0")
    page.type("#prompt", payload)
    page.fill("#max_new_bytes", "8")
    page.click("#start")
    page.wait_for_function("() => !['streaming', 'stopped'].includes(document.body.dataset.state)", timeout=30_000)
    assert payload in page.inner_text("#output")
    page.hover(graph("#entropy-plot"))
    assert_inert(page)


def assert_inert(page):
    """Shown as text: nothing ran, no element was made from it, nothing was even blocked."""
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, main script").count() == 0
    assert_clean(page)
