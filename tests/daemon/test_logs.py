"""The daemon's log output, as ``[logging]`` chooses: plain lines (for journald) or JSON objects (for shippers)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_settings
from tests.daemon.conftest import receive_until


def logged(sock: socket.socket, notify: Path, config: Path, **env: str) -> list[str]:
    """Run ``edgebill run`` until it is ready, stop it with SIGTERM, and return its log lines (its stderr)."""
    environ = {key: value for key, value in os.environ.items() if key != "JOURNAL_STREAM"}
    environ.update(env, NOTIFY_SOCKET=str(notify))
    process = subprocess.Popen(
        [sys.executable, "-m", "daemon", "--config", str(config), "run"], env=environ, stderr=subprocess.PIPE, text=True
    )
    try:
        receive_until(sock, lambda got: any(m.startswith("READY=1") for m in got))
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    return stderr.splitlines()


def test_json_logs_are_one_object_a_line(
    notify_socket: tuple[socket.socket, Path], make_config: Callable[..., Path]
) -> None:
    sock, path = notify_socket
    config = make_config(routers=[], extra='[logging]\nformat = "json"\nlevel = "info"\n')
    records = [json.loads(line) for line in logged(sock, path, config)]
    started = next(r for r in records if r["message"].startswith("daemon started"))
    assert started["level"] == "INFO" and started["logger"] == "daemon.scheduler.runner"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", started["timestamp"])
    assert any(r["message"] == "signal SIGTERM received, stopping" for r in records)
    assert all(r["level"] != "DEBUG" for r in records)


def test_plain_logs_leave_the_time_to_journald(
    notify_socket: tuple[socket.socket, Path], make_config: Callable[..., Path]
) -> None:
    sock, path = notify_socket
    config = make_config(routers=[], extra='[logging]\nformat = "plain"\n')
    under_journald = logged(sock, path, config, JOURNAL_STREAM="8:12345")
    assert "INFO daemon.scheduler.runner: daemon started: 0 router(s), reconcile every 0:01:00" in under_journald
    elsewhere = logged(sock, path, config)
    line = next(line for line in elsewhere if "daemon started" in line)
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(stamp + r" INFO daemon\.scheduler\.runner: daemon started: .*", line)


def test_warning_level_keeps_the_daemon_quiet(
    notify_socket: tuple[socket.socket, Path], make_config: Callable[..., Path]
) -> None:
    sock, path = notify_socket
    config = make_config(routers=[], extra='[logging]\nlevel = "warning"\n')
    assert logged(sock, path, config) == []


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('format = "xml"', 'logging.format: must be one of "plain", "json"'),
        ('level = "verbose"', "logging.level: must be one of"),
        ("colour = true", 'logging.colour: unknown key; expected one of "format", "level"'),
    ],
)
def test_bad_logging_settings_are_refused(make_config: Callable[..., Path], toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(make_config(extra=f"[logging]\n{toml}\n"))


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("9464", 'daemon.metrics_listen: must be "host:port"'),
        ("127.0.0.1:99999", "daemon.metrics_listen: port must be 1..65535"),
        ("::1:9464", "daemon.metrics_listen: IPv6 addresses need brackets"),
    ],
)
def test_bad_metrics_listen_is_refused(make_config: Callable[..., Path], listen: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(make_config(extra=f'[daemon]\nmetrics_listen = "{listen}"\n'))


def test_metrics_listen_is_off_by_default(make_config: Callable[..., Path]) -> None:
    settings = load_settings(make_config())
    assert settings.daemon.metrics_address is None
    assert (settings.logging.format, settings.logging.level) == ("plain", "info")
    ipv6 = load_settings(make_config(extra='[daemon]\nmetrics_listen = "[::1]:9464"\n'))
    assert ipv6.daemon.metrics_address == ("::1", 9464)
