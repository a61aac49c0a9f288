"""The JSON API: thin views that validate input, call blt_core and shape the output (reports.py).
The contract, with an example for every endpoint, is app/openapi.py (served at /api/openapi.json).
"""
from __future__ import annotations

import json
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import torch
from flask import Blueprint, Response, current_app, request, url_for

from blt_core import bpe, corpus
from blt_core.patching import PatchingParams, patches_from_mask

from . import figures, jsonio, openapi, reports, security, validation as v
from .errors import ApiError, not_found
from .generation import Generation, prompt_limits
from .models import ModelHolder, display_name
from .pages import PLOTLY_VERSION

bp = Blueprint("api", __name__)

CORPUS_PATHS = ("/api/corpus", "/api/corpus/stream")     # bodies up to MAX_CORPUS_BYTES (app/bridge.py)


def holder() -> ModelHolder:
    return current_app.extensions["blt_model"]


def body(schema, required=()) -> dict:
    return v.validate(v.json_body(), schema(current_app.config), required)


@contextmanager
def model_input_errors():
    """blt_core raises ValueError for inputs it cannot take (e.g. an entropy mode on a model
    without an entropy model); those are the client's to fix."""
    try:
        yield
    except ValueError as err:
        raise v.validation(str(err)) from None


def patching_params(req: dict) -> PatchingParams:
    """The request's patching options; absent ones are None (the model's default)."""
    return PatchingParams(req.get("mode"), req.get("threshold"), req.get("max_patch_length"), req.get("patch_size"))


# ---------------------------------------------------------------------------------- model
@bp.get("/healthz")
def healthz():
    state = holder().describe()
    status = {"ready": "ok", "failed": "degraded"}.get(state["state"], state["state"])
    return {"status": status, "model": state}


@bp.get("/api/models")
def models():
    h, cfg = holder(), current_app.config
    try:
        loaded = h.get()
        model_cfg = loaded.model.config
        defaults = asdict(PatchingParams().resolve(model_cfg))
        prompt = prompt_limits(model_cfg, cfg["MAX_TEXT_BYTES"], cfg["DEFAULT_NEW_BYTES"])
    except ApiError:                 # degraded: still describe the app and say what is wrong
        defaults, prompt = None, dict.fromkeys(("context_bytes", "context_patches", "max_prompt_bytes"))
    return {
        "model": h.describe(), "modes": list(v.MODES), "defaults": defaults,
        "tokenizers": [{"name": t.name, "label": t.label, "vocab_size": t.n_tokens} for t in bpe.VOCABULARIES.values()],
        "limits": {
            "max_request_bytes": cfg["MAX_REQUEST_BYTES"], "max_text_bytes": cfg["MAX_TEXT_BYTES"],
            **prompt, "max_prompt_bytes_rule": "min(max_text_bytes, context_bytes - 1 - max_new_bytes)",
            "default_new_bytes": cfg["DEFAULT_NEW_BYTES"],
            "max_new_bytes": cfg["MAX_NEW_BYTES"], "threshold": list(cfg["THRESHOLD_RANGE"]),
            "max_patch_length": [1, cfg["MAX_PATCH_LENGTH"]], "patch_size": [1, cfg["MAX_PATCH_SIZE"]],
            "temperature": [0, cfg["MAX_TEMPERATURE"]], "top_k": [0, cfg["MAX_TOP_K"]], "top_p": [0, 1],
            "repetition_penalty": list(cfg["REPETITION_PENALTY_RANGE"]),
            "detail_bytes": [1, cfg["DETAIL_MAX_BYTES"]], "detail_top_k": [1, cfg["DETAIL_MAX_TOP_K"]],
            "max_stop_strings": cfg["MAX_STOP_STRINGS"], "max_stop_bytes": cfg["MAX_STOP_BYTES"],
            "generation_slots": h.generation.size,
            "max_corpus_bytes": cfg["MAX_CORPUS_BYTES"], "corpus_slots": cfg["CORPUS_SLOTS"],
            **h.analysis_budget.limits(h.loaded and h.loaded.model.config), "analysis_wait_s": cfg["ANALYSIS_WAIT_S"],
            "figure_cache_mb": cfg["FIGURE_CACHE_MB"], "entropy_memo_mb": cfg["ENTROPY_MEMO_MB"]},
    }


# ---------------------------------------------------------------------------------- analysis
def _entropy_report(text: str, entropies: list[float], model_name: str) -> dict:
    return {"text": text, **reports.byte_table(text), "entropies": entropies, "model": display_name(model_name)}


def selected(report: dict, fields: list[str] | None) -> dict:
    """The report, or only the fields asked for (in the report's order)."""
    return report if fields is None else {name: value for name, value in report.items() if name in fields}


@bp.post("/api/entropy")
def entropy():
    req = body(v.entropy_schema, required=("text",))
    h = holder()
    loaded = h.get()
    model = loaded.model
    ids = torch.tensor([model.tokenizer.encode(req["text"])], device=model.device)
    with h.analysis.held(), model_input_errors():
        entropies = h.run(model.entropies, ids)[0, 1:].tolist()
    return selected(_entropy_report(req["text"], entropies, loaded.name), req["fields"])


@bp.post("/api/entropy/detail")
def entropy_detail():
    """Per byte of a span: the entropy after it and the entropy model's top next bytes, from one
    pass over the whole text as /api/entropy makes it (so the entropies are equal to its)."""
    req = body(v.entropy_detail_schema, required=("text", "start"))
    start, stop, top_k = v.byte_span(req)
    h = holder()
    loaded = h.get()
    model = loaded.model
    ids = torch.tensor([model.tokenizer.encode(req["text"])], device=model.device)
    with h.analysis.held(), model_input_errors():
        entropies, probs, top = (x[0, 1 + start:1 + stop] for x in h.run(model.next_byte_stats, ids, top_k))
    return {"start": start, "stop": stop, "top_k": top_k,
            "positions": reports.next_byte_table(req["text"], start, entropies.tolist(), probs.tolist(), top.tolist()),
            "model": display_name(loaded.name)}


@bp.post("/api/patch")
def patch():
    req = body(v.patch_schema, required=("text",))
    h = holder()
    loaded = h.get()
    model, text, patching = loaded.model, req["text"], patching_params(req)
    with h.analysis.held(), model_input_errors():
        patches = h.run(model.patch, text, patching=patching)
    lengths, starts = reports.byte_patches(patches)
    return selected({
        **_entropy_report(text, patches.entropies[1:] if patches.entropies else None, loaded.name),
        **asdict(patching.resolve(model.config)),
        "next_starts_patch": patches.next_starts_patch,
        **reports.patch_report(text.encode("utf-8"), lengths, starts),
    }, req["fields"])


@bp.post("/api/compare")
def compare():
    """Every patching mode on one text, from one entropy-model pass."""
    req = body(v.compare_schema, required=("text",))
    h = holder()
    model = h.get().model
    data = req["text"].encode("utf-8")
    ids = torch.tensor([model.tokenizer.encode(data)], device=model.device)
    patching, modes = patching_params(req), {}

    def start_masks() -> dict:
        entropies = model.entropies(ids) if model.entropy_model is not None else None
        return {mode: model.start_mask(ids, entropies=entropies, patching=replace(patching, mode=mode))[0].cpu()
                for mode in v.MODES if entropies is not None or not mode.startswith("entropy")}

    with h.analysis.held(), model_input_errors():
        masks = h.run(start_masks)
    for mode, mask in masks.items():
        lengths, starts = reports.byte_patches(patches_from_mask(mask))
        modes[mode] = {"patch_lengths": lengths, "patch_starts": starts, "stats": reports.patch_stats(lengths)}
    return {"text": req["text"], "modes": modes}


@bp.post("/api/tokenize")
def tokenize():
    """The text's tokens under real BPE vocabularies (blt_core.bpe), and the BLT's patches beside
    them (unless blt is false)."""
    req = body(v.tokenize_schema, required=("text",))
    text = req["text"]
    data = text.encode("utf-8")
    out = {"text": text, "bytes": len(data),
           "tokenizers": [reports.token_report(data, bpe.encoding(name).encode(text), bpe.VOCABULARIES[name])
                          for name in req["tokenizers"] or v.TOKENIZERS]}
    if req["blt"] is not False:
        h = holder()
        loaded = h.get()
        patching = patching_params(req)
        with h.analysis.held(), model_input_errors():
            patches = h.run(loaded.model.patch, text, patching=patching)
        lengths, starts = reports.byte_patches(patches)
        out["blt"] = {"model": display_name(loaded.name), **asdict(patching.resolve(loaded.model.config)),
                      "patch_lengths": lengths, "patch_starts": starts, "stats": reports.patch_stats(lengths)}
    return out


# ---------------------------------------------------------------------------------- corpus
def _corpus_request() -> tuple[str, dict]:
    """The uploaded text (the body) and the analysis options (the query string)."""
    cfg = current_app.config
    query = v.query(v.corpus_schema(cfg))
    text = v.text_body(cfg["MAX_CORPUS_BYTES"])
    options = {"patching": patching_params(query)}
    for name, option in (("passage_bytes", "passage_bytes"), ("passages", "passage_count")):
        if query[name] is not None:                     # unset: blt_core.corpus's defaults
            options[option] = query[name]
    return text, options


def _corpus_slots(stack: ExitStack) -> None:
    """One corpus slot (CORPUS_SLOTS at once, then 429 at once) and one analysis slot: reading one
    512-byte window at a time, a 1 MiB corpus holds less than an analysis slot's worth of memory
    (README, "Memory")."""
    stack.enter_context(current_app.extensions["blt_corpus"].held())
    stack.enter_context(holder().analysis.held())


@bp.post("/api/corpus")
def corpus_report():
    """Bits per byte, patch sizes, BPE token counts and the most and least predictable passages
    of an uploaded text (text/plain body, at most MAX_CORPUS_BYTES)."""
    text, options = _corpus_request()
    h = holder()
    model = h.get().model
    with ExitStack() as stack, model_input_errors():
        _corpus_slots(stack)
        steps = corpus.analysis(model, text, **options)
        while True:
            try:
                h.run(next, steps)          # one window at a time: generation steps go between
            except StopIteration as finished:
                return finished.value


@bp.post("/api/corpus/stream")
def corpus_stream():
    """The same as /api/corpus, as server-sent events: `progress` {bytes_done, bytes_total} after
    each window, then `done` with the report (or `error`)."""
    text, options = _corpus_request()
    h = holder()
    model = h.get().model
    stack = ExitStack()
    try:
        _corpus_slots(stack)
    except BaseException:                  # the corpus slot taken, the analysis slot not: give it back
        stack.close()
        raise
    steps, total = corpus.analysis(model, text, **options), len(text.encode("utf-8"))

    def events():
        try:
            while True:
                try:
                    done = h.run(next, steps)              # one window, as /api/corpus
                except StopIteration as finished:
                    yield sse("done", finished.value)
                    return
                yield sse("progress", {"bytes_done": done, "bytes_total": total})
        except (ValueError, torch.OutOfMemoryError) as err:
            kind = "out_of_memory" if isinstance(err, torch.OutOfMemoryError) else "validation"
            yield sse("error", {"error": str(err), "error_type": kind})
        finally:
            stack.close()

    response = Response(events(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(stack.close)
    return response


# ---------------------------------------------------------------------------------- generation
def _generation(req: dict) -> Generation:
    cfg = current_app.config
    sampling = {
        "max_new_bytes": req["max_new_bytes"] or cfg["DEFAULT_NEW_BYTES"],
        "temperature": 0.0 if req["temperature"] is None else req["temperature"],
        "top_k": req["top_k"] or None, "top_p": req["top_p"],
        "repetition_penalty": 1.0 if req["repetition_penalty"] is None else req["repetition_penalty"],
        "seed": req["seed"], "stop": tuple(req["stop"] or ()),
        "stop_at_eos": req["stop_at_eos"] is not False}
    return Generation(holder(), req["prompt"] or "", patching_params(req), sampling)


@bp.post("/api/generate")
def generate():
    gen = _generation(body(v.generate_schema))
    for name, data in gen.events():
        if name == "error":
            raise ApiError(503 if data["error_type"] == "out_of_memory" else 500, data["error_type"], data["error"])
        if name == "done":
            done = data
    result = gen.result
    starts = set(result.patch_starts)
    return {"prompt": result.prompt, "text": result.text, "bytes": list(result.bytes),
            "entropies": result.entropies, "starts_patch": [i in starts for i in range(len(result.bytes))],
            **done}


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {jsonio.dumps(data)}\n\n"


def _sse_chunks(gen):
    """The events as SSE, each chunk every event ready at the time: one byte per chunk while the
    client keeps up, several when generation runs ahead of the writes."""
    ready = []
    for name, data in gen.events():
        ready.append(sse(name, data))
        if not gen.more_ready():
            yield "".join(ready)
            ready = []
    if ready:
        yield "".join(ready)


@bp.post("/api/generate/stream")
def generate_stream():
    """Server-sent events: `byte` per generated byte, then `done` (or `error`). A client that
    disconnects makes the server close the response, which stops generation (Generation.close)."""
    gen = _generation(body(v.generate_schema))
    response = Response(_sse_chunks(gen), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    response.call_on_close(gen.close)
    return response


# ---------------------------------------------------------------------------------- data and figures
def _plot_dir() -> Path:
    return Path(current_app.config["PLOT_DATA_DIR"])


def _language_rows() -> list[dict]:
    found = figures.data_files(_plot_dir(), "languages.json")
    if not found:
        raise not_found("plot_data/languages.json does not exist yet")
    return json.loads(found[0].read_text())["rows"]


@bp.get("/api/languages")
def language_rows():
    return {"rows": _language_rows()}


@bp.get("/api/languages.csv")
def language_csv():
    csv = pd.DataFrame(_language_rows()).to_csv(index=False)
    return Response(csv, mimetype="text/csv", headers={"Content-Disposition": "attachment; filename=languages.csv"})


@bp.get("/api/figures")
def figure_list():
    return figures.available(_plot_dir())


@bp.get("/api/figures/<name>")
def figure(name):
    fmt = request.args.get("format", "json")
    if fmt not in figures.FORMATS:
        raise v.validation(f"format must be one of {', '.join(figures.FORMATS)}, found {v.short(fmt)}")
    try:
        doc = current_app.extensions["blt_figures"].document(name, fmt, _plot_dir(),
                                                             url_for("pages.plotly_js", v=PLOTLY_VERSION))
    except (KeyError, FileNotFoundError):
        raise not_found(f"no figure named {v.short(name)}; GET /api/figures lists them") from None
    except figures.PngUnavailable as err:
        raise ApiError(503, "png_unavailable", str(err)) from None
    headers = {"Content-Security-Policy": security.figure_policy(doc)} if fmt == "html" else {}
    return Response(doc, mimetype=figures.MIMETYPES[fmt], headers=headers)


@bp.get("/api/openapi.json")
def openapi_document():
    return openapi.document()
