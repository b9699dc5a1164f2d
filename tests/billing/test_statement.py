"""Bank statement import: matching by invoice number or customer reference, broken rows, re-imports."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from daemon.billing import import_statement, receive_payment, run_billing
from daemon.billing.statement import StatementError
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

    # Without a bank transaction id, the same rows again are doubtful: reported, not recorded, not dropped.
    again = import_statement(db, ACTOR, settings, path, as_of=date(2026, 2, 6))
    db.commit()
    assert [r.outcome for r in again.rows[:2]] == ["doubtful", "doubtful"]
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


TWO_PAYMENTS_SAME_DAY = """date,amount,reference,name
2026-02-03,10.00,C{bo} top-up,BO
"""

WITH_IDS = """date,amount,reference,name,transaction_id
2026-02-03,30.00,INV-000001,ANA LIMA,TX-1001
2026-02-03,10.00,C{bo} top-up,BO,TX-1002
"""


def test_a_row_in_two_statements_is_the_same_payment_only_by_its_bank_transaction_id(
    db: Session, settings: Settings, two_customers: tuple[int, int], tmp_path: Path
) -> None:
    _, bo = two_customers
    january, february = tmp_path / "statement-jan.csv", tmp_path / "statement-feb.csv"
    january.write_text(WITH_IDS.format(bo=bo))
    # The February file repeats TX-1002 (the bank's overlap between statements) and has a new TX-1003 that looks
    # exactly like it: a real second payment, which must not be lost.
    february.write_text(WITH_IDS.format(bo=bo).replace("TX-1001", "TX-1003").replace("INV-000001", f"C{bo}"))
    first = import_statement(db, ACTOR, settings, january)
    db.commit()
    assert [r.outcome for r in first.rows] == ["recorded", "recorded"]
    second = import_statement(db, ACTOR, settings, february)
    db.commit()
    assert [(r.outcome, r.customer_id) for r in second.rows] == [("recorded", bo), ("already-imported", bo)]
    assert payments_count(db) == 3
    # The same transaction id on another account is another payment.
    third = import_statement(db, ACTOR, settings, january, account="savings")
    db.commit()
    assert [r.outcome for r in third.rows] == ["recorded", "recorded"]
    assert payments_count(db) == 5


def test_a_look_alike_row_without_a_transaction_id_waits_for_a_decision(
    db: Session, settings: Settings, two_customers: tuple[int, int], tmp_path: Path
) -> None:
    _, bo = two_customers
    monday, tuesday = tmp_path / "monday.csv", tmp_path / "tuesday.csv"
    monday.write_text(TWO_PAYMENTS_SAME_DAY.format(bo=bo))
    # Tuesday's export repeats Monday's row and has a second, identical top-up the same day.
    tuesday.write_text(TWO_PAYMENTS_SAME_DAY.format(bo=bo) + f"2026-02-03,10.00,C{bo} top-up,BO\n")
    assert [r.outcome for r in import_statement(db, ACTOR, settings, monday).rows] == ["recorded"]
    db.commit()
    report = import_statement(db, ACTOR, settings, tuesday)
    db.commit()
    assert [(r.line, r.outcome) for r in report.rows] == [(2, "doubtful"), (3, "doubtful")]
    assert "same date, amount, reference and name" in report.rows[0].detail
    assert payments_count(db) == 1
    # Staff check the bank account and accept the second top-up.
    accepted = import_statement(db, ACTOR, settings, tuesday, accept=[3])
    db.commit()
    assert [(r.line, r.outcome) for r in accepted.rows] == [(2, "doubtful"), (3, "recorded")]
    assert payments_count(db) == 2
    assert ledger.balance(db, bo, "USD") == Money.parse("10.00", "USD")  # 30.00 owed - 2 x 10.00
    with pytest.raises(StatementError, match="no statement row"):
        import_statement(db, ACTOR, settings, tuesday, accept=[9])


def test_identical_rows_in_one_statement_are_two_payments(
    db: Session, settings: Settings, two_customers: tuple[int, int]
) -> None:
    _, bo = two_customers
    text = TWO_PAYMENTS_SAME_DAY.format(bo=bo) * 1 + f"2026-02-03,10.00,C{bo} top-up,BO\n"
    assert [r.outcome for r in import_statement(db, ACTOR, settings, text).rows] == ["recorded", "recorded"]
    db.commit()
    assert payments_count(db) == 2


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("2026-02-03,90000000000000000,C1,X,", "line 2: amount 90000000000000000.00 USD is out of range: at most"),
        ("2026-02-03,-1000000000.01,C1,X,", "line 2: amount -1000000000.01 USD is out of range: at most"),
        ("2026-02-03,1.00,C1,X,has space", "line 2: invalid transaction id 'has space'"),
    ],
)
def test_rows_beyond_the_amount_limit_or_with_a_bad_transaction_id_import_nothing(
    db: Session, settings: Settings, row: str, problem: str
) -> None:
    with pytest.raises(StatementError) as caught:
        import_statement(db, ACTOR, settings, f"date,amount,reference,name,transaction_id\n{row}\n")
    assert caught.value.problems[0].startswith(problem)


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


def test_one_transaction_id_on_two_rows_is_a_broken_statement(db: Session, settings: Settings) -> None:
    text = "date,amount,reference,transaction_id\n2026-02-03,1.00,C1,T1\n2026-02-04,2.00,C1,T1\n"
    with pytest.raises(StatementError) as caught:
        import_statement(db, ACTOR, settings, text)
    assert caught.value.problems == ("line 3: transaction id 'T1' is also on line 2",)


def test_rows_recorded_before_the_transaction_id_rule_are_look_alikes(
    db: Session, settings: Settings, two_customers: tuple[int, int]
) -> None:
    _, bo = two_customers
    # What an import before the rule recorded: external id "bank:" + a hash of the row and its occurrence.
    legacy = hashlib.sha256("\x1f".join(("2026-02-03", "1000", f"C{bo} top-up", "BO", "1")).encode()).hexdigest()
    receive_payment(db, ACTOR, settings, customer_id=bo, amount="10.00", external_id=f"bank:{legacy[:40]}")
    db.commit()
    report = import_statement(db, ACTOR, settings, TWO_PAYMENTS_SAME_DAY.format(bo=bo))
    assert [r.outcome for r in report.rows] == ["doubtful"]
    assert [
        r.outcome for r in import_statement(db, ACTOR, settings, TWO_PAYMENTS_SAME_DAY.format(bo=bo), accept=[2]).rows
    ] == ["recorded"]


def test_a_spreadsheet_s_byte_order_mark_is_accepted(
    db: Session, settings: Settings, two_customers: tuple[int, int], tmp_path: Path
) -> None:
    ana, _ = two_customers
    path = tmp_path / "excel.csv"
    path.write_bytes(f"\ufeffdate,amount,reference\n2026-02-03,30.00,C{ana}\n".encode())
    report = import_statement(db, ACTOR, settings, path, as_of=date(2026, 2, 5))
    assert [r.outcome for r in report.rows] == ["recorded"]
