"""The stored-file endpoints: listing, media types, and every way out of the folder refused."""
from __future__ import annotations

import json

import pytest

from webapp_helpers import assert_error, make_app

FILES = {"rows.json": b'{"rows": [1, 2]}', "table.csv": b"a,b\n1,2\n", "log.jsonl": b'{"step": 1}\n',
         "figure.html": b"<html><body>figure</body></html>", "figure.png": b"\x89PNG\r\n\x1a\n",
         "figure.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>", "notes.txt": b"not allow-listed",
         ".hidden.json": b"{}"}


@pytest.fixture
def folders(tmp_path):
    plot_data, exports = tmp_path / "plot_data", tmp_path / "exports"
    plot_data.mkdir()
    exports.mkdir()
    for name, content in FILES.items():
        ((exports if name.startswith("figure") else plot_data) / name).write_bytes(content)
    (tmp_path / "secret.json").write_text('{"secret": true}')
    (plot_data / "escape.json").symlink_to(tmp_path / "secret.json")          # points out of the folder
    (plot_data / "alias.json").symlink_to(plot_data / "rows.json")            # stays inside: fine
    (plot_data / "sub").mkdir()
    (plot_data / "sub" / "deep.json").write_text("{}")
    return plot_data, exports


@pytest.fixture
def client(folders):
    plot_data, exports = folders
    app = make_app(PLOT_DATA_DIR=str(plot_data), EXPORT_DIR=str(exports))
    yield app.test_client()
    assert app.extensions["blt_model"].loaded is None                        # files never load the model


def test_listing_has_allowed_files_only(client):
    files = {f["name"]: f for f in client.get("/api/visualizations").json["files"]}
    assert set(files) == {"rows.json", "table.csv", "log.jsonl", "alias.json", "figure.html", "figure.png",
                          "figure.svg"}
    assert files["rows.json"] == {"name": "rows.json", "kind": "data", "folder": "plot_data",
                                  "url": "/data/rows.json", "bytes": len(FILES["rows.json"])}
    assert files["figure.html"]["kind"] == "html" and files["figure.html"]["url"] == "/visualizations/figure.html"
    assert files["figure.png"]["kind"] == "image" and files["figure.png"]["folder"] == "exports"


@pytest.mark.parametrize("url, media_type, content", [
    ("/data/rows.json", "application/json", FILES["rows.json"]),
    ("/data/alias.json", "application/json", FILES["rows.json"]),
    ("/data/table.csv", "text/csv", FILES["table.csv"]),
    ("/data/log.jsonl", "application/jsonl", FILES["log.jsonl"]),
    ("/visualizations/figure.html", "text/html", FILES["figure.html"]),
    ("/images/figure.png", "image/png", FILES["figure.png"]),
    ("/images/figure.svg", "image/svg+xml", FILES["figure.svg"]),
])
def test_files_are_served_with_their_media_type(client, url, media_type, content):
    response = client.get(url)
    assert response.status_code == 200 and response.mimetype == media_type and response.data == content
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_json_is_served_as_json(client):
    response = client.get("/data/rows.json")
    assert response.is_json and json.loads(response.data) == {"rows": [1, 2]}


@pytest.mark.parametrize("url", [
    "/data/notes.txt",                       # extension not allow-listed
    "/images/rows.json",                     # extension of another endpoint
    "/visualizations/figure.png",
    "/data/missing.json",
    "/data/.hidden.json",                    # names start with a letter or digit
    "/data/escape.json",                     # symlink out of the folder
    "/data/sub/deep.json",                   # no sub-folders
    "/data/../secret.json",
    "/data/..%2fsecret.json",
    "/data/%2e%2e%2fsecret.json",
    "/data/%2E%2E/secret.json",
    "/data/..%5csecret.json",
    "/data/..\\secret.json",
    "/data//etc/passwd",
    "/data/%2fetc%2fpasswd",
    "/images/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/visualizations/..%2f..%2fREADME.md",
    "/data/rows.json%00.png",
    "/data/rows.json%00",
    "/data/" + "a" * 300 + ".json",
    "/data/%C0%AE%C0%AE%2fsecret.json",      # overlong UTF-8 dots
])
def test_ways_out_are_refused_as_json_404(client, url):
    assert_error(client.get(url), 404, "not_found")
