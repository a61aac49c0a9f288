"""Downloads from Explore, Compare and Generate: per-byte and per-patch CSV and JSON, parsed and
compared with the API's own numbers; chart PNGs named for what they show; and no chart anywhere
offers Plotly's "Share chart" (an upload of the chart, with the user's text, to Plotly's cloud)."""
from __future__ import annotations

import pytest

from page_helpers import download, explore, generated, plot, wait_compared

TEXT = "Bytes, not tokens: 今天 🍕 naïve.\nSecond line."
CLOUD_WORDS = ("share", "cloud", "chart studio")


def test_explore_downloads_equal_the_api(page):
    explore(page, TEXT)
    page.select_option("#mode", "entropy")
    page.fill("#threshold", "1")
    page.wait_for_function("() => document.getElementById('threshold-value').value === '1.00'")
    api = page.request.post("/api/patch", data={"text": TEXT, "mode": "entropy", "threshold": 1.0}).json()

    name, rows = download(page, "#downloads", "bytes.csv")
    assert name == "blt-explore-bytes.csv"
    assert [int(r["byte"]) for r in rows] == api["bytes"]
    assert [float(r["entropy"]) for r in rows] == api["entropies"]            # unrounded
    assert [int(r["patch"]) for r in rows] == api["patch_ids"]
    assert [int(r["patch_start"]) for r in rows] == [api["patch_starts"][j] for j in api["patch_ids"]]
    assert [int(r["char_index"]) for r in rows] == api["char_index"]
    assert [r["char"] for r in rows] == [TEXT[k] for k in api["char_index"]]  # the whole character, raw
    name, doc = download(page, "#downloads", "bytes.json")
    assert name == "blt-explore-bytes.json"
    assert doc["about"]["mode"] == "entropy" and float(doc["about"]["threshold"]) == 1.0 and doc["about"]["text"] == TEXT
    assert [(r["byte"], r["entropy"], r["patch"]) for r in doc["rows"]] == \
        list(zip(api["bytes"], api["entropies"], api["patch_ids"]))

    name, patches = download(page, "#downloads", "patches.csv")
    assert name == "blt-explore-patches.csv"
    assert [(int(p["start"]), int(p["length"])) for p in patches] == list(zip(api["patch_starts"], api["patch_lengths"]))
    assert "".join(p["text"] for p in patches) == TEXT
    for p in patches:
        s, n = int(p["start"]), int(p["length"])
        assert float(p["mean_entropy"]) == pytest.approx(sum(api["entropies"][s:s + n]) / n)
    name, doc = download(page, "#downloads", "patches.json")
    assert name == "blt-explore-patches.json" and [p["length"] for p in doc["rows"]] == api["patch_lengths"]
    assert page.errors == []


def test_compare_downloads_equal_the_api(page):
    page.goto("/compare")
    page.wait_for_selector("#modes article")
    page.fill("#threshold", "1.3")
    page.fill("#text", TEXT)
    wait_compared(page, TEXT)
    page.wait_for_function("() => location.hash.includes('threshold=1.3')")
    api = page.request.post("/api/compare", data={"text": TEXT, "threshold": 1.3}).json()["modes"]

    name, rows = download(page, "#downloads", "bytes.csv")
    assert name == "blt-compare-bytes.csv"
    assert [int(r["byte"]) for r in rows] == list(TEXT.encode())
    for mode, result in api.items():
        ids = [j for j, n in enumerate(result["patch_lengths"]) for _ in range(n)]
        assert [int(r[f"patch_{mode}"]) for r in rows] == ids, mode
    name, doc = download(page, "#downloads", "patches.json")
    assert name == "blt-compare-patches.json" and float(doc["about"]["threshold"]) == 1.3
    for mode, result in api.items():
        mine = [r for r in doc["rows"] if r["mode"] == mode]
        assert [(r["start"], r["length"]) for r in mine] == list(zip(result["patch_starts"], result["patch_lengths"]))
        assert "".join(r["text"] for r in mine) == TEXT
    assert page.errors == []


def test_generate_downloads_equal_the_api(page):
    page.goto("/generate")
    page.wait_for_function("() => document.getElementById('mode').options.length > 0")
    page.fill("#prompt", "The patch")
    page.fill("#max_new_bytes", "24")
    page.fill("#seed", "5")
    with page.expect_request("**/api/generate/stream") as sent:
        page.click("#start")
    assert generated(page) in ("max_new_bytes", "eos")
    api = page.request.post("/api/generate", data=sent.value.post_data_json).json()

    name, rows = download(page, "#downloads", "bytes.csv")
    assert name == "blt-generate-bytes.csv"
    assert [int(r["byte"]) for r in rows] == api["bytes"]
    assert [float(r["entropy"]) for r in rows] == pytest.approx(api["entropies"], abs=1e-5)
    assert [r["starts_patch"] == "true" for r in rows] == api["starts_patch"]
    name, doc = download(page, "#downloads", "patches.json")
    assert name == "blt-generate-patches.json" and doc["about"]["request"]["seed"] == 5
    starts = [i for i, s in enumerate(api["starts_patch"]) if s or i == 0]
    assert [r["start"] for r in doc["rows"]] == starts
    assert "".join(r["text"] for r in doc["rows"]) == api["text"]
    assert page.errors == []


def save_png(page, chart: str) -> tuple[str, bytes]:
    """Click the camera of the chart `chart`: (file name, first bytes)."""
    page.hover(plot(chart))
    with page.expect_download() as info:
        page.click(f"{chart} .modebar-btn[data-title='Download plot as a PNG']")
    return info.value.suggested_filename, open(info.value.path(), "rb").read()


def test_chart_pngs_are_named_for_what_they_show(page):
    explore(page, TEXT)
    page.select_option("#mode", "space")
    name, data = save_png(page, "#entropy-plot")      # the chart and its canvas overlay, as one image
    assert name == "blt-explore-entropy-space.png" and data.startswith(b"\x89PNG") and len(data) > 10_000
    assert save_png(page, "#histogram")[0] == "blt-explore-patch-sizes-space.png"
    page.goto("/compare")
    assert save_png(page, "#languages-plot")[0] == "blt-compare-languages.png"
    page.goto("/figures")
    first = page.evaluate("fetch('/api/figures').then((r) => r.json()).then((f) => f[0].name)")
    assert save_png(page, "#figure-preview")[0] == f"blt-figure-{first}.png"
    assert page.errors == []


@pytest.mark.parametrize("path, ready", [("/", "#entropy-plot"), ("/compare", "#languages-plot"),
                                         ("/generate", "#entropy-plot"), ("/figures", "#figure-preview"),
                                         ("/scaling", "#scaling-figures div"), ("/api/figures/languages?format=html", "div")])
def test_no_chart_offers_to_share_it_with_plotly_cloud(page, path, ready):
    page.goto(path)
    if path == "/generate":
        page.wait_for_function("() => document.getElementById('mode').options.length > 0")
        page.fill("#max_new_bytes", "4")
        page.click("#start")
        generated(page)
    page.wait_for_selector(f"{ready} .modebar-btn", state="attached")
    titles = page.eval_on_selector_all(".modebar-btn", "buttons => buttons.map((b) => b.dataset.title.toLowerCase())")
    assert "download plot as a png" in titles
    assert not [t for t in titles if any(word in t for word in CLOUD_WORDS)], titles
    assert page.errors == []
