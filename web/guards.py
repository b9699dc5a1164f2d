"""What every request passes through, whatever its route: ids that fit the database, a bounded body, one shape of
JSON error for machines, and the security headers of every response.

* Path ids (``<int:...>``, which :func:`install` maps to :class:`DatabaseId`) are ASCII digits up to
  :data:`daemon.db.models.MAX_ID`, what an id column holds on every backend; anything else is a 404.
  Query-string numbers go through :func:`query_id` (400 otherwise).
* ``MAX_CONTENT_LENGTH`` is ``[web] max_request_bytes``: a larger body is refused with 413 before it is read.
* Under ``/api/`` and ``/webhooks/`` every error, 404, 405, 413, 429 and 500 included, is JSON:
  ``{"error": "not_found", "message": "no service 7"}`` (:func:`json_error`). Pages keep HTML errors.
* Every response carries a Content-Security-Policy without inline script or style, ``frame-ancestors 'none'``,
  ``nosniff``, a referrer policy, and HSTS when the dashboard's base URL is https.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from flask import Flask, abort, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.routing import BaseConverter, ValidationError
from werkzeug.wrappers import Response

from daemon.config import WebSettings
from daemon.db.models import MAX_ID
from web.context import settings

__all__ = ["MAX_ID", "DatabaseId", "install", "is_machine_path", "json_error", "query_id"]

log = logging.getLogger(__name__)

_DIGITS = re.compile(r"[0-9]{1,10}")

#: Path prefixes whose clients are programs: their errors are JSON.
MACHINE_PREFIXES: Final = ("/api/", "/webhooks/")

CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
HSTS: Final = "max-age=31536000"


def parse_id(text: str) -> int | None:
    """``text`` as a database id: ASCII digits, 1..:data:`MAX_ID`; ``None`` for anything else."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


class DatabaseId(BaseConverter):
    """``<int:name>`` in every route: ASCII digits that fit a database id; otherwise the route does not match."""

    regex = r"[0-9]{1,10}"
    part_isolating = True

    def to_python(self, value: str) -> int:
        parsed = parse_id(value)
        if parsed is None:
            raise ValidationError()
        return parsed

    def to_url(self, value: object) -> str:
        return str(int(value))  # type: ignore[call-overload]


def query_id(name: str) -> int | None:
    """The query-string parameter ``name`` as a database id; ``None`` when absent, a 400 when it is not one."""
    raw = request.args.get(name)
    if raw is None:
        return None
    parsed = parse_id(raw)
    if parsed is None:
        abort(400, description=f"{name} must be a number from 1 to {MAX_ID}")
    return parsed


def is_machine_path(path: str) -> bool:
    """True for the API and the webhooks, whose errors are JSON."""
    return path.startswith(MACHINE_PREFIXES)


def json_error(status: int, code: str, message: str) -> Response:
    """The one JSON error shape of the API and the webhooks."""
    response = jsonify(error=code, message=message)
    response.status_code = status
    return response


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    if not is_machine_path(request.path):
        return exc
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_")
    response = json_error(status, code, exc.description or code)
    for key, value in exc.get_headers():
        if key.lower() != "content-type":
            response.headers[key] = value
    return response


def _server_error(exc: InternalServerError) -> ResponseReturnValue:
    if not is_machine_path(request.path):
        return exc
    return json_error(500, "internal_server_error", "the server failed to answer; the error is logged")


def _secure_headers(response: Response) -> Response:
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    if settings().web.base_url.startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def install(app: Flask, web: WebSettings) -> None:
    """Bind the converters, the size bound, the error handlers and the headers to ``app`` (before its routes)."""
    app.url_map.converters["int"] = DatabaseId
    app.config["MAX_CONTENT_LENGTH"] = web.max_request_bytes
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.after_request(_secure_headers)
