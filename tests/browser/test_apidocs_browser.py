"""The API page runs its examples: "Try it" sends each endpoint's example from the page and shows
the answer. On a fresh clone (an empty export folder) no example points at a missing file: the
file endpoints say no file is stored yet and wait for one; once the export has written files,
their examples name them and answer 200."""
from __future__ import annotations

import base64

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def try_every_example(page) -> dict[str, str]:
    """Click every enabled "Try it": {section id: status line}."""
    page.goto("/api")
    page.wait_for_selector("#api-endpoints section")
    statuses = {}
    for section in page.locator("#api-endpoints section").all():
        button = section.locator("button.try")
        if button.is_disabled():
            continue
        button.click()
        section.locator(".try-result[data-status]").wait_for(timeout=60_000)
        statuses[section.get_attribute("id")] = section.locator(".try-result").get_attribute("data-status")
    return statuses


def test_every_example_runs_from_the_page_and_none_is_missing(new_page, one_slot_server):
    url, exports = one_slot_server
    page = new_page(url)
    statuses = try_every_example(page)
    assert statuses and {k: v for k, v in statuses.items() if v != "200"} == {}
    for missing in ("get-visualizations-name-", "get-images-name-"):    # nothing exported yet: said, not sent
        section = page.locator(f"section#{missing}")
        assert section.locator("button.try").is_disabled()
        assert "python -m app.export" in section.locator(".no-file").inner_text()
    assert "get-data-name-" in statuses                                # plot_data/ ships with the clone
    assert page.locator("section#post-api-entropy-detail .try-output").inner_text().count('"next"') == 2

    (exports / "languages.html").write_text("<!doctype html><title>languages</title><p>figure</p>")
    (exports / "languages.png").write_bytes(PNG)
    statuses = try_every_example(page)
    assert statuses["get-visualizations-name-"] == "200" and statuses["get-images-name-"] == "200"
    assert page.locator("section#get-images-name- img.try-image").count() == 1
    assert {k: v for k, v in statuses.items() if v != "200"} == {}
    assert page.errors == []


def test_try_it_sends_the_edited_body_and_shows_errors(page):
    page.goto("/api")
    section = page.locator("section#post-api-patch")
    section.locator("textarea.try-body").fill('{"text": "edited here", "mode": "space"}')
    section.locator("button.try").click()
    section.locator(".try-result[data-status='200']").wait_for()
    assert '"mode": "space"' in section.locator(".try-output").inner_text()
    assert "edited here" in section.locator("pre.curl").inner_text()
    section.locator("textarea.try-body").fill('{"text": "x", "threshold": 99}')
    section.locator("button.try").click()
    section.locator(".try-result[data-status='422']").wait_for()
    assert "threshold must be in" in section.locator(".try-output").inner_text()
