"""The long-running commands: ``edgebill run`` (the daemon), ``web`` (dashboard and REST API), ``demo``, ``lab``.

Each handler returns the process exit code when the process is stopped.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from waitress import serve

from daemon.commands.common import PROG, SubParsers
from daemon.demo import run_demo
from daemon.scheduler import Daemon
from lab import cli as lab_cli
from web import create_app

log = logging.getLogger(__name__)


def register(sub: SubParsers) -> None:
    p = sub.add_parser("run", help="run the daemon: scheduler, reconciliation, polling, daily billing")
    p.set_defaults(handler=cmd_run, needs_settings=True, long_running=True)

    p = sub.add_parser("web", help="serve the dashboard and REST API")
    p.add_argument("--listen", metavar="HOST:PORT", help="override [web] listen")
    p.add_argument("--threads", type=int, default=8, help="worker threads (default 8)")
    p.set_defaults(handler=cmd_web, needs_settings=True, long_running=True)

    p = sub.add_parser(
        "demo", help="run the daemon, dashboard and emulated routers on an SQLite file (creates it on first run)"
    )
    p.add_argument("--data-dir", type=Path, default=Path("demo-data"), help="where the demo keeps its files")
    p.set_defaults(handler=cmd_demo, needs_settings=False)

    p = sub.add_parser("lab", help="lab routers for tests, benchmarks and demos")
    lab_cli.configure_parser(p)
    p.set_defaults(handler=lab_cli.run, needs_settings=False)


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536:
        raise SystemExit(f"{PROG}: error: --listen must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def cmd_run(args: argparse.Namespace) -> int:
    Daemon(args.settings).run_forever()
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    settings = args.settings
    host, port = _listen(args.listen) if args.listen else (settings.web.host, settings.web.port)
    app = create_app(settings)
    log.info("dashboard on http://%s:%d/", host, port)
    # The application refuses a body over max_request_bytes with its own 413 (JSON on the API); waitress refuses
    # anything much larger before buffering it.
    body_limit = 2 * settings.web.max_request_bytes
    serve(app, host=host, port=port, threads=args.threads, ident="edgebill", max_request_body_size=body_limit)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(args.data_dir)
