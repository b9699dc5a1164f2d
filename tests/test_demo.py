"""``edgebill demo`` end to end: what a newcomer gets from ``make demo``.

The demo starts as a real process; the test signs in to the dashboard over HTTP, checks over the RouterOS API that
the seeded services reached the emulated routers, stops the demo with Ctrl-C, and starts it again on the same data.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import librouteros
import pytest

BANNER_TIMEOUT = 60.0
PUSH_TIMEOUT = 60.0


class Demo:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon", "demo", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.output: list[str] = []
        self.url, self.user, self.password = self._wait_for_banner()

    def _wait_for_banner(self) -> tuple[str, str, str]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + BANNER_TIMEOUT
        url = user = password = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if m := re.search(r"dashboard: (\S+)", line):
                url = m.group(1).rstrip("/")
            if m := re.search(r"sign in:\s+(\S+) / (\S+)", line):
                user, password = m.group(1), m.group(2)
            if "Press Ctrl-C to stop." in line:
                return url, user, password
        self.stop()
        pytest.fail("the demo did not start:\n" + "".join(self.output))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("the demo did not stop within 30 s of Ctrl-C")
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            self.output.extend(self.proc.stdout.readlines())
            self.proc.stdout.close()
        return self.proc.returncode


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    d = Demo(tmp_path / "demo-data")
    try:
        yield d
    finally:
        d.stop()


def sign_in(demo: Demo) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(f"{demo.url}/login", timeout=10).read().decode()
    token = re.search(r'name="csrf" value="([^"]+)"', page)
    assert token is not None
    form = urllib.parse.urlencode({"csrf": token.group(1), "username": demo.user, "password": demo.password})
    overview = opener.open(f"{demo.url}/login", data=form.encode(), timeout=10).read().decode()
    assert "Overview" in overview
    return opener


def router_secrets(data_dir: Path, name: str) -> list[dict[str, object]]:
    config = tomllib.loads((data_dir / "edgebill.toml").read_text())
    (router,) = [r for r in config["routers"] if r["name"] == name]
    password = (data_dir / router["password_file"]).read_text().strip()
    api = librouteros.connect(router["host"], router["username"], password, port=router["port"], timeout=5)
    try:
        return list(api.path("ppp", "secret"))
    finally:
        api.close()


def test_demo_starts_pushes_services_to_its_routers_and_restarts_on_the_same_data(demo: Demo) -> None:
    opener = sign_in(demo)
    services = opener.open(f"{demo.url}/services", timeout=10).read().decode()
    assert "Ada Lovelace" in services and "home-25" in services

    deadline = time.monotonic() + PUSH_TIMEOUT
    logins: set[object] = set()
    while time.monotonic() < deadline:
        logins = {row["name"] for row in router_secrets(demo.data_dir, "core1")}
        if {"ada", "alan", "donald"} <= logins:
            break
        time.sleep(1)
    assert {"ada", "alan", "donald"} <= logins, demo.output

    assert demo.stop() == 0
    again = Demo(demo.data_dir)
    try:
        assert again.password == demo.password
        sign_in(again)
        assert {"ada", "alan", "donald"} <= {row["name"] for row in router_secrets(again.data_dir, "core1")}
    finally:
        assert again.stop() == 0
