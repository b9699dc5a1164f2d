"""Values a router cannot carry: refused at every entry point with one message, and never silent when found.

Real parts throughout: the RouterOS emulator over TCP, the reconcile engine, the CLI, SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from daemon.cli import main
from daemon.config import Settings, load_settings
from daemon.db import Plan, RouterOp, RouterOpStatus, Service, make_engine, session_factory, upgrade
from daemon.reconcile import reconcile_router
from daemon.security import SecretBox
from daemon.services import customers, ops, plans, routers, services
from daemon.services.diagnosis import diagnose_service
from daemon.services.errors import Invalid
from lab.routeros import RouterOSEmulator
from lab.routeros.model import Item, Table
from policies import naming
from policies.desired import ConnectionType
from tests.conftest import MakeConfig
from tests.daemon.test_cli import snapshot, write
from tests.routeros import POOL

#: Logins the RouterOS driver refuses: an item id, a list, a dynamic interface name.
BAD_LOGINS = ("*1", "x,y", "<pppoe-x>")


def reason_of(login: str) -> str:
    with pytest.raises(naming.NamingError) as caught:
        naming.pppoe_login(login)
    return str(caught.value)


@dataclass
class Site:
    """An initialised installation whose router ``edge1`` is an emulated RouterOS router."""

    config: Path
    settings: Settings
    sessions: sessionmaker[Session]
    emu: RouterOSEmulator
    db_url: str
    password_file: str
    capsys: pytest.CaptureFixture[str]

    def edgebill(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--config", str(self.config), *argv])
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    def box(self) -> SecretBox:
        return SecretBox(self.settings.security.fernet_keys())

    def insert_unchecked(self, login: str, *, queue: bool) -> int:
        """A PPPoE service written straight to the database, as one stored before today's rule would be."""
        with self.sessions.begin() as s:
            router = routers.load_router(s, "edge1")
            svc = Service(
                customer_id=1,
                plan_id=plans.load_plan(s, "home-10").id,
                router_id=router.id,
                connection_type=ConnectionType.PPPOE,
                pppoe_login=login,
                pppoe_password=self.box().encrypt("pw-secret-1"),
                started_on=date(2026, 1, 1),
            )
            s.add(svc)
            s.flush()
            if queue:
                ops.enqueue_reconcile(s, router.id, reason="service.add", service_id=svc.id)
            return svc.id

    def service_ops(self, service_id: int) -> list[RouterOp]:
        with self.sessions() as s:
            return list(s.scalars(select(RouterOp).where(RouterOp.service_id == service_id).order_by(RouterOp.id)))


@pytest.fixture
def site(db_url: str, make_config: MakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Site]:
    with RouterOSEmulator(users={"edgebill": "router-api-password"}, port=0, default_remote_range=POOL) as emu:
        config = make_config(
            database_url=db_url,
            routers=[{"name": "edge1", "kind": "mikrotik", "host": "127.0.0.1", "port": emu.port, "timeout": "5s"}],
        )
        admin = write(tmp_path / "admin.pw", "correct horse battery\n")
        password = write(tmp_path / "pppoe.pw", "pw-secret-2\n")
        assert main(["--config", str(config), "init", "--admin-password-file", admin]) == 0
        assert main(["--config", str(config), "plan", "add", "home-10", "--download", "10M", "--upload", "5M",
                     "--price", "30.00"]) == 0  # fmt: skip
        assert main(["--config", str(config), "customer", "add", "Ana Lima"]) == 0
        engine = make_engine(db_url)
        try:
            settings = load_settings(config)
            yield Site(config, settings, session_factory(engine), emu, db_url, password, capsys)
        finally:
            engine.dispose()


@pytest.mark.parametrize("login", BAD_LOGINS)
def test_every_entry_point_refuses_a_login_the_router_cannot_carry(site: Site, login: str) -> None:
    reason = reason_of(login)
    before = snapshot(site.db_url)

    code, out, err = site.edgebill(
        "service", "add", "--customer", "1", "--plan", "home-10", "--router", "edge1",
        "--pppoe", login, "--password-file", site.password_file,
    )  # fmt: skip
    assert (code, out, err) == (1, "", f"edgebill: error: {reason}\n")

    for source in (site.settings, site.box()):  # with the router's configuration, and with the key alone
        with site.sessions.begin() as s, pytest.raises(Invalid) as caught:
            services.add_service(
                s,
                "test",
                source,
                customer_id=1,
                plan_name="home-10",
                router_name="edge1",
                started_on=date(2026, 1, 1),
                pppoe_login=login,
                pppoe_password="pw-secret-1",
            )
        assert str(caught.value) == reason
    assert snapshot(site.db_url) == before  # nothing written, no operation queued


def test_a_stored_service_the_router_refuses_is_never_silent_and_completes_once_fixed(site: Site) -> None:
    # A good service and one stored before the rule, both queued as the services layer queues them.
    code, _, err = site.edgebill(
        "service", "add", "--customer", "1", "--plan", "home-10", "--router", "edge1",
        "--pppoe", "ana", "--password-file", site.password_file,
    )  # fmt: skip
    assert code == 0, err
    bad = site.insert_unchecked("*1", queue=True)
    reason = f"ppp/secret *1: {reason_of('*1')}"

    # The dry run shows the conflict, never "the router matches", and fails.
    code, out, _ = site.edgebill("reconcile", "--dry-run")
    assert code == 1
    assert f"  ! conflict: {reason}" in out.splitlines()
    assert "no changes" not in out and "1 conflict" in out
    code, out, _ = site.edgebill("reconcile", "--dry-run", "--json")
    [report] = json.loads(out)
    assert code == 1 and report["conflicts"] == [reason] and report["conflicted_services"] == [bad]

    # The run writes what it can, and the conflicted service's operation stays pending with the reason.
    code, out, _ = site.edgebill("reconcile")
    assert code == 1 and f"  ! conflict: {reason}" in out
    assert [r["name"] for r in site.emu.items("/ppp/secret")] == ["ana"]
    [op] = site.service_ops(bad)
    assert (op.status, op.last_error, op.attempts) == (RouterOpStatus.PENDING, reason, 1)
    assert op.payload["conflict"] == reason
    with site.sessions() as s:
        router = routers.get_router(s, "edge1")
        assert router.last_error == f"1 conflict (not on the router): {reason}"
        assert ops.conflicts_by_router(s) == {router.id: {bad: reason}}
        diagnosis = diagnose_service(s, bad, site.settings.billing, today=date(2026, 1, 10))
        assert diagnosis.headline == f"Not on the router: {reason}"
        assert diagnosis.conflict == reason
        assert diagnosis.findings[0].severity == "problem" and diagnosis.findings[0].title == "Not on router edge1"

    code, out, _ = site.edgebill("service", "show", str(bad), "--json")
    assert code == 0 and json.loads(out)["not_on_router"] == reason and json.loads(out)["state"] == "active"
    code, out, _ = site.edgebill("router", "list", "--json")
    assert [r["last_error"] for r in json.loads(out)] == [f"1 conflict (not on the router): {reason}"]

    # Each later run keeps it pending, backing off; the good service stays done and untouched.
    code, _, _ = site.edgebill("reconcile")
    [op] = site.service_ops(bad)
    assert code == 1 and op.status is RouterOpStatus.PENDING and op.attempts == 2

    # Fixed (the login corrected by hand): the next run provisions it and completes the operation.
    with site.sessions.begin() as s:
        s.execute(update(Service).where(Service.id == bad).values(pppoe_login="ana-2"))
    code, out, err = site.edgebill("reconcile")
    assert code == 0, out + err
    assert sorted(r["name"] for r in site.emu.items("/ppp/secret")) == ["ana", "ana-2"]
    [op] = site.service_ops(bad)
    assert op.status is RouterOpStatus.DONE and op.last_error is None
    with site.sessions() as s:
        assert routers.get_router(s, "edge1").last_error is None
        assert ops.conflicts_by_router(s) == {}
        assert diagnose_service(s, bad, site.settings.billing, today=date(2026, 1, 10)).headline.startswith("Active")
    code, out, _ = site.edgebill("reconcile", "--dry-run")
    assert code == 0 and "no changes: the router matches the database" in out
    code, out, _ = site.edgebill("service", "show", str(bad), "--json")
    assert json.loads(out)["not_on_router"] is None


@pytest.mark.parametrize("login", BAD_LOGINS)
def test_a_conflict_without_a_queued_operation_is_given_one(site: Site, login: str) -> None:
    bad = site.insert_unchecked(login, queue=False)  # its operation long marked done, or never queued
    report = reconcile_router(site.sessions, site.settings, "edge1")
    assert report.ok and not report.clean and report.conflicted == (bad,)
    [op] = site.service_ops(bad)
    assert op.status is RouterOpStatus.PENDING and op.payload["reason"] == "router.conflict"
    assert op.last_error == f"ppp/secret {login}: {reason_of(login)}"
    # The retry (a scoped run, as the daemon's queue job makes) still finds it and keeps the one operation.
    report = reconcile_router(site.sessions, site.settings, "edge1", services=[bad])
    assert report.conflicts and report.ops_pending == 1
    assert [o.status for o in site.service_ops(bad)] == [RouterOpStatus.PENDING]
    with site.sessions() as s:  # the scoped run kept the router's record of the conflict
        assert (routers.get_router(s, "edge1").last_error or "").startswith("1 conflict")


def test_a_key_held_by_the_routers_own_entry_keeps_the_operation_pending_until_removed(site: Site) -> None:
    site.emu.call("/ppp/secret/add", {"name": "ana", "password": "theirs", "service": "pppoe"})
    code, _, err = site.edgebill(
        "service", "add", "--customer", "1", "--plan", "home-10", "--router", "edge1",
        "--pppoe", "ana", "--password-file", site.password_file,
    )  # fmt: skip
    assert code == 0, err
    report = reconcile_router(site.sessions, site.settings, "edge1")
    assert report.conflicts == ("ppp/secret ana: an entry with this key exists and is not managed by edgebill",)
    [op] = site.service_ops(1)
    assert op.status is RouterOpStatus.PENDING and "not managed by edgebill" in (op.last_error or "")

    [theirs] = site.emu.items("/ppp/secret")
    site.emu.call("/ppp/secret/remove", {".id": theirs[".id"]})
    report = reconcile_router(site.sessions, site.settings, "edge1")
    assert report.clean and report.ops_done == 1
    assert [o.status for o in site.service_ops(1)] == [RouterOpStatus.DONE]


def test_a_linux_gateway_refuses_at_entry_what_it_cannot_shape(
    db_url: str, make_config: MakeConfig, tmp_path: Path
) -> None:
    key = write(tmp_path / "id_ed25519", "not a key, never read by these checks\n")
    hosts = write(tmp_path / "known_hosts", "")
    gateway = {
        "name": "gw1", "kind": "linux", "host": "127.0.0.1", "port": 22, "username": "root",
        "ssh_key_file": key, "known_hosts_file": hosts, "interface": "eth1",
        "subnets": ["100.64.0.0/24", "100.128.0.0/24"],
    }  # fmt: skip
    settings = load_settings(make_config(database_url=db_url, routers=[gateway]))
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        sessions = session_factory(engine)
        with sessions.begin() as s:
            routers.sync_routers(s, settings)
            plans.add_plan(s, "test", settings, name="home-10", download="10M", upload="5M", price="30.00")
            customer = customers.add_customer(s, "test", name="Ana")
        cases = [
            (None, None, "100.64.1.9", "address 100.64.1.9 is outside this gateway's subnets 100.64.0.0/24, 100"),
            ("ana", "pw-1", None, "a linux gateway shapes by address"),
            (None, None, "100.128.0.9", "100.128.0.0/24 and 100.64.0.0/24 would share a shaping group"),
        ]
        with sessions.begin() as s:
            first = services.add_service(
                s, "test", settings, customer_id=customer.id, plan_name="home-10", router_name="gw1", ipv4="100.64.0.8"
            )
        for login, password, address, message in cases:
            with sessions.begin() as s, pytest.raises(Invalid, match=message) as caught:
                services.add_service(
                    s,
                    "test",
                    settings,
                    customer_id=customer.id,
                    plan_name="home-10",
                    router_name="gw1",
                    pppoe_login=login,
                    pppoe_password=password,
                    ipv4=address,
                )
            assert str(caught.value).startswith("router 'gw1' cannot carry this service: ")
        with sessions.begin() as s:
            ok = services.add_service(
                s, "test", settings, customer_id=customer.id, plan_name="home-10", router_name="gw1", ipv4="100.64.0.9"
            )
        assert (first.ipv4, ok.ipv4) == ("100.64.0.8", str(IPv4Address("100.64.0.9")))
    finally:
        engine.dispose()


def test_names_that_collide_with_edgebills_own_are_refused_at_entry(site: Site) -> None:
    before = snapshot(site.db_url)
    code, _, err = site.edgebill(
        "plan", "add", "edgebill-blocked", "--download", "1M", "--upload", "1M", "--price", "1"
    )  # fmt: skip
    assert (code, err) == (
        1,
        "edgebill: error: plan name 'edgebill-blocked' starts with 'edgebill-', which edgebill keeps for its own "
        "profiles\n",
    )
    code, _, err = site.edgebill(
        "service", "add", "--customer", "1", "--plan", "home-10", "--router", "edge1",
        "--pppoe", "svc-3", "--password-file", site.password_file,
    )  # fmt: skip
    assert (code, err) == (1, "edgebill: error: invalid PPPoE login 'svc-3': svc-<number> names static-IP services\n")
    assert snapshot(site.db_url) == before


def test_a_stored_service_the_others_contradict_is_left_out_alone(site: Site) -> None:
    """One bad service (a plan named like edgebill's own profiles) never stops the router's other services."""
    code, _, err = site.edgebill(
        "service", "add", "--customer", "1", "--plan", "home-10", "--router", "edge1", "--ip", "10.9.0.7"
    )
    assert code == 0, err
    bad = site.insert_unchecked("bea", queue=True)
    with site.sessions.begin() as s:  # the good service moves to another plan; the bad one's is renamed by hand
        home_20 = plans.add_plan(s, "test", site.settings, name="home-20", download="20M", upload="5M", price="40")
        s.execute(update(Service).where(Service.id == 1).values(plan_id=home_20.id))
        s.execute(update(Plan).where(Plan.name == "home-10").values(name="edgebill-x"))
    report = reconcile_router(site.sessions, site.settings, "edge1")
    reason = f"service {bad}: plan name 'edgebill-x' starts with the reserved prefix 'edgebill-'"
    assert report.ok and report.conflicts == (reason,) and report.conflicted == (bad,)
    assert [q["name"] for q in site.emu.items("/queue/simple")] == ["svc-1"]  # the other service is provisioned
    [op] = site.service_ops(bad)
    assert op.status is RouterOpStatus.PENDING and op.last_error == reason
    assert [o.status for o in site.service_ops(1)] == [RouterOpStatus.DONE]


def test_a_write_the_router_does_not_keep_is_not_done(site: Site) -> None:
    """A router that keeps another value than the one written (a script rewriting it): the read-back differs, so
    the service's operation stays pending and says why, instead of being counted as done."""

    def rewrite(table: Table, item: Item, dead: bool) -> None:
        if table.spec.path == "/ppp/secret" and not dead and item.values.get("name") == "ana":
            item.values["remote-address"] = "10.255.0.1"

    site.emu.router.device.watch(rewrite)
    code, _, err = site.edgebill(
        "service", "add", "--customer", "1", "--plan", "home-10", "--router", "edge1",
        "--pppoe", "ana", "--password-file", site.password_file,
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = site.edgebill("reconcile")
    assert code == 1 and "1 changes still pending after apply" in out
    [op] = site.service_ops(1)
    reason = "ppp/secret ana: still differs after it was written (the router may spell it differently)"
    assert (op.status, op.last_error) == (RouterOpStatus.PENDING, reason)
    with site.sessions() as s:
        assert diagnose_service(s, 1, site.settings.billing, today=date(2026, 1, 10)).conflict == reason
