"""What every visitor gets in headless Chromium: plotly.js and the pages' files gzip-compressed
(decoding to the very files), every page usable at 390 px wide (nothing wider than the screen,
a compact nav), figure hovers that give the plotted values with their units, and no serious or
critical accessibility violation on any page, nor headings that skip a level (axe-core, from the
axe-playwright-python wheel)."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.pages import PLOTLY_JS

REPO = Path(__file__).resolve().parents[2]
PAGES = ["/", "/generate", "/compare", "/corpus", "/scaling", "/figures", "/api"]
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone(browser, server):
    context = browser.new_context(viewport=PHONE, base_url=server, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def settle(page):
    """Wait until the page's requests are done and its graphs are drawn."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)


def test_assets_arrive_gzipped_and_decode_to_the_files(page):
    seen = {}
    page.on("response", lambda r: seen.setdefault(r.url.split("?")[0].rsplit("/static/", 1)[-1], r)
            if "/static/" in r.url else None)
    page.goto("/")
    settle(page)
    for name, path in (("vendor/plotly.min.js", PLOTLY_JS), ("js/explore.js", REPO / "static/js/explore.js"),
                       ("css/studio.css", REPO / "static/css/studio.css")):
        response = seen[name]
        headers = response.all_headers()
        assert headers["content-encoding"] == "gzip" and "accept-encoding" in headers["vary"].lower(), name
        assert response.body() == path.read_bytes(), name              # Chromium decoded the gzip
        assert headers["etag"]
    plotly = seen["vendor/plotly.min.js"].all_headers()
    assert "immutable" in plotly["cache-control"] and "max-age=31536000" in plotly["cache-control"]
    sizes = page.evaluate("""() => performance.getEntriesByType('resource')
        .filter(e => e.name.includes('plotly.min.js')).map(e => [e.encodedBodySize, e.decodedBodySize])""")
    (encoded, decoded), = sizes
    assert decoded == PLOTLY_JS.stat().st_size and encoded < decoded / 3


@pytest.mark.parametrize("path", PAGES)
def test_page_fits_a_390px_screen(phone, path):
    phone.goto(path)
    settle(phone)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert phone.evaluate("document.querySelector('header').getBoundingClientRect().height") < 100
    # the nav scrolls sideways within itself: every page stays one tap away
    for link in phone.locator("header nav a").all():
        link.scroll_into_view_if_needed()
        assert link.is_visible()


def hover_text(page, div: str, curve: int = 0, point: int = 0) -> str:
    page.wait_for_selector(f"{div} .js-plotly-plot svg.main-svg, {div}.js-plotly-plot svg.main-svg")
    page.evaluate("([div, curve, point]) => Plotly.Fx.hover(document.querySelector(div), "
                  "[{curveNumber: curve, pointNumber: point}])", [div, curve, point])
    page.wait_for_selector(f"{div} .hoverlayer .hovertext")
    return page.evaluate("(div) => document.querySelector(`${div} .hoverlayer`).textContent", div)


def test_figure_hovers_give_values_with_units(page):
    page.goto("/scaling")
    page.wait_for_selector("#scaling-figures .js-plotly-plot")
    settle(page)
    plots = page.locator("#scaling-figures .js-plotly-plot")
    page.evaluate("() => document.querySelectorAll('#scaling-figures .js-plotly-plot')"
                  ".forEach((d, i) => d.id = `figure-${i}`)")
    assert plots.count() == 3
    scaling = hover_text(page, "#figure-0")
    assert "bits/byte" in scaling and "FLOPs" in scaling and "runs/" not in scaling and "0.00" not in scaling
    sweep = hover_text(page, "#figure-1")
    assert "bits/byte" in sweep and "bytes/patch" in sweep and "nats" in sweep
    assert page.errors == []


def test_stacked_subplots_do_not_overlap_on_a_phone(phone):
    phone.goto("/scaling")
    phone.wait_for_selector("#scaling-figures .js-plotly-plot")
    settle(phone)
    # the threshold sweep's two plot areas (Plotly's drag rectangles cover exactly them)
    rects = phone.evaluate("""() => ['xy', 'x2y2'].map(id => document.querySelectorAll('#scaling-figures '
        + '.js-plotly-plot')[1].querySelector(`.draglayer .${id} .nsewdrag`).getBoundingClientRect())
        .map(r => [r.top, r.bottom, r.left, r.right])""")
    (top1, bottom1, _, right1), (top2, _, _, right2) = rects
    assert bottom1 + 40 < top2                 # one above the other, room for the axis title between
    assert right1 <= PHONE["width"] and right2 <= PHONE["width"]


def axe_violations(browser, server, path: str, viewport: dict, prepare=None) -> list[dict]:
    """Serious and critical axe-core violations of a page, and its headings that skip a level
    (heading-order: moderate, but it breaks the outline screen readers navigate by); the page's CSP
    is bypassed so the axe script can be injected, nothing else changes."""
    from importlib.resources import files
    source = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
    context = browser.new_context(viewport=viewport, base_url=server, bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(path)
        settle(page)
        if prepare:
            prepare(page)
        page.add_script_tag(content=source)
        found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical' || v.id === 'heading-order')
            .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))""")
    finally:
        context.close()
    return found


def analysed_corpus(page):
    page.fill("#text", "Accessible results: a table, a chart, passages. " * 20)
    page.click("#analyse")
    page.wait_for_function("() => document.body.dataset.corpus === 'done'", timeout=60_000)


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("path", PAGES)
def test_no_serious_or_critical_accessibility_violations_nor_skipped_headings(browser, server, path, viewport):
    prepare = analysed_corpus if path == "/corpus" else None
    assert axe_violations(browser, server, path, viewport, prepare) == []
