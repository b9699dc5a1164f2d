"""Property tests of the ledger (SQLite only: they run many examples).

For any sequence of invoices, payments, credit notes, refunds and voids, each customer's ledger balance is
what the documents say, allocation neither creates nor loses money, and ledger rows are never changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from daemon.billing import documents
from daemon.billing.documents import DraftLine
from daemon.billing.payments import receive_payment, refund
from daemon.config import Settings, load_settings
from daemon.db import make_engine, session_factory, upgrade
from daemon.db.models import Invoice, InvoiceKind, InvoiceStatus, LedgerEntry, Payment
from daemon.services import customers, ledger
from daemon.services.errors import ServiceError
from policies.money import Money
from policies.periods import Period
from policies.proration import ChargeLine
from tests.conftest import write_secret

USD = "USD"
DAY = date(2026, 1, 1)
RATES = ["0", "0.16", "0.075"]


@dataclass(frozen=True)
class Op:
    kind: str
    cents: int
    pick: int
    rate: str = "0"


ops = st.lists(
    st.one_of(
        st.builds(
            Op, st.just("invoice"), st.integers(1, 50_000), st.integers(0, 9), st.sampled_from(["0", "0.16", "0.075"])
        ),
        st.builds(Op, st.just("pay"), st.integers(1, 60_000), st.integers(0, 9)),
        st.builds(Op, st.just("credit"), st.integers(1, 20_000), st.integers(0, 9)),
        st.builds(Op, st.just("refund"), st.integers(1, 30_000), st.integers(0, 9)),
        st.builds(Op, st.just("void"), st.just(0), st.integers(0, 9)),
    ),
    min_size=1,
    max_size=14,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Settings]]:
    folder: Path = tmp_path_factory.mktemp("ledger")
    web = write_secret(folder / "web.key", b"k" * 40 + b"\n")
    data = write_secret(folder / "data.key", Fernet.generate_key() + b"\n")
    path = folder / "edgebill.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{folder / "ledger.db"}"\n[web]\nlisten = "127.0.0.1:8080"\n'
        f'secret_key_file = "{web}"\n[security]\nsecret_key_file = "{data}"\n'
        '[billing]\ncurrency = "USD"\ntimezone = "UTC"\n'
    )
    path.chmod(0o600)
    loaded = load_settings(path)
    engine = make_engine(loaded.database.url)
    upgrade(engine)
    yield engine, loaded
    engine.dispose()


def _invoice(session: Session, cfg: Settings, customer_id: int, op: Op) -> None:
    amount = Money(op.cents, cfg.billing.currency)
    line = ChargeLine("Service", amount, Period(DAY, date(2026, 2, 1)), "recurring", Decimal(op.rate))
    second = ChargeLine("Extra", Money(op.cents // 3, cfg.billing.currency), Period(DAY, date(2026, 1, 2)), "setup_fee")
    documents.issue_invoice(session, cfg.billing, customer_id, [DraftLine(None, line), DraftLine(None, second)], DAY)
    documents.settle(session, customer_id, cfg.billing.currency)


def _pick(rows: list[int], pick: int) -> int | None:
    return rows[pick % len(rows)] if rows else None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=ops)
def test_balance_is_what_the_documents_say_and_money_is_conserved(
    store: tuple[Engine, Settings], sequence: list[Op]
) -> None:
    engine, cfg = store
    cur = cfg.billing.currency
    with session_factory(engine).begin() as session:
        cid = customers.add_customer(session, "prop", name="Prop").id
        expected = 0  # what the customer owes, kept by this test from the operations alone
        snapshot: dict[int, tuple[int, str]] = {}
        for op in sequence:
            invoices = list(
                session.scalars(
                    select(Invoice.id)
                    .where(Invoice.customer_id == cid, Invoice.kind == InvoiceKind.INVOICE)
                    .order_by(Invoice.id)
                )
            )
            try:
                with session.begin_nested():
                    if op.kind == "invoice":
                        _invoice(session, cfg, cid, op)
                        expected += (
                            session.scalars(
                                select(Invoice.total_minor)
                                .where(Invoice.customer_id == cid)
                                .order_by(Invoice.id.desc())
                            ).first()
                            or 0
                        )
                    elif op.kind == "pay":
                        receive_payment(session, "prop", cfg, customer_id=cid, amount=Money(op.cents, cur), as_of=DAY)
                        expected -= op.cents
                    elif op.kind == "credit" and (target := _pick(invoices, op.pick)) is not None:
                        documents.issue_credit_note(
                            session, "prop", cfg.billing, target, Money(op.cents, cur), "goodwill", issued_on=DAY
                        )
                        expected -= op.cents
                    elif op.kind == "refund":
                        paid = list(
                            session.scalars(
                                select(Payment.id).where(Payment.customer_id == cid, Payment.refund_of_id.is_(None))
                            )
                        )
                        target = _pick(paid, op.pick)
                        if target is not None:
                            refund(session, "prop", cfg, target, amount=Money(op.cents, cur), as_of=DAY)
                            expected += op.cents
                    elif op.kind == "void" and (target := _pick(invoices, op.pick)) is not None:
                        total = session.get(Invoice, target)
                        assert total is not None
                        owed = total.total_minor
                        documents.void_invoice(session, "prop", target)
                        expected -= owed
                event(f"{op.kind} done")
            except ServiceError:
                event(f"{op.kind} refused")  # over-refund, over-credit, voiding a paid invoice: nothing changed

            standing = documents.settle(session, cid, cur)
            assert ledger.balance(session, cid, cur).minor == expected
            # Documents: invoices not void, their credit notes, and the money received net of refunds.
            docs = sum(
                row.total_minor
                for row in session.scalars(select(Invoice).where(Invoice.customer_id == cid))
                if row.status is not InvoiceStatus.VOID
            )
            received = sum(session.scalars(select(Payment.amount_minor).where(Payment.customer_id == cid)))
            assert expected == docs - received
            # Allocation neither creates nor loses money.
            assert received >= 0  # refunds never exceed what was paid
            assert sum(item.paid.minor for item in standing.items) + standing.credit.minor == received
            assert standing.balance.minor == standing.unpaid.minor - standing.credit.minor
            for item in standing.items:
                row = session.get(Invoice, item.invoice_id)
                assert row is not None
                assert (row.status is InvoiceStatus.PAID) == (item.unpaid.minor == 0)
                assert item.paid.minor + item.unpaid.minor == item.total.minor - item.credited.minor
            # Ledger rows are never changed: every row seen before is still there as it was.
            rows = {
                r.id: (r.amount_minor, r.kind.value)
                for r in session.scalars(select(LedgerEntry).where(LedgerEntry.customer_id == cid))
            }
            assert all(rows.get(key) == value for key, value in snapshot.items())
            snapshot = rows
