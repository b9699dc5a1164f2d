"""Users of the dashboard and API, their passwords (argon2) and API tokens (stored as SHA-256 only)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.db.errors import best_effort
from daemon.db.models import ApiToken, User, UserRole, utcnow
from daemon.security import TOKEN_PREFIX, hash_password, new_api_token, password_needs_rehash, token_digest
from daemon.security import verify_password as _verify_hash
from daemon.services import _validate as check
from daemon.services import audit
from daemon.services._db import insert_unique
from daemon.services.errors import Conflict, Invalid, NotFound

__all__ = [
    "IssuedToken",
    "TokenRecord",
    "UserRecord",
    "active_user",
    "authenticate",
    "check_new_credentials",
    "count_users",
    "create_token",
    "create_user",
    "end_sessions",
    "get_user",
    "list_tokens",
    "list_users",
    "revoke_token",
    "set_password",
    "set_user_active",
    "verify_token",
]

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    role: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None
    #: The epoch a signed-in session must carry to be valid (see :func:`end_sessions`); not shown.
    session_epoch: int = 0

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "active": self.active,
            "created_at": self.created_at.isoformat(),
            "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None,
        }


def _user_record(row: User) -> UserRecord:
    return UserRecord(
        row.id, row.username, row.role.value, row.active, row.created_at, row.last_login_at, row.session_epoch or 0
    )


@dataclass(frozen=True)
class TokenRecord:
    id: int
    user_id: int
    username: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "username": self.username,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def _token_record(row: ApiToken) -> TokenRecord:
    return TokenRecord(
        row.id, row.user_id, row.user.username, row.name, row.created_at, row.last_used_at, row.revoked_at
    )


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``token`` is the only time the secret is available; it is not stored."""

    record: TokenRecord
    token: str = ""

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"IssuedToken(record={self.record!r}, token='***')"


def _role(value: str | UserRole) -> UserRole:
    try:
        return UserRole(value)
    except ValueError:
        choices = ", ".join(r.value for r in UserRole)
        raise Invalid(f"invalid role {value!r}: expected one of {choices}") from None


def _load_user(session: Session, username: str) -> User:
    row = session.scalars(select(User).where(User.username == username)).one_or_none()
    if row is None:
        raise NotFound(f"user {username!r} not found")
    return row


def count_users(session: Session) -> int:
    return int(session.scalar(select(func.count(User.id))) or 0)


def check_new_credentials(username: str, password: str) -> None:
    """Refuse (:class:`Invalid`) a user name or password that :func:`create_user` would refuse."""
    check.username(username)
    check.user_password(password)


def create_user(session: Session, actor: str, username: str, password: str, role: str | UserRole) -> UserRecord:
    """Create an active user with an argon2-hashed password."""
    name = check.username(username)
    wanted = _role(role)
    check.user_password(password)
    if session.scalars(select(User.id).where(User.username == name)).first() is not None:
        raise Conflict(f"user {name!r} already exists")
    row = User(username=name, password_hash=hash_password(password), role=wanted, active=True)
    insert_unique(session, row, f"user {name!r} already exists")
    result = _user_record(row)
    audit.record(session, actor, "user.add", "user", None, result.to_json())
    log.info("user %s (%s) created by %s", name, wanted.value, actor)
    return result


def get_user(session: Session, username: str) -> UserRecord:
    return _user_record(_load_user(session, username))


def active_user(session: Session, user_id: int) -> UserRecord | None:
    """The user with this id if it exists and is active (a signed-in session's user), else ``None``."""
    row = session.get(User, user_id)
    return _user_record(row) if row is not None and row.active else None


def list_users(session: Session) -> list[UserRecord]:
    return [_user_record(row) for row in session.scalars(select(User).order_by(User.username))]


def authenticate(session: Session, username: str, password: str) -> UserRecord | None:
    """The active user whose password this is, recording the login; ``None`` otherwise (same cost).

    A name no user can have (too long, control characters) is not looked up: some databases refuse it outright."""
    try:
        check.username(username)
    except Invalid:
        _verify_hash(None, password)
        return None
    row = session.scalars(select(User).where(User.username == username)).one_or_none()
    if not _verify_hash(row.password_hash if row is not None else None, password):
        return None
    assert row is not None
    if not row.active:
        return None
    with best_effort(session, "the time of a sign-in"):  # signing in to read works on a read-only database
        if password_needs_rehash(row.password_hash):
            row.password_hash = hash_password(password)
        row.last_login_at = utcnow()
    return _user_record(row)


def set_password(session: Session, actor: str, username: str, password: str) -> None:
    """Set a new password; every session signed in with the old one ends."""
    row = _load_user(session, username)
    check.user_password(password)
    row.password_hash = hash_password(password)
    row.session_epoch = (row.session_epoch or 0) + 1
    session.flush()
    audit.record(session, actor, "user.set_password", "user", None, None, entity_id=row.id)


def end_sessions(session: Session, user_id: int) -> None:
    """End every signed-in session of the user (sign-out ends them all, on every device)."""
    row = session.get(User, user_id)
    if row is not None:
        row.session_epoch = (row.session_epoch or 0) + 1
        session.flush()


def set_user_active(session: Session, actor: str, username: str, active: bool) -> UserRecord:
    """Enable or disable a user; disabling also ends their sessions and stops their tokens from verifying."""
    row = _load_user(session, username)
    before = _user_record(row)
    if row.active == active:
        return before
    row.active = active
    if not active:
        row.session_epoch = (row.session_epoch or 0) + 1
    session.flush()
    after = _user_record(row)
    audit.record(session, actor, "user.enable" if active else "user.disable", "user", before.to_json(), after.to_json())
    return after


def create_token(session: Session, actor: str, username: str, name: str) -> IssuedToken:
    """Issue an API token for an active user; the secret is returned once, only its SHA-256 is stored.

    ``name`` labels the token (``billing-export``); it must be unique among the user's unrevoked tokens.
    """
    row = _load_user(session, username)
    if not row.active:
        raise Conflict(f"user {username!r} is disabled")
    label = check.name(name, "token")
    clash = session.scalars(
        select(ApiToken.id).where(ApiToken.user_id == row.id, ApiToken.name == label, ApiToken.revoked_at.is_(None))
    ).first()
    if clash is not None:
        raise Conflict(f"user {username!r} already has a token named {label!r}")
    secret = new_api_token()
    token = ApiToken(user=row, name=label, token_hash=token_digest(secret))
    session.add(token)
    session.flush()
    record = _token_record(token)
    audit.record(session, actor, "token.create", "api_token", None, record.to_json())
    log.info("API token %s (%s) created for %s by %s", token.id, label, username, actor)
    return IssuedToken(record, secret)


def list_tokens(session: Session, username: str | None = None) -> list[TokenRecord]:
    query = select(ApiToken).order_by(ApiToken.id)
    if username is not None:
        query = query.where(ApiToken.user_id == _load_user(session, username).id)
    return [_token_record(row) for row in session.scalars(query)]


def revoke_token(session: Session, actor: str, token_id: int) -> TokenRecord:
    """Revoke a token; revoking it again changes nothing."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"API token {token_id} not found")
    before = _token_record(row)
    if row.revoked_at is not None:
        return before
    row.revoked_at = utcnow()
    session.flush()
    after = _token_record(row)
    audit.record(session, actor, "token.revoke", "api_token", before.to_json(), after.to_json())
    return after


def verify_token(session: Session, token: str) -> UserRecord | None:
    """The active user an unrevoked token belongs to (recording its use), else ``None``."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == token_digest(token))).one_or_none()
    if row is None or row.revoked_at is not None or not row.user.active:
        return None
    with best_effort(session, "the time an API token was last used"):
        row.last_used_at = utcnow()
    return _user_record(row.user)
