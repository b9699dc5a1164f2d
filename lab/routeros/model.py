"""Values and containers shared by the router, the subscriber simulation and the API server."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from lab.routeros import network
from lab.routeros.errors import Trap
from lab.routeros.menus import MenuSpec

Sentence = list[str]
"""One API sentence as words, e.g. ``["!re", "=name=x"]`` (no ``.tag``; the connection adds it)."""
FailMode = Literal["trap", "drop", "drop-after"]


@dataclass(frozen=True)
class Quirks:
    """Behaviours that differ between RouterOS versions or that public sources leave unverified.

    ``None`` means "follow the emulated version".
    """

    empty_reply: bool | None = None
    """Send ``!empty`` before ``!done`` when a print has no rows (RouterOS 7.18+)."""
    legacy_login: bool | None = None
    """Answer ``/login`` without a password with an MD5 challenge (RouterOS before 6.45.1)."""
    error_codes: bool | None = None
    """Append RouterOS 7 numeric codes to error texts (``no such item (4)``)."""
    normalise_rate_limit: bool = False
    """Store PPP ``rate-limit`` in raw bps instead of echoing it as typed."""
    reset_counters_on_edit: bool = False
    """Reset a simple queue's counters whenever it is edited."""
    disconnect_reason: str = "hung-up"
    """``last-disconnect-reason`` recorded when a session is removed from ``/ppp/active``."""
    count_only_in_ret: bool = True
    """``print =count-only=`` puts the count in ``!done =ret=``."""
    default_profile_id: int = 0
    """``.id`` number of the built-in ``default`` PPP profile (``*0``)."""
    default_encryption_profile_id: int = 0xFFFFFFFE
    """``.id`` number of the built-in ``default-encryption`` PPP profile (``*FFFFFFFE``)."""
    secret_duplicate_message: str = "failure: secret with the same name already exists"
    """Trap text for a second PPP secret with the same name (clients should only rely on "already")."""
    dead_value: str = "yes"
    """Value of ``=.dead=`` in a ``listen`` row for a removed item (older captures show ``true``)."""


@dataclass
class Item:
    """One entry of a menu. ``values`` hold properties in printed form; references live in ``refs``."""

    uid: int
    number: int
    values: dict[str, str]
    refs: dict[str, int] = field(default_factory=dict)
    dynamic: bool = False
    builtin: bool = False
    counters: network.Counters | None = None
    expires: float | None = None
    session: int | None = None


class Table:
    """Items of one menu in list order with lookup indexes."""

    def __init__(self, spec: MenuSpec) -> None:
        self.spec = spec
        self.items: list[Item] = []
        self.by_uid: dict[int, Item] = {}
        self.by_number: dict[int, Item] = {}
        self.by_key: dict[str, Item] = {}
        self.by_unique: dict[tuple[str, ...], Item] = {}
        self.next_number = spec.first_number

    def unique_of(self, values: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(values.get(name, "") for name in self.spec.unique)

    def insert(self, item: Item, *, first: bool = False) -> None:
        if first:
            self.items.insert(0, item)
        else:
            self.items.append(item)
        self.by_uid[item.uid] = item
        self.by_number[item.number] = item
        self._index(item)

    def discard(self, item: Item) -> None:
        self.items.remove(item)
        del self.by_uid[item.uid]
        del self.by_number[item.number]
        self._unindex(item, item.values)

    def rekey(self, item: Item, old_values: Mapping[str, str]) -> None:
        """Update the name and uniqueness indexes after ``item.values`` changed from ``old_values``."""
        self._unindex(item, old_values)
        self._index(item)

    def _index(self, item: Item) -> None:
        if self.spec.key is not None:
            self.by_key[item.values[self.spec.key]] = item
        if self.spec.unique:
            self.by_unique[self.unique_of(item.values)] = item

    def _unindex(self, item: Item, values: Mapping[str, str]) -> None:
        if self.spec.key is not None and self.by_key.get(values[self.spec.key]) is item:
            del self.by_key[values[self.spec.key]]
        if self.spec.unique and self.by_unique.get(self.unique_of(values)) is item:
            del self.by_unique[self.unique_of(values)]

    def rebuild(self) -> None:
        """Rebuild every index from ``items`` (after bulk changes such as a reboot)."""
        self.by_uid = {item.uid: item for item in self.items}
        self.by_number = {item.number: item for item in self.items}
        self.by_key.clear()
        self.by_unique.clear()
        for item in self.items:
            self._index(item)


@dataclass(frozen=True)
class Request:
    """One parsed API request sentence."""

    command: str
    attributes: dict[str, str]
    queries: tuple[str, ...]
    tag: str | None
    proplist: tuple[str, ...] | None


def parse_request(words: Sequence[str]) -> Request:
    """Split a sentence into command, ``=attributes``, ``?queries`` and ``.tag``/``.proplist``."""
    command = words[0]
    attributes: dict[str, str] = {}
    queries: list[str] = []
    tag: str | None = None
    proplist: tuple[str, ...] | None = None
    for word in words[1:]:
        if word.startswith("="):
            name, _, value = word[1:].partition("=")
            if name == ".proplist":
                proplist = tuple(part for part in value.split(",") if part)
            else:
                attributes[name] = value
        elif word.startswith("?"):
            queries.append(word)
        elif word.startswith(".tag="):
            tag = word[5:] or None
        elif word.startswith(".proplist="):
            proplist = tuple(part for part in word[10:].split(",") if part)
        else:
            raise Trap(f"unknown parameter {word}")
    return Request(command, attributes, tuple(queries), tag, proplist)


@dataclass
class Outcome:
    """What the wire side should do with a request: send ``sentences`` (``!done`` included), or drop."""

    sentences: list[Sentence]
    drop: bool = False
