"""JSON in and out: request bodies, one-line errors, the headers every response carries."""

from __future__ import annotations

import json
import logging
from typing import Any, NoReturn

from flask import Flask, Response, abort, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import IntegerConverter

from maskloop import validate
from maskloop.errors import DISK_FULL_MESSAGE, DiskFull, UserError, is_disk_full

log = logging.getLogger(__name__)

#: Cross-origin isolation (SharedArrayBuffer, so onnxruntime-web runs multithreaded WASM).
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a ?token= in the URL must not leak to other sites
}


def fail(status: int, message: str) -> NoReturn:
    """Stop the request with ``{"error": message}`` and ``status``."""
    abort(status, description=message)


class Int64Converter(IntegerConverter):
    """``<int:...>`` limited to SQLite's integer range: a larger id is a 404, not an overflow.

    (Raising ``NotFound`` here, rather than the converter's ``max``, keeps Werkzeug from trying
    the path's other rules and answering 405 for a DELETE or PATCH.)
    """

    def to_python(self, value: str) -> int:
        number = int(super().to_python(value))
        if number > validate.INT64_MAX:
            raise NotFound(f"not found: {request.path[:80]} (ids are at most {validate.INT64_MAX})")
        return number


def json_body() -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it.

    Besides syntax: nesting deeper than ``validate.MAX_JSON_DEPTH``, NUL characters and lone
    surrogates anywhere, and numbers Python will not parse (over 4300 digits) are refused.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        fail(400, "the request body is empty: send a JSON object")
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        fail(400, "the request body is not UTF-8 text: send a JSON object")
    except json.JSONDecodeError as exc:
        fail(400, f"the request body is not valid JSON: {exc}")
    except RecursionError:
        fail(400, f"the request body is nested too deeply (at most {validate.MAX_JSON_DEPTH} levels)")
    except ValueError as exc:  # e.g. an integer literal beyond Python's 4300-digit limit
        fail(400, f"the request body is not usable JSON: {str(exc).splitlines()[0]}")
    if not isinstance(body, dict):
        fail(400, f"the request body must be a JSON object, not a {type(body).__name__}")
    validate.json_tree(body)
    return body


#: The longest error message sent (a message quoting a huge input is cut: it must not echo it).
MAX_ERROR_LENGTH = 500


def _error_response(status: int, message: str) -> Response:
    if len(message) > MAX_ERROR_LENGTH:
        message = message[: MAX_ERROR_LENGTH - 3] + "..."
    response = jsonify({"error": message})
    response.status_code = status
    return response


def retry_later(status: int, message: str, seconds: int) -> Response:
    """``{"error": message}`` with ``status`` and ``Retry-After: seconds`` (503 busy or not ready, 429 throttled)."""
    response = _error_response(status, message)
    response.headers["Retry-After"] = str(seconds)
    return response


def _http_error(exc: HTTPException) -> Response:
    message = exc.description if exc.description != type(exc).description else None
    if message is None:
        if exc.code == 404:
            message = f"not found: {request.method} {request.path}"
        elif isinstance(exc, MethodNotAllowed):
            allowed = ", ".join(sorted(m for m in (exc.valid_methods or []) if m not in ("HEAD", "OPTIONS")))
            message = f"method {request.method} is not allowed on {request.path} (allowed: {allowed})"
        elif exc.code == 413:
            message = "the request body is too large"
        else:
            message = (exc.name or "error").lower()
    response = _error_response(exc.code or 500, message)
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _user_error(exc: UserError) -> Response:
    if isinstance(exc, DiskFull):
        log.error("disk full in %s %s: %s", request.method, request.path, exc)
        return _error_response(507, str(exc))
    return _error_response(400, str(exc))


#: Seconds a client is asked to wait before retrying while the database is unreachable.
RETRY_AFTER_SECONDS = 2


def _database_unreachable(exc: Exception) -> bool:
    """A PostgreSQL outage: no connection to borrow, or the connection was lost mid-request
    (nothing was committed, so the request can simply be sent again)."""
    import psycopg
    from psycopg_pool import PoolTimeout

    return isinstance(exc, PoolTimeout | psycopg.OperationalError)


def _internal_error(exc: Exception) -> Response:
    if is_disk_full(exc):  # an OSError, SQLite's "database or disk is full", PostgreSQL's disk_full
        log.error("disk full in %s %s: %s", request.method, request.path, exc)
        return _error_response(507, f"the server's {DISK_FULL_MESSAGE}")
    if _database_unreachable(exc):
        log.warning("database unreachable in %s %s: %s", request.method, request.path, exc)
        return retry_later(
            503, "the database is not reachable right now: nothing was saved; retry in a moment", RETRY_AFTER_SECONDS
        )
    log.exception("unhandled error in %s %s", request.method, request.path)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return _error_response(500, f"internal error: {type(exc).__name__}{': ' + first if first else ''}")


def _add_headers(response: Response) -> Response:
    for name, value in ISOLATION_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/") and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Error handlers, common headers, and the bounded ``int`` converter (before any blueprint)."""
    app.url_map.converters["int"] = Int64Converter
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(UserError, _user_error)
    app.register_error_handler(Exception, _internal_error)
    app.after_request(_add_headers)
