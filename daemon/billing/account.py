"""Whole-account actions: what a payment triggers, and the scheduled dunning run.

:func:`on_payment` is what every payment path calls once the money is recorded (manual payments, the bank
statement import, the payment processor's webhook): in the same transaction it renews lapsed prepaid
services the customer's credit now covers, allocates the money to the oldest open invoices, and re-evaluates
dunning, so a paying customer is released at once. :func:`run_dunning` does the same for every customer on
a schedule, and sends the reminder e-mails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from daemon.billing.common import DUNNING_PREFIX, FAIR_USE_PREFIX, PREPAID_PREFIX, today
from daemon.billing.dunning import CustomerDunning, refresh_states
from daemon.billing.mail import Mailer, Templates
from daemon.billing.run import bill_customer
from daemon.config import Settings
from daemon.db import session_factory
from daemon.services import customers, invoices
from daemon.services import services as subs
from daemon.services.errors import ServiceError
from policies.dunning import DunningError
from policies.periods import PeriodError

__all__ = ["DunningRunResult", "on_payment", "run_dunning"]

log = logging.getLogger(__name__)


def on_payment(
    session: Session,
    settings: Settings,
    customer_id: int,
    *,
    actor: str = "billing",
    as_of: date | None = None,
) -> CustomerDunning:
    """After money reached the customer's account: renew what it pays for, allocate it, and release (or keep)
    the services as dunning now decides. Runs in the caller's transaction; sends no e-mail."""
    day = today(settings.billing, as_of)
    bill_customer(session, settings, customer_id, day, prepaid_only=True)
    return refresh_states(session, settings, customer_id, day, actor=actor, send_mail=False)


@dataclass(frozen=True)
class DunningRunResult:
    """A dunning run: the day, each customer evaluated, and the customers that failed with why."""

    as_of: date
    customers: tuple[CustomerDunning, ...]
    errors: tuple[tuple[int, str], ...]

    def to_json(self) -> dict[str, Any]:
        changed = [c for c in self.customers if c.changes or c.emailed or c.email_error]
        return {
            "as_of": self.as_of.isoformat(),
            "customers": len(self.customers),
            "services_changed": sum(len(c.changes) for c in self.customers),
            "emails_sent": sum(1 for c in self.customers if c.emailed),
            "results": [c.to_json() for c in changed],
            "errors": [{"customer_id": cid, "error": text} for cid, text in self.errors],
        }


def _needing_attention(session: Session, customer_ids: list[int]) -> tuple[list[int], set[int]]:
    """The customers among ``customer_ids`` dunning can have something to do for (an open invoice, a service
    in a state billing set, to release or re-check, a prepaid plan to renew or a throttling quota), and those
    of them with prepaid services."""
    found = invoices.with_open_invoices(session, customer_ids)
    watched = subs.watched_by_billing(session, customer_ids, (PREPAID_PREFIX, DUNNING_PREFIX, FAIR_USE_PREFIX))
    found.update(watched)
    prepaid = {customer_id for customer_id, is_prepaid in watched.items() if is_prepaid}
    return [customer_id for customer_id in customer_ids if customer_id in found], prepaid


def run_dunning(
    engine: Engine,
    settings: Settings,
    *,
    as_of: date | None = None,
    actor: str = "dunning",
    mailer: Mailer | None = None,
    templates: Templates | None = None,
    batch_size: int = 200,
) -> DunningRunResult:
    """Evaluate every customer on ``as_of`` (default today): renew covered prepaid services, apply dunning,
    send the steps' e-mails. Only customers with an open invoice, a service in a state billing set, a prepaid
    plan or a throttling quota are looked at. Each batch of customers is one transaction; a customer that
    fails is reported and skipped."""
    day = today(settings.billing, as_of)
    factory = session_factory(engine)
    results: list[CustomerDunning] = []
    errors: list[tuple[int, str]] = []
    last = 0
    while True:
        with factory.begin() as session:
            ids = customers.customer_ids(session, after=last, limit=batch_size)
            if not ids:
                break
            last = ids[-1]
            ids, prepaid = _needing_attention(session, ids)
            for customer_id in ids:
                try:
                    with session.begin_nested():
                        if customer_id in prepaid:
                            bill_customer(session, settings, customer_id, day, prepaid_only=True)
                        result = refresh_states(
                            session,
                            settings,
                            customer_id,
                            day,
                            actor=actor,
                            mailer=mailer,
                            templates=templates,
                        )
                except (ServiceError, DunningError, PeriodError, ValueError) as exc:
                    log.error("dunning run %s: customer %s skipped: %s", day, customer_id, exc)
                    errors.append((customer_id, str(exc)))
                    continue
                results.append(result)
    log.info("dunning run %s: %s customers, %s errors", day, len(results), len(errors))
    return DunningRunResult(day, tuple(results), tuple(errors))
