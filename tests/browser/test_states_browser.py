"""What the pages do around a result: an empty text is a friendly empty state, not an error; limits
are the server's and are shown (and enforced) before anything is sent; an error or a new run never
leaves the previous results on screen; a busy server says when to retry, and the page retries;
Ctrl+Enter runs, Esc stops, focus never falls off a button that gets disabled; a skip link."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from page_helpers import explore, generated, wait_compared, wait_explored


def api_requests(page, path: str) -> list[str]:
    """Every request to `path` the page makes from now on."""
    seen = []
    page.on("request", lambda r: seen.append(r.url) if r.url.endswith(path) else None)
    return seen


@pytest.mark.parametrize("path, endpoint", [("/", "/api/entropy"), ("/compare", "/api/compare")])
def test_empty_text_is_an_empty_state_not_an_error(page, path, endpoint):
    page.goto(path)
    page.wait_for_load_state("networkidle")
    sent = api_requests(page, endpoint)
    page.fill("#text", "")
    page.wait_for_function("() => document.getElementById('results').hidden")
    assert page.is_hidden("#error")
    assert page.inner_text("#text-note") == "Type or paste text, or pick an example."
    page.wait_for_timeout(400)                    # longer than any wait before an analysis
    assert sent == []
    assert page.errors == []


@pytest.mark.parametrize("path, endpoint", [("/", "/api/entropy"), ("/compare", "/api/compare")])
def test_text_over_the_servers_limit_is_refused_before_sending(page, path, endpoint):
    limits = page.request.get("/api/models").json()["limits"]
    page.goto(path)
    page.wait_for_load_state("networkidle")
    sent = api_requests(page, endpoint)
    page.fill("#text", "é" * (limits["max_text_bytes"] // 2) + "a")          # one byte over
    page.wait_for_function("() => document.getElementById('text-bytes').classList.contains('over')")
    assert page.inner_text("#text-bytes") == f"{limits['max_text_bytes'] + 1:,} / {limits['max_text_bytes']:,} bytes"
    assert "Over the limit" in page.inner_text("#text-note")
    page.wait_for_function("() => document.getElementById('results').hidden")
    assert page.is_hidden("#error")
    page.wait_for_timeout(400)
    assert sent == []
    assert page.errors == []


def test_settings_out_of_the_servers_range_are_named_before_sending(page):
    limits = page.request.get("/api/models").json()["limits"]
    high = limits["max_patch_length"][1]
    explore(page)
    assert page.get_attribute("#max-patch-length", "max") == str(high)
    page.fill("#max-patch-length", str(high + 1))
    page.wait_for_function("() => document.getElementById('results').classList.contains('stale')")
    assert page.inner_text("#text-note") == f"Max patch length: Value must be less than or equal to {high}."
    page.goto("/compare")
    page.wait_for_load_state("networkidle")
    assert page.get_attribute("#max_patch_length", "max") == str(high)
    sent = api_requests(page, "/api/compare")
    page.fill("#max_patch_length", str(high + 1))
    page.wait_for_timeout(400)
    assert sent == [] and "less than or equal to" in page.inner_text("#text-note")
    assert page.errors == []


@pytest.mark.parametrize("path", ["/", "/compare"])
def test_an_error_clears_the_previous_results(page, path):
    page.goto(path)
    page.wait_for_selector("#results .chip")
    page.fill("#text", "bad \x01 byte")                     # the server refuses control characters
    page.wait_for_selector("#error:not([hidden])")
    assert "U+0001" in page.inner_text("#error")
    assert page.is_hidden("#results") and page.locator("#results .chip").count() == 0
    page.fill("#text", "fine again")
    page.wait_for_selector("#results .chip")
    assert page.is_hidden("#error")


def test_generate_prompt_limit_is_the_servers(page, server):
    limits = page.request.get("/api/models").json()["limits"]
    page.goto("/generate")
    page.wait_for_function("() => document.getElementById('mode').options.length > 0")
    assert page.get_attribute("#max_new_bytes", "max") == str(limits["max_new_bytes"])
    page.fill("#max_new_bytes", "200")
    allowed = min(limits["max_text_bytes"], limits["context_bytes"] - 1 - 200)
    sent = api_requests(page, "/api/generate/stream")
    page.fill("#prompt", "a" * (allowed + 1))
    assert page.inner_text("#prompt-bytes") == f"{allowed + 1:,} / {allowed:,} bytes"
    page.click("#start")                                    # the form refuses, saying why
    page.wait_for_timeout(300)
    assert sent == [] and page.evaluate("document.getElementById('prompt').validationMessage").startswith("The prompt is over")
    page.fill("#max_new_bytes", "199")                      # one new byte fewer: the prompt fits
    assert "over" not in page.get_attribute("#prompt-bytes", "class")
    # the server draws the line at the same byte: over it a 422, at it a stream
    assert stream_status(server, "a" * (allowed + 1), 200) == 422
    assert stream_status(server, "a" * allowed, 200) == 200
    assert page.errors == []


def stream_status(server: str, prompt: str, new_bytes: int) -> int:
    """The status of a streamed generation, hanging up once it answers (which stops it)."""
    request = urllib.request.Request(f"{server}/api/generate/stream", method="POST",
                                     data=json.dumps({"prompt": prompt, "max_new_bytes": new_bytes}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_busy_generation_says_when_it_retries_then_runs(new_page, one_slot_server):
    url, _ = one_slot_server
    first, second = new_page(url), new_page(url)
    for page in (first, second):
        page.goto("/generate")
        page.wait_for_function("() => document.getElementById('mode').options.length > 0")
    first.fill("#max_new_bytes", "1000")
    first.click("#start")
    first.wait_for_function("() => document.body.dataset.state === 'streaming'")
    second.fill("#max_new_bytes", "8")
    second.click("#start")                                  # the only slot is taken: 429, Retry-After: 1
    second.wait_for_function("() => document.body.dataset.state === 'waiting'")
    assert "busy" in second.inner_text("#busy") and "retry in 1 s" in second.inner_text("#busy")
    assert second.is_hidden("#error")
    first.keyboard.press("Escape")                          # Esc stops the first; the second gets its slot
    first.wait_for_function("() => document.body.dataset.state === 'stopped'")
    assert generated(second) in ("max_new_bytes", "eos")
    assert second.inner_text("#busy") == "" and second.is_hidden("#error")
    assert int(second.inner_text("#stat-bytes")) <= 8
    # Chromium logs every 429 answer as a failed resource; nothing else went wrong
    assert first.errors == [] and set(second.errors) == {
        "console error: Failed to load resource: the server responded with a status of 429 (TOO MANY REQUESTS)"}


def test_generate_keys_and_focus(page):
    page.goto("/generate")
    page.wait_for_function("() => document.getElementById('mode').options.length > 0")
    page.fill("#max_new_bytes", "1000")
    page.click("#start")
    page.wait_for_function("() => document.body.dataset.state === 'streaming'")
    assert page.evaluate("document.activeElement.id") == "stop-button"     # focus moved off the disabled button
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.body.dataset.state === 'stopped'")
    assert page.evaluate("document.activeElement.id") == "start"
    page.fill("#max_new_bytes", "6")
    page.focus("#prompt")
    page.keyboard.press("Control+Enter")
    assert generated(page) in ("max_new_bytes", "eos")
    assert page.evaluate("document.activeElement.id") == "prompt"          # typing can go on
    assert page.errors == []


@pytest.mark.parametrize("path, wait_shown", [("/", wait_explored), ("/compare", wait_compared)], ids=["explore", "compare"])
def test_text_typed_before_the_models_settings_arrive_is_kept(page, path, wait_shown):
    """A page puts its example text in once the model's settings (/api/models) arrive. Text the
    visitor typed before then stays, and is what the page shows: the example used to replace
    it (CI caught it in a test that typed into Compare at once)."""
    held = []
    page.route("**/api/models", lambda route: held.append(route))    # the settings wait here
    page.goto(path)
    for _ in range(750):                                              # up to 15 s
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "the page never asked for /api/models"
    typed = "typed before the settings came"
    page.fill("#text", typed)
    held[0].continue_()
    wait_shown(page, typed)
    assert page.input_value("#text") == typed


def test_ctrl_enter_analyses_at_once(page):
    explore(page, "Analyse me")
    with page.expect_request("**/api/entropy"):
        page.keyboard.press("Control+Enter")                               # even the same text, again
    page.goto("/compare")
    # the page fills in its own text after load: read it once a comparison is shown (read at
    # once it was sometimes still empty, and the wait then looked for 0 bytes' results)
    page.wait_for_function("() => document.body.dataset.compared !== undefined")
    wait_compared(page, page.input_value("#text"))
    with page.expect_request("**/api/compare"):
        page.keyboard.press("Control+Enter")


@pytest.mark.parametrize("path", ["/", "/generate", "/compare", "/api"])
def test_skip_link_goes_to_the_content(page, path):
    page.goto(path)
    page.wait_for_load_state("networkidle")
    if path in ("/", "/compare"):       # their first analysis writes the permalink, 300 ms after it
        page.wait_for_function("() => location.hash.length > 1")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    box = page.locator(".skip-link").bounding_box()
    assert box["y"] >= 0                                                    # visible once focused
    url = page.url
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    assert page.url == url                                                  # a permalink stays as it was
