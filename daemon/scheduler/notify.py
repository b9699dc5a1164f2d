"""The systemd notification protocol (``sd_notify``), for a ``Type=notify`` unit with ``WatchdogSec=``.

systemd passes ``NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket) and, with a watchdog,
``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, the process meant). The daemon sends ``READY=1`` once its scheduler runs,
``WATCHDOG=1`` every half interval while its scheduler is healthy, and ``STOPPING=1`` when it shuts down. Outside
systemd (no ``NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from datetime import timedelta

__all__ = ["Notifier"]

log = logging.getLogger(__name__)


class Notifier:
    """Sends state changes to systemd over its notification socket."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + path[1:] if path.startswith("@") else path
        self.watchdog: timedelta | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog = timedelta(microseconds=int(usec))

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, *fields: str) -> None:
        """Send ``KEY=VALUE`` fields in one datagram; a failure is logged, never raised."""
        if not self._address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:
            log.warning("cannot notify systemd on %s: %s", self._address.replace("\0", "@"), exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def alive(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")
