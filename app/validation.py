"""The API's one validation layer: read a JSON object from the request, then check it against the
endpoint's schema (a dict of field name -> checker). Everything a view receives is typed and in
range; every problem is a 4xx `ApiError` that names the field.

Conventions (Hugging Face TGI and vLLM): integers must be JSON integers (not 2.0, not true),
numbers must be finite, unknown fields are refused, `null` means "use the default". Names and
values echoed in errors are cut short (`short`), so an error stays small whatever was sent.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from blt_core.bpe import VOCABULARIES

from .errors import ApiError, validation

MODES = ("entropy", "entropy_monotonic", "static", "space")
TOKENIZERS = tuple(VOCABULARIES)
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")   # all but tab, newline, CR

Checker = Callable[[str, Any], Any]


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


MAX_INT_DIGITS = 1000     # far more than any field takes, under Python's own limit of 4300


class TooLargeNumber:
    """A JSON integer of more than MAX_INT_DIGITS digits, left unread (Python refuses to read one
    of over 4300 digits) so that the field's checker names the field when it refuses it."""

    def __init__(self, digits: int):
        self.digits = digits

    def __repr__(self) -> str:
        return f"an integer of {self.digits} digits"


def _parse_int(text: str):
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_INT_DIGITS else TooLargeNumber(digits)


def json_body() -> dict:
    """The request body as a JSON object: 415 unless Content-Type is application/json, 400 for
    a body that is not UTF-8 JSON (NaN and Infinity literals included), 422 if not an object."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Type must be application/json, found {request.mimetype or 'none'!r}")
    raw = request.get_data(cache=False)        # over MAX_CONTENT_LENGTH: werkzeug raises 413 ...
    if request.content_length is None and len(raw) >= (request.max_content_length or math.inf):
        raise RequestEntityTooLarge()          # ... but cuts a chunked body at the cap without a word
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_int=_parse_int)
    except UnicodeDecodeError as err:
        raise ApiError(400, "invalid_json", f"request body is not valid UTF-8 (byte {err.start})") from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "request body is nested too deeply") from None
    except ValueError as err:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise validation(f"request body must be a JSON object, found {_kind(body)}")
    return body


def text_body(max_bytes: int) -> str:
    """The request body as a text file (a corpus upload): 415 unless Content-Type is text/plain,
    413 over max_bytes (its UTF-8 bytes), 422 unless UTF-8 text with no control characters but
    tab, newline and carriage return."""
    if request.mimetype != "text/plain":
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Type must be text/plain (the file's UTF-8 text), found {request.mimetype or 'none'!r}")
    request.max_content_length = max_bytes      # werkzeug raises 413 beyond it (the bridge already did)
    raw = request.get_data(cache=False)
    if len(raw) > max_bytes:
        raise RequestEntityTooLarge()
    try:
        value = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise validation(f"the body is not UTF-8 text: byte {err.start} is {raw[err.start]:#04x}") from None
    return text(max_bytes, limit_name="max_corpus_bytes")("the body", value)


def query(schema: dict[str, Checker]) -> dict:
    """The query string checked like a JSON body: '12' is an integer, '1.5' a number, the rest strings."""
    args = {}
    for name, value in request.args.items(multi=False):
        if re.fullmatch(r"-?\d{1,18}", value):
            args[name] = int(value)
        elif re.fullmatch(r"-?\d{1,18}\.\d{1,18}", value):
            args[name] = float(value)
        else:
            args[name] = value
    return validate(args, schema)


def validate(body: dict, schema: dict[str, Checker], required: tuple[str, ...] = ()) -> dict:
    """body -> {field: checked value, or None when absent or null}."""
    unknown = sorted(set(body) - set(schema))
    if unknown:
        raise validation(f"unknown field {short(unknown[0])}; allowed fields: {', '.join(schema)}")
    out = {}
    for name, check in schema.items():
        value = body.get(name)
        if value is None:
            if name in required:
                raise validation(f"{name} is required")
            out[name] = None
        else:
            out[name] = check(name, value)
    return out


# ---------------------------------------------------------------------------------- checkers
def text(max_bytes: int, allow_empty: bool = False, limit_name: str = "max_text_bytes") -> Checker:
    """A string that encodes as UTF-8 (no lone surrogates), with no control characters but tab,
    newline and carriage return, of at most max_bytes UTF-8 bytes."""
    def check(name, value):
        if not isinstance(value, str):
            raise validation(f"{name} must be a string, found {_kind(value)}")
        if not value and not allow_empty:
            raise validation(f"{name} must not be empty")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as err:
            raise validation(f"{name} contains a lone surrogate at character {err.start}; "
                             "text must be valid Unicode") from None
        bad = CONTROL.search(value)
        if bad:
            raise validation(f"{name} contains control character U+{ord(bad.group()):04X} at character "
                             f"{bad.start()}; only tab, newline and carriage return are allowed")
        if size > max_bytes:
            raise ApiError(413, "payload_too_large",
                           f"{name} is {size} bytes of UTF-8; the limit is {max_bytes} ({limit_name})")
        return value
    return check


def integer(low: int, high: int) -> Checker:
    def check(name, value):
        if isinstance(value, TooLargeNumber):
            raise validation(f"{name} is too large ({value!r}); it must be in [{low}, {high}]")
        if not _is_int(value):
            raise validation(f"{name} must be an integer, found {_kind(value)}")
        if not low <= value <= high:
            raise validation(f"{name} must be in [{low}, {high}], found {short(value)}")
        return value
    return check


def number(low: float, high: float, low_open: bool = False) -> Checker:
    def check(name, value):
        if isinstance(value, TooLargeNumber):
            raise validation(f"{name} is too large ({value!r}); it must be a finite number")
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)):
            raise validation(f"{name} must be a number, found {_kind(value)}")
        try:
            value = float(value)          # a JSON integer may be too large for a float (10**400)
        except OverflowError:
            raise validation(f"{name} must be a finite number, found an integer of {len(str(value))} digits") \
                from None
        if not math.isfinite(value):
            raise validation(f"{name} must be a finite number, found {value}")
        if not (low < value if low_open else low <= value) or value > high:
            raise validation(f"{name} must be in {'(' if low_open else '['}{low}, {high}], found {value}")
        return value
    return check


def choice(options: tuple[str, ...]) -> Checker:
    def check(name, value):
        if value not in options:
            raise validation(f"{name} must be one of {', '.join(options)}, found {short(value)}")
        return value
    return check


def strings(max_items: int, max_bytes: int) -> Checker:
    """A list of non-empty strings (stop strings)."""
    item = text(max_bytes)

    def check(name, value):
        if not isinstance(value, list):
            raise validation(f"{name} must be a list of strings, found {_kind(value)}")
        if len(value) > max_items:
            raise validation(f"{name} may hold at most {max_items} strings, found {len(value)}")
        return [item(f"{name}[{i}]", s) for i, s in enumerate(value)]
    return check


def names(options: tuple[str, ...]) -> Checker:
    """A non-empty list of distinct names, each one of options (tokenizers; response fields)."""
    def check(name, value):
        if not isinstance(value, list) or not value:
            found = "an empty list" if value == [] else _kind(value)
            raise validation(f"{name} must be a non-empty list of names, found {found}")
        for i, item in enumerate(value):
            if item not in options:
                raise validation(f"{name}[{i}] must be one of {', '.join(options)}, found {short(item)}")
        if len(set(value)) != len(value):
            raise validation(f"{name} names one of them twice")
        return value
    return check


def boolean(name, value):
    if not isinstance(value, bool):
        raise validation(f"{name} must be true or false, found {_kind(value)}")
    return value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value) -> str:
    if isinstance(value, TooLargeNumber):
        return repr(value)
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object",
            float: "a number", int: "an integer", type(None): "null"}.get(type(value), type(value).__name__)


def short(value) -> str:
    return repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."


# ---------------------------------------------------------------------------------- schemas
def patching_schema(cfg: dict) -> dict[str, Checker]:
    return {"mode": choice(MODES), "threshold": number(*cfg["THRESHOLD_RANGE"]),
            "max_patch_length": integer(1, cfg["MAX_PATCH_LENGTH"]), "patch_size": integer(1, cfg["MAX_PATCH_SIZE"])}


# The fields of each analysis response, in the order they are sent; `fields` picks some of them.
ENTROPY_FIELDS = ("text", "bytes", "chars", "char_index", "entropies", "model")
PATCH_FIELDS = (*ENTROPY_FIELDS, "mode", "threshold", "max_patch_length", "patch_size", "next_starts_patch",
                "patch_lengths", "patch_starts", "patch_ids", "patches", "stats")


def entropy_schema(cfg: dict) -> dict[str, Checker]:
    return {"text": text(cfg["MAX_TEXT_BYTES"]), "fields": names(ENTROPY_FIELDS)}


def patch_schema(cfg: dict) -> dict[str, Checker]:
    return {"text": text(cfg["MAX_TEXT_BYTES"]), **patching_schema(cfg), "fields": names(PATCH_FIELDS)}


def compare_schema(cfg: dict) -> dict[str, Checker]:
    schema = {"text": text(cfg["MAX_TEXT_BYTES"]), **patching_schema(cfg)}
    del schema["mode"]
    return schema


def tokenize_schema(cfg: dict) -> dict[str, Checker]:
    """/api/tokenize: the text, the vocabularies (default all), and the BLT's patches beside them
    (blt: true, the default) under the patching options of /api/patch."""
    return {**patch_schema(cfg), "tokenizers": names(TOKENIZERS), "blt": boolean}


def corpus_schema(cfg: dict) -> dict[str, Checker]:
    """/api/corpus's query string (the text is the body)."""
    return {"passage_bytes": integer(16, 4096), "passages": integer(1, 50), **patching_schema(cfg)}


def entropy_detail_schema(cfg: dict) -> dict[str, Checker]:
    return {"text": text(cfg["MAX_TEXT_BYTES"]), "start": integer(0, cfg["MAX_TEXT_BYTES"] - 1),
            "length": integer(1, cfg["DETAIL_MAX_BYTES"]), "top_k": integer(1, cfg["DETAIL_MAX_TOP_K"])}


DEFAULT_TOP_K = 5


def byte_span(req: dict) -> tuple[int, int, int]:
    """(start, stop, top_k) of an entropy-detail request: `length` bytes from `start` (default 1,
    cut at the text's end), `start` inside the text's UTF-8 bytes."""
    size = len(req["text"].encode("utf-8"))
    if req["start"] >= size:
        raise validation(f"start must be less than the text's {size} bytes, found {req['start']}")
    return req["start"], min(size, req["start"] + (req["length"] or 1)), req["top_k"] or DEFAULT_TOP_K


def generate_schema(cfg: dict) -> dict[str, Checker]:
    return {
        "prompt": text(cfg["MAX_TEXT_BYTES"], allow_empty=True),
        "max_new_bytes": integer(1, cfg["MAX_NEW_BYTES"]),
        "temperature": number(0.0, cfg["MAX_TEMPERATURE"]),
        "top_k": integer(0, cfg["MAX_TOP_K"]),
        "top_p": number(0.0, 1.0, low_open=True),
        "repetition_penalty": number(*cfg["REPETITION_PENALTY_RANGE"]),
        "seed": integer(0, 2**63 - 1),
        "stop": strings(cfg["MAX_STOP_STRINGS"], cfg["MAX_STOP_BYTES"]),
        "stop_at_eos": boolean,
        **patching_schema(cfg),
    }
