"""Figures from plot_data: each builds, hovers carry run details, and every format exports
(PNG only where kaleido finds a Chromium)."""
from __future__ import annotations

import json
import threading

import plotly.io as pio
import pytest

from app import export, figures
from webapp_helpers import REPO, make_app

PLOT_DATA = REPO / "plot_data"
SHIPPED = [f["name"] for f in figures.available(PLOT_DATA)]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

needs_chromium = pytest.mark.skipif(figures.chromium_path() is None,
                                    reason="kaleido finds no Chromium (install Debian's chromium or set BROWSER_PATH)")

SCALING_ROWS = [  # the row format of `python -m blt_core.experiments scaling`
    {"label": f"{preset} {label}", "preset": preset, "kind": kind, "patching_mode": mode, "steps": 100,
     "run_dir": f"runs/{preset}-{label}", "heldout_bpb": bpb, "mean_patch_bytes": 4.0, "train_flops": flops,
     "inference_flops_per_byte": 1e6}
    for preset, flops, base in (("blt-tiny", 1e13, 1.9), ("blt-small", 1e14, 1.6))
    for label, kind, mode, bpb in (("entropy", "blt", "entropy", base), ("static", "blt", "static", base + 0.05),
                                   ("space", "blt", "space", base + 0.03), ("bytes", "bytes", None, base + 0.02))]


def test_shipped_plot_data_gives_the_expected_figures():
    assert {"threshold_sweep", "languages", "training_curves"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_figure_builds_with_run_details_in_hover(name):
    fig = figures.build(name, PLOT_DATA)
    traces = [t for t in fig.data if len(t.x)]
    assert traces and all(t.hovertemplate and t.customdata is not None for t in traces)
    if name == "paper_reference":       # transcribed, not computed: the paper is the source
        assert "arXiv 2412.09871" in " ".join(fig.layout.meta["source"])
    else:
        assert fig.layout.meta["command"].startswith("python -m blt_core.experiments")
    assert pio.from_json(fig.to_json()).to_dict()["data"]                 # round-trips as Plotly JSON


def test_languages_figure_holds_every_row():
    rows = json.loads((PLOT_DATA / "languages.json").read_text())["rows"]
    fig = figures.build("languages", PLOT_DATA)
    plotted = {x: y for trace in fig.data for x, y in zip(trace.x, trace.y)}
    assert plotted == {r["language"]: r["mean_patch_bytes"] for r in rows}


def test_scaling_figure_appears_when_its_data_exists(tmp_path):
    assert "scaling" not in [f["name"] for f in figures.available(tmp_path)]
    (tmp_path / "scaling.json").write_text(json.dumps({"command": "python -m blt_core.experiments scaling",
                                                       "source": "test", "rows": SCALING_ROWS}))
    assert [f["name"] for f in figures.available(tmp_path)] == ["scaling"]
    fig = figures.build("scaling", tmp_path)
    assert [t.name for t in fig.data] == ["BLT-entropy", "BLT-static", "BLT-space", "byte transformer"]
    assert all(list(t.x) == [1e13, 1e14] for t in fig.data) and fig.layout.xaxis.type == "log"


def test_html_is_a_full_offline_page():
    page = figures.to_html(figures.build("threshold_sweep", PLOT_DATA))
    assert page.startswith("<!doctype html>") and "Plotly.newPlot" in page
    assert '<script src="http' not in page and len(page) > 1_000_000          # plotly.js inlined


def test_export_html_and_json_without_chromium(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(figures, "chromium_path", lambda: None)
    assert export.main(["--out", str(tmp_path), "--plot-data", str(PLOT_DATA)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.{ext}" for n in SHIPPED
                                                                for ext in ("html", "plotly.json"))
    err = capsys.readouterr().err
    assert "PNG not written" in err and "apt-get install chromium" in err
    assert json.loads((tmp_path / "languages.plotly.json").read_text())["data"]


def test_png_endpoint_without_chromium_is_a_clear_503(monkeypatch):
    monkeypatch.setattr(figures, "chromium_path", lambda: None)
    response = make_app().test_client().get("/api/figures/languages?format=png")
    assert response.status_code == 503 and response.json["error_type"] == "png_unavailable"
    assert "Chromium" in response.json["error"]


@needs_chromium
def test_export_writes_png_with_chromium(tmp_path):
    result = export.export(tmp_path, PLOT_DATA, ("png",))
    assert result["png_skipped"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.png" for n in SHIPPED)
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in tmp_path.iterdir())


@needs_chromium
def test_png_endpoint():
    response = make_app().test_client().get("/api/figures/threshold_sweep?format=png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.data.startswith(PNG_MAGIC)


def test_api_html_loads_the_served_plotly_js():
    """The API's page is small: it loads this server's plotly.js (the export inlines it)."""
    client = make_app().test_client()
    page = client.get("/api/figures/languages?format=html")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert html.startswith("<!doctype html>") and "Plotly.newPlot" in html and len(page.data) < 100_000
    src = html.split('<script charset="utf-8" src="')[1].split('"')[0]
    assert src.startswith("/static/vendor/plotly.min.js?v=")
    assert client.get(src.split("#")[0]).data.startswith(b"/**")              # plotly.js, served here
    assert "script-src 'self' 'sha256-" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize("fmt", figures.FORMATS)
def test_repeated_figure_requests_are_built_once(fmt, monkeypatch):
    monkeypatch.setattr(figures, "to_png", lambda fig: PNG_MAGIC + fig.layout.title.text.encode())  # no Chromium
    app = make_app()
    client, cache = app.test_client(), app.extensions["blt_figures"]
    bodies = {client.get(f"/api/figures/languages?format={fmt}").data for _ in range(3)}
    assert len(bodies) == 1 and cache.builds == 1
    plotly_js = client.get("/api/figures/languages?format=html").data.split(b'src="')[1].split(b'"')[0].decode()
    assert cache.document("languages", fmt, PLOT_DATA, plotly_js) is cache.document("languages", fmt, PLOT_DATA,
                                                                                    plotly_js)


def test_clients_asking_at_once_share_one_build():
    app = make_app()
    client, cache = app.test_client(), app.extensions["blt_figures"]
    bodies = []
    threads = [threading.Thread(target=lambda: bodies.append(client.get("/api/figures/training_curves").data))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(bodies) == 8 and len(set(bodies)) == 1 and cache.builds == 1


def test_figure_is_built_again_when_its_data_changes(tmp_path):
    data = tmp_path / "scaling.json"
    data.write_text(json.dumps({"command": "python -m blt_core.experiments scaling", "source": "test",
                                "rows": SCALING_ROWS}))
    app = make_app(PLOT_DATA_DIR=str(tmp_path))
    client, cache = app.test_client(), app.extensions["blt_figures"]
    before = client.get("/api/figures/scaling").json
    data.write_text(json.dumps({"command": "python -m blt_core.experiments scaling", "source": "test",
                                "rows": [r for r in SCALING_ROWS if r["patching_mode"] == "entropy"]}))
    after = client.get("/api/figures/scaling").json
    assert cache.builds == 2 and len(before["data"]) == 4 and [t["name"] for t in after["data"]] == ["BLT-entropy"]


def test_figure_cache_stays_within_its_bound():
    cache = figures.DocumentCache(max_bytes=40_000)
    docs = {name: cache.document(name, "json", PLOT_DATA) for name in SHIPPED}
    assert cache.bytes <= 40_000 and cache.bytes == sum(len(d) for _, d in cache._docs.values())
    newest = SHIPPED[-1]
    assert cache.document(newest, "json", PLOT_DATA) is docs[newest]                 # kept
    oldest = SHIPPED[0]
    builds = cache.builds
    assert cache.document(oldest, "json", PLOT_DATA) == docs[oldest] and cache.builds == builds + 1   # dropped
    small = figures.DocumentCache(max_bytes=10)
    assert small.document("languages", "json", PLOT_DATA) and small.bytes == 0       # served, not kept


UNITS = {"threshold_sweep": "bits/byte", "languages": "bytes/patch", "training_curves": "bits/byte",
         "scaling": "bits/byte", "pooling": "bits/byte", "paper_reference": "average task score"}


@pytest.mark.parametrize("name", SHIPPED)
def test_hovers_show_the_plotted_values_with_units_and_no_internal_notes(name):
    fig = figures.build(name, PLOT_DATA)
    for trace in fig.data:
        assert trace.hovertemplate == "%{customdata}<extra>%{fullData.name}</extra>"
        for text in trace.customdata:
            assert UNITS[name] in text or "FLOPs" in text or "parameters" in text, text
            assert "runs/" not in text and "concurrently" not in text and "wall_s" not in text, text
            assert "None" not in text and "nan" not in text, text
    if name in ("scaling", "pooling", "threshold_sweep", "training_curves"):
        plotted = [t for t in fig.data if "bits per byte" in (fig.layout.yaxis.title.text or "")][0]
        assert all(f"{y:.3f} bits/byte" in text for y, text in zip(plotted.y, plotted.customdata))


def test_a_missing_value_reads_not_recorded(tmp_path):
    rows = [{**r, "inference_flops_per_byte": None, "steps": None} for r in SCALING_ROWS]
    (tmp_path / "scaling.json").write_text(json.dumps({"command": "python -m blt_core.experiments scaling",
                                                       "source": "test", "rows": rows}))
    text = figures.build("scaling", tmp_path).data[0].customdata[0]
    assert "inference: not recorded" in text and "training steps: not recorded" in text and "0.00" not in text


def test_pooling_axis_shows_the_difference():
    fig = figures.build("pooling", PLOT_DATA)
    low, high = fig.layout.yaxis.range
    values = list(fig.data[0].y)
    assert low > 1.0 and low < min(values) and high > max(values) and high - low < 0.1


def test_languages_give_each_script_its_own_colour_and_the_note():
    fig = figures.build("languages", PLOT_DATA)
    colours = [t.marker.color for t in fig.data]
    scripts = {r["script"] for r in json.loads((PLOT_DATA / "languages.json").read_text())["rows"]}
    assert len(colours) == len(scripts) >= 12 and len(set(colours)) == len(colours)
    assert "confident and wrong" in fig.layout.annotations[0].text
