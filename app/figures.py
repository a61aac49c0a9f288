"""Plotly figures built from the JSON files in plot_data/ (each written by a blt_core experiment
with the command that made it). A figure whose data file is missing is not listed.

Used by `/api/figures` (through a DocumentCache: each document is built once per version of its
data) and by the export command; PNG goes through kaleido, which drives a Chromium (the system
one, found on PATH or through $BROWSER_PATH).
"""
from __future__ import annotations

import json
import os
import textwrap
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from .paths import file_in

FORMATS = ("json", "html", "png")
MIMETYPES = {"json": "application/json", "html": "text/html", "png": "image/png"}


@dataclass(frozen=True)
class FigureSpec:
    name: str
    title: str
    pattern: str                                   # data files in plot_data/ (glob)
    build: Callable[[list[dict]], go.Figure]       # the files' parsed JSON -> figure


class PngUnavailable(RuntimeError):
    """No Chromium for kaleido; the message says how to get one."""


Field = tuple[str, Callable[[dict], object], str]      # (label, value of a row, format with its unit)


def _shown(value, fmt: str) -> str:
    """A value in its format ('{:.3f} bits/byte'), or 'not recorded' (never a 0.00 for a missing value)."""
    if value is None:
        return "not recorded"
    if "{:flops}" in fmt:
        mantissa, exponent = f"{value:.2e}".split("e")
        return fmt.replace("{:flops}", f"{mantissa}×10<sup>{int(exponent)}</sup>")
    return fmt.format(value)


def _hover(rows: list[dict], fields: list[Field]) -> dict:
    """Trace arguments for hovers that list each field with its unit: customdata holds one
    finished text per point (so a missing value reads 'not recorded')."""
    return {"customdata": ["<br>".join(f"{label}: {_shown(get(r), fmt)}" for label, get, fmt in fields) for r in rows],
            "hovertemplate": "%{customdata}<extra>%{fullData.name}</extra>"}


def _key(name: str) -> Callable[[dict], object]:
    return lambda r: r.get(name)


BPB = "{:.3f} bits/byte"
FLOPS = "{:flops} FLOPs"
PATCH = "{:.2f} bytes/patch"


def _command_note(sources: list[dict]) -> str:
    return "; ".join(s.get("command", "") for s in sources)


def _layout(fig: go.Figure, title: str, sources: list[dict], **axes) -> go.Figure:
    fig.update_layout(title=title, template="plotly_white", hovermode="closest", legend_title_text="",
                      meta={"source": sorted({s.get("source", "") for s in sources}),
                            "command": _command_note(sources)},
                      **axes)
    return fig


def threshold_sweep(sources: list[dict]) -> go.Figure:
    """Held-out bits per byte, and inference FLOPs per byte where the run recorded them, against
    mean patch size: one line per sweep file."""
    common = [("mean patch size", _key("mean_patch_bytes"), PATCH), ("threshold", _key("threshold"), "{:.3f} nats"),
              ("target", _key("target_patch_bytes"), "{:g} bytes/patch"), ("training steps", _key("steps"), "{:,}"),
              ("training compute", _key("train_flops"), FLOPS)]
    plotted = {"heldout_bpb": ("held-out", BPB), "inference_flops_per_byte": ("inference", FLOPS + " per byte")}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("quality", "inference cost"), horizontal_spacing=0.14)
    for k, data in enumerate(sources):
        rows = sorted(data["rows"], key=lambda r: r["mean_patch_bytes"])
        name = f"{rows[0].get('preset', '')} {rows[0].get('patching_mode', '')}".strip() if rows else "sweep"
        color = pio.templates["plotly_white"].layout.colorway[k % 10]
        for col, key in ((1, "heldout_bpb"), (2, "inference_flops_per_byte")):
            part = [r for r in rows if r.get(key) is not None]
            fig.add_scatter(
                x=[r["mean_patch_bytes"] for r in part], y=[r[key] for r in part], mode="lines+markers",
                name=name, legendgroup=name, showlegend=col == 1, line_color=color,
                **_hover(part, [(plotted[key][0], _key(key), plotted[key][1]), *common]), row=1, col=col)
    fig.update_xaxes(title_text="mean bytes per patch")
    fig.update_yaxes(title_text="held-out bits per byte", row=1, col=1)
    fig.update_yaxes(title_text="inference FLOPs per byte", row=1, col=2)
    return _layout(fig, "Threshold sweep: quality and inference cost against patch size", sources)


# 24 distinct colours, so each of the languages' scripts (13 and more) has its own
SCRIPT_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#843c39", "#7b4173", "#3182bd",
                 "#e6550d", "#31a354", "#756bb1", "#636363", "#bd9e39", "#de9ed6", "#6baed6", "#fd8d3c"]
OUT_OF_DOMAIN_NOTE = ("Text unlike a model's training data scores badly: out of its domain a model stays confident and wrong,<br>"
                      "so bits per byte can pass 8 (a uniform guess over 256 bytes). The shipped model learned 32 languages in 12 scripts.")


def languages(sources: list[dict]) -> go.Figure:
    """Mean bytes per patch by language, one colour per script (distinct for up to 24 scripts)."""
    rows = sorted((r for data in sources for r in data["rows"]), key=lambda r: -r["mean_patch_bytes"])
    fields = [("mean patch size", _key("mean_patch_bytes"), PATCH), ("model's loss", _key("bpb"), BPB),
              ("script", _key("script"), "{}"), ("text evaluated", _key("bytes"), "{:,} bytes"),
              ("held-out file", _key("file_bytes"), "{:,} bytes")]
    fig = go.Figure()
    for k, script in enumerate(dict.fromkeys(r["script"] for r in rows)):
        part = [r for r in rows if r["script"] == script]
        fig.add_bar(x=[r["language"] for r in part], y=[r["mean_patch_bytes"] for r in part], name=script,
                    marker_color=SCRIPT_COLORS[k % len(SCRIPT_COLORS)], **_hover(part, fields))
    fig.update_xaxes(categoryorder="array", categoryarray=[r["language"] for r in rows])
    fig.add_annotation(text=OUT_OF_DOMAIN_NOTE, xref="paper", yref="paper", x=0, y=1.0, yanchor="bottom",
                       showarrow=False, align="left", font_size=11)
    return _layout(fig, "Bytes per patch across languages and code", sources,
                   xaxis_title="language", yaxis_title="mean bytes per patch", margin_t=90)


def training_curves(sources: list[dict]) -> go.Figure:
    """Training bits per byte by bytes seen, and held-out bits per byte by training FLOPs."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training", "held-out"), horizontal_spacing=0.12)
    step_fields = [("training", _key("bpb"), BPB), ("bytes seen", _key("bytes_seen"), "{:,}"),
                   ("step", _key("step"), "{:,}"), ("learning rate", _key("lr"), "{:.2e}")]
    eval_fields = [("held-out", _key("heldout_bpb"), BPB), ("training compute", _key("train_flops"), FLOPS),
                   ("step", _key("eval_step"), "{:,}"), ("mean patch size", _key("mean_patch_bytes"), PATCH),
                   ("threshold", _key("threshold"), "{:.3f} nats")]
    runs = [run for data in sources for run in data["rows"]]
    for k, run in enumerate(runs):
        color = pio.templates["plotly_white"].layout.colorway[k % 10]
        name = {"blt": "BLT", "bytes": "byte transformer", "entropy": "entropy model"}.get(run["kind"], run["kind"])
        name = f"{name} ({run['preset']})" if run.get("preset") else name
        fig.add_scatter(x=[s["bytes_seen"] for s in run["steps"]], y=[s["bpb"] for s in run["steps"]],
                        mode="lines", name=name, legendgroup=name, line_color=color,
                        **_hover(run["steps"], step_fields), row=1, col=1)
        fig.add_scatter(x=[e["train_flops"] for e in run["evals"]], y=[e["heldout_bpb"] for e in run["evals"]],
                        mode="lines+markers", name=name, legendgroup=name, showlegend=False, line_color=color,
                        **_hover(run["evals"], eval_fields), row=1, col=2)
    fig.update_xaxes(title_text="bytes seen", row=1, col=1)
    fig.update_xaxes(title_text="training FLOPs", type="log", row=1, col=2)
    fig.update_yaxes(title_text="bits per byte", row=1, col=1)
    return _layout(fig, "Training of the shipped models", sources)


def _gpu(hardware: str | None) -> str | None:
    """The device named in a run's hardware note, without the note ('One NVIDIA H100 (...)...' -> 'NVIDIA H100')."""
    if not hardware:
        return None
    for name in ("H100", "H200", "A100", "CPU"):
        if name in hardware:
            return f"NVIDIA {name}" if name != "CPU" else "CPU"
    return hardware.split(",")[0].split("(")[0].strip()


RUN_FIELDS = [("mean patch size", _key("mean_patch_bytes"), PATCH),
              ("inference", _key("inference_flops_per_byte"), FLOPS + " per byte"),
              ("training steps", _key("steps"), "{:,}"), ("trained on", lambda r: _gpu(r.get("hardware")), "{}")]


def scaling(sources: list[dict]) -> go.Figure:
    """Held-out bits per byte against training FLOPs, one line per model family."""
    rows = [{**r, "hardware": data.get("hardware")} for data in sources for r in data["rows"]]
    family = lambda r: "byte transformer" if r["kind"] == "bytes" else f"BLT-{r['patching_mode']}"
    fields = [("held-out", _key("heldout_bpb"), BPB), ("training compute", _key("train_flops"), FLOPS),
              ("model size", _key("preset"), "{}"), *RUN_FIELDS]
    fig = go.Figure()
    for name in dict.fromkeys(map(family, rows)):
        part = sorted((r for r in rows if family(r) == name), key=lambda r: r["train_flops"])
        fig.add_scatter(x=[r["train_flops"] for r in part], y=[r["heldout_bpb"] for r in part],
                        mode="lines+markers", name=name, **_hover(part, fields))
    return _layout(fig, "Scaling: BLT patching schemes and the byte-level transformer", sources,
                   xaxis_title="training FLOPs", xaxis_type="log", yaxis_title="held-out bits per byte")


def pooling(sources: list[dict]) -> go.Figure:
    """The pooling ablation: held-out bits per byte of each pooling at equal training FLOPs, as
    points on an axis around the values (1.304 against 1.310 would not show on bars from 0)."""
    rows = [{**r, "hardware": data.get("hardware")} for data in sources for r in data["rows"]]
    fields = [("held-out", _key("heldout_bpb"), BPB), ("training compute", _key("train_flops"), FLOPS), *RUN_FIELDS]
    values = [r["heldout_bpb"] for r in rows]
    pad = max(0.004, (max(values) - min(values)) * 0.6) if values else 0.01
    fig = go.Figure(go.Scatter(
        x=[r["label"] for r in rows], y=values, name="held-out bits per byte", mode="markers+text",
        marker_size=14, text=[f"{v:.3f}" for v in values], textposition="middle right", cliponaxis=False,
        **_hover(rows, fields)))
    return _layout(fig, "Pooling ablation: max pooling + cross-attention against mean pooling", sources,
                   xaxis_title="encoder pooling", yaxis_title="held-out bits per byte (axis not from 0)",
                   yaxis_range=[min(values) - pad, max(values) + pad] if values else None)


def _param_count(text: str) -> float:
    return float(text[:-1]) * {"M": 1e6, "B": 1e9}[text[-1]]


def paper_reference(sources: list[dict]) -> go.Figure:
    """The paper's reference points: Table 1 (8B, FLOP-matched) average score against bytes per
    patch, and Table 2 (parameters that fit a fixed inference budget), with their provenance."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("8B models, FLOP-matched (Table 1)",
                                                        "parameters at a fixed inference budget (Table 2)"),
                        horizontal_spacing=0.14)
    data = sources[0]
    rows = data["rows"]
    fig.add_scatter(x=[r["bytes_per_patch"] for r in rows], y=[r["avg_score"] for r in rows],
                    mode="markers+text", text=[r["model"] for r in rows], textposition="top center",
                    cliponaxis=False, textfont_size=11, name="Table 1",
                    **_hover(rows, [("average task score", _key("avg_score"), "{:.1f}"),
                                    ("bytes per patch", _key("bytes_per_patch"), "{:.1f}"),
                                    ("training data", _key("training_data"), "{}"), ("source", _key("table"), "{}")]),
                    row=1, col=1)
    budgets = data["fixed_inference_budget"]
    for model in budgets[0]["params"]:
        part = [{**b, "model_params": b["params"][model]} for b in budgets]
        fig.add_bar(x=[f"{b['inference_flops_per_byte']:.1e} FLOPs/byte" for b in budgets],
                    y=[_param_count(b["params"][model]) for b in budgets], name=model,
                    **_hover(part, [("parameters", _key("model_params"), "{}"),
                                    ("inference budget", _key("inference_flops_per_byte"), FLOPS + " per byte"),
                                    ("compute-optimal data", _key("compute_optimal_bytes"), "{}"),
                                    ("source", _key("table"), "{}")]),
                    row=1, col=2)
    xs = [r["bytes_per_patch"] for r in rows]
    ys = [r["avg_score"] for r in rows]
    fig.update_xaxes(title_text="bytes per patch (per token for Llama 3)", range=[min(xs) - 1.5, max(xs) + 1.5],
                     row=1, col=1)
    fig.update_yaxes(title_text="average task score", range=[min(ys) - 2, max(ys) + 3], row=1, col=1)
    fig.update_yaxes(title_text="parameters", type="log", row=1, col=2)
    fig.add_annotation(text="<br>".join(textwrap.wrap(data["provenance"], 100)), xref="paper", yref="paper", x=0,
                       y=-0.3, yanchor="top", showarrow=False,
                       align="left", font_size=10)
    return _layout(fig, "The paper's reference points (arXiv 2412.09871)", sources, margin_b=140)


SPECS = {spec.name: spec for spec in (
    FigureSpec("threshold_sweep", "Threshold sweep", "threshold_sweep*.json", threshold_sweep),
    FigureSpec("languages", "Bytes per patch across languages", "languages.json", languages),
    FigureSpec("training_curves", "Training curves of the shipped models", "shipped_training.json", training_curves),
    FigureSpec("scaling", "Scaling of patching schemes", "scaling*.json", scaling),
    FigureSpec("pooling", "Pooling ablation", "pooling*.json", pooling),
    FigureSpec("paper_reference", "The paper's reference points", "paper_reference.json", paper_reference),
)}


def data_files(plot_dir: Path, pattern: str) -> list[Path]:
    """The files of plot_dir matching pattern whose resolved path stays in plot_dir (a symlink
    out of the folder or a symlink loop is skipped, as the file endpoints refuse it: paths.py)."""
    return sorted(f for f in Path(plot_dir).glob(pattern) if file_in(plot_dir, f.name) is not None)


def source_files(spec: FigureSpec, plot_dir: Path) -> list[Path]:
    return data_files(plot_dir, spec.pattern)


def available(plot_dir: Path) -> list[dict]:
    """The figures whose data files exist."""
    return [{"name": spec.name, "title": spec.title, "formats": list(FORMATS),
             "source_files": [f.name for f in files]}
            for spec in SPECS.values() if (files := source_files(spec, plot_dir))]


def build(name: str, plot_dir: Path) -> go.Figure:
    """Raises KeyError for an unknown figure, FileNotFoundError when its data is missing."""
    spec = SPECS[name]
    files = source_files(spec, plot_dir)
    if not files:
        raise FileNotFoundError(f"figure {name!r} needs {spec.pattern} in plot_data/, none found")
    return spec.build([json.loads(f.read_text()) for f in files])


# The pages' Plotly config (static/js/ui.js plotConfig): no logo, no "Share chart" (it uploads the
# figure to Plotly's cloud).
HTML_CONFIG = {"displaylogo": False, "showSendToCloud": False,
               "modeBarButtonsToRemove": ["sendChartToCloud", "lasso2d", "select2d"]}


def to_html(fig: go.Figure, plotly_js_url: str | None = None) -> str:
    """A full page. Without plotly_js_url it works offline: plotly.js (~4.7 MB) is inlined (the
    export). With it, the page loads plotly.js from that URL and weighs tens of kB (the API, which
    serves its own plotly.js)."""
    if plotly_js_url is None:
        return fig.to_html(include_plotlyjs=True, full_html=True, config=HTML_CONFIG)
    # plotly takes a script URL only when it ends in ".js"; a fragment is never requested
    return fig.to_html(include_plotlyjs=plotly_js_url if plotly_js_url.endswith(".js") else f"{plotly_js_url}#.js",
                       full_html=True, config=HTML_CONFIG)


def chromium_path() -> str | None:
    from choreographer.browsers.chromium import Chromium
    return os.environ.get("BROWSER_PATH") or Chromium.find_browser(skip_local=False)


def require_chromium() -> None:
    if chromium_path() is None:
        raise PngUnavailable("PNG export needs Chromium and none was found: install Debian's package "
                             "(apt-get install chromium) or set BROWSER_PATH to a Chrome/Chromium binary")


PNG_SIZE = {"width": 1100, "height": 600}


def to_png(fig: go.Figure) -> bytes:
    require_chromium()
    return fig.to_image(format="png", **PNG_SIZE)


def write_pngs(jobs: list[tuple[go.Figure, Path]]) -> None:
    """Several figures to PNG files with one Chromium."""
    require_chromium()
    pio.write_images([fig for fig, _ in jobs], [path for _, path in jobs], **PNG_SIZE)


def render(fig: go.Figure, fmt: str, plotly_js_url: str | None = None) -> bytes:
    """fig as one of FORMATS: Plotly JSON, an HTML page (to_html), or PNG."""
    if fmt == "json":
        return fig.to_json().encode()
    if fmt == "html":
        return to_html(fig, plotly_js_url).encode()
    return to_png(fig)


class DocumentCache:
    """Figure documents by (plot folder, figure, format, plotly.js URL), each built again only when
    its data files change (names, mtimes, sizes), all of them within max_bytes: the least recently
    used go first, a document larger than the bound is served but not kept. Builds run one at a
    time (one Chromium render at a time, one figure's transient memory), so clients asking at
    once for a document not yet built wait for one build and share its bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = self.builds = 0
        self._docs: OrderedDict[tuple, tuple[tuple, bytes]] = OrderedDict()
        self._lock = threading.Lock()              # the table
        self._build_lock = threading.Lock()        # builds

    def document(self, name: str, fmt: str, plot_dir: Path, plotly_js_url: str | None = None) -> bytes:
        """Raises KeyError for an unknown figure, FileNotFoundError when its data is missing,
        PngUnavailable for PNG without a Chromium."""
        stamp = tuple((f.name, st.st_mtime_ns, st.st_size)
                      for f in source_files(SPECS[name], plot_dir) for st in (f.stat(),))
        key = (str(plot_dir), name, fmt, plotly_js_url)
        if (doc := self._lookup(key, stamp)) is not None:
            return doc
        with self._build_lock:
            if (doc := self._lookup(key, stamp)) is None:      # or built while this one waited
                doc = render(build(name, plot_dir), fmt, plotly_js_url)
                self.builds += 1
                self._store(key, stamp, doc)
        return doc

    def _lookup(self, key: tuple, stamp: tuple) -> bytes | None:
        with self._lock:
            entry = self._docs.get(key)
            if entry is None or entry[0] != stamp:
                return None
            self._docs.move_to_end(key)
            return entry[1]

    def _store(self, key: tuple, stamp: tuple, doc: bytes) -> None:
        with self._lock:
            if key in self._docs:
                self.bytes -= len(self._docs.pop(key)[1])
            if len(doc) <= self.max_bytes:
                self._docs[key] = (stamp, doc)
                self.bytes += len(doc)
            while self.bytes > self.max_bytes:
                self.bytes -= len(self._docs.popitem(last=False)[1][1])
