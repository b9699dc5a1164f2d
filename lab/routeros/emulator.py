"""``RouterOSEmulator``: an emulated RouterOS router serving the binary API (and API-SSL) on TCP."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Self

from lab.routeros.model import FailMode, Quirks
from lab.routeros.router import Router
from lab.routeros.server import ApiServer
from lab.routeros.tls import server_context

logger = logging.getLogger(__name__)


class RouterOSEmulator:
    """An emulated router: configuration menus, simulated PPPoE subscribers and the API on TCP.

    The clock is simulated: :meth:`advance` moves it (sessions dial in, counters grow, timeouts expire).
    With ``realtime=True`` a background ticker advances it with the wall clock instead.
    """

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls_port: int | None = None,
        version: str = "7.16",
        seed: int = 0,
        identity: str = "MikroTik",
        state_file: str | os.PathLike[str] | None = None,
        redial_delay: float = 5.0,
        realtime: bool = False,
        *,
        quirks: Quirks | None = None,
        ethernet_ports: int = 5,
        start_time: datetime | None = None,
        tls_certificate: str | None = None,
        tls_key: str | None = None,
        default_remote_range: str | None = None,
        line_rate: int = 100_000_000,
        tick: float = 1.0,
    ) -> None:
        self.users = dict(users) if users is not None else {"admin": ""}
        self.host = host
        self._requested_port = port
        self._requested_tls_port = tls_port
        self._tls_files = (tls_certificate, tls_key)
        self.realtime = realtime
        self.tick = tick
        self.router = Router(
            version=version,
            seed=seed,
            identity=identity,
            redial_delay=redial_delay,
            ethernet_ports=ethernet_ports,
            start_time=start_time,
            state_file=state_file,
            quirks=quirks,
            default_remote_range=default_remote_range,
            line_rate=line_rate,
        )
        self._servers: list[ApiServer] = []
        self._plain: ApiServer | None = None
        self._tls: ApiServer | None = None
        self._latency = 0.0
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        if self._servers:
            raise RuntimeError("emulator already started")
        self._stop.clear()
        try:
            self._plain = ApiServer(self.router, self.users, self.host, self._requested_port)
            self._servers.append(self._plain)
            if self._requested_tls_port is not None:
                context = server_context(*self._tls_files, common_name=self.router.items("/system/identity")[0]["name"])
                self._tls = ApiServer(self.router, self.users, self.host, self._requested_tls_port, context)
                self._servers.append(self._tls)
        except BaseException:
            for server in self._servers:
                server.stop()
            self._servers.clear()
            raise
        for server in self._servers:
            server.latency = self._latency
            server.start()
        if self.realtime or self.router.state_file is not None:
            self._ticker = threading.Thread(target=self._tick_loop, name="routeros-clock", daemon=True)
            self._ticker.start()
        logger.info(
            "RouterOS %s emulator listening on %s:%s%s",
            self.router.version,
            self.host,
            self.port,
            f" (API-SSL on {self.tls_port})" if self._tls else "",
        )
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None
        for server in self._servers:
            server.stop()
        self._servers.clear()
        self._plain = self._tls = None
        self.router.flush_state()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _tick_loop(self) -> None:
        """Advances the clock with real time (``realtime=True``) and writes the state file once a second."""
        last = time.monotonic()
        last_flush = last
        while not self._stop.wait(min(self.tick, 1.0)):
            now = time.monotonic()
            if self.realtime:
                self.router.advance(now - last)
                last = now
            if now - last_flush >= 1.0:
                try:
                    self.router.flush_state()
                except OSError:
                    logger.exception("cannot write the router state file")
                last_flush = now

    def flush_state(self) -> None:
        """Write the configuration to the state file now (it is also written every second and at stop)."""
        self.router.flush_state()

    @property
    def port(self) -> int:
        if self._plain is None:
            raise RuntimeError("emulator not started")
        return int(self._plain.port)

    @property
    def tls_port(self) -> int | None:
        return int(self._tls.port) if self._tls is not None else None

    # ---------------------------------------------------------------- clock and faults

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward by ``seconds``."""
        self.router.advance(seconds)

    @property
    def now(self) -> float:
        """Simulated seconds since the emulator was created."""
        return self.router.now

    def reboot(self) -> None:
        """Reboot: API connections drop, sessions and dynamic entries vanish, counters reset, ids renumber."""
        self.drop_connections()
        self.router.reboot()

    def drop_connections(self) -> None:
        """Close every open API connection (the listeners keep accepting)."""
        for server in list(self._servers):
            server.drop_connections()

    def set_latency(self, seconds: float) -> None:
        """Delay each reply by ``seconds``."""
        if seconds < 0:
            raise ValueError("latency must not be negative")
        self._latency = seconds
        for server in self._servers:
            server.latency = seconds

    def set_read_only(self, enabled: bool = True) -> None:
        """Refuse every write with ``not enough permissions (9)``, as for a user without the write policy."""
        self.router.set_read_only(enabled)

    def fail_nth_write(self, n: int, mode: FailMode = "trap", message: str | None = None) -> None:
        """Make the ``n``-th write from now (1 = the next) fail.

        ``trap``: refused with a trap, nothing changed; ``drop``: the connection closes before the write;
        ``drop-after``: the write is applied, then the connection closes before the reply.
        """
        self.router.fail_nth_write(n, mode, message)

    def hang_up(self, name: str, reason: str = "peer-not-responding") -> bool:
        """The subscriber ``name`` drops its session from its side; its CPE redials after the delay."""
        return self.router.hang_up(name, reason)

    @property
    def write_count(self) -> int:
        """Writes (add/set/remove/enable/disable/...) clients made successfully over the API."""
        return self.router.write_count

    def connection_count(self) -> int:
        return sum(server.connection_count() for server in self._servers)

    # ---------------------------------------------------------------- inspection

    def items(self, path: str) -> list[dict[str, str]]:
        """The rows of a menu as the API prints them (``/ppp/secret``), for assertions."""
        return self.router.items(path)

    def call(
        self, command: str, attributes: Mapping[str, str] | None = None, queries: Sequence[str] = ()
    ) -> list[list[str]]:
        """Run a command directly (not counted as a client write, never failed by faults).

        Returns the reply sentences, e.g. ``[["!done", "=ret=*1"]]``.
        """
        words = [command, *(f"={key}={value}" for key, value in (attributes or {}).items()), *queries]
        return self.router.execute(words, from_wire=False).sentences
