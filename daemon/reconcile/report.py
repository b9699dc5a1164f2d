"""What one reconcile run did to one router: :class:`ReconcileReport`, its one-line summary and its JSON form.

The engine (:mod:`daemon.reconcile.engine`) fills it in; the log, the CLI (text and ``--json``) and the benches
read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["ReconcileReport"]

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class ReconcileReport:
    """The outcome of one run for one router; ``plan`` holds secret-free lines from ``Change.describe()``.

    ``conflicts`` are the entries the router does not carry (a value it refuses, a key held by an entry edgebill
    does not own), one secret-free line each, and ``conflicted`` the services they keep off the router.
    ``scope`` lists the services a scoped run was limited to; it is None for a full run (and for a scoped run
    the driver could not narrow, which ran in full instead). A scoped run never reports ``drift``.
    """

    router: str
    dry_run: bool
    started_at: datetime
    finished_at: datetime
    plan: tuple[str, ...] = ()
    counts: dict[str, int] = field(default_factory=lambda: {"add": 0, "change": 0, "remove": 0})
    conflicts: tuple[str, ...] = ()
    applied: tuple[str, ...] = ()
    disconnected: tuple[str, ...] = ()
    drift: bool = False
    ops_done: int = 0
    ops_pending: int = 0
    conflicted: tuple[int, ...] = ()
    residual: int = 0
    error: str | None = None
    scope: tuple[int, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def clean(self) -> bool:
        """No error, no conflict and nothing left differing after the writes: the router carries everything the
        database says (or will, once a dry run's plan is applied)."""
        return self.ok and not self.conflicts and not self.residual

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.disconnected)

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()

    def summary(self) -> str:
        """One line for the log and the CLI."""
        c = self.counts
        head = f"{self.router}: {'plan' if self.dry_run else 'applied'} +{c['add']} ~{c['change']} -{c['remove']}"
        parts = [head]
        if self.scope is not None:
            parts.append(f"scope: {len(self.scope)} service{'' if len(self.scope) == 1 else 's'}")
        if not self.dry_run:
            parts.append(f"{len(self.applied)} writes")
        if self.disconnected:
            parts.append(f"{len(self.disconnected)} disconnected")
        if self.conflicts:
            n = len(self.conflicts)
            parts.append(f"{n} conflict{'' if n == 1 else 's'}")
        if self.drift:
            parts.append("drift corrected")
        if self.ops_done or self.ops_pending:
            parts.append(f"ops {self.ops_done} done, {self.ops_pending} pending")
        if self.residual:
            parts.append(f"{self.residual} changes still pending after apply")
        parts.append(f"{self.seconds:.2f}s")
        if self.error:
            parts.append(f"error: {self.error}")
        return ", ".join(parts)

    def to_json(self) -> JsonDict:
        return {
            "router": self.router,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "seconds": round(self.seconds, 3),
            "plan": list(self.plan),
            "counts": dict(self.counts),
            "conflicts": list(self.conflicts),
            "conflicted_services": list(self.conflicted),
            "applied": list(self.applied),
            "disconnected": list(self.disconnected),
            "drift": self.drift,
            "ops_done": self.ops_done,
            "ops_pending": self.ops_pending,
            "residual": self.residual,
            "error": self.error,
            "scope": list(self.scope) if self.scope is not None else None,
        }
