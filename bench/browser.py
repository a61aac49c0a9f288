"""What a visitor's browser sees of BLT Studio: headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright, CPU) against real gunicorn (bench/server.py) serving the shipped model.

    python bench/browser.py --out bench/results/browser_cpu.json

- first visit, Explore: bytes over the wire until the page is drawn (every response's encoded
  size as Chromium's network layer reports it: headers and bodies, after gzip), a fresh cache;
- slider step at 16 kB: Explore with 16 kB of text; one threshold step (input event) until the
  browser has painted the re-patched chips (next animation frame + task), median of --steps;
- typing -> rendered at 2 kB and 16 kB: one character typed at the end of the text until Explore's
  chips are replaced with the server's new analysis (the page's pause for typing included, as a
  typist waits it), median of --keystrokes;
- axe-core (axe.min.js from the axe-playwright-python wheel) serious and critical violations on
  every page at 1280 px and 390 px, the Corpus page after an analysis.

The text is English prose (Debian's GPL-3 licence text, README.md where it is missing).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from importlib.resources import files
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import english, machine  # noqa: E402
from server import REPO, Server  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PAGES = ["/", "/generate", "/compare", "/corpus", "/scaling", "/figures", "/api"]
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


def wait_explore(page) -> None:
    page.wait_for_selector("#entropy-plot.js-plotly-plot svg.main-svg")
    page.wait_for_function("() => document.body.dataset.patches !== undefined")


def first_visit_bytes(browser, url: str) -> dict:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    sizes, urls = {}, {}
    cdp.on("Network.responseReceived", lambda e: urls.__setitem__(e["requestId"], e["response"]["url"]))
    cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
    page.goto(url + "/")
    wait_explore(page)
    page.wait_for_load_state("networkidle")
    context.close()
    by_url = sorted(((urls.get(k, "?").replace(url, ""), v) for k, v in sizes.items()), key=lambda kv: -kv[1])
    return {"bytes": sum(sizes.values()), "requests": len(sizes), "largest": by_url[:5]}


def set_text(page, text: str) -> None:
    """Explore's text replaced, as a paste would (one input event), then its analysis drawn."""
    page.evaluate("""(text) => { const t = document.querySelector('#text'); t.value = text;
        t.dispatchEvent(new Event('input', {bubbles: true})); }""", text)
    page.wait_for_timeout(400)
    page.wait_for_function("(n) => document.querySelectorAll('#chips .chip').length > 0", arg=1)
    page.wait_for_load_state("networkidle")


def slider_steps(page, steps: int) -> list[float]:
    return page.evaluate("""async (steps) => {
        const slider = document.querySelector('#threshold');
        const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
        const out = [];
        for (let i = 0; i < steps; i++) {
            await frame();
            const t0 = performance.now();
            slider.value = String(1.0 + (i % 20) * 0.1);
            slider.dispatchEvent(new Event('input', {bubbles: true}));
            await frame();
            out.push(performance.now() - t0);
        }
        return out; }""", steps)


def keystroke_ms(page) -> float:
    """One character typed at the end; ms until the chips are redrawn from the new analysis."""
    return page.evaluate("""() => new Promise((resolve) => {
        const text = document.querySelector('#text');
        const chips = document.querySelector('#chips');
        const t0 = performance.now();
        new MutationObserver((_, observer) => { observer.disconnect();
            requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - t0), 0)); })
            .observe(chips, {childList: true});
        text.value += 'x';
        text.dispatchEvent(new Event('input', {bubbles: true}));
    })""")


def axe_counts(browser, url: str) -> dict:
    source = (files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
    out = {}
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        for path in PAGES:
            context = browser.new_context(viewport=viewport, bypass_csp=True)    # to inject axe
            page = context.new_page()
            page.goto(url + path)
            page.wait_for_load_state("networkidle")
            if path == "/corpus":
                page.fill("#text", "An analysed corpus, so its results are checked too. " * 20)
                page.click("#analyse")
                page.wait_for_function("() => document.body.dataset.corpus === 'done'", timeout=120_000)
            page.add_script_tag(content=source)
            found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))""")
            context.close()
            out[f"{path} {label}"] = {
                "serious_or_critical": sum(v["nodes"] for v in found if v["impact"] in ("serious", "critical")),
                "violations": found}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40, help="slider steps measured")
    ap.add_argument("--keystrokes", type=int, default=7, help="keystrokes measured per text size")
    ap.add_argument("--out", help="write the results here as JSON")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    text_16k, source = english(16_000)
    text_2k = text_16k.encode()[:2000].decode("utf-8", errors="ignore")
    env = {"BLT_MODEL": str(REPO / "models" / "blt-studio"), "BLT_DEVICE": "cpu"}
    load_before = os.getloadavg()
    with Server(env) as server, sync_playwright() as pw:
        deadline = time.monotonic() + 120
        while server.get("/healthz")["status"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.5)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        results = {"first_visit_explore": first_visit_bytes(browser, server.url)}
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.set_default_timeout(60_000)
        page.goto(server.url + "/")
        wait_explore(page)
        page.select_option("#mode", "entropy")
        for label, text in (("2kB", text_2k), ("16kB", text_16k)):
            set_text(page, text[:-1])
            times = [keystroke_ms(page) for _ in range(args.keystrokes)]
            results[f"typing_to_rendered_{label}"] = {"median_ms": statistics.median(times), "ms": times}
        set_text(page, text_16k)
        steps = slider_steps(page, args.steps)
        results["slider_step_16kB"] = {"median_ms": statistics.median(steps), "max_ms": max(steps),
                                       "steps": len(steps), "patches": int(page.evaluate("document.body.dataset.patches"))}
        results["axe"] = axe_counts(browser, server.url)
        browser.close()
        model = server.get("/api/models")["model"]
        server_command = " ".join(server.command)
    record = {
        "command": "python " + " ".join(["bench/browser.py"] + (argv if argv is not None else sys.argv[1:])),
        "server": server_command, "model": model["name"], "device": model["device"], "browser": CHROMIUM,
        "text_source": source, "machine": machine(),
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]}, "results": results,
    }
    print(json.dumps(record, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
