"""The configuration error, and how a value is quoted in its one-line messages and in rendered TOML."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from datetime import date, datetime, time
from pathlib import Path
from typing import Final

__all__ = ["ConfigError", "quote", "show", "suggest"]


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` is one line: ``FILE: KEY: REASON``.

    ``ConfigError("reason")`` alone is allowed too; ``path`` and ``key`` are prefixed when given.
    """

    def __init__(self, reason: str, *, path: Path | str | None = None, key: str = "") -> None:
        self.reason = reason
        self.path = path
        self.key = key
        parts = [str(path)] if path is not None else []
        if key:
            parts.append(key)
        parts.append(reason)
        super().__init__(": ".join(parts))


def show(value: object) -> str:
    """Quote a configuration value the way it is written in TOML, shortened to keep messages on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return quote(value if len(value) <= 80 else value[:77] + "...")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        text = "[" + ", ".join(show(item) for item in value) + "]"
        return text if len(text) <= 100 else f"an array of {len(value)} items"
    return repr(value)


_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def quote(text: str) -> str:
    """A TOML basic string."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def suggest(name: str, known: Iterable[str]) -> str:
    """``; did you mean "x"?`` naming the known name closest to ``name``, or an empty string when none is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {show(close[0])}?" if close else ""
