"""Sign-in for the dashboard (session cookie, CSRF-protected forms) and roles.

Roles, least to most: ``readonly`` sees everything but secrets; ``support`` can also act on services (throttle,
resume, promise to pay); ``admin`` can do everything. Failed sign-ins are logged with the user name and address,
never the password.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from daemon.db.models import UserRole
from daemon.services import users
from daemon.services.users import UserRecord
from web.context import db

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

P = ParamSpec("P")
R = TypeVar("R")

ROLE_RANK = {UserRole.READONLY: 0, UserRole.SUPPORT: 1, UserRole.ADMIN: 2}


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
    """The signed-in user, if the session names one that is still active."""
    if "user" in g:
        user: UserRecord | None = g.user
        return user
    uid = session.get("uid")
    user = users.active_user(db(), uid) if isinstance(uid, int) else None
    g.user = user
    return user


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
            session["uid"] = user.id
            log.info("user %s signed in from %s", user.username, request.remote_addr)
            target = request.args.get("next", "")
            if not target.startswith("/") or target.startswith("//"):
                target = url_for("dashboard.overview")
            return redirect(target)
        log.warning("failed sign-in for %r from %s", username[:64], request.remote_addr)
        error = "Unknown user name or wrong password."
    return render_template("login.html", error=error)


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    check_csrf()
    session.clear()
    return redirect(url_for("auth.login"))
