"""The shaping layout of a Linux ``tc`` gateway: handles, limits, device and address-list names, nftables rules.

Everything here is pure. Download is shaped on the subscriber-facing interface (matching the destination
address), upload on an ``ifb`` device fed by an ingress ``mirred`` redirect (matching the source address). Per
device the tree is nested so that building it is linear and classifying a packet costs two hash lookups:

* root HTB qdisc ``eb:`` with a u32 hash table ``1:`` (256 buckets, keyed on the address's third octet);
* one class ``eb:G`` per /24, holding a child HTB qdisc ``G:``, where ``G`` is :func:`group_major` of the /24;
* in each child qdisc, a u32 hash table ``2:`` (keyed on the last octet) and one class ``G:M`` per subscriber
  (``M`` = last octet + 1) with a leaf qdisc (``leaf_qdisc``, kernel-assigned handle).

Every handle is derived from the address, so a class or filter always has the same id: drift detection compares
like with like and re-creation is stable. The limits the kernel imposes are checked before anything is sent
(:mod:`drivers.linux.plan` renders a desired state in this layout).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from drivers.base import DriverError
from policies.naming import SHAPING_GROUP_BITS, NamingError, address_list

Direction = Literal["down", "up"]

#: Major handle of edgebill's root HTB qdisc on each shaped device (``eb:``).
ROOT_MAJOR: Final = 0xEB
#: Child HTB qdisc majors (and root class minors) of the /24 groups: ``0x1000`` + 14 bits of the /24.
GROUP_BASE: Final = 0x1000
GROUP_BITS: Final = SHAPING_GROUP_BITS
#: Kernel-assigned qdisc handles (the leaves) start here; edgebill's own majors stay below.
AUTO_HANDLE_FIRST: Final = 0x8000
#: At most this many subscribers per gateway: each has a leaf qdisc per direction, and the kernel assigns leaf
#: handles from ``8000:`` to ``ffff:`` on each device.
MAX_SUBSCRIBERS: Final = 32_000
#: Filter priority of edgebill's ingress redirect (other ingress filters are left alone).
REDIRECT_PREF: Final = 0xEB
#: The u32 hash tables: root level (keyed on the third octet) and inside each child qdisc (last octet).
ROOT_HT: Final = 1
CHILD_HT: Final = 2
#: Entries per u32 hash bucket the kernel allows.
MAX_BUCKET_ENTRIES: Final = 4095
#: The explicit DRR quantum of every class, in bytes (one Ethernet frame).
QUANTUM: Final = 1514
#: The rate of the per-/24 container classes: they classify, the subscriber classes below them shape.
GROUP_RATE: Final = 100_000_000_000

#: nftables table and chain names edgebill owns on the gateway.
NFT_FAMILY: Final = "inet"
NFT_TABLE: Final = "edgebill"
#: Subscriber keys live in one nftables set per /24, ``subscribers-G`` (``G`` as in the tc handles), so that the
#: keys of a few subscribers are read without listing every subscriber's (a set is listed whole).
NFT_SUBSCRIBERS: Final = "subscribers"
NFT_KEY_SET_PREFIX: Final = NFT_SUBSCRIBERS + "-"
NFT_FORWARD: Final = "forward"
NFT_PREROUTING: Final = "prerouting"
#: nftables comments are at most 128 bytes.
MAX_COMMENT_BYTES: Final = 128

#: Leaf qdiscs the driver can attach, and the exact ``tc`` arguments used for each.
LEAF_QDISCS: Final[Mapping[str, str]] = {
    "fq_codel": "fq_codel",
    "sfq": "sfq perturb 10",
    "pfifo": "pfifo limit 1000",
}

#: Resource kinds, in dependency order.
KIND_LINK: Final = "link/ifb"
KIND_QDISC: Final = "tc/qdisc"
KIND_REDIRECT: Final = "tc/redirect"
KIND_GROUP: Final = "tc/group"
KIND_SUB: Final = "tc/subscriber"
KIND_TABLE: Final = "nft/table"
KIND_NFT_SUB: Final = "nft/subscriber"
KIND_SUSPENDED: Final = "nft/suspended"
ORDER: Final = (
    KIND_LINK,
    KIND_QDISC,
    KIND_REDIRECT,
    KIND_GROUP,
    KIND_SUB,
    KIND_TABLE,
    KIND_NFT_SUB,
    KIND_SUSPENDED,
)

_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")


class LayoutError(DriverError, ValueError):
    """The desired state or the gateway settings cannot be laid out within the kernel's limits."""


# --- validated values -----------------------------------------------------------------------------------------


def check_ifname(name: str, what: str) -> str:
    """``name`` if it is a valid Linux interface name; :class:`LayoutError` otherwise."""
    if not isinstance(name, str) or not _IFNAME.fullmatch(name) or name in (".", ".."):
        raise LayoutError(
            f"{what} must be a Linux interface name (1-15 letters, digits, '_', '.' or '-'), got {name!r}"
        )
    return name


def check_set_name(name: str) -> str:
    try:
        return address_list(name)
    except NamingError as exc:
        raise LayoutError(str(exc)) from None


@dataclass(frozen=True)
class Devices:
    """The devices shaped on one gateway: ``interface`` (download) and ``ifb`` (upload, optional)."""

    interface: str
    ifb: str | None
    leaf: str

    def __post_init__(self) -> None:
        check_ifname(self.interface, "interface")
        if self.ifb is not None:
            check_ifname(self.ifb, "upload_ifb")
            if self.ifb == self.interface:
                raise LayoutError(f"upload_ifb must differ from interface, got {self.ifb!r} for both")
        if self.leaf not in LEAF_QDISCS:
            raise LayoutError(f"leaf_qdisc must be one of {', '.join(LEAF_QDISCS)}, got {self.leaf!r}")

    def directions(self) -> tuple[tuple[Direction, str], ...]:
        out: list[tuple[Direction, str]] = [("down", self.interface)]
        if self.ifb is not None:
            out.append(("up", self.ifb))
        return tuple(out)

    def device(self, direction: Direction) -> str:
        if direction == "down":
            return self.interface
        if self.ifb is None:
            raise LayoutError("upload shaping is off (no upload_ifb)")
        return self.ifb


# --- handles ------------------------------------------------------------------------------------------------


def group_network(address: IPv4Address) -> IPv4Network:
    return IPv4Network((int(address) & 0xFFFFFF00, 24))


def group_major(address: IPv4Address) -> int:
    """The child qdisc major (and root class minor) of the /24 holding ``address``: unique within any /10."""
    return GROUP_BASE + ((int(address) >> 8) & ((1 << GROUP_BITS) - 1))


def subscriber_minor(address: IPv4Address) -> int:
    return (int(address) & 0xFF) + 1


def root_node(address: IPv4Address) -> int:
    """The u32 node id of a /24's entry in its root hash bucket: the /24 is unique within its bucket and /10."""
    return ((int(address) >> 16) & 0x3F) + 1


def hx(value: int) -> str:
    return format(value, "x")


def key_set(address: IPv4Address) -> str:
    """The nftables set holding the subscriber key of ``address`` (one per /24)."""
    return f"{NFT_KEY_SET_PREFIX}{hx(group_major(address))}"


def class_id(address: IPv4Address) -> str:
    return f"{hx(group_major(address))}:{hx(subscriber_minor(address))}"


def group_class_id(address: IPv4Address) -> str:
    return f"{hx(ROOT_MAJOR)}:{hx(group_major(address))}"


def root_filter_handle(address: IPv4Address) -> str:
    return f"{hx(ROOT_HT)}:{hx((int(address) >> 8) & 0xFF)}:{hx(root_node(address))}"


def child_filter_handle(address: IPv4Address) -> str:
    return f"{hx(CHILD_HT)}:{hx(int(address) & 0xFF)}:1"


def match_word(direction: Direction) -> tuple[str, int]:
    """The u32 match keyword and the IPv4 header offset of the address shaped in ``direction``."""
    return ("dst", 16) if direction == "down" else ("src", 12)


# --- rates as tc prints them ------------------------------------------------------------------------------------


def tc_rate_text(bps: int) -> str:
    """The rate as ``tc class show`` prints it after being set to ``bps`` bit/s (tc keeps whole bytes/s)."""
    rate = (bps // 8) * 8
    units = ("", "K", "M", "G", "T")
    i = 0
    while i < len(units) - 1:
        if rate < 1000:
            break
        if rate % 1000 != 0 and rate < 1000 * 1000:
            break
        rate //= 1000
        i += 1
    return f"{rate}{units[i]}bit"


def burst_bytes(bps: int) -> int:
    """HTB burst: 10 ms at ``bps``, at least 1600 bytes (one full frame plus headroom)."""
    return max(1600, bps // 8 // 100)


def class_text(bps: int) -> str:
    return f"rate {tc_rate_text(bps)} ceil {tc_rate_text(bps)} quantum {QUANTUM}"


def class_args(bps: int) -> str:
    burst = burst_bytes(bps)
    return f"htb rate {bps}bit ceil {bps}bit burst {burst} cburst {burst} quantum {QUANTUM}"


# --- the payment portal ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Portal:
    address: IPv4Address
    port: int

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


def portal_of(url: str) -> Portal | None:
    """The address and port suspended subscribers' HTTP is sent to; ``None`` without a payment page.

    Raises :class:`LayoutError` when the URL's host is not an IPv4 address (the gateway redirects by address).
    """
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise LayoutError(f"payment_page_url must be an http or https URL, got {parts.scheme!r}")
    try:
        address = IPv4Address(parts.hostname or "")
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise LayoutError(
            f"payment_page_url host must be an IPv4 address for a Linux gateway, got {parts.hostname!r}"
        ) from None
    return Portal(address, port)


# --- nftables --------------------------------------------------------------------------------------------------


def _payload(proto: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": proto, "field": field}}


def _match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def nft_rules(set_name: str, portal: Portal | None) -> dict[str, list[list[dict[str, Any]]]]:
    """The rule expressions of edgebill's chains, in nftables JSON (what ``nft -j list`` prints back)."""
    member = f"@{set_name}"
    src = _match(_payload("ip", "saddr"), member)
    dst = _match(_payload("ip", "daddr"), member)
    forward: list[list[dict[str, Any]]] = [
        [src, _match(_payload("udp", "dport"), 53), {"accept": None}],
        [src, _match(_payload("tcp", "dport"), 53), {"accept": None}],
    ]
    prerouting: list[list[dict[str, Any]]] = []
    if portal is not None:
        forward.append(
            [
                src,
                _match(_payload("ip", "daddr"), str(portal.address)),
                _match(_payload("tcp", "dport"), portal.port),
                {"accept": None},
            ]
        )
        prerouting.append(
            [
                src,
                _match(_payload("tcp", "dport"), 80),
                {"dnat": {"family": "ip", "addr": str(portal.address), "port": portal.port}},
            ]
        )
    forward.append([src, {"drop": None}])
    forward.append([dst, _match({"ct": {"key": "state"}}, "new", "in"), {"drop": None}])
    return {NFT_FORWARD: forward, NFT_PREROUTING: prerouting}


def rules_digest(rules: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]]) -> str:
    canon = json.dumps({chain: list(rules.get(chain, ())) for chain in (NFT_FORWARD, NFT_PREROUTING)}, sort_keys=True)
    return hashlib.sha256(canon.encode()).hexdigest()[:16]
