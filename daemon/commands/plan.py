"""``edgebill plan add|list|show``: service plans."""

from __future__ import annotations

import argparse

from daemon.commands.common import SubParsers, actor, command, group, print_listing, report, show, transaction
from daemon.services import plans


def register(sub: SubParsers) -> None:
    commands = group(sub, "plan", "service plans")
    p = command(commands, "add", cmd_plan_add, "add a plan", json_flag=True)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--download", required=True, metavar="RATE", help="download rate, e.g. 10M")
    p.add_argument("--upload", required=True, metavar="RATE", help="upload rate, e.g. 5M")
    p.add_argument("--price", required=True, metavar="AMOUNT", help="price per cycle, e.g. 30.00")
    p.add_argument("--currency", metavar="CODE", help="must be the billing currency (the default)")
    p.add_argument("--cycle", choices=("monthly", "weekly"), default="monthly")
    p.add_argument("--prepaid", action="store_true", help="billed at the start of each period")
    p.add_argument("--setup-fee", metavar="AMOUNT", help="one-time fee on the first invoice")
    p.add_argument("--quota", metavar="SIZE", help="data per period, e.g. 100GB (default unlimited)")
    p.add_argument("--over-quota", choices=("throttle", "charge"), default="throttle")
    p.add_argument("--fair-use-download", metavar="RATE", help="download rate once the quota is used up")
    p.add_argument("--fair-use-upload", metavar="RATE", help="upload rate once the quota is used up")
    p.add_argument("--overage-price", metavar="AMOUNT", help="price per started GB beyond the quota")
    p.add_argument("--tax-rate", metavar="FRACTION", help="e.g. 0.16 (default: [billing] tax_rate)")
    taxed = p.add_mutually_exclusive_group()
    taxed.add_argument("--tax-inclusive", dest="tax_inclusive", action="store_true", default=None)
    taxed.add_argument("--tax-exclusive", dest="tax_inclusive", action="store_false")
    p.add_argument("--burst-download", metavar="RATE", help="burst download rate (above --download)")
    p.add_argument("--burst-upload", metavar="RATE", help="burst upload rate (above --upload)")
    p.add_argument("--burst-threshold-download", metavar="RATE", help="default: the download rate")
    p.add_argument("--burst-threshold-upload", metavar="RATE", help="default: the upload rate")
    p.add_argument("--burst-time", metavar="DURATION", help="averaging window, e.g. 8s (default 8s)")
    command(commands, "list", cmd_plan_list, "list plans", json_flag=True)
    p = command(commands, "show", cmd_plan_show, "show one plan", json_flag=True)
    p.add_argument("name", metavar="NAME")


def cmd_plan_add(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        plan = plans.add_plan(
            session,
            actor(),
            args.settings,
            name=args.name,
            download=args.download,
            upload=args.upload,
            price=args.price,
            currency_code=args.currency,
            cycle=args.cycle,
            prepaid=args.prepaid,
            setup_fee=args.setup_fee,
            quota=args.quota,
            over_quota=args.over_quota,
            fair_use_download=args.fair_use_download,
            fair_use_upload=args.fair_use_upload,
            overage_price=args.overage_price,
            tax_rate=args.tax_rate,
            tax_inclusive=args.tax_inclusive,
            burst_download=args.burst_download,
            burst_upload=args.burst_upload,
            burst_threshold_download=args.burst_threshold_download,
            burst_threshold_upload=args.burst_threshold_upload,
            burst_time=args.burst_time,
        )
    report(args, plan.to_json(), f"plan {plan.name!r} added (id {plan.id}): {plan.rate}, {plan.price} {plan.cycle}")
    return 0


def cmd_plan_list(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        found = plans.list_plans(session)
    return print_listing(
        args,
        found,
        ("NAME", "DOWN", "UP", "PRICE", "CYCLE", "QUOTA", "ACTIVE"),
        lambda p: (
            p.name,
            p.to_json()["download"],
            p.to_json()["upload"],
            str(p.price),
            p.cycle + (" prepaid" if p.prepaid else ""),
            p.to_json()["quota"] or "unlimited",
            "yes" if p.active else "no",
        ),
    )


def cmd_plan_show(args: argparse.Namespace) -> int:
    with transaction(args) as session:
        plan = plans.get_plan(session, args.name)
    show(args, plan.to_json())
    return 0
