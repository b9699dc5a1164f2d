"""Pure RouterOS planning: a desired state rendered into menu entries, and the diff against what was read.

:func:`render` turns a :class:`~policies.desired.DesiredState` into the PPP profiles and secrets, simple queues
and enforcement address-list entries it needs, in the spelling of :mod:`drivers.mikrotik.menus`; entries a router
cannot hold become conflicts. :func:`plan` diffs them against the router's entries with :func:`drivers.diff.diff`,
narrowed to a :class:`~drivers.models.Scope` for a targeted run, and lists the PPPoE sessions to drop.
Nothing here talks to a router or keeps anything between calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from drivers.diff import diff
from drivers.mikrotik.menus import (
    ADDRESS_LIST,
    KINDS,
    PROFILE,
    QUEUE,
    SECRET,
    InvalidRouterInput,
    dedupe,
    owner_comment,
    queue_limits,
    rate_limit_text,
    subscriber_address,
    validate_name,
    validate_rate,
)
from drivers.models import Action, ChangeSet, Conflict, DesiredResources, Resource, Scope
from policies.desired import DesiredState, ProfileSpec, SubscriberSpec
from policies.naming import NamingError, pppoe_password

__all__ = ["plan", "render"]


# --- desired state to resources --------------------------------------------------------------------------------


def _enforced_profiles(desired: DesiredState) -> set[str]:
    """Profiles whose sessions the router itself puts in the enforcement list (throttled, blocked)."""
    mode = desired.enforcement.suspend_mode
    return {
        s.profile
        for s in desired.subscribers
        if s.connection == "pppoe" and (s.state == "throttled" or (s.state == "suspended" and mode == "block"))
    }


def render(desired: DesiredState, *, encoding: str = "utf-8") -> DesiredResources:
    """The RouterOS entries ``desired`` needs; entries a router cannot hold become conflicts, not writes."""
    enforcement = desired.enforcement
    out: list[Resource] = []
    refused: list[Conflict] = []
    enforced = _enforced_profiles(desired)
    good_profiles: set[str] = set()
    for p in desired.profiles:
        problem = _problem(p, encoding)
        if problem:
            refused.append(Conflict(PROFILE, p.name, problem))
            continue
        good_profiles.add(p.name)
        out.append(
            Resource(
                PROFILE,
                p.name,
                {
                    "name": p.name,
                    "rate-limit": rate_limit_text(p.rate),
                    "address-list": enforcement.address_list if p.name in enforced else "",
                    "comment": owner_comment(),
                },
            )
        )
    try:
        validate_name(enforcement.address_list, what="enforcement address list", encoding=encoding)
        list_problem = ""
    except InvalidRouterInput as exc:
        list_problem = str(exc)
    for s in desired.subscribers:
        kind = SECRET if s.connection == "pppoe" else QUEUE
        problem = _subscriber_problem(s, encoding, good_profiles)
        if problem:
            refused.append(Conflict(kind, s.key, problem))
            continue
        comment = owner_comment(s.service_id)
        if s.connection == "pppoe":
            disabled = s.state == "suspended" and enforcement.suspend_mode == "disable"
            out.append(
                Resource(
                    SECRET,
                    s.key,
                    {
                        "name": s.key,
                        "service": "pppoe",
                        "profile": s.profile,
                        "disabled": "true" if disabled else "false",
                        "remote-address": str(s.address) if s.address is not None else "",
                        "password": s.password or "",
                        "comment": comment,
                    },
                    write_only=frozenset({"password"}),
                )
            )
        else:
            assert s.address is not None  # checked by _subscriber_problem
            out.append(
                Resource(
                    QUEUE,
                    s.key,
                    {
                        "name": s.key,
                        "target": f"{s.address}/32",
                        **queue_limits(s.rate),
                        "disabled": "false",
                        "comment": comment,
                    },
                )
            )
        if s.state != "active" and s.address is not None:
            if list_problem:
                refused.append(Conflict(ADDRESS_LIST, f"{enforcement.address_list}|{s.address}", list_problem))
                continue
            out.append(
                Resource(
                    ADDRESS_LIST,
                    f"{enforcement.address_list}|{s.address}",
                    {
                        "list": enforcement.address_list,
                        "address": str(s.address),
                        "disabled": "false",
                        "comment": comment,
                    },
                )
            )
    return DesiredResources(tuple(out), tuple(refused))


def _problem(profile: ProfileSpec, encoding: str) -> str:
    try:
        validate_name(profile.name, what="profile name", encoding=encoding)
        validate_rate(profile.rate, what=f"profile {profile.name!r}")
    except InvalidRouterInput as exc:
        return str(exc)
    return ""


def _subscriber_problem(s: SubscriberSpec, encoding: str, profiles: set[str]) -> str:
    try:
        validate_name(s.key, what="PPPoE login" if s.connection == "pppoe" else "queue name", encoding=encoding)
        validate_rate(s.rate, what=f"service {s.service_id}")
    except InvalidRouterInput as exc:
        return str(exc)
    if s.connection == "pppoe":
        if s.profile not in profiles:
            return f"profile {s.profile!r} is not in the desired state or cannot be written"
        if not s.password:
            return "a PPPoE secret needs a password"
        try:
            pppoe_password(s.password)
        except NamingError as exc:
            return str(exc)
    elif s.address is None:
        return "a static-IP service needs an address"
    return ""


# --- scoped runs ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _InScope:
    """Which entries a scoped plan may look at, and so add, change or remove.

    * secrets and queues named by a scoped key;
    * address-list entries at an address the desired state gives a scoped subscriber, and owned entries at the
      address a scoped subscriber's owned secret or queue still holds, carrying that entry's owner comment (the
      entry of a terminated subscriber, or one left at an address changed by hand);
    * the profiles the scoped subscribers are on now. A profile no scoped subscriber is on is outside the scope,
      so a scoped plan never removes a profile.
    """

    keys: frozenset[str]
    addresses: frozenset[str]
    held: frozenset[tuple[str, str]]
    profiles: frozenset[str]

    @classmethod
    def of(cls, scope: Scope, desired: DesiredState, actual: Iterable[Resource]) -> _InScope:
        keys = scope.keys
        addresses = {str(a) for a in scope.addresses}
        addresses.update(str(s.address) for s in desired.subscribers if s.key in keys and s.address is not None)
        held: set[tuple[str, str]] = set()
        for r in actual:
            if r.kind in (SECRET, QUEUE) and r.key in keys and (address := subscriber_address(r)) is not None:
                held.add((address, r.fields.get("comment", "")))
        profiles = frozenset(s.profile for s in desired.subscribers if s.key in keys)
        return cls(keys, frozenset(addresses), frozenset(held), profiles)

    def holds(self, kind: str, key: str, resource: Resource | None = None) -> bool:
        if kind in (SECRET, QUEUE):
            return key in self.keys
        if kind == PROFILE:
            return key in self.profiles
        address = key.partition("|")[2]
        if address in self.addresses:
            return True
        return resource is not None and resource.owned and (address, resource.fields.get("comment", "")) in self.held


def _keep_enforcement_lists(
    wanted: Iterable[Resource], actual: Iterable[Resource], address_list: str
) -> tuple[Resource, ...]:
    """Profiles as wanted, except that a profile the router puts in the enforcement list stays there.

    A scoped desired state knows only the scoped subscribers, so it cannot tell whether an unscoped throttled or
    blocked subscriber still needs its profile to list sessions: only a full run takes the list off a profile.
    """
    listed = {
        r.key
        for r in actual
        if r.kind == PROFILE and r.owned and r.fields.get("address-list") == address_list and address_list
    }
    out: list[Resource] = []
    for r in wanted:
        if r.kind == PROFILE and r.key in listed and r.fields.get("address-list") == "":
            r = replace(r, fields={**r.fields, "address-list": address_list})
        out.append(r)
    return tuple(out)


# --- the plan --------------------------------------------------------------------------------------------------


def plan(
    desired: DesiredState, actual: Iterable[Resource], *, encoding: str = "utf-8", scope: Scope | None = None
) -> ChangeSet:
    """Pure: the writes turning ``actual`` into ``desired``, and the PPPoE sessions to drop afterwards.

    A session is dropped when its secret's profile or ``disabled`` changes, or the secret is removed, so that
    the new limit or state takes effect now rather than at the next dial-in.

    With a ``scope``, both sides are first narrowed to the scoped subscribers' entries and the profiles they are
    on (see :class:`_InScope`), then diffed the same way: a scoped key that ``desired`` no longer holds has its
    owned entries removed, a profile may be added or changed but is never removed, and nothing else is touched.
    """
    rendered = render(desired, encoding=encoding)
    wanted = rendered.resources
    held = dedupe(actual)
    refused = rendered.conflicts
    if scope is not None:
        inside = _InScope.of(scope, desired, held)
        wanted = tuple(r for r in wanted if inside.holds(r.kind, r.key))
        held = tuple(r for r in held if inside.holds(r.kind, r.key, r))
        wanted = _keep_enforcement_lists(wanted, held, desired.enforcement.address_list)
        refused = tuple(c for c in refused if inside.holds(c.kind, c.key))
    changes, conflicts = diff(wanted, held, order=KINDS)
    refused_keys = {(c.kind, c.key) for c in refused}
    # An entry we refused to render must not be removed because it is "no longer desired": leave it alone.
    changes = tuple(c for c in changes if not (c.action is Action.REMOVE and (c.kind, c.key) in refused_keys))
    disconnect: list[str] = []
    for c in changes:
        if c.kind != SECRET:
            continue
        if c.action is Action.REMOVE or (c.action is Action.CHANGE and ({"profile", "disabled"} & set(c.fields))):
            disconnect.append(c.key)
    return ChangeSet(changes, (*refused, *conflicts), tuple(disconnect))
