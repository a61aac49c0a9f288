"""Every page in headless Chromium: loads without console errors, draws its Plotly graphs, and
behaves as users see it (instant re-patching that matches the API, streamed generation with Stop,
downloads, no XSS). Screenshots go to docs/screenshots/<page>.png."""
from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import pytest
import torch

from blt_core.config import PATCHING_MODES
from blt_core.patching import start_mask

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def plot(selector: str) -> str:
    """A Plotly graph drawn into `selector` (plotly.js marks the div and adds its svg)."""
    return f"{selector}.js-plotly-plot svg.main-svg"


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def open_explore(page):
    page.goto("/")
    page.wait_for_selector(plot("#entropy-plot"))
    page.wait_for_function("() => document.body.dataset.patches !== undefined")


def patch_count(page) -> int:
    return int(page.evaluate("document.body.dataset.patches"))


def test_explore_renders_and_repatches_like_the_api(page):
    open_explore(page)
    assert page.locator("#model-badge").inner_text().startswith("blt-studio")
    assert page.locator("#chips .chip").count() == patch_count(page)
    text = page.input_value("#text")
    counts = {}
    for threshold in ("0.50", "2.50"):
        page.fill("#threshold", threshold)
        counts[threshold] = patch_count(page)
        # re-patched in the browser: the chips follow without a server round trip
        assert page.locator("#chips .chip").count() == counts[threshold]
        api = page.request.post("/api/patch", data={"text": text, "mode": "entropy", "threshold": float(threshold)})
        assert api.ok, api.text()
        assert api.json()["stats"]["patches"] == counts[threshold], threshold
    assert counts["0.50"] > counts["2.50"]
    assert page.inner_text("#stat-patches") == str(counts["2.50"])
    screenshot(page, "explore")
    assert page.errors == []


def random_case(rng: random.Random, mode: str) -> dict:
    """A random patching problem over T positions (BOS + bytes), with ties and float32 edge cases."""
    T = rng.randint(1, 48)
    entropies = torch.rand(T, generator=torch.Generator().manual_seed(rng.randrange(2**31))) * 4
    if rng.random() < 0.3:
        entropies = (entropies * 2).round() / 2          # many equal values: ties with the threshold
    ids = [1] + [rng.choice([32, 46, 10, rng.randrange(256), rng.randrange(48, 123)]) + 4 for _ in range(T - 1)]
    pick = rng.random()
    if pick < 0.3:
        threshold = float(entropies[rng.randrange(T)])   # exactly an entropy: '>' must be strict
    elif pick < 0.4:
        threshold = float(entropies[rng.randrange(T)]) - 1e-9   # differs from the entropy in float64 only
    else:
        threshold = rng.uniform(-1.0, 4.0)
    return {"mode": mode, "T": T, "entropies": entropies.tolist(), "ids": ids, "threshold": threshold,
            "patchSize": rng.randint(1, 6), "maxPatchLength": rng.choice([None, 1, 2, 3, 5, 8])}


def test_js_patching_rule_equals_start_mask(page):
    rng = random.Random(0)
    cases = [random_case(rng, PATCHING_MODES[i % len(PATCHING_MODES)]) for i in range(250)]
    expected = [start_mask(c["mode"], c["T"], entropies=torch.tensor([c["entropies"]]), ids=torch.tensor([c["ids"]]),
                           threshold=c["threshold"], patch_size=c["patchSize"],
                           max_patch_length=c["maxPatchLength"])[0].tolist() for c in cases]
    page.goto("/")
    got = page.evaluate("""async (cases) => {
        const { startMask } = await import("/static/js/patching.js");
        return cases.map((c) => startMask(c.mode, c.T, c));
    }""", cases)
    mismatches = [(c, e, g) for c, e, g in zip(cases, expected, got) if e != g]
    assert not mismatches, f"{len(mismatches)} of {len(cases)} differ; first: {mismatches[0]}"
    assert {c["mode"] for c in cases} == set(PATCHING_MODES)
    assert any(c["maxPatchLength"] for c in cases) and any(math.isclose(c["threshold"], e) for c in cases
                                                               for e in c["entropies"])


def test_user_text_is_never_html(page):
    open_explore(page)
    payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    page.fill("#text", payload)
    page.wait_for_function("() => document.getElementById('chips').textContent.includes('<img')")
    page.hover(plot("#entropy-plot"))
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, main script").count() == 0
    assert page.errors == []


def test_generation_streams_and_stops(page):
    page.goto("/generate")
    page.wait_for_function("() => document.getElementById('mode').options.length > 0")
    page.fill("#max_new_bytes", "1000")
    page.click("#start")
    page.wait_for_function("() => document.querySelectorAll('#output .chip').length >= 3")
    page.click("#stop-button")
    page.wait_for_function("() => document.body.dataset.state === 'stopped'")
    stopped_at = page.locator("#output .chip").count()
    assert int(page.inner_text("#stat-bytes")) < 1000
    # Stop closed the stream, so the server frees the model at once; the next generation runs to its end
    deadline = time.monotonic() + 2
    while page.request.get("/healthz").json()["model"]["generations_running"]:
        assert time.monotonic() < deadline, "the stopped generation still holds the model"
        time.sleep(0.05)
    page.fill("#max_new_bytes", "60")
    page.fill("#seed", "1")
    page.click("#start")
    page.wait_for_function("() => !['streaming', 'stopped'].includes(document.body.dataset.state)", timeout=30_000)
    assert page.evaluate("document.body.dataset.state") in ("max_new_bytes", "eos", "stop"), page.inner_text("#error")
    assert page.locator("#output .chip").count() >= 1
    assert 0 < int(page.inner_text("#stat-bytes")) <= 60
    assert page.inner_text("#output").strip() != ""
    page.wait_for_selector(plot("#entropy-plot"))
    assert stopped_at >= 3
    screenshot(page, "generate")
    assert page.errors == []


@pytest.mark.parametrize("path, name, ready", [
    ("/compare", "compare", plot("#languages-plot")),
    ("/scaling", "scaling", "#scaling-figures .js-plotly-plot svg.main-svg, #scaling-figures p"),
    ("/api", "api", "#api-endpoints section"),
])
def test_page_loads_without_errors(page, path, name, ready):
    page.goto(path)
    page.wait_for_selector(ready)
    page.wait_for_load_state("networkidle")
    if name == "compare":
        assert page.locator("#modes article").count() >= 4
        assert page.locator("#languages-table tbody tr").count() > 5
    screenshot(page, name)
    assert page.errors == []


def test_figures_page_downloads_a_file(page):
    page.goto("/figures")
    page.wait_for_selector(plot("#figure-preview"))
    assert page.locator("#file-table tbody tr").count() >= 1
    screenshot(page, "figures")
    link = page.locator("#figure-table a[download]", has_text="json").first
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.endswith(".json")
    figure = json.loads(open(download.path()).read())
    assert figure["data"]
    assert page.errors == []
