"""Settings written back as TOML: every section and key, walked from the declarations of the schema."""

from __future__ import annotations

import dataclasses
from datetime import time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url

from daemon.config.durations import format_duration
from daemon.config.errors import quote
from daemon.config.schema import DatabaseSettings, Key, Settings, array_key, toml_fields
from policies.money import Currency

__all__ = ["render_settings"]


def render_settings(settings: Settings, *, reveal: bool = False) -> str:
    """The settings as TOML that :func:`~daemon.config.load_settings` reads back to equal settings (paths absolute).

    Secret files are named, never read. A password inside the database URL is masked unless ``reveal``.
    """
    url = make_url(settings.database.url).render_as_string(hide_password=not reveal)
    settings = dataclasses.replace(settings, database=DatabaseSettings(url=url))
    blocks = []
    for section in toml_fields(Settings):
        value = getattr(settings, section.field)
        if section.how.array:
            header = f"[[{section.key}.{array_key(Settings, section.field)}]]"
            blocks += [[header, *_lines(item)] for item in value]
        elif isinstance(value, tuple):
            blocks += [[f"[[{section.key}]]", *_lines(item)] for item in value]
        else:
            blocks.append([f"[{section.key}]", *_lines(value)])
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"


def _lines(table: Any) -> list[str]:
    """``key = value`` for each key of a settings value; keys of another router kind left out."""
    kind = getattr(table, "kind", None)
    lines = []
    for entry in toml_fields(type(table)):
        if entry.how.kind is not None and entry.how.kind != kind:
            continue
        value = getattr(table, entry.key)
        if value is None and entry.how.omit_none:
            continue
        lines.append(f"{entry.key} = {_value(value, entry.how)}")
    return lines


def _value(value: object, how: Key) -> str:
    """A value as TOML, the way the loader reads it back."""
    if how.text is not None and value is not None:
        return quote(how.text(value))
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, timedelta):
        return quote(format_duration(value))
    if isinstance(value, time):
        return quote(value.strftime("%H:%M"))
    if isinstance(value, Currency):
        return quote(value.code)
    if isinstance(value, ZoneInfo):
        return quote(value.key)
    if isinstance(value, tuple):
        return "[" + ", ".join(_value(item, Key()) for item in value) + "]"
    return quote(str(value))
