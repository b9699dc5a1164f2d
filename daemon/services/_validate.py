"""Input checks shared by the service functions; each raises :class:`~daemon.services.errors.Invalid`."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Iterable

from daemon.services.errors import Invalid
from policies import naming
from policies.naming import NamingError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TAG = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+")
_PHONE = re.compile(r"\+?[0-9][0-9 ()./-]{2,38}")
_USERNAME = re.compile(r"[a-z_][a-z0-9_.-]{0,63}")

MIN_USER_PASSWORD = 8
MAX_PASSWORD = 1024


def shown(value: str, limit: int = 40) -> str:
    """``value`` quoted, shortened for an error message."""
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def has_control(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)


def text(value: str | None, field: str, *, max_len: int, required: bool = False, multiline: bool = False) -> str | None:
    """A free-text field: stripped, ``None`` when empty (refused if ``required``), no control characters."""
    if value is None or not value.strip():
        if required:
            raise Invalid(f"{field} must not be empty")
        return None
    cleaned = value.strip()
    if len(cleaned) > max_len:
        raise Invalid(f"{field} is too long ({len(cleaned)} characters, at most {max_len})")
    check = cleaned.replace("\n", "").replace("\r", "").replace("\t", " ") if multiline else cleaned
    if has_control(check):
        raise Invalid(f"{field} {shown(cleaned)} contains control characters")
    return cleaned


def required_text(value: str, field: str, *, max_len: int) -> str:
    cleaned = text(value, field, max_len=max_len, required=True)
    assert cleaned is not None
    return cleaned


def name(value: str, what: str) -> str:
    """A plan or router name: a letter or digit, then letters, digits, ``.``, ``_`` or ``-`` (64 at most)."""
    if not _NAME.fullmatch(value):
        raise Invalid(
            f"invalid {what} name {shown(value)}: use up to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def tag(value: str) -> str:
    """A customer tag such as ``never-suspend`` (lower case, digits, ``-`` and ``_``)."""
    cleaned = value.strip().lower()
    if not _TAG.fullmatch(cleaned):
        raise Invalid(f"invalid tag {shown(value)}: use up to 40 lower-case letters, digits, '-' or '_'")
    return cleaned


def email(value: str | None) -> str | None:
    cleaned = text(value, "email", max_len=254)
    if cleaned is not None and not _EMAIL.fullmatch(cleaned):
        raise Invalid(f"invalid email address {shown(cleaned)}")
    return cleaned


def phone(value: str | None) -> str | None:
    cleaned = text(value, "phone", max_len=40)
    if cleaned is not None and not _PHONE.fullmatch(cleaned):
        raise Invalid(f"invalid phone number {shown(cleaned)}: use digits, spaces, '+', '-', '(', ')'")
    return cleaned


def pppoe_login(value: str) -> str:
    """A PPPoE login by the rule of :func:`policies.naming.pppoe_login`."""
    try:
        return naming.pppoe_login(value)
    except NamingError as exc:
        raise Invalid(str(exc)) from None


def plan_name(value: str) -> str:
    """A plan name a router can carry as a profile, by :func:`policies.naming.plan_name`."""
    try:
        return naming.plan_name(value)
    except NamingError as exc:
        raise Invalid(str(exc)) from None


def pppoe_password(value: str) -> str:
    """A PPPoE secret by the rule of :func:`policies.naming.pppoe_password`."""
    try:
        return naming.pppoe_password(value)
    except NamingError as exc:
        raise Invalid(str(exc)) from None


def carried(
    router: str,
    carrier: naming.Carrier,
    *,
    login: str | None,
    password: str | None,
    address: str | None,
    others: Iterable[str | None] = (),
) -> None:
    """Refuse a service that ``router`` (a router like ``carrier``, carrying services at the addresses
    ``others``) cannot carry, by :func:`policies.naming.subscriber_problem`."""
    problem = naming.subscriber_problem(
        carrier,
        login=login,
        password=password,
        address=ipaddress.IPv4Address(address) if address else None,
        others=(ipaddress.IPv4Address(a) for a in others if a),
    )
    if problem is not None:
        raise Invalid(f"router {router!r} cannot carry this service: {problem}")


def user_password(value: str) -> str:
    if len(value) < MIN_USER_PASSWORD:
        raise Invalid(f"password is too short (at least {MIN_USER_PASSWORD} characters)")
    if len(value) > MAX_PASSWORD:
        raise Invalid(f"password is too long (at most {MAX_PASSWORD} characters)")
    if has_control(value):
        raise Invalid("password must not contain control characters")
    return value


def username(value: str) -> str:
    if not _USERNAME.fullmatch(value):
        raise Invalid(
            f"invalid user name {shown(value)}: use up to 64 lower-case letters, digits, '_', '.' or '-', "
            "starting with a letter or '_'"
        )
    return value


def ipv4(value: str) -> str:
    """A unicast host address a subscriber can be given, in dotted-quad form."""
    try:
        address = ipaddress.IPv4Address(value.strip())
    except ValueError:
        raise Invalid(f"invalid IPv4 address {shown(value)}") from None
    if (
        address.is_unspecified
        or address.is_loopback
        or address.is_multicast
        or address.is_link_local
        or address.is_reserved
        or address == ipaddress.IPv4Address("255.255.255.255")
    ):
        raise Invalid(f"IPv4 address {address} cannot be given to a subscriber")
    return str(address)


def actor(value: str) -> str:
    if not value or not value.strip() or len(value) > 100 or has_control(value):
        raise Invalid(f"invalid actor {shown(value)}: who makes a change must be named (100 characters at most)")
    return value.strip()
