"""The pure parts of the Linux gateway driver: handles, limits, rendering, the commands, and reading back."""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from drivers.diff import diff
from drivers.linux import LayoutError, LinuxTcDriver
from drivers.linux.commands import Builder
from drivers.linux.layout import (
    KIND_GROUP,
    KIND_SUB,
    KIND_TABLE,
    MAX_SUBSCRIBERS,
    ORDER,
    Devices,
    class_id,
    group_major,
    portal_of,
    tc_rate_text,
)
from drivers.linux.parse import ReadMemo, device_state, nft_resources, parse_classes, parse_qdiscs
from drivers.linux.plan import render, render_reusing
from drivers.models import Action, Resource
from policies.desired import ConnectionType, DesiredState, EnforcementSpec, ProfileSpec, ServiceState, SubscriberSpec
from policies.rates import RateLimit
from tests.drivers.linux.params import OFFLINE

PLAN = RateLimit(10_000_000, 5_000_000)
DEVICES = Devices("sub0", "ifb0", "pfifo")


def sub(
    key: str, address: str | None, state: ServiceState = ServiceState.ACTIVE, rate: RateLimit = PLAN
) -> SubscriberSpec:
    return SubscriberSpec(
        key=key,
        service_id=1,
        connection=ConnectionType.STATIC,
        profile="10M",
        rate=rate,
        state=state,
        address=IPv4Address(address) if address else None,
    )


def state(*subs: SubscriberSpec, url: str = "http://198.18.0.3:8080/pay") -> DesiredState:
    return DesiredState((ProfileSpec("10M", PLAN),), subs, EnforcementSpec(payment_page_url=url))


def test_handles_are_derived_from_the_address_and_distinct_within_a_slash_10() -> None:
    net = IPv4Network("100.64.0.0/10")
    seen: set[str] = set()
    for i in range(0, net.num_addresses, 977):
        cid = class_id(net[i])
        assert cid not in seen
        seen.add(cid)
    assert class_id(IPv4Address("100.64.1.7")) == "1001:8"
    assert class_id(IPv4Address("100.64.1.7")) == class_id(IPv4Address("100.64.1.7"))
    assert 0x1000 <= group_major(IPv4Address("100.127.255.255")) < 0x8000


@pytest.mark.parametrize(
    ("bps", "text"),
    [(10_000_000, "10Mbit"), (1_500_000, "1500Kbit"), (64_123, "64120bit"), (1_234_567_000, "1234Mbit")],
)
def test_rates_are_compared_as_tc_prints_them(bps: int, text: str) -> None:
    assert tc_rate_text(bps) == text


def test_subscribers_that_cannot_be_shaped_are_conflicts_not_writes() -> None:
    desired = state(
        sub("svc-1", "100.64.1.7"),
        sub("svc-2", None),
        sub("svc-3", "10.9.9.9"),
        sub("svc-4", "100.64.1.7"),
        sub("svc-5", "100.0.1.9"),  # same /24 handle as 100.64.1.0/24: another /10
    )
    rendered = render(desired, DEVICES, (IPv4Network("100.0.0.0/8"),))
    reasons = {c.key: c.reason for c in rendered.conflicts}
    assert set(reasons) == {"svc-2", "svc-3", "svc-4", "svc-5"}
    assert "no IPv4 address" in reasons["svc-2"]
    assert "outside" in reasons["svc-3"]
    assert "already used by 'svc-1'" in reasons["svc-4"]
    assert "share tc handle" in reasons["svc-5"]
    subs = [r for r in rendered.resources if r.kind == KIND_SUB]
    assert {r.key for r in subs} == {"down|1001:8", "up|1001:8"}


def test_more_subscribers_than_the_handle_space_is_refused() -> None:
    many = tuple(sub(f"svc-{i}", str(IPv4Network("100.64.0.0/10")[i + 1])) for i in range(MAX_SUBSCRIBERS + 1))
    with pytest.raises(LayoutError, match="exceed"):
        render(state(*many), DEVICES, ())


def test_portal_must_be_an_address() -> None:
    assert str(portal_of("https://198.18.0.3/pay")) == "198.18.0.3:443"
    assert portal_of("") is None
    with pytest.raises(LayoutError, match="IPv4 address"):
        portal_of("http://pay.example.net/")
    rendered = render(state(sub("svc-1", "100.64.1.7"), url="http://pay.example.net/"), DEVICES, ())
    assert [c.kind for c in rendered.conflicts] == [KIND_TABLE]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"interface": None}, "needs 'interface'"),
        ({"interface": "eth0;reboot"}, "interface name"),
        ({"upload_ifb": "sub0"}, "must differ"),
        ({"leaf_qdisc": "cake"}, "leaf_qdisc"),
    ],
)
def test_bad_settings_are_refused_with_one_line(change: dict[str, object], message: str) -> None:
    with pytest.raises(LayoutError, match=message) as info:
        LinuxTcDriver(replace(OFFLINE, **change))  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_commands_carry_no_user_text() -> None:
    hostile = "x'; reboot; echo \"$(id)"
    desired = state(sub(hostile, "100.64.1.7", state=ServiceState.SUSPENDED))
    rendered = render(desired, DEVICES, ())
    changes, _ = diff(rendered.resources, (), order=ORDER)
    script = Builder(DEVICES).build(changes)
    assert all(hostile not in line.text for line in [*script.ip, *script.tc])
    # The key only travels as a JSON string value, as the element's comment.
    payload = json.dumps({"nftables": script.nft})
    assert json.loads(payload)["nftables"][-2]["add"]["element"]["elem"][0]["elem"]["comment"] == hostile
    lines = [line.text for line in script.tc]
    assert "qdisc replace dev sub0 root handle eb: htb default 0" in lines
    assert any(
        line.startswith("class replace dev ifb0 parent 1001: classid 1001:8 htb rate 5000000bit") for line in lines
    )
    assert any("match ip dst 100.64.1.7/32 flowid 1001:8" in line for line in lines)
    assert any("match ip src 100.64.1.7/32 flowid 1001:8" in line for line in lines)


def test_readback_of_what_was_written_plans_nothing() -> None:
    """The text and JSON tc and nft print for a written tree read back as the rendered resources."""
    qdiscs: list[dict[str, Any]] = [
        {"kind": "htb", "handle": "eb:", "root": True},
        {"kind": "htb", "handle": "1001:", "parent": "eb:1001"},
        {"kind": "pfifo", "handle": "8001:", "parent": "1001:8"},
    ]
    classes = (
        "class htb eb:1001 root leaf 1001: prio 0 quantum 1514 rate 100Gbit ceil 100Gbit linklayer ethernet burst 1b\n"
        " Sent 10 bytes 1 pkt (dropped 0, overlimits 0 requeues 0)\n"
        "class htb 1001:8 root leaf 8001: prio 0 quantum 1514 rate 10Mbit ceil 10Mbit linklayer ethernet burst 1b\n"
        " Sent 1234 bytes 3 pkt (dropped 0, overlimits 0 requeues 0)\n"
    )
    link = {"fh": "800::1", "link": "", "hash_mask": "", "hash_off": 16}
    root_filters = [
        {"options": {"fh": "1:", "ht_divisor": 256}},
        {"options": {**link, "link": "1:", "hash_mask": "ff00"}},
        {"options": {"fh": "1:1:1", "key_ht": "1", "flowid": "eb:1001", "match": _m("64400100", "ffffff00")}},
    ]
    child_filters = [
        {"options": {"fh": "2:", "ht_divisor": 256}},
        {"options": {**link, "link": "2:", "hash_mask": "ff"}},
        {"options": {"fh": "2:7:1", "key_ht": "2", "flowid": "1001:8", "match": _m("64400107", "ffffffff")}},
    ]
    filters = json.dumps(root_filters) + "\n" + json.dumps(child_filters)
    dev = device_state("down", "sub0", qdiscs, classes, filters, child_parents=["1001:"])
    desired = Devices("sub0", None, "pfifo")
    rendered = render(state(sub("svc-1", "100.64.1.7")), desired, ())
    tc_kinds = {"tc/qdisc", KIND_GROUP, KIND_SUB}
    want = [r for r in rendered.resources if r.kind in tc_kinds]
    assert dev.root is not None
    changes, conflicts = diff(want, [dev.root, *dev.groups, *dev.subscribers], order=ORDER)
    assert changes == () and conflicts == ()
    assert parse_classes(classes)["1001:8"].sent_bytes == 1234
    assert parse_classes(classes)["1001:8"].leaf == "8001"


def test_a_root_qdisc_we_did_not_create_is_not_ours() -> None:
    dev = device_state("down", "sub0", [{"kind": "htb", "handle": "1:", "root": True}], "", "[]")
    assert dev.root is not None and not dev.root.owned
    assert dev.groups == [] and dev.subscribers == []
    default = device_state("down", "sub0", [{"kind": "noqueue", "handle": "0:", "root": True}], "", "[]")
    assert default.root is None


def test_nft_readback_names_subscribers_and_suspended_addresses() -> None:
    data = {
        "nftables": [
            {"table": {"family": "inet", "name": "edgebill"}},
            {"set": {"name": "subscribers-1001", "elem": [{"elem": {"val": "100.64.1.7", "comment": "svc-1"}}]}},
            # a key in the wrong /24's set is not read as a key
            {"set": {"name": "subscribers-1002", "elem": [{"elem": {"val": "100.64.1.8", "comment": "svc-2"}}]}},
            {"set": {"name": "edgebill-overdue", "elem": ["100.64.1.7"]}},
        ]
    }
    got = {(r.kind, r.key): dict(r.fields) for r in nft_resources(data)}
    assert got[("nft/subscriber", "100.64.1.7")] == {"key": "svc-1"}
    assert ("nft/subscriber", "100.64.1.8") not in got
    assert got[("nft/suspended", "100.64.1.7")] == {"set": "edgebill-overdue"}
    assert got[(KIND_TABLE, "inet edgebill")]["rules"] == "missing"


def test_a_new_leaf_kind_recreates_the_class() -> None:
    drv = LinuxTcDriver(OFFLINE)
    desired = state(sub("svc-1", "100.64.1.7"))
    actual = [
        r if r.kind != KIND_SUB else replace(r, fields={**r.fields, "leaf": "fq_codel"})
        for r in render(desired, drv.devices, ()).resources
    ]
    plan = drv.plan(desired, actual)
    assert [(c.action, c.key) for c in plan.changes] == [
        (Action.REMOVE, "down|1001:8"),
        (Action.ADD, "down|1001:8"),
        (Action.REMOVE, "up|1001:8"),
        (Action.ADD, "up|1001:8"),
    ]


def _m(value: str, mask: str) -> dict[str, object]:
    return {"value": value, "mask": mask, "offmask": "", "off": 16}


def _tree_read(rate_8: str = "10Mbit", *, filter_9: bool = True) -> tuple[str, str, str]:
    """What the gateway prints (qdiscs, classes, filters) for 100.64.1.7 and 100.64.1.8 shaped down at 10 Mbit/s."""
    qdiscs = (
        "qdisc htb eb: root refcnt 2 r2q 10 default 0 direct_packets_stat 0 direct_qlen 1000\n"
        "qdisc htb 1001: parent eb:1001 r2q 10 default 0 direct_packets_stat 0 direct_qlen 1000\n"
        "qdisc pfifo 8001: parent 1001:8 limit 1000p\n"
        "qdisc pfifo 8002: parent 1001:9 limit 1000p\n"
    )
    tail = "linklayer ethernet burst 12500b/1 mpu 0b cburst 12500b/1 mpu 0b level 0"
    classes = (
        f"class htb eb:1001 root leaf 1001: prio 0 quantum 1514 rate 100Gbit ceil 100Gbit {tail}\n"
        f"class htb 1001:8 root leaf 8001: prio 0 quantum 1514 rate {rate_8} ceil {rate_8} {tail}\n"
        f"class htb 1001:9 root leaf 8002: prio 0 quantum 1514 rate 10Mbit ceil 10Mbit {tail}\n"
    )
    link = {"fh": "800::1", "link": "", "hash_mask": "", "hash_off": 16}
    root_filters = [
        {"options": {"fh": "1:", "ht_divisor": 256}},
        {"options": {**link, "link": "1:", "hash_mask": "ff00"}},
        {"options": {"fh": "1:1:1", "key_ht": "1", "flowid": "eb:1001", "match": _m("64400100", "ffffff00")}},
    ]
    child_filters = [
        {"options": {"fh": "2:", "ht_divisor": 256}},
        {"options": {**link, "link": "2:", "hash_mask": "ff"}},
        {"options": {"fh": "2:7:1", "key_ht": "2", "flowid": "1001:8", "match": _m("64400107", "ffffffff")}},
    ]
    if filter_9:
        child_filters.append(
            {"options": {"fh": "2:8:1", "key_ht": "2", "flowid": "1001:9", "match": _m("64400108", "ffffffff")}}
        )
    return qdiscs, classes, json.dumps(root_filters) + "\n" + json.dumps(child_filters)


def _read(texts: tuple[str, str, str], previous: ReadMemo | None) -> tuple[list[Resource], ReadMemo]:
    memo = ReadMemo()
    qdiscs, classes, filters = texts
    dev = device_state(
        "down",
        "sub0",
        parse_qdiscs(qdiscs, memo, previous),
        classes,
        filters,
        child_parents=["1001:"],
        memo=memo,
        previous=previous,
    )
    assert dev.root is not None
    return [dev.root, *dev.groups, *dev.subscribers], memo


def test_a_warm_read_still_sees_a_changed_rate_and_a_deleted_filter() -> None:
    """Reads reuse what they parsed before only for text printed exactly as before: drift is never hidden."""
    devices = Devices("sub0", None, "pfifo")
    want = [
        r
        for r in render(state(sub("svc-1", "100.64.1.7"), sub("svc-2", "100.64.1.8")), devices, ()).resources
        if r.kind in ("tc/qdisc", KIND_GROUP, KIND_SUB)
    ]
    first, memo = _read(_tree_read(), None)
    assert diff(want, first, order=ORDER) == ((), ())
    again, memo = _read(_tree_read(), memo)
    assert diff(want, again, order=ORDER) == ((), ())
    assert {r.key: r for r in again if r.kind == KIND_SUB} == {r.key: r for r in first if r.kind == KIND_SUB}

    drifted, _ = _read(_tree_read("1Mbit", filter_9=False), memo)
    changes, _ = diff(want, drifted, order=ORDER)
    got = {(c.kind, c.key): dict(c.before or {}) for c in changes}
    assert got == {
        (KIND_SUB, "down|1001:8"): {"class": "rate 1Mbit ceil 1Mbit quantum 1514"},
        (KIND_SUB, "down|1001:9"): {"match": "none"},
    }


def test_the_qdisc_text_reads_as_tc_prints_it_in_json() -> None:
    qdiscs = parse_qdiscs(
        "qdisc htb eb: root refcnt 2 r2q 10 default 0\n"
        "qdisc ingress ffff: parent ffff:fff1 ----------------\n"
        "qdisc pfifo 8001: parent 1001:8 limit 1000p\n"
        "not a qdisc line\n"
    )
    assert qdiscs == [
        {"kind": "htb", "handle": "eb:", "root": True},
        {"kind": "ingress", "handle": "ffff:", "parent": "ffff:fff1"},
        {"kind": "pfifo", "handle": "8001:", "parent": "1001:8"},
    ]


def test_a_remembered_render_equals_a_fresh_one() -> None:
    """A plan reuses the resources of unchanged subscribers and renders the changed ones again."""
    before = state(sub("svc-1", "100.64.1.7"), sub("svc-2", "100.64.1.8"))
    after = state(sub("svc-1", "100.64.1.7", rate=RateLimit(20_000_000, 10_000_000)), sub("svc-2", "100.64.1.8"))
    first, memo = render_reusing(before, DEVICES, (), None)
    again, _ = render_reusing(after, DEVICES, (), memo)
    assert again == render(after, DEVICES, ())
    reused = {(r.kind, r.key) for r in again.resources} & {(r.kind, r.key) for r in first.resources}
    same = {(r.kind, r.key) for r in again.resources if any(r is old for old in first.resources)}
    assert (KIND_SUB, "down|1001:9") in same and (KIND_SUB, "down|1001:8") not in same
    assert same <= reused
    other, _ = render_reusing(before, Devices("sub0", "ifb0", "sfq"), (), memo)
    assert all(r.fields["leaf"] == "sfq" for r in other.resources if r.kind == KIND_SUB)
