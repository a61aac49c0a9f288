"""One error shape for the API and the file endpoints: `{"error": ..., "error_type": ...}`.

Views raise `ApiError`; werkzeug's HTTP errors (404, 405, 413 from the request size cap, ...)
and unexpected exceptions are turned into the same shape for JSON paths. The handlers are
app-level because blueprint handlers never see unknown URLs.
"""
from __future__ import annotations

import logging

import torch
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/healthz", "/visualizations/", "/images/", "/data/")

# werkzeug's errors by status -> our error_type
HTTP_ERROR_TYPES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
                    413: "payload_too_large", 414: "uri_too_long", 415: "unsupported_media_type",
                    429: "overloaded", 431: "headers_too_large", 501: "not_implemented"}


class ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message

    def body(self) -> dict:
        return {"error": self.message, "error_type": self.error_type}


def validation(message: str) -> ApiError:
    return ApiError(422, "validation", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def _response(err: ApiError):
    response = jsonify(err.body())
    response.status_code = err.status
    retry_after = {"overloaded": "1", "warming_up": "5"}.get(err.error_type)
    if retry_after:
        response.headers["Retry-After"] = retry_after
    return response


def _wants_json() -> bool:
    return request.path.startswith(JSON_PREFIXES)


def handle_api_error(err: ApiError):
    return _response(err)


def handle_http_error(err: HTTPException):
    if not _wants_json():
        return err
    if err.code == 413:
        message = f"request body is larger than the limit of {request.max_content_length} bytes"
    else:
        message = f"{err.name}: {request.method} {request.path}" if err.code in (404, 405) else err.description
    response = _response(ApiError(err.code, HTTP_ERROR_TYPES.get(err.code, "http_error"), message))
    if err.code == 405:
        response.headers["Allow"] = ", ".join(err.valid_methods or [])
    return response


def handle_out_of_memory(err: torch.OutOfMemoryError):
    log.error("out of memory serving %s: %s", request.path, err)
    return _response(ApiError(503, "out_of_memory", "the model ran out of memory on this request; "
                                                    "try shorter text or fewer new bytes"))


def handle_unexpected(err: Exception):
    log.exception("unhandled error serving %s", request.path)
    if not _wants_json():
        return InternalServerError(original_exception=err)
    return _response(ApiError(500, "internal", f"internal error ({type(err).__name__}); see the server log"))


def register(app: Flask) -> None:
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(torch.OutOfMemoryError, handle_out_of_memory)
    app.register_error_handler(Exception, handle_unexpected)
