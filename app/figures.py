"""Plotly figures built from the JSON files in plot_data/ (each written by a blt_core experiment
with the command that made it). A figure whose data file is missing is not listed.

Used by `/api/figures` (through a DocumentCache: each document is built once per version of its
data) and by the export command; PNG goes through kaleido, which drives a Chromium (the system
one, found on PATH or through $BROWSER_PATH).
"""
from __future__ import annotations

import json
import os
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


def _hover(fields: list[tuple[str, str]]) -> str:
    """A hovertemplate showing customdata[i] under each label."""
    return "<br>".join(f"{label}: %{{customdata[{i}]{fmt}}}" for i, (label, fmt) in enumerate(fields)) \
        + "<extra>%{fullData.name}</extra>"


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
    fields = [("run", ""), ("threshold (nats)", ":.3f"), ("target B/patch", ""), ("steps", ""),
              ("training FLOPs", ":.3s"), ("inference FLOPs/byte", ":.3s"), ("run dir", "")]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("quality", "inference cost"))
    for k, data in enumerate(sources):
        rows = sorted(data["rows"], key=lambda r: r["mean_patch_bytes"])
        name = f"{rows[0].get('preset', '')} {rows[0].get('patching_mode', '')}".strip() if rows else "sweep"
        color = pio.templates["plotly_white"].layout.colorway[k % 10]
        for col, key in ((1, "heldout_bpb"), (2, "inference_flops_per_byte")):
            part = [r for r in rows if r.get(key) is not None]
            fig.add_scatter(
                x=[r["mean_patch_bytes"] for r in part], y=[r[key] for r in part], mode="lines+markers",
                name=name, legendgroup=name, showlegend=col == 1, line_color=color, hovertemplate=_hover(fields),
                customdata=[[r.get("label"), r.get("threshold"), r.get("target_patch_bytes"), r.get("steps"),
                             r.get("train_flops"), r.get("inference_flops_per_byte"), r.get("run_dir")]
                            for r in part], row=1, col=col)
    fig.update_xaxes(title_text="mean bytes per patch")
    fig.update_yaxes(title_text="held-out bits per byte", row=1, col=1)
    fig.update_yaxes(title_text="inference FLOPs per byte", row=1, col=2)
    return _layout(fig, "Threshold sweep: quality and inference cost against patch size", sources)


def languages(sources: list[dict]) -> go.Figure:
    """Mean bytes per patch by language, one colour per script."""
    rows = sorted((r for data in sources for r in data["rows"]), key=lambda r: -r["mean_patch_bytes"])
    fields = [("language", ""), ("script", ""), ("bits per byte", ":.3f"), ("held-out bytes", ""), ("model", "")]
    fig = go.Figure()
    for script in dict.fromkeys(r["script"] for r in rows):
        part = [r for r in rows if r["script"] == script]
        fig.add_bar(x=[r["language"] for r in part], y=[r["mean_patch_bytes"] for r in part], name=script,
                    hovertemplate=_hover(fields),
                    customdata=[[r["language"], r["script"], r["bpb"], r["bytes"], r.get("model")] for r in part])
    fig.update_xaxes(categoryorder="array", categoryarray=[r["language"] for r in rows])
    return _layout(fig, "Bytes per patch across languages and code", sources,
                   xaxis_title="language", yaxis_title="mean bytes per patch")


def training_curves(sources: list[dict]) -> go.Figure:
    """Training bits per byte by bytes seen, and held-out bits per byte by training FLOPs."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training", "held-out"))
    step_fields = [("step", ""), ("bits per byte", ":.3f"), ("learning rate", ":.2e"), ("bytes/s", "")]
    eval_fields = [("step", ""), ("held-out bits per byte", ":.4f"), ("bytes per patch", ":.2f"),
                   ("threshold (nats)", ":.3f"), ("training FLOPs", ":.3s")]
    runs = [run for data in sources for run in data["rows"]]
    for k, run in enumerate(runs):
        color = pio.templates["plotly_white"].layout.colorway[k % 10]
        name = f"{run['kind']} ({run['run_dir']})"
        fig.add_scatter(x=[s["bytes_seen"] for s in run["steps"]], y=[s["bpb"] for s in run["steps"]],
                        mode="lines", name=name, legendgroup=name, line_color=color,
                        hovertemplate=_hover(step_fields),
                        customdata=[[s["step"], s["bpb"], s.get("lr"), s.get("bytes_per_s")] for s in run["steps"]],
                        row=1, col=1)
        fig.add_scatter(x=[e["train_flops"] for e in run["evals"]], y=[e["heldout_bpb"] for e in run["evals"]],
                        mode="lines+markers", name=name, legendgroup=name, showlegend=False, line_color=color,
                        hovertemplate=_hover(eval_fields),
                        customdata=[[e["eval_step"], e["heldout_bpb"], e.get("mean_patch_bytes"), e.get("threshold"),
                                     e["train_flops"]] for e in run["evals"]],
                        row=1, col=2)
    fig.update_xaxes(title_text="bytes seen", row=1, col=1)
    fig.update_xaxes(title_text="training FLOPs", type="log", row=1, col=2)
    fig.update_yaxes(title_text="bits per byte", row=1, col=1)
    return _layout(fig, "Training of the shipped models", sources)


def scaling(sources: list[dict]) -> go.Figure:
    """Held-out bits per byte against training FLOPs, one line per model family."""
    rows = [{**r, "hardware": data.get("hardware")} for data in sources for r in data["rows"]]
    family = lambda r: "byte transformer" if r["kind"] == "bytes" else f"BLT-{r['patching_mode']}"
    fields = [("run", ""), ("preset", ""), ("bytes per patch", ":.2f"), ("inference FLOPs/byte", ":.3s"),
              ("steps", ""), ("run dir", ""), ("hardware", "")]
    fig = go.Figure()
    for name in dict.fromkeys(map(family, rows)):
        part = sorted((r for r in rows if family(r) == name), key=lambda r: r["train_flops"])
        fig.add_scatter(x=[r["train_flops"] for r in part], y=[r["heldout_bpb"] for r in part],
                        mode="lines+markers", name=name, hovertemplate=_hover(fields),
                        customdata=[[r.get("label"), r.get("preset"), r.get("mean_patch_bytes"),
                                     r.get("inference_flops_per_byte"), r.get("steps"), r.get("run_dir"),
                                     r["hardware"]] for r in part])
    return _layout(fig, "Scaling: BLT patching schemes and the byte-level transformer", sources,
                   xaxis_title="training FLOPs", xaxis_type="log", yaxis_title="held-out bits per byte")


def pooling(sources: list[dict]) -> go.Figure:
    """The pooling ablation: held-out bits per byte of each pooling at equal training FLOPs."""
    rows = [{**r, "hardware": data.get("hardware")} for data in sources for r in data["rows"]]
    fields = [("run", ""), ("bytes per patch", ":.2f"), ("training FLOPs", ":.3s"), ("inference FLOPs/byte", ":.3s"),
              ("steps", ""), ("run dir", ""), ("hardware", "")]
    fig = go.Figure(go.Bar(
        x=[r["label"] for r in rows], y=[r["heldout_bpb"] for r in rows], name="held-out bits per byte",
        hovertemplate=_hover(fields),
        customdata=[[r["label"], r.get("mean_patch_bytes"), r.get("train_flops"), r.get("inference_flops_per_byte"),
                     r.get("steps"), r.get("run_dir"), r["hardware"]] for r in rows]))
    return _layout(fig, "Pooling ablation: max pooling + cross-attention against mean pooling", sources,
                   xaxis_title="encoder pooling", yaxis_title="held-out bits per byte")


def _param_count(text: str) -> float:
    return float(text[:-1]) * {"M": 1e6, "B": 1e9}[text[-1]]


def paper_reference(sources: list[dict]) -> go.Figure:
    """The paper's reference points: Table 1 (8B, FLOP-matched) average score against bytes per
    patch, and Table 2 (parameters that fit a fixed inference budget), with their provenance."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("8B models, FLOP-matched (Table 1)",
                                                        "parameters at a fixed inference budget (Table 2)"))
    data = sources[0]
    rows = data["rows"]
    fig.add_scatter(x=[r["bytes_per_patch"] for r in rows], y=[r["avg_score"] for r in rows],
                    mode="markers+text", text=[r["model"] for r in rows], textposition="top center",
                    name="Table 1", hovertemplate=_hover([("model", ""), ("training data", ""), ("source", "")]),
                    customdata=[[r["model"], r["training_data"], r["table"]] for r in rows], row=1, col=1)
    budgets = data["fixed_inference_budget"]
    for model in budgets[0]["params"]:
        fig.add_bar(x=[f"{b['inference_flops_per_byte']:.1e} FLOPs/byte" for b in budgets],
                    y=[_param_count(b["params"][model]) for b in budgets], name=model,
                    hovertemplate=_hover([("model", ""), ("parameters", ""), ("compute-optimal data", ""),
                                          ("source", "")]),
                    customdata=[[model, b["params"][model], b["compute_optimal_bytes"], b["table"]] for b in budgets],
                    row=1, col=2)
    fig.update_xaxes(title_text="bytes per patch (per token for Llama 3)", row=1, col=1)
    fig.update_yaxes(title_text="average task score", row=1, col=1)
    fig.update_yaxes(title_text="parameters", type="log", row=1, col=2)
    fig.add_annotation(text=data["provenance"], xref="paper", yref="paper", x=0, y=-0.28, showarrow=False,
                       align="left", font_size=10)
    return _layout(fig, "The paper's reference points (arXiv 2412.09871)", sources)


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
