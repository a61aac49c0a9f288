"""Compare's languages chart is the server's languages figure (app/figures.py, defined once): every
script in a colour of its own, the note on why out-of-domain text scores badly shown whole above
the bars (desktop and phone), hovers that give the plotted values with their units, and the table
beside it listing the same rows."""
from __future__ import annotations

import re

import pytest

from page_helpers import plot

PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_languages_chart_is_the_server_figure_with_a_colour_per_script(page, viewport):
    if viewport:
        page.set_viewport_size(viewport)
    page.goto("/compare")
    page.wait_for_selector(plot("#languages-plot"))
    rows = page.request.get("/api/languages").json()["rows"]
    figure = page.request.get("/api/figures/languages?format=json").json()
    script_of = {r["language"]: r["script"] for r in rows}

    # the bars as drawn: each trace's language names and its bars' fill colours in the SVG
    traces = page.evaluate("""() => {
        const gd = document.getElementById('languages-plot');
        const groups = [...gd.querySelectorAll('.barlayer .trace.bars')];
        return gd._fullData.map((t, i) => ({ name: t.name, x: [...t.x],
            fills: [...new Set([...groups[i].querySelectorAll('.point path')].map((p) => p.style.fill))] }));
    }""")
    assert {language: t["name"] for t in traces for language in t["x"]} == script_of
    assert all(len(t["fills"]) == 1 for t in traces), traces            # one colour per script...
    colours = [t["fills"][0] for t in traces]
    assert len(set(colours)) == len(traces) == len(set(script_of.values())) > 10, colours   # ...none shared

    # the server's note, every word of it, drawn inside the chart (not cut at its edges); Plotly
    # draws each line of it as a text span of its own, so words are compared without spaces
    note, = [a["text"] for a in figure["layout"]["annotations"]]
    shown = page.locator("#languages-plot .annotation-text").first
    assert shown.is_visible()
    drawn = re.sub(r"\s", "", shown.text_content())
    assert drawn == re.sub(r"\s|<br>", "", note) and "outofitsdomain" in drawn and "canpass8" in drawn
    box, svg = shown.bounding_box(), page.locator("#languages-plot svg.main-svg").first.bounding_box()
    assert svg["x"] <= box["x"] and box["x"] + box["width"] <= svg["x"] + svg["width"] + 1
    assert svg["y"] <= box["y"]

    # hovers: the plotted value and the model's loss, with units
    first = max(rows, key=lambda r: r["mean_patch_bytes"])
    page.evaluate("() => Plotly.Fx.hover(document.getElementById('languages-plot'), [{curveNumber: 0, pointNumber: 0}])")
    page.wait_for_selector("#languages-plot .hoverlayer .hovertext")
    hover = page.locator("#languages-plot .hoverlayer").text_content()
    assert f"{first['mean_patch_bytes']:.2f} bytes/patch" in hover and f"{first['bpb']:.3f} bits/byte" in hover

    assert page.locator("#languages-table tbody tr").count() == len(rows)
    assert page.errors == []
