"""Every page in headless Chromium: loads without console errors, draws its Plotly graphs, and
behaves as users see it (instant re-patching that matches the API, streamed generation with Stop,
downloads, no XSS). Screenshots go to $BLT_SCREENSHOTS/<page>.png (default: a temporary folder;
`BLT_SCREENSHOTS=docs/screenshots` refreshes the README's)."""
from __future__ import annotations

import json
import math
import random
import os
import re
import tempfile
import time
from pathlib import Path

import pytest
import torch

from blt_core.config import PATCHING_MODES
from blt_core.patching import start_mask

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("BLT_SCREENSHOTS") or Path(tempfile.gettempdir()) / "blt-studio-screenshots")
TEMPLATES = REPO / "templates"


def plot(selector: str) -> str:
    """A Plotly graph drawn into `selector` (plotly.js marks the div and adds its svg)."""
    return f"{selector}.js-plotly-plot svg.main-svg"


def screenshot(page, name: str, through: str | None = None) -> None:
    """$BLT_SCREENSHOTS/<name>.png: what the window shows, or with `through`, the page from its top
    to the bottom of that element (below the fold too)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = str(SCREENSHOTS / f"{name}.png")
    if through is None:
        page.screenshot(path=path)
        return
    bottom = page.evaluate("(s) => document.querySelector(s).getBoundingClientRect().bottom + window.scrollY", through)
    page.screenshot(path=path, full_page=True,
                    clip={"x": 0, "y": 0, "width": page.viewport_size["width"], "height": math.ceil(bottom) + 12})


def tokens_shown(page) -> None:
    """Wait until the "Beside real tokenizers" panel shows the text of the page's textarea."""
    page.wait_for_function("""() => document.getElementById('tokens').renderedText === document.getElementById('text').value
        && !document.getElementById('tokens').hasAttribute('aria-busy')""")


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
    page.select_option("#mode", "entropy")
    text = page.input_value("#text")
    api_calls = []
    page.on("request", lambda r: api_calls.append(r.url) if "/api/" in r.url else None)
    counts = {}
    for threshold in ("0.50", "2.50"):
        page.fill("#threshold", threshold)
        # re-patched at the next animation frame
        page.wait_for_function("(t) => document.getElementById('threshold-value').value === t", arg=threshold)
        counts[threshold] = patch_count(page)
        # re-patched in the browser: the chips follow without a server round trip
        assert page.locator("#chips .chip").count() == counts[threshold]
        api = page.request.post("/api/patch", data={"text": text, "mode": "entropy", "threshold": float(threshold)})
        assert api.ok, api.text()
        assert api.json()["stats"]["patches"] == counts[threshold], threshold
    assert counts["0.50"] > counts["2.50"]
    assert api_calls == [], "moving the threshold must not call the server"
    assert page.inner_text("#stat-patches") == str(counts["2.50"])
    tokens_shown(page)
    page.hover("#chips .chip >> nth=2")                       # a patch's bytes and the next bytes guessed
    page.wait_for_selector("#detail .candidate")
    screenshot(page, "explore", through="#entropy-plot")    # patches, GPT-2/GPT-4/GPT-4o tokens, the entropy trace
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


TEXTS = ["The river was quiet that morning.", "def f(x):\n    return x ** 2\n", "今天天气很好 🍕🚀 naïve café"]


def test_byte_patches_in_the_browser_equal_the_api(page):
    """patchBytes (what Explore draws) on /api/entropy's entropies gives /api/patch's patches,
    for every mode, with and without max_patch_length, on ASCII, code and multi-byte text."""
    page.goto("/")
    for text in TEXTS:
        analysis = page.request.post("/api/entropy", data={"text": text}).json()
        for mode in ("entropy", "entropy_monotonic", "static", "space"):
            for threshold, max_patch_length in ((0.5, None), (1.5, 3), (2.5, None)):
                body = {"text": text, "mode": mode, "threshold": threshold, "patch_size": 3}
                if max_patch_length:
                    body["max_patch_length"] = max_patch_length
                api = page.request.post("/api/patch", data=body).json()
                got = page.evaluate("""async ([analysis, body]) => {
                    const { patchBytes } = await import("/static/js/patching.js");
                    const { patches, patchIds } = patchBytes(analysis.bytes, analysis.entropies, {
                        mode: body.mode, threshold: body.threshold, patchSize: body.patch_size,
                        maxPatchLength: body.max_patch_length ?? null });
                    return { starts: patches.map((p) => p.start), lengths: patches.map((p) => p.length), patchIds };
                }""", [analysis, body])
                assert got == {"starts": api["patch_starts"], "lengths": api["patch_lengths"],
                               "patchIds": api["patch_ids"]}, body


def test_user_text_is_never_html(page):
    open_explore(page)
    payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    page.fill("#text", payload)
    page.wait_for_function("() => document.getElementById('chips').textContent.includes('<img')")
    page.hover(plot("#entropy-plot"))
    assert_inert(page)
    page.goto("/compare")
    page.fill("#text", payload)
    page.wait_for_function("() => document.getElementById('modes').textContent.includes('<img')")
    assert_inert(page)
    assert page.errors == []


def assert_inert(page):
    """The payload was shown as text: nothing ran, no element was made from it."""
    assert page.evaluate("window.__xss") is None
    assert page.locator("main img, main script").count() == 0


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
    ("/scaling", "scaling", "#scaling-figures .js-plotly-plot svg.main-svg"),
    ("/api", "api", "#api-endpoints section"),
])
def test_page_loads_without_errors(page, path, name, ready):
    page.goto(path)
    page.wait_for_selector(ready)
    page.wait_for_load_state("networkidle")
    through = None
    if name == "compare":
        assert page.locator("#modes article").count() >= 4
        assert page.locator("#languages-table tbody tr").count() > 5
        tokens_shown(page)
        through = "#tokens"                                  # every mode's patches and the BPE tokens
    if name == "scaling":  # one drawn graph per figure section (scaling and threshold sweep in plot_data/)
        page.wait_for_function("() => document.querySelectorAll('#scaling-figures section').length === [...document"
                               ".querySelectorAll('#scaling-figures .js-plotly-plot')].filter((d) => d.querySelector"
                               "('svg.main-svg')).length")
        assert page.locator("#scaling-figures section").count() >= 2
    if name == "api":      # every page's "JSON twin" link lands on its endpoint's section
        anchors = {a for t in TEMPLATES.glob("*.html") for a in re.findall(r'href="/api#([\w-]+)"', t.read_text())}
        assert len(anchors) >= 8
        for anchor in anchors:
            assert page.locator(f"section#{anchor}").count() == 1, anchor
    screenshot(page, name, through)
    assert page.errors == []


def test_badge_says_random_weights_for_an_untrained_model(page):
    models = page.request.get("/api/models").json()
    models["model"].update(trained=False, name="random:blt-tiny")
    page.route("**/api/models", lambda route: route.fulfill(json=models))
    page.goto("/figures")
    page.wait_for_function("() => document.getElementById('model-badge').textContent.includes('random weights')")
    assert page.inner_text("#model-badge").startswith("random:blt-tiny · random weights")


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
