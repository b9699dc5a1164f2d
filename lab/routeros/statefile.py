"""The state file: the router's configuration as JSON (not dynamic entries, sessions or counters), written
atomically by :func:`save` and read back at start by :func:`restore`, which replays it as ``add``/``set``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from lab.routeros import menus
from lab.routeros.device import Device
from lab.routeros.editing import Editor
from lab.routeros.errors import Trap
from lab.routeros.model import Item, Table


def save(device: Device, target: Path) -> None:
    """Write the configuration to ``target`` (through a temporary file, so a reader never sees half of it)."""
    document: dict[str, object] = {"format": 1, "identity": device.identity, "menus": {}}
    menus_doc: dict[str, list[dict[str, str]]] = {}
    for path in menus.RESTORE_ORDER:
        table = device.tables[path]
        rows: list[dict[str, str]] = []
        for item in table.items:
            if item.dynamic:
                continue
            if path == "/ppp/profile" and item.builtin:
                row = {"name": item.values["name"], **_config_of(device, table, item)}
            elif path == "/interface":
                if "default-name" not in item.values:
                    continue
                row = {"default-name": item.values["default-name"], **_config_of(device, table, item)}
            else:
                row = _config_of(device, table, item)
            rows.append(row)
        menus_doc[path] = rows
    document["menus"] = menus_doc
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # the state holds the users' passwords
    handle, temporary = tempfile.mkstemp(prefix=".routeros-", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=1, sort_keys=True)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _config_of(device: Device, table: Table, item: Item) -> dict[str, str]:
    row: dict[str, str] = {}
    for f in table.spec.fields:
        if f.parser is None:
            continue
        if f.ref is not None:
            uid = item.refs.get(f.name)
            target = device.tables[f.ref].by_uid.get(uid) if uid is not None else None
            if target is not None:
                row[f.name] = target.values["name"]
        elif f.name in item.values:
            row[f.name] = item.values[f.name]
    return row


def restore(device: Device, editor: Editor, path: Path) -> None:
    """Replay the configuration saved in ``path``; ``ValueError`` if it cannot be read or does not apply."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read router state file {path}: {error}") from None
    except RecursionError:
        raise ValueError(f"cannot read router state file {path}: values nested too deeply") from None
    if not isinstance(document, dict) or document.get("format") != 1:
        raise ValueError(f"router state file {path} has an unknown format")
    identity = document.get("identity")
    if isinstance(identity, str):
        device.identity = identity
        device.tables["/system/identity"].items[0].values["name"] = identity
    saved = document.get("menus", {})
    try:
        for menu_path in menus.RESTORE_ORDER:
            table = device.tables[menu_path]
            for row in saved.get(menu_path, []):
                row = {str(key): str(value) for key, value in row.items()}
                if menu_path == "/ppp/profile" and row.get("name") in ("default", "default-encryption"):
                    editor.set(table, [table.by_key[row["name"]]], {k: x for k, x in row.items() if k != "name"})
                elif menu_path == "/interface":
                    default_name = row.pop("default-name", "")
                    match = [i for i in table.items if i.values.get("default-name") == default_name]
                    if match:
                        editor.set(table, match, row)
                else:
                    editor.add(table, row)
    except Trap as trap:
        raise ValueError(f"router state file {path} is inconsistent: {trap.message}") from None
    except (AttributeError, TypeError):  # a menu that is not a list of tables, a row that is not a table
        raise ValueError(f"router state file {path} has an unknown format") from None
