"""Parsing what the gateway prints (``tc`` text and JSON, ``ip -j``, ``nft -j``) into :class:`Resource` values.

Pure functions, the pieces :mod:`drivers.linux.readback` assembles a read from. :class:`ReadMemo` is a cache the
caller owns: a parse fills a new one with what it parsed, and the next parse is handed it as ``previous``.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, Final

from drivers.base import ReplyError
from drivers.linux.layout import (
    CHILD_HT,
    GROUP_BASE,
    GROUP_BITS,
    KIND_GROUP,
    KIND_LINK,
    KIND_NFT_SUB,
    KIND_QDISC,
    KIND_REDIRECT,
    KIND_SUB,
    KIND_SUSPENDED,
    KIND_TABLE,
    NFT_FAMILY,
    NFT_FORWARD,
    NFT_KEY_SET_PREFIX,
    NFT_PREROUTING,
    NFT_SUBSCRIBERS,
    NFT_TABLE,
    QUANTUM,
    REDIRECT_PREF,
    ROOT_HT,
    ROOT_MAJOR,
    Devices,
    Direction,
    hx,
    rules_digest,
)
from drivers.models import Resource

#: Marks the start of each section of the read script's output: ``@@name arg``.
SECTION: Final = "@@"

_CLASS = re.compile(
    r"^class htb (?P<id>[0-9a-f]+:[0-9a-f]+) (?:root|parent (?P<parent>[0-9a-f]+:[0-9a-f]*))"
    r"(?: leaf (?P<leaf>[0-9a-f]+):)? prio \d+(?: quantum (?P<quantum>\d+))? rate (?P<rate>\S+) ceil (?P<ceil>\S+)"
)
_DOTTED = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_QDISC = re.compile(
    r"^qdisc (?P<kind>\S+) (?P<handle>[0-9a-f]+:)(?: dev \S+)? "
    r"(?:(?P<root>root)|parent (?P<parent>[0-9a-f]+:[0-9a-f]*))"
)
_SENT = re.compile(r"^\s*Sent (\d+) bytes (\d+) pkt")
#: One HTB class and its byte counter in ``tc -s class show`` text: what :func:`class_counters` needs.
_COUNTED = re.compile(
    r"^class htb ([0-9a-f]+:[0-9a-f]+) (?:root|parent \S+)(?: leaf ([0-9a-f]+):)? prio [^\n]*\n\s*Sent (\d+) bytes",
    re.M,
)


def sections(text: str) -> dict[str, str]:
    """Split the read script's output at its ``@@name`` markers (lines starting with ``@@``)."""
    out: dict[str, str] = {}
    marker = "\n" + SECTION
    start = 0 if text.startswith(SECTION) else text.find(marker) + 1
    if start == 0 and not text.startswith(SECTION):
        return out
    while True:
        eol = text.find("\n", start)
        if eol < 0:
            out[text[start + len(SECTION) :].strip()] = ""
            return out
        name = text[start + len(SECTION) : eol].strip()
        following = text.find(marker, eol)
        if following < 0:
            body = text[eol + 1 :]
            out[name] = body[:-1] if body.endswith("\n") else body
            return out
        out[name] = text[eol + 1 : following]
        start = following + 1


def json_values(text: str) -> Iterator[Any]:
    """Every JSON value in ``text``, one after the other (``tc -j -batch`` prints one array per command)."""
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            return
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ReplyError(f"unreadable JSON from the gateway: {exc}") from None
        yield value


def one_json(text: str, default: Any) -> Any:
    values = list(json_values(text))
    return values[0] if values else default


def parse_handle(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(":")
    return int(major, 16), int(minor or "0", 16)


@dataclass(frozen=True)
class TcClass:
    classid: str
    parent: str | None
    leaf: str | None
    text: str
    sent_bytes: int


def parse_classes(text: str) -> dict[str, TcClass]:
    """HTB classes from ``tc [-s] [-d] class show`` text, by class id (``sent_bytes`` is 0 without ``-s``)."""
    out: dict[str, TcClass] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        m = _CLASS.match(line)
        if m:
            if current is not None:
                out[current["classid"]] = TcClass(**current)
            quantum = m.group("quantum") or str(QUANTUM)
            current = {
                "classid": m.group("id"),
                "parent": m.group("parent"),
                "leaf": m.group("leaf"),
                "text": f"rate {m.group('rate')} ceil {m.group('ceil')} quantum {quantum}",
                "sent_bytes": 0,
            }
            continue
        s = _SENT.match(line)
        if s and current is not None:
            current["sent_bytes"] = int(s.group(1))
    if current is not None:
        out[current["classid"]] = TcClass(**current)
    return out


def class_counters(text: str) -> dict[str, tuple[str | None, int]]:
    """``class id -> (leaf major, bytes sent)`` from ``tc -s class show`` text (one pass, for counters)."""
    return {m.group(1): (m.group(2), int(m.group(3))) for m in _COUNTED.finditer(text)}


def _match_text(options: Mapping[str, Any]) -> str | None:
    match = options.get("match")
    if not isinstance(match, Mapping):
        return None
    try:
        value = int(str(match["value"]), 16)
        mask = int(str(match["mask"]), 16)
        off = int(match["off"])
    except (KeyError, ValueError, TypeError):
        return None
    word = {16: "dst", 12: "src"}.get(off)
    if word is None or not 0 < mask <= 0xFFFFFFFF:
        return None
    prefix = mask.bit_count()
    if mask != (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF or value & ~mask & 0xFFFFFFFF:
        return None
    return f"{word} {socket.inet_ntoa(value.to_bytes(4, 'big'))}/{prefix}"


def _hash_word(filters: Sequence[Mapping[str, Any]], ht: int, mask: str) -> str:
    """``dst``/``src`` when hash table ``ht:`` (256 buckets) is linked from ``800::1`` on the right key."""
    has_table = any(
        f.get("options", {}).get("fh") == f"{hx(ht)}:" and f["options"].get("ht_divisor") == 256 for f in filters
    )
    for f in filters:
        opts = f.get("options", {})
        if opts.get("fh") == "800::1" and opts.get("link") == f"{hx(ht)}:" and opts.get("hash_mask") == mask:
            word = {16: "dst", 12: "src"}.get(int(opts.get("hash_off", -1)), "")
            return word if has_table and word else "none"
    return "none"


@dataclass
class DeviceState:
    """Everything read from one shaped device."""

    root: Resource | None = None
    groups: list[Resource] = field(default_factory=list)
    subscribers: list[Resource] = field(default_factory=list)
    classes: dict[str, TcClass] = field(default_factory=dict)


#: What one line of ``tc class show`` text parses to: the class, its major and minor (or ``None``: no class).
ClassLine = tuple[TcClass, int, int] | None
#: What one child qdisc's ``filter show`` JSON parses to: ``flowid -> match`` and the hash link's word.
ChildFilters = tuple[dict[str, str], str]


class ReadMemo:
    """The pieces parsed from one device's previous read, by their exact text.

    The gateway prints the same text for an object that did not change, so a read after a small change parses
    only the lines that differ and reuses every other :class:`Resource`. Each read keeps only what it used: the
    memo never holds more than the objects on the gateway now. Drift is still seen: changed text is a miss.
    """

    def __init__(self) -> None:
        self.classes: dict[str, ClassLine] = {}
        self.filters: dict[str, ChildFilters] = {}
        self.subscribers: dict[tuple[str, str, str, str], Resource] = {}
        self.qdiscs: dict[str, dict[str, Any] | None] = {}


def _qdisc_line(line: str) -> dict[str, Any] | None:
    m = _QDISC.match(line)
    if m is None:
        return None
    if m.group("root"):
        return {"kind": m.group("kind"), "handle": m.group("handle"), "root": True}
    return {"kind": m.group("kind"), "handle": m.group("handle"), "parent": m.group("parent")}


def parse_qdiscs(text: str, memo: ReadMemo | None = None, previous: ReadMemo | None = None) -> list[dict[str, Any]]:
    """Qdiscs from ``tc qdisc show`` text, shaped as ``tc -j qdisc show`` prints them (``kind``, ``handle``,
    ``root`` or ``parent``). Lines found in ``previous`` are not parsed again; ``memo`` records the lines used.
    """
    memo = memo if memo is not None else ReadMemo()
    old = previous.qdiscs if previous is not None else {}
    seen = memo.qdiscs
    out: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line in seen:
            q = seen[line]
        elif line in old:
            q = seen[line] = old[line]
        else:
            q = seen[line] = _qdisc_line(line)
        if q is not None:
            out.append(q)
    return out


def _class_line(line: str) -> ClassLine:
    m = _CLASS.match(line)
    if m is None:
        return None
    quantum = m.group("quantum") or str(QUANTUM)
    cls = TcClass(
        classid=m.group("id"),
        parent=m.group("parent"),
        leaf=m.group("leaf"),
        text=f"rate {m.group('rate')} ceil {m.group('ceil')} quantum {quantum}",
        sent_bytes=0,
    )
    major, minor = parse_handle(cls.classid)
    return cls, major, minor


def _child_filters(filters: Sequence[Mapping[str, Any]]) -> ChildFilters:
    matches: dict[str, str] = {}
    child_ht = hx(CHILD_HT)
    for f in filters:
        opts = f.get("options", {})
        if opts.get("key_ht") == child_ht and "flowid" in opts:
            text = _match_text(opts)
            if text is not None:
                matches[str(opts["flowid"])] = text
    return matches, _hash_word(filters, CHILD_HT, "ff")


def _filter_lines(filter_text: str) -> list[str] | None:
    """The JSON arrays of the filter batch, one line each as iproute2 prints them; ``None`` when not so."""
    lines = [line for line in filter_text.splitlines() if line.strip()]
    if all(line.startswith("[") and line.rstrip().endswith("]") for line in lines):
        return lines
    return None


def is_group_major(major: int) -> bool:
    return GROUP_BASE <= major < GROUP_BASE + (1 << GROUP_BITS)


def device_state(
    direction: Direction,
    dev: str,
    qdiscs: Sequence[Mapping[str, Any]],
    class_text: str,
    filter_text: str,
    *,
    child_parents: Sequence[str] = (),
    memo: ReadMemo | None = None,
    previous: ReadMemo | None = None,
) -> DeviceState:
    """Resources of one device from ``tc -j qdisc show``, ``tc -d class show`` and the filter batch.

    ``filter_text`` holds one JSON array per ``filter show``: the root qdisc's, then one per ``child_parents``.
    With ``previous`` (the memo filled by the last read of this device), lines printed exactly as last time are
    not parsed again; ``memo`` is filled with what this read used.
    """
    state = DeviceState()
    root = next((q for q in qdiscs if q.get("root")), None)
    if root is None or root.get("handle") == "0:":
        return state
    ours = root.get("kind") == "htb" and root.get("handle") == f"{hx(ROOT_MAJOR)}:"
    if not ours:
        state.root = Resource(
            KIND_QDISC, f"{dev}|root", {"kind": str(root.get("kind")), "handle": str(root.get("handle"))}, owned=False
        )
        return state
    memo = memo if memo is not None else ReadMemo()
    old = previous if previous is not None else ReadMemo()
    child_majors = [parse_handle(p)[0] for p in child_parents]
    lines = _filter_lines(filter_text)
    child_filters: dict[int, ChildFilters] = {}
    if lines is not None:
        root_filters: list[Mapping[str, Any]] = one_json(lines[0], []) if lines else []
        for i, major in enumerate(child_majors):
            line = lines[i + 1] if i + 1 < len(lines) else "[]"
            parsed = memo.filters.get(line) or old.filters.get(line)
            if parsed is None:
                parsed = _child_filters(one_json(line, []))
            memo.filters[line] = parsed
            child_filters[major] = parsed
    else:
        arrays = list(json_values(filter_text))
        root_filters = arrays[0] if arrays else []
        for i, major in enumerate(child_majors):
            child_filters[major] = _child_filters(arrays[i + 1] if i + 1 < len(arrays) else [])
    state.root = Resource(
        KIND_QDISC,
        f"{dev}|root",
        {"kind": "htb", "handle": f"{hx(ROOT_MAJOR)}:", "hash": _hash_word(root_filters, ROOT_HT, "ff00")},
    )
    parsed_classes: list[tuple[TcClass, int, int]] = []
    for line in class_text.splitlines():
        if line in memo.classes:
            hit = memo.classes[line]
        elif line in old.classes:
            hit = memo.classes[line] = old.classes[line]
        else:
            hit = memo.classes[line] = _class_line(line)
        if hit is not None:
            parsed_classes.append(hit)
    state.classes = {cls.classid: cls for cls, _, _ in parsed_classes}
    qdisc_kinds: dict[str, str] = {}
    for q in qdiscs:
        qdisc_kinds[str(q.get("parent", ""))] = str(q.get("kind"))
    root_matches: dict[str, str] = {}
    for f in root_filters:
        opts = f.get("options", {})
        if opts.get("key_ht") == hx(ROOT_HT) and "flowid" in opts:
            text = _match_text(opts)
            if text is not None:
                root_matches[str(opts["flowid"])] = text
    no_filters: ChildFilters = ({}, "none")
    for cls, major, minor in parsed_classes:
        if major == ROOT_MAJOR and is_group_major(minor):
            classid = cls.classid
            if cls.leaf == hx(minor):
                qdisc = qdisc_kinds.get(classid, "none")
            else:
                qdisc = "none" if cls.leaf is None else f"other {cls.leaf}:"
            fields = {
                "class": cls.text,
                "qdisc": qdisc,
                "hash": child_filters.get(minor, no_filters)[1],
                "match": root_matches.get(classid, "none"),
            }
            state.groups.append(Resource(KIND_GROUP, f"{direction}|{classid}", fields, ref=classid))
    for cls, major, _ in parsed_classes:
        if not is_group_major(major):
            continue
        classid = cls.classid
        leaf = qdisc_kinds.get(classid, "none")
        match = child_filters.get(major, no_filters)[0].get(classid, "none")
        key = (classid, cls.text, leaf, match)
        sub = memo.subscribers.get(key) or old.subscribers.get(key)
        if sub is None:
            sub = Resource(
                KIND_SUB, f"{direction}|{classid}", {"class": cls.text, "leaf": leaf, "match": match}, ref=classid
            )
        memo.subscribers[key] = sub
        state.subscribers.append(sub)
    return state


def link_resource(ifb: str, links: Sequence[Mapping[str, Any]]) -> Resource | None:
    link = next((item for item in links if item.get("ifname") == ifb), None)
    if link is None:
        return None
    kind = str(link.get("linkinfo", {}).get("info_kind", ""))
    up = "yes" if "UP" in link.get("flags", ()) else "no"
    return Resource(KIND_LINK, ifb, {"kind": kind or "unknown", "up": up}, owned=kind == "ifb")


def ingress_resources(
    devices: Devices, qdiscs: Sequence[Mapping[str, Any]], filters: Sequence[Mapping[str, Any]]
) -> list[Resource]:
    out: list[Resource] = []
    ingress = next((q for q in qdiscs if str(q.get("parent", "")).startswith("ffff:")), None)
    if ingress is None:
        return out
    kind = str(ingress.get("kind"))
    out.append(Resource(KIND_QDISC, f"{devices.interface}|ingress", {"kind": kind}, owned=kind == "ingress"))
    for f in filters:
        opts = f.get("options", {})
        if f.get("pref") != REDIRECT_PREF or opts.get("fh") != "800::1":
            continue
        target = "none"
        match = opts.get("match", {})
        catch_all = str(match.get("mask", "")) == "0"
        for action in opts.get("actions", ()):
            if action.get("kind") == "mirred" and action.get("mirred_action") == "redirect" and catch_all:
                target = str(action.get("to_dev"))
        out.append(Resource(KIND_REDIRECT, devices.interface, {"to": target}))
    return out


def nft_resources(data: Mapping[str, Any]) -> list[Resource]:
    """edgebill's table, subscriber keys and suspended addresses from ``nft -j list table inet edgebill``."""
    items = data.get("nftables", [])
    if not isinstance(items, list):
        raise ReplyError("nft printed JSON without an 'nftables' list")
    table_seen = False
    sets: dict[str, list[Any]] = {}
    chains: dict[str, Mapping[str, Any]] = {}
    rules: dict[str, list[Any]] = {NFT_FORWARD: [], NFT_PREROUTING: []}
    for item in items:
        if "table" in item:
            table_seen = True
        elif "set" in item:
            s = item["set"]
            sets[str(s["name"])] = list(s.get("elem", []))
        elif "chain" in item:
            chains[str(item["chain"]["name"])] = item["chain"]
        elif "rule" in item:
            r = item["rule"]
            rules.setdefault(str(r["chain"]), []).append(r.get("expr", []))
    out: list[Resource] = []
    if not table_seen:
        return out
    overdue = [name for name in sets if not name.startswith(NFT_SUBSCRIBERS)]
    set_name = overdue[0] if len(overdue) == 1 else ",".join(sorted(overdue))
    portal = ""
    for expr in rules.get(NFT_PREROUTING, []):
        for e in expr:
            if isinstance(e, Mapping) and "dnat" in e:
                portal = f"{e['dnat'].get('addr')}:{e['dnat'].get('port')}"
    hooks_ok = (
        chains.get(NFT_FORWARD, {}).get("hook") == "forward"
        and chains.get(NFT_PREROUTING, {}).get("hook") == "prerouting"
    )
    digest = rules_digest(rules) if hooks_ok else "missing"
    out.append(Resource(KIND_TABLE, f"{NFT_FAMILY} {NFT_TABLE}", {"set": set_name, "portal": portal, "rules": digest}))
    out.extend(key_resources(sets))
    suspended: dict[str, str] = {}
    for name in sorted(overdue):
        for elem in sets[name]:
            addr, _ = _element(elem)
            if addr is not None:
                suspended.setdefault(addr, name)
    out.extend(Resource(KIND_SUSPENDED, addr, {"set": name}) for addr, name in suspended.items())
    return out


def key_resources(sets: Mapping[str, Sequence[Any]]) -> list[Resource]:
    """``nft/subscriber`` resources from the elements of the per-/24 key sets among ``sets`` (name -> elements).

    A set named like a key set that is not the one its addresses belong in (an old layout, a hand edit) is not
    ours to read keys from: its elements are not reported.
    """
    out: list[Resource] = []
    mask = (1 << GROUP_BITS) - 1
    for name, elems in sets.items():
        if not name.startswith(NFT_KEY_SET_PREFIX):
            continue
        try:
            major = int(name[len(NFT_KEY_SET_PREFIX) :], 16)
        except ValueError:
            continue
        for elem in elems:
            addr, comment = _element(elem)
            if addr is not None and GROUP_BASE + ((int.from_bytes(socket.inet_aton(addr), "big") >> 8) & mask) == major:
                out.append(Resource(KIND_NFT_SUB, addr, {"key": comment}))
    return out


def nft_sets(data: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Set name -> elements, from ``nft -j list table`` or ``nft -j list set`` output."""
    items = data.get("nftables", [])
    if not isinstance(items, list):
        raise ReplyError("nft printed JSON without an 'nftables' list")
    return {str(item["set"]["name"]): list(item["set"].get("elem", [])) for item in items if "set" in item}


def element_address(elem: Any) -> str | None:
    """The address of one set element as ``nft -j`` prints it, or ``None`` when it is not an IPv4 address."""
    return _element(elem)[0]


def _element(elem: Any) -> tuple[str | None, str]:
    if isinstance(elem, str):
        value, comment = elem, ""
    elif isinstance(elem, Mapping) and "elem" in elem:
        inner = elem["elem"]
        value, comment = str(inner.get("val", "")), str(inner.get("comment", ""))
    else:
        return None, ""
    if _DOTTED.fullmatch(value):
        try:
            # nft prints addresses in canonical dotted form: the common case needs no round trip.
            if socket.inet_ntoa(socket.inet_aton(value)) == value:
                return value, comment
        except OSError:
            return None, ""
    try:
        return str(IPv4Address(value)), comment
    except ValueError:
        return None, ""
