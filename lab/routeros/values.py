"""Parsing and printing of RouterOS property values (booleans, rates, durations, addresses, dates)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime

from lab.routeros.errors import Trap

_TRUE = frozenset({"yes", "true"})
_FALSE = frozenset({"no", "false"})


def id_text(number: int) -> str:
    """Format an internal id number as RouterOS prints it (``*1A``)."""
    return f"*{number:X}"


def parse_id(text: str) -> int | None:
    """Parse ``*1A`` into 26; ``None`` when the text is not an id."""
    if len(text) < 2 or not text.startswith("*"):
        return None
    try:
        return int(text[1:], 16)
    except ValueError:
        return None


def parse_version(text: str) -> tuple[int, ...]:
    """``"7.16"`` -> ``(7, 16)``; ``"6.45.1"`` -> ``(6, 45, 1)``. Raises ``ValueError`` on other text."""
    core = text.split(" ", 1)[0]
    parts = tuple(int(part) for part in core.split("."))
    if len(parts) < 2:
        raise ValueError(f"RouterOS version must look like 7.16, got {text!r}")
    return parts


def parse_bool(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise Trap.bad_value(name)


def bool_text(value: bool) -> str:
    return "true" if value else "false"


def parse_tristate(name: str, value: str) -> str:
    lowered = value.lower()
    if lowered in _TRUE:
        return "yes"
    if lowered in _FALSE:
        return "no"
    if lowered == "default":
        return "default"
    raise Trap.bad_value(name)


_RATE = re.compile(r"^(\d+(?:\.\d+)?)([kKMG]?)$")
_MULTIPLIER = {"": 1, "k": 1000, "K": 1000, "M": 1000_000, "G": 1000_000_000}


def parse_rate(name: str, text: str) -> int:
    """Parse one rate (``5M``, ``512k``, ``1.5M``, ``64000``) into bits per second."""
    match = _RATE.match(text.strip())
    if match is None:
        raise Trap.invalid_argument(name)
    number, suffix = match.groups()
    whole, _, fraction = number.partition(".")
    multiplier = _MULTIPLIER[suffix]
    scaled = int(whole) * multiplier
    if fraction:
        # Exact decimal scaling without floats: 1.5M -> 1_500_000.
        scaled += int(fraction) * multiplier // (10 ** len(fraction))
    if scaled > 0xFFFFFFFFFF:
        raise Trap.invalid_argument(name)
    return scaled


def parse_rate_pair(name: str, text: str) -> tuple[int, int]:
    """Parse ``up/down`` (or a single value used for both) into two rates."""
    first, sep, second = text.partition("/")
    up = parse_rate(name, first)
    down = parse_rate(name, second) if sep else up
    return up, down


def pair_text(first: int | str, second: int | str) -> str:
    return f"{first}/{second}"


_DURATION_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")
_CLOCK = re.compile(r"^(?:(\d+)d)?(\d{1,2}):(\d{2}):(\d{2})$")


def parse_duration(name: str, text: str) -> int:
    """Parse ``1w2d3h4m5s``, ``1d02:15:30``, ``00:10:00`` or plain seconds into whole seconds."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    clock = _CLOCK.match(text)
    if clock is not None:
        days, hours, minutes, seconds = clock.groups()
        return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    match = _DURATION.match(text)
    if match is None or not text:
        raise Trap.invalid_argument(name)
    weeks, days, hours, minutes, seconds, _millis = (int(part or 0) for part in match.groups())
    return weeks * 604800 + days * 86400 + hours * 3600 + minutes * 60 + seconds


def duration_text(seconds: float) -> str:
    """Print a duration the way RouterOS 7 does: ``1w2d3h4m5s``, ``4h20m11s``, ``0s``."""
    remaining = max(0, int(seconds))
    if remaining == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in _DURATION_UNITS.items():
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def date_text(moment: datetime, version: tuple[int, ...]) -> str:
    """RouterOS 7.10+ prints ``2024-05-01 12:00:00``; older versions ``may/01/2023 20:52:13``."""
    if version >= (7, 10):
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{_MONTHS[moment.month - 1]}/{moment.day:02d}/{moment.year} {moment.strftime('%H:%M:%S')}"


def parse_ipv4(name: str, text: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        raise Trap.invalid_argument(name) from None


def parse_prefix(name: str, text: str, *, strict: bool = False) -> ipaddress.IPv4Network:
    """Parse ``10.0.0.5`` or ``10.0.0.0/24`` into a network (a bare address becomes ``/32``)."""
    try:
        return ipaddress.IPv4Network(text, strict=strict)
    except ValueError:
        raise Trap.invalid_argument(name) from None


def address_list_address(name: str, text: str) -> str:
    """Normalise an address-list address: a host stays bare, a prefix is masked, a range is kept."""
    if "-" in text:
        low, _, high = text.partition("-")
        first, last = parse_ipv4(name, low.strip()), parse_ipv4(name, high.strip())
        if int(last) < int(first):
            raise Trap.invalid_argument(name)
        return f"{first}-{last}"
    if "/" in text:
        network = parse_prefix(name, text)
        if network.prefixlen == 32:
            return str(network.network_address)
        return str(network)
    if re.match(r"^[0-9.]+$", text):
        return str(parse_ipv4(name, text))
    if re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", text):
        return text  # a DNS name; RouterOS resolves it and adds dynamic entries, we keep the name
    raise Trap.invalid_argument(name)


_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")


def parse_mac(name: str, text: str) -> str:
    if not _MAC.match(text):
        raise Trap.invalid_argument(name)
    return text.upper()


def parse_int(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise Trap.invalid_argument(name) from None
    if not low <= value <= high:
        raise Trap(f"value of {name} out of range ({low}..{high})", category=1)
    return value


@dataclass(frozen=True)
class RateLimit:
    """A PPP ``rate-limit`` from the router's view: rx is the client's upload, tx its download."""

    rx: int
    tx: int
    burst_rx: int = 0
    burst_tx: int = 0
    threshold_rx: int = 0
    threshold_tx: int = 0
    burst_time_rx: int = 0
    burst_time_tx: int = 0
    priority: int = 8
    min_rx: int = 0
    min_tx: int = 0

    def normalised(self) -> str:
        """The raw-bps form, used when the emulator is configured to normalise ``rate-limit``."""
        text = f"{self.rx}/{self.tx}"
        if self.burst_rx or self.burst_tx:
            text += (
                f" {self.burst_rx}/{self.burst_tx} {self.threshold_rx}/{self.threshold_tx}"
                f" {self.burst_time_rx}s/{self.burst_time_tx}s {self.priority}"
                f" {self.min_rx}/{self.min_tx}"
            )
        elif self.min_rx or self.min_tx or self.priority != 8:
            text += f" 0/0 0/0 0s/0s {self.priority} {self.min_rx}/{self.min_tx}"
        return text


def parse_rate_limit(name: str, text: str) -> RateLimit:
    """Parse ``rx[/tx] [rx-burst[/tx-burst] [rx-thr[/tx-thr] [rx-time[/tx-time] [prio] [rx-min[/tx-min]]]]]``.

    A missing tx copies rx; the threshold defaults to the rate and the burst time to 1s when a burst is given.
    """
    tokens = text.split()
    if not 1 <= len(tokens) <= 6:
        raise Trap.invalid_argument(name)
    rx, tx = parse_rate_pair(name, tokens[0])
    burst_rx = burst_tx = threshold_rx = threshold_tx = time_rx = time_tx = min_rx = min_tx = 0
    priority = 8
    if len(tokens) > 1:
        burst_rx, burst_tx = parse_rate_pair(name, tokens[1])
        threshold_rx, threshold_tx = rx, tx
        if burst_rx or burst_tx:
            time_rx = time_tx = 1
    if len(tokens) > 2:
        threshold_rx, threshold_tx = parse_rate_pair(name, tokens[2])
    if len(tokens) > 3:
        first, sep, second = tokens[3].partition("/")
        time_rx = parse_duration(name, first)
        time_tx = parse_duration(name, second) if sep else time_rx
    if len(tokens) > 4:
        priority = parse_int(name, tokens[4], 1, 8)
    if len(tokens) > 5:
        min_rx, min_tx = parse_rate_pair(name, tokens[5])
    return RateLimit(
        rx=rx,
        tx=tx,
        burst_rx=burst_rx,
        burst_tx=burst_tx,
        threshold_rx=threshold_rx,
        threshold_tx=threshold_tx,
        burst_time_rx=time_rx,
        burst_time_tx=time_tx,
        priority=priority,
        min_rx=min_rx,
        min_tx=min_tx,
    )
