"""Money in and out: manual payments, bank statement imports and refunds, each followed by allocation and
dunning (:func:`daemon.billing.account.on_payment`) in the same transaction.

Bank statements are CSV files with a header naming the columns ``date`` (``YYYY-MM-DD``), ``amount`` (a plain
decimal in the billing currency, such as ``30.00``), ``reference`` and, optionally, ``name``; other columns
are ignored. The rules, exactly:

* Every row is checked before anything is written. If any row is broken (a bad date or amount, a missing
  field), nothing at all is written and every broken row is reported with its line number.
* A row matches a customer by its reference: an invoice number (``INV-000042``) anywhere in it names that
  invoice's customer; otherwise a customer reference ``C123`` (the letter C and the customer id, as a word)
  names customer 123. Rows that match nothing, match a customer that does not exist, or are not credits
  (zero or negative amounts) are reported as unmatched and left for staff to handle.
* Each matched row is recorded as a ``bank`` payment with an external id derived from the row's date,
  amount, reference and name (and its occurrence in the file), so importing the same statement twice
  records each payment once; rows already imported are reported as such.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal, Unpack

from sqlalchemy.orm import Session

from daemon.billing.account import on_payment
from daemon.billing.dunning import CustomerDunning
from daemon.config import Settings
from daemon.config.files import FileProblem, decode_text, read_user_file
from daemon.db.models import PaymentMethod
from daemon.services import customers, invoices, payments
from daemon.services.errors import Invalid
from daemon.services.payments import PaymentDetails, PaymentRecord
from policies.money import Money

__all__ = [
    "ImportReport",
    "Received",
    "RowOutcome",
    "StatementError",
    "import_statement",
    "parse_statement",
    "receive_payment",
    "refund",
]

log = logging.getLogger(__name__)

_CUSTOMER_REF = re.compile(r"(?<![A-Za-z0-9])[Cc](\d{1,12})(?![A-Za-z0-9])")
_MAX_ROWS = 100_000
#: The largest statement file read: room for the rows above.
_MAX_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Received:
    """A payment taken in: the record, whether this call created it (``False``: a replay of one already
    recorded), and the customer's dunning outcome afterwards."""

    payment: PaymentRecord
    created: bool
    dunning: CustomerDunning | None

    def to_json(self) -> dict[str, Any]:
        return {
            "payment": self.payment.to_json(),
            "created": self.created,
            "dunning": None if self.dunning is None else self.dunning.to_json(),
        }


def receive_payment(
    session: Session,
    actor: str,
    settings: Settings,
    *,
    as_of: date | None = None,
    **details: Unpack[PaymentDetails],
) -> Received:
    """Take a payment in: record it (:func:`daemon.services.payments.record_payment`, whose keyword arguments
    :class:`~daemon.services.payments.PaymentDetails` names), then allocate it and re-evaluate the customer's
    services (:func:`~daemon.billing.account.on_payment`), in the caller's transaction. The CLI, the dashboard,
    the payment webhook and the statement import all take money in through this function.

    With ``external_id`` a repeat of a payment already recorded changes nothing and returns ``created=False``.
    """
    external_id = details.get("external_id")
    replay = external_id is not None and payments.by_external_id(session, external_id) is not None
    record = payments.record_payment(session, actor, settings, **details)
    if replay:
        return Received(record, False, None)
    outcome = on_payment(session, settings, record.customer_id, actor=actor, as_of=as_of)
    return Received(record, True, outcome)


def refund(
    session: Session,
    actor: str,
    settings: Settings,
    payment_id: int,
    *,
    amount: Money | str | None = None,
    reference: str | None = None,
    as_of: date | None = None,
) -> Received:
    """Refund all or part of a payment, then re-allocate (a refund can reopen a paid invoice)."""
    record = payments.refund_payment(session, actor, payment_id, amount=amount, reference=reference)
    outcome = on_payment(session, settings, record.customer_id, actor=actor, as_of=as_of)
    return Received(record, True, outcome)


# -- bank statements ------------------------------------------------------------------------------------------


class StatementError(Invalid):
    """A statement that cannot be imported; ``problems`` lists every broken row."""

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


@dataclass(frozen=True)
class StatementRow:
    """One valid statement row."""

    line: int
    day: date
    amount: Money
    reference: str
    name: str
    external_id: str


Outcome = Literal["recorded", "already-imported", "unmatched"]


@dataclass(frozen=True)
class RowOutcome:
    """What happened to one row."""

    line: int
    outcome: Outcome
    amount: str
    reference: str
    customer_id: int | None = None
    payment_id: int | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "outcome": self.outcome,
            "amount": self.amount,
            "reference": self.reference,
            "customer_id": self.customer_id,
            "payment_id": self.payment_id,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class ImportReport:
    """Row by row, what the import did."""

    rows: tuple[RowOutcome, ...]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for row in self.rows if row.outcome == outcome)

    def to_json(self) -> dict[str, Any]:
        return {
            "recorded": self.count("recorded"),
            "already_imported": self.count("already-imported"),
            "unmatched": self.count("unmatched"),
            "rows": [row.to_json() for row in self.rows],
        }


def _field(row: dict[str, str], key: str) -> str:
    return (row.get(key) or "").strip()


def _header(reader: csv.DictReader[str]) -> Sequence[str] | None:
    try:
        return reader.fieldnames
    except csv.Error as exc:  # a field beyond the csv module's limit
        raise StatementError(f"line {reader.line_num + 1}: not CSV: {exc}") from None


def _records(reader: csv.DictReader[str]) -> Iterator[dict[str, str]]:
    try:
        yield from reader
    except csv.Error as exc:
        # the line that failed is not counted yet
        raise StatementError(f"line {reader.line_num + 1}: not CSV: {exc}; nothing was imported") from None


def parse_statement(text: str, settings: Settings) -> list[StatementRow]:
    """Read and check a whole statement; :class:`StatementError` lists every broken row."""
    cur = settings.billing.currency
    if "\x00" in text:  # PostgreSQL stores no NUL in text: refused here, not by the database
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise StatementError(f"line {line}: holds a NUL byte (is it a CSV text file?); nothing was imported")
    reader = csv.DictReader(io.StringIO(text))
    header = _header(reader)
    if header is None:
        raise StatementError("the statement is empty: expected a header line with date, amount, reference")
    reader.fieldnames = [name.strip().lower() for name in header]
    missing = [col for col in ("date", "amount", "reference") if col not in reader.fieldnames]
    if missing:
        raise StatementError(f"the statement header lacks the column(s) {', '.join(missing)}")
    rows: list[StatementRow] = []
    problems: list[str] = []
    seen: Counter[tuple[str, ...]] = Counter()
    for record in _records(reader):
        line = reader.line_num
        if len(rows) + len(problems) >= _MAX_ROWS:
            raise StatementError(f"the statement has more than {_MAX_ROWS} rows; split it")
        if None in record:
            problems.append(f"line {line}: more fields than the header names")
            continue
        raw_day, raw_amount = _field(record, "date"), _field(record, "amount")
        reference, name = _field(record, "reference")[:200], _field(record, "name")[:200]
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            problems.append(f"line {line}: invalid date {raw_day[:40]!r}: expected YYYY-MM-DD")
            continue
        try:
            amount = Money.parse(raw_amount, cur)
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        key = (day.isoformat(), str(amount.minor), reference, name)
        seen[key] += 1
        digest = hashlib.sha256("\x1f".join((*key, str(seen[key]))).encode()).hexdigest()[:40]
        rows.append(StatementRow(line, day, amount, reference, name, f"bank:{digest}"))
    if problems:
        raise StatementError(f"{len(problems)} broken row(s); nothing was imported", problems)
    return rows


def _match(session: Session, settings: Settings, reference: str) -> tuple[int | None, str]:
    series = re.escape(settings.billing.invoice_series)
    found = re.search(rf"(?<![A-Za-z0-9]){series}-0*(\d{{1,9}})(?![0-9])", reference, re.IGNORECASE)
    if found:
        customer_id = invoices.billed_customer(session, settings.billing.invoice_series, int(found.group(1)))
        if customer_id is not None:
            return customer_id, f"invoice {found.group(0)}"
    tagged = _CUSTOMER_REF.search(reference)
    if tagged:
        customer_id = int(tagged.group(1))
        if customers.exists(session, customer_id):
            return customer_id, f"customer reference {tagged.group(0)}"
        return None, f"customer reference {tagged.group(0)} names no customer"
    return None, "no invoice number or customer reference in the reference"


def import_statement(
    session: Session,
    actor: str,
    settings: Settings,
    source: Path | str,
    *,
    as_of: date | None = None,
) -> ImportReport:
    """Import a bank statement (a path, or the CSV text itself) in the caller's transaction (see the module
    rules). Raises :class:`StatementError` and writes nothing when any row is broken."""
    if isinstance(source, Path):
        try:
            text = decode_text(read_user_file(source, limit=_MAX_BYTES), bom=True)
        except FileProblem as exc:
            raise StatementError(f"statement file {source}: {exc}") from None
    else:
        text = source
    tz = settings.billing.timezone
    outcomes: list[RowOutcome] = []
    for row in parse_statement(text, settings):
        shown = row.amount.to_json()
        if not row.amount.is_positive():
            outcomes.append(RowOutcome(row.line, "unmatched", shown, row.reference, detail="not a credit"))
            continue
        customer_id, why = _match(session, settings, row.reference)
        if customer_id is None:
            outcomes.append(RowOutcome(row.line, "unmatched", shown, row.reference, detail=why))
            continue
        with session.begin_nested():
            received = receive_payment(
                session,
                actor,
                settings,
                customer_id=customer_id,
                amount=row.amount,
                method=PaymentMethod.BANK,
                reference=(row.reference or row.name or None),
                received_at=datetime.combine(row.day, time(12), tzinfo=tz),
                external_id=row.external_id,
                as_of=as_of,
            )
        outcome: Outcome = "recorded" if received.created else "already-imported"
        outcomes.append(
            RowOutcome(row.line, outcome, shown, row.reference, customer_id, received.payment.id, detail=why)
        )
    report = ImportReport(tuple(outcomes))
    log.info(
        "statement import by %s: %s recorded, %s already imported, %s unmatched",
        actor,
        report.count("recorded"),
        report.count("already-imported"),
        report.count("unmatched"),
    )
    return report
