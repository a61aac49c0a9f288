"""Shared by the web-app tests: an app on the shipped model, and the one check of the error shape."""
from __future__ import annotations

import json
from pathlib import Path

from app import create_app

REPO = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = REPO / "models" / "blt-studio"


def make_app(**config):
    return create_app({"MODEL": str(SHIPPED_MODEL), "DEVICE": "cpu", "TESTING": True, **config})


def assert_error(response, status: int, error_type: str, mentions: str | None = None) -> dict:
    """A JSON error of the documented shape: {"error": <message>, "error_type": <type>}."""
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    body = json.loads(response.get_data(as_text=True))
    assert set(body) == {"error", "error_type"} and body["error_type"] == error_type, body
    if mentions is not None:
        assert mentions in body["error"], body
    return body


def sse_events(text: str) -> list[tuple[str, dict]]:
    """Parse a text/event-stream body into (event, data) pairs."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events
