"""Pages: thin views that render templates; every page fetches its data from the JSON API
(each page has a JSON twin), and plotly.js is served from the installed `plotly` package."""
from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import plotly
from flask import Blueprint, render_template, send_file

bp = Blueprint("pages", __name__)

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_VERSION = version("plotly")   # cache-busting query, so the year-long max-age stays safe

# (endpoint, path, nav label, template)
PAGES = [
    ("explore", "/", "Explore", "explore.html"),
    ("generate", "/generate", "Generate", "generate.html"),
    ("compare", "/compare", "Compare", "compare.html"),
    ("scaling", "/scaling", "Scaling", "scaling.html"),
    ("figures", "/figures", "Figures", "figures.html"),
    ("api_docs", "/api", "API", "api.html"),
]


def _view(endpoint: str, template: str):
    def view():
        return render_template(template, page=endpoint, pages=PAGES, plotly_version=PLOTLY_VERSION)
    view.__name__ = endpoint
    return view


for _endpoint, _path, _label, _template in PAGES:
    bp.add_url_rule(_path, _endpoint, _view(_endpoint, _template), methods=["GET"])


@bp.get("/static/vendor/plotly.min.js")
def plotly_js():
    return send_file(PLOTLY_JS, mimetype="text/javascript", max_age=365 * 24 * 3600)
