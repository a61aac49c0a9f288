"""What the browser tests of the pages share: waiting for a page to show its results, and the
pages' character rule (static/js/chars.js) restated in Python to say what a chip must show."""
from __future__ import annotations

import csv
import io
import json
import time

VISIBLE = {"\n": "↵\n", "\t": "⇥", "\r": "⏎"}


def plot(selector: str) -> str:
    """A Plotly graph drawn into `selector` (plotly.js marks the div and adds its svg)."""
    return f"{selector}.js-plotly-plot svg.main-svg"


def explore(page, text: str | None = None, fragment: str = "") -> None:
    """Open Explore (with a link's fragment), set `text` if given, and wait until it is shown."""
    page.goto(f"/{fragment}")
    page.wait_for_function("() => document.body.dataset.patches !== undefined")
    if text is not None:
        page.fill("#text", text)
        wait_explored(page, text)


def wait_explored(page, text: str) -> None:
    _wait_shown(page, "(n) => document.getElementById('stat-bytes').textContent === String(n)"
                      " && !document.getElementById('results').classList.contains('stale')", len(text.encode()))


def wait_compared(page, text: str) -> None:
    _wait_shown(page, "(n) => document.body.dataset.compared === String(n)"
                      " && !document.getElementById('results').classList.contains('stale')", len(text.encode()))


def link_state(page, expected: dict, timeout_s: float = 15.0) -> None:
    """Wait until the URL's fragment (decoded as the page decodes it: plain or deflated text)
    holds `expected`: a link taken before then would carry an earlier state (the page writes
    the fragment a moment after each change)."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate("async () => (await import('/static/js/permalink.js')).readFragment()") or {}
        if all(state.get(k) == v for k, v in expected.items()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the link did not come to hold {expected}: {state}")
        time.sleep(0.05)


def _wait_shown(page, condition: str, n_bytes: int) -> None:
    """Wait for `condition`; on a timeout, fail with what the page shows instead (its error
    banner, text length, results state, console errors) rather than only the timeout."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try:
        page.wait_for_function(condition, arg=n_bytes)
    except PlaywrightTimeout as err:
        state = page.evaluate("""() => ({error: document.getElementById('error')?.textContent,
            text_bytes: new TextEncoder().encode(document.getElementById('text')?.value ?? '').length,
            results: document.getElementById('results')?.className, data: {...document.body.dataset}})""")
        raise AssertionError(f"the page did not show {n_bytes} bytes' results: {state}, "
                             f"console: {getattr(page, 'errors', None)}, url: {page.url[:120]}") from err


def generated(page, timeout=60_000) -> str:
    """Wait for the generation under way to end; its state (stop reason, 'stopped', 'error')."""
    page.wait_for_function("() => !['streaming', 'waiting', 'stopped', undefined]"
                           ".includes(document.body.dataset.state)", timeout=timeout)
    return page.evaluate("document.body.dataset.state")


def characters(data: bytes) -> list[tuple[int, int, str, bool]]:
    """(start, end, text, valid) per character: a valid UTF-8 sequence is one character, any other
    byte is one invalid character shown as \\xNN."""
    out, i = [], 0
    while i < len(data):
        b = data[i]
        n = 1 if b < 0x80 else 2 if 0xC2 <= b <= 0xDF else 3 if 0xE0 <= b <= 0xEF else 4 if 0xF0 <= b <= 0xF4 else 0
        try:
            ch = data[i:i + n].decode("utf-8") if n and i + n <= len(data) else None
        except UnicodeDecodeError:
            ch = None
        out.append((i, i + n, ch, True) if ch is not None else (i, i + 1, f"\\x{b:02x}", False))
        i += n if ch is not None else 1
    return out


def chip_text(data: bytes, start: int, end: int) -> str:
    """What the chip of bytes [start, end) shows: whole characters (newlines and tabs made
    visible), a character split across patches whole in brackets, an invalid byte as \\xNN."""
    out = []
    for s, e, ch, valid in characters(data):
        if e <= start or s >= end:
            continue
        split = valid and (s < start or e > end)
        out.append(f"[{ch}]" if split else "".join(VISIBLE.get(c, c) for c in ch) if valid else ch)
    return "".join(out)


def chip_texts(page, container: str) -> list[str]:
    return page.eval_on_selector_all(f"{container} .chip", "chips => chips.map((c) => c.textContent)")


def download(page, container: str, name: str):
    """Click the download button `name` (e.g. 'bytes.csv') of `container`: (filename, parsed content)."""
    with page.expect_download() as info:
        page.click(f"{container} button[data-download='{name}']")
    content = open(info.value.path(), encoding="utf-8").read()
    parsed = list(csv.DictReader(io.StringIO(content, newline=""))) if name.endswith(".csv") else json.loads(content)
    return info.value.suggested_filename, parsed


def page_threshold(page) -> float:
    """The threshold Explore's slider starts at: the model's default, to the slider's 0.01 step."""
    return round(page.request.get("/api/models").json()["defaults"]["threshold"], 2)
