"""Targeted runs on a Linux gateway: which entries a :class:`~drivers.models.Scope` covers, and reading only them.

A scope names subscribers by key and gives their desired addresses; the addresses they hold on the gateway now
come from the keys read last (an address no longer desired must still be cleared). Everything of a subscriber is
derived from its address: its class and filter (``G:M``) on each device, its /24's group class (``eb:G``) and
child qdisc (``G:``), its key in set ``subscribers-G``, its suspension in the address list. The kernel lists
classes and filters per qdisc and nftables lists one set at a time, so a scoped read costs what a few /24s cost,
whatever the size of the gateway. Pure functions: :mod:`drivers.linux.readback` puts the read together.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, Final

from drivers.linux.layout import (
    CHILD_HT,
    KIND_GROUP,
    KIND_NFT_SUB,
    KIND_SUB,
    KIND_SUSPENDED,
    NFT_FAMILY,
    NFT_KEY_SET_PREFIX,
    NFT_TABLE,
    ROOT_HT,
    ROOT_MAJOR,
    Devices,
    Direction,
    check_set_name,
    child_filter_handle,
    class_id,
    group_major,
    hx,
    root_filter_handle,
)
from drivers.linux.parse import element_address, nft_sets
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
        if r.kind in (KIND_SUB, KIND_GROUP):
            return self.covers_class(r.key.partition("|")[2])
        if r.kind in (KIND_NFT_SUB, KIND_SUSPENDED):
            return r.key in self.addresses
        return False

    def covers_class(self, classid: str) -> bool:
        """Whether ``classid`` is a scoped subscriber's class or a scoped /24's group class."""
        major, _, minor = classid.partition(":")
        if major == hx(ROOT_MAJOR):
            return int(minor or "0", 16) in self.groups
        return classid in self.classes

    def select(self, resources: Iterable[Resource]) -> list[Resource]:
        return [r for r in resources if self.covers(r)]


def read_commands(devices: Devices, targets: Targets, address_lists: Sequence[str]) -> list[tuple[str, str]]:
    """The ``(section, command)`` pairs of a scoped read, run at once by :mod:`drivers.linux.readback`.

    Per device, one ``tc -j -d -force -batch``: the root qdisc's group classes (``parent eb:``) and the classes of
    each scoped /24's child qdisc, then ``filter get`` of exactly the filters the scope needs, each by its handle
    (the root's hash table and link, each /24's root entry, hash table and link, each subscriber's entry; a
    missing one prints nothing). :func:`split_tc` parts the output: HTB classes print as text lines, each filter
    as a JSON array naming its parent. Then each scoped /24's key set and each address list, printing
    :data:`MISSING` when nftables cannot list it.
    """
    root = f"{hx(ROOT_MAJOR)}:"
    by_group: dict[int, list[IPv4Address]] = {}
    for a in sorted(IPv4Address(t) for t in targets.addresses):
        by_group.setdefault(group_major(a), []).append(a)
    parts: list[tuple[str, str]] = []
    for direction, dev in devices.directions():
        lines = [f"class show dev {dev} parent {root}"]
        lines += [f"class show dev {dev} parent {hx(g)}:" for g in sorted(by_group)]
        wanted = [(root, f"{hx(ROOT_HT)}:"), (root, "800::1")]
        for g, members in sorted(by_group.items()):
            child = f"{hx(g)}:"
            wanted += [(root, root_filter_handle(members[0])), (child, f"{hx(CHILD_HT)}:"), (child, "800::1")]
            wanted += [(child, child_filter_handle(a)) for a in members]
        lines += [f"filter get dev {dev} parent {p} handle {h} prio 1 protocol ip u32" for p, h in wanted]
        feed = "\\n".join(lines)
        parts.append((f"tc {direction}", f"printf '{feed}\\n' | tc -j -d -force -batch - 2>/dev/null"))
    for g in sorted(by_group):
        parts.append((f"keys {hx(g)}", _list_set(f"{NFT_KEY_SET_PREFIX}{hx(g)}")))
    for name in address_lists:
        parts.append((f"list {name}", _list_set(check_set_name(name))))
    return parts


def split_tc(text: str, groups: Sequence[int]) -> tuple[str, str]:
    """The class text of one device's scoped ``tc`` batch, and its filters as the reader takes them: one JSON
    array per line, the root qdisc's first, then one per ``groups`` child qdisc in that order."""
    classes: list[str] = []
    by_parent: dict[str, list[Any]] = {}
    for line in text.splitlines():
        if not line.startswith("["):
            classes.append(line)
            continue
        try:
            found = json.loads(line)
        except ValueError:
            continue
        for f in found if isinstance(found, list) else ():
            if isinstance(f, Mapping):
                by_parent.setdefault(str(f.get("parent", "")), []).append(f)
    parents = [f"{hx(ROOT_MAJOR)}:", *(f"{hx(g)}:" for g in groups)]
    return "\n".join(classes), "\n".join(json.dumps(by_parent.get(p, [])) for p in parents)


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


def elements(data: Mapping[str, Any], addresses: frozenset[str]) -> dict[str, list[Any]]:
    """Set name -> the elements of ``addresses`` in ``nft -j list set`` output (the set's other members left out)."""
    return {name: [e for e in elems if element_address(e) in addresses] for name, elems in nft_sets(data).items()}


def _list_set(name: str) -> str:
    return f"nft -j list set {NFT_FAMILY} {NFT_TABLE} {name} 2>/dev/null || echo '{MISSING}'"


def leaf_commands(wanted: Sequence[tuple[Direction, str, str]]) -> list[tuple[str, str]]:
    """Read the leaf qdisc of each ``(direction, device, class id)`` whose qdisc handle was not seen before."""
    return [
        (f"leaf {direction} {cid}", f"tc qdisc show dev {dev} parent {cid} 2>/dev/null")
        for direction, dev, cid in wanted
    ]
