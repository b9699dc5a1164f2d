"""The Linux gateway driver against a real gateway: OpenSSH, the kernel's tc and nftables, traffic by iperf3.

One lab gateway (network namespaces) serves the whole module; every test reconciles the state it needs first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import IPv4Address

import pytest

import drivers
from daemon.config import load_settings
from drivers.base import ApplyError, CommandError, ScopeUnavailable
from drivers.linux import LinuxTcDriver
from drivers.linux.ssh import SshSession, SshTarget
from drivers.models import Action, Scope
from lab.linux_gw import LinuxGateway
from lab.linux_gw.gateway import PORTAL_BODY, UPSTREAM_BODY
from policies.desired import ConnectionType, DesiredState, EnforcementSpec, ProfileSpec, ServiceState, SubscriberSpec
from policies.rates import RateLimit
from tests.conftest import MakeConfig
from tests.drivers import contract
from tests.drivers.linux.params import running_gateway, settings_for
from tests.support import wait_for

pytestmark = pytest.mark.root

PLAN = RateLimit(10_000_000, 5_000_000)
FASTER = RateLimit(20_000_000, 10_000_000)
THROTTLE = RateLimit(1_000_000, 1_000_000)
TOLERANCE = 0.10


@pytest.fixture(scope="module")
def lab() -> Iterator[LinuxGateway]:
    with running_gateway(4) as gw:
        yield gw


@pytest.fixture(scope="module")
def driver(lab: LinuxGateway) -> Iterator[LinuxTcDriver]:
    with LinuxTcDriver(settings_for(lab)) as drv:
        yield drv


def desired(
    gw: LinuxGateway, *, first: RateLimit = PLAN, first_state: ServiceState = ServiceState.ACTIVE, profile: str = "10M"
) -> DesiredState:
    subs = [
        SubscriberSpec(f"svc-{i}", i, ConnectionType.STATIC, "10M", PLAN, address=addr)
        for i, addr in enumerate(gw.subscribers)
    ]
    subs[0] = replace(subs[0], rate=first, state=first_state, profile=profile)
    profiles = (ProfileSpec("10M", PLAN), ProfileSpec("20M", FASTER), ProfileSpec("throttle", THROTTLE))
    return DesiredState(profiles, tuple(subs), EnforcementSpec(payment_page_url=gw.payment_page_url))


def within(measured: float, rate: int) -> bool:
    return abs(measured - rate) <= TOLERANCE * rate


def assert_rates(gw: LinuxGateway, addr: IPv4Address, rate: RateLimit) -> None:
    down = gw.iperf(addr, download=True).bits_per_second
    up = gw.iperf(addr, download=False).bits_per_second
    assert within(down, rate.download), f"download {down / 1e6:.2f} Mbit/s, plan {rate.download / 1e6:g}"
    assert within(up, rate.upload), f"upload {up / 1e6:.2f} Mbit/s, plan {rate.upload / 1e6:g}"


@pytest.fixture
def foreign_qdisc(lab: LinuxGateway) -> Iterator[LinuxTcDriver]:
    """A driver shaping ``up0``, whose root qdisc someone else installed (removed afterwards)."""
    lab.gateway("tc", "qdisc", "replace", "dev", "up0", "root", "handle", "1:", "htb", "default", "10")
    try:
        other = replace(settings_for(lab), interface="up0", upload_ifb=None)
        with LinuxTcDriver(other) as drv:
            yield drv
    finally:
        lab.gateway("tc", "qdisc", "del", "dev", "up0", "root")


class TestLinuxContract(contract.DriverContract):
    """The shared driver contract, against the lab gateway."""

    @pytest.fixture
    def driver(self, driver: LinuxTcDriver) -> LinuxTcDriver:
        return driver

    @pytest.fixture
    def desired(self, lab: LinuxGateway) -> DesiredState:
        return desired(lab)

    @pytest.fixture
    def changed(self, lab: LinuxGateway) -> DesiredState:
        return desired(lab, first=FASTER, profile="20M")

    @pytest.fixture
    def scoped_change(self, lab: LinuxGateway) -> tuple[DesiredState, frozenset[str]]:
        return desired(lab, first=FASTER, profile="20M"), frozenset({"svc-0"})

    @pytest.fixture
    def unowned(self, foreign_qdisc: LinuxTcDriver) -> LinuxTcDriver:
        return foreign_qdisc


def test_plan_rates_hold_then_a_plan_change_takes_effect(driver: LinuxTcDriver, lab: LinuxGateway) -> None:
    addr = lab.subscribers[0]
    contract.check_second_apply_writes_nothing(driver, desired(lab))
    assert_rates(lab, addr, PLAN)

    plan, _ = contract.reconcile(driver, desired(lab, first=FASTER, profile="20M"))
    assert {(c.action, c.kind) for c in plan.changes} == {(Action.CHANGE, "tc/subscriber")}
    assert len(plan.changes) == 2  # the class in each direction, nothing else
    down = lab.iperf(addr, download=True).bits_per_second
    assert within(down, FASTER.download), f"download {down / 1e6:.2f} Mbit/s after the change"


def test_throttle_suspend_and_payment(driver: LinuxTcDriver, lab: LinuxGateway) -> None:
    addr, other = lab.subscribers[0], lab.subscribers[1]
    contract.reconcile(driver, desired(lab, first=THROTTLE, first_state=ServiceState.THROTTLED, profile="throttle"))
    down = lab.iperf(addr, download=True).bits_per_second
    assert within(down, THROTTLE.download), f"throttled download {down / 1e6:.2f} Mbit/s"

    contract.reconcile(driver, desired(lab, first_state=ServiceState.SUSPENDED))
    assert driver.plan(desired(lab, first_state=ServiceState.SUSPENDED), driver.read_state()).empty
    # Web browsing lands on the payment page, the portal itself answers, anything else is dropped.
    assert lab.http_get(addr, lab.upstream_url) == PORTAL_BODY + "\n"
    assert lab.http_get(addr, lab.payment_page_url) == PORTAL_BODY + "\n"
    assert not lab.can_connect(addr, lab.upstream_address, 5201)
    # Others are untouched.
    assert lab.http_get(other, lab.upstream_url) == UPSTREAM_BODY + "\n"

    contract.reconcile(driver, desired(lab))
    assert lab.http_get(addr, lab.upstream_url) == UPSTREAM_BODY + "\n"
    assert_rates(lab, addr, PLAN)


def test_manual_edits_are_detected_and_repaired(driver: LinuxTcDriver, lab: LinuxGateway) -> None:
    want = desired(lab)
    contract.reconcile(driver, want)
    lab.gateway(
        "sh",
        "-c",
        "tc class change dev sub0 parent 1001: classid 1001:c htb rate 1mbit ceil 1mbit quantum 1514; "
        "tc filter del dev ifb0 parent 1001: prio 1 handle 2:b:1 protocol ip u32; "
        "nft delete element inet edgebill subscribers-1001 '{ 100.64.1.11 }'; "
        "nft flush chain inet edgebill prerouting",
    )
    plan = driver.plan(want, driver.read_state())
    got = {(c.kind, c.key, tuple(sorted(c.fields))) for c in plan.changes}
    assert ("tc/subscriber", "down|1001:c", ("class",)) in got
    assert ("tc/subscriber", "up|1001:c", ("match",)) in got
    assert ("nft/subscriber", "100.64.1.11", ("key",)) in got
    assert any(kind == "nft/table" for kind, _, _ in got)
    driver.apply(plan)
    assert driver.plan(want, driver.read_state()).empty
    assert lab.http_get(lab.subscribers[0], lab.upstream_url) == UPSTREAM_BODY + "\n"


def test_drift_is_found_when_reads_reuse_what_they_parsed_before(driver: LinuxTcDriver, lab: LinuxGateway) -> None:
    """Reads parse again only what the gateway prints differently: a manual edit still shows up, exactly."""
    want = desired(lab)
    contract.reconcile(driver, want)
    assert driver.plan(want, driver.read_state()).empty
    assert driver.plan(want, driver.read_state()).empty
    lab.gateway(
        "sh",
        "-c",
        "tc class change dev ifb0 parent 1001: classid 1001:c htb rate 2mbit ceil 2mbit quantum 1514; "
        "tc filter del dev sub0 parent 1001: prio 1 handle 2:b:1 protocol ip u32",
    )
    plan = driver.plan(want, driver.read_state())
    got = {(c.kind, c.key): (dict(c.before or {}), dict(c.fields)) for c in plan.changes}
    assert got == {
        ("tc/subscriber", "up|1001:c"): (
            {"class": "rate 2Mbit ceil 2Mbit quantum 1514"},
            {"class": "rate 5Mbit ceil 5Mbit quantum 1514"},
        ),
        ("tc/subscriber", "down|1001:c"): ({"match": "none"}, {"match": "dst 100.64.1.11/32"}),
    }
    driver.apply(plan)
    assert driver.plan(want, driver.read_state()).empty


def test_a_wiped_gateway_is_rebuilt_and_counters_start_a_new_epoch(driver: LinuxTcDriver, lab: LinuxGateway) -> None:
    want = desired(lab)
    contract.reconcile(driver, want)
    lab.iperf(lab.subscribers[0], download=True, seconds=1, omit=0)
    before = {s.key: s for s in driver.counters()}
    assert before["svc-0"].bytes_out > 100_000
    assert before["svc-0"].bytes_in > 0
    again = {s.key: s for s in driver.counters()}
    assert again["svc-0"].epoch == before["svc-0"].epoch
    assert again["svc-0"].bytes_out >= before["svc-0"].bytes_out

    # What a reboot leaves: no qdiscs, no ifb, no nftables table.
    lab.gateway(
        "sh",
        "-c",
        "tc qdisc del dev sub0 root; tc qdisc del dev sub0 ingress; ip link del dev ifb0; "
        "nft delete table inet edgebill",
    )
    assert driver.counters() == ()
    plan, _ = contract.reconcile(driver, want)
    assert {c.action for c in plan.changes} == {Action.ADD}
    assert driver.plan(want, driver.read_state()).empty
    after = {s.key: s for s in driver.counters()}
    assert after["svc-0"].epoch != before["svc-0"].epoch
    assert after["svc-0"].bytes_out < before["svc-0"].bytes_out


def test_a_qdisc_someone_else_installed_is_reported_and_left_alone(
    foreign_qdisc: LinuxTcDriver, lab: LinuxGateway
) -> None:
    plan = contract.check_unowned_untouched(foreign_qdisc, desired(lab))
    assert [(c.kind, c.key) for c in plan.conflicts] == [("tc/qdisc", "up0|root")]
    assert not any(c.kind.startswith("tc/") for c in plan.changes)


def test_a_failed_write_names_the_change_and_what_was_applied(lab: LinuxGateway) -> None:
    missing = replace(settings_for(lab), interface="nosuch0", upload_ifb=None)
    with LinuxTcDriver(missing) as drv:
        plan = drv.plan(desired(lab), drv.read_state())
        with pytest.raises(ApplyError) as info:
            drv.apply(plan)
    err = info.value
    assert err.failed.kind == "tc/qdisc" and err.failed.key == "nosuch0|root"
    assert isinstance(err.cause, CommandError)
    assert "nosuch0" in str(err) or "Cannot find device" in str(err)
    assert all(c.kind != "nft/table" for c in err.applied)


def test_the_daemon_configuration_drives_the_gateway(lab: LinuxGateway, make_config: MakeConfig) -> None:
    path = make_config(
        routers=[
            {
                "name": "lab-gw",
                "kind": "linux",
                "host": lab.host,
                "port": lab.port,
                "username": "root",
                "ssh_key_file": str(lab.key_file),
                "known_hosts_file": str(lab.known_hosts_file),
                "interface": lab.interface,
                "upload_ifb": lab.upload_ifb,
                "leaf_qdisc": "pfifo",
                "subnets": [str(lab.subnet)],
            }
        ]
    )
    settings = load_settings(path).router("lab-gw")
    with drivers.create(settings) as router:
        assert isinstance(router, LinuxTcDriver)
        contract.check_second_apply_writes_nothing(router, desired(lab))


def test_renaming_the_address_list_moves_suspended_addresses(driver: LinuxTcDriver, lab: LinuxGateway) -> None:
    addr = lab.subscribers[0]
    suspended = desired(lab, first_state=ServiceState.SUSPENDED)
    contract.reconcile(driver, suspended)
    renamed = replace(suspended, enforcement=replace(suspended.enforcement, address_list="overdue-2"))
    plan = driver.plan(renamed, driver.read_state())
    assert {c.kind for c in plan.changes} == {"nft/table", "nft/suspended"}
    driver.apply(plan)
    driver.apply(plan)  # writes are idempotent: the same change set again converges
    assert driver.plan(renamed, driver.read_state()).empty
    listed = lab.gateway("nft", "list", "table", "inet", "edgebill")
    assert "edgebill-overdue" not in listed and "overdue-2" in listed
    assert lab.http_get(addr, lab.upstream_url) == PORTAL_BODY + "\n"

    # Removing a subscriber twice over is as safe.
    fewer = replace(desired(lab), subscribers=desired(lab).subscribers[1:])
    plan = driver.plan(fewer, driver.read_state())
    driver.apply(plan)
    driver.apply(plan)
    assert driver.plan(fewer, driver.read_state()).empty
    contract.reconcile(driver, desired(lab))
    assert lab.http_get(addr, lab.upstream_url) == UPSTREAM_BODY + "\n"


def test_runs_scoped_to_one_subscriber(driver: LinuxTcDriver, lab: LinuxGateway) -> None:
    """A plan change, a suspension, a release, a termination and a new subscriber, each pushed by a run that reads
    and writes only that subscriber; another subscriber's drift is left for a full run."""
    addr, other = lab.subscribers[0], lab.subscribers[1]
    base = desired(lab)
    plan = contract.check_scoped_run(driver, base, desired(lab, first=FASTER, profile="20M"), {"svc-0"})
    assert {(c.kind, c.key) for c in plan.changes} == {("tc/subscriber", "down|1001:b"), ("tc/subscriber", "up|1001:b")}
    assert_rates(lab, addr, FASTER)

    # Someone slows another subscriber down by hand: a scoped run does not see it, a full run repairs it.
    contract.reconcile(driver, base)
    lab.gateway("tc", "class", "change", "dev", "sub0", "parent", "1001:", "classid", "1001:c", "htb", "rate", "1mbit")
    suspended = desired(lab, first_state=ServiceState.SUSPENDED)
    plan, _ = contract.scoped_reconcile(driver, suspended, {"svc-0"})
    assert [(c.kind, c.key) for c in plan.changes] == [("nft/suspended", str(addr))]
    assert lab.http_get(addr, lab.upstream_url) == PORTAL_BODY + "\n"
    assert "rate 1Mbit" in lab.gateway("tc", "class", "show", "dev", "sub0", "classid", "1001:c")
    full = driver.plan(suspended, driver.read_state())
    assert [(c.kind, c.key) for c in full.changes] == [("tc/subscriber", "down|1001:c")]

    contract.check_scoped_run(driver, desired(lab, first_state=ServiceState.SUSPENDED), base, {"svc-0"})
    assert lab.http_get(addr, lab.upstream_url) == UPSTREAM_BODY + "\n"
    assert lab.http_get(other, lab.upstream_url) == UPSTREAM_BODY + "\n"

    # A terminated subscriber is gone entirely; its /24 stays for the others.
    gone = replace(base, subscribers=base.subscribers[1:])
    plan = contract.check_scoped_run(driver, base, gone, {"svc-0"})
    assert {c.action for c in plan.changes} == {Action.REMOVE}
    assert "1001:b" not in lab.gateway("tc", "class", "show", "dev", "sub0", "parent", "1001:")
    assert str(addr) not in lab.gateway("nft", "list", "set", "inet", "edgebill", "subscribers-1001")

    # A subscriber in a /24 the gateway does not carry yet: its group, filters and key set are created.
    new = SubscriberSpec("svc-new", 99, ConnectionType.STATIC, "10M", PLAN, address=IPv4Address("100.64.7.20"))
    grown = replace(base, subscribers=(*base.subscribers, new))
    plan = contract.check_scoped_run(driver, base, grown, {"svc-new"})
    assert ("tc/group", "down|eb:1007") in {(c.kind, c.key) for c in plan.changes}
    assert "100.64.7.20" in lab.gateway("nft", "list", "set", "inet", "edgebill", "subscribers-1007")

    # Its /24 and key set go with the last subscriber in it, in a full run.
    contract.reconcile(driver, base)
    assert "subscribers-1007" not in lab.gateway("nft", "list", "table", "inet", "edgebill")
    assert driver.plan(base, driver.read_state()).empty


def test_a_scope_falls_back_to_a_full_run_when_the_tree_is_gone(driver: LinuxTcDriver, lab: LinuxGateway) -> None:
    contract.reconcile(driver, desired(lab))
    lab.gateway("tc", "qdisc", "del", "dev", "sub0", "root")
    with pytest.raises(ScopeUnavailable):
        driver.read_state(Scope.of(desired(lab), {"svc-0"}))
    with LinuxTcDriver(settings_for(lab, name="never-read")) as fresh, pytest.raises(ScopeUnavailable):
        fresh.read_state(Scope.of(desired(lab), {"svc-0"}))
    contract.reconcile(driver, desired(lab))
    assert driver.plan(desired(lab), driver.read_state()).empty


def ssh_logins(gw: LinuxGateway) -> int:
    """SSH connections the gateway's sshd holds now."""
    return len(gw.gateway("ss", "-Htn", "state", "established", "( sport = :22 )").splitlines())


def test_the_daemon_keeps_one_session_per_gateway(driver: LinuxTcDriver, lab: LinuxGateway) -> None:
    """In the daemon's router pool, every run for a gateway uses the one SSH session; one-shot commands log out
    with their driver, and the pool's session closes with the pool."""
    before = ssh_logins(lab)
    with drivers.RouterPool() as pool:
        for _ in range(3):
            with pool.lease(settings_for(lab, name="kept")) as router:
                router.facts()
        assert ssh_logins(lab) == before + 1
    with drivers.create(settings_for(lab, name="once")) as router:
        router.facts()
    wait_for(lambda: ssh_logins(lab) == before, "the kept session to close")


def test_a_slow_command_does_not_hold_up_another(lab: LinuxGateway) -> None:
    """Two threads' commands run at once over the one SSH connection (a shell each): a push is not queued behind
    a long counter read."""
    before = ssh_logins(lab)
    session = SshSession(
        SshTarget(
            host=lab.host,
            port=lab.port,
            username="root",
            timeout=20,
            key_file=lab.key_file,
            known_hosts=lab.known_hosts_file,
        )
    )
    slow_done = threading.Event()

    def slow() -> None:
        session.run("sh -s", b"sleep 5\n")
        slow_done.set()

    worker = threading.Thread(target=slow)
    try:
        worker.start()
        wait_for(lambda: "sleep 5" in lab.gateway("ps", "-eo", "args"), "the slow command to start")
        assert session.run("sh -s", b"echo quick\n").stdout == "quick\n"
        assert not slow_done.is_set()
        assert ssh_logins(lab) == before + 1
        worker.join()
        assert slow_done.is_set()
    finally:
        worker.join()
        session.close()
