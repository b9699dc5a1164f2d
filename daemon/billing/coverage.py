"""What each service has been billed for so far: its :class:`Coverage`, read from its invoice lines.

How much data a service moved in a period is :func:`daemon.services.usage.period_usage`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy.orm import Session

from daemon.db.models import InvoiceLineKind
from daemon.services import invoices

__all__ = ["Coverage", "load_coverage"]

_CHARGE_KINDS = (InvoiceLineKind.RECURRING, InvoiceLineKind.PRORATION)


@dataclass
class Coverage:
    """What a service has been billed for so far, read from its lines on invoices that are not void."""

    #: The day after the last charged day (``None``: never charged).
    until: date | None = None
    #: Start days of the periods already given an overage line.
    overage_starts: set[date] = field(default_factory=set)
    #: Start days of credit lines (a termination credit starts on the service's last day + 1).
    credit_starts: set[date] = field(default_factory=set)

    def add(self, kind: InvoiceLineKind, start: date | None, end: date | None) -> None:
        if kind in _CHARGE_KINDS and end is not None:
            after = end + timedelta(days=1)
            if self.until is None or after > self.until:
                self.until = after
        elif kind is InvoiceLineKind.OVERAGE and start is not None:
            self.overage_starts.add(start)
        elif kind is InvoiceLineKind.CREDIT and start is not None:
            self.credit_starts.add(start)


def load_coverage(session: Session, service_ids: Iterable[int]) -> dict[int, Coverage]:
    """Each service's :class:`Coverage` (services never billed get an empty one)."""
    ids = list(service_ids)
    result: dict[int, Coverage] = {sid: Coverage() for sid in ids}
    for service_id, kind, period_start, period_end in invoices.billed_lines(session, ids):
        result[service_id].add(kind, period_start, period_end)
    return result
