"""Plain typed values exchanged between the daemon and every driver.

The daemon hands a driver a vendor-neutral :class:`~policies.desired.DesiredState` (compiled from the database by
``policies.provisioning``). The driver renders it into native :class:`Resource` entries (RouterOS menu rows, tc
classes and filters, nftables set elements), reads the router's actual entries, and a pure diff produces a
:class:`ChangeSet`: additions, modifications of changed fields only, and removals, in the order they must be
written. Nothing here holds a library object or talks to a network.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address

from policies.desired import DesiredState

#: Marker placed in the ``comment`` (or equivalent) of every entry edgebill owns; entries without it are never
#: modified or removed.
OWNER_MARK = "edgebill"


@dataclass(frozen=True)
class Scope:
    """The subscribers one targeted run is limited to: a plan change, a suspension, a release, a new service.

    ``keys`` are their subscriber keys (whether or not the desired state still holds them: a terminated service's
    entries are removed), ``addresses`` the addresses the desired state gives them. A scoped run reads, plans and
    writes only these subscribers' entries and what they need to exist (their profile, their /24's classes);
    it never removes or changes anything shared, and never touches another subscriber. A full run does the rest.
    """

    keys: frozenset[str]
    addresses: frozenset[IPv4Address] = frozenset()

    @classmethod
    def of(cls, desired: DesiredState, keys: Iterable[str]) -> Scope:
        """The scope of ``keys``, with the addresses ``desired`` gives them."""
        wanted = frozenset(keys)
        addresses = frozenset(s.address for s in desired.subscribers if s.key in wanted and s.address is not None)
        return cls(wanted, addresses)

    def __bool__(self) -> bool:
        return bool(self.keys)


# --- native entries and their diff --------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One native entry on a router, identified by ``(kind, key)``.

    ``kind`` names the table (``ppp/profile``, ``queue/simple``, ``tc/class``...); ``key`` is its natural key
    (a name, or ``list|address``), never a router-assigned id. ``fields`` holds the managed properties as the
    driver compares them (already normalised to one spelling). ``owned`` is False for entries without the
    ownership marker, and for dynamic or built-in entries: the diff never touches those. ``write_only`` names
    fields the router does not reveal (a password): they are sent on creation, compared only when read back.
    ``ref`` is the router's handle for the entry (a RouterOS ``.id``), only valid for the read it came from.
    """

    kind: str
    key: str
    fields: Mapping[str, str]
    owned: bool = True
    write_only: frozenset[str] = frozenset()
    ref: str | None = None

    def __hash__(self) -> int:
        return hash((self.kind, self.key))


class Action(enum.Enum):
    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"


@dataclass(frozen=True)
class Change:
    """One write. ``fields`` are the properties to send: all of them for ADD, only the changed ones for CHANGE."""

    action: Action
    kind: str
    key: str
    fields: Mapping[str, str]
    before: Mapping[str, str] | None = None
    ref: str | None = None
    secret_fields: frozenset[str] = frozenset()

    def describe(self) -> str:
        """A one-line, secret-free description, like ``~ ppp/secret alice: profile "10M" -> "20M"``."""
        sign = {Action.ADD: "+", Action.CHANGE: "~", Action.REMOVE: "-"}[self.action]
        if self.action is Action.REMOVE:
            return f"{sign} {self.kind} {self.key}"
        parts = []
        for name in sorted(self.fields):
            new = "(secret)" if name in self.secret_fields else repr(self.fields[name])
            if self.action is Action.CHANGE and self.before is not None:
                old = "(secret)" if name in self.secret_fields else repr(self.before.get(name, ""))
                parts.append(f"{name} {old} -> {new}")
            else:
                parts.append(f"{name}={new}")
        return f"{sign} {self.kind} {self.key}: " + ", ".join(parts)


@dataclass(frozen=True)
class Conflict:
    """A desired entry whose key is taken by an entry edgebill does not own; it is reported, never overwritten."""

    kind: str
    key: str
    reason: str


@dataclass(frozen=True)
class DesiredResources:
    """A desired state rendered into one router's native entries, and the entries refused as conflicts.

    Each driver renders a :class:`~policies.desired.DesiredState` into this before the diff: ``resources`` are
    the entries the router must hold, ``conflicts`` the subscribers or settings the router cannot hold (a name it
    cannot store, an address outside the gateway's subnets); those are reported, never written.
    """

    resources: tuple[Resource, ...]
    conflicts: tuple[Conflict, ...]


@dataclass(frozen=True)
class ChangeSet:
    """The writes that bring a router to the desired state, in order, plus what must happen around them.

    ``disconnect`` lists subscriber keys whose live session must be dropped after the writes, so that a new
    profile or state takes effect now rather than at the next dial-in.
    """

    changes: tuple[Change, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    disconnect: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes and not self.disconnect

    def __iter__(self) -> Iterator[Change]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def counts(self) -> dict[str, int]:
        out = {a.value: 0 for a in Action}
        for c in self.changes:
            out[c.action.value] += 1
        return out


@dataclass(frozen=True)
class ApplyResult:
    """What :meth:`drivers.base.Driver.apply` did: the changes written and the sessions dropped."""

    applied: tuple[Change, ...]
    disconnected: tuple[str, ...] = ()

    @property
    def writes(self) -> int:
        return len(self.applied)


# --- facts and counters -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouterFacts:
    identity: str
    version: str
    uptime_seconds: int
    model: str = ""


@dataclass(frozen=True)
class CounterSample:
    """Traffic of one subscriber as the router counts it, in bytes since ``epoch`` began.

    ``bytes_in`` is what the subscriber sent (upload), ``bytes_out`` what it received (download). ``epoch``
    changes whenever the router's counter restarted (new PPPoE session, class recreated, reboot), so a reader
    can tell a reset from a wrap: when the epoch differs from the previous sample, the whole value is new traffic.
    """

    key: str
    bytes_in: int
    bytes_out: int
    epoch: str
    taken_at: datetime


def index(resources: Iterable[Resource]) -> dict[tuple[str, str], Resource]:
    """Resources by ``(kind, key)``; a duplicate key is a driver bug and raises ``ValueError``."""
    out: dict[tuple[str, str], Resource] = {}
    for r in resources:
        k = (r.kind, r.key)
        if k in out:
            raise ValueError(f"duplicate {r.kind} entry {r.key!r}")
        out[k] = r
    return out
