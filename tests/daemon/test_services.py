"""Domain services on both backends: what they store, what they refuse, what they audit and queue."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from daemon.config import Settings, load_settings
from daemon.db import (
    AuditEntry,
    Invoice,
    InvoiceLine,
    InvoiceLineKind,
    LedgerEntry,
    Router,
    RouterOp,
    Service,
    User,
    UserRole,
)
from daemon.security import SecretBox
from daemon.services import (
    Conflict,
    Invalid,
    NotFound,
    audit,
    customers,
    invoices,
    ledger,
    ops,
    payments,
    plans,
    routers,
    users,
)
from daemon.services import services as subs
from daemon.services._db import insert_unique
from policies.desired import ServiceState
from policies.money import Money, currency
from tests.conftest import MakeConfig

ACTOR = "test"
USD = currency("USD")


@pytest.fixture
def settings(config_file: Path) -> Settings:
    return load_settings(config_file)


@pytest.fixture
def world(session: Session, settings: Settings) -> dict[str, int]:
    """Routers core1 and edge2, plan home-10, one customer."""
    routers.sync_routers(session, settings)
    plans.add_plan(session, ACTOR, settings, name="home-10", download="10M", upload="5M", price="30.00")
    customer = customers.add_customer(session, ACTOR, name="Ana Lima", email="ana@example.net")
    session.commit()
    return {"customer": customer.id}


def count(session: Session, model: type[object]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


# -- routers --------------------------------------------------------------------------------------------------


def test_sync_routers_adds_updates_retires_and_brings_back(
    session: Session, settings: Settings, make_config: MakeConfig
) -> None:
    first = routers.sync_routers(session, settings)
    assert (first.added, first.updated, first.retired) == (("core1", "edge2"), (), ())
    again = routers.sync_routers(session, settings)
    assert not again.changed and again.unchanged == ("core1", "edge2")

    moved = load_settings(
        make_config(
            name="moved.toml",
            routers=[{"name": "core1", "kind": "mikrotik", "host": "10.9.9.9", "port": 8729, "site": "New POP"}],
        )
    )
    result = routers.sync_routers(session, moved)
    assert (result.updated, result.retired) == (("core1",), ("edge2",))
    core1 = routers.get_router(session, "core1")
    assert (core1.host, core1.port, core1.site, core1.status) == ("10.9.9.9", 8729, "New POP", "unknown")
    assert [r.name for r in routers.list_routers(session)] == ["core1"]
    assert [r.name for r in routers.list_routers(session, include_retired=True)] == ["core1", "edge2"]
    assert routers.get_router(session, "edge2").retired

    back = routers.sync_routers(session, settings)
    assert set(back.updated) == {"core1", "edge2"} and not back.retired
    assert not routers.get_router(session, "edge2").retired
    assert count(session, Router) == 2  # history is never deleted
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "router")).all()
    assert actions.count("router.retire") == 1 and actions.count("router.add") == 2


def test_plan_round_trip_with_every_option(session: Session, settings: Settings) -> None:
    plan = plans.add_plan(
        session,
        ACTOR,
        settings,
        name="max-100",
        download="100M",
        upload="20M",
        price="59.90",
        cycle="weekly",
        prepaid=True,
        setup_fee="10",
        quota="1.5TB",
        over_quota="charge",
        overage_price="0.50",
        tax_rate="0.075",
        tax_inclusive=True,
        burst_download="150M",
        burst_upload="30M",
        burst_time="16",
    )
    again = plans.get_plan(session, "max-100")
    assert again == plan
    assert plan.price == Money(5990, USD) and plan.setup_fee == Money(1000, USD)
    assert plan.overage_price == Money(50, USD)
    assert (plan.quota_bytes, plan.over_quota, plan.cycle, plan.prepaid) == (1_500 * 10**9, "charge", "weekly", True)
    assert plan.tax_rate == Decimal("0.075") and plan.tax_inclusive
    assert plan.rate.burst is not None and plan.rate.burst.threshold_download == 100_000_000
    assert plan.rate.burst.time_s == 16
    view = plan.to_json()
    assert (view["price"], view["quota"], view["tax_rate"], view["burst"]["download"]) == (
        "59.90",
        "1500GB",
        "0.075",
        "150M",
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quota": "10GB", "over_quota": "throttle"}, "needs fair-use download and upload rates"),
        ({"quota": "10GB", "over_quota": "charge"}, "needs an overage price"),
        ({"fair_use_download": "1M", "fair_use_upload": "1M"}, "need a quota"),
        ({"quota": "10GB", "fair_use_download": "20M", "fair_use_upload": "1M"}, "must not exceed the plan rates"),
        ({"fair_use_download": "1M"}, "need both"),
        ({"cycle": "daily"}, "invalid billing cycle"),
        ({"burst_download": "20M", "burst_upload": "10M", "burst_time": "2h"}, "out of range"),
        ({"burst_download": "20M", "burst_upload": "10M", "burst_threshold_upload": "6M"}, "must not exceed"),
        ({"tax_rate": "0.1234567"}, "more than 6 decimal places"),
        ({"tax_rate": "abc"}, "invalid tax rate"),
        ({"quota": "0GB"}, "must be above zero"),
        ({"quota": "1.5B"}, "whole number of bytes"),
        ({"price": "90000000000000000"}, r"price 90000000000000000.00 USD is out of range: at most 1000000000.00 USD"),
        ({"price": "1000000000.01"}, "out of range: at most 1000000000.00 USD"),
        ({"setup_fee": "1000000000.01"}, "setup fee 1000000000.01 USD is out of range"),
        (
            {"quota": "10GB", "over_quota": "charge", "overage_price": "1000000000.01"},
            "overage price 1000000000.01 USD is out of range",
        ),
    ],
)
def test_plan_refusals(session: Session, settings: Settings, fields: dict[str, str], message: str) -> None:
    base: dict[str, str] = {"name": "p", "download": "10M", "upload": "5M", "price": "1.00"}
    with pytest.raises(Invalid, match=message):
        plans.add_plan(session, ACTOR, settings, **{**base, **fields})  # type: ignore[arg-type]
    assert plans.list_plans(session) == []


def test_plan_quotas_are_read_as_people_type_them(session: Session, settings: Settings) -> None:
    def charged(name: str, quota: str) -> plans.PlanRecord:
        return plans.add_plan(
            session, ACTOR, settings, name=name, download="10M", upload="5M", price="1.00", quota=quota,
            over_quota="charge", overage_price="0.10",
        )  # fmt: skip

    assert charged("si", "100GB").quota_bytes == 100 * 10**9
    assert charged("binary", "1GiB").quota_bytes == 2**30
    assert charged("spaced", "512 MB").quota_bytes == 512 * 10**6
    assert charged("bytes", "1000").quota_bytes == 1000
    assert charged("big", "1500000000000").to_json()["quota"] == "1500GB"
    assert charged("odd", "123").to_json()["quota"] == "123B"
    for bad in ("", "GB", "-1GB", "1e9", "10 bits"):
        with pytest.raises(Invalid, match="invalid quota"):
            charged("bad", bad)
    assert [p.name for p in plans.list_plans(session)] == ["big", "binary", "bytes", "odd", "si", "spaced"]


def test_plan_spec_is_the_stored_plan(session: Session, settings: Settings) -> None:
    stored = plans.add_plan(
        session, ACTOR, settings, name="capped", download="20M", upload="10M", price="25.00", cycle="weekly",
        setup_fee="5", quota="50GB", fair_use_download="2M", fair_use_upload="1M", tax_rate="0.16",
        burst_download="30M", burst_upload="15M",
    )  # fmt: skip
    spec = plans.plan_spec(plans.load_plan(session, "capped"))
    assert (spec.name, spec.rate, spec.price, spec.setup_fee) == ("capped", stored.rate, stored.price, stored.setup_fee)
    assert (spec.cycle, spec.quota_bytes, spec.over_quota, spec.fair_use_rate) == (
        "weekly",
        50 * 10**9,
        "throttle",
        stored.fair_use,
    )
    assert spec.overage_price_per_gb is None and spec.tax_rate == Decimal("0.16")


def test_deactivated_plans_take_no_new_services(session: Session, settings: Settings, world: dict[str, int]) -> None:
    plans.set_plan_active(session, ACTOR, "home-10", False)
    assert [p.active for p in plans.list_plans(session)] == [False]
    assert plans.list_plans(session, include_inactive=False) == []
    with pytest.raises(Conflict, match="no longer offered"):
        subs.add_service(
            session, ACTOR, settings, customer_id=world["customer"], plan_name="home-10", router_name="core1",
            ipv4="100.64.1.1",
        )  # fmt: skip


# -- customers ------------------------------------------------------------------------------------------------


def test_customers_update_tags_and_search(session: Session) -> None:
    ana = customers.add_customer(session, ACTOR, name=" Ana Lima ", tags=["VIP", "vip", "never-suspend"])
    assert (ana.name, ana.tags) == ("Ana Lima", ("never-suspend", "vip"))
    customers.add_customer(session, ACTOR, name="Bob 100%_Ruiz", phone="+1 (555) 010-0000")
    updated = customers.update_customer(session, ACTOR, ana.id, email="ana@example.net", notes=None, tags=["late"])
    assert (updated.email, updated.tags) == ("ana@example.net", ("late",))
    assert customers.update_customer(session, ACTOR, ana.id, email="ana@example.net") == updated
    assert customers.add_tag(session, ACTOR, ana.id, customers.NEVER_SUSPEND).tags == ("late", "never-suspend")
    assert customers.remove_tag(session, ACTOR, ana.id, "late").tags == ("never-suspend",)
    with pytest.raises(Invalid, match="has no tag 'late'"):
        customers.remove_tag(session, ACTOR, ana.id, "late")
    assert [c.name for c in customers.list_customers(session, tag="never-suspend")] == ["Ana Lima"]
    assert [c.name for c in customers.list_customers(session, search="EXAMPLE.net")] == ["Ana Lima"]
    assert [c.name for c in customers.list_customers(session, search="100%_")] == ["Bob 100%_Ruiz"]
    assert customers.list_customers(session, search="a%l") == []  # % is a character, not a wildcard
    history = audit.list_entries(session, entity="customer", entity_id=ana.id)
    # add, update, add_tag, remove_tag; the no-op update wrote nothing
    assert [e.action for e in history] == ["customer.update"] * 3 + ["customer.add"]
    assert history[0].before is not None and history[0].before["tags"] == ["late", "never-suspend"]
    with pytest.raises(NotFound, match="customer 999 not found"):
        customers.update_customer(session, ACTOR, 999, name="x")
    with pytest.raises(Invalid, match="control characters"):
        customers.add_customer(session, ACTOR, name="Bad\x00Name")


# -- services -------------------------------------------------------------------------------------------------


def test_service_lifecycle_audits_and_queues_reconciles(
    session: Session, settings: Settings, world: dict[str, int]
) -> None:
    plans.add_plan(session, ACTOR, settings, name="home-25", download="25M", upload="10M", price="40.00")
    service = subs.add_service(
        session, ACTOR, settings, customer_id=world["customer"], plan_name="home-10", router_name="core1",
        pppoe_login="ana", pppoe_password="pppoe-pw", ipv4="100.64.0.10",
    )  # fmt: skip
    assert (service.state, service.connection_type, service.ipv4) == ("active", "pppoe", "100.64.0.10")
    assert service.started_on == datetime.now(UTC).date()  # billing time zone is UTC here
    assert "pppoe-pw" not in repr(service) and "pppoe-pw" not in str(service.to_json())
    assert subs.pppoe_password(session, settings, service.id) == "pppoe-pw"
    assert subs.pppoe_password(session, SecretBox(settings.security.fernet_keys()), service.id) == "pppoe-pw"
    with pytest.raises(Exception, match="cannot decrypt"):
        subs.pppoe_password(session, SecretBox.generate(), service.id)

    moved = subs.set_service_plan(session, ACTOR, service.id, "home-25")
    assert (moved.plan, moved.download_bps) == ("home-25", 25_000_000)
    assert subs.set_service_plan(session, ACTOR, service.id, "home-25") == moved  # no-op: nothing queued
    queued = ops.list_ops(session, router="core1")
    assert [(o.op, o.payload, o.status) for o in queued] == [
        ("reconcile", {"reason": "service.add", "service_id": service.id}, "pending"),
        ("reconcile", {"reason": "service.set_plan", "service_id": service.id}, "pending"),
    ]
    trail = audit.list_entries(session, entity="service", entity_id=service.id)
    assert [e.action for e in trail] == ["service.set_plan", "service.add"]
    assert trail[0].before is not None and trail[0].before["plan"] == "home-10"

    row = session.get_one(Service, service.id)
    row.state = ServiceState.TERMINATED
    session.flush()
    with pytest.raises(Conflict, match="terminated"):
        subs.set_service_plan(session, ACTOR, service.id, "home-10")


def test_service_refusals_change_nothing(session: Session, settings: Settings, world: dict[str, int]) -> None:
    cid = world["customer"]
    subs.add_service(session, ACTOR, settings, customer_id=cid, plan_name="home-10", router_name="core1",
                     pppoe_login="ana", pppoe_password="pw")  # fmt: skip
    session.commit()
    attempts: list[tuple[dict[str, str | None], type[Exception], str]] = [
        ({"pppoe_login": "ana", "pppoe_password": "pw"}, Conflict, "already used by service"),
        ({"pppoe_login": "ana"}, Invalid, "needs a password"),
        ({"pppoe_password": "pw"}, Invalid, "without a PPPoE login"),
        ({}, Invalid, "needs a PPPoE login and password, or a static IPv4 address"),
        ({"ipv4": "127.0.0.1"}, Invalid, "cannot be given"),
        ({"ipv4": "100.64.0.256"}, Invalid, "invalid IPv4"),
        ({"pppoe_login": "x" * 65, "pppoe_password": "pw"}, Invalid, "invalid PPPoE login"),
        ({"pppoe_login": "bo b", "pppoe_password": "pw"}, Invalid, "invalid PPPoE login"),
        ({"pppoe_login": "a=b", "pppoe_password": "pw"}, Invalid, "must not contain '='"),
        ({"pppoe_login": "bob", "pppoe_password": "x" * 65}, Invalid, "too long"),
        ({"pppoe_login": "bob", "pppoe_password": "pässword"}, Invalid, "printable ASCII"),
    ]
    before = (count(session, Service), count(session, RouterOp), count(session, AuditEntry))
    for fields, error, message in attempts:
        with pytest.raises(error, match=message):
            subs.add_service(session, ACTOR, settings, customer_id=cid, plan_name="home-10", router_name="core1",
                             **fields)  # type: ignore[arg-type]  # fmt: skip
        session.rollback()
    assert (count(session, Service), count(session, RouterOp), count(session, AuditEntry)) == before
    # the same login is free on another router
    other = subs.add_service(session, ACTOR, settings, customer_id=cid, plan_name="home-10", router_name="edge2",
                             pppoe_login="ana", pppoe_password="pw")  # fmt: skip
    assert other.router == "edge2"
    # logins follow the one PPPoE login rule (policies.plans): MAC-style and e-mail-style logins are fine
    for login in ("CPE-00:11:22", "ana@isp.example"):
        assert subs.add_service(session, ACTOR, settings, customer_id=cid, plan_name="home-10", router_name="core1",
                                pppoe_login=login, pppoe_password="pw").pppoe_login == login  # fmt: skip


def test_retired_routers_take_no_new_services(
    session: Session, settings: Settings, world: dict[str, int], make_config: MakeConfig
) -> None:
    routers.sync_routers(session, load_settings(make_config(name="one.toml", routers=[DEFAULT_CORE1])))
    with pytest.raises(Conflict, match="router 'edge2' is retired"):
        subs.add_service(session, ACTOR, settings, customer_id=world["customer"], plan_name="home-10",
                         router_name="edge2", ipv4="100.64.0.1")  # fmt: skip


DEFAULT_CORE1 = {"name": "core1", "kind": "mikrotik", "host": "127.0.0.1", "port": 18728, "site": "North POP"}


def test_service_listing_filters(session: Session, settings: Settings, world: dict[str, int]) -> None:
    cid = world["customer"]
    other = customers.add_customer(session, ACTOR, name="Bob").id
    for customer_id, router, address in ((cid, "core1", "100.64.0.1"), (other, "edge2", "100.64.0.2")):
        subs.add_service(session, ACTOR, settings, customer_id=customer_id, plan_name="home-10", router_name=router,
                         ipv4=address)  # fmt: skip
    assert [s.ipv4 for s in subs.list_services(session)] == ["100.64.0.1", "100.64.0.2"]
    assert [s.ipv4 for s in subs.list_services(session, customer_id=other)] == ["100.64.0.2"]
    assert [s.ipv4 for s in subs.list_services(session, router="core1")] == ["100.64.0.1"]
    assert len(subs.list_services(session, plan="home-10", state="active")) == 2
    with pytest.raises(Invalid, match="invalid service state"):
        subs.list_services(session, state="sleeping")


# -- payments and the ledger ----------------------------------------------------------------------------------


def test_payments_credit_the_ledger_and_webhooks_are_idempotent(
    session: Session, settings: Settings, world: dict[str, int]
) -> None:
    cid = world["customer"]
    first = payments.record_payment(session, ACTOR, settings, customer_id=cid, amount="30.00", method="online",
                                    external_id="evt_1")  # fmt: skip
    repeat = payments.record_payment(session, ACTOR, settings, customer_id=cid, amount=Money(3000, USD),
                                     method="online", external_id="evt_1")  # fmt: skip
    assert repeat == first
    with pytest.raises(Conflict, match="already used for payment"):
        payments.record_payment(session, ACTOR, settings, customer_id=cid, amount="31.00", external_id="evt_1")
    assert ledger.balance(session, cid, USD) == Money(-3000, USD)
    assert count(session, LedgerEntry) == 1

    refund = payments.refund_payment(session, ACTOR, first.id, amount=Money(1000, USD), reference="partial")
    assert (refund.amount, refund.refund_of_id) == (Money(-1000, USD), first.id)
    with pytest.raises(Invalid, match=r"exceeds the 20\.00 USD left"):
        payments.refund_payment(session, ACTOR, first.id, amount=Money(2001, USD))
    payments.refund_payment(session, ACTOR, first.id)  # the rest
    with pytest.raises(Invalid, match="must be above zero"):
        payments.refund_payment(session, ACTOR, first.id)
    assert ledger.balance(session, cid, "USD") == Money(0, USD)
    assert [(e.kind, e.amount.to_json()) for e in ledger.entries(session, cid)] == [
        ("payment", "-30.00"),
        ("refund", "10.00"),
        ("refund", "20.00"),
    ]
    assert [p.amount.to_json() for p in payments.list_payments(session, customer_id=cid)] == [
        "-20.00",
        "-10.00",
        "30.00",
    ]


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "must be above zero"),
        ("-1.00", "must be above zero"),
        ("1.001", "USD has 2 decimal places"),
        ("ten", "invalid amount"),
        (Money(100, currency("EUR")), "payment is in EUR but this installation bills in USD"),
        ("90000000000000000", "payment amount 90000000000000000.00 USD is out of range: at most 1000000000.00 USD"),
        ("1000000000.01", "out of range: at most 1000000000.00 USD"),
        (Money(2**63 - 1, USD), "out of range"),
        (Money(2**80, USD), "out of range"),
    ],
)
def test_payment_refusals(
    session: Session, settings: Settings, world: dict[str, int], amount: str | Money, message: str
) -> None:
    with pytest.raises(Invalid, match=message):
        payments.record_payment(session, ACTOR, settings, customer_id=world["customer"], amount=amount)
    assert count(session, LedgerEntry) == 0


def test_payment_for_unknown_customer_and_method(session: Session, settings: Settings, world: dict[str, int]) -> None:
    with pytest.raises(NotFound):
        payments.record_payment(session, ACTOR, settings, customer_id=404, amount="1.00")
    with pytest.raises(Invalid, match="invalid payment method 'barter'"):
        payments.record_payment(session, ACTOR, settings, customer_id=world["customer"], amount="1.00", method="barter")


# -- users and tokens -----------------------------------------------------------------------------------------


def test_users_passwords_and_tokens(session: Session) -> None:
    admin = users.create_user(session, ACTOR, "admin", "a long password", "admin")
    assert users.authenticate(session, "admin", "a long password") == dataclasses.replace(
        admin, last_login_at=users.get_user(session, "admin").last_login_at
    )
    assert users.authenticate(session, "admin", "wrong password") is None
    assert users.authenticate(session, "nobody", "a long password") is None
    views = session.scalars(select(AuditEntry.after)).all()
    assert views and "argon2" not in str(views)  # audit views never hold the hash

    issued = users.create_token(session, ACTOR, "admin", "export")
    assert issued.token not in repr(issued)
    assert users.verify_token(session, issued.token) is not None
    assert users.list_tokens(session, "admin")[0].last_used_at is not None
    assert users.verify_token(session, issued.token + "x") is None
    assert users.verify_token(session, "not-a-token") is None
    with pytest.raises(Conflict, match="already has a token named 'export'"):
        users.create_token(session, ACTOR, "admin", "export")
    users.revoke_token(session, ACTOR, issued.record.id)
    assert users.verify_token(session, issued.token) is None
    assert users.create_token(session, ACTOR, "admin", "export").record.name == "export"  # name free again

    users.set_user_active(session, ACTOR, "admin", False)
    assert users.authenticate(session, "admin", "a long password") is None
    with pytest.raises(Conflict, match="disabled"):
        users.create_token(session, ACTOR, "admin", "other")
    users.set_user_active(session, ACTOR, "admin", True)
    users.set_password(session, ACTOR, "admin", "another long one")
    assert users.authenticate(session, "admin", "another long one") is not None
    with pytest.raises(Invalid, match="invalid role"):
        users.create_user(session, ACTOR, "x", "a long password", "root")
    with pytest.raises(Conflict, match="already exists"):
        users.create_user(session, ACTOR, "admin", "a long password", "admin")
    assert users.count_users(session) == 1


# -- the router operation queue -------------------------------------------------------------------------------


def test_router_ops_queue(session: Session, settings: Settings) -> None:
    routers.sync_routers(session, settings)
    core1 = routers.get_router(session, "core1").id
    first = ops.enqueue_reconcile(session, core1, reason="manual")
    later = ops.enqueue(session, core1, "push", {"x": 1}, not_before=datetime.now(UTC) + timedelta(hours=1))
    assert [o.id for o in ops.due_ops(session, core1)] == [first.id]
    ops.mark_failed(session, first.id, "timeout", retry_in=timedelta(minutes=5))
    assert ops.due_ops(session, core1) == []
    assert [o.id for o in ops.due_ops(session, core1, now=datetime.now(UTC) + timedelta(hours=2))] == [
        first.id,
        later.id,
    ]
    ops.mark_done(session, first.id)
    ops.mark_failed(session, later.id, "refused", retry_in=None)
    done, failed = ops.list_ops(session)
    assert (done.status, done.attempts, done.last_error, done.done_at is not None) == ("done", 2, None, True)
    assert (failed.status, failed.last_error) == ("failed", "refused")
    with pytest.raises(Conflict, match="already done"):
        ops.mark_done(session, first.id)
    with pytest.raises(Invalid):
        ops.list_ops(session, status="stuck")


def test_invoice_read_side(session: Session, world: dict[str, int]) -> None:
    number = invoices.next_invoice_number(session, "INV")
    row = Invoice(
        series="INV", number=number, customer_id=world["customer"], currency="USD", issued_on=date(2026, 3, 1),
        due_on=date(2026, 3, 15), subtotal_minor=3000, tax_minor=480, total_minor=3480,
        lines=[InvoiceLine(kind=InvoiceLineKind.RECURRING, description="home-10", period_start=date(2026, 3, 1),
                           period_end=date(2026, 3, 31), amount_minor=3000, tax_minor=480)],
    )  # fmt: skip
    session.add(row)
    session.flush()
    shown = invoices.get_invoice(session, row.id).to_json()
    assert (shown["number"], shown["total"], shown["tax"], shown["status"]) == ("INV-000001", "34.80", "4.80", "open")
    assert shown["lines"][0]["period_end"] == "2026-03-31"
    assert [i.id for i in invoices.list_invoices(session, customer_id=world["customer"], status="open")] == [row.id]
    assert invoices.list_invoices(session, status="paid") == []
    with pytest.raises(NotFound):
        invoices.get_invoice(session, row.id + 1)


def test_a_lost_uniqueness_race_is_a_conflict_and_the_transaction_goes_on(session: Session) -> None:
    users.create_user(session, ACTOR, "admin", "a long password", "admin")
    with pytest.raises(Conflict, match="taken"):
        # what a concurrent writer that passed the same "already exists?" check would do
        insert_unique(session, User(username="admin", password_hash="h", role=UserRole.ADMIN), "taken")
    users.create_user(session, ACTOR, "second", "a long password", "support")
    session.commit()
    assert [u.username for u in users.list_users(session)] == ["admin", "second"]
