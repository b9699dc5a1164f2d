"""Faults of the server, not of the request, answered as such: a 503 with one clear line, never a 500.

* The database is read-only (a replica, a full disk remounted read-only, ``default_transaction_read_only``):
  reads keep working (what they record in passing is skipped, see :func:`daemon.db.errors.best_effort`);
  a change answers ``503`` with "the database is read-only: ...".
* The database cannot be reached (down, locked too long, out of connections): ``503``, "the database is
  unavailable: ...".
* A key or password file on the server cannot be used (:class:`~daemon.config.ConfigError` at run time):
  ``503``; the log names the file and what to do, the answer does not.

The API and the webhooks answer JSON (``{"error": "database_read_only", "message": ...}``), the dashboard a
small page that needs no database (not even to say who is signed in).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from markupsafe import escape
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from daemon.config import ConfigError
from daemon.db.errors import fault_of, unavailable_reason
from web.guards import is_machine_path

__all__ = ["register"]

log = logging.getLogger(__name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · edgebill</title></head>
<body><main><h1>{title}</h1><p role="alert">{message}</p><p>{hint}</p></main></body></html>
"""


def _wants_json() -> bool:
    if is_machine_path(request.path) or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _answer(error: str, title: str, message: str, hint: str) -> Response:
    if _wants_json():
        reply = jsonify(error=error, message=message)
    else:
        page = _PAGE.format(title=escape(title), message=escape(message), hint=escape(hint))
        reply = Response(page, mimetype="text/html")
    reply.status_code = 503
    return reply


def _database(exc: DBAPIError | PoolTimeout) -> Response:
    fault, reason = fault_of(exc), unavailable_reason(exc)
    if fault is None or reason is None:
        raise exc  # a bug, not a fault of the database: Flask answers 500 and logs the traceback
    log.error("%s %s: %s", request.method, request.path, reason)
    if fault == "read-only":
        return _answer(
            "database_read_only",
            "Changes cannot be saved now",
            reason,
            "Reading still works. Nothing was changed; try again once the database accepts changes.",
        )
    return _answer("database_unavailable", "The database is unavailable", reason, "Nothing was changed; try again.")


def _config(exc: ConfigError) -> Response:
    log.error("%s %s: %s", request.method, request.path, exc)
    return _answer(
        "server_misconfigured",
        "The server cannot do this now",
        "a key or password file on the server cannot be used",
        "Nothing was changed. The administrator will find which file, and what to do, in the log.",
    )


def register(app: Flask) -> None:
    """Answer the faults above on every blueprint."""
    app.register_error_handler(DBAPIError, _database)
    app.register_error_handler(PoolTimeout, _database)
    app.register_error_handler(ConfigError, _config)
