"""Menu definitions: RouterOS property names, input parsers, defaults and the commands each menu has."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from lab.routeros import values as v
from lab.routeros.errors import Trap


class MenuContext(Protocol):
    """What input parsers may ask of the router."""

    def has_named(self, path: str, name: str) -> bool:
        """True when ``path`` holds an item whose name is ``name``."""
        ...

    def normalise_rate_limit(self) -> bool:
        """True when ``rate-limit`` is stored in raw bps rather than echoed as typed."""
        ...


Parser = Callable[[MenuContext, str, str], str]


@dataclass(frozen=True)
class Field:
    """One property. ``parser`` is ``None`` for read-only properties; ``default`` is printed when unset
    (``None``: omitted when unset); ``ref`` names the menu a reference points into (stored by identity,
    printed by name)."""

    name: str
    parser: Parser | None
    default: str | None = None
    ref: str | None = None
    required: bool = False
    none_word: str | None = None  # a reference's "no reference" spelling, e.g. ``none``


def text(_ctx: MenuContext, _name: str, value: str) -> str:
    return value


def boolean(_ctx: MenuContext, name: str, value: str) -> str:
    return v.bool_text(v.parse_bool(name, value))


def tristate(_ctx: MenuContext, name: str, value: str) -> str:
    return v.parse_tristate(name, value)


def enum(*choices: str) -> Parser:
    def parse(_ctx: MenuContext, name: str, value: str) -> str:
        if value not in choices:
            raise Trap.bad_value(name)
        return value

    return parse


def integer(low: int, high: int) -> Parser:
    def parse(_ctx: MenuContext, name: str, value: str) -> str:
        return str(v.parse_int(name, value, low, high))

    return parse


def ipv4(_ctx: MenuContext, name: str, value: str) -> str:
    return str(v.parse_ipv4(name, value))


def address_or_pool(ctx: MenuContext, name: str, value: str) -> str:
    """PPP profile ``local-address``/``remote-address``: an IPv4 address or an ``/ip/pool`` name."""
    try:
        return str(v.parse_ipv4(name, value))
    except Trap:
        pass
    if ctx.has_named("/ip/pool", value):
        return value
    raise Trap.bad_value(name)


def rate_limit(ctx: MenuContext, name: str, value: str) -> str:
    parsed = v.parse_rate_limit(name, value)
    return parsed.normalised() if ctx.normalise_rate_limit() else value


def rate_pair(_ctx: MenuContext, name: str, value: str) -> str:
    up, down = v.parse_rate_pair(name, value)
    return v.pair_text(up, down)


def duration(_ctx: MenuContext, name: str, value: str) -> str:
    return v.duration_text(v.parse_duration(name, value))


def duration_pair(_ctx: MenuContext, name: str, value: str) -> str:
    first, sep, second = value.partition("/")
    up = v.parse_duration(name, first)
    down = v.parse_duration(name, second) if sep else up
    return v.pair_text(v.duration_text(up), v.duration_text(down))


def priority_pair(_ctx: MenuContext, name: str, value: str) -> str:
    first, sep, second = value.partition("/")
    up = v.parse_int(name, first, 1, 8)
    down = v.parse_int(name, second, 1, 8) if sep else up
    return v.pair_text(up, down)


def queue_kind_pair(_ctx: MenuContext, name: str, value: str) -> str:
    first, sep, second = value.partition("/")
    kinds = (
        "default",
        "default-small",
        "ethernet-default",
        "wireless-default",
        "synchronous-default",
        "hotspot-default",
        "pcq-upload-default",
        "pcq-download-default",
        "only-hardware-queue",
        "multi-queue-ethernet-default",
    )
    down = second if sep else first
    if first not in kinds or down not in kinds:
        raise Trap.bad_value(name)
    return v.pair_text(first, down)


def bucket_pair(_ctx: MenuContext, name: str, value: str) -> str:
    first, sep, second = value.partition("/")
    down = second if sep else first
    for part in (first, down):
        try:
            number = float(part)
        except ValueError:
            raise Trap.invalid_argument(name) from None
        if not 0 <= number <= 10:
            raise Trap(f"value of {name} out of range (0..10)", category=1)
    return v.pair_text(first, down)


def mac(_ctx: MenuContext, name: str, value: str) -> str:
    return v.parse_mac(name, value)


def queue_target(_ctx: MenuContext, name: str, value: str) -> str:
    """Comma list of addresses (normalised to CIDR) or interface names."""
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise Trap.invalid_argument(name)
    normalised: list[str] = []
    for part in parts:
        if part[0].isdigit():
            normalised.append(str(v.parse_prefix(name, part)))
        elif _ctx.has_named("/interface", part):
            normalised.append(part)
        else:
            raise Trap.bad_value(name)
    return ",".join(normalised)


def pool_ranges(_ctx: MenuContext, name: str, value: str) -> str:
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise Trap.invalid_argument(name)
    out: list[str] = []
    for part in parts:
        if "-" in part:
            low, _, high = part.partition("-")
            first, last = v.parse_ipv4(name, low.strip()), v.parse_ipv4(name, high.strip())
            if int(last) < int(first):
                raise Trap.invalid_argument(name)
            out.append(f"{first}-{last}")
        else:
            out.append(str(v.parse_prefix(name, part)))
    return ",".join(out)


def address_list_address(_ctx: MenuContext, name: str, value: str) -> str:
    return v.address_list_address(name, value)


def reference(_ctx: MenuContext, _name: str, value: str) -> str:
    return value  # resolved by the router, which stores the referenced item's identity


WRITE_COMMANDS = frozenset(
    {"add", "set", "remove", "enable", "disable", "unset", "comment", "reset-counters", "reset-counters-all"}
)


@dataclass(frozen=True)
class MenuSpec:
    """Static description of one menu."""

    path: str
    fields: tuple[Field, ...]
    commands: frozenset[str]
    key: str | None = "name"
    duplicate_message: str = "failure: already have such name"
    singleton: bool = False
    first_number: int = 1
    dynamic_editable: bool = False
    persistent: bool = True
    unique: tuple[str, ...] = ()
    """Properties whose combination must be unique (besides ``key``)."""
    field_map: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "field_map", {f.name: f for f in self.fields})


_LIST = frozenset({"print", "getall", "listen", "add", "set", "remove", "unset", "comment"})
_LIST_TOGGLE = _LIST | {"enable", "disable"}
_TRI = "default"

PPP_PROFILE = MenuSpec(
    path="/ppp/profile",
    fields=(
        Field("name", text, required=True),
        Field("local-address", address_or_pool),
        Field("remote-address", address_or_pool),
        Field("bridge", text),
        Field("rate-limit", rate_limit),
        Field("address-list", text, default=""),
        Field("dns-server", text),
        Field("only-one", tristate, default=_TRI),
        Field("parent-queue", text),
        Field("queue-type", text),
        Field("insert-queue-before", text),
        Field("on-up", text, default=""),
        Field("on-down", text, default=""),
        Field("change-tcp-mss", tristate, default=_TRI),
        Field("use-compression", tristate, default=_TRI),
        Field("use-encryption", enum("yes", "no", "default", "required"), default=_TRI),
        Field("use-mpls", enum("yes", "no", "default", "required"), default=_TRI),
        Field("use-upnp", tristate, default=_TRI),
        Field("use-ipv6", enum("yes", "no", "default", "required"), default="yes"),
        Field("bridge-learning", tristate, default=_TRI),
        Field("default", None),
        Field("comment", text),
    ),
    commands=_LIST,
)

PPP_SECRET = MenuSpec(
    path="/ppp/secret",
    fields=(
        Field("name", text, required=True),
        Field("service", enum("any", "async", "l2tp", "ovpn", "pppoe", "pptp", "sstp"), default="any"),
        Field("caller-id", text, default=""),
        Field("password", text, default=""),
        Field("profile", reference, default="default", ref="/ppp/profile"),
        Field("routes", text),
        Field("ipv6-routes", text),
        Field("limit-bytes-in", integer(0, 2**64 - 1), default="0"),
        Field("limit-bytes-out", integer(0, 2**64 - 1), default="0"),
        Field("local-address", ipv4),
        Field("remote-address", ipv4),
        Field("last-logged-out", None),
        Field("last-caller-id", None),
        Field("last-disconnect-reason", None),
        Field("disabled", boolean, default="false"),
        Field("comment", text),
    ),
    commands=_LIST_TOGGLE,
    duplicate_message="failure: secret with the same name already exists",
)

PPP_ACTIVE = MenuSpec(
    path="/ppp/active",
    fields=tuple(
        Field(name, None)
        for name in (
            "name",
            "service",
            "caller-id",
            "encoding",
            "address",
            "uptime",
            "session-id",
            "limit-bytes-in",
            "limit-bytes-out",
            "radius",
        )
    ),
    commands=frozenset({"print", "getall", "listen", "remove"}),
    first_number=0x80000001,
    dynamic_editable=True,
    persistent=False,
)

QUEUE_STATS = ("bytes", "packets", "dropped", "rate", "packet-rate", "queued-bytes", "queued-packets")

QUEUE_SIMPLE = MenuSpec(
    path="/queue/simple",
    fields=(
        Field("name", text),
        Field("target", queue_target, required=True),
        Field("dst", text),
        Field("parent", reference, default="none", ref="/queue/simple", none_word="none"),
        Field("packet-marks", text, default=""),
        Field("priority", priority_pair, default="8/8"),
        Field("queue", queue_kind_pair, default="default-small/default-small"),
        Field("limit-at", rate_pair, default="0/0"),
        Field("max-limit", rate_pair, default="0/0"),
        Field("burst-limit", rate_pair, default="0/0"),
        Field("burst-threshold", rate_pair, default="0/0"),
        Field("burst-time", duration_pair, default="0s/0s"),
        Field("bucket-size", bucket_pair, default="0.1/0.1"),
        Field("time", text),
        *(Field(name, None) for name in QUEUE_STATS),
        *(Field(f"total-{name}", None) for name in QUEUE_STATS),
        Field("invalid", None),
        Field("dynamic", None),
        Field("disabled", boolean, default="false"),
        Field("comment", text),
    ),
    commands=_LIST_TOGGLE | {"reset-counters", "reset-counters-all"},
)

ADDRESS_LIST = MenuSpec(
    path="/ip/firewall/address-list",
    fields=(
        Field("list", text, required=True),
        Field("address", address_list_address, required=True),
        Field("creation-time", None),
        Field("timeout", duration),
        Field("dynamic", None),
        Field("disabled", boolean, default="false"),
        Field("comment", text),
    ),
    commands=_LIST_TOGGLE,
    key=None,
    unique=("list", "address"),
    duplicate_message="failure: already have such entry",
    dynamic_editable=True,
)

IP_POOL = MenuSpec(
    path="/ip/pool",
    fields=(
        Field("name", text, required=True),
        Field("ranges", pool_ranges, required=True),
        Field("next-pool", reference, ref="/ip/pool", none_word="none"),
        Field("comment", text),
    ),
    commands=_LIST,
)

INTERFACE_STATS = (
    "rx-byte",
    "tx-byte",
    "rx-packet",
    "tx-packet",
    "rx-drop",
    "tx-drop",
    "tx-queue-drop",
    "rx-error",
    "tx-error",
    "fp-rx-byte",
    "fp-tx-byte",
    "fp-rx-packet",
    "fp-tx-packet",
)

INTERFACE = MenuSpec(
    path="/interface",
    fields=(
        Field("name", text, required=True),
        Field("default-name", None),
        Field("type", None),
        Field("mtu", integer(0, 65535)),
        Field("actual-mtu", None),
        Field("l2mtu", None),
        Field("mac-address", None),
        Field("last-link-up-time", None),
        Field("link-downs", None),
        *(Field(name, None) for name in INTERFACE_STATS),
        Field("running", None),
        Field("slave", None),
        Field("disabled", boolean, default="false"),
        Field("dynamic", None),
        Field("comment", text),
    ),
    commands=frozenset({"print", "getall", "listen", "set", "enable", "disable", "reset-counters", "unset", "comment"}),
)

IDENTITY = MenuSpec(
    path="/system/identity",
    fields=(Field("name", text, default="MikroTik"),),
    commands=frozenset({"print", "getall", "set"}),
    key=None,
    singleton=True,
)

RESOURCE = MenuSpec(
    path="/system/resource",
    fields=tuple(
        Field(name, None)
        for name in (
            "uptime",
            "version",
            "build-time",
            "factory-software",
            "free-memory",
            "total-memory",
            "cpu",
            "cpu-count",
            "cpu-frequency",
            "cpu-load",
            "free-hdd-space",
            "total-hdd-space",
            "write-sect-since-reboot",
            "write-sect-total",
            "architecture-name",
            "board-name",
            "platform",
        )
    ),
    commands=frozenset({"print", "getall"}),
    key=None,
    singleton=True,
    persistent=False,
)

MENUS: dict[str, MenuSpec] = {
    spec.path: spec
    for spec in (
        PPP_PROFILE,
        PPP_SECRET,
        PPP_ACTIVE,
        QUEUE_SIMPLE,
        ADDRESS_LIST,
        IP_POOL,
        INTERFACE,
        IDENTITY,
        RESOURCE,
    )
}

#: Order in which persisted menus are restored (references must exist before they are used).
RESTORE_ORDER = ("/ip/pool", "/ppp/profile", "/ppp/secret", "/interface", "/queue/simple", "/ip/firewall/address-list")
