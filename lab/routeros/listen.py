"""``listen`` and ``print =follow=``: who follows which menu, and the ``!re`` sentence each change sends them.

The connections subscribe through :meth:`lab.routeros.router.Router.subscribe`; changes arrive from
:meth:`lab.routeros.device.Device.notify`, under the router's lock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lab.routeros import values as v
from lab.routeros.device import Device
from lab.routeros.model import Item, Sentence, Table
from lab.routeros.printing import Printer
from lab.routeros.query import QueryWord, matches, parse_query

Listener = Callable[[Sentence], None]


@dataclass
class _Subscription:
    path: str
    query: list[QueryWord]
    proplist: tuple[str, ...] | None
    callback: Listener


class Subscriptions:
    """The running ``listen`` requests of every connection, by token."""

    def __init__(self, device: Device, printer: Printer) -> None:
        self.device = device
        self.printer = printer
        self._subscriptions: dict[int, _Subscription] = {}
        self._serial = 0
        device.watch(self.notify)

    def add(self, path: str, queries: Sequence[str], proplist: tuple[str, ...] | None, callback: Listener) -> int:
        """Follow the menu ``path`` (rows matching ``queries``); return the token :meth:`remove` takes."""
        self._serial += 1
        self._subscriptions[self._serial] = _Subscription(path, parse_query(queries), proplist, callback)
        return self._serial

    def remove(self, token: int) -> None:
        self._subscriptions.pop(token, None)

    def notify(self, table: Table, item: Item, dead: bool) -> None:
        """Send the changed (or removed: ``=.dead=``) entry to every subscription on its menu that matches."""
        if not self._subscriptions:
            return
        row = (
            {".id": v.id_text(item.number), ".dead": self.device.quirks.dead_value}
            if dead
            else self.printer.printed(table, item)
        )
        for subscription in list(self._subscriptions.values()):
            if subscription.path != table.spec.path:
                continue
            if (
                not dead
                and subscription.query
                and not matches(subscription.query, row, self.printer.comparator(table.spec))
            ):
                continue
            keys = subscription.proplist
            if keys is None or dead:
                words = ["!re", *(f"={key}={value}" for key, value in row.items())]
            else:
                words = ["!re", *(f"={key}={row[key]}" for key in keys if key in row)]
            subscription.callback(words)
