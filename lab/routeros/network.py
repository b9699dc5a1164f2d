"""The simulated subscribers' traffic: reproducible from a seed and independent of how time is stepped.

Each session's offered load is piecewise constant over epochs of :data:`EPOCH` seconds; the level of an epoch
comes from a hash of ``(seed, session key, epoch)``, so the same seed gives the same counters whether the
clock is advanced by one second at a time or by an hour at once. The router's CPU load (:func:`cpu_load`)
comes from the same kind of hash, per minute.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

EPOCH = 300
IDLE_SHARE = 0.25
MIN_DOWNLOAD = 1_000_000
MAX_DOWNLOAD = 80_000_000
IDLE_RATES = (8_000, 32_000)
DOWN_PACKET = 1200
UP_PACKET = 150


def _uniforms(seed: int, key: str, epoch: int) -> tuple[float, float, float]:
    digest = hashlib.blake2b(f"{seed}:{key}:{epoch}".encode(), digest_size=12).digest()
    scale = float(1 << 32)
    return (
        int.from_bytes(digest[0:4], "big") / scale,
        int.from_bytes(digest[4:8], "big") / scale,
        int.from_bytes(digest[8:12], "big") / scale,
    )


def cpu_load(seed: int, minute: int) -> int:
    """The simulated CPU load in percent during one minute (0 to 11)."""
    return int(_uniforms(seed, "cpu", minute)[0] * 12)


def offered(seed: int, key: str, epoch: int) -> tuple[int, int]:
    """The (upload, download) load in bits per second a subscriber offers during one epoch."""
    idle, level, ratio = _uniforms(seed, key, epoch)
    if idle < IDLE_SHARE:
        return IDLE_RATES
    down = int(MIN_DOWNLOAD + level * (MAX_DOWNLOAD - MIN_DOWNLOAD))
    up = int(down * (0.05 + 0.2 * ratio))
    return up, down


def bounded(rate: int, cap: int) -> int:
    """The rate that gets through a limit (``cap`` of 0 means unlimited)."""
    return min(rate, cap) if cap > 0 else rate


@dataclass(frozen=True)
class Flow:
    """Bits carried and bits refused (dropped) in one direction over an interval."""

    carried: float
    dropped: float


def integrate(seed: int, key: str, start: float, end: float, caps: tuple[int, int]) -> tuple[Flow, Flow]:
    """Upload and download flows for ``[start, end)`` given the (upload, download) caps in bps."""
    up_carried = up_dropped = down_carried = down_dropped = 0.0
    moment = start
    while moment < end:
        epoch = int(moment // EPOCH)
        stop = min(end, (epoch + 1) * EPOCH)
        span = stop - moment
        up, down = offered(seed, key, epoch)
        up_ok, down_ok = bounded(up, caps[0]), bounded(down, caps[1])
        up_carried += up_ok * span
        up_dropped += (up - up_ok) * span
        down_carried += down_ok * span
        down_dropped += (down - down_ok) * span
        moment = stop
    return Flow(up_carried, up_dropped), Flow(down_carried, down_dropped)


@dataclass
class Counters:
    """Traffic counters of one queue or interface, from the subscriber's side (up = client upload)."""

    up_bytes: int = 0
    down_bytes: int = 0
    up_packets: int = 0
    down_packets: int = 0
    up_dropped: int = 0
    down_dropped: int = 0
    up_rate: int = 0
    down_rate: int = 0

    def reset(self) -> None:
        self.up_bytes = self.down_bytes = self.up_packets = self.down_packets = 0
        self.up_dropped = self.down_dropped = self.up_rate = self.down_rate = 0

    def add(self, up_bytes: int, down_bytes: int, up_dropped: int, down_dropped: int) -> None:
        self.up_bytes += up_bytes
        self.down_bytes += down_bytes
        self.up_packets += -(-up_bytes // UP_PACKET) if up_bytes else 0
        self.down_packets += -(-down_bytes // DOWN_PACKET) if down_bytes else 0
        self.up_dropped += up_dropped
        self.down_dropped += down_dropped
