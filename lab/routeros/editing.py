"""The menus' write commands: ``add``, ``set``, ``unset``, ``remove``, ``enable``/``disable``, ``comment`` and
``reset-counters``, with the checks RouterOS makes before it changes anything (all targets are checked before
the first is changed).

Input is parsed by the menu's field parsers (:mod:`lab.routeros.menus`); removed and changed entries are
announced through :meth:`lab.routeros.device.Device.notify`, and the subscriber simulation is told about
secrets that appear, are enabled or go.
"""

from __future__ import annotations

from collections.abc import Mapping

from lab.routeros import menus, network
from lab.routeros import values as v
from lab.routeros.device import Device
from lab.routeros.errors import Trap
from lab.routeros.menus import MenuSpec
from lab.routeros.model import Item, Request, Sentence, Table
from lab.routeros.subscribers import Subscribers


class Editor:
    """Changes the menus as the write commands ask."""

    def __init__(self, device: Device, net: Subscribers) -> None:
        self.device = device
        self.net = net

    def write(self, table: Table, verb: str, request: Request) -> list[Sentence]:
        """Run a write command on ``table``; the reply is ``!done`` (with ``=ret=`` for ``add``)."""
        attributes = dict(request.attributes)
        if verb == "add":
            item = self.add(table, attributes)
            return [["!done", f"=ret={v.id_text(item.number)}"]]
        if table.spec.singleton:
            attributes.pop(".id", None)
            attributes.pop("numbers", None)
            self.set(table, [table.items[0]], attributes)
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
            self.set(table, targets, attributes)
        elif verb in ("enable", "disable"):
            for name in attributes:
                raise Trap.unknown_parameter(name)
            self.set(table, targets, {"disabled": "true" if verb == "disable" else "false"})
        elif verb == "comment":
            comment = attributes.pop("comment", "")
            for name in attributes:
                raise Trap.unknown_parameter(name)
            self.set(table, targets, {"comment": comment})
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
            raise self.device.no_such_item()
        found: list[Item] = []
        for token in spec.split(","):
            token = token.strip()
            number = v.parse_id(token)
            item = table.by_number.get(number) if number is not None else table.by_key.get(token)
            if item is None:
                raise self.device.no_such_item()
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
                parsed[name] = f.parser(self.device, name, raw)
        return parsed, refs

    def _resolve_ref(self, f: menus.Field, raw: str) -> int | None:
        assert f.ref is not None
        if f.none_word is not None and raw in (f.none_word, ""):
            return None
        target_table = self.device.tables[f.ref]
        number = v.parse_id(raw)
        target = target_table.by_number.get(number) if number is not None else target_table.by_key.get(raw)
        if target is None:
            raise Trap.bad_value(f.name)
        return target.uid

    def add(self, table: Table, attributes: dict[str, str]) -> Item:
        """Add an entry from its properties as a client types them."""
        spec = table.spec
        parsed, refs = self._parse_fields(table, attributes)
        parsed = {name: value for name, value in parsed.items() if value != ""}
        missing = [f.name for f in spec.fields if f.required and f.name not in parsed and f.name not in refs]
        if missing:
            raise Trap(f"missing value(s) of argument(s) {' '.join(missing)}")
        if spec.path == "/queue/simple" and "name" not in parsed:
            parsed["name"] = self._free_name(table, "queue")
        values = self.device.with_defaults(spec, parsed)
        for f in spec.fields:
            if f.ref is not None and f.name not in refs and f.default is not None and f.none_word is None:
                refs[f.name] = self._resolve_ref(f, f.default)
        if spec.key is not None and values[spec.key] in table.by_key:
            raise Trap(self._duplicate(spec))
        self._validate(table, None, values, refs)
        clean_refs = {name: uid for name, uid in refs.items() if uid is not None}
        item = self.device.new_item(table, values, refs=clean_refs)
        if spec.path == "/ip/firewall/address-list":
            item.values["creation-time"] = self.device.date(self.device.now)
            if "timeout" in values:
                item.dynamic = True
                item.expires = self.device.now + v.parse_duration("timeout", values.pop("timeout"))
        if spec.path == "/queue/simple":
            item.counters = network.Counters()
        table.insert(item)
        if spec.path == "/ppp/secret":
            self.net.secret_ready(item.uid)
        self.device.notify(table, item)
        return item

    def _duplicate(self, spec: MenuSpec) -> str:
        if spec.path == "/ppp/secret":
            return self.device.quirks.secret_duplicate_message
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
        queues = self.device.tables["/queue/simple"]
        seen: set[int] = set()
        current: int | None = uid
        while current is not None and current not in seen:
            if current == ancestor:
                return True
            seen.add(current)
            node = queues.by_uid.get(current)
            current = node.refs.get("parent") if node is not None else None
        return False

    def set(self, table: Table, targets: list[Item], attributes: dict[str, str]) -> None:
        """Change properties of ``targets``: all are checked before any is changed."""
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
            item.expires = self.device.now + v.parse_duration("timeout", values.pop("timeout"))
        item.values = values
        item.refs = {name: uid for name, uid in refs.items() if uid is not None}
        table.rekey(item, old_values)
        if path == "/queue/simple" and self.device.quirks.reset_counters_on_edit and item.counters is not None:
            item.counters.reset()
        if path == "/ppp/secret" and was_disabled and values.get("disabled") == "false":
            # The subscriber's CPE keeps retrying; it gets in at its next attempt.
            self.net.secret_ready(item.uid)
        if path == "/system/identity":
            self.device.identity = values["name"]
        self.device.notify(table, item)

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
                    self.net.disconnect(session, self.device.quirks.disconnect_reason)
                    continue
            self.device.discard(table, item)
            if spec.path == "/ppp/secret":
                self.net.secret_removed(item.uid)
