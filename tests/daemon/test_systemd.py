"""``edgebill run`` under systemd: the notification protocol over a socket the test binds, and the unit file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.routeros import RouterOSEmulator
from tests.daemon.conftest import receive_until
from tests.support import require

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "systemd" / "edgebill.service"


def test_the_daemon_notifies_ready_watchdog_and_stopping(
    notify_socket: tuple[socket.socket, Path], router: RouterOSEmulator, make_config: Callable[..., Path]
) -> None:
    sock, path = notify_socket
    config = make_config(routers=[{"name": "core1", "kind": "mikrotik", "host": "127.0.0.1", "port": router.port}])
    env = dict(os.environ, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="2000000")  # 2 s: a ping every second
    process = subprocess.Popen(
        [sys.executable, "-m", "daemon", "--config", str(config), "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        messages = receive_until(sock, lambda got: sum(m == "WATCHDOG=1" for m in got) >= 3)
        ready = [m for m in messages if m.startswith("READY=1")]
        assert ready == ["READY=1\nSTATUS=running: 1 router(s)"]
        assert messages.index(ready[0]) < messages.index("WATCHDOG=1")
        started = time.monotonic()
        receive_until(sock, lambda got: "WATCHDOG=1" in got)
        assert time.monotonic() - started < 1.9  # within half the watchdog interval, and some slack
        process.send_signal(signal.SIGTERM)
        receive_until(sock, lambda got: "STOPPING=1\nSTATUS=stopping" in got)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_outside_systemd_the_daemon_sends_nothing(
    notify_socket: tuple[socket.socket, Path], make_config: Callable[..., Path]
) -> None:
    sock, _ = notify_socket
    env = {key: value for key, value in os.environ.items() if key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    process = subprocess.Popen(
        [sys.executable, "-m", "daemon", "--config", str(make_config(routers=[])), "run"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)
        with pytest.raises(TimeoutError):
            sock.recv(4096)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_the_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "systemd-analyze is not installed")
    assert analyze is not None
    text = UNIT.read_text(encoding="utf-8")
    assert "Type=notify" in text and "WatchdogSec=" in text
    # The shipped unit names /usr/local/bin/edgebill; verify checks that the command exists, so point it at this
    # interpreter's edgebill (or python) for the check.
    edgebill = shutil.which("edgebill", path=str(Path(sys.executable).parent)) or sys.executable
    unit = tmp_path / "edgebill.service"
    unit.write_text(text.replace("/usr/local/bin/edgebill", edgebill), encoding="utf-8")
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr
