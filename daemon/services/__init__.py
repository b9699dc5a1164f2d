"""Domain services: plain functions over a SQLAlchemy ``Session``, shared by the CLI, the web app and the daemon.

They are the only code that queries or writes the database. :mod:`daemon.billing` sits above them: it imports
them, never the reverse, and stores invoices and credit notes through :mod:`~daemon.services.documents`.

Each function that changes something takes the ``actor`` (who asks: a user name, ``cli:root``, ``config``),
writes the audit log, and works inside the caller's transaction: it flushes, never commits. Failures raise
:class:`ServiceError` subclasses with one-line messages safe to show. Records returned are frozen dataclasses
with a ``to_json()`` method; they never carry secrets (PPPoE passwords, password hashes, tokens).

Modules: :mod:`~daemon.services.customers`, :mod:`~daemon.services.plans`, :mod:`~daemon.services.routers`,
:mod:`~daemon.services.services` (subscriber services), :mod:`~daemon.services.payments`,
:mod:`~daemon.services.invoices`, :mod:`~daemon.services.ledger`, :mod:`~daemon.services.users`,
:mod:`~daemon.services.ops` (router operation queue), :mod:`~daemon.services.state` (throttle, suspend, resume,
terminate), :mod:`~daemon.services.usage` (traffic samples), :mod:`~daemon.services.diagnosis` (why a customer is
slow or cut off), :mod:`~daemon.services.audit`.
"""

from daemon.services.errors import Conflict, Invalid, NotFound, ServiceError

__all__ = ["Conflict", "Invalid", "NotFound", "ServiceError"]
