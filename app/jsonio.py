"""JSON out of the app is always valid JSON: NaN and infinities become null (never bare NaN)."""
from __future__ import annotations

import json
import math

from flask.json.provider import DefaultJSONProvider


def finite(obj):
    """obj with every non-finite float replaced by None (dicts, lists and tuples walked)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(x) for k, x in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(x) for x in obj]
    return obj


def dumps(obj) -> str:
    """Compact JSON of obj with non-finite floats as null (the SSE events)."""
    return json.dumps(finite(obj), allow_nan=False, separators=(",", ":"))


class FiniteJSONProvider(DefaultJSONProvider):
    """Flask's provider, keeping key order, with the non-finite walk only when one is present."""
    sort_keys = False

    def dumps(self, obj, **kwargs):
        try:
            return super().dumps(obj, allow_nan=False, **kwargs)
        except ValueError:
            return super().dumps(finite(obj), allow_nan=False, **kwargs)
