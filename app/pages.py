"""Pages: thin views that render templates; every page fetches its data from the JSON API
(each page has a JSON twin). plotly.js and its stylesheet are served from the installed `plotly`
package, so nothing comes from a CDN and no front-end build step exists."""
from __future__ import annotations

import base64
import functools
import hashlib
import re
from importlib.metadata import version
from pathlib import Path

import plotly
from flask import Blueprint, abort, current_app, render_template, request

from .static_files import file_stamp, respond

bp = Blueprint("pages", __name__)

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLOTLY_VERSION = version("plotly")   # cache-busting query, so the year-long max-age stays safe

# (endpoint, path, nav label, template)
PAGES = [
    ("explore", "/", "Explore", "explore.html"),
    ("generate", "/generate", "Generate", "generate.html"),
    ("compare", "/compare", "Compare", "compare.html"),
    ("corpus", "/corpus", "Corpus", "corpus.html"),
    ("scaling", "/scaling", "Scaling", "scaling.html"),
    ("figures", "/figures", "Figures", "figures.html"),
    ("api_docs", "/api", "API", "api.html"),
]


def _view(endpoint: str, template: str):
    def view():
        return render_template(template, page=endpoint, pages=PAGES, plotly_version=PLOTLY_VERSION,
                               plotly_sheets=list(plotly_stylesheets()))
    view.__name__ = endpoint
    return view


for _endpoint, _path, _label, _template in PAGES:
    bp.add_url_rule(_path, _endpoint, _view(_endpoint, _template), methods=["GET"])


@bp.get("/static/vendor/plotly.min.js")
def plotly_js():
    """gzip: 4.7 MB -> 1.4 MB over the wire (app/static_files.py)."""
    return respond(current_app.extensions["blt_static"], "plotly.min.js", file_stamp(PLOTLY_JS), PLOTLY_JS.read_bytes,
                   "text/javascript", "v" in request.args, PLOTLY_JS)


def _js_string(literal: str) -> str:
    if "\\" in literal:
        raise RuntimeError(f"plotly.js {PLOTLY_VERSION}: a style string has escapes; extend _js_string")
    return literal[1:-1]


@functools.cache
def plotly_stylesheets() -> dict[str, str]:
    """The CSS plotly.js would insert as inline <style> elements (which a strict
    Content-Security-Policy blocks), by the element id it checks first: its global rules, which it
    skips when `<link id="plotly.js-style-global" class="no-inline-styles">` exists, and the map
    library's CSS, skipped when an element with its id exists. Read from the bundle itself, so the
    sheets always match the plotly.js that is served."""
    source = PLOTLY_JS.read_text(encoding="utf-8")
    start = source.index('{"X,X div"')
    end = source.index("};for(", start) + 1
    literal = source[start:end]
    rules = re.findall(r"""("[^"]+"|\w+):("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""", literal)
    if "{" + ",".join(f"{key}:{value}" for key, value in rules) + "}" != literal:
        raise RuntimeError(f"plotly.js {PLOTLY_VERSION}: its style rules are no longer a plain object literal")
    selector = lambda key: key.strip('"').replace("X", ".js-plotly-plot .plotly").replace("Y", ".plotly-notifier")
    sheets = {"plotly.js-style-global": "".join(f"{selector(k)}{{{_js_string(v)}}}\n" for k, v in rules)}
    injected = (r"""if\(!document\.getElementById\("([\w.-]+)"\)\)\{var (\w+)=document\.createElement\("style"\);"""
                r"""\2\.id="\1",\2\.textContent=('[^']*'|"[^"]*")""")
    sheets.update({m[1]: _js_string(m[3]) for m in re.finditer(injected, source)})
    if source.count('createElement("style")') != len(sheets):
        raise RuntimeError(f"plotly.js {PLOTLY_VERSION} creates <style> elements this module does not know")
    return sheets


@functools.cache
def plotly_csp_style_src() -> str:
    """The Content-Security-Policy `style-src` value plotly.js needs once its stylesheets are files:
    'self', plus the hashes of the fixed style attributes it writes for its pseudo-HTML text (the
    <sup> of a log axis's 10^15 label, <b>, <i>, ...), allowed by 'unsafe-hashes' and no other
    inline style."""
    source = PLOTLY_JS.read_text(encoding="utf-8")
    tag_styles = re.search(r'\{sup:"font-size:70%"[^}]*\}', source)
    if tag_styles is None:
        raise RuntimeError(f"plotly.js {PLOTLY_VERSION}: its pseudo-HTML tag styles were not found")
    values = sorted(set(re.findall(r':"([^"]*)"', tag_styles[0])))
    hashes = [base64.b64encode(hashlib.sha256(v.encode()).digest()).decode() for v in values]
    return " ".join(["'self'", "'unsafe-hashes'", *(f"'sha256-{h}'" for h in hashes)])


@bp.get("/static/vendor/plotly-css/<sheet_id>.css")
def plotly_css(sheet_id: str):
    sheet = plotly_stylesheets().get(sheet_id)
    if sheet is None:
        abort(404)
    return respond(current_app.extensions["blt_static"], f"plotly-css/{sheet_id}", (PLOTLY_VERSION,),
                   sheet.encode, "text/css", "v" in request.args)
