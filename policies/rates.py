"""Link rates: integer bits per second, parsed from and printed in the form ISP staff and routers use.

The rules, exactly:

* A rate is an ``int`` number of bits per second, from 1 bps to :data:`MAX_RATE` (100G) inclusive.
* :func:`parse_rate` reads digits with an optional fractional part and an optional SI suffix: ``k`` = 10^3,
  ``M`` = 10^6, ``G`` = 10^9 (decimal, as RouterOS and ``tc``'s ``kbit``/``mbit`` use them; the suffix is
  case-insensitive). ``"10M"`` is 10,000,000; ``"512k"`` is 512,000; ``"1.5M"`` is 1,500,000; ``"64000"`` is
  64,000. Surrounding whitespace is ignored. Refused with :class:`RateError` naming the input: empty text,
  zero, a sign, units or words (``"10Mbps"``, ``"10 M"``), exponents, a value that is not a whole number of
  bits per second (``"0.5"``, ``"1.0000005M"``), and anything above 100G.
* :func:`format_rate` prints the shortest exact form: the largest suffix that divides the rate evenly, with
  no fractional digits (``10_000_000`` -> ``"10M"``, ``1_500_000`` -> ``"1500k"``, ``64_123`` -> ``"64123"``),
  so ``parse_rate(format_rate(r)) == r`` for every valid rate.
* A :class:`RateLimit` is a download and an upload rate (as seen by the subscriber) and an optional
  :class:`Burst`. A burst allows the subscriber ``burst.download``/``burst.upload`` while their average over
  ``time_s`` seconds stays below ``threshold_download``/``threshold_upload`` (the RouterOS burst model). A
  burst is validated against its base rates: each burst rate must be strictly above the base rate, each
  threshold between 1 bps and the base rate inclusive, and ``time_s`` between 1 and 3600 seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "MAX_BURST_TIME_S",
    "MAX_RATE",
    "Burst",
    "RateError",
    "RateLimit",
    "format_rate",
    "parse_rate",
]

#: The highest rate edgebill accepts: 100 Gbit/s.
MAX_RATE = 100_000_000_000

#: The longest burst averaging window, in seconds.
MAX_BURST_TIME_S = 3600

_SUFFIXES = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}
_RATE = re.compile(r"([0-9]+)(?:\.([0-9]+))?([kKmMgG]?)")


class RateError(ValueError):
    """A rate or rate limit that is malformed or out of range."""


def parse_rate(text: str) -> int:
    """Parse ``"10M"``, ``"512k"``, ``"1.5M"``, ``"1G"`` or ``"64000"`` into bits per second."""
    if not isinstance(text, str):
        raise TypeError(f"parse_rate needs a string, got {type(text).__name__}")
    shown = text if len(text) <= 40 else text[:37] + "..."
    match = _RATE.fullmatch(text.strip())
    if match is None:
        raise RateError(
            f"invalid rate {shown!r}: expected a number with an optional k, M or G suffix, like '10M' or '512k'"
        )
    whole, frac, suffix = match.group(1), match.group(2) or "", match.group(3)
    whole, frac = whole.lstrip("0") or "0", frac.rstrip("0")
    if len(whole) > 15:
        raise RateError(f"invalid rate {shown!r}: above the maximum of {format_rate(MAX_RATE)}")
    if len(frac) > 9:
        raise RateError(f"invalid rate {shown!r}: not a whole number of bits per second")
    value = Decimal(f"{whole}.{frac or '0'}") * _SUFFIXES[suffix.lower()]
    if value != value.to_integral_value():
        raise RateError(f"invalid rate {shown!r}: not a whole number of bits per second")
    bps = int(value)
    if bps == 0:
        raise RateError(f"invalid rate {shown!r}: must be above zero")
    if bps > MAX_RATE:
        raise RateError(f"invalid rate {shown!r}: above the maximum of {format_rate(MAX_RATE)}")
    return bps


def _check_rate(bps: int, what: str) -> None:
    if type(bps) is not int:
        raise TypeError(f"{what} must be an int number of bits per second, got {type(bps).__name__}")
    if not 1 <= bps <= MAX_RATE:
        raise RateError(f"{what} {bps} bps is out of range (1 bps to {format_rate(MAX_RATE)})")


def format_rate(bps: int) -> str:
    """Print a rate in its shortest exact form: ``"10M"``, ``"1500k"``, ``"64123"``."""
    _check_rate(bps, "rate")
    for suffix, factor in (("G", 1_000_000_000), ("M", 1_000_000), ("k", 1_000)):
        if bps % factor == 0:
            return f"{bps // factor}{suffix}"
    return str(bps)


@dataclass(frozen=True)
class Burst:
    """Burst allowance: higher rates while the average over ``time_s`` stays under the thresholds."""

    download: int
    upload: int
    threshold_download: int
    threshold_upload: int
    time_s: int

    def __post_init__(self) -> None:
        _check_rate(self.download, "burst download rate")
        _check_rate(self.upload, "burst upload rate")
        _check_rate(self.threshold_download, "burst download threshold")
        _check_rate(self.threshold_upload, "burst upload threshold")
        if type(self.time_s) is not int:
            raise TypeError(f"burst time must be an int number of seconds, got {type(self.time_s).__name__}")
        if not 1 <= self.time_s <= MAX_BURST_TIME_S:
            raise RateError(f"burst time {self.time_s}s is out of range (1 to {MAX_BURST_TIME_S} seconds)")


@dataclass(frozen=True)
class RateLimit:
    """A subscriber's download and upload rates in bits per second, with an optional burst."""

    download: int
    upload: int
    burst: Burst | None = None

    def __post_init__(self) -> None:
        _check_rate(self.download, "download rate")
        _check_rate(self.upload, "upload rate")
        burst = self.burst
        if burst is None:
            return
        if not isinstance(burst, Burst):
            raise TypeError(f"burst must be a Burst or None, got {type(burst).__name__}")
        for direction, base, peak, threshold in (
            ("download", self.download, burst.download, burst.threshold_download),
            ("upload", self.upload, burst.upload, burst.threshold_upload),
        ):
            if peak <= base:
                raise RateError(
                    f"burst {direction} rate {format_rate(peak)} must be above the {direction} rate {format_rate(base)}"
                )
            if threshold > base:
                raise RateError(
                    f"burst {direction} threshold {format_rate(threshold)} must not exceed the {direction} "
                    f"rate {format_rate(base)}"
                )

    def __str__(self) -> str:
        text = f"{format_rate(self.download)}/{format_rate(self.upload)} (down/up)"
        if self.burst is not None:
            b = self.burst
            text += (
                f" burst {format_rate(b.download)}/{format_rate(b.upload)}"
                f" above {format_rate(b.threshold_download)}/{format_rate(b.threshold_upload)}"
                f" for {b.time_s}s"
            )
        return text
