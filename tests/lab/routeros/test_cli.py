"""The standalone command: ``python -m lab.routeros`` (the same ``run()`` as ``edgebill lab routeros``)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import librouteros


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lab.routeros", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("hunter2\n")
    state = tmp_path / "state.json"
    process = _start(
        "--listen",
        "127.0.0.1:0",
        "--tls-listen",
        "127.0.0.1:0",
        "--user",
        "ops",
        "--password-file",
        str(password),
        "--seed",
        "5",
        "--state",
        str(state),
        "--version",
        "7.18",
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"on 127\.0\.0\.1:(\d+), API-SSL on 127\.0\.0\.1:(\d+)", banner)
        assert match, banner
        api = librouteros.connect("127.0.0.1", "ops", "hunter2", port=int(match.group(1)), timeout=5)
        api.path("ip", "pool").add(name="kept", ranges="10.0.0.1")
        assert next(iter(api.path("system", "resource")))["version"] == "7.18 (stable)"
        api.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        process.stderr.close()
    assert "kept" in state.read_text()
    assert "hunter2" not in state.read_text()


def test_cli_refuses_a_missing_password_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lab.routeros", "--listen", "127.0.0.1:0", "--password-file", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot read the password file" in result.stderr


def test_cli_rejects_a_bad_listen_address() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lab.routeros", "--listen", "nowhere", "--password-file", "x"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "expected HOST:PORT" in result.stderr
