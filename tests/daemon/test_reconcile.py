"""The reconcile engine over a real database (SQLite and PostgreSQL) and emulated routers on TCP."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Protocol

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session, sessionmaker

from daemon import reconcile
from daemon.cli import main
from daemon.config import DunningStepSettings, RouterSettings, SecuritySettings
from daemon.db import (
    AuditEntry,
    Customer,
    Plan,
    Router,
    RouterKind,
    RouterOp,
    RouterOpStatus,
    RouterStatus,
    Service,
    make_engine,
    session_factory,
    upgrade,
    utcnow,
)
from daemon.security import SecretBox
from daemon.services import ops
from daemon.services.errors import Conflict, Invalid, NotFound
from daemon.services.services import set_service_plan
from daemon.services.state import set_service_state
from drivers.base import ScopeUnavailable
from drivers.mikrotik import MikrotikDriver
from drivers.models import Resource, Scope
from lab.routeros import RouterOSEmulator
from policies.desired import ConnectionType, ServiceState
from tests.conftest import MakeConfig
from tests.lab_setup import ENFORCEMENT, EngineSettings, write_secret
from tests.routeros import POOL, USERS, MakeParams

KEY = Fernet.generate_key()


#: The dunning ladder the engine enforces: only each step's action and throttle rates matter to it.
LADDER = (
    DunningStepSettings(name="remind", days_past_due=7, action="remind", email_template="reminder"),
    DunningStepSettings(name="throttle", days_past_due=14, action="throttle", throttle_rate=(2_000_000, 1_000_000)),
    DunningStepSettings(name="suspend", days_past_due=21, action="suspend"),
)


class MakeSettings(Protocol):
    def __call__(self, *routers: RouterSettings) -> EngineSettings: ...


@pytest.fixture
def settings_of(tmp_path: Path) -> MakeSettings:
    """Engine settings for ``routers``: the dunning :data:`LADDER`, a payment page, and the key in a 0600 file."""
    key_file = write_secret(tmp_path / "secret.key", KEY.decode("ascii"))
    enforcement = replace(ENFORCEMENT, payment_page_url="https://pay.example.net/")

    def make(*routers: RouterSettings) -> EngineSettings:
        return EngineSettings(
            routers=routers, security=SecuritySettings(key_file), dunning=LADDER, enforcement=enforcement
        )

    return make


@pytest.fixture
def settings(settings_of: MakeSettings, params: MakeParams, emulator: RouterOSEmulator) -> EngineSettings:
    """Engine settings for the ``emulator`` router, called ``edge1``."""
    return settings_of(params(emulator.port))


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def add_router(session: Session, name: str, port: int) -> Router:
    row = Router(name=name, kind=RouterKind.MIKROTIK, host="127.0.0.1", port=port)
    session.add(row)
    session.flush()
    return row


def seed(sessions: sessionmaker[Session], name: str = "edge1", port: int = 0) -> dict[str, int]:
    """A router with two PPPoE services and one static one, each queued for reconcile as the services layer does."""
    box = SecretBox([KEY])
    with sessions.begin() as s:
        router = add_router(s, name, port)
        home = Plan(name="Home 10M", download_bps=10_000_000, upload_bps=5_000_000, price_minor=2500, currency="EUR")
        fast = Plan(name="Fast 50M", download_bps=50_000_000, upload_bps=10_000_000, price_minor=4500, currency="EUR")
        customer = Customer(name="Ana")
        s.add_all([home, fast, customer])
        s.flush()
        ids: dict[str, int] = {"router": router.id, "home": home.id, "fast": fast.id}
        for key, login, ipv4 in (("alice", "alice", None), ("bob", "bob", "10.9.0.2"), ("static", None, "10.9.1.3")):
            svc = Service(
                customer_id=customer.id,
                plan_id=home.id,
                router_id=router.id,
                connection_type=ConnectionType.PPPOE if login else ConnectionType.STATIC,
                pppoe_login=login,
                pppoe_password=box.encrypt(f"pw-{login}-secret") if login else None,
                ipv4=ipv4,
                started_on=date(2026, 1, 1),
            )
            s.add(svc)
            s.flush()
            ops.enqueue_reconcile(s, router.id, reason="service.add", service_id=svc.id)
            ids[key] = svc.id
    return ids


def router_row(sessions: sessionmaker[Session], name: str = "edge1") -> Router:
    with sessions() as s:
        return s.scalars(select(Router).where(Router.name == name)).one()


def op_rows(sessions: sessionmaker[Session]) -> list[RouterOp]:
    with sessions() as s:
        return list(s.scalars(select(RouterOp).order_by(RouterOp.id)))


def audit_actions(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def active(emu: RouterOSEmulator) -> dict[str, dict[str, str]]:
    return {r["name"]: r for r in emu.items("/ppp/active")}


def test_first_push_then_steady_state_on_a_read_only_router(
    sessions: sessionmaker[Session], emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    seed(sessions)
    report = reconcile.reconcile_router(sessions, settings, "edge1")
    assert report.ok, report.error
    assert report.counts == {"add": 4, "change": 0, "remove": 0}
    assert len(report.applied) == 4 and report.ops_done == 3 and report.ops_pending == 0
    assert not report.drift  # the changes were expected: reconciles were pending
    assert {r["name"] for r in emulator.items("/ppp/secret")} == {"alice", "bob"}
    row = router_row(sessions)
    assert (row.status, row.identity, row.last_error) == (RouterStatus.UP, "MikroTik", None)
    assert row.last_sync_at is not None and row.version and row.version.startswith("7.16")
    assert all(op.status is RouterOpStatus.DONE for op in op_rows(sessions))
    assert audit_actions(sessions) == ["router.reconcile"]
    text = json.dumps(report.to_json())
    assert "pw-alice-secret" not in text and "(secret)" in text
    assert "edge1: applied +4 ~0 -0, 4 writes" in report.summary()

    emulator.set_read_only(True)
    writes = emulator.write_count
    again = reconcile.reconcile_router(sessions, settings, "edge1")
    assert again.ok, again.error
    assert (again.plan, again.applied, again.drift) == ((), (), False)
    assert emulator.write_count == writes
    assert audit_actions(sessions) == ["router.reconcile"]


def test_dry_run_plans_and_records_nothing(
    sessions: sessionmaker[Session], emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    seed(sessions)
    report = reconcile.reconcile_router(sessions, settings, "edge1", dry_run=True)
    assert report.ok and report.dry_run
    assert len(report.plan) == 4 and report.applied == ()
    assert report.plan[0].startswith("+ ppp/profile Home 10M: ")
    assert emulator.write_count == 0
    assert all(op.status is RouterOpStatus.PENDING and op.attempts == 0 for op in op_rows(sessions))
    assert router_row(sessions).last_sync_at is None
    assert audit_actions(sessions) == []


def test_throttle_suspend_resume_terminate(
    sessions: sessionmaker[Session], emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    ids = seed(sessions)
    assert reconcile.reconcile_router(sessions, settings, "edge1").ok
    emulator.advance(10)
    assert set(active(emulator)) == {"alice", "bob"}

    with sessions.begin() as s:
        change = set_service_state(s, "admin", ids["alice"], "throttle", "invoice 17 unpaid")
    assert (change.before, change.after, change.changed, len(change.ops)) == ("active", "throttled", True, 2)
    report = reconcile.reconcile_router(sessions, settings, "edge1")
    assert report.ok, report.error
    assert "~ ppp/secret alice: profile 'Home 10M' -> 'edgebill-throttle-2M-1M'" in report.plan
    assert report.disconnected == ("alice",)  # once: the disconnect operation does not drop the redial again
    assert report.ops_done == 2
    emulator.advance(10)
    assert emulator.items("/queue/simple")[0]["name"] == "<pppoe-alice>"
    assert {q["name"]: q["max-limit"] for q in emulator.items("/queue/simple")}["<pppoe-alice>"] == "1000000/2000000"

    with sessions.begin() as s:
        set_service_state(s, "dunning", ids["bob"], ServiceState.SUSPENDED, "60 days overdue")
        set_service_state(s, "dunning", ids["static"], "suspend")
    report = reconcile.reconcile_router(sessions, settings, "edge1")
    assert report.ok, report.error
    secrets = {r["name"]: r for r in emulator.items("/ppp/secret")}
    assert secrets["bob"]["disabled"] == "true"
    listed = {r["address"] for r in emulator.items("/ip/firewall/address-list") if r.get("dynamic") == "false"}
    assert listed == {"10.9.0.2", "10.9.1.3"}
    emulator.advance(30)
    assert "bob" not in active(emulator)

    with sessions.begin() as s:
        set_service_state(s, "admin", ids["bob"], "resume", "paid")
        set_service_state(s, "admin", ids["alice"], "terminate", "moved away")
    report = reconcile.reconcile_router(sessions, settings, "edge1")
    assert report.ok, report.error
    assert {r["name"] for r in emulator.items("/ppp/secret")} == {"bob"}
    emulator.advance(10)
    assert set(active(emulator)) == {"bob"}
    assert reconcile.reconcile_router(sessions, settings, "edge1").plan == ()
    actions = audit_actions(sessions)
    for expected in ("service.throttled", "service.suspended", "service.active", "service.terminated"):
        assert expected in actions


def test_hand_edit_is_drift_and_is_repaired(
    sessions: sessionmaker[Session], emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    seed(sessions)
    reconcile.reconcile_router(sessions, settings, "edge1")
    alice = next(r for r in emulator.items("/ppp/secret") if r["name"] == "alice")
    emulator.call("/ppp/secret/set", {".id": alice[".id"], "profile": "default", "disabled": "yes"})
    emulator.call("/ppp/secret/add", {"name": "carol", "password": "x"})  # someone else's: left alone
    report = reconcile.reconcile_router(sessions, settings, "edge1")
    assert report.ok and report.drift
    assert report.plan == ("~ ppp/secret alice: disabled 'true' -> 'false', profile 'default' -> 'Home 10M'",)
    assert audit_actions(sessions)[-1] == "router.drift"
    assert {r["name"] for r in emulator.items("/ppp/secret")} == {"alice", "bob", "carol"}


def test_router_down_leaves_operations_pending_until_it_returns(
    sessions: sessionmaker[Session], params: MakeParams, settings_of: MakeSettings
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ids = seed(sessions)
    with sessions.begin() as s:
        set_service_state(s, "admin", ids["alice"], "suspend")
    settings = settings_of(params(port, timeout=timedelta(seconds=2)))
    before = utcnow()
    report = reconcile.reconcile_router(sessions, settings, "edge1")
    assert not report.ok and report.error and "edge1" in report.error
    row = router_row(sessions)
    assert row.status is RouterStatus.DOWN and row.last_error == report.error and row.last_sync_at is None
    pending = op_rows(sessions)
    assert [op.status for op in pending] == [RouterOpStatus.PENDING] * 5
    assert all(op.attempts == 1 and op.not_before > before + timedelta(seconds=10) for op in pending)
    assert report.ops_pending == 5

    with RouterOSEmulator(users=USERS, port=port, default_remote_range=POOL) as emu:
        report = reconcile.reconcile_router(sessions, settings, "edge1")
        assert report.ok, report.error
        assert report.ops_done == 5
        assert all(op.status is RouterOpStatus.DONE and op.attempts == 2 for op in op_rows(sessions))
        assert next(r for r in emu.items("/ppp/secret") if r["name"] == "alice")["disabled"] == "true"
    assert router_row(sessions).status is RouterStatus.UP


def test_failure_mid_apply_keeps_the_disconnect_pending(
    sessions: sessionmaker[Session], emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    ids = seed(sessions)
    reconcile.reconcile_router(sessions, settings, "edge1")
    emulator.advance(10)
    with sessions.begin() as s:
        set_service_state(s, "admin", ids["alice"], "throttle")
        set_service_state(s, "admin", ids["bob"], "throttle")
    emulator.fail_nth_write(2, "drop")
    report = reconcile.reconcile_router(sessions, settings, "edge1")
    assert not report.ok and len(report.applied) == 1
    assert [op.status for op in op_rows(sessions)[3:]] == [RouterOpStatus.PENDING] * 4
    report = reconcile.reconcile_router(sessions, settings, "edge1")
    assert report.ok, report.error
    assert all(op.status is RouterOpStatus.DONE for op in op_rows(sessions))
    assert reconcile.reconcile_router(sessions, settings, "edge1").plan == ()


def test_a_queued_disconnect_runs_once(
    sessions: sessionmaker[Session], emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    ids = seed(sessions)
    reconcile.reconcile_router(sessions, settings, "edge1")
    emulator.advance(10)
    with sessions.begin() as s:
        ops.enqueue(s, ids["router"], reconcile.DISCONNECT, {"key": "alice"}, service_id=ids["alice"])
    first = active(emulator)["alice"]["session-id"]
    report = reconcile.reconcile_router(sessions, settings, "edge1")
    assert report.disconnected == ("alice",) and report.ops_done == 1
    emulator.advance(10)
    assert active(emulator)["alice"]["session-id"] != first
    assert reconcile.reconcile_router(sessions, settings, "edge1").disconnected == ()


def test_reconcile_all_runs_routers_concurrently(
    sessions: sessionmaker[Session], params: MakeParams, settings_of: MakeSettings
) -> None:
    with (
        RouterOSEmulator(users=USERS, port=0, default_remote_range=POOL) as one,
        RouterOSEmulator(users=USERS, port=0, default_remote_range=POOL) as two,
    ):
        seed(sessions, "edge1", one.port)
        with sessions.begin() as s:
            add_router(s, "edge2", two.port)
        settings = settings_of(params(one.port, name="edge1"), params(two.port, name="edge2"), params(1, name="gone"))
        reports = reconcile.reconcile_all(sessions, settings)
        assert [r.router for r in reports] == ["edge1", "edge2", "gone"]
        assert reports[0].ok and len(reports[0].applied) == 4
        assert reports[1].ok and reports[1].applied == ()
        assert reports[2].error is not None and "not in the database" in reports[2].error


def test_set_service_state_refuses_bad_requests(sessions: sessionmaker[Session]) -> None:
    ids = seed(sessions)
    with sessions.begin() as s:
        with pytest.raises(Invalid, match="invalid service state 'paused'"):
            set_service_state(s, "admin", ids["alice"], "paused")
        with pytest.raises(NotFound, match="service 999 not found"):
            set_service_state(s, "admin", 999, "throttle")
        with pytest.raises(Invalid, match="one line"):
            set_service_state(s, "admin", ids["alice"], "throttle", "a\nb")
        same = set_service_state(s, "admin", ids["alice"], "resume")
        assert not same.changed and same.ops == ()
        set_service_state(s, "admin", ids["static"], "terminate")
        with pytest.raises(Conflict, match="terminated"):
            set_service_state(s, "admin", ids["static"], "resume")
        static_ops = s.scalars(select(RouterOp).where(RouterOp.service_id == ids["static"])).all()
        assert [op.op for op in static_ops] == ["reconcile", "reconcile"]  # a static service has no session


def test_unknown_router_is_a_one_line_error(sessions: sessionmaker[Session], settings_of: MakeSettings) -> None:
    report = reconcile.reconcile_router(sessions, settings_of(), "nowhere")
    assert report.error == "router 'nowhere' is not in the configuration (configured: none)"
    assert reconcile.retry_delay(1) == timedelta(seconds=15)
    assert reconcile.retry_delay(3) == timedelta(seconds=60)
    assert reconcile.retry_delay(40) == timedelta(hours=1)


def test_reboot_mid_reconcile_then_the_next_run_converges(
    sessions: sessionmaker[Session], emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    seed(sessions)
    emulator.fail_nth_write(3, "drop-after")  # the third write lands, then the router goes away...
    first = reconcile.reconcile_router(sessions, settings, "edge1")
    assert not first.ok and len(first.applied) == 2
    emulator.reboot()  # ...and comes back rebooted
    second = reconcile.reconcile_router(sessions, settings, "edge1")
    assert second.ok, second.error
    assert second.counts["add"] == 1  # the three entries written before survived the reboot
    assert all(op.status is RouterOpStatus.DONE for op in op_rows(sessions))
    assert reconcile.reconcile_router(sessions, settings, "edge1").plan == ()


def test_a_router_setting_no_driver_accepts_is_reported(
    sessions: sessionmaker[Session], params: MakeParams, settings_of: MakeSettings
) -> None:
    seed(sessions)
    report = reconcile.reconcile_router(sessions, settings_of(params(1, encoding="no-such-codec")), "edge1")
    assert report.error == "router edge1: unknown encoding 'no-such-codec'"


def test_a_change_committed_while_a_run_loads_is_never_lost(
    postgres_url: str, emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    """Another process (the dashboard, the dunning run) commits a suspension or a release at every point of a run
    in turn: either the run pushes it, or its operation stays queued and the next run does."""
    engine = make_engine(postgres_url)
    upgrade(engine)
    sessions = session_factory(engine)
    try:
        ids = seed(sessions)
        assert reconcile.reconcile_router(sessions, settings, "edge1").ok

        def bob_disabled() -> str:
            return next(r for r in emulator.items("/ppp/secret") if r["name"] == "bob")["disabled"]

        point = 0
        while True:  # until the change lands after the run's last statement
            point += 1
            action, expected = ("suspend", "true") if point % 2 else ("resume", "false")
            seen = 0

            def commit_change(*_: object, point: int = point, action: str = action) -> None:
                nonlocal seen
                seen += 1
                if seen == point:
                    with sessions.begin() as s:
                        set_service_state(s, "dunning", ids["bob"], action)

            event.listen(engine, "before_cursor_execute", commit_change)
            try:
                assert reconcile.reconcile_router(sessions, settings, "edge1").ok
            finally:
                event.remove(engine, "before_cursor_execute", commit_change)
            if seen < point:
                assert point > 4  # the run's load alone makes more statements than that
                break
            with sessions() as s:
                queued = ops.due_ops(s, ids["router"])
            if not queued:
                assert bob_disabled() == expected, f"change committed before statement {point} was lost"
            report = reconcile.reconcile_router(sessions, settings, "edge1")
            assert report.ok and bob_disabled() == expected
            assert all(op.status is RouterOpStatus.DONE for op in op_rows(sessions))
    finally:
        engine.dispose()


# --- scoped runs -------------------------------------------------------------------------------------------------


def secrets_on(emu: RouterOSEmulator) -> dict[str, dict[str, str]]:
    return {r["name"]: r for r in emu.items("/ppp/secret")}


def ops_of(sessions: sessionmaker[Session], service_id: int) -> list[RouterOpStatus]:
    with sessions() as s:
        return list(s.scalars(select(RouterOp.status).where(RouterOp.service_id == service_id).order_by(RouterOp.id)))


def test_a_scoped_run_pushes_one_change_and_completes_only_its_operations(
    sessions: sessionmaker[Session], emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    ids = seed(sessions)
    assert reconcile.reconcile_router(sessions, settings, "edge1").ok
    bob = secrets_on(emulator)["bob"]
    emulator.call("/ppp/secret/set", {".id": bob[".id"], "profile": "default"})  # a hand edit on another subscriber
    with sessions.begin() as s:
        set_service_plan(s, "admin", ids["alice"], "Fast 50M")
        set_service_state(s, "admin", ids["static"], "throttle")  # queued, but not in the scope
    with sessions() as s:
        assert ops.due_services(s, "edge1") == frozenset({ids["alice"], ids["static"]})

    report = reconcile.reconcile_router(sessions, settings, "edge1", services=[ids["alice"]])
    assert report.ok, report.error
    assert [line.split(":")[0] for line in report.plan] == ["+ ppp/profile Fast 50M", "~ ppp/secret alice"]
    assert "~ ppp/secret alice: profile 'Home 10M' -> 'Fast 50M'" in report.plan
    assert (report.scope, report.drift, report.ops_done, report.ops_pending) == ((ids["alice"],), False, 1, 0)
    assert "scope: 1 service," in report.summary()
    assert report.to_json()["scope"] == [ids["alice"]]
    assert secrets_on(emulator)["alice"]["profile"] == "Fast 50M"
    assert secrets_on(emulator)["bob"]["profile"] == "default"  # left alone by the scoped run
    assert ops_of(sessions, ids["alice"]) == [RouterOpStatus.DONE] * 2
    assert ops_of(sessions, ids["static"]) == [RouterOpStatus.DONE, RouterOpStatus.PENDING]
    row = router_row(sessions)
    assert row.status is RouterStatus.UP and row.last_sync_at is not None and row.last_error is None
    with sessions() as s:
        entry = s.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert entry is not None and entry.action == "router.reconcile"
        assert entry.after is not None and entry.after["scope"] == [ids["alice"]]
        assert ops.due_services(s, "edge1") == frozenset({ids["static"]})

    # The same scoped run again writes nothing; a full run repairs bob and pushes the throttle.
    emulator.set_read_only(True)
    again = reconcile.reconcile_router(sessions, settings, "edge1", services=[ids["alice"]])
    assert again.ok and again.plan == () and again.ops_done == 0
    emulator.set_read_only(False)
    full = reconcile.reconcile_router(sessions, settings, "edge1")
    assert full.ok and full.scope is None and "scope" not in full.summary()
    assert "~ ppp/secret bob: profile 'default' -> 'Home 10M'" in full.plan
    assert any(line.startswith("~ queue/simple svc-") for line in full.plan)
    assert all(op.status is RouterOpStatus.DONE for op in op_rows(sessions))
    with sessions() as s:
        assert ops.due_services(s, "edge1") == frozenset()


def test_a_scoped_run_of_a_terminated_service_removes_its_entries(
    sessions: sessionmaker[Session], emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    ids = seed(sessions)
    assert reconcile.reconcile_router(sessions, settings, "edge1").ok
    with sessions.begin() as s:
        set_service_state(s, "dunning", ids["bob"], "suspend")
        set_service_state(s, "dunning", ids["static"], "suspend")
    assert reconcile.reconcile_router(sessions, settings, "edge1", services=[ids["bob"], ids["static"]]).ok
    listed = {r["address"] for r in emulator.items("/ip/firewall/address-list") if r.get("dynamic") == "false"}
    assert listed == {"10.9.0.2", "10.9.1.3"}

    with sessions.begin() as s:
        set_service_state(s, "admin", ids["bob"], "terminate", "moved away")
    report = reconcile.reconcile_router(sessions, settings, "edge1", services=[ids["bob"]])
    assert report.ok, report.error
    assert sorted(report.plan) == ["- ip/firewall/address-list edgebill-overdue|10.9.0.2", "- ppp/secret bob"]
    assert set(secrets_on(emulator)) == {"alice"}
    listed = {r["address"] for r in emulator.items("/ip/firewall/address-list") if r.get("dynamic") == "false"}
    assert listed == {"10.9.1.3"}
    assert ops_of(sessions, ids["bob"])[-2:] == [RouterOpStatus.DONE] * 2  # the reconcile and the disconnect
    assert reconcile.reconcile_router(sessions, settings, "edge1").plan == ()


def test_a_scoped_run_falls_back_to_a_full_run_when_the_driver_cannot_read_the_scope(
    sessions: sessionmaker[Session], emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    class WholeTables(MikrotikDriver):
        """The MikroTik driver as one that can only read whole tables."""

        def read_state(self, scope: Scope | None = None) -> tuple[Resource, ...]:
            if scope is not None:
                raise ScopeUnavailable(f"{self.name}: whole tables only")
            return super().read_state()

    ids = seed(sessions)
    assert reconcile.reconcile_router(sessions, settings, "edge1").ok
    with sessions.begin() as s:
        set_service_plan(s, "admin", ids["alice"], "Fast 50M")
        set_service_state(s, "admin", ids["bob"], "suspend")
    report = reconcile.reconcile_router(
        sessions, settings, "edge1", services=[ids["alice"]], factory=lambda params: WholeTables(params)
    )
    assert report.ok, report.error
    assert report.scope is None and not report.drift
    assert "~ ppp/secret alice: profile 'Home 10M' -> 'Fast 50M'" in report.plan
    assert any(line.startswith("~ ppp/secret bob: disabled 'false' -> 'true'") for line in report.plan)
    assert all(op.status is RouterOpStatus.DONE for op in op_rows(sessions))  # as any full run does


def test_a_scoped_run_refuses_services_it_does_not_carry(
    sessions: sessionmaker[Session], emulator: RouterOSEmulator, settings: EngineSettings
) -> None:
    ids = seed(sessions)
    other = add_service_on(sessions, "edge2")
    for services, error in (
        ([999], "service 999 not found"),
        ([ids["alice"], other], f"service {other} is on router 'edge2', not 'edge1'"),
    ):
        report = reconcile.reconcile_router(sessions, settings, "edge1", services=services)
        assert report.error == error
    assert emulator.write_count == 0
    assert all(op.status is RouterOpStatus.PENDING and op.attempts == 0 for op in op_rows(sessions))
    with sessions.begin() as s:
        ops.enqueue_reconcile(s, ids["router"], reason="router.added")
    with sessions() as s:
        assert ops.due_services(s, "edge1") is None  # an operation for the whole router: run it in full


def add_service_on(sessions: sessionmaker[Session], router: str) -> int:
    """A static service on a new router ``router``, on the first plan."""
    with sessions.begin() as s:
        row = add_router(s, router, 1)
        plan = s.scalars(select(Plan).order_by(Plan.id)).first()
        customer = s.scalars(select(Customer)).first()
        assert plan is not None and customer is not None
        svc = Service(
            customer_id=customer.id,
            plan_id=plan.id,
            router_id=row.id,
            connection_type=ConnectionType.STATIC,
            ipv4="10.9.9.9",
            started_on=date(2026, 1, 1),
        )
        s.add(svc)
        s.flush()
        return svc.id


def test_the_cli_runs_a_scoped_reconcile(
    sessions: sessionmaker[Session],
    db_url: str,
    make_config: MakeConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "secrets").mkdir()
    write_secret(tmp_path / "secrets" / "data.key", KEY.decode("ascii"))  # the key the seeded passwords use
    with RouterOSEmulator(users={"edgebill": "router-api-password"}, port=0, default_remote_range=POOL) as emu:
        routers = [{"name": "edge1", "kind": "mikrotik", "host": "127.0.0.1", "port": emu.port, "timeout": "5s"}]
        config = make_config(database_url=db_url, routers=routers)
        ids = seed(sessions, port=emu.port)
        other = add_service_on(sessions, "edge2")

        def edgebill(*argv: str) -> tuple[int, str, str]:
            code = main(["--config", str(config), "reconcile", *argv])
            captured = capsys.readouterr()
            return code, captured.out, captured.err

        code, out, err = edgebill("--service", str(ids["static"]), "--service", str(ids["static"]))
        assert code == 0, err
        assert out.startswith("edge1: applied +2 ~0 -0, scope: 1 service, 2 writes, ops 1 done")
        assert "+ queue/simple svc-" in out
        assert [r["name"] for r in emu.items("/queue/simple")] == [f"svc-{ids['static']}"]
        assert emu.items("/ppp/secret") == []

        code, out, err = edgebill("--service", str(ids["alice"]), "--router", "edge1", "--dry-run", "--json")
        assert code == 0, err
        [report] = json.loads(out)
        assert report["scope"] == [ids["alice"]] and report["dry_run"]
        assert [line.split(":")[0] for line in report["plan"]] == ["+ ppp/secret alice"]

        assert edgebill("--service", "999") == (1, "", "edgebill: error: service 999 not found\n")
        assert edgebill("--router", "edge1", "--service", str(other)) == (
            1,
            "",
            f"edgebill: error: service {other} is on router 'edge2', not 'edge1'\n",
        )
        assert edgebill("--service", "x")[0] == 2
