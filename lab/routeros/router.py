"""The emulated router as one thread-safe object: the command dispatch (with the faults a test can inject),
the clock, reboot and the state file, over the parts that do the work.

The parts: :mod:`~lab.routeros.device` (settings, menus, ids, clock), :mod:`~lab.routeros.subscribers` (the
PPPoE CPEs and their traffic), :mod:`~lab.routeros.printing` (rows and ``print``), :mod:`~lab.routeros.editing`
(the write commands), :mod:`~lab.routeros.listen` (``listen`` subscriptions) and :mod:`~lab.routeros.statefile`.

Nothing here does socket I/O. Every public method takes the router's lock; callers on the wire side
send the returned sentences after the lock is released.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from lab.routeros import statefile
from lab.routeros.device import Device
from lab.routeros.editing import Editor
from lab.routeros.errors import Trap
from lab.routeros.listen import Listener, Subscriptions
from lab.routeros.model import FailMode, Item, Outcome, Quirks, Request, Table, parse_request
from lab.routeros.printing import Printer
from lab.routeros.subscribers import Subscribers

logger = logging.getLogger(__name__)

WRITE_FAILURE_MESSAGE = (
    "action timed out - try again, if error continues contact MikroTik support and send a supout file (13)"
)


class Router:
    """The emulated RouterOS device (configuration, dynamic state, clock). Thread-safe."""

    def __init__(
        self,
        *,
        version: str = "7.16",
        seed: int = 0,
        identity: str = "MikroTik",
        redial_delay: float = 5.0,
        ethernet_ports: int = 5,
        start_time: datetime | None = None,
        state_file: str | os.PathLike[str] | None = None,
        quirks: Quirks | None = None,
        default_remote_range: str | None = None,
        line_rate: int = 100_000_000,
    ) -> None:
        self.device = Device(
            version=version,
            seed=seed,
            identity=identity,
            redial_delay=redial_delay,
            ethernet_ports=ethernet_ports,
            start_time=start_time,
            quirks=quirks,
            default_remote_range=default_remote_range,
            line_rate=line_rate,
        )
        self.state_file = Path(state_file) if state_file is not None else None
        self.lock = threading.RLock()
        self.read_only = False
        self._fail_at: int | None = None
        self._fail_mode: FailMode = "trap"
        self._fail_message = WRITE_FAILURE_MESSAGE
        self._write_attempts = 0
        self._dirty = False
        self.net = Subscribers(self.device)
        self.printer = Printer(self.device, self.net)
        self.subscriptions = Subscriptions(self.device, self.printer)
        self.editor = Editor(self.device, self.net)
        if self.state_file is not None and self.state_file.exists():
            statefile.restore(self.device, self.editor, self.state_file)

    @property
    def version(self) -> str:
        return self.device.version

    @property
    def now(self) -> float:
        """Simulated seconds since the router was created."""
        return self.device.now

    @property
    def write_count(self) -> int:
        """Writes made over the API (``execute(..., from_wire=True)``) that were applied."""
        return self.device.write_count

    # ------------------------------------------------------------------ login

    def login_failure(self) -> str:
        return self.device.login_failure()

    @property
    def legacy_login(self) -> bool:
        return self.device.legacy_login

    @property
    def plain_login(self) -> bool:
        return self.device.plain_login

    # ------------------------------------------------------------------ public inspection

    def items(self, path: str) -> list[dict[str, str]]:
        with self.lock:
            table = self.device.tables.get(path.rstrip("/"))
            if table is None:
                raise KeyError(f"unknown menu {path}")
            if path == "/system/resource":
                return [self.printer.printed(table, Item(uid=0, number=0, values={}))]
            return [self.printer.printed(table, item) for item in table.items]

    # ------------------------------------------------------------------ faults

    def set_read_only(self, enabled: bool) -> None:
        with self.lock:
            self.read_only = enabled

    def fail_nth_write(self, n: int, mode: FailMode = "trap", message: str | None = None) -> None:
        if n < 1:
            raise ValueError("n must be 1 or more (1 = the next write)")
        if mode not in ("trap", "drop", "drop-after"):
            raise ValueError(f"mode must be 'trap', 'drop' or 'drop-after', not {mode!r}")
        with self.lock:
            self._fail_at = self._write_attempts + n
            self._fail_mode = mode
            self._fail_message = message or WRITE_FAILURE_MESSAGE

    # ------------------------------------------------------------------ command execution

    def execute(self, words: Sequence[str], *, from_wire: bool = True) -> Outcome:
        """Run one request (without login handling) and return the reply sentences."""
        with self.lock:
            try:
                request = parse_request(words)
                return self._dispatch(request, from_wire)
            except Trap as trap:
                return Outcome([trap.words(), ["!done"]])

    def resolve_command(self, command: str) -> tuple[Table, str]:
        """Split ``/ppp/secret/print`` into its menu and verb, or raise the router's trap."""
        path, _, verb = command.rstrip("/").rpartition("/")
        tables = self.device.tables
        table = tables.get(path)
        if table is None:
            prefix = path + "/"
            if path and any(known.startswith(prefix) for known in tables):
                raise Trap("no such command")
            raise Trap("no such command prefix")
        if verb not in table.spec.commands:
            raise Trap("no such command")
        return table, verb

    def _dispatch(self, request: Request, from_wire: bool) -> Outcome:
        table, verb = self.resolve_command(request.command)
        if verb == "listen":
            raise Trap("listen is handled by the connection")
        if verb in ("print", "getall"):
            return Outcome(self.printer.print(table, request))
        if from_wire:
            if self.read_only:
                raise Trap(self.device.coded("not enough permissions", 9))
            self._write_attempts += 1
            if self._fail_at is not None and self._write_attempts == self._fail_at:
                self._fail_at = None
                if self._fail_mode == "trap":
                    raise Trap(self._fail_message)
                if self._fail_mode == "drop":
                    return Outcome([], drop=True)
                outcome = self.editor.write(table, verb, request)
                self.device.write_count += 1
                self._saved()
                return Outcome(outcome, drop=True)
        sentences = self.editor.write(table, verb, request)
        if from_wire:
            self.device.write_count += 1
        self._saved()
        return Outcome(sentences)

    # ------------------------------------------------------------------ listen

    def subscribe(self, path: str, queries: Sequence[str], proplist: tuple[str, ...] | None, callback: Listener) -> int:
        """Call ``callback`` (under the router lock, so it must not block) with a ``!re`` per change."""
        with self.lock:
            self.resolve_command(path + "/listen")
            return self.subscriptions.add(path, queries, proplist, callback)

    def unsubscribe(self, token: int) -> None:
        with self.lock:
            self.subscriptions.remove(token)

    # ------------------------------------------------------------------ clock

    def advance(self, seconds: float) -> None:
        """Move the simulated clock forward; sessions dial, traffic flows and timeouts expire on the way."""
        if seconds < 0:
            raise ValueError("the clock cannot go backwards")
        with self.lock:
            device = self.device
            target = device.now + seconds
            self.net.events()
            while True:
                upcoming = self.net.next_event()
                stop = target if upcoming is None or upcoming > target else upcoming
                self.net.flow(device.now, stop)
                device.now = stop
                self.net.events()
                if device.now >= target:
                    break
            self.net.update_rates()

    def hang_up(self, name: str, reason: str = "peer-not-responding") -> bool:
        """The subscriber's side drops the session (it redials after the delay). False if not connected."""
        with self.lock:
            return self.net.hang_up(name, reason)

    def reboot(self) -> None:
        """Counters reset, sessions and dynamic entries gone, ids renumbered; configuration kept."""
        with self.lock:
            self.net.power_off()
            self.device.reboot()
            self.net.queues_changed()
            self.net.power_on()
            logger.info("emulated router %s rebooted", self.device.identity)

    # ------------------------------------------------------------------ state file

    def _saved(self) -> None:
        """Note a configuration change; :meth:`flush_state` writes it (the emulator does so every second)."""
        if self.state_file is not None:
            self._dirty = True

    def flush_state(self) -> None:
        """Write the configuration to the state file if it changed since the last write."""
        with self.lock:
            if self.state_file is None or not self._dirty:
                return
            statefile.save(self.device, self.state_file)
            self._dirty = False
