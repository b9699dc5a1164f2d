"""Driver settings for the Linux gateway tests (what ``daemon.config.RouterSettings`` would carry)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Network
from pathlib import Path


@dataclass(frozen=True)
class Params:
    name: str = "gw1"
    kind: str = "linux"
    host: str = "127.0.0.1"
    port: int = 22
    username: str = "root"
    ssh_key_file: Path | None = Path("/nonexistent/key")
    known_hosts_file: Path | None = None
    trust_on_first_use: bool = False
    interface: str | None = "sub0"
    upload_ifb: str | None = "ifb0"
    leaf_qdisc: str = "pfifo"
    subnets: tuple[IPv4Network, ...] = ()
    tls: bool = False
    tls_verify: bool = True
    encoding: str = "utf-8"
    timeout: timedelta = timedelta(seconds=20)
    password_text: str = ""

    def password(self) -> str:
        return self.password_text
