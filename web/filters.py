"""Jinja filters the dashboard templates use: ``money``, ``rate`` and ``when``."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask

from policies.money import Money
from policies.rates import format_rate
from web.context import settings


def money_filter(value: Money | None) -> str:
    return "—" if value is None else f"{value.to_json()} {value.currency.code}"


def rate_filter(bps: int | None) -> str:
    return "—" if not bps else format_rate(bps)


def when_filter(moment: datetime | date | None) -> str:
    """A timestamp in the billing time zone, or a plain date."""
    if moment is None:
        return "never"
    if isinstance(moment, datetime):
        return moment.astimezone(settings().billing.timezone).strftime("%Y-%m-%d %H:%M %Z")
    return moment.isoformat()


def register(app: Flask) -> None:
    """Make the filters available to ``app``'s templates."""
    app.jinja_env.filters["money"] = money_filter
    app.jinja_env.filters["rate"] = rate_filter
    app.jinja_env.filters["when"] = when_filter
