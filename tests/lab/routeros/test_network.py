"""The living network behind the emulator, the clock, faults and persistence."""

from __future__ import annotations

import json
import time
from pathlib import Path

import librouteros
import pytest
from librouteros.api import Api
from librouteros.exceptions import ConnectionClosed, TrapError

from lab.routeros import RouterOSEmulator
from lab.routeros.testing import running_router, running_routers
from tests.lab.routeros.conftest import PASSWORD, USER


def _plan(router: RouterOSEmulator, rate: str = "5M/10M") -> None:
    router.call("/ip/pool/add", {"name": "subs", "ranges": "10.20.0.10-10.20.0.12"})
    router.call(
        "/ppp/profile/add",
        {
            "name": "plan",
            "rate-limit": rate,
            "local-address": "10.20.0.1",
            "remote-address": "subs",
            "address-list": "subscribers",
        },
    )


def _active(router: RouterOSEmulator) -> dict[str, dict[str, str]]:
    return {row["name"]: row for row in router.items("/ppp/active")}


def test_enabled_secret_dials_in(router: RouterOSEmulator) -> None:
    _plan(router)
    router.call("/ppp/secret/add", {"name": "alice", "profile": "plan", "service": "pppoe"})
    assert router.items("/ppp/active") == []  # the CPE dials on the clock, not inside the add
    router.advance(1)
    session = _active(router)["alice"]
    assert session["address"] == "10.20.0.10" and session["service"] == "pppoe"
    assert session["session-id"].startswith("0x81") and session["uptime"] == "1s"
    assert len(session["caller-id"]) == 17 and session["radius"] == "false"
    assert "bytes" not in session and "rx-byte" not in session  # counters are not in /ppp/active
    interface = next(row for row in router.items("/interface") if row["name"] == "<pppoe-alice>")
    assert (interface["type"], interface["dynamic"]) == ("pppoe-in", "true")
    queue = next(row for row in router.items("/queue/simple") if row["name"] == "<pppoe-alice>")
    # rate-limit is rx/tx from the router's view (rx = client upload): the same order as upload/download.
    assert (queue["max-limit"], queue["target"], queue["dynamic"]) == ("5000000/10000000", "<pppoe-alice>", "true")
    listed = [row for row in router.items("/ip/firewall/address-list") if row["list"] == "subscribers"]
    assert [(row["address"], row["dynamic"]) for row in listed] == [("10.20.0.10", "true")]
    assert router.items("/ppp/secret")[0]["last-caller-id"] == session["caller-id"]


def test_remove_active_disconnects_then_redials(router: RouterOSEmulator, api: Api) -> None:
    _plan(router)
    router.call("/ppp/secret/add", {"name": "bob", "profile": "plan"})
    router.advance(1)
    first = _active(router)["bob"]
    api.path("ppp", "active").remove(first[".id"])
    assert "bob" not in _active(router)
    assert not [row for row in router.items("/interface") if row["name"] == "<pppoe-bob>"]
    assert not [row for row in router.items("/queue/simple") if row["dynamic"] == "true"]
    secret = router.items("/ppp/secret")[0]
    assert secret["last-disconnect-reason"] == "hung-up" and "last-logged-out" in secret
    router.advance(4.9)
    assert "bob" not in _active(router)
    router.advance(0.2)
    second = _active(router)["bob"]
    assert second[".id"] != first[".id"] and second["session-id"] != first["session-id"]


def test_redial_uses_the_current_profile(router: RouterOSEmulator, api: Api) -> None:
    _plan(router)
    router.call("/ppp/profile/add", {"name": "slow", "rate-limit": "256k/512k", "remote-address": "subs"})
    router.call("/ppp/secret/add", {"name": "carol", "profile": "plan"})
    router.advance(1)
    api.path("ppp", "secret").update(**{".id": "carol", "profile": "slow"})
    # Changing the profile does not touch the running session...
    assert next(r for r in router.items("/queue/simple") if r["dynamic"] == "true")["max-limit"] == "5000000/10000000"
    api.path("ppp", "active").remove(_active(router)["carol"][".id"])
    router.advance(5)
    # ...the next session gets it.
    assert next(r for r in router.items("/queue/simple") if r["dynamic"] == "true")["max-limit"] == "256000/512000"


def test_disabling_a_secret_keeps_the_session_but_it_stays_offline_after(router: RouterOSEmulator, api: Api) -> None:
    _plan(router)
    router.call("/ppp/secret/add", {"name": "dave", "profile": "plan"})
    router.advance(1)
    tuple(api("/ppp/secret/disable", **{".id": "dave"}))
    router.advance(30)
    assert "dave" in _active(router)
    api.path("ppp", "active").remove(_active(router)["dave"][".id"])
    router.advance(60)
    assert "dave" not in _active(router)
    tuple(api("/ppp/secret/enable", **{".id": "dave"}))
    router.advance(0.5)
    assert "dave" in _active(router)


def test_disabled_and_removed_secrets_never_dial(router: RouterOSEmulator) -> None:
    _plan(router)
    router.call("/ppp/secret/add", {"name": "off", "profile": "plan", "disabled": "yes"})
    router.call("/ppp/secret/add", {"name": "l2tp-only", "profile": "plan", "service": "l2tp"})
    router.call("/ppp/secret/add", {"name": "gone", "profile": "plan"})
    router.call("/ppp/secret/remove", {".id": "gone"})
    router.advance(120)
    assert _active(router) == {}


def test_pool_exhaustion_keeps_the_extra_subscriber_offline(router: RouterOSEmulator) -> None:
    _plan(router)  # three addresses
    for index in range(4):
        router.call("/ppp/secret/add", {"name": f"s{index}", "profile": "plan"})
    router.advance(1)
    assert sorted(row["address"] for row in router.items("/ppp/active")) == ["10.20.0.10", "10.20.0.11", "10.20.0.12"]
    router.call("/ppp/active/remove", {".id": _active(router)["s0"][".id"]})
    router.advance(10)
    assert len(_active(router)) == 3  # whoever dials first gets the freed address


def test_no_address_means_no_session_unless_a_fallback_range_is_set(router: RouterOSEmulator) -> None:
    router.call("/ppp/secret/add", {"name": "nowhere"})
    router.advance(30)
    assert router.items("/ppp/active") == []  # IPCP has nothing to offer: the session never comes up
    with running_router(users={USER: PASSWORD}, default_remote_range="100.64.0.0/29") as lenient:
        lenient.call("/ppp/secret/add", {"name": "somewhere"})
        lenient.advance(1)
        assert [row["address"] for row in lenient.items("/ppp/active")] == ["100.64.0.1"]


def test_counters_grow_and_stay_within_the_limit(router: RouterOSEmulator) -> None:
    _plan(router, rate="1M/2M")
    router.call("/ppp/secret/add", {"name": "eve", "profile": "plan"})
    router.advance(1)
    router.advance(3600)
    queue = next(row for row in router.items("/queue/simple") if row["name"] == "<pppoe-eve>")
    up, down = (int(part) for part in queue["bytes"].split("/"))
    assert 0 < up <= 1_000_000 * 3600 // 8
    assert 0 < down <= 2_000_000 * 3600 // 8
    interface = next(row for row in router.items("/interface") if row["name"] == "<pppoe-eve>")
    assert (int(interface["rx-byte"]), int(interface["tx-byte"])) == (up, down)  # rx = client upload
    rate_up, rate_down = (int(part) for part in queue["rate"].split("/"))
    assert rate_up <= 1_000_000 and rate_down <= 2_000_000


def test_static_queue_limits_a_session_without_rate_limit(router: RouterOSEmulator) -> None:
    router.call("/ppp/secret/add", {"name": "frank", "remote-address": "10.30.0.5"})
    router.call("/queue/simple/add", {"name": "frank", "target": "10.30.0.5", "max-limit": "100k/200k"})
    router.advance(600)
    queue = router.items("/queue/simple")[0]
    up, down = (int(part) for part in queue["bytes"].split("/"))
    assert 0 < down <= 200_000 * 600 // 8 and up <= 100_000 * 600 // 8


def test_traffic_is_reproducible_and_independent_of_step_size() -> None:
    def run(steps: list[float], seed: int) -> str:
        with running_router(users={USER: PASSWORD}, seed=seed) as router:
            router.call("/ppp/secret/add", {"name": "gina", "remote-address": "10.0.0.2"})
            for step in steps:
                router.advance(step)
            return next(r for r in router.items("/interface") if r["name"] == "<pppoe-gina>")["tx-byte"]

    coarse = run([0, 1800], seed=3)
    fine = run([0] + [60.0] * 30, seed=3)
    assert abs(int(coarse) - int(fine)) <= 30  # equal up to rounding to whole bytes per step
    assert run([0, 1800], seed=3) == coarse
    assert run([0, 1800], seed=4) != coarse


def test_reboot_renumbers_and_drops_dynamic_state(router: RouterOSEmulator, api: Api) -> None:
    _plan(router)
    for name in ("a", "b", "c"):
        api.path("ppp", "secret").add(name=name, profile="plan")
    api.path("ppp", "secret").remove("*1")
    router.advance(120)
    assert len(_active(router)) == 2
    router.reboot()
    with pytest.raises((ConnectionClosed, OSError)):
        list(api.path("system", "identity"))
    assert [row[".id"] for row in router.items("/ppp/secret")] == ["*1", "*2"]
    assert [row[".id"] for row in router.items("/ppp/profile")] == ["*0", "*FFFFFFFE", "*1"]
    assert router.items("/ppp/active") == []
    assert not [row for row in router.items("/interface") if row["dynamic"] == "true"]
    assert all(row["rx-byte"] == "0" for row in router.items("/interface"))
    assert router.items("/system/resource")[0]["uptime"] == "0s"
    router.advance(5)
    assert sorted(_active(router)) == ["b", "c"]


def test_drop_connections_and_latency(router: RouterOSEmulator) -> None:
    api = librouteros.connect("127.0.0.1", USER, PASSWORD, port=router.port, timeout=5)
    router.drop_connections()
    with pytest.raises((ConnectionClosed, OSError)):
        list(api.path("system", "identity"))
    api.close()
    router.set_latency(0.2)
    api = librouteros.connect("127.0.0.1", USER, PASSWORD, port=router.port, timeout=5)
    started = time.monotonic()
    list(api.path("system", "identity"))
    assert time.monotonic() - started >= 0.2
    router.set_latency(0)
    api.close()


def test_read_only_refuses_every_write(router: RouterOSEmulator, api: Api) -> None:
    api.path("ip", "pool").add(name="p", ranges="10.0.0.1")
    router.set_read_only(True)
    before = router.write_count
    pools = api.path("ip", "pool")
    with pytest.raises(TrapError, match=r"not enough permissions \(9\)"):
        pools.add(name="q", ranges="10.0.0.2")
    with pytest.raises(TrapError, match=r"not enough permissions \(9\)"):
        pools.update(**{".id": "p", "comment": "x"})
    with pytest.raises(TrapError, match=r"not enough permissions \(9\)"):
        pools.remove("p")
    assert [row["name"] for row in api.path("ip", "pool")] == ["p"]  # reads still work
    assert router.write_count == before
    router.set_read_only(False)
    api.path("ip", "pool").remove("p")
    assert router.write_count == before + 1


def test_fail_nth_write_with_a_trap(router: RouterOSEmulator, api: Api) -> None:
    pools = api.path("ip", "pool")
    router.fail_nth_write(2)
    pools.add(name="a", ranges="10.0.0.1")
    with pytest.raises(TrapError, match="action timed out"):
        pools.add(name="b", ranges="10.0.0.2")
    pools.add(name="c", ranges="10.0.0.3")
    assert [row["name"] for row in pools] == ["a", "c"]
    assert router.write_count == 2


@pytest.mark.parametrize(("mode", "applied"), [("drop", False), ("drop-after", True)])
def test_fail_nth_write_by_dropping(router: RouterOSEmulator, api: Api, mode: str, applied: bool) -> None:
    router.fail_nth_write(1, mode=mode)  # type: ignore[arg-type]
    with pytest.raises((ConnectionClosed, OSError)):
        api.path("ip", "pool").add(name="a", ranges="10.0.0.1")
    assert bool(router.items("/ip/pool")) is applied


def test_state_file_keeps_configuration_only(tmp_path: Path) -> None:
    state = tmp_path / "router.json"
    with running_router(users={USER: PASSWORD}, state_file=state) as router:
        _plan(router)
        api = librouteros.connect("127.0.0.1", USER, PASSWORD, port=router.port, timeout=5)
        api.path("ppp", "secret").add(name="kim", profile="plan", comment="persist me")
        api.path("queue", "simple").add(name="q", target="10.20.0.0/24", parent="none", **{"max-limit": "1M/1M"})
        api.path("ip", "firewall", "address-list").add(list="temp", address="10.9.9.9", timeout="1h")
        tuple(api("/system/identity/set", name="edge-7"))
        api.path("interface").update(**{".id": "ether3", "comment": "spare"})
        api.path("ppp", "profile").update(**{".id": "default", "rate-limit": "1M"})
        router.advance(10)
        api.close()
    saved = json.loads(state.read_text())
    assert saved["format"] == 1
    with running_router(users={USER: PASSWORD}, state_file=state) as again:
        secret = again.items("/ppp/secret")[0]
        assert (secret["name"], secret["profile"], secret["comment"]) == ("kim", "plan", "persist me")
        assert again.items("/queue/simple")[0]["max-limit"] == "1000000/1000000"
        assert again.items("/queue/simple")[0]["bytes"] == "0/0"
        assert again.items("/ip/firewall/address-list") == []  # dynamic entries are not saved
        assert again.items("/ppp/active") == []
        assert again.items("/system/identity") == [{"name": "edge-7"}]
        assert again.items("/interface")[2]["comment"] == "spare"
        assert again.items("/ppp/profile")[0]["rate-limit"] == "1M"
        again.advance(1)
        assert "kim" in _active(again)


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    state = tmp_path / "router.json"
    for damaged in (
        "{not json",
        "[" * 100_000 + "]" * 100_000,
        '{"format": 1, "menus": ' + "[" * 5000 + "]" * 5000 + "}",
        '{"format": 1, "menus": []}',
        '{"format": 1, "menus": {"/ppp/secret": [1]}}',
    ):
        state.write_text(damaged)
        with pytest.raises(ValueError, match="router state file"):
            RouterOSEmulator(state_file=state)


def test_realtime_clock_advances_on_its_own() -> None:
    with running_router(users={USER: PASSWORD}, realtime=True, tick=0.05) as router:
        router.call("/ppp/secret/add", {"name": "rt", "remote-address": "10.0.0.7"})
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not router.items("/ppp/active"):
            time.sleep(0.05)
        assert [row["name"] for row in router.items("/ppp/active")] == ["rt"]


def test_several_routers_are_independent() -> None:
    with running_routers(3) as routers:
        assert len({router.port for router in routers}) == 3
        assert [router.items("/system/identity")[0]["name"] for router in routers] == ["router1", "router2", "router3"]
        routers[0].call("/ip/pool/add", {"name": "only-here", "ranges": "10.0.0.1"})
        assert routers[1].items("/ip/pool") == []


def test_hang_up_from_the_subscriber_side(router: RouterOSEmulator) -> None:
    router.call("/ppp/secret/add", {"name": "h", "remote-address": "10.0.0.8"})
    router.advance(1)
    assert router.hang_up("h")
    assert router.items("/ppp/secret")[0]["last-disconnect-reason"] == "peer-not-responding"
    router.advance(5)
    assert "h" in _active(router)
