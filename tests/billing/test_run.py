"""Billing runs with hand-checked figures: proration, setup fees, taxes, prepaid renewal, idempotency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from daemon.billing import BillingRunResult, receive_payment, run_billing
from daemon.billing.changes import change_plan
from daemon.billing.schedule import daily_steps
from daemon.config import Settings
from daemon.db import session_factory
from daemon.db.models import Invoice, InvoiceLine, LedgerEntry, Service, UsageSample
from daemon.services import Invalid, invoices, ledger
from policies.money import Money
from tests.billing.conftest import ACTOR, World


def bill(db: Session, settings: Settings, *, as_of: date) -> BillingRunResult:
    """A billing run on the test database; the test's own session ends its transaction first."""
    db.commit()
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    return run_billing(engine, settings, as_of=as_of)


def usd(text: str) -> Money:
    return Money.parse(text, "USD")


def lines_of(db: Session, customer_id: int) -> list[tuple[str, str, str, str, str]]:
    """(number, kind, period, amount, tax) of every line the customer was invoiced, oldest first."""
    found = []
    for inv in reversed(invoices.list_invoices(db, customer_id=customer_id)):
        for line in inv.lines:
            period = f"{line.period_start}..{line.period_end}"
            found.append((inv.display_number, line.kind, period, line.amount.to_json(), line.tax.to_json()))
    return found


def count(db: Session, model: type[object]) -> int:
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_postpaid_first_invoice_is_prorated_with_setup_fee_and_tax(
    db: Session, world: World, settings: Settings
) -> None:
    world.plan("home-30", "30.00", setup_fee="10.00", tax_rate="0.16")
    ana = world.customer()
    world.service(ana, "home-30", date(2026, 1, 11))
    db.commit()

    early = bill(db, settings, as_of=date(2026, 1, 31))
    assert early.invoices == ()  # postpaid: January is invoiced once it is over

    result = bill(db, settings, as_of=date(2026, 2, 1))
    assert [bill.number for bill in result.invoices] == ["INV-000001"]
    # 21 of January's 31 days: 30.00 - round(30.00 * 10 / 31) = 30.00 - 9.68 = 20.32; tax 16 % per line.
    assert lines_of(db, ana) == [
        ("INV-000001", "proration", "2026-01-11..2026-01-31", "20.32", "3.25"),
        ("INV-000001", "setup", "2026-01-11..2026-01-11", "10.00", "1.60"),
    ]
    first = invoices.list_invoices(db, customer_id=ana)[0]
    assert (first.subtotal, first.tax, first.total) == (usd("30.32"), usd("4.85"), usd("35.17"))
    assert (first.issued_on, first.due_on, first.status) == (date(2026, 2, 1), date(2026, 2, 15), "open")
    assert ledger.balance(db, ana, "USD") == usd("35.17")

    again = bill(db, settings, as_of=date(2026, 2, 1))
    assert again.invoices == () and count(db, Invoice) == 1 and count(db, LedgerEntry) == 1

    bill(db, settings, as_of=date(2026, 3, 1))
    assert lines_of(db, ana)[-1] == ("INV-000002", "recurring", "2026-02-01..2026-02-28", "30.00", "4.80")
    assert ledger.balance(db, ana, "USD") == usd("69.97")


def test_catch_up_run_bills_every_missed_period_on_one_invoice(db: Session, world: World, settings: Settings) -> None:
    world.plan("weekly-7", "7.00", cycle="weekly")
    bo = world.customer("Bo")
    world.service(bo, "weekly-7", date(2026, 3, 4))  # a Wednesday; calendar weeks start on Monday
    db.commit()
    bill(db, settings, as_of=date(2026, 3, 23))
    # 2026-03-04..08 is 5 of 7 days: 7.00 - round(7.00 * 2 / 7) = 5.00; then two whole weeks.
    assert lines_of(db, bo) == [
        ("INV-000001", "proration", "2026-03-04..2026-03-08", "5.00", "0.00"),
        ("INV-000001", "recurring", "2026-03-09..2026-03-15", "7.00", "0.00"),
        ("INV-000001", "recurring", "2026-03-16..2026-03-22", "7.00", "0.00"),
    ]


def test_tax_inclusive_prices_split_the_tax_out(db: Session, world: World, settings: Settings) -> None:
    world.plan("incl", "11.60", tax_rate="0.16", tax_inclusive=True)
    cy = world.customer("Cy")
    world.service(cy, "incl", date(2026, 1, 1))
    db.commit()
    bill(db, settings, as_of=date(2026, 2, 1))
    # gross 11.60 at 16 % included: tax = 11.60 * 0.16 / 1.16 = 1.60, net 10.00
    assert lines_of(db, cy) == [("INV-000001", "recurring", "2026-01-01..2026-01-31", "10.00", "1.60")]
    assert invoices.list_invoices(db, customer_id=cy)[0].total == usd("11.60")


def test_credit_from_overpayment_pays_the_next_invoice(db: Session, world: World, settings: Settings) -> None:
    world.plan("home-30", "30.00")
    ana = world.customer()
    world.service(ana, "home-30", date(2026, 1, 1))
    db.commit()
    bill(db, settings, as_of=date(2026, 2, 1))
    receive_payment(db, ACTOR, settings, customer_id=ana, amount="50.00", as_of=date(2026, 2, 3))
    db.commit()
    assert [i.status for i in invoices.list_invoices(db, customer_id=ana)] == ["paid"]
    assert ledger.balance(db, ana, "USD") == usd("-20.00")

    bill(db, settings, as_of=date(2026, 3, 1))
    second, first = invoices.list_invoices(db, customer_id=ana)
    assert (first.status, second.status) == ("paid", "open")  # 20.00 of credit does not cover 30.00
    receive_payment(db, ACTOR, settings, customer_id=ana, amount="10.00", as_of=date(2026, 3, 2))
    db.commit()
    assert [i.status for i in invoices.list_invoices(db, customer_id=ana)] == ["paid", "paid"]
    assert ledger.balance(db, ana, "USD") == usd("0.00")


def test_prepaid_period_renews_from_credit_or_lapses_until_paid(
    db: Session, world: World, make_settings: object
) -> None:
    settings: Settings = make_settings(billing={"anchor": "anniversary"})  # type: ignore[operator]
    world.settings = settings
    world.plan("pre-20", "20.00", prepaid=True)
    dee = world.customer("Dee")
    svc = world.service(dee, "pre-20", date(2026, 1, 15))
    receive_payment(db, ACTOR, settings, customer_id=dee, amount="25.00", as_of=date(2026, 1, 14))
    db.commit()

    bill(db, settings, as_of=date(2026, 1, 15))
    assert lines_of(db, dee) == [("INV-000001", "recurring", "2026-01-15..2026-02-14", "20.00", "0.00")]
    assert invoices.list_invoices(db, customer_id=dee)[0].status == "paid"

    lapsed = bill(db, settings, as_of=date(2026, 2, 15))
    assert lapsed.invoices == () and lapsed.lapsed_services == (svc,)
    row = db.get(Service, svc)
    assert row is not None
    db.refresh(row)
    assert (row.state.value, row.state_reason) == ("suspended", "prepaid period ended")

    paid = receive_payment(db, ACTOR, settings, customer_id=dee, amount="30.00", as_of=date(2026, 2, 20))
    db.commit()
    db.refresh(row)
    assert row.state.value == "active"
    assert paid.dunning is not None and [c.after for c in paid.dunning.changes] == ["active"]
    # renewed from the day of payment: 23 of the 28 days 2026-02-15..03-14: 20.00 - round(20.00 * 5 / 28) = 16.43
    assert lines_of(db, dee)[-1] == ("INV-000002", "proration", "2026-02-20..2026-03-14", "16.43", "0.00")
    assert ledger.balance(db, dee, "USD") == usd("-18.57")


def test_plan_change_and_termination_are_prorated(db: Session, world: World, settings: Settings) -> None:
    world.plan("pre-30", "30.00", prepaid=True)
    world.plan("pre-60", "60.00", prepaid=True)
    eve = world.customer("Eve")
    svc = world.service(eve, "pre-30", date(2026, 4, 1))
    receive_payment(db, ACTOR, settings, customer_id=eve, amount="100.00", as_of=date(2026, 3, 31))
    db.commit()
    bill(db, settings, as_of=date(2026, 4, 1))

    change = change_plan(db, ACTOR, settings, svc, "pre-60", on=date(2026, 4, 21))
    db.commit()
    assert change.number == "INV-000002"
    # April has 30 days; 10 left from the 21st: credit round(30 * 10/30) = 10.00, charge round(60 * 10/30) = 20.00
    assert lines_of(db, eve)[1:] == [
        ("INV-000002", "credit", "2026-04-21..2026-04-30", "-10.00", "0.00"),
        ("INV-000002", "proration", "2026-04-21..2026-04-30", "20.00", "0.00"),
    ]
    bill(db, settings, as_of=date(2026, 5, 1))
    row = db.get(Service, svc)
    assert row is not None
    row.terminated_at = datetime(2026, 5, 11, 9, 0, tzinfo=UTC)  # no service from May 11th
    bill(db, settings, as_of=date(2026, 5, 12))
    # May billed in advance (60.00), then 21 of 31 days credited: round(60 * 21 / 31) = 40.65
    assert lines_of(db, eve)[3:] == [
        ("INV-000003", "recurring", "2026-05-01..2026-05-31", "60.00", "0.00"),
        ("INV-000004", "credit", "2026-05-11..2026-05-31", "-40.65", "0.00"),
    ]
    bill(db, settings, as_of=date(2026, 6, 2))
    assert len(lines_of(db, eve)) == 5  # nothing after the last day


def test_overage_is_charged_per_started_gigabyte(db: Session, world: World, settings: Settings) -> None:
    world.plan("capped", "20.00", quota="100GB", over_quota="charge", overage_price="1.50")
    fay = world.customer("Fay")
    svc = world.service(fay, "capped", date(2026, 1, 1))
    for day, gigabytes in ((5, 60), (20, 41), (31, 1)):
        db.add(
            UsageSample(
                service_id=svc,
                taken_at=datetime(2026, 1, day, 12, tzinfo=UTC),
                bytes_in=0,
                bytes_out=0,
                delta_in=gigabytes * 10**9 - 1,
                delta_out=1,
            )
        )
    db.add(
        UsageSample(
            service_id=svc,
            taken_at=datetime(2026, 2, 1, 0, 30, tzinfo=UTC),
            bytes_in=0,
            bytes_out=0,
            delta_in=10**12,
            delta_out=0,
        )
    )
    db.commit()
    bill(db, settings, as_of=date(2026, 2, 1))
    # 102 GB used of 100 GB: 2 started GB at 1.50; February's sample belongs to February
    kinds = [(kind, amount) for _n, kind, _p, amount, _t in lines_of(db, fay)]
    assert kinds == [("recurring", "20.00"), ("overage", "3.00")]
    assert count(db, InvoiceLine) == 2


CRASH_AT_THIRD_INVOICE = {
    "sqlite": [
        "CREATE TRIGGER crash BEFORE INSERT ON invoices WHEN NEW.number = 3 BEGIN SELECT RAISE(ABORT, 'power cut'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.number = 3 THEN "
        "RAISE EXCEPTION 'power cut'; END IF; RETURN NEW; END $$",
        "CREATE TRIGGER crash BEFORE INSERT ON invoices FOR EACH ROW EXECUTE FUNCTION crash()",
    ],
}


def test_a_run_that_dies_half_way_is_finished_by_the_next(db: Session, world: World, settings: Settings) -> None:
    world.plan("home-30", "30.00")
    people = [world.customer(f"Customer {n}") for n in range(5)]
    for cid in people:
        world.service(cid, "home-30", date(2026, 1, 1))
    # The third invoice cannot be written: the run dies there, as it would on a crash or a kill.
    for statement in CRASH_AT_THIRD_INVOICE[db.get_bind().dialect.name]:
        db.execute(text(statement))
    db.commit()
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    with pytest.raises(DBAPIError, match="power cut"):
        run_billing(engine, settings, as_of=date(2026, 2, 1), batch_size=2)
    assert count(db, Invoice) == 2  # the first batch was committed, the second rolled back whole
    db.execute(
        text("DROP TRIGGER crash ON invoices" if db.get_bind().dialect.name == "postgresql" else "DROP TRIGGER crash")
    )
    db.commit()

    resumed = bill(db, settings, as_of=date(2026, 2, 1))
    assert [bill.number for bill in resumed.invoices] == ["INV-000003", "INV-000004", "INV-000005"]
    billed = db.scalars(select(Invoice.customer_id).order_by(Invoice.number)).all()
    assert sorted(billed) == sorted(people)  # each customer exactly once, numbers without gaps
    assert count(db, LedgerEntry) == 5


def test_two_runs_at_once_bill_each_customer_once(db: Session, world: World, settings: Settings) -> None:
    world.plan("home-30", "30.00")
    people = [world.customer(f"Customer {n}") for n in range(40)]
    for cid in people:
        world.service(cid, "home-30", date(2026, 1, 1))
    db.commit()
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(run_billing, engine, settings, as_of=date(2026, 2, 1), batch_size=3) for _ in range(2)]
        results = [run.result(timeout=120) for run in runs]
    assert sum(len(result.invoices) for result in results) == 40
    assert sorted(db.scalars(select(Invoice.customer_id))) == sorted(people)
    assert sorted(db.scalars(select(Invoice.number))) == list(range(1, 41))


def test_daily_steps_bill_then_dun_today(db: Session, world: World, settings: Settings) -> None:
    world.plan("home-30", "30.00")
    cid = world.customer()
    world.service(cid, "home-30", datetime.now(UTC).date() - timedelta(days=70))  # settings: UTC
    db.commit()
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    steps = daily_steps(settings, session_factory(engine))
    assert [name for name, _ in steps] == ["billing", "dunning"]
    for _, step in steps:
        step()
    assert count(db, Invoice) == 1  # the calendar months that ended in those 70 days, on one invoice
    assert len(lines_of(db, cid)) >= 2


def test_postpaid_plan_change_bills_the_old_plan_now_and_the_new_one_after(
    db: Session, world: World, settings: Settings
) -> None:
    world.plan("home-30", "30.00", setup_fee="5.00")
    world.plan("home-60", "60.00")
    hal = world.customer("Hal")
    svc = world.service(hal, "home-30", date(2026, 4, 1))
    db.commit()
    change = change_plan(db, ACTOR, settings, svc, "home-60", on=date(2026, 4, 21))
    db.commit()
    assert (change.old_plan, change.new_plan, change.number) == ("home-30", "home-60", "INV-000001")
    bill(db, settings, as_of=date(2026, 5, 1))
    # April has 30 days: 20 on the old plan (round(30 * 20/30) = 20.00), 10 on the new (60 - round(60 * 20/30))
    assert lines_of(db, hal) == [
        ("INV-000001", "proration", "2026-04-01..2026-04-20", "20.00", "0.00"),
        ("INV-000001", "setup", "2026-04-01..2026-04-01", "5.00", "0.00"),
        ("INV-000002", "proration", "2026-04-21..2026-04-30", "20.00", "0.00"),
    ]
    with pytest.raises(Invalid, match="already on plan 'home-60'"):
        change_plan(db, ACTOR, settings, svc, "home-60", on=date(2026, 5, 3))
