"""Bank statement import: matching by invoice number or customer reference, broken rows, re-imports."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from daemon.billing import import_statement, run_billing
from daemon.billing.payments import StatementError
from daemon.config import Settings
from daemon.db.models import LedgerEntry, Payment
from daemon.services import invoices, ledger
from policies.money import Money
from tests.billing.conftest import ACTOR, World


def payments_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Payment)) or 0)


@pytest.fixture
def two_customers(db: Session, world: World, settings: Settings) -> tuple[int, int]:
    world.plan("home-30", "30.00")
    ana, bo = world.customer("Ana"), world.customer("Bo", email=None)
    world.service(ana, "home-30", date(2026, 1, 1))
    world.service(bo, "home-30", date(2026, 1, 1))
    db.commit()
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    run_billing(engine, settings, as_of=date(2026, 2, 1))  # INV-000001 to Ana, INV-000002 to Bo
    return ana, bo


STATEMENT = """Date,Amount,Reference,Name
2026-02-03,30.00,Invoice INV-000001 thanks,ANA LIMA
2026-02-03,12.50,rent C{bo} february,BO
2026-02-04,99.00,no idea,UNKNOWN
2026-02-04,-5.00,bank fee,BANK
2026-02-05,1.00,C99999,SOMEONE
"""


def test_rows_are_matched_recorded_and_reported(
    db: Session, settings: Settings, two_customers: tuple[int, int], tmp_path: Path
) -> None:
    ana, bo = two_customers
    path = tmp_path / "statement.csv"
    path.write_text(STATEMENT.format(bo=bo))
    report = import_statement(db, ACTOR, settings, path, as_of=date(2026, 2, 5))
    db.commit()
    assert [(r.line, r.outcome, r.customer_id) for r in report.rows] == [
        (2, "recorded", ana),
        (3, "recorded", bo),
        (4, "unmatched", None),
        (5, "unmatched", None),
        (6, "unmatched", None),
    ]
    assert report.rows[2].detail == "no invoice number or customer reference in the reference"
    assert report.rows[3].detail == "not a credit"
    assert report.rows[4].detail == "customer reference C99999 names no customer"
    assert invoices.list_invoices(db, customer_id=ana)[0].status == "paid"
    assert ledger.balance(db, bo, "USD") == Money.parse("17.50", "USD")

    again = import_statement(db, ACTOR, settings, path, as_of=date(2026, 2, 6))
    db.commit()
    assert [r.outcome for r in again.rows[:2]] == ["already-imported", "already-imported"]
    assert payments_count(db) == 2


def test_a_broken_row_imports_nothing(db: Session, settings: Settings, two_customers: tuple[int, int]) -> None:
    ana, _ = two_customers
    before = int(db.scalar(select(func.count()).select_from(LedgerEntry)) or 0)
    text = (
        "date,amount,reference\n"
        f"2026-02-03,30.00,C{ana}\n"
        "03/02/2026,10.00,C1\n"
        "2026-02-03,1,000.00,C1\n"
        "2026-02-03,12.345,C1\n"
    )
    with pytest.raises(StatementError) as caught:
        import_statement(db, ACTOR, settings, text)
    assert caught.value.problems == (
        "line 3: invalid date '03/02/2026': expected YYYY-MM-DD",
        "line 4: more fields than the header names",
        "line 5: invalid amount '12.345': USD has 2 decimal places",
    )
    assert str(caught.value) == "3 broken row(s); nothing was imported"
    db.rollback()
    assert payments_count(db) == 0
    assert int(db.scalar(select(func.count()).select_from(LedgerEntry)) or 0) == before


def test_missing_columns_are_refused(db: Session, settings: Settings) -> None:
    with pytest.raises(StatementError, match="lacks the column\\(s\\) reference"):
        import_statement(db, ACTOR, settings, "date,amount\n2026-02-03,1.00\n")


def _huge(path: Path) -> None:
    path.touch()
    os.truncate(path, 40 * 1024 * 1024)  # sparse: nothing written, and nothing read


#: Statement files that are not statements: what to write, and the end of the message.
BAD_FILES: dict[str, tuple[Callable[[Path], object], str]] = {
    "a directory": (Path.mkdir, "cannot read: is a directory"),
    "missing": (lambda path: None, "cannot read: No such file or directory"),
    "latin-1": (
        lambda path: path.write_bytes(b"date,amount,reference\n2026-02-03,1.00,Se\xf1or\n"),
        "not valid UTF-8: byte 0xf1 at offset 40",
    ),
    "UTF-16": (
        lambda path: path.write_text("date,amount,reference\n", encoding="utf-16"),
        "not valid UTF-8: byte 0xff at offset 0",
    ),
    "a NUL byte": (
        lambda path: path.write_bytes(b"date,amount,reference\n2026-02-03,1.00,C1\x00\n"),
        "line 2: holds a NUL byte (is it a CSV text file?); nothing was imported",
    ),
    "a NUL in the header": (
        lambda path: path.write_bytes(b"date,amount,\x00reference\n"),
        "line 1: holds a NUL byte (is it a CSV text file?); nothing was imported",
    ),
    "a huge field": (
        lambda path: path.write_text("date,amount,reference\n2026-02-03,1.00," + "x" * 200_000 + "\n"),
        "line 2: not CSV: field larger than field limit (131072); nothing was imported",
    ),
    "too large": (_huge, "is too large (40 MB; at most 32 MB)"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_statement_file_that_cannot_be_read_is_one_line_and_imports_nothing(
    db: Session, settings: Settings, tmp_path: Path, kind: str
) -> None:
    make, reason = BAD_FILES[kind]
    path = tmp_path / "statement.csv"
    make(path)
    with pytest.raises(StatementError) as caught:
        import_statement(db, ACTOR, settings, path)
    message = str(caught.value)
    assert message.endswith(reason) and "\n" not in message
    if not reason.startswith("line"):
        assert message == f"statement file {path}: {reason}"
    db.rollback()
    assert payments_count(db) == 0


def test_a_spreadsheet_s_byte_order_mark_is_accepted(
    db: Session, settings: Settings, two_customers: tuple[int, int], tmp_path: Path
) -> None:
    ana, _ = two_customers
    path = tmp_path / "excel.csv"
    path.write_bytes(f"\ufeffdate,amount,reference\n2026-02-03,30.00,C{ana}\n".encode())
    report = import_statement(db, ACTOR, settings, path, as_of=date(2026, 2, 5))
    assert [r.outcome for r in report.rows] == ["recorded"]
