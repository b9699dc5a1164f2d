"""RouterOS menus as edgebill writes and reads them: the one spelling of their values, ownership, the rows a
router prints turned into comparable resources, and the checks that refuse input a router cannot hold.

Pure: nothing here talks to a router. The driver (:mod:`drivers.mikrotik.driver`) reads rows with librouteros and
hands them to :func:`resource_of_row`; :mod:`drivers.mikrotik.plan` renders a desired state in the same spelling
and diffs the two.

Everything is compared in one spelling, the one the plan renders:

* booleans ``true``/``false`` (RouterOS prints ``true``, accepts ``yes``; librouteros turns both into ``bool``);
* rates in raw bits per second (the API prints ``/queue/simple`` limits as ``15000000/20000000``, and a PPP
  ``rate-limit`` may be echoed as typed, ``5M/10M``, or normalised);
* durations as whole seconds with an ``s`` (``10s``), whatever form the router printed (``00:00:10``, ``10s``);
* queue targets as CIDR (``10.0.0.5/32``).

Direction conventions, exactly: a PPP ``rate-limit`` is written from the router's view, ``rx/tx``, where rx is
what the subscriber uploads and tx what it downloads; a simple queue's ``max-limit`` is ``upload/download``
relative to its target. Both therefore put the subscriber's upload first.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Final

from drivers.models import OWNER_MARK, Resource
from policies.naming import MAX_NAME_LENGTH, NamingError, router_name
from policies.rates import RateLimit, format_rate

__all__ = [
    "ADDRESS_LIST",
    "KINDS",
    "MAX_NAME_LENGTH",
    "MAX_ROUTEROS_RATE",
    "MENU_FIELDS",
    "PROFILE",
    "QUEUE",
    "SECRET",
    "UNSETTABLE",
    "InvalidRouterInput",
    "dedupe",
    "is_owned",
    "normalise_duration",
    "normalise_rate_limit",
    "normalise_rate_pair",
    "owner_comment",
    "queue_limits",
    "rate_limit_text",
    "resource_of_row",
    "subscriber_address",
    "text_of",
    "validate_name",
    "validate_rate",
]

PROFILE: Final = "ppp/profile"
SECRET: Final = "ppp/secret"
QUEUE: Final = "queue/simple"
ADDRESS_LIST: Final = "ip/firewall/address-list"

#: Kinds in dependency order: profiles before the secrets naming them. Removals run in reverse.
KINDS: Final = (PROFILE, SECRET, QUEUE, ADDRESS_LIST)

#: The properties edgebill reads of each menu (its ``.proplist``), beyond ``.id``.
MENU_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    PROFILE: ("name", "rate-limit", "address-list", "comment", "default"),
    SECRET: ("name", "service", "profile", "disabled", "remote-address", "password", "comment"),
    QUEUE: (
        "name",
        "target",
        "max-limit",
        "burst-limit",
        "burst-threshold",
        "burst-time",
        "disabled",
        "comment",
        "dynamic",
    ),
    ADDRESS_LIST: ("list", "address", "disabled", "comment", "dynamic"),
}

#: Properties whose "no value" is written with ``unset`` rather than an empty value.
UNSETTABLE: Final[Mapping[str, frozenset[str]]] = {
    PROFILE: frozenset({"rate-limit"}),
    SECRET: frozenset({"remote-address"}),
    QUEUE: frozenset(),
    ADDRESS_LIST: frozenset(),
}


#: The highest rate written to a RouterOS rate property, in bits per second (a 40-bit counter: ~1.1 Tbit/s).
MAX_ROUTEROS_RATE: Final = 0xFF_FFFF_FFFF

_SVC_PREFIX: Final = f"{OWNER_MARK}:svc="


class InvalidRouterInput(NamingError):
    """A name or rate that cannot be written to a RouterOS router; the message is one line for the admin."""


# --- checks the CLI and the dashboard call before accepting input -----------------------------------------


def validate_name(name: str, *, what: str = "name", encoding: str = "utf-8") -> str:
    """Return ``name`` if RouterOS can hold it as a PPP secret, profile or queue name, else raise.

    The rule is :func:`policies.naming.router_name` (the one the service layer checks at entry), its error
    raised as :class:`InvalidRouterInput`.
    """
    try:
        return router_name(name, what=what, encoding=encoding)
    except NamingError as exc:
        raise InvalidRouterInput(str(exc)) from None


def validate_rate(rate: RateLimit, *, what: str = "rate", ceiling: int = MAX_ROUTEROS_RATE) -> RateLimit:
    """Return ``rate`` if a RouterOS ``rate-limit`` and simple queue can express it exactly, else raise.

    :class:`~policies.rates.RateLimit` already refuses zero (RouterOS reads 0 as "unlimited") and malformed
    bursts; this adds the router's own ceiling for every rate and threshold: :data:`MAX_ROUTEROS_RATE` by
    default, lower (``ceiling=4_294_967_295``) for routers whose queues hold 32-bit rates.
    """
    if not isinstance(rate, RateLimit):
        raise TypeError(f"{what} must be a RateLimit, got {type(rate).__name__}")
    values = [("download", rate.download), ("upload", rate.upload)]
    if rate.burst is not None:
        b = rate.burst
        values += [
            ("burst download", b.download),
            ("burst upload", b.upload),
            ("burst download threshold", b.threshold_download),
            ("burst upload threshold", b.threshold_upload),
        ]
    for label, bps in values:
        if bps > ceiling:
            raise InvalidRouterInput(
                f"{what}: {label} {format_rate(bps)} is above what the router can express ({ceiling} bps)"
            )
    return rate


# --- value spellings -----------------------------------------------------------------------------------------


def text_of(value: object) -> str:
    """A librouteros value (``str``, ``int`` or ``bool``) in the spelling edgebill compares."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


_RATE_WORD = re.compile(r"([0-9]+)(?:\.([0-9]+))?([kKmMgG]?)")
_SCALE: Final[Mapping[str, int]] = MappingProxyType({"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000})
_DURATION = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?")
_CLOCK = re.compile(r"(?:(\d+)d)?(\d{1,2}):(\d{2}):(\d{2})")


def _rate(text: str) -> int | None:
    match = _RATE_WORD.fullmatch(text.strip())
    if match is None:
        return None
    whole, frac, suffix = match.groups()
    try:
        value = Decimal(f"{whole}.{frac or '0'}") * _SCALE[suffix.lower()]
    except InvalidOperation:
        return None
    if value != value.to_integral_value():
        return None
    return int(value)


def _seconds(text: str) -> int | None:
    text = text.strip()
    if text.isdigit():
        return int(text)
    clock = _CLOCK.fullmatch(text)
    if clock is not None:
        days, hours, minutes, seconds = clock.groups()
        return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    match = _DURATION.fullmatch(text)
    if match is None or not text:
        return None
    weeks, days, hours, minutes, seconds, _ms = (int(part or 0) for part in match.groups())
    return weeks * 604800 + days * 86400 + hours * 3600 + minutes * 60 + seconds


def normalise_duration(text: str) -> str:
    """``00:00:10``, ``10s``, ``10`` -> ``10s``; text that is not a duration is returned unchanged."""
    seconds = _seconds(text)
    return text if seconds is None else f"{seconds}s"


def _pair(text: str) -> tuple[str, str]:
    first, sep, second = text.partition("/")
    return (first, second if sep else first)


def normalise_rate_pair(text: str) -> str:
    """``5M/10M`` or ``5000000/10000000`` -> ``5000000/10000000``; a single value stands for both."""
    parts = _pair(text)
    a, b = _rate(parts[0]), _rate(parts[1])
    if a is None or b is None:
        return text
    return f"{a}/{b}"


def _normalise_duration_pair(text: str) -> str:
    parts = _pair(text)
    a, b = _seconds(parts[0]), _seconds(parts[1])
    if a is None or b is None:
        return text
    return f"{a}s/{b}s"


def normalise_rate_limit(text: str) -> str:
    """A PPP ``rate-limit`` in the one spelling :func:`rate_limit_text` writes.

    Parses ``rx[/tx] [rx-burst[/tx-burst] [rx-thr[/tx-thr] [rx-time[/tx-time] [priority] [rx-min[/tx-min]]]]]``
    with RouterOS's defaults (a missing tx copies rx, the threshold defaults to the rate, the burst time to 1s,
    priority 8) and prints the shortest form holding the same values. Unparseable text is returned unchanged
    (it then differs from the desired value and is rewritten).
    """
    tokens = text.split()
    if not 1 <= len(tokens) <= 6:
        return text
    pairs: list[tuple[int, int]] = []
    for i, token in enumerate(tokens):
        if i == 4:
            continue
        first, sep, second = token.partition("/")
        parse = _seconds if i == 3 else _rate
        a = parse(first)
        b = parse(second) if sep else a
        if a is None or b is None:
            return text
        pairs.append((a, b))
    rate = pairs[0]
    burst = pairs[1] if len(pairs) > 1 else (0, 0)
    threshold = pairs[2] if len(pairs) > 2 else (rate if burst != (0, 0) else (0, 0))
    time = pairs[3] if len(pairs) > 3 else ((1, 1) if burst != (0, 0) else (0, 0))
    priority = tokens[4] if len(tokens) > 4 else "8"
    minimum = pairs[4] if len(pairs) > 4 else (0, 0)
    if not priority.isdigit():
        return text
    out = f"{rate[0]}/{rate[1]}"
    if burst != (0, 0) or threshold != (0, 0) or time != (0, 0) or int(priority) != 8 or minimum != (0, 0):
        out += f" {burst[0]}/{burst[1]} {threshold[0]}/{threshold[1]} {time[0]}s/{time[1]}s"
        if int(priority) != 8 or minimum != (0, 0):
            out += f" {int(priority)} {minimum[0]}/{minimum[1]}"
    return out


def rate_limit_text(rate: RateLimit) -> str:
    """The PPP ``rate-limit`` for ``rate``, router view (rx = subscriber upload), in raw bps.

    ``RateLimit(10M down, 5M up)`` -> ``5000000/10000000``; with a burst the burst rates, thresholds and time
    follow: ``5000000/10000000 8000000/16000000 4000000/8000000 16s/16s``.
    """
    out = f"{rate.upload}/{rate.download}"
    b = rate.burst
    if b is not None:
        out += f" {b.upload}/{b.download} {b.threshold_upload}/{b.threshold_download} {b.time_s}s/{b.time_s}s"
    return out


def queue_limits(rate: RateLimit) -> dict[str, str]:
    """The simple-queue properties for ``rate``: target-relative ``upload/download`` in raw bps."""
    b = rate.burst
    return {
        "max-limit": f"{rate.upload}/{rate.download}",
        "burst-limit": f"{b.upload}/{b.download}" if b else "0/0",
        "burst-threshold": f"{b.threshold_upload}/{b.threshold_download}" if b else "0/0",
        "burst-time": f"{b.time_s}s/{b.time_s}s" if b else "0s/0s",
    }


def _cidr(text: str) -> str:
    parts = []
    for part in text.split(","):
        part = part.strip()
        try:
            parts.append(str(ipaddress.IPv4Network(part, strict=False)))
        except ValueError:
            parts.append(part)
    return ",".join(parts)


def _host(text: str) -> str:
    try:
        network = ipaddress.IPv4Network(text.strip(), strict=False)
    except ValueError:
        return text
    return str(network.network_address) if network.prefixlen == 32 else str(network)


# --- ownership -------------------------------------------------------------------------------------------------


def owner_comment(service_id: int | None = None) -> str:
    """The ``comment`` marking an entry as edgebill's: ``edgebill:svc=42`` for a service, ``edgebill`` else."""
    return OWNER_MARK if service_id is None else f"{_SVC_PREFIX}{service_id}"


def is_owned(comment: str) -> bool:
    """True for ``edgebill`` and ``edgebill:...`` comments."""
    return comment == OWNER_MARK or comment.startswith(OWNER_MARK + ":")


# --- router rows to resources ----------------------------------------------------------------------------------


def resource_of_row(kind: str, row: Mapping[str, object]) -> Resource:
    """One printed row (as librouteros returns it) as a comparable :class:`Resource`.

    Dynamic and built-in entries, and entries whose comment lacks the owner mark, are ``owned=False``.
    """
    get = {name: text_of(value) for name, value in row.items()}
    comment = get.get("comment", "")
    owned = is_owned(comment) and get.get("dynamic") != "true" and get.get("default") != "true"
    ref = get.get(".id") or None
    fields: dict[str, str]
    if kind == PROFILE:
        key = get.get("name", "")
        fields = {
            "name": key,
            "rate-limit": normalise_rate_limit(get.get("rate-limit", "")),
            "address-list": get.get("address-list", ""),
            "comment": comment,
        }
    elif kind == SECRET:
        key = get.get("name", "")
        fields = {
            "name": key,
            "service": get.get("service", "any"),
            "profile": get.get("profile", "default"),
            "disabled": get.get("disabled", "false"),
            "remote-address": get.get("remote-address", ""),
            "comment": comment,
        }
        if "password" in get:
            fields["password"] = get["password"]
    elif kind == QUEUE:
        key = get.get("name", "")
        fields = {
            "name": key,
            "target": _cidr(get.get("target", "")),
            "max-limit": normalise_rate_pair(get.get("max-limit", "0/0")),
            "burst-limit": normalise_rate_pair(get.get("burst-limit", "0/0")),
            "burst-threshold": normalise_rate_pair(get.get("burst-threshold", "0/0")),
            "burst-time": _normalise_duration_pair(get.get("burst-time", "0s/0s")),
            "disabled": get.get("disabled", "false"),
            "comment": comment,
        }
    elif kind == ADDRESS_LIST:
        address = _host(get.get("address", ""))
        key = f"{get.get('list', '')}|{address}"
        fields = {
            "list": get.get("list", ""),
            "address": address,
            "disabled": get.get("disabled", "false"),
            "comment": comment,
        }
    else:
        raise ValueError(f"unknown RouterOS kind {kind!r}")
    return Resource(
        kind, key, fields, owned=owned, write_only=frozenset({"password"}) if kind == SECRET else frozenset(), ref=ref
    )


def dedupe(resources: Iterable[Resource]) -> tuple[Resource, ...]:
    """One resource per key: an owned entry wins over unowned ones sharing its key (dynamic copies)."""
    out: dict[tuple[str, str], Resource] = {}
    for r in resources:
        k = (r.kind, r.key)
        if k not in out or (r.owned and not out[k].owned):
            out[k] = r
    return tuple(out.values())


# --- what a scoped run reads ------------------------------------------------------------------------------


def subscriber_address(resource: Resource) -> str | None:
    """The address an owned secret (``remote-address``) or queue (a ``/32`` target) gives its subscriber."""
    if not resource.owned:
        return None
    if resource.kind == SECRET:
        text = resource.fields.get("remote-address", "")
    elif resource.kind == QUEUE:
        text = resource.fields.get("target", "")
        if not text.endswith("/32"):
            return None
    else:
        return None
    try:
        return str(ipaddress.IPv4Network(text, strict=False).network_address) if text else None
    except ValueError:
        return None
