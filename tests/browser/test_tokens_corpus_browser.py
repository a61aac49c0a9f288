"""The token panel (Explore, Compare) and the Corpus page in headless Chromium: token counts as
tiktoken itself counts them, and a corpus analysed in the page whose JSON and CSV downloads,
parsed back, equal the API's answer for the same text."""
from __future__ import annotations

import csv
import io
import json

import pytest

from bpe_reference import tiktoken_encodings
from test_pages_browser import screenshot

TOKEN_PANEL = "#tokens[data-tokens]"


@pytest.fixture(scope="module")
def reference():
    return tiktoken_encodings()


def panel_counts(page, text: str) -> dict[str, int]:
    """The panel's counts once it shows `text` (the source textarea's value)."""
    page.wait_for_function("""(text) => document.querySelector('#text').value === text
        && document.querySelector('#tokens').renderedText === text""", arg=text)
    return json.loads(page.get_attribute("#tokens", "data-tokens"))


@pytest.mark.parametrize("path", ["/", "/compare"])
def test_token_panel_counts_equal_tiktoken(page, path, reference):
    page.goto(path)
    page.wait_for_selector(TOKEN_PANEL)
    text = page.input_value("#text")
    counts = panel_counts(page, text)
    assert counts == {name: len(enc.encode_ordinary(text)) for name, enc in reference.items()}
    # a chip per whole-character span: as many chips as spans, as many tokens as tiktoken's
    assert page.locator("#tokens .token-chips .chip").count() > 0
    page.locator("#examples button", has_text="Chinese").click()
    chinese = page.input_value("#text")
    counts = panel_counts(page, chinese)
    assert counts == {name: len(enc.encode_ordinary(chinese)) for name, enc in reference.items()}
    # a character split between tokens is one outlined chip naming its tokens
    page.select_option("#tokens select", "r50k_base")
    multi = page.locator("#tokens .chip.multi")
    assert multi.count() > 0 and "tokens (" in multi.first.get_attribute("title")
    assert "".join(page.locator("#tokens .token-chips .chip").all_inner_texts()) == chinese
    assert page.errors == []


def test_token_panel_follows_typing(page, reference):
    page.goto("/")
    page.wait_for_selector(TOKEN_PANEL)
    page.fill("#text", "")
    page.type("#text", "naïve 👍🏽 tokens")
    counts = panel_counts(page, "naïve 👍🏽 tokens")
    assert counts == {name: len(enc.encode_ordinary("naïve 👍🏽 tokens")) for name, enc in reference.items()}
    row = page.locator("#tokens tbody tr").first.inner_text()
    assert row.startswith("BLT") and "patches" in row
    assert page.errors == []


def test_token_panel_counts_the_patches_the_page_shows(page):
    """Explore's BLT row follows the page's threshold and mode, so its patch count is the page's."""
    page.goto("/")
    page.wait_for_selector(TOKEN_PANEL)
    page.wait_for_function("() => document.body.dataset.patches !== undefined")
    for threshold in ("2.5", "1.2"):
        page.evaluate("""(v) => { const t = document.querySelector('#threshold'); t.value = v;
            t.dispatchEvent(new Event('input', {bubbles: true})); }""", threshold)
        page.wait_for_function("""(v) => document.querySelector('#tokens tbody tr')?.textContent
            .includes(`θ ${Number(v).toFixed(3)} nats)`)""", arg=threshold)
        row = page.locator("#tokens tbody tr").first.inner_text()
        assert "model default" not in row
        assert f"{page.evaluate('document.body.dataset.patches')} patches" in row
    page.select_option("#mode", "space")
    page.wait_for_function("() => document.querySelector('#tokens tbody tr')?.textContent.includes('(space)')")
    row = page.locator("#tokens tbody tr").first.inner_text()
    assert f"{page.evaluate('document.body.dataset.patches')} patches" in row
    assert page.errors == []


CORPUS = ("Patches grow where the next byte is easy to guess and shrink where it is not. "
          "def f(x):\n    return x * 2\n" "Unicode: naïve café, 中文, 😀.\n") * 6


def analysed(page, download_id: str):
    page.wait_for_function("() => document.body.dataset.corpus === 'done'", timeout=60_000)
    with page.expect_download() as info:
        page.click(download_id)
    return info.value.path().read_text(encoding="utf-8")


def api_report(page, text: bytes) -> dict:
    response = page.request.post("/api/corpus", data=text, headers={"Content-Type": "text/plain; charset=utf-8"})
    assert response.ok, response.text()
    return response.json()


def test_corpus_pasted_downloads_equal_the_api(page):
    page.goto("/corpus")
    page.fill("#text", CORPUS)
    page.click("#analyse")
    downloaded = json.loads(analysed(page, "#download-json"))
    expected = api_report(page, CORPUS.encode())
    assert downloaded == expected
    assert page.inner_text("#stat-bytes") == f"{expected['bytes']:,}"
    assert page.locator("#most li").count() == len(expected["passages"]["most_predictable"])
    assert page.locator("#histogram.js-plotly-plot svg.main-svg").count() > 0
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "corpus")

    rows = list(csv.DictReader(io.StringIO(analysed(page, "#download-csv"))))
    value = {(r["section"], r["item"], r["unit"]): r for r in rows}
    assert float(value["summary", "bits_per_byte", "bits/byte"]["value"]) == expected["bits_per_byte"]
    assert int(value["summary", "patches", "patches"]["value"]) == expected["patches"]
    for t in expected["tokenizers"]:
        assert int(value["tokenizer", t["name"], "tokens"]["value"]) == t["tokens"]
        assert float(value["tokenizer", t["name"], "bytes/token"]["value"]) == t["bytes_per_token"]
    assert {r["item"]: int(r["value"]) for r in rows if r["section"] == "patch_size_histogram"} == \
        {k: v for k, v in expected["patch_size_histogram"].items()}
    for kind in ("most_predictable", "least_predictable"):
        got = [(int(r["start"]), int(r["length"]), float(r["value"]), r["text"]) for r in rows if r["section"] == kind]
        assert got == [(p["start"], p["length"], p["bits_per_byte"], p["text"]) for p in expected["passages"][kind]]
    assert page.errors == []


def test_corpus_uploaded_file_and_its_errors(page, tmp_path):
    page.goto("/corpus")
    upload = tmp_path / "notes.txt"
    upload.write_bytes(CORPUS.encode())
    page.set_input_files("#file", str(upload))
    page.click("#analyse")
    downloaded = json.loads(analysed(page, "#download-json"))
    assert downloaded == api_report(page, CORPUS.encode())
    assert page.get_attribute("#download-json", "download") == "corpus-notes.json"
    assert float(page.get_attribute("#progress", "value")) == 1.0

    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café".encode("latin-1"))
    page.set_input_files("#file", str(bad))
    page.click("#analyse")
    page.wait_for_function("() => document.body.dataset.corpus === 'error'")
    assert "not UTF-8 text" in page.inner_text("#error")
