"""The writes for a change set: ``ip -batch`` lines, ``tc -batch`` lines and one nftables JSON transaction.

Pure: every line is built from values validated when the desired state was rendered (addresses parsed by
:mod:`ipaddress`, integer rates, interface names checked against the kernel's rules, handles computed from
addresses). Nothing a user typed is placed on a command line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Final

from drivers.linux.layout import (
    CHILD_HT,
    GROUP_BASE,
    KIND_GROUP,
    KIND_LINK,
    KIND_NFT_SUB,
    KIND_QDISC,
    KIND_REDIRECT,
    KIND_SUB,
    KIND_SUSPENDED,
    KIND_TABLE,
    LEAF_QDISCS,
    NFT_FAMILY,
    NFT_FORWARD,
    NFT_PREROUTING,
    NFT_SUBSCRIBERS,
    NFT_TABLE,
    REDIRECT_PREF,
    ROOT_HT,
    ROOT_MAJOR,
    Devices,
    Direction,
    LayoutError,
    Portal,
    check_set_name,
    class_args,
    hx,
    key_set,
    match_word,
    nft_rules,
    root_node,
)
from drivers.models import Action, Change

_RATE_TEXT = re.compile(r"rate (\d+)([KMGT]?)bit ")
_UNITS: Final = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_MATCH = re.compile(r"(dst|src) (\d+\.\d+\.\d+\.\d+/\d+)")
_PORTAL = re.compile(r"(\d+\.\d+\.\d+\.\d+):(\d+)")


@dataclass(frozen=True)
class Line:
    """One command and the change it belongs to. ``tolerate`` names kernel errors that mean "already done"."""

    text: str
    change: int
    tolerate: tuple[str, ...] = ()


EXISTS: Final = ("File exists", "already exists")
MISSING: Final = ("No such file or directory", "Cannot find", "not found", "does not exist", "Invalid handle")


@dataclass
class Script:
    """Everything to send for one change set."""

    ip: list[Line] = field(default_factory=list)
    tc: list[Line] = field(default_factory=list)
    nft: list[dict[str, Any]] = field(default_factory=list)
    nft_changes: list[int] = field(default_factory=list)


def rate_of(class_text: str) -> int:
    m = _RATE_TEXT.match(class_text)
    if m is None:
        raise LayoutError(f"unreadable class parameters {class_text!r}")
    return int(m.group(1)) * _UNITS[m.group(2)]


def network_of(match_text: str) -> IPv4Network | None:
    m = _MATCH.fullmatch(match_text)
    return IPv4Network(m.group(2)) if m else None


def _split_key(key: str) -> tuple[Direction, str]:
    direction, _, handle = key.partition("|")
    if direction not in ("down", "up"):
        raise LayoutError(f"bad tc key {key!r}")
    return ("down" if direction == "down" else "up"), handle


def _handles(handle: str) -> tuple[int, int]:
    major, _, minor = handle.partition(":")
    return int(major, 16), int(minor, 16)


class Builder:
    """Turns :class:`Change` values into :class:`Script` lines for one gateway's devices."""

    def __init__(self, devices: Devices) -> None:
        self.devices = devices

    def build(self, changes: Sequence[Change]) -> Script:
        script = Script()
        removed_groups = {c.key for c in changes if c.kind == KIND_GROUP and c.action is Action.REMOVE}
        element_deletes: list[dict[str, Any]] = []
        element_adds: dict[str, list[dict[str, Any]]] = {}
        deleted_sets: set[str] = set()
        key_sets: set[str] = set()
        # A /24 that goes (its download group is removed) takes its key set with it.
        emptied: set[str] = set()
        for i, c in enumerate(changes):
            if c.kind == KIND_GROUP and c.action is Action.REMOVE and c.key.startswith("down|"):
                net = network_of(str((c.before or {}).get("match", "")))
                if net is not None:
                    emptied.add(key_set(net.network_address))
                    script.nft_changes.append(i)
            if c.kind == KIND_LINK:
                self._link(script, i, c)
            elif c.kind == KIND_QDISC:
                self._qdisc(script, i, c)
            elif c.kind == KIND_REDIRECT:
                self._redirect(script, i, c)
            elif c.kind == KIND_GROUP:
                self._group(script, i, c)
            elif c.kind == KIND_SUB:
                direction, handle = _split_key(c.key)
                major, _ = _handles(handle)
                if c.action is Action.REMOVE and f"{direction}|{hx(ROOT_MAJOR)}:{hx(major)}" in removed_groups:
                    continue  # the group's removal takes the class with it
                self._subscriber(script, i, c)
            elif c.kind == KIND_TABLE:
                deleted_sets |= self._table(script, i, c)
            elif c.kind in (KIND_NFT_SUB, KIND_SUSPENDED):
                script.nft_changes.append(i)
                address = IPv4Address(c.key)
                set_name = key_set(address) if c.kind == KIND_NFT_SUB else ""
                if set_name:
                    key_sets.add(set_name)
                if c.action in (Action.CHANGE, Action.REMOVE):
                    old_set = set_name or str((c.before or {}).get("set", ""))
                    if old_set and old_set not in deleted_sets:
                        # nft 1.0 has no "delete if present": adding first makes the delete always succeed.
                        gone = [{"elem": {"val": str(address)}}]
                        element_deletes.append(_element_op("add", old_set, gone))
                        element_deletes.append(_element_op("delete", old_set, gone))
                if c.action in (Action.ADD, Action.CHANGE):
                    new_set = set_name or check_set_name(str(c.fields.get("set") or (c.before or {}).get("set")))
                    if c.kind == KIND_NFT_SUB:
                        elem: dict[str, Any] = {"elem": {"val": str(address), "comment": c.fields["key"]}}
                    else:
                        elem = {"elem": {"val": str(address)}}
                    element_adds.setdefault(new_set, []).append(elem)
            else:
                raise LayoutError(f"unknown change kind {c.kind!r}")
        if key_sets:
            base = {"family": NFT_FAMILY, "table": NFT_TABLE, "type": "ipv4_addr"}
            # Adding a set that exists is a no-op: the elements below always have their set.
            script.nft.extend({"add": {"set": {**base, "name": name}}} for name in sorted(key_sets))
        script.nft.extend(element_deletes)
        for set_name, elems in element_adds.items():
            script.nft.append(_element_op("add", set_name, elems))
        for name in sorted(emptied):
            gone_set = {"family": NFT_FAMILY, "table": NFT_TABLE, "name": name, "type": "ipv4_addr"}
            script.nft += [{"add": {"set": gone_set}}, {"delete": {"set": gone_set}}]
        return script

    # --- links and device-level qdiscs -------------------------------------------------------------------

    def _link(self, script: Script, i: int, c: Change) -> None:
        name = self.devices.ifb
        if name is None or c.key != name:
            raise LayoutError(f"unexpected link change for {c.key!r}")
        if c.action is Action.ADD:
            script.ip.append(Line(f"link add name {name} type ifb", i, EXISTS))
        if c.action in (Action.ADD, Action.CHANGE):
            script.ip.append(Line(f"link set dev {name} up", i))
        elif c.action is Action.REMOVE:
            script.ip.append(Line(f"link del dev {name}", i, MISSING))

    def _qdisc(self, script: Script, i: int, c: Change) -> None:
        dev, _, where = c.key.partition("|")
        if dev not in (self.devices.interface, self.devices.ifb):
            raise LayoutError(f"unexpected qdisc change on {dev!r}")
        if where == "ingress":
            if c.action is Action.REMOVE:
                script.tc.append(Line(f"qdisc del dev {dev} ingress", i, MISSING))
            else:
                script.tc.append(Line(f"qdisc add dev {dev} handle ffff: ingress", i, EXISTS))
            return
        if c.action is Action.REMOVE:
            script.tc.append(Line(f"qdisc del dev {dev} root", i, MISSING))
            return
        direction: Direction = "down" if dev == self.devices.interface else "up"
        _, off = match_word(direction)
        root = hx(ROOT_MAJOR)
        if c.action is Action.ADD or "kind" in c.fields or "handle" in c.fields:
            script.tc.append(Line(f"qdisc replace dev {dev} root handle {root}: htb default 0", i))
        script.tc.append(
            Line(
                f"filter add dev {dev} parent {root}: prio 1 handle {hx(ROOT_HT)}: protocol ip u32 divisor 256",
                i,
                EXISTS,
            )
        )
        script.tc.append(
            Line(
                f"filter replace dev {dev} parent {root}: prio 1 handle 800::1 protocol ip u32 ht 800:: "
                f"match u32 0 0 hashkey mask 0x0000ff00 at {off} link {hx(ROOT_HT)}:",
                i,
            )
        )

    def _redirect(self, script: Script, i: int, c: Change) -> None:
        dev = self.devices.interface
        if c.key != dev:
            raise LayoutError(f"unexpected redirect change on {c.key!r}")
        where = f"dev {dev} parent ffff: prio {REDIRECT_PREF} handle 800::1 protocol ip u32"
        if c.action is Action.REMOVE:
            script.tc.append(Line(f"filter del {where}", i, MISSING))
            return
        ifb = self.devices.ifb
        if ifb is None:
            raise LayoutError("redirect without upload_ifb")
        script.tc.append(Line(f"filter replace {where} match u32 0 0 action mirred egress redirect dev {ifb}", i))

    # --- the nested tree ------------------------------------------------------------------------------------

    def _group(self, script: Script, i: int, c: Change) -> None:
        direction, handle = _split_key(c.key)
        dev = self.devices.device(direction)
        root_major, major = _handles(handle)
        if root_major != ROOT_MAJOR or major < GROUP_BASE:
            raise LayoutError(f"unexpected group handle {handle!r}")
        word, off = match_word(direction)
        root, g = hx(ROOT_MAJOR), hx(major)
        if c.action is Action.REMOVE:
            net = network_of(str((c.before or {}).get("match", "")))
            if net is not None:
                first = net.network_address
                script.tc.append(
                    Line(
                        f"filter del dev {dev} parent {root}: prio 1 handle {_root_filter(first)} protocol ip u32",
                        i,
                        MISSING,
                    )
                )
            script.tc.append(Line(f"class del dev {dev} classid {root}:{g}", i, MISSING))
            return
        fields = c.fields
        full = c.action is Action.ADD
        if full or "class" in fields:
            script.tc.append(
                Line(
                    f"class replace dev {dev} parent {root}: classid {root}:{g} {class_args(rate_of(fields['class']))}",
                    i,
                )
            )
        if full or "qdisc" in fields:
            script.tc.append(Line(f"qdisc replace dev {dev} parent {root}:{g} handle {g}: htb default 0", i))
        if full or "qdisc" in fields or "hash" in fields:
            script.tc.append(
                Line(
                    f"filter add dev {dev} parent {g}: prio 1 handle {hx(CHILD_HT)}: protocol ip u32 divisor 256",
                    i,
                    EXISTS,
                )
            )
            script.tc.append(
                Line(
                    f"filter replace dev {dev} parent {g}: prio 1 handle 800::1 protocol ip u32 ht 800:: "
                    f"match u32 0 0 hashkey mask 0x000000ff at {off} link {hx(CHILD_HT)}:",
                    i,
                )
            )
        if full or "match" in fields:
            net = network_of(str(fields["match"]))
            if net is None or net.prefixlen != 24:
                raise LayoutError(f"bad group match {fields['match']!r}")
            first = net.network_address
            old = network_of(str((c.before or {}).get("match", "")))
            if old is not None and _root_filter(old.network_address) != _root_filter(first):
                script.tc.append(
                    Line(
                        f"filter del dev {dev} parent {root}: prio 1 handle {_root_filter(old.network_address)} "
                        "protocol ip u32",
                        i,
                        MISSING,
                    )
                )
            script.tc.append(
                Line(
                    f"filter replace dev {dev} parent {root}: prio 1 handle {_root_filter(first)} protocol ip u32 "
                    f"ht {hx(ROOT_HT)}:{hx((int(first) >> 8) & 0xFF)}: match ip {word} {net} flowid {root}:{g}",
                    i,
                )
            )

    def _subscriber(self, script: Script, i: int, c: Change) -> None:
        direction, handle = _split_key(c.key)
        dev = self.devices.device(direction)
        major, minor = _handles(handle)
        if major < GROUP_BASE or not 1 <= minor <= 256:
            raise LayoutError(f"unexpected subscriber handle {handle!r}")
        word, _ = match_word(direction)
        g, m = hx(major), hx(minor)
        node = f"{hx(CHILD_HT)}:{hx(minor - 1)}:1"
        if c.action is Action.REMOVE:
            script.tc.append(Line(f"filter del dev {dev} parent {g}: prio 1 handle {node} protocol ip u32", i, MISSING))
            script.tc.append(Line(f"class del dev {dev} classid {g}:{m}", i, MISSING))
            return
        fields = c.fields
        full = c.action is Action.ADD
        if full or "class" in fields:
            script.tc.append(
                Line(f"class replace dev {dev} parent {g}: classid {g}:{m} {class_args(rate_of(fields['class']))}", i)
            )
        if full or "leaf" in fields:
            leaf = str(fields["leaf"])
            if leaf not in LEAF_QDISCS:
                raise LayoutError(f"unknown leaf qdisc {leaf!r}")
            script.tc.append(Line(f"qdisc replace dev {dev} parent {g}:{m} {LEAF_QDISCS[leaf]}", i))
        if full or "match" in fields:
            net = network_of(str(fields["match"]))
            if net is None or net.prefixlen != 32 or (int(net.network_address) & 0xFF) != minor - 1:
                raise LayoutError(f"bad subscriber match {fields['match']!r} for {handle}")
            script.tc.append(
                Line(
                    f"filter replace dev {dev} parent {g}: prio 1 handle {node} protocol ip u32 "
                    f"ht {hx(CHILD_HT)}:{hx(minor - 1)}: match ip {word} {net} flowid {g}:{m}",
                    i,
                )
            )

    # --- nftables ----------------------------------------------------------------------------------------

    def _table(self, script: Script, i: int, c: Change) -> set[str]:
        script.nft_changes.append(i)
        base = {"family": NFT_FAMILY, "table": NFT_TABLE}
        if c.action is Action.REMOVE:
            script.nft.append({"delete": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}})
            return set()
        set_name = check_set_name(str(c.fields["set"]))
        portal_text = str(c.fields.get("portal", ""))
        portal: Portal | None = None
        if portal_text:
            m = _PORTAL.fullmatch(portal_text)
            if m is None:
                raise LayoutError(f"bad portal {portal_text!r}")
            portal = Portal(IPv4Address(m.group(1)), int(m.group(2)))
        ops: list[dict[str, Any]] = [
            {"add": {"table": {"family": NFT_FAMILY, "name": NFT_TABLE}}},
            {"add": {"set": {**base, "name": set_name, "type": "ipv4_addr"}}},
            {
                "add": {
                    "chain": {
                        **base,
                        "name": NFT_FORWARD,
                        "type": "filter",
                        "hook": "forward",
                        "prio": -10,
                        "policy": "accept",
                    }
                }
            },
            {
                "add": {
                    "chain": {
                        **base,
                        "name": NFT_PREROUTING,
                        "type": "nat",
                        "hook": "prerouting",
                        "prio": -100,
                        "policy": "accept",
                    }
                }
            },
            {"flush": {"chain": {**base, "name": NFT_FORWARD}}},
            {"flush": {"chain": {**base, "name": NFT_PREROUTING}}},
        ]
        for chain, rules in nft_rules(set_name, portal).items():
            ops.extend({"add": {"rule": {**base, "chain": chain, "expr": expr}}} for expr in rules)
        deleted: set[str] = set()
        before = str((c.before or {}).get("set", ""))
        for old in before.split(","):
            if old and old != set_name and not old.startswith(NFT_SUBSCRIBERS):
                old_set = {**base, "name": check_set_name(old), "type": "ipv4_addr"}
                ops.append({"add": {"set": old_set}})
                ops.append({"delete": {"set": old_set}})
                deleted.add(old)
        script.nft.extend(ops)
        return deleted


def _root_filter(first: IPv4Address) -> str:
    return f"{hx(ROOT_HT)}:{hx((int(first) >> 8) & 0xFF)}:{hx(root_node(first))}"


def _element_op(verb: str, set_name: str, elems: list[dict[str, Any]]) -> dict[str, Any]:
    return {verb: {"element": {"family": NFT_FAMILY, "table": NFT_TABLE, "name": set_name, "elem": elems}}}
