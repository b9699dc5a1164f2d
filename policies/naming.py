"""What a router can carry: the one rule for each name and value a service puts on a router. Pure; no I/O.

Every entry point (the CLI, the dashboard, the API, through :mod:`daemon.services`) and every driver checks with
these functions, so a value refused by a router is refused when it is typed in, with the same message, instead
of being found at reconcile time. The rules, exactly:

* :func:`router_name`: any name written to a RouterOS router (PPP secret, profile, queue, address list): 1 to
  :data:`MAX_NAME_LENGTH` characters, no leading or trailing space, no control character, no leading ``*``
  (RouterOS reads it as an item id), no ``,`` (RouterOS splits lists on it), not shaped like a dynamic name
  (``<pppoe-x>``), and only characters the router's text ``encoding`` can store.
* :func:`pppoe_login`: 1-64 printable ASCII characters (``!`` to ``~``) other than the quotes ``"``, ``'`` and
  `````, ``=`` and the backslash (RouterOS API words are ``=name=value``, its CLI escapes with ``\\``, PPP secret
  files quote), and a valid :func:`router_name`: a login can then move to a router of any kind unchanged.
  ``svc-<digits>`` is reserved (the key of a static-IP service). Logins are case-sensitive and kept as given.
* :func:`plan_name`: a plan's profile name must not start with :data:`RESERVED_PREFIX`, which edgebill keeps
  for the profiles it makes itself (throttle, blocked), and must be a valid :func:`router_name`.
* :func:`address_list`: the enforcement address list (a RouterOS address list and an nftables set of the same
  name): 1-63 letters, digits, ``_``, ``.`` or ``-``, starting with a letter or digit.
* :func:`pppoe_password`: 1-64 printable ASCII characters without spaces (what routers accept everywhere).
* :func:`subscriber_problem`: what a router of one kind (:class:`Carrier`) cannot carry of a service: on a
  RouterOS router a login its encoding cannot store; on a Linux ``tc`` gateway (which shapes by address) a
  service without an IPv4 address, one outside the gateway's subnets, and one whose /24 would share a shaping
  group with another /24 of the gateway (:func:`group_problem`: a gateway's /24s must differ within their /10).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Final

__all__ = [
    "MAX_LOGIN_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "RESERVED_PREFIX",
    "SHAPING_GROUP_BITS",
    "Carrier",
    "NamingError",
    "address_list",
    "address_problem",
    "group_problem",
    "plan_name",
    "pppoe_login",
    "pppoe_password",
    "router_name",
    "subscriber_problem",
]

#: The longest name written to a router (the database holds logins and plan names of up to 64 characters).
MAX_NAME_LENGTH: Final = 64
MAX_LOGIN_LENGTH: Final = 64
MAX_PASSWORD_LENGTH: Final = 64

_LOGIN_FORBIDDEN: Final = frozenset("\"'`=\\")
#: The keys of static-IP services (``svc-<id>``): a login spelled so would collide with one.
_STATIC_KEY: Final = re.compile(r"svc-[0-9]+")

_LIST_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")

#: Profile names edgebill makes for itself start with this; plans may not use it.
RESERVED_PREFIX: Final = "edgebill-"

#: A Linux gateway shapes each /24 in its own group, numbered by these low bits of the /24 (14: within a /10).
SHAPING_GROUP_BITS: Final = 14

#: Router kinds whose subscribers are shaped by address (no PPPoE server of their own).
_BY_ADDRESS: Final = frozenset({"linux"})


class NamingError(ValueError):
    """A name or value a router cannot carry; the message is one line for the person who typed it."""


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def router_name(name: str, *, what: str = "name", encoding: str = "utf-8") -> str:
    """Return ``name`` if a RouterOS router can hold it as a PPP secret, profile, queue or list name, else raise
    :class:`NamingError` (see the module rules)."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__}")
    shown = _shown(name)
    if not name:
        raise NamingError(f"{what} must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise NamingError(f"{what} {shown} is too long for a router (at most {MAX_NAME_LENGTH} characters)")
    if name != name.strip():
        raise NamingError(f"{what} {shown} must not start or end with a space")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise NamingError(f"{what} {shown} must not contain control characters")
    if name.startswith("*"):
        raise NamingError(f"{what} {shown} must not start with '*' (RouterOS reads it as an item id)")
    if "," in name:
        raise NamingError(f"{what} {shown} must not contain ',' (RouterOS splits lists on it)")
    if name.startswith("<") and name.endswith(">"):
        raise NamingError(f"{what} {shown} looks like a dynamic RouterOS name ('<...>')")
    try:
        codec = codecs.lookup(encoding)
    except LookupError:
        raise NamingError(f"unknown router encoding {encoding!r}") from None
    try:
        encoded = name.encode(codec.name)
    except UnicodeEncodeError as exc:
        bad = name[exc.start : exc.end]
        raise NamingError(
            f"{what} {shown} has characters the router's {codec.name} encoding cannot store: {bad!r}"
        ) from None
    if encoded.decode(codec.name, errors="replace") != name:
        raise NamingError(f"{what} {shown} does not survive the router's {codec.name} encoding unchanged")
    return name


def pppoe_login(login: str) -> str:
    """Return ``login`` if every router kind can carry it as a PPPoE login, else raise :class:`NamingError`."""
    if not isinstance(login, str):
        raise TypeError(f"PPPoE login must be a string, got {type(login).__name__}")
    if not 1 <= len(login) <= MAX_LOGIN_LENGTH:
        raise NamingError(f"invalid PPPoE login {_shown(login)}: must be 1-{MAX_LOGIN_LENGTH} characters")
    for char in login:
        if not "!" <= char <= "~":
            raise NamingError(
                f"invalid PPPoE login {_shown(login)}: only printable ASCII without spaces is allowed, found {char!r}"
            )
        if char in _LOGIN_FORBIDDEN:
            raise NamingError(f"invalid PPPoE login {_shown(login)}: must not contain {char!r}")
    if _STATIC_KEY.fullmatch(login):
        raise NamingError(f"invalid PPPoE login {_shown(login)}: svc-<number> names static-IP services")
    return router_name(login, what="PPPoE login")


def plan_name(name: str) -> str:
    """Return ``name`` if a router can carry it as the profile of a plan, else raise :class:`NamingError`."""
    if name.startswith(RESERVED_PREFIX):
        raise NamingError(
            f"plan name {_shown(name)} starts with {RESERVED_PREFIX!r}, which edgebill keeps for its own profiles"
        )
    return router_name(name, what="plan name")


def address_list(name: str) -> str:
    """Return ``name`` if every router kind can carry it as the enforcement address list, else raise."""
    if not _LIST_NAME.fullmatch(name):
        raise NamingError(
            f"address list must be 1-63 letters, digits, '_', '.' or '-', starting with a letter or digit, "
            f"got {_shown(name)}"
        )
    return name


def pppoe_password(password: str) -> str:
    """Return ``password`` if routers accept it as a PPPoE secret (printable ASCII, no spaces, 1-64), else raise."""
    if not isinstance(password, str):
        raise TypeError(f"PPPoE password must be a string, got {type(password).__name__}")
    if not password:
        raise NamingError("PPPoE password must not be empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise NamingError(f"PPPoE password is too long (at most {MAX_PASSWORD_LENGTH} characters)")
    if not all("!" <= ch <= "~" for ch in password):
        raise NamingError("PPPoE password must be printable ASCII without spaces")
    return password


@dataclass(frozen=True)
class Carrier:
    """What entry checks need to know of the router a service is on: its kind (``mikrotik`` or ``linux``), the
    text encoding of a RouterOS router, and the subnets a Linux gateway shapes (empty: any address)."""

    kind: str
    encoding: str = "utf-8"
    subnets: tuple[IPv4Network, ...] = ()

    @property
    def by_address(self) -> bool:
        """Whether the router shapes by address (a Linux gateway): its services' addresses must fit together."""
        return self.kind in _BY_ADDRESS


def address_problem(address: IPv4Address, subnets: Sequence[IPv4Network]) -> str | None:
    """Why a gateway shaping ``subnets`` cannot carry ``address`` (outside them), or None when it can."""
    if not subnets or any(address in net for net in subnets):
        return None
    shown = ", ".join(str(n) for n in subnets)
    return f"address {address} is outside this gateway's subnets {shown}"


def group_problem(address: IPv4Address, others: Iterable[IPv4Address]) -> str | None:
    """Why a Linux gateway shaping ``others`` cannot also shape ``address``: another /24 with the same shaping
    group number (its low :data:`SHAPING_GROUP_BITS` bits), or None when it can."""
    mask = (1 << SHAPING_GROUP_BITS) - 1
    net = int(address) >> 8
    for other in others:
        other_net = int(other) >> 8
        if other_net != net and other_net & mask == net & mask:
            return (
                f"{IPv4Network((net << 8, 24))} and {IPv4Network((other_net << 8, 24))} would share a shaping group: "
                "a gateway's /24s must differ within their /10"
            )
    return None


def subscriber_problem(
    carrier: Carrier,
    *,
    login: str | None,
    password: str | None,
    address: IPv4Address | None,
    others: Iterable[IPv4Address] = (),
) -> str | None:
    """Why a router like ``carrier`` cannot carry a service with these values, or None when it can.

    ``login`` and ``password`` are those of a PPPoE service (None for a static-IP one); ``others`` are the
    addresses of the services the router carries already. The kind-independent rules (:func:`pppoe_login`,
    :func:`pppoe_password`) are checked first, then the router kind's own.
    """
    try:
        if login is not None:
            pppoe_login(login)
            router_name(login, what="PPPoE login", encoding=carrier.encoding)
        if password is not None:
            pppoe_password(password)
    except NamingError as exc:
        return str(exc)
    if carrier.by_address:
        if address is None:
            return f"a {carrier.kind} gateway shapes by address: the service needs an IPv4 address"
        return address_problem(address, carrier.subnets) or group_problem(address, others)
    return None
