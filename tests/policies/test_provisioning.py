"""Compiling a router's desired state from its services."""

from __future__ import annotations

import re
from dataclasses import replace
from ipaddress import IPv4Address

import pytest

from policies.desired import EnforcementSpec
from policies.provisioning import (
    BLOCK_RATE,
    BLOCKED_PROFILE,
    DEFAULT_THROTTLE_RATE,
    ProvisioningError,
    ServiceRecord,
    compile_desired,
    throttle_profile_name,
)
from policies.rates import Burst, RateLimit

HOME = RateLimit(10_000_000, 5_000_000, Burst(20_000_000, 10_000_000, 8_000_000, 4_000_000, 16))
TINY = RateLimit(256_000, 128_000)


def pppoe(sid: int, login: str, state: str = "active", plan: str = "Home 10M", rate: RateLimit = HOME) -> ServiceRecord:
    return ServiceRecord(sid, "pppoe", login, f"pw{sid}", None, plan, rate, state)  # type: ignore[arg-type]


def static(sid: int, address: str, state: str = "active") -> ServiceRecord:
    return ServiceRecord(sid, "static", None, None, IPv4Address(address), "Home 10M", HOME, state)  # type: ignore[arg-type]


def test_throttle_profile_names() -> None:
    assert throttle_profile_name(RateLimit(1_000_000, 512_000)) == "edgebill-throttle-1M-512k"
    assert throttle_profile_name(RateLimit(1_500_000, 64_123)) == "edgebill-throttle-1500k-64123"


def test_active_services_use_their_plan() -> None:
    desired = compile_desired([pppoe(2, "bob"), pppoe(1, "alice"), static(3, "10.0.0.3")])
    assert [p.name for p in desired.profiles] == ["Home 10M"]
    assert [(s.key, s.profile, s.rate, s.state) for s in desired.subscribers] == [
        ("alice", "Home 10M", HOME, "active"),
        ("bob", "Home 10M", HOME, "active"),
        ("svc-3", "Home 10M", HOME, "active"),
    ]
    assert desired.subscribers[0].password == "pw1"
    assert desired.subscribers[2].login is None and desired.subscribers[2].password is None


@pytest.mark.parametrize(
    ("record", "mode", "profile", "rate"),
    [
        (pppoe(1, "a", "throttled"), "disable", "edgebill-throttle-1M-512k", DEFAULT_THROTTLE_RATE),
        (pppoe(1, "a", "throttled", "Tiny", TINY), "disable", "edgebill-throttle-256k-128k", TINY),
        (pppoe(1, "a", "suspended"), "disable", "Home 10M", HOME),
        (pppoe(1, "a", "suspended"), "block", BLOCKED_PROFILE, BLOCK_RATE),
        (static(1, "10.0.0.1", "suspended"), "disable", BLOCKED_PROFILE, BLOCK_RATE),
        (static(1, "10.0.0.1", "throttled"), "block", "edgebill-throttle-1M-512k", DEFAULT_THROTTLE_RATE),
    ],
)
def test_state_decides_profile_and_rate(record: ServiceRecord, mode: str, profile: str, rate: RateLimit) -> None:
    enforcement = EnforcementSpec(suspend_mode="block" if mode == "block" else "disable")
    desired = compile_desired([record], enforcement=enforcement)
    (s,) = desired.subscribers
    assert (s.profile, s.rate, s.state) == (profile, rate, record.state)
    assert desired.profile(profile).rate == rate
    # The plan's own profile stays declared, so resuming the service rewrites nothing but the service.
    assert desired.profile(record.plan_name).rate == record.plan_rate
    assert desired.enforcement is enforcement


def test_throttle_rate_comes_from_the_caller_and_never_speeds_up() -> None:
    rate = RateLimit(2_000_000, 1_000_000)
    desired = compile_desired(
        [pppoe(1, "a", "throttled"), pppoe(2, "b", "throttled", "Tiny", TINY)], throttle_rate=rate
    )
    assert {(s.key, s.profile) for s in desired.subscribers} == {
        ("a", "edgebill-throttle-2M-1M"),
        ("b", "edgebill-throttle-256k-128k"),
    }


def test_terminated_services_are_absent() -> None:
    desired = compile_desired([pppoe(1, "a", "terminated"), static(2, "10.0.0.2", "terminated")])
    assert desired.subscribers == () and desired.profiles == ()


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([pppoe(1, "a"), pppoe(2, "a")], "service 2: key 'a' is already used by service 1"),
        ([static(1, "10.0.0.1"), static(2, "10.0.0.1")], "service 2: address 10.0.0.1 is already used by service 1"),
        ([replace(pppoe(1, "a"), password=None)], "service 1: a PPPoE service needs a password"),
        ([replace(pppoe(1, "a"), login=None)], "service 1: a PPPoE service needs a login"),
        ([replace(static(1, "10.0.0.1"), address=None)], "service 1: a static-IP service needs an address"),
        ([pppoe(1, "a", plan="edgebill-blocked")], "reserved prefix"),
        ([pppoe(1, "a"), pppoe(2, "b", rate=TINY)], "service 2: profile 'Home 10M' is used with two different rates"),
    ],
)
def test_inconsistent_services_are_left_out_and_the_others_kept(records: list[ServiceRecord], message: str) -> None:
    good = pppoe(99, "zed", plan="Zed", rate=TINY)
    desired = compile_desired([*records, good])
    [refused] = desired.refused
    assert re.search(message, refused.reason) and refused.reason.startswith(f"service {refused.service_id}: ")
    assert {s.service_id for s in desired.subscribers} == {r.service_id for r in records} - {refused.service_id} | {99}
    assert all(p.name != "edgebill-blocked" for p in desired.profiles)


def test_terminated_duplicates_do_not_clash() -> None:
    desired = compile_desired([pppoe(1, "a", "terminated"), pppoe(2, "a")])
    assert [s.service_id for s in desired.subscribers] == [2]


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ProvisioningError, match="unknown state 'paused'"):
        pppoe(1, "a", "paused")


def test_password_is_not_in_the_repr() -> None:
    assert "pw1" not in repr(pppoe(1, "a"))
    assert "pw1" not in repr(compile_desired([pppoe(1, "a")]))
