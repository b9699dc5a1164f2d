"""Reconciliation: make each router carry exactly what the database says, and nothing we do not own.

* :mod:`daemon.reconcile.load`: a router's queued operations and the desired state of its services, read
  through the service layer.
* :mod:`daemon.reconcile.engine`: one run for one router (read, plan, apply, the queued operations, record),
  scoped runs, and every router at once.
* :mod:`daemon.reconcile.report`: what a run did, as one line or as JSON.

The service state changes that queue work for a run are in :mod:`daemon.services.state`.
"""

from __future__ import annotations

from daemon.reconcile.engine import DISCONNECT, RECONCILE, reconcile_all, reconcile_router, retry_delay
from daemon.reconcile.load import ReconcileSettings, desired_state
from daemon.reconcile.report import ReconcileReport

__all__ = [
    "DISCONNECT",
    "RECONCILE",
    "ReconcileReport",
    "ReconcileSettings",
    "desired_state",
    "reconcile_all",
    "reconcile_router",
    "retry_delay",
]
