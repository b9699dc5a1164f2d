"""``edgebill lab ...``: run lab routers by hand (the emulated RouterOS router, the namespaced Linux gateway)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

#: sub-command -> (module with ``configure_parser`` and ``run``, one-line help)
LAB_COMMANDS = {
    "routeros": ("lab.routeros.cli", "run an emulated RouterOS router speaking the binary API"),
    "linux-gw": ("lab.linux_gw.cli", "build or tear down a Linux tc gateway in network namespaces"),
}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="lab_command", required=True, metavar="{" + ",".join(LAB_COMMANDS) + "}")
    for name, (module_name, help_text) in LAB_COMMANDS.items():
        module: Any = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.configure_parser(p)
        runner: Callable[[argparse.Namespace], int] = module.run
        p.set_defaults(lab_run=runner)


def run(args: argparse.Namespace) -> int:
    runner: Callable[[argparse.Namespace], int] = args.lab_run
    return runner(args)
