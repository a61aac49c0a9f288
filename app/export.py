"""Write every figure of plot_data/ as offline HTML (plotly.js inlined), Plotly JSON and PNG:
<name>.html, <name>.plotly.json, <name>.png.

    python -m app.export --out exports/            # or: flask --app app export --out exports/
    python -m app.export --formats html json --json

PNG needs Chromium (kaleido drives it; Debian's /usr/bin/chromium is found on PATH, or set
BROWSER_PATH). Without one, HTML and JSON are still written and a message says why PNG was not.
Exit status: 0 when every requested file was written or PNG was skipped for lack of Chromium,
1 on any other error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from tqdm import tqdm

from . import figures, settings


def export(out: Path, plot_dir: Path, formats: tuple[str, ...] = figures.FORMATS) -> dict:
    """-> {"written": [paths], "png_skipped": reason or None}."""
    out.mkdir(parents=True, exist_ok=True)
    names = [f["name"] for f in figures.available(plot_dir)]
    png_skipped = None
    if "png" in formats:
        try:
            figures.require_chromium()
        except figures.PngUnavailable as err:
            png_skipped = str(err)
    written, png_jobs = [], []
    for name in tqdm(names, desc="figures", unit="figure"):
        fig = figures.build(name, plot_dir)
        if "html" in formats:
            written.append(_write(out / f"{name}.html", figures.to_html(fig)))
        if "json" in formats:
            written.append(_write(out / f"{name}.plotly.json", fig.to_json()))   # not to shadow plot_data's
        if "png" in formats and png_skipped is None:
            png_jobs.append((fig, out / f"{name}.png"))
    if png_jobs:
        print(f"rendering {len(png_jobs)} PNG files with Chromium ...", file=sys.stderr)
        figures.write_pngs(png_jobs)                 # one browser for all of them
        written += [path for _, path in png_jobs]
    return {"written": [str(p) for p in written], "png_skipped": png_skipped}


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def _report(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        for path in result["written"]:
            print(path)
    if result["png_skipped"]:
        print(f"PNG not written: {result['png_skipped']}", file=sys.stderr)


def main(argv=None) -> int:
    defaults = settings.load()
    ap = argparse.ArgumentParser(prog="python -m app.export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=defaults["EXPORT_DIR"], help="output folder (default exports/)")
    ap.add_argument("--plot-data", default=defaults["PLOT_DATA_DIR"], help="folder of the figures' data")
    ap.add_argument("--formats", nargs="+", choices=figures.FORMATS, default=list(figures.FORMATS))
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args(argv)
    try:
        result = export(Path(args.out), Path(args.plot_data), tuple(args.formats))
    except Exception as err:  # a CLI: report any failure as one line and a non-zero status
        print(f"export failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    _report(result, args.json)
    return 0


@click.command("export")
@with_appcontext
@click.option("--out", default=None, help="output folder (default: the app's EXPORT_DIR)")
@click.option("--format", "formats", multiple=True, type=click.Choice(figures.FORMATS), help="repeatable")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON")
def command(out, formats, as_json):
    """Write every figure as offline HTML, JSON and PNG."""
    cfg = current_app.config
    result = export(Path(out or cfg["EXPORT_DIR"]), Path(cfg["PLOT_DATA_DIR"]), tuple(formats) or figures.FORMATS)
    _report(result, as_json)


if __name__ == "__main__":
    sys.exit(main())
