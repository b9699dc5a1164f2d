"""``edgebill lab linux-gw up|down``: a namespaced Linux tc gateway reachable over SSH on 127.0.0.1.

``up`` builds the lab, prints how to reach it (and a ``[[routers]]`` table for ``edgebill.toml``), and keeps it
running until SIGINT or SIGTERM, then removes it. ``down`` removes a lab left behind by a killed ``up``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import time
from pathlib import Path
from types import FrameType

from lab.linux_gw.gateway import LabError, LinuxGateway, problem

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path("/tmp/edgebill-linux-gw")
STATE_FILE = "lab.json"


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add ``up`` and ``down`` with their options to ``parser``."""
    sub = parser.add_subparsers(dest="linux_gw_action", required=True, metavar="{up,down}")
    up = sub.add_parser("up", help="build the gateway and keep it running until interrupted")
    up.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"keys and state (default {DEFAULT_DIR})")
    up.add_argument("--subscribers", type=int, default=8, help="subscriber addresses to create (default 8)")
    up.add_argument("--tag", default="lab", help="suffix of the namespace names (default lab)")
    down = sub.add_parser("down", help="remove a gateway left behind")
    down.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"keys and state (default {DEFAULT_DIR})")


def run(args: argparse.Namespace) -> int:
    why = problem()
    if why:
        print(f"edgebill lab linux-gw: {why}")
        return 2
    if args.linux_gw_action == "down":
        return _down(args.dir)
    return _up(args.dir, args.subscribers, args.tag)


def _up(workdir: Path, subscribers: int, tag: str) -> int:
    if not tag.isalnum() or len(tag) > 8:
        print(f"edgebill lab linux-gw: --tag must be 1-8 letters or digits, got {tag!r}")
        return 2
    if (workdir / STATE_FILE).exists():
        print(f"edgebill lab linux-gw: a lab is recorded in {workdir}; run 'edgebill lab linux-gw down' first")
        return 1
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o700)
    try:
        gw = LinuxGateway.start(subscribers, tag=tag, workdir=workdir)
    except LabError as exc:
        print(f"edgebill lab linux-gw: {exc}")
        return 1
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)  # nothing that takes a lock: the main thread may hold it when the signal lands

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        (workdir / STATE_FILE).write_text(json.dumps({"tag": gw.tag}), encoding="utf-8")
        print(f"gateway namespace {gw.gw_ns}: SSH root@{gw.host}:{gw.port}")
        print(f"subscribers in {gw.sub_ns}: {', '.join(str(a) for a in gw.subscribers[:4])}")
        print(f"upstream in {gw.up_ns}: iperf3 and HTTP on {gw.upstream_address}, portal {gw.payment_page_url}")
        print()
        print("[[routers]]")
        print('name = "lab-gw"')
        print('kind = "linux"')
        print(f'host = "{gw.host}"')
        print(f"port = {gw.port}")
        print('username = "root"')
        print(f'ssh_key_file = "{gw.key_file}"')
        print(f'known_hosts_file = "{gw.known_hosts_file}"')
        print(f'interface = "{gw.interface}"')
        print(f'upload_ifb = "{gw.upload_ifb}"')
        print('leaf_qdisc = "pfifo"')
        print(f'subnets = ["{gw.subnet}"]')
        print("\nrunning; Ctrl-C stops and removes it", flush=True)
        while not received:
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        gw.down()
        (workdir / STATE_FILE).unlink(missing_ok=True)
    return 0


def _down(workdir: Path) -> int:
    state = workdir / STATE_FILE
    if not state.exists():
        print(f"edgebill lab linux-gw: no lab recorded in {workdir}")
        return 0
    try:
        document = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        document = None
    tag = str(document.get("tag", "")) if isinstance(document, dict) else ""
    if not tag.isalnum():
        print(f"edgebill lab linux-gw: {state} is damaged")
        return 1
    pid_file = workdir / "sshd.pid"
    if pid_file.exists():
        text = pid_file.read_text(encoding="ascii").strip()
        if text.isdigit():
            subprocess.run(["kill", text], check=False, capture_output=True)
    for ns in (f"ebgw-{tag}", f"ebsub-{tag}", f"ebup-{tag}"):
        pids = subprocess.run(["ip", "netns", "pids", ns], check=False, capture_output=True, text=True).stdout.split()
        for pid in pids:
            subprocess.run(["kill", pid], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
    state.unlink()
    print(f"removed lab {tag}")
    return 0
