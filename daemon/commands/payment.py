"""``edgebill payment add|list|import|refund``: money received and returned.

A payment is allocated to the customer's oldest open invoices and releases their services at once; ``import``
records a whole bank statement or, when a row is broken, nothing. Rows it cannot tell from an earlier payment
(no bank transaction id; see :mod:`daemon.billing.statement`) are printed as doubtful and the command exits with
:data:`EXIT_DOUBTFUL`; ``--accept-doubtful LINE...`` records them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon.billing.payments import receive_payment, refund
from daemon.billing.statement import DEFAULT_ACCOUNT, StatementError, import_statement
from daemon.commands.common import (
    SubParsers,
    actor,
    command,
    group,
    positive_int,
    print_json,
    print_listing,
    report,
    transaction,
)
from daemon.services import payments

#: The exit status of ``payment import`` when doubtful rows wait for a person's decision.
EXIT_DOUBTFUL = 3


def register(sub: SubParsers) -> None:
    commands = group(sub, "payment", "payments")
    p = command(commands, "add", cmd_payment_add, "record a payment", json_flag=True)
    p.add_argument("--customer", required=True, type=positive_int, metavar="ID")
    p.add_argument("--amount", required=True, metavar="AMOUNT", help="e.g. 30.00, in the billing currency")
    p.add_argument("--method", choices=("cash", "bank", "card", "online"), default="cash")
    p.add_argument("--reference", metavar="REF", help="receipt or transfer reference")
    _key_option(p)
    p = command(commands, "list", cmd_payment_list, "list payments, newest first", json_flag=True)
    p.add_argument("--customer", type=positive_int, metavar="ID")
    p = command(
        commands,
        "import",
        cmd_payment_import,
        "import a bank statement CSV (date, amount, reference, [name])",
        json_flag=True,
    )
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument(
        "--account",
        default=DEFAULT_ACCOUNT,
        metavar="NAME",
        help=f"the bank account of the statement (default {DEFAULT_ACCOUNT}); transaction ids are per account",
    )
    p.add_argument(
        "--accept-doubtful",
        nargs="+",
        type=positive_int,
        default=[],
        metavar="LINE",
        help="record these doubtful rows (line numbers as printed) as new payments",
    )
    p = command(commands, "refund", cmd_payment_refund, "refund all or part of a payment", json_flag=True)
    p.add_argument("id", type=positive_int, metavar="ID")
    p.add_argument("--amount", metavar="AMOUNT", help="default: all that is left to refund")
    p.add_argument("--reference", metavar="REF", help="refund reference")
    _key_option(p)


def _key_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="a key of your choice for this request: repeating the command with the same key records nothing "
        "more and prints what the first one recorded",
    )


def cmd_payment_add(args: argparse.Namespace) -> int:
    """Record a payment, allocate it to the oldest open invoices and release the customer's services at once."""
    with transaction(args) as session:
        received = receive_payment(
            session,
            actor(),
            args.settings,
            customer_id=args.customer,
            amount=args.amount,
            method=args.method,
            reference=args.reference,
            idempotency_key=args.idempotency_key,
        )
    payment = received.payment
    done = "recorded" if received.created else "already recorded"
    report(
        args, payment.to_json(), f"payment {payment.id} of {payment.amount} {done} for customer {payment.customer_id}"
    )
    return 0


def cmd_payment_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = payments.list_payments(session, customer_id=args.customer)
    return print_listing(
        args,
        found,
        ("ID", "CUSTOMER", "AMOUNT", "METHOD", "REFERENCE", "RECEIVED"),
        lambda p: (
            p.id,
            p.customer_id,
            str(p.amount),
            p.method,
            p.reference,
            p.received_at.isoformat(timespec="seconds"),
        ),
    )


def cmd_payment_import(args: argparse.Namespace) -> int:
    """``edgebill payment import FILE.csv [--json]``: all rows, or none when a row is broken."""
    try:
        with transaction(args) as session:
            imported = import_statement(
                session, actor(), args.settings, Path(args.file), account=args.account, accept=args.accept_doubtful
            )
    except StatementError as exc:
        if args.json:
            print_json({"error": str(exc), "problems": list(exc.problems)})
        else:
            for problem in exc.problems:
                print(f"{args.file}: {problem}", file=sys.stderr)
        raise
    status = EXIT_DOUBTFUL if imported.count("doubtful") else 0
    if args.json:
        print_json(imported.to_json())
        return status
    for row in imported.rows:
        who = f"customer {row.customer_id}" if row.customer_id is not None else "-"
        print(f"line {row.line}: {row.outcome:<16} {row.amount:>12}  {who:<14} {row.reference}  {row.detail}")
    doubtful = [str(row.line) for row in imported.rows if row.outcome == "doubtful"]
    print(
        f"{imported.count('recorded')} recorded, {imported.count('already-imported')} already imported, "
        + (f"{len(doubtful)} doubtful, " if doubtful else "")
        + f"{imported.count('unmatched')} unmatched"
    )
    if doubtful:
        print(
            f"{len(doubtful)} doubtful row(s) look like payments already recorded and were not recorded; check "
            f"them, then record the real ones with: edgebill payment import {args.file} "
            f"--accept-doubtful {' '.join(doubtful)}",
            file=sys.stderr,
        )
    return status


def cmd_payment_refund(args: argparse.Namespace) -> int:
    """``edgebill payment refund ID [--amount X]``."""
    with transaction(args) as session:
        done = refund(
            session,
            actor(),
            args.settings,
            args.id,
            amount=args.amount,
            reference=args.reference,
            idempotency_key=args.idempotency_key,
        )
    # the refund row, shaped as `payment add` prints a payment
    report(
        args,
        done.payment.to_json(),
        f"refund {done.payment.id} of {-done.payment.amount} on payment {args.id} "
        + ("recorded" if done.created else "already recorded"),
    )
    return 0
