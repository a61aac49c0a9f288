"""BLT Studio: a Flask app over blt_core.

    flask --app app run                                     # development server
    gunicorn -c gunicorn.conf.py "app:create_app()"         # production (one model-holding worker)

`create_app(config)` takes overrides of app/settings.py (tests pass their own limits and model).
The model loads on first use, in the process that serves requests.
"""
from __future__ import annotations

import threading

from flask import Flask

from blt_core import bpe

from . import api, errors, figures, files, memory, pages, settings, static_files
from .jsonio import FiniteJSONProvider
from .models import ModelHolder, Slots


def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__, template_folder=str(settings.REPO_ROOT / "templates"),
                static_folder=str(settings.REPO_ROOT / "static"))
    app.json = FiniteJSONProvider(app)
    app.url_map.merge_slashes = False       # '/data//etc/passwd' is a JSON 404, not a redirect
    app.config.update(settings.load(config))
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_REQUEST_BYTES"]
    cfg = app.config
    # Slots of size 0 are sized from the model as it loads: analyses by memory (app/memory.py),
    # generations by device.
    app.extensions["blt_model"] = ModelHolder(
        cfg["MODEL"], cfg["DEVICE"], decode=cfg["DECODE"], entropy_memo_mb=cfg["ENTROPY_MEMO_MB"],
        generation=Slots(cfg["GENERATION_SLOTS"], 0, "generation"),
        analysis=Slots(cfg["ANALYSIS_SLOTS"], cfg["ANALYSIS_WAIT_S"], "analysis"),
        analysis_budget=memory.AnalysisBudget(cfg["ANALYSIS_MEMORY_MB"], cfg["MAX_TEXT_BYTES"], cfg["ANALYSIS_SLOTS"]))
    app.extensions["blt_corpus"] = Slots(cfg["CORPUS_SLOTS"], 0, "corpus")
    app.extensions["blt_figures"] = figures.DocumentCache(cfg["FIGURE_CACHE_MB"] * memory.MIB)

    errors.register(app)
    static_files.register(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(files.bp)
    from .export import command as export_command   # here, so `python -m app.export` imports it once
    app.cli.add_command(export_command)

    @app.after_request
    def security_headers(response):
        for name, value in app.config["SECURITY_HEADERS"].items():
            response.headers.setdefault(name, value)
        return response

    return app


def start_loading(app: Flask) -> None:
    """What a serving worker (never gunicorn's master) starts as it boots, in the background so
    requests are served meanwhile: the model (/healthz reports its state) and the BPE
    vocabularies of /api/tokenize (~2 s, 59 MiB)."""
    app.extensions["blt_model"].load_in_background()
    threading.Thread(target=bpe.load_all, name="bpe-load", daemon=True).start()
