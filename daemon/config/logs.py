"""Where the processes' log records go: standard error, as ``[logging]`` says (plain lines or JSON objects).

Plain lines carry a timestamp, except under systemd (``JOURNAL_STREAM`` set), where journald stamps each line
itself. JSON lines (for Loki, Vector, Filebeat...) carry ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``
and ``message``, and the exception's traceback as ``exc_info`` when there is one. The level is
``[logging] level``, lowered by ``-v`` (info) and ``-vv`` (debug) on the command line. The long-running
commands (``run``, ``web``) follow these settings; one-shot commands write warnings only, unless ``-v``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Final

from pythonjsonlogger.json import JsonFormatter

from daemon.config.schema import LoggingSettings

__all__ = ["PLAIN_FORMAT", "configure_logging", "verbosity_level"]

#: A plain line, as journald takes it (it adds the time, the host and the unit).
PLAIN_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"
_STAMPED: Final = "%(asctime)s " + PLAIN_FORMAT
_JSON_FIELDS: Final = ("levelname", "name", "message")
_RENAMED: Final = {"levelname": "level", "name": "logger"}


def verbosity_level(verbosity: int, default: int = logging.WARNING) -> int:
    """The level ``-v`` (``verbosity`` 1) or ``-vv`` (2) ask for, or ``default`` without them."""
    if verbosity <= 0:
        return default
    return min(default, logging.INFO if verbosity == 1 else logging.DEBUG)


def configure_logging(settings: LoggingSettings, verbosity: int = 0) -> None:
    """Send the root logger's records to standard error in the format and at the level of ``settings``."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.format == "json":
        handler.setFormatter(
            JsonFormatter(list(_JSON_FIELDS), rename_fields=dict(_RENAMED), timestamp=True, json_ensure_ascii=False)
        )
    else:
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT if os.environ.get("JOURNAL_STREAM") else _STAMPED))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(verbosity_level(verbosity, logging.getLevelNamesMapping()[settings.level.upper()]))
