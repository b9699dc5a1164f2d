"""The typed table reader: one TOML table under validation, failing with the dotted key of the offending value.

A :class:`Table` knows its place in the file (``routers[1]``) so that every message names the full key, and reads
each value as the type its key documents (strings, integers in a range, choices, durations, clock times, hosts,
interface names, URLs, paths and secret files), refusing anything else with :class:`ConfigError`.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from typing import Final, NoReturn

from daemon.config.durations import DURATION_HINT, format_duration, parse_duration
from daemon.config.errors import ConfigError, show, suggest
from daemon.config.secrets import secret_file_problem, strip_newline
from daemon.config.values import url_problem, valid_host

__all__ = ["REQUIRED", "Required", "Source", "Table", "resolved"]


class Required(enum.Enum):
    """The type of :data:`REQUIRED`."""

    REQUIRED = enum.auto()


#: A default meaning "no default": the key must be present.
REQUIRED: Final = Required.REQUIRED

_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Source:
    """The configuration file being read."""

    #: The file's name as the caller gave it; messages start with it.
    shown: str
    #: The folder holding the file: relative paths in it resolve against this folder.
    base: Path

    def fail(self, key: str, reason: str) -> NoReturn:
        raise ConfigError(reason, path=self.shown, key=key)


def resolved(shown: object, path: Path) -> str:
    """`` (resolved to /abs/path)`` when the value was a relative path."""
    if isinstance(shown, str) and not Path(shown).is_absolute():
        return f" ({path})"
    return ""


class Table:
    """One TOML table under validation, with its dotted key prefix for messages."""

    def __init__(self, source: Source, prefix: str, data: Mapping[str, object]) -> None:
        self.source = source
        self.prefix = prefix
        self.data = data

    def key(self, name: str) -> str:
        """The full dotted key of ``name`` in this table."""
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, reason: str) -> NoReturn:
        """Refuse the value of ``name``."""
        self.source.fail(self.key(name), reason)

    def has(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, default: object = None) -> object:
        """The raw TOML value of ``name``, unchecked."""
        return self.data.get(name, default)

    def check_keys(self, known: Sequence[str]) -> None:
        """Refuse the first key that is not one of ``known``, suggesting the closest known one."""
        for name in self.data:
            if name not in known:
                what = "section" if not self.prefix else "key"
                hint = suggest(name, known)
                if hint:
                    self.fail(name, f"unknown {what}{hint}")
                self.fail(name, f"unknown {what}; expected one of {', '.join(show(k) for k in known)}")

    # -- nested tables --------------------------------------------------------------------------------------

    def table(self, name: str, *, required: bool = False) -> Table:
        """The table ``[name]``; empty when absent and not ``required``."""
        raw = self.data.get(name)
        if raw is None:
            if required:
                self.fail(name, f"required section is missing; add a [{self.key(name)}] table")
            return Table(self.source, self.key(name), {})
        if not isinstance(raw, dict):
            self.fail(name, f"must be a table ([{self.key(name)}]), got {show(raw)}")
        return Table(self.source, self.key(name), raw)

    def tables(self, name: str) -> list[Table]:
        """The array of tables ``[[name]]``, each prefixed by its index; empty when absent."""
        raw = self.data.get(name, [])
        if not isinstance(raw, list):
            self.fail(name, f"must be an array of tables ([[{self.key(name)}]]), got {show(raw)}")
        result = []
        for index, item in enumerate(raw):
            if not isinstance(item, dict):
                self.fail(f"{name}[{index}]", f"must be a table, got {show(item)}")
            result.append(Table(self.source, f"{self.key(name)}[{index}]", item))
        return result

    # -- scalars --------------------------------------------------------------------------------------------

    def _present(self, name: str, default: object) -> object:
        if name not in self.data:
            if default is REQUIRED:
                self.fail(name, "required key is missing")
            return default
        return self.data[name]

    def string(self, name: str, default: str | Required, *, allow_empty: bool = False, max_length: int = 1024) -> str:
        raw = self._present(name, default)
        if not isinstance(raw, str):
            self.fail(name, f"must be a string, got {show(raw)}")
        if not raw and not allow_empty:
            self.fail(name, "must not be empty")
        if _CONTROL.search(raw):
            self.fail(name, f"must not contain control characters, got {show(raw)}")
        if len(raw) > max_length:
            self.fail(name, f"must be at most {max_length} characters, got {show(raw)}")
        return raw

    def optional_string(self, name: str) -> str | None:
        """The string ``name``; ``None`` when absent or empty."""
        if self.data.get(name, "") == "":
            return None
        return self.string(name, REQUIRED)

    def integer(self, name: str, low: int, high: int, default: int | Required) -> int:
        raw = self._present(name, default)
        if type(raw) is not int or not low <= raw <= high:
            quoted = isinstance(raw, str) and raw.strip().lstrip("+-").isdigit()
            hint = " (an integer, without quotes)" if quoted else ""
            self.fail(name, f"must be {low}..{high}{hint}, got {show(raw)}")
        return raw

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._present(name, default)
        if not isinstance(raw, bool):
            self.fail(name, f"must be true or false, got {show(raw)}")
        return raw

    def choice(self, name: str, choices: Sequence[str], default: str | Required) -> str:
        raw = self._present(name, default)
        if not isinstance(raw, str) or raw not in choices:
            self.fail(name, f"must be one of {', '.join(show(c) for c in choices)}, got {show(raw)}")
        return raw

    def duration(self, name: str, default: timedelta, low: timedelta, high: timedelta) -> timedelta:
        """A duration string (:func:`parse_duration`) between ``low`` and ``high``; ``default`` when absent."""
        if name not in self.data:
            return default
        raw = self.data[name]
        if not isinstance(raw, str):
            self.fail(name, f"{DURATION_HINT} (a quoted string), got {show(raw)}")
        try:
            value = parse_duration(raw)
        except ValueError as exc:
            self.fail(name, str(exc))
        if not low <= value <= high:
            self.fail(name, f"must be between {format_duration(low)} and {format_duration(high)}, got {show(raw)}")
        return value

    def clock(self, name: str, default: time) -> time:
        """A time of day: ``"HH:MM"``, or a TOML local time on a whole minute."""
        raw = self._present(name, default)
        if isinstance(raw, time) and raw.tzinfo is None and raw.second == 0 and raw.microsecond == 0:
            return raw
        match = _HHMM.fullmatch(raw) if isinstance(raw, str) else None
        if match is None:
            self.fail(name, f'must be a 24-hour time "HH:MM" like "04:00", got {show(raw)}')
        return time(int(match.group(1)), int(match.group(2)))

    def host(self, name: str, default: str | Required) -> str:
        text = self.string(name, default)
        if not valid_host(text):
            self.fail(name, f"not a valid IP address or host name, got {show(text)}")
        return text

    def host_port(self, name: str, text: str) -> tuple[str, int]:
        """``text``, the value of ``name``, read as ``host:port`` (IPv6 in brackets): the host and the port."""
        hint = f'must be "host:port" (IPv6 as "[::1]:8080"), got {show(text)}'
        if text.startswith("["):
            host, sep, port_text = text[1:].partition("]:")
            if not sep:
                self.fail(name, hint)
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                self.fail(name, f"not an IPv6 address inside the brackets, got {show(text)}")
        else:
            host, sep, port_text = text.rpartition(":")
            if not sep or not host:
                self.fail(name, hint)
            if ":" in host:
                self.fail(name, f'IPv6 addresses need brackets, as in "[::1]:8080", got {show(text)}')
            if not valid_host(host):
                self.fail(name, f"not a valid IP address or host name, got {show(text)}")
        if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 1 <= int(port_text) <= 65535:
            self.fail(name, f"port must be 1..65535, got {show(text)}")
        return host, int(port_text)

    def interface(self, name: str, default: str | Required | None) -> str | None:
        """A Linux interface name; ``None`` when absent (or empty) with a ``None`` default."""
        raw = self._present(name, default)
        if raw is None or (raw == "" and default is None):
            return None
        if not isinstance(raw, str) or not _IFNAME.fullmatch(raw) or raw in (".", ".."):
            self.fail(
                name,
                f'must be a Linux interface name (1-15 letters, digits, "_", "." or "-"), got {show(raw)}',
            )
        return raw

    def url(self, name: str, *, allow_query: bool) -> str:
        """A required ``http(s)://`` URL; without a trailing slash unless ``allow_query``."""
        text = self.string(name, REQUIRED)
        problem = url_problem(text, allow_query=allow_query)
        if problem:
            self.fail(name, f"{problem}, got {show(text)}")
        return text if allow_query else text.rstrip("/")

    # -- files ----------------------------------------------------------------------------------------------

    def optional_path(self, name: str) -> Path | None:
        """The path ``name``, resolved against the configuration's folder; ``None`` when absent or empty."""
        text = self.optional_string(name)
        if text is None:
            return None
        return self.source.base / text

    def secret_file(self, name: str) -> Path:
        """A required secret file that passes the permission checks of :mod:`daemon.config.secrets`."""
        path = self.optional_secret_file(name)
        if path is None:
            self.fail(name, "required key is missing" if name not in self.data else "must not be empty")
        return path

    def optional_secret_file(self, name: str) -> Path | None:
        """Like :meth:`secret_file`; ``None`` when absent or empty."""
        path = self.optional_path(name)
        if path is None:
            return None
        shown = self.get(name)
        problem = secret_file_problem(path)
        if problem:
            self.fail(name, f"{problem}{resolved(shown, path)}, got {show(shown)}")
        return path

    def read_secret(self, name: str, path: Path) -> bytes:
        """The contents of the secret file named by ``name`` (one trailing newline removed)."""
        try:
            return strip_newline(path.read_bytes())
        except OSError as exc:
            self.fail(name, f"cannot read: {exc.strerror or exc}, got {show(self.get(name))}")
