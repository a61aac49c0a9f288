"""Chips and chart are linked, and chips are keyboard widgets: hovering or focusing a chip lights
its bytes on the entropy trace and details them (character, hex, entropy and the entropy model's
top next bytes, as /api/entropy/detail gives them); hovering the trace lights its chip; Tab reaches
the chips and the arrow keys move between them, each named for what it holds."""
from __future__ import annotations

from page_helpers import chip_text, explore, generated, page_threshold

TEXT = "The quick brown fox 🦊 jumps over the lazy dog."


def band(page, chart="#entropy-plot") -> str:
    return page.get_attribute(f".plot-wrap:has({chart}) canvas.overlay", "data-band")


def hover_point(page, chart: str, i: int, y: float) -> None:
    """Move the mouse onto point (i, y) of the chart, where Plotly puts it."""
    page.locator(chart).scroll_into_view_if_needed()
    x, top = page.evaluate("""([chart, i, y]) => {
        const gd = document.querySelector(chart), box = gd.getBoundingClientRect(), L = gd._fullLayout;
        return [box.left + L._size.l + L.xaxis.l2p(i), box.top + L._size.t + L.yaxis.l2p(y)]; }""", [chart, i, y])
    page.mouse.move(x, top)


def label(api: dict, j: int) -> str:
    s, n = api["patch_starts"][j], api["patch_lengths"][j]
    mean = sum(api["entropies"][s:s + n]) / n
    where = f"byte {s}" if n == 1 else f"bytes {s}–{s + n - 1}"
    return f"patch {j} · {where} · “{chip_text(TEXT.encode(), s, s + n)}” · mean entropy {mean:.2f} nats"


def test_explore_chip_lights_its_bytes_and_details_them(page):
    explore(page, TEXT)
    api = page.request.post("/api/patch", data={"text": TEXT, "threshold": page_threshold(page)}).json()
    j = max(range(len(api["patch_lengths"])), key=lambda k: api["patch_lengths"][k])     # the longest patch
    s, n = api["patch_starts"][j], api["patch_lengths"][j]
    page.hover(f"#chips .chip[data-patch='{j}']")
    assert band(page) == f"{s}-{s + n}"
    assert page.inner_text("#detail h3").startswith(f"Patch {j} · bytes {s}–{s + n - 1}")
    page.wait_for_selector("#detail .candidate")
    detail = page.request.post("/api/entropy/detail", data={"text": TEXT, "start": s, "length": n, "top_k": 5}).json()
    rows = page.locator("#detail tbody tr")
    assert rows.count() == n
    for k, position in enumerate(detail["positions"]):
        shown = rows.nth(k).locator(".candidate").evaluate_all("cs => cs.map((c) => [c.dataset.next, Number(c.dataset.p)])")
        assert shown == [[str(c.get("byte", c.get("token"))), c["p"]] for c in position["next"]]
        assert rows.nth(k).locator("td").nth(3).inner_text() == f"{api['entropies'][s + k]:.3f}"
    page.mouse.move(0, 0)
    assert band(page) == ""
    assert page.errors == []


def test_explore_trace_hover_lights_the_chip(page):
    explore(page, TEXT)
    api = page.request.post("/api/patch", data={"text": TEXT, "threshold": page_threshold(page)}).json()
    for i in (3, len(api["bytes"]) - 2):
        hover_point(page, "#entropy-plot", i, api["entropies"][i])
        j = api["patch_ids"][i]
        page.wait_for_selector(f"#chips .chip.linked[data-patch='{j}']")
        assert page.locator("#chips .chip.linked").count() == 1
        s, n = api["patch_starts"][j], api["patch_lengths"][j]
        assert band(page) == f"{s}-{s + n}"
        assert page.inner_text("#detail h3") == f"Byte {i} · patch {j}"
    assert page.errors == []


def test_explore_chips_take_keyboard_focus_with_meaningful_names(page):
    explore(page, TEXT)
    api = page.request.post("/api/patch", data={"text": TEXT, "threshold": page_threshold(page)}).json()
    last = len(api["patch_lengths"]) - 1
    page.focus("#copy-link")
    page.keyboard.press("Tab")                                  # the chips are one stop in the tab order
    focused = lambda: page.evaluate("[document.activeElement.dataset.patch, document.activeElement.getAttribute('aria-label')]")
    assert focused() == ["0", label(api, 0)]
    page.keyboard.press("ArrowRight")
    assert focused() == ["1", label(api, 1)]
    s, n = api["patch_starts"][1], api["patch_lengths"][1]
    assert band(page) == f"{s}-{s + n}"                         # focus links like hover
    page.keyboard.press("End")
    assert focused() == [str(last), label(api, last)]
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "copy-link"
    page.keyboard.press("Tab")                                  # back to the chip focused last
    assert focused()[0] == str(last)
    page.keyboard.press("Home")
    assert focused()[0] == "0"
    assert page.errors == []


def test_compare_links_the_same_bytes_across_modes(page):
    page.goto("/compare")
    page.wait_for_selector("#modes article[data-mode='static'] .chip")
    page.hover("#modes article[data-mode='static'] .chip[data-patch='2']")
    assert page.locator("#modes .chip.linked").count() == 4                 # one chip per mode holds that byte
    page.focus("#modes article[data-mode='space'] .chip[tabindex='0']")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')").startswith("space patch 1 · ")
    assert page.errors == []


def test_generate_links_chips_and_trace(page):
    page.goto("/generate")
    page.wait_for_function("() => document.getElementById('mode').options.length > 0")
    page.fill("#max_new_bytes", "40")
    page.fill("#seed", "2")
    page.click("#start")
    generated(page)
    rows = page.evaluate("""() => [...document.querySelectorAll('#output-chips .chip')].map((c) => c.dataset.patch)""")
    assert len(rows) >= 3
    page.hover("#output-chips .chip[data-patch='1']")
    start, end = map(int, band(page).split("-"))
    assert end > start
    y = page.evaluate("(i) => document.getElementById('entropy-plot').data[0].y[i]", start)
    hover_point(page, "#entropy-plot", start, y)
    page.wait_for_selector("#output-chips .chip.linked[data-patch='1']")
    page.focus("#copy-link")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')").startswith("patch 0 · ")
    assert page.errors == []
