"""Stored figures and data: plot_data/ and the export folder, listed and served read-only.

A file is served only when its name is allow-listed (letters, digits, '.', '_', '-'; no path),
its extension belongs to the endpoint, and its resolved path (symlinks followed) stays inside its
folder (paths.py; a symlink loop is no file). Anything else is a JSON 404 that does not say
which check failed.
"""
from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, current_app, send_file, url_for

from . import paths, security
from .errors import not_found

bp = Blueprint("files", __name__)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
KINDS = {   # endpoint -> (kind in the listing, extension -> media type)
    "visualization": ("html", {".html": "text/html"}),
    "image": ("image", {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}),
    "data": ("data", {".json": "application/json", ".csv": "text/csv", ".jsonl": "application/jsonl"}),
}


def folders() -> list[Path]:
    cfg = current_app.config
    return [Path(cfg["PLOT_DATA_DIR"]), Path(cfg["EXPORT_DIR"])]


def endpoint_for(name: str) -> str | None:
    suffix = Path(name).suffix.lower()
    return next((ep for ep, (_, types) in KINDS.items() if suffix in types), None)


def resolve(name: str, endpoint: str) -> Path | None:
    """The file `name` in the first folder that has it, if every rule holds; else None."""
    if not NAME.fullmatch(name) or endpoint_for(name) != endpoint:
        return None
    return next(filter(None, (paths.file_in(folder, name) for folder in folders())), None)


def serve(name: str, endpoint: str):
    path = resolve(name, endpoint)
    if path is None:
        raise not_found(f"no {KINDS[endpoint][0]} file named {name!r}")
    response = send_file(path, mimetype=KINDS[endpoint][1][path.suffix.lower()], max_age=60)
    response.headers["Content-Security-Policy"] = (security.figure_file_policy(path) if endpoint == "visualization"
                                                   else security.STORED_FILE_POLICY)
    return response


@bp.get("/api/visualizations")
def visualizations():
    files, seen = [], set()
    for folder in folders():
        for path in sorted(folder.glob("*")) if folder.is_dir() else []:
            endpoint = endpoint_for(path.name)
            found = resolve(path.name, endpoint) if endpoint and path.name not in seen else None
            if found is not None and found == paths.resolved(path):
                seen.add(path.name)
                files.append({"name": path.name, "kind": KINDS[endpoint][0], "folder": folder.name,
                              "url": url_for(f"files.{endpoint}", name=path.name), "bytes": found.stat().st_size})
    return {"files": files}


@bp.get("/visualizations/<path:name>")
def visualization(name):
    return serve(name, "visualization")


@bp.get("/images/<path:name>")
def image(name):
    return serve(name, "image")


@bp.get("/data/<path:name>")
def data(name):
    return serve(name, "data")
