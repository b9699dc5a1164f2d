"""``python -m lab.routeros --listen 127.0.0.1:8728 --password-file F``: the standalone emulator."""

from __future__ import annotations

import argparse
import logging
import sys

from lab.routeros.cli import configure_parser, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.routeros", description="Emulated RouterOS router")
    configure_parser(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
