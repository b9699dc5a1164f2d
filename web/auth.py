"""Sign-in for the dashboard (session cookie, CSRF-protected forms) and roles.

Roles, least to most: ``readonly`` sees everything but secrets; ``support`` can also act on services (throttle,
resume, promise to pay); ``admin`` can do everything. Failed sign-ins are logged with the user name and address,
never the password.

Failed sign-ins are throttled per user name and per client address (``[web] login_limit_per_account``,
``login_limit_per_address``, Flask-Limiter): past a limit the sign-in page answers 429 with ``Retry-After``.
A session names its user and the user's session epoch: signing out, a new password or disabling the user raises
the epoch and so ends every session of that user. A session also ends ``session_idle_timeout`` after its last
request and ``session_lifetime`` after sign-in. After sign-in, ``?next=`` is followed only to a path of this site.
"""

from __future__ import annotations

import functools
import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, Final, ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, g, redirect, render_template, request, session, url_for
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from werkzeug.wrappers import Response

from daemon.config import WebSettings
from daemon.db.models import UserRole
from daemon.services import users
from daemon.services.users import UserRecord
from web.context import db, settings
from web.guards import is_machine_path, json_error

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

P = ParamSpec("P")
R = TypeVar("R")

ROLE_RANK = {UserRole.READONLY: 0, UserRole.SUPPORT: 1, UserRole.ADMIN: 2}

#: A redirect target after sign-in: a path of this site (no scheme, host, backslash, space or control character).
_LOCAL_PATH: Final = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]{0,2000}")


def local_path(target: str) -> str | None:
    """``target`` if it is a path of this site that a browser cannot read as another site, else ``None``.

    Browsers drop tabs and newlines and read ``\\`` as ``/``, so ``/\t/evil.example`` means ``//evil.example``:
    only a plain path that does not start with two slashes or a slash and a backslash is accepted."""
    if not _LOCAL_PATH.fullmatch(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def csrf_token() -> str:
    """The session's CSRF token, created on first use; every form posts it back."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    sent = request.form.get("csrf", "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not expected or not hmac.compare_digest(sent, expected):
        abort(400, description="The form expired or was not sent by this site; reload the page and try again.")


@bp.app_context_processor
def _inject() -> dict[str, object]:
    return {"csrf_token": csrf_token, "current_user": current_user()}


def current_user() -> UserRecord | None:
    """The signed-in user, if the session names one that is still active and the session has not ended."""
    if "user" in g:
        user: UserRecord | None = g.user
        return user
    uid = session.get("uid")
    user = users.active_user(db(), uid) if isinstance(uid, int) else None
    if user is not None and session.get("epoch") != user.session_epoch:
        user = None
    if user is None and "uid" in session:
        session.clear()
    g.user = user
    return user


@bp.before_app_request
def _expire_session() -> None:
    """End a signed-in session that has been idle, or alive, too long; otherwise note this request."""
    if "uid" not in session:
        return
    web = settings().web
    now = int(time.time())
    seen, began = session.get("seen"), session.get("began")
    if (
        not isinstance(seen, int)
        or not isinstance(began, int)
        or now - seen > web.session_idle_timeout.total_seconds()
        or now - began > web.session_lifetime.total_seconds()
    ):
        session.clear()
        return
    if now != seen:
        session["seen"] = now


def login_required(role: UserRole = UserRole.READONLY) -> Callable[[Callable[P, R]], Callable[P, R | Response]]:
    """Send anonymous visitors to the sign-in page; refuse (403) users below ``role``."""

    def decorate(view: Callable[P, R]) -> Callable[P, R | Response]:
        @functools.wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            user = current_user()
            if user is None:
                return redirect(url_for("auth.login", next=request.path))
            if ROLE_RANK[UserRole(user.role)] < ROLE_RANK[role]:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    error = None
    if request.method == "POST":
        check_csrf()
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        user = users.authenticate(db(), username, password) if username else None
        if user is not None:
            db().commit()
            session.clear()
            now = int(time.time())
            session.update(uid=user.id, epoch=user.session_epoch, began=now, seen=now)
            log.info("user %s signed in from %s", user.username, request.remote_addr)
            target = local_path(request.args.get("next", "")) or url_for("dashboard.overview")
            return redirect(target)
        log.warning("failed sign-in for %r from %s", username[:64], request.remote_addr)
        error = "Unknown user name or wrong password."
    return render_template("login.html", error=error)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Sign out: every session of this user ends, on every device."""
    check_csrf()
    user = current_user()
    session.clear()  # this browser is signed out even if the database cannot record it (a 503 then says why)
    if user is not None:
        users.end_sessions(db(), user.id)
        db().commit()
        log.info("user %s signed out from %s", user.username, request.remote_addr)
    return redirect(url_for("auth.login"))


# -- throttling of sign-in attempts --------------------------------------------------------------------------


def _posted_username() -> str:
    return "user:" + request.form.get("username", "").strip().lower()[:64]


def _failed(response: Response) -> bool:
    """A sign-in attempt counts against the limits unless it signed in (a redirect)."""
    return response.status_code != 302


def init_throttling(app: Flask, web: WebSettings) -> Limiter:
    """Limit failed sign-ins on ``app`` per user name and per client address, as ``web`` says."""
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=web.rate_limit_storage_uri,
        strategy="moving-window",
        headers_enabled=False,  # the 429 answer sets Retry-After itself (see too_many)
        key_prefix="edgebill",
    )
    view: Callable[..., Any] = app.view_functions["auth.login"]
    view = limiter.limit(web.login_limit_per_address, methods=["POST"], deduct_when=_failed, scope="login-address")(
        view
    )
    view = limiter.limit(
        web.login_limit_per_account,
        key_func=_posted_username,
        methods=["POST"],
        deduct_when=_failed,
        scope="login-account",
    )(view)
    app.view_functions["auth.login"] = view

    def too_many(exc: RateLimitExceeded) -> Response:
        limit = limiter.current_limit
        seconds = max(1, math.ceil(limit.window.reset_time - time.time())) if limit is not None else 60
        log.warning("sign-in throttled for %s (%s)", request.remote_addr, exc.description)
        if is_machine_path(request.path):
            response = json_error(429, "too_many_requests", f"too many requests; try again in {seconds} seconds")
        else:
            error = f"Too many failed sign-ins. Try again in {seconds} seconds."
            response = Response(render_template("login.html", error=error), status=429, mimetype="text/html")
        response.headers["Retry-After"] = str(seconds)
        return response

    app.register_error_handler(RateLimitExceeded, too_many)
    return limiter
