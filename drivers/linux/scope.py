"""Targeted runs on a Linux gateway: which entries a :class:`~drivers.models.Scope` covers, and reading only them.

A scope names subscribers by key and gives their desired addresses; the addresses they hold on the gateway now
come from the keys read last (an address no longer desired must still be cleared). Everything of a subscriber is
derived from its address: its class and filter (``G:M``) on each device, its /24's group class (``eb:G``) and
child qdisc (``G:``), its key in set ``subscribers-G``, its suspension in the address list. The kernel lists
classes and filters per qdisc and nftables lists one set at a time, so a scoped read costs what a few /24s cost,
whatever the size of the gateway. Pure functions: the driver runs the script and hands the output back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, Final

from drivers.linux.layout import (
    KIND_GROUP,
    KIND_NFT_SUB,
    KIND_SUB,
    KIND_SUSPENDED,
    NFT_FAMILY,
    NFT_KEY_SET_PREFIX,
    NFT_TABLE,
    ROOT_MAJOR,
    Devices,
    Direction,
    check_set_name,
    class_id,
    group_major,
    hx,
)
from drivers.models import Resource, Scope

#: Printed instead of a set that could not be listed (no table, no such set).
MISSING: Final = "@missing"


@dataclass(frozen=True)
class Targets:
    """What a scope covers on one gateway, as the keys of the resources it may read and write."""

    addresses: frozenset[str]
    groups: frozenset[int]
    classes: frozenset[str]

    @classmethod
    def of(cls, scope: Scope, keys_by_address: Mapping[str, str]) -> Targets:
        """The scope's desired addresses and the addresses its keys hold on the gateway (``keys_by_address``)."""
        held = {addr for addr, key in keys_by_address.items() if key in scope.keys}
        addresses = {str(a) for a in scope.addresses} | held
        parsed = [IPv4Address(a) for a in addresses]
        return cls(
            addresses=frozenset(addresses),
            groups=frozenset(group_major(a) for a in parsed),
            classes=frozenset(class_id(a) for a in parsed),
        )

    def covers(self, r: Resource) -> bool:
        """Whether ``r`` belongs to a scoped subscriber or to a scoped subscriber's /24."""
        if r.kind == KIND_SUB:
            return r.key.partition("|")[2] in self.classes
        if r.kind in (KIND_NFT_SUB, KIND_SUSPENDED):
            return r.key in self.addresses
        if r.kind == KIND_GROUP:
            handle = r.key.partition("|")[2]
            major, _, minor = handle.partition(":")
            return major == hx(ROOT_MAJOR) and int(minor or "0", 16) in self.groups
        return False

    def covers_class(self, classid: str) -> bool:
        """Whether ``classid`` is a scoped subscriber's class or a scoped /24's group class."""
        major, _, minor = classid.partition(":")
        if major == hx(ROOT_MAJOR):
            return int(minor or "0", 16) in self.groups
        return classid in self.classes

    def select(self, resources: Iterable[Resource]) -> list[Resource]:
        return [r for r in resources if self.covers(r)]


def read_script(devices: Devices, targets: Targets, address_lists: Sequence[str]) -> list[tuple[str, str]]:
    """The ``(section, command)`` pairs of a scoped read (run at once by the driver's parallel script).

    Per device, one ``tc -j -d -batch`` listing the root qdisc's group classes (``parent eb:``), the classes of
    each scoped /24's child qdisc, then their filters, the root's first (:func:`split_tc` parts the output: HTB
    classes print as text lines, each filter list as one JSON array). Then each scoped /24's key set and each
    address list, printing :data:`MISSING` when nftables cannot list it.
    """
    parents = [hx(ROOT_MAJOR), *(hx(g) for g in sorted(targets.groups))]
    parts: list[tuple[str, str]] = []
    for direction, dev in devices.directions():
        lines = [f"class show dev {dev} parent {p}:" for p in parents]
        lines += [f"filter show dev {dev} parent {p}:" for p in parents]
        feed = "\\n".join(lines)
        parts.append((f"tc {direction}", f"printf '{feed}\\n' | tc -j -d -batch - 2>/dev/null"))
    for g in sorted(targets.groups):
        parts.append((f"keys {hx(g)}", _list_set(f"{NFT_KEY_SET_PREFIX}{hx(g)}")))
    for name in address_lists:
        parts.append((f"list {name}", _list_set(check_set_name(name))))
    return parts


def split_tc(text: str) -> tuple[str, str]:
    """The class text and the filter JSON lines of one device's scoped ``tc`` batch."""
    classes: list[str] = []
    filters: list[str] = []
    for line in text.splitlines():
        (filters if line.startswith("[") else classes).append(line)
    return "\n".join(classes), "\n".join(filters)


def class_lines(text: str, targets: Targets) -> tuple[str, bool]:
    """The lines of ``tc class show`` text for the scoped classes, and whether any group class was listed."""
    kept: list[str] = []
    groups = False
    for line in text.splitlines():
        fields = line.split(" ", 3)
        if len(fields) < 3 or fields[0] != "class":
            continue
        groups = groups or fields[2].startswith(f"{hx(ROOT_MAJOR)}:")
        if targets.covers_class(fields[2]):
            kept.append(line)
    return "\n".join(kept), groups


def filter_lines(text: str, targets: Targets) -> str:
    """The filter batch's JSON arrays with only what the scoped classes need: every hash table and link, and
    the scoped classes' own matches (one array per line, as ``tc -j -batch`` prints them)."""
    out: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            entries = json.loads(line)
        except ValueError:
            return text  # not one array per line: parsed whole by the reader, as a full read is
        kept = [
            f
            for f in entries
            if not isinstance(f, Mapping)
            or "flowid" not in f.get("options", {})
            or targets.covers_class(str(f["options"]["flowid"]))
        ]
        out.append(json.dumps(kept))
    return "\n".join(out)


def elements(data: Mapping[str, Any], addresses: frozenset[str]) -> dict[str, list[Any]]:
    """Set name -> the elements of ``addresses`` in ``nft -j list set`` output (the set's other members left out)."""
    out: dict[str, list[Any]] = {}
    for item in data.get("nftables", []) if isinstance(data.get("nftables"), list) else []:
        if "set" not in item:
            continue
        kept = []
        for elem in item["set"].get("elem", []):
            value = elem.get("elem", {}).get("val") if isinstance(elem, Mapping) else elem
            if isinstance(value, str) and value in addresses:
                kept.append(elem)
        out[str(item["set"]["name"])] = kept
    return out


def _list_set(name: str) -> str:
    return f"nft -j list set {NFT_FAMILY} {NFT_TABLE} {name} 2>/dev/null || echo '{MISSING}'"


def leaf_script(wanted: Sequence[tuple[Direction, str, str]]) -> list[tuple[str, str]]:
    """Read the leaf qdisc of each ``(direction, device, class id)`` whose qdisc handle was not seen before."""
    return [
        (f"leaf {direction} {cid}", f"tc qdisc show dev {dev} parent {cid} 2>/dev/null")
        for direction, dev, cid in wanted
    ]
