"""The daemon process: its scheduler and what wakes it.

* :mod:`daemon.scheduler.runner`: the :class:`Daemon` (the APScheduler, its jobs' schedule, start, stop, signals).
* :mod:`daemon.scheduler.jobs`: the functions the scheduler runs (reconcile, queued router work, polling, the
  daily billing run, dunning).
* :mod:`daemon.scheduler.wakeup`: how the daemon hears at once of router work committed by other processes
  (PostgreSQL ``LISTEN``/``NOTIFY``, SQLite ``data_version``).
"""

from __future__ import annotations

from daemon.scheduler.runner import Daemon

__all__ = ["Daemon"]
