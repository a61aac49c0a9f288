"""Adversarial input to every API endpoint and every file endpoint, one test per case: each
answers a 4xx JSON error of the one shape, naming the problem, never a 500 (issue #6).
Cases follow text-generation-inference and vLLM: 415 for a body that is not declared JSON, 400
for one that does not parse, 413 over a size cap, 422 for a field out of its type or range."""
from __future__ import annotations

import io
import shutil

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app

from webapp_helpers import REPO, assert_error, make_app

MAX_REQUEST_BYTES, MAX_TEXT_BYTES, MAX_NEW_BYTES = 4096, 1024, 64
ENDPOINTS = ["/api/entropy", "/api/patch", "/api/compare", "/api/generate", "/api/generate/stream"]
SECRET = b'{"rows": [], "secret": "SECRET"}'


def text_field(url: str) -> str:
    return "prompt" if "generate" in url else "text"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A copy of plot_data with one allowed file per endpoint, a secret beside the folder and a
    symlink inside it pointing at the secret."""
    root = tmp_path_factory.mktemp("adversarial")
    plot_data, exports = root / "plot_data", root / "exports"
    shutil.copytree(REPO / "plot_data", plot_data)
    exports.mkdir()
    for ext in ("json", "png", "html"):
        (root / f"secret.{ext}").write_bytes(SECRET)
        (exports / f"ok.{ext}").write_bytes(b"{}")
        (plot_data / f"escape.{ext}").symlink_to(root / f"secret.{ext}")
    return root


@pytest.fixture(scope="module")
def client(folders):
    app = make_app(MAX_REQUEST_BYTES=MAX_REQUEST_BYTES, MAX_TEXT_BYTES=MAX_TEXT_BYTES, MAX_NEW_BYTES=MAX_NEW_BYTES,
                   DEFAULT_NEW_BYTES=4, PLOT_DATA_DIR=str(folders / "plot_data"), EXPORT_DIR=str(folders / "exports"))
    return app.test_client()


def post_raw(client, url, data, content_type="application/json"):
    return client.post(url, data=data, content_type=content_type)


# ---------------------------------------------------------------------------------- the body as a whole
def body_of(url: str, value: str) -> str:
    """A JSON object text with the endpoint's text field set to `value` (raw JSON)."""
    return f'{{"{text_field(url)}": {value}}}'


BAD_BODIES = {   # id: (body, given the endpoint; status, error_type, the error mentions)
    "not JSON": (lambda url: "text=hello", 400, "invalid_json", "not valid JSON"),
    "empty body": (lambda url: "", 400, "invalid_json", "not valid JSON"),
    "truncated JSON": (lambda url: body_of(url, '"abc')[:-1], 400, "invalid_json", "not valid JSON"),
    "JSON array": (lambda url: '["text", "hello"]', 422, "validation", "must be a JSON object, found a list"),
    "JSON string": (lambda url: '"hello"', 422, "validation", "must be a JSON object, found a string"),
    "JSON number": (lambda url: "42", 422, "validation", "must be a JSON object, found an integer"),
    "JSON null": (lambda url: "null", 422, "validation", "must be a JSON object, found null"),
    "invalid UTF-8": (lambda url: body_of(url, '"a').encode() + b'\xff\xfe"}', 400, "invalid_json", "not valid UTF-8"),
    "overlong UTF-8": (lambda url: body_of(url, '"').encode() + b'\xc0\xaf"}', 400, "invalid_json", "UTF-8"),
    "UTF-8 byte order mark": (lambda url: b"\xef\xbb\xbf" + body_of(url, '"a"').encode(), 400, "invalid_json", "BOM"),
    "lone high surrogate": (lambda url: body_of(url, '"\\ud800"'), 422, "validation", "lone surrogate"),
    "lone low surrogate": (lambda url: body_of(url, '"ab\\udfff"'), 422, "validation", "lone surrogate at character 2"),
    "NUL escape": (lambda url: body_of(url, '"a\\u0000b"'), 422, "validation", "U+0000"),
    "raw NUL byte": (lambda url: body_of(url, '"a\x00b"'), 400, "invalid_json", "control character"),
    "escape control byte": (lambda url: body_of(url, '"\\u001b[31m"'), 422, "validation", "U+001B"),
    "DEL": (lambda url: body_of(url, '"a\\u007f"'), 422, "validation", "U+007F"),
    "C1 control": (lambda url: body_of(url, '"a\\u0085"'), 422, "validation", "U+0085"),
    "text over the byte cap": (lambda url: body_of(url, f'"{"a" * (MAX_TEXT_BYTES + 1)}"'), 413,
                               "payload_too_large", f"{MAX_TEXT_BYTES + 1} bytes of UTF-8; the limit is 1024"),
    "multi-byte text over the byte cap": (lambda url: body_of(url, f'"{"é" * (MAX_TEXT_BYTES // 2 + 1)}"'), 413,
                                          "payload_too_large", "max_text_bytes"),
    "body over the request cap": (lambda url: body_of(url, '"a"') + " " * MAX_REQUEST_BYTES, 413,
                                  "payload_too_large", f"larger than the limit of {MAX_REQUEST_BYTES} bytes"),
    "deeply nested array": (lambda url: "[" * 2000 + "]" * 2000, 400, "invalid_json", "nested too deeply"),
    "deeply nested field": (lambda url: body_of(url, "[" * 1500 + "]" * 1500), 400, "invalid_json",
                            "nested too deeply"),
    "nested field within the parser's depth": (lambda url: body_of(url, "[" * 500 + "]" * 500), 422, "validation",
                                               "must be a string, found a list"),
    "text is a number": (lambda url: body_of(url, "5"), 422, "validation", "must be a string, found an integer"),
    "text is an object": (lambda url: body_of(url, '{"$gt": ""}'), 422, "validation", "found an object"),
}


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("case", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_body(client, case, url):
    make_body, status, error_type, mentions = case
    assert_error(post_raw(client, url, make_body(url)), status, error_type, mentions)


@pytest.mark.parametrize("url", ENDPOINTS)
def test_chunked_body_over_the_request_cap(client, url):
    """No Content-Length (a chunked body, as gunicorn passes it on): werkzeug stops reading at
    the cap; the body must be refused, not parsed cut short."""
    data = (body_of(url, f'"{"a" * MAX_TEXT_BYTES}"') + " " * MAX_REQUEST_BYTES).encode()
    environ = EnvironBuilder(path=url, method="POST", input_stream=io.BytesIO(data), content_type="application/json",
                             environ_overrides={"wsgi.input_terminated": True}).get_environ()
    del environ["CONTENT_LENGTH"]
    response = client.application.response_class(*run_wsgi_app(client.application, environ))
    assert_error(response, 413, "payload_too_large", f"larger than the limit of {MAX_REQUEST_BYTES} bytes")


@pytest.mark.parametrize("url", ["/api/entropy", "/api/patch", "/api/compare"])
def test_empty_text(client, url):
    assert_error(client.post(url, json={"text": ""}), 422, "validation", "text must not be empty")


@pytest.mark.parametrize("url", ["/api/entropy", "/api/patch", "/api/compare"])
def test_missing_text(client, url):
    assert_error(client.post(url, json={}), 422, "validation", "text is required")


CONTENT_TYPES = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                 "text/json", "application/json-patch+json", "application/javascript"]


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("content_type", CONTENT_TYPES + [None], ids=CONTENT_TYPES + ["missing"])
def test_wrong_or_missing_content_type(client, url, content_type):
    response = post_raw(client, url, body_of(url, '"hello"'), content_type)
    assert_error(response, 415, "unsupported_media_type", "Content-Type must be application/json")


# ---------------------------------------------------------------------------------- numbers and fields
NUMERIC_FIELDS = {   # (endpoint, field): the kind of number it takes
    ("/api/patch", "threshold"): "number", ("/api/patch", "max_patch_length"): "integer",
    ("/api/compare", "patch_size"): "integer", ("/api/generate", "temperature"): "number",
    ("/api/generate", "top_p"): "number", ("/api/generate", "repetition_penalty"): "number",
    ("/api/generate/stream", "max_new_bytes"): "integer", ("/api/generate", "top_k"): "integer",
    ("/api/generate", "seed"): "integer",
}
HUGE = "1" + "0" * 400
BAD_NUMBERS = {   # id: (raw JSON value, status, what the error mentions for a number / an integer field)
    "NaN": ("NaN", 400, "NaN is not valid JSON", "NaN is not valid JSON"),
    "Infinity": ("Infinity", 400, "Infinity is not valid JSON", "Infinity is not valid JSON"),
    "-Infinity": ("-Infinity", 400, "-Infinity is not valid JSON", "-Infinity is not valid JSON"),
    "1e999": ("1e999", 422, "must be a finite number, found inf", "must be an integer, found a number"),
    "-1e999": ("-1e999", 422, "must be a finite number, found -inf", "must be an integer, found a number"),
    "400-digit integer": (HUGE, 422, "must be a finite number, found an integer of 401 digits", "must be in"),
    "negative": ("-1000", 422, "must be in", "must be in"),
    "boolean": ("true", 422, "must be a number, found a boolean", "must be an integer, found a boolean"),
    "string": ('"1"', 422, "must be a number, found a string", "must be an integer, found a string"),
    "list": ("[1]", 422, "must be a number, found a list", "must be an integer, found a list"),
    "object": ('{"value": 1}', 422, "must be a number, found an object", "must be an integer, found an object"),
}


@pytest.mark.parametrize("url, field", NUMERIC_FIELDS, ids=[f"{u}:{f}" for u, f in NUMERIC_FIELDS])
@pytest.mark.parametrize("case", BAD_NUMBERS.values(), ids=BAD_NUMBERS.keys())
def test_bad_number(client, url, field, case):
    value, status, for_number, for_integer = case
    data = f'{{"{text_field(url)}": "hello", "{field}": {value}}}'
    mentions = for_number if NUMERIC_FIELDS[url, field] == "number" else for_integer
    response = post_raw(client, url, data)
    assert_error(response, status, "invalid_json" if status == 400 else "validation", mentions)
    if status == 422:
        assert response.json["error"].startswith(field)


@pytest.mark.parametrize("url", ["/api/patch", "/api/generate"])
@pytest.mark.parametrize("field", ["max_patch_length", "patch_size"])
def test_integer_field_given_a_float(client, url, field):
    response = client.post(url, json={text_field(url): "hello", field: 2.0})
    assert_error(response, 422, "validation", f"{field} must be an integer, found a number")


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("field", ["txt", "Text", "__proto__", "constructor", "", "max_new_bytes "])
def test_unknown_field(client, url, field):
    response = client.post(url, json={text_field(url): "hello", field: 1})
    assert_error(response, 422, "validation", f"unknown field {field!r}")


@pytest.mark.parametrize("url", ["/api/generate", "/api/generate/stream"])
@pytest.mark.parametrize("max_new_bytes", [MAX_NEW_BYTES + 1, 10**9, 2**63, 2**64 + 1, 0])
def test_max_new_bytes_out_of_range(client, url, max_new_bytes):
    response = client.post(url, json={"prompt": "hello", "max_new_bytes": max_new_bytes})
    assert_error(response, 422, "validation", f"max_new_bytes must be in [1, {MAX_NEW_BYTES}]")


# ---------------------------------------------------------------------------------- HTML in, data out
HTML = '<img src=x onerror=alert(1)><script>alert("x")</script></textarea>"\'&amp;'


@pytest.mark.parametrize("url, echoed", [("/api/entropy", "text"), ("/api/patch", "text"), ("/api/compare", "text"),
                                         ("/api/generate", "prompt")])
def test_html_in_text_comes_back_as_json_data(client, url, echoed):
    response = client.post(url, json={text_field(url): HTML})
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.json[echoed] == HTML


# ---------------------------------------------------------------------------------- file endpoints
FILE_ENDPOINTS = {"/data/": "json", "/images/": "png", "/visualizations/": "html"}
WAYS_OUT = {   # id: the name after the endpoint's prefix ({ext}: the endpoint's extension; {root}: the tmp dir)
    "dot dot": "..",
    "dot dot slash": "../secret.{ext}",
    "two levels up": "../../secret.{ext}",
    "encoded %2e%2e%2f": "%2e%2e%2fsecret.{ext}",
    "upper-case %2E%2E%2F": "%2E%2E%2Fsecret.{ext}",
    "double-encoded %252e%252e%252f": "%252e%252e%252fsecret.{ext}",
    "backslash ..%5c": "..%5csecret.{ext}",
    "raw backslash": "..\\secret.{ext}",
    "overlong UTF-8 dots": "%c0%ae%c0%ae%2fsecret.{ext}",
    "absolute path": "/{root}/secret.{ext}",
    "encoded absolute path": "%2f{root_encoded}%2fsecret.{ext}",
    "/etc/passwd": "/etc/passwd",
    "NUL after the name": "ok.{ext}%00",
    "NUL before another extension": "ok.{ext}%00.txt",
    "NUL alone": "%00",
    "overlong name": "a" * 300 + ".{ext}",
    "very long name": "a" * 5000 + ".{ext}",
    "symlink out of the folder": "escape.{ext}",
}


def file_url(prefix: str, way_out: str, root) -> str:
    root = str(root).strip("/")
    return prefix + way_out.format(ext=FILE_ENDPOINTS.get(prefix, "json"), root=root,
                                   root_encoded=root.replace("/", "%2f"))


@pytest.mark.parametrize("prefix", list(FILE_ENDPOINTS) + ["/api/figures/"])
@pytest.mark.parametrize("way_out", WAYS_OUT.values(), ids=WAYS_OUT.keys())
def test_file_endpoint_way_out(client, folders, prefix, way_out):
    response = client.get(file_url(prefix, way_out, folders))
    assert_error(response, 404, "not_found")
    assert b"SECRET" not in response.data


@pytest.mark.parametrize("prefix", FILE_ENDPOINTS)
def test_file_endpoint_serves_an_allowed_name(client, prefix):
    """The control for the ways out: the same endpoint serves a file that is really inside."""
    assert client.get(f"{prefix}ok.{FILE_ENDPOINTS[prefix]}").status_code == 200


def test_figure_data_behind_a_symlink_out_of_the_folder_is_not_read(tmp_path):
    """A figure's data file that is a symlink out of plot_data counts as missing, though valid."""
    plot_data = tmp_path / "plot_data"
    plot_data.mkdir()
    (plot_data / "languages.json").symlink_to(REPO / "plot_data" / "languages.json")
    client = make_app(PLOT_DATA_DIR=str(plot_data), EXPORT_DIR=str(tmp_path / "exports")).test_client()
    for url in ("/api/figures/languages", "/api/figures/languages?format=html", "/api/languages",
                "/api/languages.csv", "/data/languages.json"):
        assert_error(client.get(url), 404, "not_found")
    assert client.get("/api/figures").json == [] and client.get("/api/visualizations").json == {"files": []}
