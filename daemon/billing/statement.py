"""Bank statement imports: each row a payment, recorded once, and never silently dropped.

Bank statements are CSV files with a header naming the columns ``date`` (``YYYY-MM-DD``), ``amount`` (a plain
decimal in the billing currency, such as ``30.00``), ``reference`` and, optionally, ``name`` (the payer) and
``transaction_id`` (the bank's own id for the transaction); other columns are ignored. The rules, exactly:

* Every row is checked before anything is written. If any row is broken (a bad date, an amount that is
  malformed or beyond :data:`policies.money.MAX_AMOUNT`, a missing field, one transaction id on two rows),
  nothing at all is written and every broken row is reported with its line number.
* A row matches a customer by its reference: an invoice number (``INV-000042``) anywhere in it names that
  invoice's customer; otherwise a customer reference ``C123`` (the letter C and the customer id, as a word)
  names customer 123. Rows that match nothing, match a customer that does not exist, or are not credits
  (zero or negative amounts) are reported as unmatched and left for staff to handle.
* **Duplicates.** A row is the same payment as one already recorded only when the bank gives a transaction id
  and that id was already recorded for the same account (``account``, ``bank`` unless told): its external id
  is ``bank:ACCOUNT:TRANSACTION_ID``. Such a row is reported as already imported and writes nothing.
* A row without a transaction id that looks like a payment recorded by an earlier import (same date, amount,
  reference and payer name) is **doubtful**: it may be the same transfer in a second statement, or a real
  second payment. It is neither skipped nor recorded: it is reported for a person to decide, and recorded only
  when its line is named in ``accept`` (``edgebill payment import FILE --accept-doubtful LINE...``). Identical
  rows within one statement are separate payments.
* A recorded row without a transaction id gets the external id ``bank-row:DIGEST:N``, where ``DIGEST`` hashes the
  date, amount, reference and name, and ``N`` counts the payments recorded with that digest: that is how a later
  import recognises a look-alike. Rows recorded before this rule (external id ``bank:`` and a 40-digit hash of
  the same fields and the row's occurrence in its file) are recognised too.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

from sqlalchemy.orm import Session

from daemon.billing.payments import receive_payment
from daemon.config import Settings
from daemon.config.files import FileProblem, decode_text, read_user_file
from daemon.db.models import PaymentMethod
from daemon.services import customers, invoices, payments
from daemon.services.errors import Conflict, Invalid
from policies.money import Money, check_amount

__all__ = [
    "DEFAULT_ACCOUNT",
    "ImportReport",
    "RowOutcome",
    "StatementError",
    "StatementRow",
    "import_statement",
    "parse_statement",
]

log = logging.getLogger(__name__)

#: The account a statement belongs to when none is named.
DEFAULT_ACCOUNT = "bank"

_CUSTOMER_REF = re.compile(r"(?<![A-Za-z0-9])[Cc](\d{1,12})(?![A-Za-z0-9])")
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
_TRANSACTION = re.compile(r"[\x21-\x7e]{1,120}")
_MAX_ROWS = 100_000
#: The largest statement file read: room for the rows above.
_MAX_BYTES = 32 * 1024 * 1024


class StatementError(Invalid):
    """A statement that cannot be imported; ``problems`` lists every broken row."""

    def __init__(self, message: str, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


@dataclass(frozen=True)
class StatementRow:
    """One valid statement row; ``transaction_id`` is empty when the bank gives none."""

    line: int
    day: date
    amount: Money
    reference: str
    name: str
    transaction_id: str

    @property
    def digest(self) -> str:
        """What a look-alike row shares: a hash of the date, amount, reference and payer name."""
        key = (self.day.isoformat(), str(self.amount.minor), self.reference, self.name)
        return hashlib.sha256("\x1f".join(key).encode()).hexdigest()[:32]


Outcome = Literal["recorded", "already-imported", "doubtful", "unmatched"]


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
            "doubtful": self.count("doubtful"),
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
    lines_of: dict[str, int] = {}
    for record in _records(reader):
        line = reader.line_num
        if len(rows) + len(problems) >= _MAX_ROWS:
            raise StatementError(f"the statement has more than {_MAX_ROWS} rows; split it")
        if None in record:
            problems.append(f"line {line}: more fields than the header names")
            continue
        raw_day, raw_amount = _field(record, "date"), _field(record, "amount")
        reference, name = _field(record, "reference")[:200], _field(record, "name")[:200]
        transaction = _field(record, "transaction_id")
        try:
            day = date.fromisoformat(raw_day)
        except ValueError:
            problems.append(f"line {line}: invalid date {raw_day[:40]!r}: expected YYYY-MM-DD")
            continue
        try:
            amount = check_amount(Money.parse(raw_amount, cur))
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        if transaction and not _TRANSACTION.fullmatch(transaction):
            problems.append(f"line {line}: invalid transaction id {transaction[:40]!r}: 1-120 characters, no spaces")
            continue
        if transaction in lines_of:
            problems.append(f"line {line}: transaction id {transaction!r} is also on line {lines_of[transaction]}")
            continue
        if transaction:
            lines_of[transaction] = line
        rows.append(StatementRow(line, day, amount, reference, name, transaction))
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


def _read(source: Path | str) -> str:
    if not isinstance(source, Path):
        return source
    try:
        return decode_text(read_user_file(source, limit=_MAX_BYTES), bom=True)
    except FileProblem as exc:
        raise StatementError(f"statement file {source}: {exc}") from None


def _legacy_ids(row: StatementRow, occurrences: int) -> list[str]:
    """The external ids imports before the transaction-id rule gave this row (its 1st to ``occurrences``-th
    appearance in a file)."""
    key = (row.day.isoformat(), str(row.amount.minor), row.reference, row.name)
    return [
        "bank:" + hashlib.sha256("\x1f".join((*key, str(n))).encode()).hexdigest()[:40]
        for n in range(1, occurrences + 1)
    ]


def _recorded_before(session: Session, rows: Iterable[StatementRow]) -> dict[str, int]:
    """For each look-alike digest of rows without a transaction id that was recorded before, the highest ``N``
    recorded so far (0 when only an import before the transaction-id rule recorded it)."""
    plain = [row for row in rows if not row.transaction_id]
    occurrences = Counter(row.digest for row in plain)
    firsts = {row.digest: row for row in reversed(plain)}
    highest: dict[str, int] = {}
    for digest, row in firsts.items():
        prefix = f"bank-row:{digest}:"
        counts = [int(ext[len(prefix) :]) for ext in payments.external_ids_starting(session, prefix)]
        if counts:
            highest[digest] = max(counts)
        elif any(payments.by_external_id(session, ext) for ext in _legacy_ids(row, occurrences[digest])):
            highest[digest] = 0
    return highest


def import_statement(
    session: Session,
    actor: str,
    settings: Settings,
    source: Path | str,
    *,
    account: str = DEFAULT_ACCOUNT,
    accept: Collection[int] = (),
    as_of: date | None = None,
) -> ImportReport:
    """Import a bank statement (a path, or the CSV text itself) of ``account`` in the caller's transaction (see
    the module rules); ``accept`` names the lines of doubtful rows to record anyway. Raises
    :class:`StatementError` and writes nothing when any row is broken."""
    if not _ACCOUNT.fullmatch(account):
        raise StatementError(f"invalid account name {account[:40]!r}: 1-40 letters, digits, '.', '_' or '-'")
    rows = parse_statement(_read(source), settings)
    unknown = sorted(set(accept) - {row.line for row in rows})
    if unknown:
        raise StatementError(f"--accept-doubtful names line(s) with no statement row: {unknown}")
    tz = settings.billing.timezone
    earlier = _recorded_before(session, rows)
    seen: Counter[str] = Counter()
    outcomes: list[RowOutcome] = []
    for row in rows:
        shown = row.amount.to_json()
        if not row.amount.is_positive():
            outcomes.append(RowOutcome(row.line, "unmatched", shown, row.reference, detail="not a credit"))
            continue
        customer_id, why = _match(session, settings, row.reference)
        if customer_id is None:
            outcomes.append(RowOutcome(row.line, "unmatched", shown, row.reference, detail=why))
            continue
        if row.transaction_id:
            external = f"bank:{account}:{row.transaction_id}"
        else:
            seen[row.digest] += 1
            if row.digest in earlier and row.line not in accept:
                doubt = "no transaction id, and a payment with the same date, amount, reference and name exists"
                outcomes.append(RowOutcome(row.line, "doubtful", shown, row.reference, customer_id, detail=doubt))
                continue
            external = f"bank-row:{row.digest}:{earlier.get(row.digest, 0) + seen[row.digest]}"
        try:
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
                    external_id=external,
                    as_of=as_of,
                )
        except Conflict as exc:  # the bank's transaction id was recorded for another customer or amount
            outcomes.append(RowOutcome(row.line, "doubtful", shown, row.reference, customer_id, detail=str(exc)))
            continue
        outcome: Outcome = "recorded" if received.created else "already-imported"
        outcomes.append(
            RowOutcome(row.line, outcome, shown, row.reference, customer_id, received.payment.id, detail=why)
        )
    report = ImportReport(tuple(outcomes))
    log.info(
        "statement import by %s: %s recorded, %s already imported, %s doubtful, %s unmatched",
        actor,
        report.count("recorded"),
        report.count("already-imported"),
        report.count("doubtful"),
        report.count("unmatched"),
    )
    return report
