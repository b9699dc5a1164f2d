"""Billing, payments and dunning: the daemon's side of money.

* :mod:`daemon.billing.run`: the idempotent billing run (prepaid and postpaid plans, proration, setup fees,
  overage) that issues invoices with gapless numbers and their ledger rows.
* :mod:`daemon.billing.documents`: invoices, credit notes, voids, and the allocation of money to the oldest
  open invoices.
* :mod:`daemon.billing.changes`: plan changes priced by the day; :mod:`daemon.billing.coverage` what each service
  has been billed for so far.
* :mod:`daemon.billing.payments`: manual payments, bank statement imports and refunds.
* :mod:`daemon.billing.account`: :func:`on_payment`, which every payment path calls, and the dunning run.
* :mod:`daemon.billing.dunning`: the ladder applied to services; :mod:`daemon.billing.mail` the reminders.
* :mod:`daemon.billing.pdf`: invoices as HTML and PDF; :mod:`daemon.billing.webhook`: payment processor events.

The pure rules live in :mod:`policies` (money, periods, proration, tax, quota, dunning). Billing is orchestration:
it reads and writes the database only through :mod:`daemon.services` (invoices and credit notes are stored by
:mod:`daemon.services.documents`, state changes go through :mod:`daemon.services.state`, traffic sums through
:mod:`daemon.services.usage`), and keeps the transactions, locks and order of those calls.
"""

from __future__ import annotations

from daemon.billing.account import DunningRunResult, on_payment, run_dunning
from daemon.billing.changes import PlanChange, change_plan
from daemon.billing.documents import Standing, issue_credit_note, settle, void_invoice
from daemon.billing.payments import ImportReport, Received, import_statement, receive_payment, refund
from daemon.billing.run import BillingRunResult, bill_customer, run_billing

__all__ = [
    "BillingRunResult",
    "DunningRunResult",
    "ImportReport",
    "PlanChange",
    "Received",
    "Standing",
    "bill_customer",
    "change_plan",
    "import_statement",
    "issue_credit_note",
    "on_payment",
    "receive_payment",
    "refund",
    "run_billing",
    "run_dunning",
    "settle",
    "void_invoice",
]
