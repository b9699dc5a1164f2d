"""How the emulated router shows its menus: each entry as ``print`` gives it (with computed properties such
as counters, uptimes and the ``/system/resource`` figures), the ``print``/``getall`` command, and how a query
compares a row's value with the one asked for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from lab.routeros import menus, network
from lab.routeros import values as v
from lab.routeros.device import Device
from lab.routeros.errors import Trap
from lab.routeros.menus import MenuSpec
from lab.routeros.model import Item, Request, Sentence, Table
from lab.routeros.query import matches, parse_query
from lab.routeros.subscribers import Subscribers

PRINT_FLAGS = frozenset(
    {
        "detail",
        "stats",
        "stats-detail",
        "terse",
        "brief",
        "without-paging",
        "value-list",
        "follow",
        "follow-only",
        "show-ids",
        "oid",
    }
)

Comparator = Callable[[str, str, str], int]
"""``compare(name, present, wanted)``: below, at or above zero as the row's value sorts before, equal or after."""


class Printer:
    """Rows of the menus as the API prints them."""

    def __init__(self, device: Device, net: Subscribers) -> None:
        self.device = device
        self.net = net

    def printed(self, table: Table, item: Item) -> dict[str, str]:
        """One entry as ``print`` shows it: ``.id`` first, then the menu's properties in order."""
        spec = table.spec
        row: dict[str, str] = {} if spec.singleton else {".id": v.id_text(item.number)}
        computed = self._computed(spec.path, item)
        for f in spec.fields:
            if f.ref is not None:
                value = self._ref_text(f, item.refs.get(f.name))
            elif f.name in computed:
                value = computed[f.name]
            else:
                value = item.values.get(f.name)
            if value is not None:
                row[f.name] = value
        return row

    def print(self, table: Table, request: Request) -> list[Sentence]:
        """The reply to ``print``/``getall``: ``!re`` per matching row (or the count), then ``!done``."""
        spec = table.spec
        for name in request.attributes:
            if name not in PRINT_FLAGS and name != "count-only":
                raise Trap.unknown_parameter(name)
        query = parse_query(request.queries)
        if spec.path == "/system/resource":
            source: list[Item] = [Item(uid=0, number=0, values={})]
        else:
            source = table.items
        compare = self.comparator(spec)
        rows: list[dict[str, str]] = []
        for item in source:
            row = self.printed(table, item)
            if query and not matches(query, row, compare):
                continue
            rows.append(row)
        if "count-only" in request.attributes:
            if self.device.quirks.count_only_in_ret:
                return [["!done", f"=ret={len(rows)}"]]
            return [["!re", f"=ret={len(rows)}"], ["!done"]]
        sentences: list[Sentence] = []
        proplist = request.proplist
        for row in rows:
            if proplist is None:
                sentences.append(["!re", *(f"={key}={value}" for key, value in row.items())])
            else:
                sentences.append(["!re", *(f"={key}={row[key]}" for key in proplist if key in row)])
        if not sentences and self.device.empty_reply:
            sentences.append(["!empty"])
        sentences.append(["!done"])
        return sentences

    def comparator(self, spec: MenuSpec) -> Comparator:
        """Compare values as the menu would parse them (``no`` equals ``false``, ``10.0.0.5`` ``10.0.0.5/32``)."""

        def normalise(name: str, value: str) -> str:
            f = spec.field_map.get(name)
            if f is None or f.parser is None or f.ref is not None:
                return value
            try:
                return f.parser(self.device, name, value)
            except Trap:
                return value

        def compare(name: str, present: str, wanted: str) -> int:
            wanted = normalise(name, wanted)
            if present.lower() in ("true", "false", "yes", "no") and wanted.lower() in ("true", "false", "yes", "no"):
                return int(present.lower() in ("true", "yes")) - int(wanted.lower() in ("true", "yes"))
            if present == wanted:
                return 0
            for convert in (_as_int, _as_duration, _as_ip):
                left, right = convert(present), convert(wanted)
                if left is not None and right is not None:
                    return (left > right) - (left < right)
            return (present > wanted) - (present < wanted)

        return compare

    def _ref_text(self, spec_field: menus.Field, uid: int | None) -> str | None:
        if uid is None:
            return spec_field.default if spec_field.ref is not None and spec_field.none_word else None
        assert spec_field.ref is not None
        target = self.device.tables[spec_field.ref].by_uid.get(uid)
        if target is not None:
            return target.values["name"]
        return v.id_text(self.device.tombstones.get(uid, 0))

    def _computed(self, path: str, item: Item) -> dict[str, str]:
        if path == "/queue/simple":
            c = item.counters or network.Counters()
            return {
                "bytes": f"{c.up_bytes}/{c.down_bytes}",
                "packets": f"{c.up_packets}/{c.down_packets}",
                "dropped": f"{c.up_dropped}/{c.down_dropped}",
                "rate": f"{c.up_rate}/{c.down_rate}",
                "packet-rate": f"{c.up_rate // 8 // network.UP_PACKET}/{c.down_rate // 8 // network.DOWN_PACKET}",
                "queued-bytes": "0/0",
                "queued-packets": "0/0",
                "total-bytes": "0",
                "total-packets": "0",
                "total-dropped": "0",
                "total-rate": "0",
                "total-packet-rate": "0",
                "total-queued-bytes": "0",
                "total-queued-packets": "0",
                "invalid": "false",
                "dynamic": v.bool_text(item.dynamic),
            }
        if path == "/interface":
            c = item.counters or network.Counters()
            running = item.values.get("disabled") != "true"
            result = {
                # rx is what the router receives from the subscriber side, i.e. the client's upload.
                "rx-byte": str(c.up_bytes),
                "tx-byte": str(c.down_bytes),
                "rx-packet": str(c.up_packets),
                "tx-packet": str(c.down_packets),
                "rx-drop": "0",
                "tx-drop": "0",
                "tx-queue-drop": str(c.down_dropped),
                "rx-error": "0",
                "tx-error": "0",
                "fp-rx-byte": str(c.up_bytes),
                "fp-tx-byte": str(c.down_bytes),
                "fp-rx-packet": str(c.up_packets),
                "fp-tx-packet": str(c.down_packets),
                "running": v.bool_text(running),
                "dynamic": v.bool_text(item.dynamic),
                "link-downs": "0",
            }
            if item.values.get("type") == "ether":
                result["last-link-up-time"] = self.device.date(self.device.boot_at)
                result["slave"] = "false"
            return result
        if path == "/ppp/active":
            session = self.net.session_by_active(item.uid)
            return {"uptime": v.duration_text(self.device.now - session.started) if session else "0s"}
        if path == "/ip/firewall/address-list":
            result = {"dynamic": v.bool_text(item.dynamic)}
            if item.expires is not None:
                result["timeout"] = v.duration_text(item.expires - self.device.now)
            return result
        if path == "/ppp/profile":
            return {"default": v.bool_text(item.builtin)}
        if path == "/system/resource":
            return self._resource()
        return {}

    def _resource(self) -> dict[str, str]:
        device = self.device
        return {
            "uptime": v.duration_text(device.now - device.boot_at),
            "version": f"{device.version} (stable)",
            "build-time": device.date(-86400 * 30),
            "factory-software": "7.1" if device.version_tuple >= (7,) else "6.40",
            "free-memory": str(1073741824 - 180 * 1024 * 1024 - 4096 * len(self.net.sessions)),
            "total-memory": "1073741824",
            "cpu": "QEMU",
            "cpu-count": "2",
            "cpu-frequency": "2400",
            "cpu-load": str(network.cpu_load(device.seed, int(device.now // 60))),
            "free-hdd-space": "94371840",
            "total-hdd-space": "134217728",
            "write-sect-since-reboot": str(device.write_count * 8),
            "write-sect-total": str(device.write_count * 8),
            "architecture-name": "x86_64",
            "board-name": "CHR",
            "platform": "MikroTik",
        }


def _as_int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _as_duration(text: str) -> int | None:
    try:
        return v.parse_duration("", text)
    except Trap:
        return None


def _as_ip(text: str) -> int | None:
    try:
        return int(ipaddress.IPv4Address(text.split("/", 1)[0]))
    except ValueError:
        return None
