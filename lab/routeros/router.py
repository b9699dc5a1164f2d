"""The emulated router's state: menus, commands, PPPoE subscribers, traffic and the simulated clock.

Nothing here does socket I/O. Every public method takes the router's lock; callers on the wire side
send the returned sentences after the lock is released.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lab.routeros import menus, network
from lab.routeros import values as v
from lab.routeros.errors import Trap
from lab.routeros.menus import MenuSpec
from lab.routeros.model import (
    FailMode,
    Item,
    Outcome,
    Quirks,
    Request,
    Sentence,
    Table,
    parse_request,
)
from lab.routeros.query import QueryWord, matches, parse_query
from lab.routeros.subscribers import Subscribers

logger = logging.getLogger(__name__)


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
WRITE_FAILURE_MESSAGE = (
    "action timed out - try again, if error continues contact MikroTik support and send a supout file (13)"
)


@dataclass
class _Subscription:
    path: str
    query: list[QueryWord]
    proplist: tuple[str, ...] | None
    callback: Listener


Listener = Callable[[Sentence], None]


class Router:
    """The emulated RouterOS device (configuration, dynamic state, clock). Thread-safe."""

    def __init__(
        self,
        *,
        version: str = "7.16",
        seed: int = 0,
        identity: str = "MikroTik",
        redial_delay: float = 5.0,
        ethernet_ports: int = 5,
        start_time: datetime | None = None,
        state_file: str | os.PathLike[str] | None = None,
        quirks: Quirks | None = None,
        default_remote_range: str | None = None,
        line_rate: int = 100_000_000,
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
        self.state_file = Path(state_file) if state_file is not None else None
        self.lock = threading.RLock()
        self.now = 0.0
        self.boot_at = 0.0
        self.write_count = 0
        self.read_only = False
        self._fail_at: int | None = None
        self._fail_mode: FailMode = "trap"
        self._fail_message = WRITE_FAILURE_MESSAGE
        self._write_attempts = 0
        self._uid = 0
        self._ethernet_ports = ethernet_ports
        self.tables: dict[str, Table] = {path: Table(spec) for path, spec in menus.MENUS.items()}
        self._tombstones: dict[int, int] = {}
        self._subscriptions: dict[int, _Subscription] = {}
        self._subscription_serial = 0
        self._identity = identity
        self._dirty = False
        self.net = Subscribers(self)
        self._bootstrap()
        if self.state_file is not None and self.state_file.exists():
            self._restore(self.state_file)

    # ------------------------------------------------------------------ helpers

    def _next_uid(self) -> int:
        self._uid += 1
        return self._uid

    def _wall(self, moment: float) -> datetime:
        return self.start_time + timedelta(seconds=moment)

    def _date(self, moment: float) -> str:
        return v.date_text(self._wall(moment), self.version_tuple)

    def _coded(self, text: str, code: int) -> str:
        codes = self.quirks.error_codes
        if codes is None:
            codes = self.version_tuple >= (7,)
        return f"{text} ({code})" if codes else text

    def no_such_item(self) -> Trap:
        return Trap(self._coded("no such item", 4))

    def login_failure(self) -> str:
        if self.version_tuple >= (7,):
            return self._coded("invalid user name or password", 6)
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

    # MenuContext
    def has_named(self, path: str, name: str) -> bool:
        return name in self.tables[path].by_key

    def normalise_rate_limit(self) -> bool:
        return self.quirks.normalise_rate_limit

    def _new_item(self, table: Table, values: dict[str, str], **extra: object) -> Item:
        number = table.next_number
        table.next_number += 1
        item = Item(uid=self._next_uid(), number=number, values=values, **extra)  # type: ignore[arg-type]
        return item

    def _bootstrap(self) -> None:
        profiles = self.tables["/ppp/profile"]
        for number, name, encryption in (
            (self.quirks.default_profile_id, "default", "default"),
            (self.quirks.default_encryption_profile_id, "default-encryption", "yes"),
        ):
            values = self._with_defaults(profiles.spec, {"name": name})
            values["change-tcp-mss"] = "yes"
            values["use-encryption"] = encryption
            values["only-one"] = "default"
            profiles.insert(Item(uid=self._next_uid(), number=number, values=values, builtin=True))
        interfaces = self.tables["/interface"]
        for index in range(1, self._ethernet_ports + 1):
            name = f"ether{index}"
            mac = self._mac(f"ether:{index}")
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
            item = self._new_item(interfaces, values, counters=network.Counters())
            item.builtin = True
            interfaces.insert(item)
        identity = self.tables["/system/identity"]
        identity.insert(Item(uid=self._next_uid(), number=0, values={"name": self._identity}, builtin=True))

    def _mac(self, key: str) -> str:
        digest = hashlib.blake2b(f"{self.seed}:{key}".encode(), digest_size=6).digest()
        octets = bytes([(digest[0] & 0xFC) | 0x02]) + digest[1:]
        return ":".join(f"{octet:02X}" for octet in octets)

    @staticmethod
    def _with_defaults(spec: MenuSpec, values: dict[str, str]) -> dict[str, str]:
        result = dict(values)
        for f in spec.fields:
            if f.parser is not None and f.ref is None and f.default is not None and f.name not in result:
                result[f.name] = f.default
        return result

    # ------------------------------------------------------------------ printing

    def _ref_text(self, spec_field: menus.Field, uid: int | None) -> str | None:
        if uid is None:
            return spec_field.default if spec_field.ref is not None and spec_field.none_word else None
        assert spec_field.ref is not None
        target = self.tables[spec_field.ref].by_uid.get(uid)
        if target is not None:
            return target.values["name"]
        return v.id_text(self._tombstones.get(uid, 0))

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
                result["last-link-up-time"] = self._date(self.boot_at)
                result["slave"] = "false"
            return result
        if path == "/ppp/active":
            session = self.net.session_by_active(item.uid)
            return {"uptime": v.duration_text(self.now - session.started) if session else "0s"}
        if path == "/ip/firewall/address-list":
            result = {"dynamic": v.bool_text(item.dynamic)}
            if item.expires is not None:
                result["timeout"] = v.duration_text(item.expires - self.now)
            return result
        if path == "/ppp/profile":
            return {"default": v.bool_text(item.builtin)}
        if path == "/system/resource":
            return self._resource()
        return {}

    def _resource(self) -> dict[str, str]:
        load = int(network._uniforms(self.seed, "cpu", int(self.now // 60))[0] * 12)
        return {
            "uptime": v.duration_text(self.now - self.boot_at),
            "version": f"{self.version} (stable)",
            "build-time": self._date(-86400 * 30),
            "factory-software": "7.1" if self.version_tuple >= (7,) else "6.40",
            "free-memory": str(1073741824 - 180 * 1024 * 1024 - 4096 * len(self.net.sessions)),
            "total-memory": "1073741824",
            "cpu": "QEMU",
            "cpu-count": "2",
            "cpu-frequency": "2400",
            "cpu-load": str(load),
            "free-hdd-space": "94371840",
            "total-hdd-space": "134217728",
            "write-sect-since-reboot": str(self.write_count * 8),
            "write-sect-total": str(self.write_count * 8),
            "architecture-name": "x86_64",
            "board-name": "CHR",
            "platform": "MikroTik",
        }

    def printed(self, table: Table, item: Item) -> dict[str, str]:
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

    # ------------------------------------------------------------------ public inspection

    def items(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            table = self.tables.get(path.rstrip("/"))
            if table is None:
                raise KeyError(f"unknown menu {path}")
            if path == "/system/resource":
                return [self.printed(table, Item(uid=0, number=0, values={}))]
            return [self.printed(table, item) for item in table.items]

    # ------------------------------------------------------------------ faults

    def set_read_only(self, enabled: bool) -> None:
        with self.lock:
            self.read_only = enabled

    def fail_nth_write(self, n: int, mode: FailMode = "trap", message: str | None = None) -> None:
        if n < 1:
            raise ValueError("n must be 1 or more (1 = the next write)")
        if mode not in ("trap", "drop", "drop-after"):
            raise ValueError(f"mode must be 'trap', 'drop' or 'drop-after', not {mode!r}")
        with self.lock:
            self._fail_at = self._write_attempts + n
            self._fail_mode = mode
            self._fail_message = message or WRITE_FAILURE_MESSAGE

    # ------------------------------------------------------------------ command execution

    def execute(self, words: Sequence[str], *, from_wire: bool = True) -> Outcome:
        """Run one request (without login handling) and return the reply sentences."""
        with self.lock:
            try:
                request = parse_request(words)
                return self._dispatch(request, from_wire)
            except Trap as trap:
                return Outcome([trap.words(), ["!done"]])

    def resolve_command(self, command: str) -> tuple[Table, str]:
        """Split ``/ppp/secret/print`` into its menu and verb, or raise the router's trap."""
        path, _, verb = command.rstrip("/").rpartition("/")
        table = self.tables.get(path)
        if table is None:
            prefix = path + "/"
            if path and any(known.startswith(prefix) for known in self.tables):
                raise Trap("no such command")
            raise Trap("no such command prefix")
        if verb not in table.spec.commands:
            raise Trap("no such command")
        return table, verb

    def _dispatch(self, request: Request, from_wire: bool) -> Outcome:
        table, verb = self.resolve_command(request.command)
        if verb == "listen":
            raise Trap("listen is handled by the connection")
        if verb in ("print", "getall"):
            return Outcome(self._print(table, request))
        if from_wire:
            if self.read_only:
                raise Trap(self._coded("not enough permissions", 9))
            self._write_attempts += 1
            if self._fail_at is not None and self._write_attempts == self._fail_at:
                self._fail_at = None
                if self._fail_mode == "trap":
                    raise Trap(self._fail_message)
                if self._fail_mode == "drop":
                    return Outcome([], drop=True)
                outcome = self._write(table, verb, request)
                self.write_count += 1
                self._saved()
                return Outcome(outcome, drop=True)
        sentences = self._write(table, verb, request)
        if from_wire:
            self.write_count += 1
        self._saved()
        return Outcome(sentences)

    def _print(self, table: Table, request: Request) -> list[Sentence]:
        spec = table.spec
        for name in request.attributes:
            if name not in PRINT_FLAGS and name != "count-only":
                raise Trap.unknown_parameter(name)
        query = parse_query(request.queries)
        if spec.path == "/system/resource":
            source: list[Item] = [Item(uid=0, number=0, values={})]
        else:
            source = table.items
        compare = self._comparator(spec)
        rows: list[dict[str, str]] = []
        for item in source:
            row = self.printed(table, item)
            if query and not matches(query, row, compare):
                continue
            rows.append(row)
        if "count-only" in request.attributes:
            if self.quirks.count_only_in_ret:
                return [["!done", f"=ret={len(rows)}"]]
            return [["!re", f"=ret={len(rows)}"], ["!done"]]
        sentences: list[Sentence] = []
        proplist = request.proplist
        for row in rows:
            if proplist is None:
                sentences.append(["!re", *(f"={key}={value}" for key, value in row.items())])
            else:
                sentences.append(["!re", *(f"={key}={row[key]}" for key in proplist if key in row)])
        if not sentences and self.empty_reply:
            sentences.append(["!empty"])
        sentences.append(["!done"])
        return sentences

    def _comparator(self, spec: MenuSpec) -> Callable[[str, str, str], int]:
        def normalise(name: str, value: str) -> str:
            f = spec.field_map.get(name)
            if f is None or f.parser is None or f.ref is not None:
                return value
            try:
                return f.parser(self, name, value)
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

    # ------------------------------------------------------------------ writes

    def _write(self, table: Table, verb: str, request: Request) -> list[Sentence]:
        attributes = dict(request.attributes)
        if verb == "add":
            item = self._add(table, attributes)
            return [["!done", f"=ret={v.id_text(item.number)}"]]
        if table.spec.singleton:
            attributes.pop(".id", None)
            attributes.pop("numbers", None)
            self._set(table, [table.items[0]], attributes)
            return [["!done"]]
        if verb == "reset-counters-all":
            for name in attributes:
                raise Trap.unknown_parameter(name)
            for item in table.items:
                if item.counters is not None:
                    item.counters.reset()
            return [["!done"]]
        targets = self._targets(table, attributes)
        if verb == "set":
            self._set(table, targets, attributes)
        elif verb in ("enable", "disable"):
            for name in attributes:
                raise Trap.unknown_parameter(name)
            self._set(table, targets, {"disabled": "true" if verb == "disable" else "false"})
        elif verb == "comment":
            comment = attributes.pop("comment", "")
            for name in attributes:
                raise Trap.unknown_parameter(name)
            self._set(table, targets, {"comment": comment})
        elif verb == "unset":
            self._unset(table, targets, attributes)
        elif verb == "remove":
            for name in attributes:
                raise Trap.unknown_parameter(name)
            self._remove(table, targets)
        elif verb == "reset-counters":
            for name in attributes:
                raise Trap.unknown_parameter(name)
            for item in targets:
                if item.counters is not None:
                    item.counters.reset()
        return [["!done"]]

    def _targets(self, table: Table, attributes: dict[str, str]) -> list[Item]:
        ids = attributes.pop(".id", None)
        numbers = attributes.pop("numbers", None)
        spec = ids if ids is not None else numbers
        if spec is None or not spec.strip():
            raise self.no_such_item()
        found: list[Item] = []
        for token in spec.split(","):
            token = token.strip()
            number = v.parse_id(token)
            item = table.by_number.get(number) if number is not None else table.by_key.get(token)
            if item is None:
                raise self.no_such_item()
            if item not in found:
                found.append(item)
        return found

    def _parse_fields(
        self, table: Table, attributes: Mapping[str, str]
    ) -> tuple[dict[str, str], dict[str, int | None]]:
        spec = table.spec
        parsed: dict[str, str] = {}
        refs: dict[str, int | None] = {}
        for name, raw in attributes.items():
            f = spec.field_map.get(name)
            if f is None or f.parser is None:
                raise Trap.unknown_parameter(name)
            if f.ref is not None:
                refs[name] = self._resolve_ref(f, raw)
            elif raw == "" and not f.required and f.default is None:
                parsed[name] = ""
            else:
                parsed[name] = f.parser(self, name, raw)
        return parsed, refs

    def _resolve_ref(self, f: menus.Field, raw: str) -> int | None:
        assert f.ref is not None
        if f.none_word is not None and raw in (f.none_word, ""):
            return None
        target_table = self.tables[f.ref]
        number = v.parse_id(raw)
        target = target_table.by_number.get(number) if number is not None else target_table.by_key.get(raw)
        if target is None:
            raise Trap.bad_value(f.name)
        return target.uid

    def _add(self, table: Table, attributes: dict[str, str]) -> Item:
        spec = table.spec
        parsed, refs = self._parse_fields(table, attributes)
        parsed = {name: value for name, value in parsed.items() if value != ""}
        missing = [f.name for f in spec.fields if f.required and f.name not in parsed and f.name not in refs]
        if missing:
            raise Trap(f"missing value(s) of argument(s) {' '.join(missing)}")
        if spec.path == "/queue/simple" and "name" not in parsed:
            parsed["name"] = self._free_name(table, "queue")
        values = self._with_defaults(spec, parsed)
        for f in spec.fields:
            if f.ref is not None and f.name not in refs and f.default is not None and f.none_word is None:
                refs[f.name] = self._resolve_ref(f, f.default)
        if spec.key is not None and values[spec.key] in table.by_key:
            raise Trap(self._duplicate(spec))
        self._validate(table, None, values, refs)
        clean_refs = {name: uid for name, uid in refs.items() if uid is not None}
        item = self._new_item(table, values, refs=clean_refs)
        if spec.path == "/ip/firewall/address-list":
            item.values["creation-time"] = self._date(self.now)
            if "timeout" in values:
                item.dynamic = True
                item.expires = self.now + v.parse_duration("timeout", values.pop("timeout"))
        if spec.path == "/queue/simple":
            item.counters = network.Counters()
            self.net.queues_changed()
        table.insert(item)
        if spec.path == "/ppp/secret":
            self.net.cpe_next[item.uid] = self.now
        self._notify(table, item)
        return item

    def _duplicate(self, spec: MenuSpec) -> str:
        if spec.path == "/ppp/secret":
            return self.quirks.secret_duplicate_message
        return spec.duplicate_message

    def _free_name(self, table: Table, stem: str) -> str:
        index = 1
        while f"{stem}{index}" in table.by_key:
            index += 1
        return f"{stem}{index}"

    def _validate(
        self, table: Table, item: Item | None, values: dict[str, str], refs: Mapping[str, int | None]
    ) -> None:
        path = table.spec.path
        if path == "/queue/simple":
            limit_up, limit_down = (int(part) for part in values["limit-at"].split("/"))
            max_up, max_down = (int(part) for part in values["max-limit"].split("/"))
            if max_up and limit_up > max_up:
                raise Trap("failure: upload-max-limit less than upload-limit")
            if max_down and limit_down > max_down:
                raise Trap("failure: download-max-limit less than download-limit")
            parent = refs.get("parent")
            if item is not None and parent is not None and self._queue_descends(parent, item.uid):
                raise Trap("failure: parent queue can not be its own child")
        elif path == "/ip/firewall/address-list":
            holder = table.by_unique.get(table.unique_of(values))
            if holder is not None and holder is not item:
                raise Trap(self._duplicate(table.spec))
        elif path == "/ip/pool":
            next_pool = refs.get("next-pool")
            if item is not None and next_pool == item.uid:
                raise Trap("failure: pool can not be its own next pool")

    def _queue_descends(self, uid: int, ancestor: int) -> bool:
        queues = self.tables["/queue/simple"]
        seen: set[int] = set()
        current: int | None = uid
        while current is not None and current not in seen:
            if current == ancestor:
                return True
            seen.add(current)
            node = queues.by_uid.get(current)
            current = node.refs.get("parent") if node is not None else None
        return False

    def _set(self, table: Table, targets: list[Item], attributes: dict[str, str]) -> None:
        spec = table.spec
        parsed, refs = self._parse_fields(table, attributes)
        if not parsed and not refs:
            return
        new_name = parsed.get(spec.key) if spec.key is not None else None
        if new_name is not None and len(targets) > 1:
            raise Trap(self._duplicate(spec))
        plans: list[tuple[Item, dict[str, str], dict[str, int | None]]] = []
        for item in targets:
            if item.dynamic and not spec.dynamic_editable:
                raise Trap("failure: can not change dynamic")
            if item.builtin and spec.path == "/ppp/profile" and new_name not in (None, item.values["name"]):
                raise Trap("failure: can not rename default profile")
            if spec.key is not None and new_name is not None:
                holder = table.by_key.get(new_name)
                if holder is not None and holder is not item:
                    raise Trap(self._duplicate(spec))
            values = dict(item.values)
            for name, value in parsed.items():
                if value == "" and spec.field_map[name].default is None:
                    values.pop(name, None)
                else:
                    values[name] = value
            merged_refs: dict[str, int | None] = {**item.refs, **refs}
            self._validate(table, item, values, merged_refs)
            plans.append((item, values, merged_refs))
        for item, values, merged_refs in plans:
            self._apply_set(table, item, values, merged_refs)

    def _apply_set(self, table: Table, item: Item, values: dict[str, str], refs: dict[str, int | None]) -> None:
        path = table.spec.path
        old_values = dict(item.values)
        was_disabled = item.values.get("disabled") == "true"
        if path == "/ip/firewall/address-list" and "timeout" in values:
            item.dynamic = True
            item.expires = self.now + v.parse_duration("timeout", values.pop("timeout"))
        item.values = values
        item.refs = {name: uid for name, uid in refs.items() if uid is not None}
        table.rekey(item, old_values)
        if path == "/queue/simple":
            self.net.queues_changed()
            if self.quirks.reset_counters_on_edit and item.counters is not None:
                item.counters.reset()
        if path == "/ppp/secret" and was_disabled and values.get("disabled") == "false":
            # The subscriber's CPE keeps retrying; it gets in at its next attempt.
            self.net.cpe_next[item.uid] = min(self.net.cpe_next.get(item.uid, self.now), self.now)
        if path == "/system/identity":
            self._identity = values["name"]
        self._notify(table, item)

    def _unset(self, table: Table, targets: list[Item], attributes: dict[str, str]) -> None:
        name = attributes.pop("value-name", None)
        for extra in attributes:
            raise Trap.unknown_parameter(extra)
        if not name:
            raise Trap("missing value(s) of argument(s) value-name")
        f = table.spec.field_map.get(name)
        if f is None or f.parser is None or f.required:
            raise Trap.bad_value("value-name")
        for item in targets:
            if item.dynamic and not table.spec.dynamic_editable:
                raise Trap("failure: can not change dynamic")
        for item in targets:
            values = dict(item.values)
            refs: dict[str, int | None] = dict(item.refs)
            if f.ref is not None:
                refs[name] = None if f.none_word is not None or f.default is None else self._resolve_ref(f, f.default)
            elif f.default is not None:
                values[name] = f.default
            else:
                values.pop(name, None)
            self._validate(table, item, values, refs)
            self._apply_set(table, item, values, refs)

    def _remove(self, table: Table, targets: list[Item]) -> None:
        spec = table.spec
        for item in targets:
            if item.builtin and spec.path == "/ppp/profile":
                raise Trap("failure: can not remove default profile")
            if item.dynamic and not spec.dynamic_editable:
                raise Trap("failure: can not remove dynamic")
        for item in targets:
            if spec.path == "/ppp/active":
                session = self.net.session_by_active(item.uid)
                if session is not None:
                    self.net.disconnect(session, self.quirks.disconnect_reason)
                    continue
            self._discard(table, item)
            if spec.path == "/ppp/secret":
                self.net.cpe_next.pop(item.uid, None)

    def _discard(self, table: Table, item: Item) -> None:
        table.discard(item)
        self._tombstones[item.uid] = item.number
        if table.spec.path == "/queue/simple":
            self.net.queues_changed()
        self._notify(table, item, dead=True)

    # ------------------------------------------------------------------ listen

    def subscribe(self, path: str, queries: Sequence[str], proplist: tuple[str, ...] | None, callback: Listener) -> int:
        """Call ``callback`` (under the router lock, so it must not block) with a ``!re`` per change."""
        with self.lock:
            self.resolve_command(path + "/listen")
            self._subscription_serial += 1
            self._subscriptions[self._subscription_serial] = _Subscription(
                path, parse_query(queries), proplist, callback
            )
            return self._subscription_serial

    def unsubscribe(self, token: int) -> None:
        with self.lock:
            self._subscriptions.pop(token, None)

    def _notify(self, table: Table, item: Item, *, dead: bool = False) -> None:
        if not self._subscriptions:
            return
        row = {".id": v.id_text(item.number), ".dead": self.quirks.dead_value} if dead else self.printed(table, item)
        for subscription in list(self._subscriptions.values()):
            if subscription.path != table.spec.path:
                continue
            if not dead and subscription.query and not matches(subscription.query, row, self._comparator(table.spec)):
                continue
            keys = subscription.proplist
            if keys is None or dead:
                words = ["!re", *(f"={key}={value}" for key, value in row.items())]
            else:
                words = ["!re", *(f"={key}={row[key]}" for key in keys if key in row)]
            subscription.callback(words)

    # ------------------------------------------------------------------ network simulation

    # ------------------------------------------------------------------ clock

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward; sessions dial, traffic flows and timeouts expire on the way."""
        if seconds < 0:
            raise ValueError("the clock cannot go backwards")
        with self.lock:
            target = self.now + seconds
            self.net.events()
            while True:
                upcoming = self.net.next_event()
                stop = target if upcoming is None or upcoming > target else upcoming
                self.net.flow(self.now, stop)
                self.now = stop
                self.net.events()
                if self.now >= target:
                    break
            self.net.update_rates()

    def hang_up(self, name: str, reason: str = "peer-not-responding") -> bool:
        """The subscriber's side drops the session (it redials after the delay). False if not connected."""
        with self.lock:
            return self.net.hang_up(name, reason)

    def reboot(self) -> None:
        """Counters reset, sessions and dynamic entries gone, ids renumbered; configuration kept."""
        with self.lock:
            self.net.power_off()
            for table in self.tables.values():
                for item in table.items:
                    if item.dynamic:
                        self._tombstones[item.uid] = item.number
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
            self.net.queues_changed()
            self.boot_at = self.now
            for uid in self.tables["/ppp/secret"].by_uid:
                self.net.cpe_next[uid] = self.now + self.redial_delay
            logger.info("emulated router %s rebooted", self._identity)

    def _saved(self) -> None:
        """Note a configuration change; :meth:`flush_state` writes it (the emulator does so every second)."""
        if self.state_file is not None:
            self._dirty = True

    def flush_state(self) -> None:
        """Write the configuration to the state file if it changed since the last write."""
        with self.lock:
            if self.state_file is None or not self._dirty:
                return
            self._write_state(self.state_file)
            self._dirty = False

    def _write_state(self, target: Path) -> None:
        document: dict[str, object] = {"format": 1, "identity": self._identity, "menus": {}}
        menus_doc: dict[str, list[dict[str, str]]] = {}
        for path in menus.RESTORE_ORDER:
            table = self.tables[path]
            rows: list[dict[str, str]] = []
            for item in table.items:
                if item.dynamic:
                    continue
                if path == "/ppp/profile" and item.builtin:
                    row = {"name": item.values["name"], **self._config_of(table, item)}
                elif path == "/interface":
                    if "default-name" not in item.values:
                        continue
                    row = {"default-name": item.values["default-name"], **self._config_of(table, item)}
                else:
                    row = self._config_of(table, item)
                rows.append(row)
            menus_doc[path] = rows
        document["menus"] = menus_doc
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".routeros-", dir=target.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream, indent=1, sort_keys=True)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _config_of(self, table: Table, item: Item) -> dict[str, str]:
        row: dict[str, str] = {}
        for f in table.spec.fields:
            if f.parser is None:
                continue
            if f.ref is not None:
                uid = item.refs.get(f.name)
                target = self.tables[f.ref].by_uid.get(uid) if uid is not None else None
                if target is not None:
                    row[f.name] = target.values["name"]
            elif f.name in item.values:
                row[f.name] = item.values[f.name]
        return row

    def _restore(self, path: Path) -> None:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot read router state file {path}: {error}") from None
        if not isinstance(document, dict) or document.get("format") != 1:
            raise ValueError(f"router state file {path} has an unknown format")
        identity = document.get("identity")
        if isinstance(identity, str):
            self._identity = identity
            self.tables["/system/identity"].items[0].values["name"] = identity
        saved = document.get("menus", {})
        try:
            for menu_path in menus.RESTORE_ORDER:
                table = self.tables[menu_path]
                for row in saved.get(menu_path, []):
                    row = {str(key): str(value) for key, value in row.items()}
                    if menu_path == "/ppp/profile" and row.get("name") in ("default", "default-encryption"):
                        self._set(table, [table.by_key[row["name"]]], {k: x for k, x in row.items() if k != "name"})
                    elif menu_path == "/interface":
                        default_name = row.pop("default-name", "")
                        match = [i for i in table.items if i.values.get("default-name") == default_name]
                        if match:
                            self._set(table, match, row)
                    else:
                        self._add(table, row)
        except Trap as trap:
            raise ValueError(f"router state file {path} is inconsistent: {trap.message}") from None


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
