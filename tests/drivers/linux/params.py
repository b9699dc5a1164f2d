"""Driver settings for the Linux gateway tests (real ``daemon.config.RouterSettings``) and the namespaced lab."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from daemon.config import RouterSettings
from lab.linux_gw import LinuxGateway, problem
from tests.support import require

#: A gateway nobody can reach: for what the driver checks before it connects.
OFFLINE = RouterSettings(
    name="gw1",
    kind="linux",
    host="127.0.0.1",
    port=22,
    username="root",
    ssh_key_file=Path("/nonexistent/key"),
    interface="sub0",
    upload_ifb="ifb0",
    leaf_qdisc="pfifo",
    timeout=timedelta(seconds=20),
)


def settings_for(gw: LinuxGateway, **overrides: Any) -> RouterSettings:
    """The settings that reach ``gw`` over SSH with its client key, checking its host key."""
    reach = {
        "host": gw.host,
        "port": gw.port,
        "ssh_key_file": gw.key_file,
        "known_hosts_file": gw.known_hosts_file,
        "interface": gw.interface,
        "upload_ifb": gw.upload_ifb,
        "subnets": (gw.subnet,),
    }
    return replace(OFFLINE, **{**reach, **overrides})


@contextmanager
def running_gateway(subscribers: int) -> Iterator[LinuxGateway]:
    """A namespaced gateway with ``subscribers`` hosts behind it; skips (fails in CI) where it cannot run."""
    why = problem()
    require(not why, why)
    with LinuxGateway.up(subscribers) as gw:
        yield gw
