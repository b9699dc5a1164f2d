"""The MikroTik driver against the RouterOS emulator over TCP: what lands on the router, and how it converges."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from ipaddress import IPv4Address

import pytest

import drivers
from drivers.base import ApplyError, AuthError, ConnectError, ConnectTimeout, Driver
from drivers.mikrotik import MikrotikDriver
from drivers.models import ChangeSet
from lab.routeros import Quirks, RouterOSEmulator
from policies.desired import ConnectionType, DesiredState, EnforcementSpec, ProfileSpec, ServiceState, SubscriberSpec
from policies.rates import Burst, RateLimit
from tests.drivers import contract
from tests.routeros import POOL, USERS, MakeParams

R10 = RateLimit(download=10_000_000, upload=5_000_000)
R20 = RateLimit(20_000_000, 10_000_000, Burst(40_000_000, 20_000_000, 15_000_000, 8_000_000, 16))
SLOW = RateLimit(1_000_000, 512_000)
THROTTLE = "edgebill-throttle-1M-512k"
LIST = "edgebill-overdue"


def sub(
    key: str, sid: int, profile: str = "10M", state: ServiceState = ServiceState.ACTIVE, address: str | None = None
) -> SubscriberSpec:
    rate = {"10M": R10, "20M": R20, THROTTLE: SLOW}[profile]
    return SubscriberSpec(
        key=key,
        service_id=sid,
        connection=ConnectionType.PPPOE,
        profile=profile,
        rate=rate,
        state=state,
        login=key,
        password=f"pw-{key}-secret",
        address=IPv4Address(address) if address else None,
    )


def static(sid: int, address: str, state: ServiceState = ServiceState.ACTIVE, rate: RateLimit = R20) -> SubscriberSpec:
    return SubscriberSpec(
        f"svc-{sid}",
        sid,
        ConnectionType.STATIC,
        "20M",
        rate,
        state,
        address=IPv4Address(address),
    )


def state(*subs: SubscriberSpec, mode: str = "disable") -> DesiredState:
    names = {s.profile for s in subs}
    profiles = tuple(ProfileSpec(n, {"10M": R10, "20M": R20, THROTTLE: SLOW}[n]) for n in sorted(names))
    enforcement = EnforcementSpec(address_list=LIST, suspend_mode="block" if mode == "block" else "disable")
    return DesiredState(profiles, subs, enforcement)


BASE = state(sub("alice", 1), sub("bob", 2, "20M", address="10.9.0.2"), static(3, "10.9.1.3"))


def reconcile(driver: MikrotikDriver, desired: DesiredState) -> ChangeSet:
    plan = driver.plan(desired, driver.read_state())
    driver.apply(plan)
    return plan


def row(emu: RouterOSEmulator, path: str, **match: str) -> dict[str, str]:
    rows = [r for r in emu.items(path) if all(r.get(k) == v for k, v in match.items())]
    assert len(rows) == 1, rows
    return rows[0]


def active_names(emu: RouterOSEmulator) -> set[str]:
    return {r["name"] for r in emu.items("/ppp/active")}


# --- the shared contract --------------------------------------------------------------------------------------

FASTER = state(sub("alice", 1, "20M"), sub("bob", 2, "20M", address="10.9.0.2"), static(3, "10.9.1.3", rate=R10))


@pytest.fixture
def with_unowned(driver: MikrotikDriver, emulator: RouterOSEmulator) -> MikrotikDriver:
    """``driver``, on a router holding entries edgebill does not own: one under a name edgebill wants."""
    emulator.call("/ppp/profile/add", {"name": "10M", "rate-limit": "1M/1M"})
    emulator.call("/ppp/profile/add", {"name": "staff", "rate-limit": "100M/100M", "comment": "office"})
    emulator.call("/ppp/secret/add", {"name": "carol", "profile": "staff", "password": "x"})
    emulator.call("/queue/simple/add", {"name": "svc-3", "target": "10.9.9.9", "max-limit": "1M/1M"})
    emulator.call("/ip/firewall/address-list/add", {"list": LIST, "address": "10.9.8.8"})
    return driver


class TestMikrotikContract(contract.DriverContract):
    """The shared driver contract, against the RouterOS emulator."""

    @pytest.fixture
    def driver(self, driver: MikrotikDriver) -> MikrotikDriver:
        return driver

    @pytest.fixture
    def desired(self) -> DesiredState:
        return BASE

    @pytest.fixture
    def changed(self) -> DesiredState:
        return FASTER

    @pytest.fixture
    def scoped_change(self) -> tuple[DesiredState, frozenset[str]]:
        bob_on_10m = state(sub("alice", 1), sub("bob", 2, "10M", address="10.9.0.2"), static(3, "10.9.1.3"))
        return bob_on_10m, frozenset({"bob"})

    @pytest.fixture
    def unowned(self, with_unowned: MikrotikDriver) -> MikrotikDriver:
        return with_unowned

    @pytest.fixture
    def carry_traffic(self, emulator: RouterOSEmulator) -> Callable[[], None]:
        return lambda: emulator.advance(10)


# --- what lands on the router ---------------------------------------------------------------------------------


def test_assign_writes_profiles_secrets_and_queues(driver: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    reconcile(driver, BASE)
    profile = row(emulator, "/ppp/profile", name="20M")
    assert profile["rate-limit"].split()[0] in ("10000000/20000000", "10M/20M")
    assert profile["comment"] == "edgebill"
    alice = row(emulator, "/ppp/secret", name="alice")
    assert (alice["service"], alice["profile"], alice["disabled"], alice["comment"]) == (
        "pppoe",
        "10M",
        "false",
        "edgebill:svc=1",
    )
    assert row(emulator, "/ppp/secret", name="bob")["remote-address"] == "10.9.0.2"
    queue = row(emulator, "/queue/simple", name="svc-3")
    assert (queue["target"], queue["max-limit"], queue["burst-time"]) == ("10.9.1.3/32", "10000000/20000000", "16s/16s")
    emulator.advance(10)
    assert active_names(emulator) == {"alice", "bob"}
    # The session's own dynamic queue carries the profile's limit: upload/download.
    assert row(emulator, "/queue/simple", name="<pppoe-alice>")["max-limit"] == "5000000/10000000"


def test_change_plan_disconnects_and_the_session_redials_with_the_new_profile(
    driver: MikrotikDriver, emulator: RouterOSEmulator
) -> None:
    reconcile(driver, BASE)
    emulator.advance(10)
    assert "alice" in active_names(emulator)
    upgraded = state(sub("alice", 1, "20M"), sub("bob", 2, "20M", address="10.9.0.2"), static(3, "10.9.1.3"))
    plan = driver.plan(upgraded, driver.read_state())
    assert [c.describe() for c in plan.changes] == [
        "~ ppp/secret alice: profile '10M' -> '20M'",
        "- ppp/profile 10M",
    ]
    result = driver.apply(plan)
    assert result.disconnected == ("alice",)
    assert "alice" not in active_names(emulator)
    emulator.advance(10)
    assert "alice" in active_names(emulator)
    assert row(emulator, "/queue/simple", name="<pppoe-alice>")["max-limit"] == "10000000/20000000"


def test_throttle_lists_sessions_through_the_profile(driver: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    reconcile(driver, BASE)
    emulator.advance(10)
    throttled = state(
        sub("alice", 1, THROTTLE, ServiceState.THROTTLED),
        sub("bob", 2, THROTTLE, ServiceState.THROTTLED, address="10.9.0.2"),
        static(3, "10.9.1.3", ServiceState.THROTTLED, rate=SLOW),
    )
    plan = reconcile(driver, throttled)
    assert set(plan.disconnect) == {"alice", "bob"}
    assert row(emulator, "/ppp/profile", name=THROTTLE)["address-list"] == LIST
    assert row(emulator, "/queue/simple", name="svc-3")["max-limit"] == "512000/1000000"
    # Static addresses are listed explicitly; the redialled session without one is listed by the router.
    listed = {
        (r["address"], r.get("dynamic")) for r in emulator.items("/ip/firewall/address-list") if r["list"] == LIST
    }
    assert ("10.9.0.2", "false") in listed and ("10.9.1.3", "false") in listed
    emulator.advance(10)
    alice_address = row(emulator, "/ppp/active", name="alice")["address"]
    assert (alice_address, "true") in {
        (r["address"], r.get("dynamic")) for r in emulator.items("/ip/firewall/address-list") if r["list"] == LIST
    }
    assert row(emulator, "/queue/simple", name="<pppoe-alice>")["max-limit"] == "512000/1000000"
    # Resume: back on the plan, out of the list.
    reconcile(driver, BASE)
    assert not [r for r in emulator.items("/ip/firewall/address-list") if r.get("dynamic") == "false"]
    assert driver.plan(BASE, driver.read_state()).empty


def test_suspend_disables_and_terminate_removes(driver: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    reconcile(driver, BASE)
    emulator.advance(10)
    suspended = state(
        sub("alice", 1, state=ServiceState.SUSPENDED), sub("bob", 2, "20M", address="10.9.0.2"), static(3, "10.9.1.3")
    )
    plan = reconcile(driver, suspended)
    assert plan.disconnect == ("alice",)
    assert row(emulator, "/ppp/secret", name="alice")["disabled"] == "true"
    emulator.advance(30)
    assert "alice" not in active_names(emulator)
    terminated = state(sub("bob", 2, "20M", address="10.9.0.2"), static(3, "10.9.1.3"))
    plan = reconcile(driver, terminated)
    assert plan.disconnect == ("alice",)
    assert not [r for r in emulator.items("/ppp/secret") if r["name"] == "alice"]
    assert not [r for r in emulator.items("/ppp/profile") if r["name"] == "10M"]


def test_suspend_in_block_mode_keeps_the_secret_enabled_and_lists_the_address(
    driver: MikrotikDriver, emulator: RouterOSEmulator
) -> None:
    reconcile(driver, BASE)
    blocked = state(sub("alice", 1), sub("bob", 2, THROTTLE, ServiceState.SUSPENDED, address="10.9.0.2"), mode="block")
    reconcile(driver, blocked)
    assert row(emulator, "/ppp/secret", name="bob")["disabled"] == "false"
    assert row(emulator, "/ip/firewall/address-list", list=LIST, address="10.9.0.2")["comment"] == "edgebill:svc=2"
    assert driver.plan(blocked, driver.read_state()).empty


# --- drift, ownership ---------------------------------------------------------------------------------------------


def test_hand_edits_are_repaired(driver: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    reconcile(driver, BASE)
    emulator.call("/ppp/secret/set", {".id": row(emulator, "/ppp/secret", name="alice")[".id"], "profile": "default"})
    emulator.call("/ppp/profile/set", {".id": row(emulator, "/ppp/profile", name="10M")[".id"], "rate-limit": "50M"})
    emulator.call("/queue/simple/remove", {".id": row(emulator, "/queue/simple", name="svc-3")[".id"]})
    emulator.call(
        "/ppp/secret/unset", {".id": row(emulator, "/ppp/secret", name="bob")[".id"], "value-name": "remote-address"}
    )
    plan = driver.plan(BASE, driver.read_state())
    assert sorted(c.describe() for c in plan.changes) == sorted(
        [
            "~ ppp/profile 10M: rate-limit '50000000/50000000' -> '5000000/10000000'",
            "~ ppp/secret alice: profile 'default' -> '10M'",
            "~ ppp/secret bob: remote-address '' -> '10.9.0.2'",
            "+ queue/simple svc-3: burst-limit='20000000/40000000', burst-threshold='8000000/15000000', "
            "burst-time='16s/16s', comment='edgebill:svc=3', disabled='false', max-limit='10000000/20000000', "
            "name='svc-3', target='10.9.1.3/32'",
        ]
    )
    driver.apply(plan)
    assert driver.plan(BASE, driver.read_state()).empty
    # Unsetting works the other way too: a static address dropped from the desired state is unset.
    no_address = state(sub("alice", 1), sub("bob", 2, "20M"), static(3, "10.9.1.3"))
    reconcile(driver, no_address)
    assert "remote-address" not in row(emulator, "/ppp/secret", name="bob")
    assert driver.plan(no_address, driver.read_state()).empty


def test_entries_we_do_not_own_are_never_touched(with_unowned: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    driver = with_unowned
    before = {path: emulator.items(path) for path in ("/ppp/profile", "/ppp/secret", "/queue/simple")}
    contract.check_unowned_untouched(driver, BASE)
    plan = driver.plan(BASE, driver.read_state())
    assert {(c.kind, c.key) for c in plan.conflicts} == {("ppp/profile", "10M"), ("queue/simple", "svc-3")}
    for path, rows in before.items():
        for old in rows:
            now = [r for r in emulator.items(path) if r[".id"] == old[".id"]]
            assert now and {k: now[0][k] for k in old if k in ("name", "rate-limit", "max-limit", "profile")} == {
                k: old[k] for k in old if k in ("name", "rate-limit", "max-limit", "profile")
            }
    assert row(emulator, "/ip/firewall/address-list", address="10.9.8.8")["list"] == LIST


# --- failures ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["drop", "drop-after", "trap"])
def test_failure_on_the_nth_write_then_a_rerun_converges(
    driver: MikrotikDriver, emulator: RouterOSEmulator, mode: str
) -> None:
    emulator.fail_nth_write(3, mode)  # type: ignore[arg-type]
    plan = driver.plan(BASE, driver.read_state())
    with pytest.raises(ApplyError) as info:
        driver.apply(plan)
    assert len(info.value.applied) == 2
    assert info.value.retryable is (mode != "trap")
    # The next reconcile reads again (reconnecting once) and finishes the job.
    reconcile(driver, BASE)
    assert driver.plan(BASE, driver.read_state()).empty


def test_reapplying_a_partly_applied_change_set_converges(driver: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    plan = driver.plan(BASE, driver.read_state())
    emulator.fail_nth_write(4, "drop-after")
    with pytest.raises(ApplyError):
        driver.apply(plan)
    driver.apply(plan)  # the same change set again: adds that landed are taken over, not duplicated
    assert driver.plan(BASE, driver.read_state()).empty


def test_reboot_mid_reconcile(driver: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    plan = driver.plan(BASE, driver.read_state())
    driver.apply(ChangeSet(plan.changes[:3]))
    emulator.reboot()
    with pytest.raises(ApplyError) as info:
        driver.apply(ChangeSet(plan.changes[3:]))
    assert isinstance(info.value.cause, ConnectError)
    reconcile(driver, BASE)
    assert driver.plan(BASE, driver.read_state()).empty
    assert driver.facts().uptime_seconds < 60


def test_steady_state_writes_nothing_on_a_read_only_router(driver: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    reconcile(driver, BASE)
    emulator.advance(10)
    emulator.set_read_only(True)
    writes = emulator.write_count
    contract.check_second_apply_writes_nothing(driver, BASE)
    assert emulator.write_count == writes
    # A write it refuses is a command error, not retryable.
    with pytest.raises(ApplyError) as info:
        reconcile(driver, state(sub("dave", 4)))
    assert not info.value.retryable


def test_disconnect_drops_only_the_named_session(driver: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    reconcile(driver, BASE)
    emulator.advance(10)
    assert driver.disconnect("alice") is True
    assert active_names(emulator) == {"bob"}
    assert driver.disconnect("alice") is False


def test_counters_follow_sessions_and_queues(driver: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    reconcile(driver, BASE)
    emulator.advance(10)
    first = {s.key: s for s in driver.counters()}
    assert set(first) == {"alice", "bob", "svc-3"}
    emulator.advance(10)
    second = {s.key: s for s in driver.counters()}
    assert second["alice"].bytes_out > first["alice"].bytes_out  # download grows
    assert second["alice"].epoch == first["alice"].epoch
    driver.disconnect("alice")
    emulator.advance(10)
    third = {s.key: s for s in driver.counters()}
    assert third["alice"].epoch != first["alice"].epoch


# --- sessions, auth, TLS, encoding ------------------------------------------------------------------------------


def test_wrong_password_is_an_auth_error(emulator: RouterOSEmulator, params: MakeParams) -> None:
    with pytest.raises(AuthError, match="login refused") as info, MikrotikDriver(params(emulator.port, secret="nope")):
        pass
    assert not info.value.retryable
    assert "nope" not in str(info.value)


def test_unreachable_router_is_a_retryable_connect_error(params: MakeParams) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectError) as info, MikrotikDriver(params(port)):
        pass
    assert info.value.retryable


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_a_silent_router_times_out(silent_port: int, params: MakeParams) -> None:
    with pytest.raises(ConnectTimeout), MikrotikDriver(params(silent_port, timeout=timedelta(seconds=0.3))):
        pass


def test_api_ssl(emulator: RouterOSEmulator, params: MakeParams) -> None:
    with RouterOSEmulator(users=USERS, port=0, tls_port=0, default_remote_range=POOL) as emu:
        assert emu.tls_port is not None
        over_tls = params(emu.tls_port, tls=True, tls_verify=False)
        with MikrotikDriver(over_tls) as d:
            contract.check_second_apply_writes_nothing(d, BASE)
        with pytest.raises(AuthError, match="certificate"), MikrotikDriver(replace(over_tls, tls_verify=True)):
            pass


def test_names_in_the_routers_encoding_round_trip(emulator: RouterOSEmulator, params: MakeParams) -> None:
    desired = DesiredState(
        (ProfileSpec("Café 10M", R10),),
        (replace(sub("josé", 7), profile="Café 10M", password="pw7"),),
    )
    with MikrotikDriver(params(emulator.port, encoding="cp1252")) as d:
        assert d.plan(desired, d.read_state()).conflicts == ()
        contract.check_second_apply_writes_nothing(d, desired)
        secret = next(r for r in d.read_state() if r.kind == "ppp/secret")
        assert (secret.key, secret.fields["profile"]) == ("josé", "Café 10M")
    # Read with the wrong codec the names differ: the encoding setting matters.
    with MikrotikDriver(params(emulator.port, encoding="utf-8")) as d:
        assert "josé" not in {r.key for r in d.read_state()}


def test_passwords_never_reach_the_logs(
    driver: MikrotikDriver, emulator: RouterOSEmulator, caplog: pytest.LogCaptureFixture, params: MakeParams
) -> None:
    caplog.set_level(logging.DEBUG)
    quoted = replace(sub("quinn", 9), password='it\'s"quoted"-secret')
    reconcile(driver, replace(BASE, subscribers=(*BASE.subscribers, quoted)))
    with MikrotikDriver(params(emulator.port)):
        pass
    assert "pw-alice-secret" not in caplog.text
    assert "quoted" not in caplog.text
    assert "=password=(secret)" in caplog.text  # the API words were logged, redacted
    assert "=password=secret" not in caplog.text
    assert "alice" in caplog.text


def test_an_idle_connection_dropped_by_the_router_is_reopened_for_reads(
    driver: MikrotikDriver, emulator: RouterOSEmulator
) -> None:
    reconcile(driver, BASE)
    emulator.drop_connections()
    assert driver.plan(BASE, driver.read_state()).empty
    assert emulator.connection_count() == 1


@pytest.mark.parametrize(
    ("version", "quirks"),
    [("7.18", Quirks()), ("7.16", Quirks(normalise_rate_limit=True)), ("6.49.10", Quirks())],
)
def test_router_dialects_converge_without_rewrites(version: str, quirks: Quirks, params: MakeParams) -> None:
    with (
        RouterOSEmulator(users=USERS, port=0, version=version, quirks=quirks, default_remote_range=POOL) as emu,
        MikrotikDriver(params(emu.port)) as d,
    ):
        assert d.read_state()  # the built-in profiles; an empty menu answers !empty on 7.18+
        contract.check_second_apply_writes_nothing(d, BASE)
        assert d.facts().version.startswith(version)


def test_the_driver_kind_creates_this_driver(params: MakeParams) -> None:
    router: Driver = drivers.create(params(1))  # mypy checks MikrotikDriver against the Driver protocol
    assert isinstance(router, MikrotikDriver) and router.kind == "mikrotik"
    typed: Driver = MikrotikDriver(params(1))
    typed.close()  # closing a driver that never opened is fine
