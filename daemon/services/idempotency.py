"""Idempotent writes: a request carrying a key is carried out once; a repeat gets the first answer.

The rules, exactly:

* A key (a dashboard form's one-time token, a CLI ``--idempotency-key``, an API ``Idempotency-Key`` header) is
  1-200 printable ASCII characters without spaces. It is unique within its ``scope`` (what was asked, such as
  ``payment.add``; an API adds the caller to the scope so two clients' keys never meet).
* :func:`claim` is called first, in the transaction that does the work; :func:`complete` stores the answer
  in the same transaction. A claim is a row under a unique ``(scope, key)`` constraint, so of two concurrent
  requests with one key (two web processes, two tabs, a retried request) the second waits for the first
  transaction (PostgreSQL's unique index; SQLite's write lock) and then reads the first answer: exactly one
  write, whatever the number of processes. A refused request rolls back and leaves the key unused.
* The same key with other request details (the ``fingerprint``, a hash of them) is a :class:`Conflict`: the
  key was spent on something else.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from daemon.db.models import IdempotencyKey
from daemon.services import _validate as check
from daemon.services._db import insert_unique
from daemon.services.errors import Conflict, Invalid

__all__ = ["Claim", "Replay", "claim", "complete", "fingerprint"]

JsonDict = dict[str, Any]

_KEY = re.compile(r"[\x21-\x7e]{1,200}")


@dataclass(frozen=True)
class Claim:
    """A key taken by this transaction: do the work, then :func:`complete` it."""

    row_id: int
    scope: str
    key: str


@dataclass(frozen=True)
class Replay:
    """A key already answered: ``result`` is the first answer; nothing more is to be written."""

    scope: str
    key: str
    result: JsonDict


def fingerprint(details: JsonDict) -> str:
    """A stable hash of a request's details (JSON with sorted keys; values shown with ``str``)."""
    text = json.dumps(details, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _find(session: Session, scope: str, key: str) -> IdempotencyKey | None:
    query = select(IdempotencyKey).where(IdempotencyKey.scope == scope, IdempotencyKey.key == key)
    return session.scalars(query).one_or_none()


def _replay(row: IdempotencyKey, print_: str) -> Replay:
    if row.fingerprint != print_:
        raise Conflict(f"the request {check.shown(row.key)} was already used with other details; start a new one")
    if row.result is None:
        raise Conflict(f"the request {check.shown(row.key)} is still being carried out; try again shortly")
    return Replay(row.scope, row.key, dict(row.result))


def claim(session: Session, actor: str, scope: str, key: str, print_: str) -> Claim | Replay:
    """Take ``key`` in ``scope`` for this transaction, or return the first answer if it was taken before."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise Invalid(f"invalid request key {check.shown(str(key))}: expected 1-200 printable characters, no spaces")
    found = _find(session, scope, key)
    if found is not None:
        return _replay(found, print_)
    row = IdempotencyKey(scope=scope, key=key, fingerprint=print_, actor=actor[:100])
    try:
        insert_unique(session, row, "taken")
    except Conflict:
        # A concurrent transaction took the key and has committed since: answer with its result.
        found = _find(session, scope, key)
        if found is None:  # pragma: no cover - the unique constraint names a committed row
            raise
        return _replay(found, print_)
    return Claim(row.id, scope, key)


def complete(session: Session, taken: Claim, result: JsonDict) -> None:
    """Store the answer to a claimed request, in the transaction that did the work."""
    row = session.get(IdempotencyKey, taken.row_id)
    if row is None:  # pragma: no cover - the claim was made in this transaction
        raise Conflict(f"request {check.shown(taken.key)} vanished before it was answered")
    row.result = result
    session.flush()
