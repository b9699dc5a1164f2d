"""The daemon's billing jobs: the daily billing run, then dunning; dunning again on its interval.

The daemon registers :func:`daily_steps` in its daily run (at ``[scheduler] billing_at``) and calls
:func:`dunning_step` every ``[scheduler] dunning_interval``. Each step opens its own transactions on the
daemon's database and logs what it did; a failure is raised to the scheduler, which logs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from daemon.billing.account import run_dunning
from daemon.billing.run import run_billing
from daemon.config import Settings

__all__ = ["daily_steps", "dunning_step"]

log = logging.getLogger(__name__)


def _engine(sessions: sessionmaker[Session]) -> Engine:
    bind = sessions.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("the daemon's session factory must be bound to an engine")
    return bind


def dunning_step(settings: Settings, sessions: sessionmaker[Session]) -> Callable[[], object]:
    """The dunning run for today, as a job without arguments."""
    engine = _engine(sessions)

    def step() -> object:
        result = run_dunning(engine, settings, actor="daemon")
        for customer_id, error in result.errors:
            log.error("dunning: customer %s: %s", customer_id, error)
        return result

    return step


def daily_steps(settings: Settings, sessions: sessionmaker[Session]) -> list[tuple[str, Callable[[], object]]]:
    """``[("billing", ...), ("dunning", ...)]``: today's billing run, then dunning, in that order."""
    engine = _engine(sessions)

    def billing() -> object:
        result = run_billing(engine, settings, actor="daemon")
        for customer_id, error in result.errors:
            log.error("billing: customer %s: %s", customer_id, error)
        return result

    return [("billing", billing), ("dunning", dunning_step(settings, sessions))]
