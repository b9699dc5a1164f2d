"""Reading a Linux gateway back: the scripts the driver runs, and their output turned into resources.

Pure: the driver runs each script over SSH and hands the output here with the :class:`GatewayCache` of the last
read; the resources come back with the renewed cache, which the driver keeps for the next call. A full read
(:func:`read_script`, :func:`gateway_state`) lists every device and the nftables table at once; a scoped read
(:func:`scoped_script`, :func:`unseen_leaves`, :func:`scoped_state`) lists only what a
:class:`~drivers.models.Scope` covers (:mod:`drivers.linux.scope`), and needs the keys a full read found.
:func:`counter_script` and :func:`counter_samples` read the byte counters.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from ipaddress import IPv4Address
from typing import Any, Final

from drivers.base import ScopeUnavailable
from drivers.linux.layout import (
    KIND_NFT_SUB,
    KIND_SUSPENDED,
    KIND_TABLE,
    NFT_FAMILY,
    NFT_TABLE,
    ROOT_MAJOR,
    Devices,
    Direction,
    class_id,
    hx,
)
from drivers.linux.parse import (
    ReadMemo,
    TcClass,
    class_counters,
    device_state,
    element_address,
    ingress_resources,
    key_resources,
    link_resource,
    nft_resources,
    nft_sets,
    one_json,
    parse_classes,
    parse_qdiscs,
    sections,
)
from drivers.linux.scope import MISSING, Targets, class_lines, elements, leaf_commands, read_commands, split_tc
from drivers.models import Action, Change, CounterSample, Resource, Scope

_EMPTY_NFT: Final = '{"nftables": []}'

#: A leaf qdisc to look up: its direction, device and the class it hangs from.
Leaf = tuple[Direction, str, str]


@dataclass(frozen=True)
class GatewayCache:
    """What a gateway's driver keeps from one call to the next; a read returns a new one, never changes this one.

    A full read reuses the parsed value of every line the gateway prints exactly as before (``lines``, ``nft``):
    results are the same as without, only cheaper. A scoped read needs what a full read found (``keys``,
    ``address_lists``) and is :class:`ScopeUnavailable` until then.
    """

    #: Per direction, what the last full read parsed, by line (:class:`~drivers.linux.parse.ReadMemo`).
    lines: Mapping[Direction, ReadMemo] = field(default_factory=dict)
    #: The nftables text the last full read got, and its resources.
    nft: tuple[str, tuple[Resource, ...]] | None = None
    #: Subscriber key by address, from the last full read and kept up to date by scoped reads and writes;
    #: ``None`` until the gateway was read in full once.
    keys: Mapping[str, str] | None = None
    #: The kind of every qdisc by its handle (no colon), per direction: a class's leaf handle names an object the
    #: kernel never reuses for another qdisc while it exists, so its kind need not be listed again.
    kinds: Mapping[Direction, Mapping[str, str]] = field(default_factory=dict)
    #: The qdiscs the last full read listed, per direction, from which ``kinds`` is made when first needed.
    qdiscs: Mapping[Direction, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    #: The address lists (nftables sets) edgebill's table holds.
    address_lists: tuple[str, ...] = ()
    #: The last scoped read's scope and what it covered, for the plan that follows it.
    scoped: tuple[Scope, Targets] | None = None

    def targets(self, scope: Scope, name: str) -> Targets:
        """What ``scope`` covers: as its scoped read found it, or from the keys known now."""
        if self.keys is None:
            raise ScopeUnavailable(f"{name}: the gateway has not been read in full yet")
        if self.scoped is not None and self.scoped[0] == scope:
            return self.scoped[1]
        return Targets.of(scope, self.keys)


def parallel_script(parts: Sequence[tuple[str, str]]) -> str:
    """A shell script running each ``(section, command)`` at once, then printing them in order after ``@@section``.

    The commands read a busy gateway's tables concurrently; their output is kept in a private folder meanwhile.
    """
    lines = ["d=$(mktemp -d) || exit 1", "trap 'rm -rf \"$d\"' EXIT"]
    lines += [f'( {command} ) > "$d/{i}" &' for i, (_, command) in enumerate(parts)]
    lines.append("wait")
    for i, (name, _) in enumerate(parts):
        lines += [f"echo '@@{name}'", f'cat "$d/{i}"']
    return "\n".join(lines) + "\n"


# --- a full read --------------------------------------------------------------------------------------------------


def read_script(devices: Devices) -> str:
    """The script of a full read: the ifb link and ingress filter, each device's classes, qdiscs and filters, and
    edgebill's nftables table, all at once."""
    d = devices
    parts: list[tuple[str, str]] = [("boot", "cat /proc/sys/kernel/random/boot_id")]
    if d.ifb is not None:
        parts += [
            ("link", f"ip -j -d link show dev {d.ifb} 2>/dev/null || echo '[]'"),
            ("ingress", f"tc -j filter show dev {d.interface} parent ffff: 2>/dev/null || echo '[]'"),
        ]
    for direction, dev in d.directions():
        # One qdisc dump serves twice: as the section itself and for the child qdiscs whose filters to read.
        parts += [
            (f"class {direction}", f"tc -d class show dev {dev} 2>/dev/null"),
            (
                f"qdisc {direction}",
                f"Q=$(tc qdisc show dev {dev} 2>/dev/null); printf '%s\\n' \"$Q\"; echo '@@filter {direction}'; "
                f'P=$(printf \'%s\\n\' "$Q" | awk \'$2 == "htb" && $4 == "parent" && '
                f'index($5, "eb:") == 1 {{ print $3 }}\'); echo $P; '
                f"{{ echo 'filter show dev {dev} parent eb:'; "
                f'for p in $P; do echo "filter show dev {dev} parent $p"; done; }} | tc -j -batch - 2>/dev/null',
            ),
        ]
    parts.append(("nft", f"nft -j list table {NFT_FAMILY} {NFT_TABLE} 2>/dev/null || echo '{_EMPTY_NFT}'"))
    return parallel_script(parts)


def gateway_state(text: str, devices: Devices, cache: GatewayCache) -> tuple[tuple[Resource, ...], GatewayCache]:
    """The resources in the output of :func:`read_script`, and the cache for the next read.

    Kinds: ``link/ifb`` (the upload device), ``tc/qdisc`` (``DEV|root``, ``IFACE|ingress``), ``tc/redirect``,
    ``tc/group`` (``DIR|eb:G``: one per /24 and direction), ``tc/subscriber`` (``DIR|G:M``), ``nft/table``,
    ``nft/subscriber`` (address -> subscriber key) and ``nft/suspended`` (address). A root qdisc that edgebill
    did not create is returned with ``owned=False`` and nothing below it is read.
    """
    parts = sections(text)
    resources: list[Resource] = []
    d = devices
    if d.ifb is not None:
        link = link_resource(d.ifb, one_json(parts.get("link", ""), []))
        if link is not None:
            resources.append(link)
    memos: dict[Direction, ReadMemo] = {}
    qdiscs_of: dict[Direction, list[dict[str, Any]]] = {}
    for direction, dev in d.directions():
        memos[direction] = ReadMemo()
        previous = cache.lines.get(direction)
        qdiscs = parse_qdiscs(parts.get(f"qdisc {direction}", ""), memos[direction], previous)
        qdiscs_of[direction] = qdiscs
        filter_part = parts.get(f"filter {direction}", "")
        _, _, filter_json = filter_part.partition("\n")
        parents = filter_part.partition("\n")[0].split()
        state = device_state(
            direction,
            dev,
            qdiscs,
            parts.get(f"class {direction}", ""),
            filter_json,
            child_parents=parents,
            memo=memos[direction],
            previous=previous,
        )
        if direction == "down" and d.ifb is not None:
            resources += ingress_resources(d, qdiscs, one_json(parts.get("ingress", ""), []))
        if state.root is not None:
            resources.append(state.root)
        resources += state.groups
        resources += state.subscribers
    nft_text = parts.get("nft", "")
    if cache.nft is not None and cache.nft[0] == nft_text:
        nft = cache.nft[1]
    else:
        nft = tuple(nft_resources(one_json(nft_text, {"nftables": []})))
    resources += nft
    table = next((r for r in nft if r.kind == KIND_TABLE), None)
    renewed = GatewayCache(
        lines=memos,
        nft=(nft_text, nft),
        keys={r.key: r.fields["key"] for r in nft if r.kind == KIND_NFT_SUB},
        qdiscs=qdiscs_of,
        address_lists=tuple(n for n in table.fields["set"].split(",") if n) if table is not None else (),
        scoped=cache.scoped,
    )
    return tuple(resources), renewed


# --- a scoped read ------------------------------------------------------------------------------------------------


def scoped_script(devices: Devices, targets: Targets, cache: GatewayCache) -> str:
    """The script of a scoped read of ``targets`` (:func:`drivers.linux.scope.read_commands`, run at once)."""
    return parallel_script(read_commands(devices, targets, cache.address_lists))


def _scoped_classes(
    parts: Mapping[str, str], devices: Devices, targets: Targets, name: str
) -> dict[Direction, tuple[str, str, list[TcClass]]]:
    """Per direction, the scoped class text, the filter text and the classes of a scoped read's output."""
    groups = sorted(targets.groups)
    out: dict[Direction, tuple[str, str, list[TcClass]]] = {}
    for direction, dev in devices.directions():
        class_text, filter_text = split_tc(parts.get(f"tc {direction}", ""), groups)
        text, has_groups = class_lines(class_text, targets)
        if not has_groups:
            raise ScopeUnavailable(f"{name}: {dev} has no edgebill tree to add to")
        out[direction] = (text, filter_text, list(parse_classes(text).values()))
    return out


def _kinds(cache: GatewayCache, direction: Direction) -> Mapping[str, str]:
    """The leaf kinds known for ``direction``: made from the last full read's qdiscs when not made yet."""
    kinds = cache.kinds.get(direction)
    if kinds is None:
        listed = cache.qdiscs.get(direction, [])
        kinds = {str(q["handle"]).rstrip(":"): str(q["kind"]) for q in listed if "parent" in q}
    return kinds


def unseen_leaves(
    parts: Mapping[str, str], devices: Devices, targets: Targets, cache: GatewayCache, name: str
) -> list[Leaf]:
    """The leaf qdiscs in a scoped read's output whose kind the cache does not know: read them with
    :func:`leaves_script` and hand the output to :func:`scoped_state`."""
    unseen: list[Leaf] = []
    for direction, (_, _, classes) in _scoped_classes(parts, devices, targets, name).items():
        kinds = _kinds(cache, direction)
        dev = devices.device(direction)
        unseen += [(direction, dev, c.classid) for c in classes if c.leaf is not None and c.leaf not in kinds]
    return unseen


def leaves_script(unseen: Sequence[Leaf]) -> str:
    """The script listing the ``unseen`` leaf qdiscs (:func:`drivers.linux.scope.leaf_commands`, run at once)."""
    return parallel_script(leaf_commands(unseen))


def scoped_state(
    parts: Mapping[str, str],
    leaves: Mapping[str, str],
    devices: Devices,
    scope: Scope,
    targets: Targets,
    cache: GatewayCache,
    name: str,
) -> tuple[tuple[Resource, ...], GatewayCache]:
    """The entries of ``scope``'s subscribers and of their /24s in a scoped read's output (``parts``, with the
    ``leaves`` the cache did not know), and the cache with their keys and leaf kinds brought up to date."""
    if cache.keys is None:
        raise ScopeUnavailable(f"{name}: the gateway has not been read in full yet")
    groups = sorted(targets.groups)
    found = _scoped_classes(parts, devices, targets, name)
    all_kinds: dict[Direction, Mapping[str, str]] = dict(cache.kinds)
    for direction, (_, _, classes) in found.items():
        known = _kinds(cache, direction)
        added: dict[str, str] = {}
        for cls in classes:
            if cls.leaf is not None and cls.leaf not in known:
                from_leaf = parse_qdiscs(leaves.get(f"leaf {direction} {cls.classid}", ""))
                added.update((str(q["handle"]).rstrip(":"), str(q["kind"])) for q in from_leaf)
        all_kinds[direction] = {**known, **added} if added else known
    resources: list[Resource] = []
    for direction, dev in devices.directions():
        text, filter_text, classes = found[direction]
        kinds = all_kinds[direction]
        qdiscs: list[dict[str, Any]] = [{"kind": "htb", "handle": f"{hx(ROOT_MAJOR)}:", "root": True}]
        for cls in classes:
            if cls.leaf is not None and cls.leaf in kinds:
                qdiscs.append({"kind": kinds[cls.leaf], "handle": f"{cls.leaf}:", "parent": cls.classid})
        state = device_state(direction, dev, qdiscs, text, filter_text, child_parents=[f"{hx(g)}:" for g in groups])
        resources += targets.select([*state.groups, *state.subscribers])
    keys: list[Resource] = []
    for g in groups:
        text = parts.get(f"keys {hx(g)}", "")
        if text.strip() != MISSING:
            keys += key_resources(elements(one_json(text, {}), targets.addresses))
    suspended: dict[str, str] = {}
    for list_name in sorted(cache.address_lists):
        text = parts.get(f"list {list_name}", "")
        if text.strip() == MISSING:
            raise ScopeUnavailable(f"{name}: address list {list_name!r} is missing")
        for elems in elements(one_json(text, {}), targets.addresses).values():
            for addr in (element_address(e) for e in elems):
                if addr is not None:
                    suspended.setdefault(addr, list_name)
    known = {a: k for a, k in cache.keys.items() if a not in targets.addresses}
    known.update((r.key, r.fields["key"]) for r in keys)
    resources += keys
    resources += [Resource(KIND_SUSPENDED, addr, {"set": list_name}) for addr, list_name in suspended.items()]
    return tuple(resources), replace(cache, keys=known, kinds=all_kinds, scoped=(scope, targets))


# --- after a write --------------------------------------------------------------------------------------------------


def after_apply(cache: GatewayCache, written: Sequence[Change]) -> GatewayCache:
    """The cache with what scoped reads rely on kept in step with what was just written: keys and address list."""
    keys = dict(cache.keys) if cache.keys is not None else None
    address_lists = cache.address_lists
    for c in written:
        if c.kind == KIND_NFT_SUB and keys is not None:
            if c.action is Action.REMOVE:
                keys.pop(c.key, None)
            elif "key" in c.fields:
                keys[c.key] = c.fields["key"]
        elif c.kind == KIND_TABLE:
            address_lists = () if c.action is Action.REMOVE else (str(c.fields["set"]),)
    return replace(cache, keys=keys, address_lists=address_lists)


# --- counters -------------------------------------------------------------------------------------------------------


def counter_script(devices: Devices) -> str:
    """The script reading the boot id, each device's ifindex and class counters, and the subscriber keys."""
    reads: list[tuple[str, str]] = [("boot", "cat /proc/sys/kernel/random/boot_id")]
    for direction, dev in devices.directions():
        reads += [
            (f"index {direction}", f"cat /sys/class/net/{dev}/ifindex 2>/dev/null"),
            (f"class {direction}", f"tc -s class show dev {dev} 2>/dev/null | grep -E '^class|^ Sent'"),
        ]
    reads.append(("nft", f"nft -j list table {NFT_FAMILY} {NFT_TABLE} 2>/dev/null || echo '{_EMPTY_NFT}'"))
    return parallel_script(reads)


def counter_samples(text: str, devices: Devices, taken: datetime) -> tuple[CounterSample, ...]:
    """Bytes per subscriber in the output of :func:`counter_script`: ``bytes_out`` downloaded, ``bytes_in``
    uploaded, subscribers named by the keys in the gateway's ``subscribers`` sets.

    ``epoch`` combines the gateway's boot id, the device's ifindex and the kernel-assigned leaf handle of each
    class, all of which change when the class or the device is recreated.
    """
    d = devices
    parts = sections(text)
    boot = parts.get("boot", "").strip()[:8]
    classes = {direction: class_counters(parts.get(f"class {direction}", "")) for direction, _ in d.directions()}
    ifindex = {direction: parts.get(f"index {direction}", "").strip() for direction, _ in d.directions()}
    keys = {r.key: r.fields["key"] for r in key_resources(nft_sets(one_json(parts.get("nft", ""), {})))}
    samples: list[CounterSample] = []
    for addr_text, key in sorted(keys.items(), key=lambda kv: kv[1]):
        try:
            cid = class_id(IPv4Address(int.from_bytes(socket.inet_aton(addr_text), "big")))
        except OSError:
            continue
        down = classes.get("down", {}).get(cid)
        if down is None or not key:
            continue
        up = classes.get("up", {}).get(cid)
        epoch = f"{boot}.{ifindex.get('down', '')}.{down[0] or '-'}"
        if d.ifb is not None:
            epoch += f".{ifindex.get('up', '')}.{up[0] if up and up[0] else '-'}"
        samples.append(
            CounterSample(key=key, bytes_in=up[1] if up else 0, bytes_out=down[1], epoch=epoch, taken_at=taken)
        )
    return tuple(samples)
