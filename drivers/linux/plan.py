"""Pure planning for a Linux ``tc`` gateway: desired state rendered in the layout, and diffed against a read.

:func:`render` turns a :class:`~policies.desired.DesiredState` into the gateway's native resources (the ifb link,
the qdiscs, one class per /24 and per subscriber and direction, the nftables table and set elements); subscribers
that cannot be shaped become conflicts. :func:`plan` diffs them against what was read, :func:`scoped_plan` does
the same for the subscribers of one :class:`~drivers.models.Scope`.

Nothing here does I/O or keeps anything between calls. The one cache, :class:`RenderMemo` (the resources of each
subscriber by the values they were rendered from), is passed in by the caller and a new one returned: a plan over
thousands of unchanged subscribers then reuses their resources instead of formatting them again, with the same
result as a fresh render.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from operator import attrgetter

from drivers.base import ScopeUnavailable
from drivers.diff import diff
from drivers.linux.layout import (
    GROUP_BITS,
    GROUP_RATE,
    KIND_GROUP,
    KIND_LINK,
    KIND_NFT_SUB,
    KIND_QDISC,
    KIND_REDIRECT,
    KIND_SUB,
    KIND_SUSPENDED,
    KIND_TABLE,
    MAX_COMMENT_BYTES,
    MAX_SUBSCRIBERS,
    NFT_FAMILY,
    NFT_SUBSCRIBERS,
    NFT_TABLE,
    ORDER,
    ROOT_MAJOR,
    Devices,
    Direction,
    LayoutError,
    check_set_name,
    class_id,
    class_text,
    group_class_id,
    group_major,
    group_network,
    hx,
    match_word,
    nft_rules,
    portal_of,
    rules_digest,
)
from drivers.linux.scope import Targets
from drivers.models import Action, Change, ChangeSet, Conflict, DesiredResources, Resource, Scope, index
from policies.desired import DesiredState, EnforcementSpec, SubscriberSpec
from policies.naming import address_problem

# --- rendering desired state ------------------------------------------------------------------------------------


def comment_ok(key: str) -> bool:
    return 0 < len(key.encode()) <= MAX_COMMENT_BYTES and key.isprintable()


def placed(
    subscribers: Iterable[SubscriberSpec], subnets: Sequence[IPv4Network]
) -> tuple[list[tuple[SubscriberSpec, IPv4Address]], list[Conflict]]:
    """The subscribers that can be shaped, with their address; the others as conflicts (never written)."""
    out: list[tuple[SubscriberSpec, IPv4Address]] = []
    conflicts: list[Conflict] = []
    by_address: dict[int, str] = {}
    by_group: dict[int, int] = {}
    bounds = [(int(net.network_address), int(net.netmask)) for net in subnets]
    group_mask = (1 << GROUP_BITS) - 1
    for spec in sorted(subscribers, key=attrgetter("key")):
        addr = spec.address
        if addr is None:
            conflicts.append(Conflict(KIND_SUB, spec.key, "no IPv4 address: a Linux gateway shapes by address"))
            continue
        value = int(addr)
        if bounds and not any(value & mask == first for first, mask in bounds):
            conflicts.append(Conflict(KIND_SUB, spec.key, address_problem(addr, subnets) or "outside the subnets"))
            continue
        if not comment_ok(spec.key):
            conflicts.append(Conflict(KIND_SUB, spec.key, "key must be 1-128 bytes of printable text"))
            continue
        if value in by_address:
            conflicts.append(Conflict(KIND_SUB, spec.key, f"address {addr} is already used by {by_address[value]!r}"))
            continue
        net = value >> 8
        other = by_group.setdefault(net & group_mask, net)
        if other != net:
            conflicts.append(
                Conflict(
                    KIND_SUB,
                    spec.key,
                    f"{group_network(addr)} and {IPv4Network((other << 8, 24))} would share tc handle "
                    f"{hx(group_major(addr))}: a gateway's /24s must differ within their /10",
                )
            )
            continue
        by_address[value] = spec.key
        out.append((spec, addr))
    if len(out) > MAX_SUBSCRIBERS:
        raise LayoutError(
            f"{len(out)} subscribers exceed the {MAX_SUBSCRIBERS} one gateway can shape (leaf qdisc handle space); "
            "split them across gateways"
        )
    return out, conflicts


#: A subscriber's resources: its class per direction (as :meth:`Devices.directions`), its ``subscribers`` set
#: element and, when suspended, its address-list element.
SubscriberResources = tuple[Resource, ...]
#: What a subscriber's resources are made from, besides the gateway: address, key, rates and suspension.
SubscriberValues = tuple[IPv4Address, str, int, int, bool]


@dataclass(frozen=True)
class RenderMemo:
    """The resources a render made for each subscriber of one gateway, by the values they were made from.

    Returned by :func:`render_reusing` and handed to the next one as ``previous``. It holds only the subscribers
    that render rendered, so at most one gateway's desired state; a gateway whose devices or address list differ
    (``context``) reuses nothing.
    """

    context: tuple[Devices, str]
    subscribers: Mapping[SubscriberValues, SubscriberResources]


def _subscriber_resources(
    spec: SubscriberSpec, addr: IPv4Address, devices: Devices, set_name: str, class_texts: dict[int, str]
) -> SubscriberResources:
    addr_text, cid = str(addr), class_id(addr)
    out: list[Resource] = []
    for direction, _ in devices.directions():
        word, _ = match_word(direction)
        rate = spec.rate.download if direction == "down" else spec.rate.upload
        text = class_texts.get(rate)
        if text is None:
            text = class_texts[rate] = class_text(rate)
        fields = {"class": text, "leaf": devices.leaf, "match": f"{word} {addr_text}/32"}
        out.append(Resource(KIND_SUB, f"{direction}|{cid}", fields))
    out.append(Resource(KIND_NFT_SUB, addr_text, {"key": spec.key}))
    if spec.state == "suspended":
        out.append(Resource(KIND_SUSPENDED, addr_text, {"set": set_name}))
    return tuple(out)


def render(desired: DesiredState, devices: Devices, subnets: Sequence[IPv4Network]) -> DesiredResources:
    """The native resources of ``desired`` on a gateway with ``devices``; unplaceable subscribers as conflicts."""
    return render_reusing(desired, devices, subnets, None)[0]


def render_reusing(
    desired: DesiredState, devices: Devices, subnets: Sequence[IPv4Network], previous: RenderMemo | None
) -> tuple[DesiredResources, RenderMemo]:
    """:func:`render`, reusing the resources of subscribers ``previous`` rendered from the same values; also
    returns the memo of this render, for the next one."""
    enforcement: EnforcementSpec = desired.enforcement
    set_name = check_set_name(enforcement.address_list)
    if set_name.startswith(NFT_SUBSCRIBERS):
        raise LayoutError(f"address list may not start with {NFT_SUBSCRIBERS!r} on a Linux gateway (edgebill's own)")
    conflicts: list[Conflict] = []
    try:
        portal = portal_of(enforcement.payment_page_url)
    except LayoutError as exc:
        portal = None
        conflicts.append(Conflict(KIND_TABLE, f"{NFT_FAMILY} {NFT_TABLE}", f"{exc}; suspended HTTP is not redirected"))
    subs, refused = placed(desired.subscribers, subnets)
    conflicts.extend(refused)

    out: list[Resource] = []
    if devices.ifb is not None:
        out.append(Resource(KIND_LINK, devices.ifb, {"kind": "ifb", "up": "yes"}))
        out.append(Resource(KIND_QDISC, f"{devices.interface}|ingress", {"kind": "ingress"}))
        out.append(Resource(KIND_REDIRECT, devices.interface, {"to": devices.ifb}))
    context = (devices, set_name)
    old = previous.subscribers if previous is not None and previous.context == context else {}
    made: dict[SubscriberValues, SubscriberResources] = {}
    rendered: list[SubscriberResources] = []
    groups: dict[int, IPv4Address] = {}
    class_texts: dict[int, str] = {}
    for spec, addr in subs:
        rate = spec.rate
        key = (addr, spec.key, rate.download, rate.upload, spec.state == "suspended")
        hit = old.get(key)  # addresses are unique after placed(): each key is rendered once
        if hit is None:
            hit = _subscriber_resources(spec, addr, devices, set_name, class_texts)
        made[key] = hit
        rendered.append(hit)
        groups.setdefault(int(addr) >> 8, addr)
    for i, (direction, dev) in enumerate(devices.directions()):
        word, _ = match_word(direction)
        out.append(Resource(KIND_QDISC, f"{dev}|root", {"kind": "htb", "handle": f"{hx(ROOT_MAJOR)}:", "hash": word}))
        out.extend(r[i] for r in rendered)
        for member in groups.values():
            out.append(
                Resource(
                    KIND_GROUP,
                    f"{direction}|{group_class_id(member)}",
                    {
                        "class": class_text(GROUP_RATE),
                        "qdisc": "htb",
                        "hash": word,
                        "match": f"{word} {group_network(member)}",
                    },
                )
            )
    rules = nft_rules(set_name, portal)
    out.append(
        Resource(
            KIND_TABLE,
            f"{NFT_FAMILY} {NFT_TABLE}",
            {"set": set_name, "portal": str(portal) if portal else "", "rules": rules_digest(rules)},
        )
    )
    nft_at = len(devices.directions())
    out.extend(r[nft_at] for r in rendered)
    out.extend(r[nft_at + 1] for r in rendered if len(r) > nft_at + 1)
    return DesiredResources(tuple(out), tuple(conflicts)), RenderMemo(context, made)


# --- planning -----------------------------------------------------------------------------------------------------


def plan(
    desired: DesiredState,
    actual: Iterable[Resource],
    devices: Devices,
    subnets: Sequence[IPv4Network],
    *,
    previous: RenderMemo | None = None,
) -> tuple[ChangeSet, RenderMemo]:
    """The writes that bring a gateway with ``devices`` from ``actual`` to ``desired``, and the memo of the render.

    Subscribers that cannot be shaped (no address, outside ``subnets``, a duplicate address, a /24 whose handles
    another /24 already takes) are reported as conflicts and left out. A device whose root qdisc, ingress qdisc or
    ifb link edgebill does not own is reported and not written at all. Raises :class:`LayoutError` when the state
    would cross the kernel's limits. With ``previous`` (the memo of the last plan for this gateway), subscribers
    rendered from the same values reuse those resources: the result is the same either way.
    """
    actual = tuple(actual)
    rendered, memo = render_reusing(desired, devices, subnets, previous)
    changes, conflicts = diff(rendered.resources, actual, order=ORDER)
    return _finish(devices, rendered, actual, changes, conflicts), memo


def scoped_plan(
    desired: DesiredState,
    actual: Iterable[Resource],
    scope: Scope,
    targets: Targets,
    devices: Devices,
    subnets: Sequence[IPv4Network],
    *,
    previous: RenderMemo | None = None,
    name: str = "",
) -> ChangeSet:
    """The writes for ``scope``'s subscribers alone, whose entries on the gateway are ``targets``.

    ``targets`` are the addresses the scope's keys held when the scoped read was made (one the read found gone is
    still cleared). Their /24 is created when missing and never changed or removed here: a /24 that differs from
    what it should be raises :class:`ScopeUnavailable` (naming the gateway ``name``), for a full run.
    """
    actual = tuple(actual)
    rendered, _ = render_reusing(desired, devices, subnets, previous)
    rendered = replace(
        rendered,
        resources=tuple(targets.select(rendered.resources)),
        conflicts=tuple(c for c in rendered.conflicts if c.kind == KIND_SUB and c.key in scope.keys),
    )
    changes, conflicts = diff(rendered.resources, targets.select(actual), order=ORDER)
    kept: list[Change] = []
    for c in changes:
        if c.kind == KIND_GROUP and c.action is Action.CHANGE:
            raise ScopeUnavailable(f"{name}: group {c.key} differs from its layout; a full run repairs it")
        if c.kind == KIND_GROUP and c.action is Action.REMOVE:
            continue  # another subscriber may still be in it: a full run removes groups left empty
        kept.append(c)
    return _finish(devices, rendered, actual, kept, conflicts)


def _finish(
    devices: Devices,
    rendered: DesiredResources,
    actual: Sequence[Resource],
    changes: Sequence[Change],
    conflicts: Sequence[Conflict],
) -> ChangeSet:
    """The change set: devices edgebill does not own left out, a new leaf kind as a new class, the nftables
    table written whole."""
    blocked = _blocked(devices, conflicts)
    want: dict[tuple[str, str], Resource] = {}
    have: dict[tuple[str, str], Resource] = {}
    if any(c.action is Action.CHANGE and (c.kind == KIND_TABLE or "leaf" in c.fields) for c in changes):
        want, have = index(rendered.resources), index(actual)
    out: list[Change] = []
    for c in changes:
        if _direction_of(devices, c) in blocked:
            continue
        if c.action is Action.CHANGE and c.kind == KIND_SUB and "leaf" in c.fields:
            # A new leaf kind means a new class: its counters restart, and the epoch says so.
            old = have[(c.kind, c.key)]
            out.append(Change(Action.REMOVE, c.kind, c.key, {}, before=dict(old.fields), ref=old.ref))
            out.append(Change(Action.ADD, c.kind, c.key, dict(want[(c.kind, c.key)].fields)))
            continue
        if c.action is Action.CHANGE and c.kind == KIND_TABLE:
            full = want[(c.kind, c.key)]
            before = have[(c.kind, c.key)]
            c = replace(c, fields=dict(full.fields), before=dict(before.fields))
        out.append(c)
    return ChangeSet(tuple(out), (*rendered.conflicts, *conflicts), ())


def _blocked(devices: Devices, conflicts: Sequence[Conflict]) -> set[Direction]:
    blocked: set[Direction] = set()
    for c in conflicts:
        if c.kind == KIND_QDISC:
            dev = c.key.partition("|")[0]
            if c.key.endswith("|ingress") or dev == devices.ifb:
                blocked.add("up")
            else:
                blocked.add("down")
        elif c.kind == KIND_LINK:
            blocked.add("up")
    return blocked


def _direction_of(devices: Devices, c: Change) -> Direction | None:
    if c.kind in (KIND_GROUP, KIND_SUB):
        return "down" if c.key.startswith("down|") else "up"
    if c.kind in (KIND_LINK, KIND_REDIRECT):
        return "up"
    if c.kind == KIND_QDISC:
        dev = c.key.partition("|")[0]
        return "up" if c.key.endswith("|ingress") or dev == devices.ifb else "down"
    return None
