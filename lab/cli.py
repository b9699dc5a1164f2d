"""``edgebill lab ...``: run lab routers by hand (the emulated RouterOS router, the namespaced Linux gateway)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from lab.linux_gw import cli as linux_gw_cli
from lab.routeros import cli as routeros_cli

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]

#: sub-command -> (adds its arguments, runs it and returns the exit code, one-line help)
LAB_COMMANDS: dict[str, tuple[Configure, Run, str]] = {
    "routeros": (
        routeros_cli.configure_parser,
        routeros_cli.run,
        "run an emulated RouterOS router speaking the binary API",
    ),
    "linux-gw": (
        linux_gw_cli.configure_parser,
        linux_gw_cli.run,
        "build or tear down a Linux tc gateway in network namespaces",
    ),
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lab_command", required=True, metavar="{" + ",".join(LAB_COMMANDS) + "}")
    for name, (configure, runner, help_text) in LAB_COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        p.set_defaults(lab_run=runner)


def run(args: argparse.Namespace) -> int:
    runner: Run = args.lab_run
    return runner(args)
