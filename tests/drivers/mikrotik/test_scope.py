"""Scoped runs of the MikroTik driver against the RouterOS emulator over TCP: one subscriber read, planned and
written, everything else left as it is until a full run."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from drivers.mikrotik import MikrotikDriver
from drivers.mikrotik import driver as mikrotik_driver
from drivers.models import ChangeSet, Scope
from lab.routeros import RouterOSEmulator
from policies.desired import DesiredState, ServiceState
from tests.drivers import contract
from tests.drivers.mikrotik.test_driver import BASE, LIST, SLOW, THROTTLE, reconcile, row, state, static, sub


def scoped(driver: MikrotikDriver, desired: DesiredState, *keys: str) -> ChangeSet:
    """One scoped run as the engine makes it: read the scope, plan it, apply it."""
    scope = Scope.of(desired, keys)
    plan = driver.plan(desired, driver.read_state(scope), scope)
    driver.apply(plan)
    return plan


def only(desired: DesiredState, *keys: str) -> DesiredState:
    """What the engine compiles for a scoped run: the scoped subscribers alone, with the profiles they use."""
    subs = tuple(s for s in desired.subscribers if s.key in keys)
    names = {s.profile for s in subs}
    return replace(desired, subscribers=subs, profiles=tuple(p for p in desired.profiles if p.name in names))


def described(plan: ChangeSet) -> list[str]:
    return [c.describe() for c in plan.changes]


def test_the_shared_scoped_contract(driver: MikrotikDriver) -> None:
    bob_on_10m = state(sub("alice", 1), sub("bob", 2, "10M", address="10.9.0.2"), static(3, "10.9.1.3"))
    plan = contract.check_scoped_run(driver, BASE, bob_on_10m, ["bob"])
    assert described(plan) == ["~ ppp/secret bob: profile '20M' -> '10M'"]


@pytest.mark.parametrize("narrow", [False, True], ids=["whole-desired", "scoped-desired"])
def test_a_scoped_run_changes_only_the_scoped_subscriber(
    driver: MikrotikDriver, emulator: RouterOSEmulator, narrow: bool
) -> None:
    reconcile(driver, BASE)
    # Someone edits bob by hand; alice moves to 20M, which leaves the 10M profile unused.
    emulator.call("/ppp/secret/set", {".id": row(emulator, "/ppp/secret", name="bob")[".id"], "profile": "default"})
    upgraded = state(sub("alice", 1, "20M"), sub("bob", 2, "20M", address="10.9.0.2"), static(3, "10.9.1.3"))
    desired = only(upgraded, "alice") if narrow else upgraded
    plan = scoped(driver, desired, "alice")
    assert described(plan) == ["~ ppp/secret alice: profile '10M' -> '20M'"]
    assert plan.disconnect == ("alice",)
    assert row(emulator, "/ppp/secret", name="alice")["profile"] == "20M"
    assert row(emulator, "/ppp/secret", name="bob")["profile"] == "default"  # not in the scope: left alone
    assert row(emulator, "/ppp/profile", name="10M")["comment"] == "edgebill"  # unused, but never removed here

    # Run again: nothing to write, on a router that refuses writes.
    emulator.set_read_only(True)
    writes = emulator.write_count
    assert scoped(driver, desired, "alice").empty
    assert emulator.write_count == writes
    emulator.set_read_only(False)

    # Only a full run repairs bob and removes the unused profile.
    full = reconcile(driver, upgraded)
    assert sorted(described(full)) == ["- ppp/profile 10M", "~ ppp/secret bob: profile 'default' -> '20M'"]
    assert driver.plan(upgraded, driver.read_state()).empty


def test_a_scoped_run_adds_a_new_subscriber_and_the_profile_it_needs(
    driver: MikrotikDriver, emulator: RouterOSEmulator
) -> None:
    reconcile(driver, state(sub("alice", 1)))
    with_dave = state(sub("alice", 1), sub("dave", 4, "20M", address="10.9.0.4"))
    plan = scoped(driver, only(with_dave, "dave"), "dave")
    assert [(c.action.value, c.kind, c.key) for c in plan.changes] == [
        ("add", "ppp/profile", "20M"),
        ("add", "ppp/secret", "dave"),
    ]
    assert row(emulator, "/ppp/secret", name="dave")["remote-address"] == "10.9.0.4"
    assert driver.plan(with_dave, driver.read_state()).empty  # a full run finds nothing left to do


def test_a_terminated_scoped_subscriber_is_removed_with_its_list_entries(
    driver: MikrotikDriver, emulator: RouterOSEmulator
) -> None:
    suspended = state(
        sub("alice", 1),
        sub("bob", 2, "20M", ServiceState.SUSPENDED, address="10.9.0.2"),
        static(3, "10.9.1.3", ServiceState.SUSPENDED),
    )
    reconcile(driver, suspended)
    listed = {r["address"] for r in emulator.items("/ip/firewall/address-list") if r["list"] == LIST}
    assert listed == {"10.9.0.2", "10.9.1.3"}
    # bob and service 3 end: the desired state no longer holds them, the scope still names them.
    remaining = state(sub("alice", 1))
    plan = scoped(driver, remaining, "bob", "svc-3")
    assert sorted(described(plan)) == [
        f"- ip/firewall/address-list {LIST}|10.9.0.2",
        f"- ip/firewall/address-list {LIST}|10.9.1.3",
        "- ppp/secret bob",
        "- queue/simple svc-3",
    ]
    assert plan.disconnect == ("bob",)
    assert {r["name"] for r in emulator.items("/ppp/secret")} == {"alice"}
    assert not [r for r in emulator.items("/queue/simple") if r["name"] == "svc-3"]
    assert not [r for r in emulator.items("/ip/firewall/address-list") if r.get("dynamic") == "false"]
    assert row(emulator, "/ppp/profile", name="20M")["comment"] == "edgebill"  # bob's profile stays
    assert scoped(driver, remaining, "bob", "svc-3").empty


def test_a_shared_profile_keeps_its_enforcement_list(driver: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    throttled_static = replace(static(3, "10.9.1.3", ServiceState.THROTTLED, rate=SLOW), profile=THROTTLE)
    everyone = state(
        sub("alice", 1), sub("bob", 2, THROTTLE, ServiceState.THROTTLED, address="10.9.0.2"), throttled_static
    )
    reconcile(driver, everyone)
    assert row(emulator, "/ppp/profile", name=THROTTLE)["address-list"] == LIST
    # Service 3 alone uses the throttle profile without needing its list; bob, outside the scope, still does.
    plan = scoped(driver, only(everyone, "svc-3"), "svc-3")
    assert plan.empty, described(plan)
    assert row(emulator, "/ppp/profile", name=THROTTLE)["address-list"] == LIST


def test_entries_we_do_not_own_stay_unowned_and_untouched(driver: MikrotikDriver, emulator: RouterOSEmulator) -> None:
    reconcile(driver, BASE)
    emulator.call("/ppp/secret/add", {"name": "carol", "profile": "default", "password": "x"})
    emulator.call("/ip/firewall/address-list/add", {"list": LIST, "address": "10.9.0.5", "comment": "office"})
    with_carol = state(*BASE.subscribers, sub("carol", 5, "10M", ServiceState.SUSPENDED, address="10.9.0.5"))
    scope = Scope.of(with_carol, ["carol"])
    actual = driver.read_state(scope)
    assert {(r.kind, r.key, r.owned) for r in actual if r.kind != "ppp/profile"} == {
        ("ppp/secret", "carol", False),
        ("ip/firewall/address-list", f"{LIST}|10.9.0.5", False),
    }
    plan = driver.plan(with_carol, actual, scope)
    assert {(c.kind, c.key) for c in plan.conflicts} == {
        ("ppp/secret", "carol"),
        ("ip/firewall/address-list", f"{LIST}|10.9.0.5"),
    }
    assert plan.empty
    assert row(emulator, "/ppp/secret", name="carol")["profile"] == "default"


def test_a_scoped_read_asks_the_router_for_fewer_rows(
    driver: MikrotikDriver, emulator: RouterOSEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    many = state(*(sub(f"user{n:02}", n, "10M", address=f"10.9.2.{n}") for n in range(1, 41)), static(99, "10.9.1.3"))
    reconcile(driver, many)

    def rows_read(scope: Scope | None) -> int:
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="librouteros"):
            driver.read_state(scope)
        return sum(1 for r in caplog.records if r.name == "librouteros" and r.getMessage() == "---> '!re'")

    scope = Scope.of(many, ["user07", "svc-99"])
    full, narrow = rows_read(None), rows_read(scope)
    profiles = len(emulator.items("/ppp/profile"))
    assert narrow == profiles + 2  # the profile menu, user07's secret and service 99's queue
    assert full >= profiles + 41 > narrow
    keys = {(r.kind, r.key) for r in driver.read_state(scope) if r.kind != "ppp/profile"}
    assert keys == {("ppp/secret", "user07"), ("queue/simple", "svc-99")}
    assert driver.read_state(Scope(frozenset())) == tuple(r for r in driver.read_state() if r.kind == "ppp/profile")


def test_a_large_scope_is_read_in_batches(
    driver: MikrotikDriver, emulator: RouterOSEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    many = state(*(sub(f"user{n:02}", n, "10M", ServiceState.SUSPENDED, address=f"10.9.2.{n}") for n in range(1, 11)))
    reconcile(driver, many)
    monkeypatch.setattr(mikrotik_driver, "QUERY_BATCH", 3)
    keys = [f"user{n:02}" for n in (1, 2, 3, 5, 8, 9, 10)]
    actual = driver.read_state(Scope.of(many, keys))
    assert sorted(r.key for r in actual if r.kind == "ppp/secret") == keys
    assert sorted(r.key for r in actual if r.kind == "ip/firewall/address-list") == sorted(
        f"{LIST}|10.9.2.{int(key[4:])}" for key in keys
    )
    assert scoped(driver, many, *keys).empty
