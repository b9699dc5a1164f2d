"""The schema on both backends: migrations, every table round-tripping, and the insert-only ledger."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, delete, inspect, select, text, update
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session

from daemon.db import (
    ApiToken,
    AuditEntry,
    Base,
    Customer,
    CustomerTag,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceSequence,
    LedgerEntry,
    LedgerKind,
    OverQuota,
    Payment,
    PaymentMethod,
    Plan,
    PlanCycle,
    Router,
    RouterKind,
    RouterOp,
    RouterOpStatus,
    Service,
    UsageSample,
    User,
    UserRole,
    current_revision,
    head_revision,
    make_engine,
    normalize_url,
    schema_is_current,
    session_factory,
    upgrade,
)
from daemon.db.migrate import alembic_config
from daemon.services.invoices import next_invoice_number
from policies.desired import ConnectionType, ServiceState

AT = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def test_upgrade_from_empty_is_idempotent_and_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        assert not schema_is_current(engine)
        assert upgrade(engine) == head_revision()
        assert upgrade(db_url) == head_revision()  # again, by URL: nothing to do
        assert schema_is_current(engine)
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_removes_everything(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        cfg = alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert upgrade(engine) == head_revision()
    finally:
        engine.dispose()


def _populate(session: Session) -> dict[str, int]:
    customer = Customer(name="Ana Lima", email="ana@example.net", phone="+1 555 0100", address="1 Main St")
    customer.tag_rows = [CustomerTag(tag="never-suspend"), CustomerTag(tag="vip")]
    plan = Plan(
        name="home-10",
        download_bps=10_000_000,
        upload_bps=5_000_000,
        burst_download_bps=20_000_000,
        burst_upload_bps=10_000_000,
        burst_threshold_download_bps=8_000_000,
        burst_threshold_upload_bps=4_000_000,
        burst_time_s=8,
        price_minor=3000,
        currency="USD",
        cycle=PlanCycle.WEEKLY,
        prepaid=True,
        setup_fee_minor=1500,
        quota_bytes=100 * 10**9,
        over_quota=OverQuota.CHARGE,
        overage_price_minor=250,
        tax_rate=Decimal("0.160000"),
        tax_inclusive=True,
    )
    router = Router(name="core1", kind=RouterKind.MIKROTIK, host="10.0.0.1", port=8728, site="North")
    session.add_all([customer, plan, router])
    session.flush()
    service = Service(
        customer=customer,
        plan=plan,
        router=router,
        connection_type=ConnectionType.PPPOE,
        pppoe_login="ana",
        pppoe_password=b"\x00\x01ciphertext\xff",
        ipv4="100.64.0.10",
        state=ServiceState.THROTTLED,
        state_reason="overdue",
        state_since=AT,
        started_on=date(2026, 1, 31),
        promise_until=date(2026, 3, 5),
    )
    session.add(service)
    session.flush()
    invoice = Invoice(
        series="INV",
        number=1,
        customer_id=customer.id,
        currency="USD",
        issued_on=date(2026, 3, 1),
        due_on=date(2026, 3, 15),
        subtotal_minor=3000,
        tax_minor=480,
        total_minor=3480,
    )
    invoice.lines = [
        InvoiceLine(
            service_id=service.id,
            kind=InvoiceLineKind.RECURRING,
            description="home-10, March",
            period_start=date(2026, 3, 1),
            period_end=date(2026, 3, 31),
            amount_minor=3000,
            tax_minor=480,
        )
    ]
    session.add(invoice)
    session.flush()
    credit = Invoice(
        series="CN",
        number=1,
        kind=InvoiceKind.CREDIT_NOTE,
        customer_id=customer.id,
        currency="USD",
        issued_on=date(2026, 3, 2),
        due_on=date(2026, 3, 2),
        subtotal_minor=-1000,
        tax_minor=-160,
        total_minor=-1160,
        corrects_invoice_id=invoice.id,
    )
    payment = Payment(
        customer_id=customer.id,
        amount_minor=3480,
        currency="USD",
        method=PaymentMethod.ONLINE,
        reference="r-1",
        received_at=AT,
        external_id="evt_123",
    )
    session.add_all([credit, payment])
    session.flush()
    refund = Payment(
        customer_id=customer.id,
        amount_minor=-480,
        currency="USD",
        method=PaymentMethod.ONLINE,
        received_at=AT,
        refund_of_id=payment.id,
    )
    session.add(refund)
    session.flush()
    ledger = LedgerEntry(
        customer_id=customer.id, currency="USD", amount_minor=3480, kind=LedgerKind.INVOICE, invoice_id=invoice.id
    )
    usage = UsageSample(service_id=service.id, taken_at=AT, bytes_in=2**40, bytes_out=5, delta_in=2**33, delta_out=None)
    router_op = RouterOp(
        router_id=router.id, service_id=service.id, op="reconcile", payload={"reason": "test", "ids": [1, 2]}
    )
    user = User(username="admin", password_hash="$argon2id$x", role=UserRole.SUPPORT)
    session.add_all([ledger, usage, router_op, user])
    session.flush()
    token = ApiToken(user_id=user.id, name="export", token_hash="ab" * 32, last_used_at=AT)
    audit = AuditEntry(actor="cli:test", action="x.y", entity="service", entity_id="1", before=None, after={"a": 1})
    session.add_all([token, audit, InvoiceSequence(series="INV", last_number=1)])
    session.commit()
    return {
        "customer": customer.id,
        "plan": plan.id,
        "router": router.id,
        "service": service.id,
        "invoice": invoice.id,
        "credit": credit.id,
        "payment": payment.id,
        "refund": refund.id,
        "ledger": ledger.id,
        "usage": usage.id,
        "op": router_op.id,
        "user": user.id,
        "token": token.id,
        "audit": audit.id,
    }


def test_every_table_round_trips(engine: Engine) -> None:
    factory = session_factory(engine)
    with factory() as session:
        ids = _populate(session)
    with factory() as s:  # a new session: everything comes from the database
        customer = s.get_one(Customer, ids["customer"])
        assert (customer.name, customer.email, customer.tags) == (
            "Ana Lima",
            "ana@example.net",
            ("never-suspend", "vip"),
        )
        assert customer.created_at.tzinfo is not None
        plan = s.get_one(Plan, ids["plan"])
        assert plan.tax_rate == Decimal("0.16") and isinstance(plan.tax_rate, Decimal)
        assert (plan.cycle, plan.over_quota, plan.prepaid, plan.quota_bytes) == (
            PlanCycle.WEEKLY,
            OverQuota.CHARGE,
            True,
            100 * 10**9,
        )
        assert (plan.burst_download_bps, plan.burst_time_s, plan.active) == (20_000_000, 8, True)
        router = s.get_one(Router, ids["router"])
        assert (router.kind, router.status.value, router.site) == (RouterKind.MIKROTIK, "unknown", "North")
        service = s.get_one(Service, ids["service"])
        assert service.pppoe_password == b"\x00\x01ciphertext\xff"
        assert (service.state, service.state_since, service.promise_until) == (
            ServiceState.THROTTLED,
            AT,
            date(2026, 3, 5),
        )
        assert service.customer.name == "Ana Lima" and service.plan.name == "home-10"
        invoice = s.get_one(Invoice, ids["invoice"])
        assert [line.description for line in invoice.lines] == ["home-10, March"]
        assert invoice.lines[0].period_end == date(2026, 3, 31)
        assert s.get_one(Invoice, ids["credit"]).corrects_invoice_id == invoice.id
        assert s.get_one(Payment, ids["refund"]).refund_of_id == ids["payment"]
        assert s.get_one(Payment, ids["payment"]).received_at == AT
        assert s.get_one(LedgerEntry, ids["ledger"]).amount_minor == 3480
        usage = s.get_one(UsageSample, ids["usage"])
        assert (usage.bytes_in, usage.delta_in, usage.delta_out) == (2**40, 2**33, None)
        op = s.get_one(RouterOp, ids["op"])
        assert (op.payload, op.status, op.attempts) == ({"reason": "test", "ids": [1, 2]}, RouterOpStatus.PENDING, 0)
        assert s.get_one(User, ids["user"]).role is UserRole.SUPPORT
        assert s.get_one(ApiToken, ids["token"]).last_used_at == AT
        assert s.get_one(AuditEntry, ids["audit"]).after == {"a": 1}
        assert s.get_one(InvoiceSequence, "INV").last_number == 1


def test_datetimes_are_stored_as_instants_and_come_back_aware_utc(session: Session) -> None:
    plus_five = timezone(timedelta(hours=5))
    user = User(username="u", password_hash="h", role=UserRole.ADMIN, created_at=AT.astimezone(plus_five))
    session.add(user)
    session.commit()
    session.expire_all()
    loaded = session.get_one(User, user.id)
    assert loaded.created_at == AT
    assert loaded.created_at.utcoffset() == timedelta(0)
    found = session.scalars(select(User).where(User.created_at == AT)).one()  # compared as an instant
    assert found.id == user.id


def test_naive_datetimes_are_refused(session: Session) -> None:
    session.add(User(username="u", password_hash="h", role=UserRole.ADMIN, created_at=datetime(2026, 1, 1)))  # noqa: DTZ001
    with pytest.raises(StatementError, match="naive datetime"):
        session.flush()


def test_tax_rate_is_exact_and_refuses_extra_places(session: Session) -> None:
    def plan(name: str, rate: Decimal) -> Plan:
        return Plan(name=name, download_bps=1, upload_bps=1, price_minor=0, currency="USD", tax_rate=rate)

    session.add(plan("a", Decimal("0.123456")))
    session.commit()
    session.expire_all()
    assert session.scalars(select(Plan.tax_rate)).one() == Decimal("0.123456")
    session.add(plan("b", Decimal("0.1234567")))
    with pytest.raises(StatementError, match="more than 6 decimal places"):
        session.flush()


def test_constraints_hold_on_both_backends(engine: Engine) -> None:
    factory = session_factory(engine)
    with factory() as session:
        ids = _populate(session)
    bad_rows: list[Callable[[], Base]] = [
        # a second service with the same login on the same router
        lambda: Service(
            customer_id=ids["customer"],
            plan_id=ids["plan"],
            router_id=ids["router"],
            connection_type=ConnectionType.PPPOE,
            pppoe_login="ana",
            pppoe_password=b"x",
            started_on=date(2026, 1, 1),
        ),
        # a static service without an address
        lambda: Service(
            customer_id=ids["customer"],
            plan_id=ids["plan"],
            router_id=ids["router"],
            connection_type=ConnectionType.STATIC,
            started_on=date(2026, 1, 1),
        ),
        # a payment that is not positive
        lambda: Payment(
            customer_id=ids["customer"], amount_minor=0, currency="USD", method=PaymentMethod.CASH, received_at=AT
        ),
        # the same webhook event twice
        lambda: Payment(
            customer_id=ids["customer"],
            amount_minor=1,
            currency="USD",
            method=PaymentMethod.CASH,
            received_at=AT,
            external_id="evt_123",
        ),
        # a duplicate invoice number in a series
        lambda: Invoice(
            series="INV",
            number=1,
            customer_id=ids["customer"],
            currency="USD",
            issued_on=date(2026, 3, 1),
            due_on=date(2026, 3, 1),
            subtotal_minor=0,
            tax_minor=0,
            total_minor=0,
        ),
        # totals that do not add up
        lambda: Invoice(
            series="INV",
            number=2,
            customer_id=ids["customer"],
            currency="USD",
            issued_on=date(2026, 3, 1),
            due_on=date(2026, 3, 1),
            subtotal_minor=100,
            tax_minor=16,
            total_minor=100,
        ),
        # a ledger row for a customer that does not exist (foreign keys are on)
        lambda: LedgerEntry(customer_id=99999, currency="USD", amount_minor=1, kind=LedgerKind.ADJUSTMENT),
    ]
    for make in bad_rows:
        with factory() as session:
            session.add(make())
            with pytest.raises(IntegrityError):
                session.flush()


def test_an_enum_column_refuses_unknown_values(session: Session) -> None:
    session.add(Router(name="r", kind=RouterKind.LINUX, host="h", port=22))
    session.commit()
    with pytest.raises((IntegrityError, DBAPIError)):
        session.execute(text("UPDATE routers SET status = 'sideways'"))
        session.flush()


def test_ledger_is_insert_only(engine: Engine) -> None:
    factory = session_factory(engine)
    with factory() as session:
        ids = _populate(session)
    with factory() as session, pytest.raises(DBAPIError, match="insert-only"):
        session.execute(update(LedgerEntry).values(amount_minor=0))
    with factory() as session, pytest.raises(DBAPIError, match="insert-only"):
        session.execute(delete(LedgerEntry).where(LedgerEntry.id == ids["ledger"]))
    with factory() as session:
        session.add(
            LedgerEntry(customer_id=ids["customer"], currency="USD", amount_minor=-3480, kind=LedgerKind.PAYMENT)
        )
        session.commit()
        amounts = session.scalars(select(LedgerEntry.amount_minor).order_by(LedgerEntry.id)).all()
    assert amounts == [3480, -3480]
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn, pytest.raises(DBAPIError, match="insert-only"):
            conn.execute(text("TRUNCATE ledger"))


def test_invoice_numbers_are_gapless_and_a_rollback_gives_the_number_back(engine: Engine) -> None:
    factory = session_factory(engine)
    with factory.begin() as session:
        assert [next_invoice_number(session, "INV") for _ in range(3)] == [1, 2, 3]
        assert next_invoice_number(session, "CN") == 1
    with factory() as session:
        assert next_invoice_number(session, "INV") == 4
        session.rollback()
    with factory.begin() as session:
        assert next_invoice_number(session, "INV") == 4


def test_concurrent_issuers_get_distinct_gapless_numbers(engine: Engine) -> None:
    """Eight writers at once, every third rolling back: the committed numbers are exactly 1..n."""

    factory = session_factory(engine)
    committed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def issue(index: int) -> None:
        try:
            start.wait()
            for round_ in range(5):
                with factory() as session:
                    number = next_invoice_number(session, "INV")
                    if (index + round_) % 3 == 0:
                        session.rollback()
                        continue
                    session.commit()
                with lock:
                    committed.append(number)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=issue, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(committed) == list(range(1, len(committed) + 1))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////var/lib/edgebill/db.sqlite", "sqlite:////var/lib/edgebill/db.sqlite"),
    ],
)
def test_database_urls_are_normalised(url: str, expected: str) -> None:
    assert normalize_url(url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("postgresql+psycopg2://u@h/db", "unsupported PostgreSQL driver"),
        ("not a url", "invalid database URL"),
    ],
)
def test_unsupported_database_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_engine(url)


def test_sqlite_connections_enforce_foreign_keys_and_use_wal(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    finally:
        engine.dispose()
