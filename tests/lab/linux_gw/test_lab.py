"""The namespaced lab gateway: real OpenSSH with checked host keys, forwarding, servers, and teardown."""

from __future__ import annotations

import argparse
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from daemon.config import RouterSettings
from drivers.base import AuthError, ConnectError
from drivers.linux import LinuxTcDriver
from lab.linux_gw import LinuxGateway, problem
from lab.linux_gw import cli as lab_cli
from lab.linux_gw.gateway import UPSTREAM_BODY
from tests.drivers.linux.params import running_gateway, settings_for
from tests.support import require

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def lab() -> Iterator[LinuxGateway]:
    with running_gateway(3) as gw:
        yield gw


def params(gw: LinuxGateway) -> RouterSettings:
    """The gateway's settings without subscriber ranges: these tests exercise the SSH session only."""
    return settings_for(gw, subnets=())


def test_subscribers_reach_the_upstream_through_the_gateway(lab: LinuxGateway) -> None:
    assert len(lab.subscribers) == 3
    assert lab.http_get(lab.subscribers[2], lab.upstream_url) == UPSTREAM_BODY + "\n"
    assert lab.iperf(lab.subscribers[0], download=True, seconds=1, omit=0).bits_per_second > 50e6


def test_ssh_checks_the_host_key(lab: LinuxGateway, tmp_path: Path) -> None:
    with LinuxTcDriver(params(lab)) as drv:
        assert drv.facts().model == "Linux tc gateway"

    unknown = tmp_path / "known_hosts"
    unknown.write_text("", encoding="ascii")
    with pytest.raises(AuthError, match="not in"), LinuxTcDriver(replace(params(lab), known_hosts_file=unknown)):
        pass

    other_key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    pub = (tmp_path / "other.pub").read_text(encoding="ascii").split()
    wrong = tmp_path / "wrong_hosts"
    wrong.write_text(f"[{lab.host}]:{lab.port} {pub[0]} {pub[1]}\n", encoding="ascii")
    with pytest.raises(AuthError, match="does not match"), LinuxTcDriver(replace(params(lab), known_hosts_file=wrong)):
        pass

    with (
        pytest.raises(AuthError, match="no known_hosts_file"),
        LinuxTcDriver(replace(params(lab), known_hosts_file=None)),
    ):
        pass

    # Trust on first use records the key, then holds the gateway to it.
    tofu = tmp_path / "tofu_hosts"
    with LinuxTcDriver(replace(params(lab), known_hosts_file=tofu, trust_on_first_use=True)) as drv:
        drv.facts()
    assert f"[{lab.host}]:{lab.port} ssh-ed25519 " in tofu.read_text(encoding="ascii")
    with LinuxTcDriver(replace(params(lab), known_hosts_file=tofu)) as drv:
        drv.facts()


def test_wrong_client_key_and_unreachable_port(lab: LinuxGateway, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    with pytest.raises(AuthError, match="refused"), LinuxTcDriver(replace(params(lab), ssh_key_file=stranger)):
        pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    with pytest.raises(ConnectError, match="cannot connect"), LinuxTcDriver(replace(params(lab), port=free)):
        pass


def test_the_session_is_reopened_after_it_was_lost(lab: LinuxGateway) -> None:
    with LinuxTcDriver(params(lab)) as drv:
        first = drv.facts()
        drv.close()
        assert drv.facts().identity == first.identity
        # The gateway drops the session (sshd restarted, a reboot): the next read logs in again.
        master = (lab.workdir / "sshd.pid").read_text(encoding="ascii").strip()
        pids = subprocess.run(["ip", "netns", "pids", lab.gw_ns], capture_output=True, text=True, check=True)
        sessions = [
            pid
            for pid in pids.stdout.split()
            if pid != master and Path(f"/proc/{pid}/comm").read_text(encoding="ascii").strip() == "sshd"
        ]
        assert sessions
        subprocess.run(["kill", *sessions], check=True)
        assert drv.facts().identity == first.identity
        assert drv.read_state() is not None


def test_teardown_removes_the_namespaces() -> None:
    why = problem()
    require(not why, why)
    with LinuxGateway.up(1) as gw:
        names = (gw.gw_ns, gw.sub_ns, gw.up_ns)
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert all(n in listed for n in names)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not any(n in listed for n in names)


def test_cli_parses_up_and_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    lab_cli.configure_parser(parser)
    args = parser.parse_args(["up", "--subscribers", "3", "--dir", str(tmp_path)])
    assert (args.linux_gw_action, args.subscribers, args.dir) == ("up", 3, tmp_path)
    args = parser.parse_args(["down", "--dir", str(tmp_path)])
    if problem():
        assert lab_cli.run(args) == 2
    else:
        assert lab_cli.run(args) == 0
        assert "no lab recorded" in capsys.readouterr().out
