"""The emulated router's state that every part shares: its settings, the menu tables and their ids, the
simulated clock, and the notices of changed entries that ``listen`` and the subscriber simulation follow.

Nothing here runs a command or prints a row: :mod:`lab.routeros.editing` changes the tables,
:mod:`lab.routeros.printing` shows them, :mod:`lab.routeros.subscribers` adds the sessions' dynamic entries and
:mod:`lab.routeros.router` holds the lock around all of them.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from lab.routeros import menus, network
from lab.routeros import values as v
from lab.routeros.errors import Trap
from lab.routeros.menus import MenuSpec
from lab.routeros.model import Item, Quirks, Table

ChangeListener = Callable[[Table, Item, bool], None]
"""Called with the menu, the entry and whether it was removed, after an entry was added, changed or removed."""


class Device:
    """Settings, menus, ids and clock of one emulated router (not thread-safe: the router's lock guards it)."""

    def __init__(
        self,
        *,
        version: str,
        seed: int,
        identity: str,
        redial_delay: float,
        ethernet_ports: int,
        start_time: datetime | None,
        quirks: Quirks | None,
        default_remote_range: str | None,
        line_rate: int,
    ) -> None:
        try:
            self.version_tuple = v.parse_version(version)
        except ValueError as error:
            raise ValueError(f"invalid RouterOS version {version!r}: {error}") from None
        if redial_delay < 0:
            raise ValueError("redial_delay must not be negative")
        if ethernet_ports < 1:
            raise ValueError("ethernet_ports must be at least 1")
        self.version = version
        self.seed = seed
        self.redial_delay = redial_delay
        self.quirks = quirks or Quirks()
        self.line_rate = line_rate
        self.start_time = start_time or datetime.now(UTC)
        if self.start_time.tzinfo is None:
            raise ValueError("start_time must be timezone-aware")
        self.default_remote_range = ipaddress.IPv4Network(default_remote_range) if default_remote_range else None
        self.identity = identity
        self.now = 0.0
        self.boot_at = 0.0
        self.write_count = 0
        self.tables: dict[str, Table] = {path: Table(spec) for path, spec in menus.MENUS.items()}
        self.tombstones: dict[int, int] = {}  # uid of a removed entry -> the number it printed as
        self._uid = 0
        self._listeners: list[ChangeListener] = []
        self._bootstrap(ethernet_ports)

    # ------------------------------------------------------------------ version-dependent behaviour

    def coded(self, text: str, code: int) -> str:
        """An error text with the RouterOS 7 numeric code appended, when the version (or quirk) has them."""
        codes = self.quirks.error_codes
        if codes is None:
            codes = self.version_tuple >= (7,)
        return f"{text} ({code})" if codes else text

    def no_such_item(self) -> Trap:
        return Trap(self.coded("no such item", 4))

    def login_failure(self) -> str:
        if self.version_tuple >= (7,):
            return self.coded("invalid user name or password", 6)
        return "cannot log in"

    @property
    def empty_reply(self) -> bool:
        if self.quirks.empty_reply is not None:
            return self.quirks.empty_reply
        return self.version_tuple >= (7, 18)

    @property
    def legacy_login(self) -> bool:
        if self.quirks.legacy_login is not None:
            return self.quirks.legacy_login
        return self.version_tuple < (6, 45, 1)

    @property
    def plain_login(self) -> bool:
        return self.version_tuple >= (6, 43)

    # ------------------------------------------------------------------ MenuContext (what input parsers ask)

    def has_named(self, path: str, name: str) -> bool:
        return name in self.tables[path].by_key

    def normalise_rate_limit(self) -> bool:
        return self.quirks.normalise_rate_limit

    # ------------------------------------------------------------------ entries

    def _next_uid(self) -> int:
        self._uid += 1
        return self._uid

    def new_item(
        self,
        table: Table,
        values: dict[str, str],
        *,
        refs: dict[str, int] | None = None,
        dynamic: bool = False,
        counters: network.Counters | None = None,
    ) -> Item:
        """An entry with a fresh uid and the menu's next ``.id`` number (the caller inserts it)."""
        number = table.next_number
        table.next_number += 1
        return Item(
            uid=self._next_uid(),
            number=number,
            values=values,
            refs=refs if refs is not None else {},
            dynamic=dynamic,
            counters=counters,
        )

    @staticmethod
    def with_defaults(spec: MenuSpec, values: dict[str, str]) -> dict[str, str]:
        """``values`` plus the menu's defaults for the settable properties they leave out."""
        result = dict(values)
        for f in spec.fields:
            if f.parser is not None and f.ref is None and f.default is not None and f.name not in result:
                result[f.name] = f.default
        return result

    def watch(self, listener: ChangeListener) -> None:
        """Call ``listener`` after every change of an entry (under the router lock, so it must not block)."""
        self._listeners.append(listener)

    def notify(self, table: Table, item: Item, *, dead: bool = False) -> None:
        """Tell the listeners that ``item`` was added or changed (``dead``: removed)."""
        for listener in self._listeners:
            listener(table, item, dead)

    def discard(self, table: Table, item: Item) -> None:
        """Remove an entry; references to it print as its old ``*ID`` from now on."""
        table.discard(item)
        self.tombstones[item.uid] = item.number
        self.notify(table, item, dead=True)

    def reboot(self) -> None:
        """Dynamic entries gone, counters reset, ids renumbered, configuration kept; the boot time is now."""
        for table in self.tables.values():
            for item in table.items:
                if item.dynamic:
                    self.tombstones[item.uid] = item.number
            table.items = [item for item in table.items if not item.dynamic]
            for item in table.items:
                if item.counters is not None:
                    item.counters.reset()
            table.next_number = table.spec.first_number
            for item in table.items:
                if table.spec.path == "/ppp/profile" and item.builtin:
                    continue
                if table.spec.singleton:
                    continue
                item.number = table.next_number
                table.next_number += 1
            table.rebuild()
        self.boot_at = self.now

    # ------------------------------------------------------------------ names, addresses and time

    def mac(self, key: str) -> str:
        """A locally administered MAC address derived from the seed and ``key``."""
        digest = hashlib.blake2b(f"{self.seed}:{key}".encode(), digest_size=6).digest()
        octets = bytes([(digest[0] & 0xFC) | 0x02]) + digest[1:]
        return ":".join(f"{octet:02X}" for octet in octets)

    def date(self, moment: float) -> str:
        """The simulated ``moment`` (seconds since start) as the emulated version prints dates."""
        return v.date_text(self.start_time + timedelta(seconds=moment), self.version_tuple)

    def _bootstrap(self, ethernet_ports: int) -> None:
        profiles = self.tables["/ppp/profile"]
        for number, name, encryption in (
            (self.quirks.default_profile_id, "default", "default"),
            (self.quirks.default_encryption_profile_id, "default-encryption", "yes"),
        ):
            values = self.with_defaults(profiles.spec, {"name": name})
            values["change-tcp-mss"] = "yes"
            values["use-encryption"] = encryption
            values["only-one"] = "default"
            profiles.insert(Item(uid=self._next_uid(), number=number, values=values, builtin=True))
        interfaces = self.tables["/interface"]
        for index in range(1, ethernet_ports + 1):
            name = f"ether{index}"
            mac = self.mac(f"ether:{index}")
            values = {
                "name": name,
                "default-name": name,
                "type": "ether",
                "mtu": "1500",
                "actual-mtu": "1500",
                "l2mtu": "1514",
                "mac-address": mac,
                "disabled": "false",
            }
            item = self.new_item(interfaces, values, counters=network.Counters())
            item.builtin = True
            interfaces.insert(item)
        identity = self.tables["/system/identity"]
        identity.insert(Item(uid=self._next_uid(), number=0, values={"name": self.identity}, builtin=True))
