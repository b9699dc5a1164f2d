"""Durations as the configuration writes them: ``"90s"``, ``"5m"``, ``"1h30m"``, ``"1d"``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

from daemon.config.errors import show

__all__ = ["DURATION_HINT", "format_duration", "parse_duration"]

_DURATION = re.compile(r"(?:([0-9]{1,6})d)?(?:([0-9]{1,7})h)?(?:([0-9]{1,9})m)?(?:([0-9]{1,11})s)?")
#: What a duration looks like, for messages about a value that is not one.
DURATION_HINT: Final = 'must be a duration like "90s", "5m", "1h30m" or "1d"'


def parse_duration(text: str) -> timedelta:
    """Parse ``"90s"``, ``"5m"``, ``"1h30m"``, ``"1d"`` (units d, h, m, s, largest first, each at most once).

    Raises ``ValueError`` whose message reads well after a key: ``must be a duration like ..., got "abc"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_duration needs a string, got {type(text).__name__}")
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f"{DURATION_HINT}, got {show(text)}")
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Print a whole-second, non-negative duration the way :func:`parse_duration` reads it: ``"1h30m"``."""
    if value < timedelta(0) or value.microseconds:
        raise ValueError(f"cannot print {value!r} as a duration: it must be whole, non-negative seconds")
    total = int(value.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
