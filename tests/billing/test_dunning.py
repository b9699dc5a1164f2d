"""Dunning over time (``as_of`` time travel), payments releasing at once, and reminders through real SMTP."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from daemon.billing import receive_payment, run_billing, run_dunning
from daemon.billing.account import DunningRunResult
from daemon.billing.mail import MailError, Templates
from daemon.config import Settings
from daemon.db.models import AuditEntry, Service, UsageSample
from daemon.services.state import set_service_state
from tests.billing.conftest import ACTOR, DUNNING, World


class Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.messages]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, loop=asyncio.new_event_loop())
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
        controller.loop.close()


@pytest.fixture
def mail_settings(make_settings: Any, smtp: tuple[Inbox, int]) -> Settings:
    _, port = smtp
    extra = DUNNING + f'\n[smtp]\nhost = "127.0.0.1"\nport = {port}\nsender = "Billing <billing@isp.example>"\n'
    settings: Settings = make_settings(extra=extra, name="mail.toml")
    return settings


def engine_of(db: Session) -> Engine:
    db.commit()
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    return engine


def dun(db: Session, settings: Settings, day: date) -> DunningRunResult:
    return run_dunning(engine_of(db), settings, as_of=day)


def state_of(db: Session, service_id: int) -> tuple[str, str | None]:
    db.expire_all()
    row = db.get(Service, service_id)
    assert row is not None
    return row.state.value, row.state_reason


def overdue_customer(db: Session, world: World, settings: Settings, **customer: Any) -> tuple[int, int]:
    """A customer with one 30.00 postpaid service since January: invoice INV-000001 issued 02-01, due 02-15."""
    world.settings = settings
    cid = world.customer(**customer)
    sid = world.service(cid, "home-30", date(2026, 1, 1))
    run_billing(engine_of(db), settings, as_of=date(2026, 2, 1))
    return cid, sid


def test_ladder_over_time_then_payment_releases_at_once(
    db: Session, world: World, mail_settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, _ = smtp
    world.plan("home-30", "30.00")
    cid, sid = overdue_customer(db, world, mail_settings)

    dun(db, mail_settings, date(2026, 2, 15))  # due today: day 0, no step
    assert state_of(db, sid)[0] == "active" and inbox.messages == []

    dun(db, mail_settings, date(2026, 2, 16))
    dun(db, mail_settings, date(2026, 2, 17))  # the same reminder is never sent twice
    assert inbox.subjects() == ["Payment reminder: 30.00 USD overdue on invoice INV-000001"]
    reminder = inbox.messages[0]
    assert reminder["To"] == "ana@example.net" and reminder["From"] == "Billing <billing@isp.example>"
    body = reminder.get_payload(decode=True)
    assert isinstance(body, bytes) and b"reference C%d" % cid in body
    assert state_of(db, sid)[0] == "active"

    result = dun(db, mail_settings, date(2026, 2, 25))
    state, reason = state_of(db, sid)
    assert state == "throttled" and reason is not None and reason.startswith("dunning:")
    assert [c.to_json()["after"] for r in result.customers for c in r.changes] == ["throttled"]

    dun(db, mail_settings, date(2026, 3, 7))
    assert state_of(db, sid)[0] == "suspended"
    assert inbox.subjects()[-1] == "Your service is suspended: 30.00 USD overdue"

    partial = receive_payment(db, ACTOR, mail_settings, customer_id=cid, amount="20.00", as_of=date(2026, 3, 8))
    db.commit()
    assert partial.dunning is not None and partial.dunning.changes == ()
    assert state_of(db, sid)[0] == "suspended"  # 10.00 still overdue

    paid = receive_payment(db, ACTOR, mail_settings, customer_id=cid, amount="10.00", as_of=date(2026, 3, 8))
    db.commit()
    assert paid.dunning is not None and [c.after for c in paid.dunning.changes] == ["active"]
    assert state_of(db, sid)[0] == "active"
    sent = db.scalars(select(AuditEntry).where(AuditEntry.action == "dunning.email")).all()
    assert [entry.after["step"] for entry in sent if entry.after] == ["reminder", "cut-off"]


def test_never_suspend_and_promise_to_pay_hold_enforcement(db: Session, world: World, mail_settings: Settings) -> None:
    world.plan("home-30", "30.00")
    _, vip = overdue_customer(db, world, mail_settings, name="Town Hall", tags=("never-suspend",))
    _, promised = overdue_customer(db, world, mail_settings, name="Bo")
    row = db.get(Service, promised)
    assert row is not None
    row.promise_until = date(2026, 3, 10)

    dun(db, mail_settings, date(2026, 3, 7))
    assert state_of(db, vip)[0] == "active" and state_of(db, promised)[0] == "active"
    dun(db, mail_settings, date(2026, 3, 11))  # the promise lapsed unpaid: enforcement resumes where it is
    assert state_of(db, vip)[0] == "active" and state_of(db, promised)[0] == "suspended"


def test_min_amount_and_states_set_by_staff(db: Session, world: World, mail_settings: Settings) -> None:
    world.plan("home-30", "30.00")
    world.plan("tiny", "3.00")
    world.settings = mail_settings
    small = world.customer("Small")
    small_svc = world.service(small, "tiny", date(2026, 1, 1))
    cid, staff_svc = overdue_customer(db, world, mail_settings, name="Cy")
    set_service_state(db, "staff", staff_svc, "suspended", "abuse report 42")

    dun(db, mail_settings, date(2026, 2, 25))  # throttle needs 5.00 unpaid: 3.00 is not enough
    assert state_of(db, small_svc)[0] == "active"
    dun(db, mail_settings, date(2026, 3, 7))  # the suspend step has no minimum
    assert state_of(db, small_svc)[0] == "suspended"

    receive_payment(db, ACTOR, mail_settings, customer_id=cid, amount="30.00", as_of=date(2026, 3, 8))
    db.commit()
    assert state_of(db, staff_svc) == ("suspended", "abuse report 42")  # not ours to lift


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda path: path.write_bytes(b"Subject: Hola\n\nSe\xf1or\n"), "is not valid UTF-8 (byte offset 17)"),
        (
            lambda path: path.write_text("Subject: x\n\n" + "{% if 1 %}" * 2000 + "{% endif %}" * 2000),
            "nests too deeply",
        ),
    ],
)
def test_a_template_that_cannot_be_used_is_a_mail_error(tmp_path: Path, make: Any, reason: str) -> None:
    make(tmp_path / "reminder.txt")
    with pytest.raises(MailError) as info:
        Templates(tmp_path).render("reminder", {})
    assert str(info.value) == f"e-mail template 'reminder' {reason}"


def test_template_folder_overrides_shipped_templates(tmp_path: Any) -> None:
    (tmp_path / "reminder.txt").write_text("Subject: Hello {{ customer_name }}\n\nPay {{ amount }}.\n")
    rendered = Templates(tmp_path).render("reminder", {"customer_name": "Ana", "amount": "1.00 USD"})
    assert (rendered.subject, rendered.body) == ("Hello Ana", "Pay 1.00 USD.\n")
    shipped = Templates().render(
        "final-notice",
        {
            "customer_name": "Ana",
            "amount": "1.00 USD",
            "invoice_number": "INV-000001",
            "due_on": "2026-02-15",
            "days_overdue": 3,
            "payment_url": "https://pay.example/",
            "customer_ref": "C1",
        },
    )
    assert shipped.subject == "Final notice: 1.00 USD overdue, service will be restricted"


def test_fair_use_throttles_over_quota_until_the_next_period(db: Session, world: World, settings: Settings) -> None:
    world.plan("fup", "20.00", quota="10GB", over_quota="throttle", fair_use_download="1M", fair_use_upload="512k")
    cid = world.customer("Gus")
    sid = world.service(cid, "fup", date(2026, 1, 1))
    db.add(
        UsageSample(
            service_id=sid,
            taken_at=datetime(2026, 1, 10, 12, tzinfo=UTC),
            bytes_in=0,
            bytes_out=0,
            delta_in=11 * 10**9,
            delta_out=10**9,
        )
    )
    dun(db, settings, date(2026, 1, 9))
    assert state_of(db, sid)[0] == "active"
    dun(db, settings, date(2026, 1, 15))
    state, reason = state_of(db, sid)
    assert state == "throttled" and reason == "fair use: 12GB used of the 10GB quota in 2026-01-01 to 2026-01-31"
    dun(db, settings, date(2026, 2, 1))  # a new period, a new quota
    assert state_of(db, sid)[0] == "active"
