"""Pure RouterOS menus and planning: spellings, ownership, input checks, rendering and the plan, as tables."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from drivers.mikrotik import InvalidRouterInput, normalise_rate_limit, rate_limit_text, validate_name, validate_rate
from drivers.mikrotik.menus import ADDRESS_LIST, PROFILE, QUEUE, SECRET, normalise_rate_pair, resource_of_row
from drivers.mikrotik.plan import plan, render
from drivers.models import Action
from policies.desired import ConnectionType, DesiredState, EnforcementSpec, ProfileSpec, ServiceState, SubscriberSpec
from policies.rates import MAX_RATE, Burst, RateLimit

R10 = RateLimit(download=10_000_000, upload=5_000_000)
R20B = RateLimit(20_000_000, 10_000_000, Burst(40_000_000, 20_000_000, 15_000_000, 8_000_000, 16))


@pytest.mark.parametrize(
    ("rate", "text"),
    [
        (R10, "5000000/10000000"),
        (R20B, "10000000/20000000 20000000/40000000 8000000/15000000 16s/16s"),
        (RateLimit(64_123, 1), "1/64123"),
    ],
)
def test_rate_limit_is_router_view_upload_first(rate: RateLimit, text: str) -> None:
    assert rate_limit_text(rate) == text


@pytest.mark.parametrize(
    ("printed", "canonical"),
    [
        ("5M/10M", "5000000/10000000"),
        ("5000000/10000000", "5000000/10000000"),
        ("512k", "512000/512000"),
        ("1.5M/3M", "1500000/3000000"),
        ("5M/10M 10M/20M", "5000000/10000000 10000000/20000000 5000000/10000000 1s/1s"),
        ("5M/10M 10M/20M 4M/8M 00:00:16", "5000000/10000000 10000000/20000000 4000000/8000000 16s/16s"),
        (
            "5000000/10000000 10000000/20000000 4000000/8000000 16s/16s 8 0/0",
            "5000000/10000000 10000000/20000000 4000000/8000000 16s/16s",
        ),
        ("5M/10M 0/0 0/0 0s/0s 5 1M/2M", "5000000/10000000 0/0 0/0 0s/0s 5 1000000/2000000"),
        ("", ""),
        ("garbage", "garbage"),
    ],
)
def test_rate_limit_is_normalised_whatever_the_router_prints(printed: str, canonical: str) -> None:
    assert normalise_rate_limit(printed) == canonical


def test_rendered_rate_limit_is_its_own_normal_form() -> None:
    for rate in (R10, R20B):
        assert normalise_rate_limit(rate_limit_text(rate)) == rate_limit_text(rate)


@pytest.mark.parametrize(
    ("printed", "canonical"),
    [("5M/10M", "5000000/10000000"), ("15000000/20000000", "15000000/20000000"), ("0/0", "0/0"), ("1k", "1000/1000")],
)
def test_queue_limits_compare_in_raw_bps(printed: str, canonical: str) -> None:
    assert normalise_rate_pair(printed) == canonical


@pytest.mark.parametrize(
    ("name", "encoding"),
    [("alice", "utf-8"), ("café@isp", "cp1252"), ("a.b-c_d+e", "ascii"), ("x" * 64, "utf-8"), ("10M Home", "utf-8")],
)
def test_valid_names_pass(name: str, encoding: str) -> None:
    assert validate_name(name, encoding=encoding) == name


@pytest.mark.parametrize(
    ("name", "encoding", "words"),
    [
        ("", "utf-8", "must not be empty"),
        ("x" * 65, "utf-8", "too long"),
        (" alice", "utf-8", "start or end with a space"),
        ("al\nice", "utf-8", "control characters"),
        ("*1A", "utf-8", "item id"),
        ("a,b", "utf-8", "splits lists"),
        ("<pppoe-x>", "utf-8", "dynamic"),
        ("юрий", "cp1252", "cp1252 encoding cannot store"),
        ("alice", "no-such-codec", "unknown router encoding"),
    ],
)
def test_names_a_router_cannot_hold_are_refused_with_one_line(name: str, encoding: str, words: str) -> None:
    with pytest.raises(InvalidRouterInput, match=words) as info:
        validate_name(name, what="PPPoE login", encoding=encoding)
    assert "\n" not in str(info.value)


def test_rates_above_the_router_ceiling_are_refused() -> None:
    assert validate_rate(R20B) is R20B
    fastest = RateLimit(MAX_RATE, MAX_RATE)
    assert validate_rate(fastest) == fastest
    ten_gig = RateLimit(10_000_000_000, 1_000_000_000)
    with pytest.raises(InvalidRouterInput, match=r"download 10G is above what the router can express"):
        validate_rate(ten_gig, what="plan 'metro'", ceiling=4_294_967_295)


@pytest.mark.parametrize(
    ("kind", "row", "key", "owned", "fields"),
    [
        (
            PROFILE,
            {".id": "*1", "name": "10M", "rate-limit": "5M/10M", "comment": "edgebill"},
            "10M",
            True,
            {"rate-limit": "5000000/10000000", "address-list": ""},
        ),
        (PROFILE, {".id": "*0", "name": "default", "default": True, "comment": "edgebill"}, "default", False, {}),
        (PROFILE, {".id": "*3", "name": "theirs", "rate-limit": "1M/1M"}, "theirs", False, {}),
        (
            SECRET,
            {".id": "*2", "name": "alice", "profile": "10M", "disabled": False, "comment": "edgebill:svc=1"},
            "alice",
            True,
            {"disabled": "false", "remote-address": "", "service": "any"},
        ),
        (SECRET, {".id": "*4", "name": 42, "disabled": True}, "42", False, {"disabled": "true"}),
        (
            QUEUE,
            {".id": "*5", "name": "svc-3", "target": "10.0.0.3", "max-limit": "5M/10M", "comment": "edgebill:svc=3"},
            "svc-3",
            True,
            {"target": "10.0.0.3/32", "max-limit": "5000000/10000000", "burst-time": "0s/0s"},
        ),
        (QUEUE, {".id": "*6", "name": "<pppoe-a>", "dynamic": True, "comment": "edgebill"}, "<pppoe-a>", False, {}),
        (
            ADDRESS_LIST,
            {".id": "*7", "list": "overdue", "address": "10.0.0.3/32", "comment": "edgebill:svc=3"},
            "overdue|10.0.0.3",
            True,
            {"address": "10.0.0.3", "disabled": "false"},
        ),
    ],
)
def test_rows_are_read_in_one_spelling(
    kind: str, row: dict[str, object], key: str, owned: bool, fields: dict[str, str]
) -> None:
    r = resource_of_row(kind, row)
    assert (r.kind, r.key, r.owned, r.ref) == (kind, key, owned, row[".id"])
    for name, value in fields.items():
        assert r.fields[name] == value


def _desired(*subs: SubscriberSpec, mode: str = "disable") -> DesiredState:
    profiles = {s.profile: s.rate for s in subs}
    enforcement = EnforcementSpec(address_list="overdue", suspend_mode="block" if mode == "block" else "disable")
    return DesiredState(tuple(ProfileSpec(n, r) for n, r in profiles.items()), subs, enforcement)


ALICE = SubscriberSpec("alice", 1, ConnectionType.PPPOE, "10M", R10, login="alice", password="pw")
STATIC = SubscriberSpec("svc-3", 3, ConnectionType.STATIC, "20M", R20B, address=IPv4Address("10.0.0.3"))


def test_render_marks_every_entry_and_keeps_passwords_write_only() -> None:
    out = render(_desired(ALICE, STATIC))
    by_key = {(r.kind, r.key): r for r in out.resources}
    assert set(by_key) == {(PROFILE, "10M"), (PROFILE, "20M"), (SECRET, "alice"), (QUEUE, "svc-3")}
    assert by_key[(SECRET, "alice")].fields["comment"] == "edgebill:svc=1"
    assert by_key[(SECRET, "alice")].write_only == {"password"}
    assert by_key[(QUEUE, "svc-3")].fields["max-limit"] == "10000000/20000000"
    assert by_key[(QUEUE, "svc-3")].fields["target"] == "10.0.0.3/32"


def test_throttled_pppoe_without_address_is_listed_by_its_profile() -> None:
    slow = RateLimit(1_000_000, 512_000)
    throttled = SubscriberSpec(
        "alice", 1, ConnectionType.PPPOE, "edgebill-throttle-1M-512k", slow, ServiceState.THROTTLED, "alice", "pw"
    )
    out = render(_desired(throttled, STATIC))
    by_key = {(r.kind, r.key): r for r in out.resources}
    assert by_key[(PROFILE, "edgebill-throttle-1M-512k")].fields["address-list"] == "overdue"
    assert by_key[(PROFILE, "20M")].fields["address-list"] == ""
    assert not any(r.kind == ADDRESS_LIST for r in out.resources)


def test_suspended_static_and_addressed_pppoe_get_list_entries() -> None:
    bob = SubscriberSpec(
        "bob", 2, ConnectionType.PPPOE, "10M", R10, ServiceState.SUSPENDED, "bob", "pw", IPv4Address("10.0.0.2")
    )
    gone = SubscriberSpec(
        "svc-3", 3, ConnectionType.STATIC, "20M", R20B, ServiceState.SUSPENDED, address=IPv4Address("10.0.0.3")
    )
    by_key = {(r.kind, r.key): r for r in render(_desired(bob, gone)).resources}
    assert by_key[(SECRET, "bob")].fields["disabled"] == "true"
    assert by_key[(SECRET, "bob")].fields["remote-address"] == "10.0.0.2"
    assert by_key[(ADDRESS_LIST, "overdue|10.0.0.2")].fields["comment"] == "edgebill:svc=2"
    assert (ADDRESS_LIST, "overdue|10.0.0.3") in by_key
    in_block_mode = {(r.kind, r.key): r for r in render(_desired(bob, mode="block")).resources}
    assert in_block_mode[(SECRET, "bob")].fields["disabled"] == "false"


def test_unwritable_input_is_a_conflict_not_a_write_nor_a_removal() -> None:
    bad = SubscriberSpec("юрий", 9, ConnectionType.PPPOE, "10M", R10, login="юрий", password="pw")
    actual = [resource_of_row(SECRET, {".id": "*9", "name": "юрий", "comment": "edgebill:svc=9"})]
    cs = plan(_desired(ALICE, bad), actual, encoding="cp1252")
    assert [(c.kind, c.key) for c in cs.conflicts] == [(SECRET, "юрий")]
    assert "cp1252" in cs.conflicts[0].reason
    assert {c.key for c in cs.changes} == {"10M", "alice"}


def test_profile_and_disabled_changes_and_removals_disconnect() -> None:
    d = _desired(ALICE)
    actual = [r for r in render(d).resources]
    moved = SubscriberSpec("alice", 1, ConnectionType.PPPOE, "20M", R20B, login="alice", password="pw")
    old_secret = next(r for r in actual if r.kind == SECRET)
    actual = [*actual, resource_of_row(SECRET, {".id": "*8", "name": "zed", "comment": "edgebill:svc=8"})]
    actual = [r if r is not old_secret else resource_of_row(SECRET, {".id": "*1", **old_secret.fields}) for r in actual]
    cs = plan(_desired(moved), actual)
    assert set(cs.disconnect) == {"alice", "zed"}
    secret_change = next(c for c in cs.changes if c.kind == SECRET and c.key == "alice")
    assert secret_change.action is Action.CHANGE and dict(secret_change.fields) == {"profile": "20M"}
    assert "pw" not in " ".join(c.describe() for c in cs.changes)
