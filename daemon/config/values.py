"""Checks of single configuration values that are not TOML types of their own: hosts, URLs, time zones."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from daemon.config.errors import show, suggest

__all__ = [
    "is_loopback",
    "join_host_port",
    "mask_url",
    "suggest_zone",
    "url_problem",
    "valid_host",
    "zone",
]

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def valid_host(text: str) -> bool:
    """True for an IP address or a DNS host name (a trailing dot allowed, an all-digit last label not)."""
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if labels[-1].isdigit():
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in labels)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def join_host_port(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets: ``[::1]:8080``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def url_problem(text: str, *, allow_query: bool) -> str:
    """Why ``text`` is not an acceptable ``http(s)://`` address of a page, or an empty string."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return 'must be an "http://" or "https://" URL'
    host = parts.hostname or ""
    if not host or not valid_host(host):
        return "must name a valid host"
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    if port == 0:
        return "port must be 1..65535"
    if parts.fragment or text.endswith("#"):
        return "must not have a #fragment"
    if parts.query and not allow_query:
        return "must not have a ?query"
    if " " in text:
        return "must not contain spaces"
    return ""


def mask_url(text: str) -> str:
    """Hide a password in a URL that SQLAlchemy could not parse."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", text)


def zone(name: str) -> ZoneInfo | None:
    """The IANA time zone called ``name``, or ``None`` (never a path outside the zone database)."""
    if not name or name != name.strip() or name.startswith("/") or ".." in name.split("/"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def suggest_zone(name: str) -> str:
    """``; did you mean "America/New_York"?`` for a zone name written in the wrong case or misspelt."""
    zones = available_timezones()
    folded = {zone.lower(): zone for zone in zones}
    if name.lower() in folded:
        return f"; did you mean {show(folded[name.lower()])}?"
    return suggest(name, zones)
