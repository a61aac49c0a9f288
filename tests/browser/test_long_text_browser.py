"""A long text on Explore: the chart opens on its first kilobyte with a range slider, the chips
are those of the chart's window and follow it, the window is part of the link, and the page asks
the server for the entropies only (it has the text)."""
from __future__ import annotations

from page_helpers import explore, page_threshold, wait_explored

TEXT = "The quick brown fox jumps over the lazy dog. " * 70          # 3,150 bytes


def window(page) -> tuple[int, int]:
    """The first and last patch whose chips are shown."""
    ids = page.eval_on_selector_all("#chips .chip", "chips => chips.map((c) => Number(c.dataset.patch))")
    return ids[0], ids[-1]


def test_long_text_chips_follow_the_charts_window_and_the_link_keeps_it(new_page):
    page = new_page()
    explore(page)
    with page.expect_request("**/api/entropy") as sent:
        page.fill("#text", TEXT)
    wait_explored(page, TEXT)
    assert sent.value.post_data_json == {"text": TEXT, "fields": ["entropies"]}
    api = page.request.post("/api/patch", data={"text": TEXT, "threshold": page_threshold(page)}).json()
    ids = api["patch_ids"]
    assert page.locator("#entropy-plot .rangeslider-container").count() == 1
    assert window(page) == (0, ids[1023])
    assert page.inner_text("#chips-window").startswith(f"Patches 0–{ids[1023]} of {len(api['patch_lengths'])}, bytes 0–1023")

    page.evaluate("Plotly.relayout('entropy-plot', {'xaxis.range': [1999.5, 2499.5]})")   # as the range slider does
    page.wait_for_function("() => document.getElementById('chips-window').textContent.includes('bytes 2000–2499')")
    assert window(page) == (ids[2000], ids[2499])
    page.wait_for_function("() => location.hash.includes('view=2000-2500')")

    again = new_page()
    again.goto(page.url)
    wait_explored(again, TEXT)
    assert window(again) == (ids[2000], ids[2499])
    assert again.evaluate("document.getElementById('entropy-plot').layout.xaxis.range") == [1999.5, 2499.5]
    assert page.errors == [] and again.errors == []
