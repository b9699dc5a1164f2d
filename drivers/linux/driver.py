"""The Linux ``tc`` gateway driver: HTB shaping and nftables enforcement over one SSH session."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network
from typing import Any, ClassVar, Final

import drivers
from drivers.base import ApplyError, CommandError, Driver, ReplyError, RouterParams, ScopeUnavailable, diff
from drivers.linux.commands import Builder, Line
from drivers.linux.layout import (
    KIND_GROUP,
    KIND_LINK,
    KIND_NFT_SUB,
    KIND_QDISC,
    KIND_REDIRECT,
    KIND_SUB,
    KIND_SUSPENDED,
    KIND_TABLE,
    NFT_FAMILY,
    NFT_TABLE,
    ORDER,
    ROOT_MAJOR,
    Devices,
    Direction,
    LayoutError,
    Rendered,
    RenderMemo,
    class_id,
    hx,
    render,
)
from drivers.linux.readback import (
    ReadMemo,
    TcClass,
    class_counters,
    device_state,
    element_address,
    ingress_resources,
    key_resources,
    link_resource,
    nft_resources,
    nft_sets,
    one_json,
    parse_classes,
    parse_qdiscs,
    sections,
)
from drivers.linux.scope import (
    MISSING,
    Targets,
    class_lines,
    elements,
    leaf_script,
    read_script,
    split_tc,
)
from drivers.linux.ssh import COMPRESSED_SH, Output, SshSession, SshTarget, text_of
from drivers.models import (
    Action,
    ApplyResult,
    Change,
    ChangeSet,
    Conflict,
    CounterSample,
    Resource,
    RouterFacts,
    Scope,
    index,
)
from policies.desired import DesiredState

log = logging.getLogger(__name__)

_FAILED = re.compile(r"^Command failed -:(\d+)$")
_EMPTY_NFT: Final = '{"nftables": []}'


@dataclass
class _Memory:
    """What the last read and the last plan for one gateway parsed and rendered, by their exact inputs.

    A read reuses the parsed value of every line the gateway prints exactly as before (:class:`ReadMemo`), a plan
    the resources of every subscriber rendered from the same values (:class:`RenderMemo`): results are the same
    as without them, only cheaper. Each read and plan replaces what it used, so one gateway's state is kept.
    """

    reads: dict[Direction, ReadMemo] = field(default_factory=dict)
    nft: tuple[str, tuple[Resource, ...]] | None = None
    render: RenderMemo | None = None
    #: For scoped reads, from the last full read (and kept up to date by scoped ones): subscriber key by address;
    #: ``None`` until the gateway was read in full once.
    keys: dict[str, str] | None = None
    #: The kind of every qdisc by its handle (no colon), per direction: a class's leaf handle names an object the
    #: kernel never reuses for another qdisc while it exists, so its kind need not be listed again.
    kinds: dict[Direction, dict[str, str]] = field(default_factory=dict)
    #: The qdiscs the last full read listed, per direction, from which ``kinds`` is made when first needed.
    qdiscs: dict[Direction, list[dict[str, Any]]] = field(default_factory=dict)
    #: The address lists (nftables sets) edgebill's table holds.
    address_lists: tuple[str, ...] = ()


#: Per gateway, shared by every driver the process creates for it (the reconcile engine makes one per run).
_MEMORY: dict[tuple[str, str, int, Devices], _Memory] = {}
_MEMORY_LOCK = threading.Lock()
#: Sessions kept open between drivers while :func:`drivers.keep_sessions` is on, by where and how they log in.
_SESSIONS: dict[tuple[SshTarget, bool], SshSession] = {}


def _release_sessions() -> None:
    with _MEMORY_LOCK:
        kept = list(_SESSIONS.values())
        _SESSIONS.clear()
    for session in kept:
        session.close()


drivers.on_release(_release_sessions)


class LinuxTcDriver(Driver):
    """A Linux gateway shaped with ``tc`` (HTB, u32, ifb) and enforced with nftables, driven over SSH.

    Settings read from ``params``: ``host``, ``port``, ``username`` (``root``, or a user whose commands the
    driver runs in a ``sudo -n sh`` shell), ``ssh_key_file`` (or, without one, ``password()``),
    ``known_hosts_file`` and ``trust_on_first_use``, ``timeout``, ``interface`` (download), ``upload_ifb``
    (upload; ``None`` shapes download only), ``leaf_qdisc`` and ``subnets`` (when given, subscribers outside
    them are refused).
    """

    kind: ClassVar[str] = "linux"

    def __init__(self, params: RouterParams) -> None:
        if not params.interface:
            raise LayoutError(f"router {params.name!r}: a linux gateway needs 'interface' (the subscriber side)")
        self.name = params.name
        self.devices = Devices(params.interface, params.upload_ifb, params.leaf_qdisc)
        self.subnets: tuple[IPv4Network, ...] = tuple(params.subnets)
        self._params = params
        self._ssh: SshSession | None = None
        self._shared = False
        self._builder = Builder(self.devices)
        self._targets: tuple[Scope, Targets] | None = None
        with _MEMORY_LOCK:
            self._memory = _MEMORY.setdefault((params.name, params.host, params.port, self.devices), _Memory())

    # --- session ----------------------------------------------------------------------------------------

    def _session(self) -> SshSession:
        if self._ssh is None:
            p = self._params
            key_file = p.ssh_key_file
            target = SshTarget(
                host=p.host,
                port=p.port,
                username=p.username,
                timeout=p.timeout.total_seconds(),
                key_file=key_file,
                password=None if key_file is not None else p.password(),
                known_hosts=p.known_hosts_file,
                trust_on_first_use=p.trust_on_first_use,
            )
            sudo = p.username != "root"
            if drivers.sessions_kept():
                # One persistent session per gateway: the next run finds it open (or reopens it once lost).
                with _MEMORY_LOCK:
                    self._ssh = _SESSIONS.setdefault((target, sudo), SshSession(target, sudo=sudo))
                self._shared = True
            else:
                self._ssh = SshSession(target, sudo=sudo)
        return self._ssh

    def open(self) -> None:
        self._session().open()

    def close(self) -> None:
        if self._ssh is not None and not self._shared:
            self._ssh.close()

    def _run(self, argv: str, stdin: str = "", *, check: bool = True, read: bool = False) -> Output:
        return self._session().run(argv, stdin.encode(), check=check, idempotent=read)

    # --- facts ------------------------------------------------------------------------------------------

    def facts(self) -> RouterFacts:
        """``identity`` is the gateway's host name, ``version`` its kernel and iproute2, ``uptime_seconds``."""
        out = self._run(
            "sh -s", "uname -n\nuname -r\ncut -d' ' -f1 /proc/uptime\ntc -V\n", read=True
        ).stdout.splitlines()
        if len(out) < 3:
            raise ReplyError(f"unexpected facts from {self.name}: {out!r}")
        try:
            uptime = int(float(out[2]))
        except ValueError:
            raise ReplyError(f"unreadable uptime {out[2]!r} from {self.name}") from None
        tc = out[3].strip() if len(out) > 3 else ""
        return RouterFacts(
            identity=out[0].strip(),
            version=f"Linux {out[1].strip()}; {tc}".strip("; "),
            uptime_seconds=uptime,
            model="Linux tc gateway",
        )

    # --- reading ----------------------------------------------------------------------------------------

    def _read_script(self) -> str:
        d = self.devices
        parts: list[tuple[str, str]] = [("boot", "cat /proc/sys/kernel/random/boot_id")]
        if d.ifb is not None:
            parts += [
                ("link", f"ip -j -d link show dev {d.ifb} 2>/dev/null || echo '[]'"),
                ("ingress", f"tc -j filter show dev {d.interface} parent ffff: 2>/dev/null || echo '[]'"),
            ]
        for direction, dev in d.directions():
            # One qdisc dump serves twice: as the section itself and for the child qdiscs whose filters to read.
            parts += [
                (f"class {direction}", f"tc -d class show dev {dev} 2>/dev/null"),
                (
                    f"qdisc {direction}",
                    f"Q=$(tc qdisc show dev {dev} 2>/dev/null); printf '%s\\n' \"$Q\"; echo '@@filter {direction}'; "
                    f'P=$(printf \'%s\\n\' "$Q" | awk \'$2 == "htb" && $4 == "parent" && '
                    f'index($5, "eb:") == 1 {{ print $3 }}\'); echo $P; '
                    f"{{ echo 'filter show dev {dev} parent eb:'; "
                    f'for p in $P; do echo "filter show dev {dev} parent $p"; done; }} | tc -j -batch - 2>/dev/null',
                ),
            ]
        parts.append(("nft", f"nft -j list table {NFT_FAMILY} {NFT_TABLE} 2>/dev/null || echo '{_EMPTY_NFT}'"))
        return parallel_script(parts)

    def read_state(self, scope: Scope | None = None) -> tuple[Resource, ...]:
        """Every entry edgebill manages on the gateway, normalised as :func:`drivers.linux.layout.render` does.

        Kinds: ``link/ifb`` (the upload device), ``tc/qdisc`` (``DEV|root``, ``IFACE|ingress``), ``tc/redirect``,
        ``tc/group`` (``DIR|eb:G``: one per /24 and direction), ``tc/subscriber`` (``DIR|G:M``), ``nft/table``,
        ``nft/subscriber`` (address -> subscriber key) and ``nft/suspended`` (address). A root qdisc that
        edgebill did not create is returned with ``owned=False`` and nothing below it is read.
        """
        if scope is not None:
            return self._scoped_read(scope)
        return self._resources(text_of(self._run(COMPRESSED_SH, self._read_script(), read=True)))

    def _scoped_read(self, scope: Scope) -> tuple[Resource, ...]:
        """The entries of ``scope``'s subscribers and of their /24s (:mod:`drivers.linux.scope`)."""
        memory = self._memory
        if memory.keys is None or not memory.address_lists:
            raise ScopeUnavailable(f"{self.name}: the gateway has not been read in full yet")
        targets = Targets.of(scope, memory.keys)
        self._targets = (scope, targets)
        if not targets.addresses:
            return ()
        script = read_script(self.devices, targets, memory.address_lists)
        parts = sections(self._run("sh -s", parallel_script(script), read=True).stdout)
        groups = sorted(targets.groups)
        texts: dict[Direction, str] = {}
        filter_texts: dict[Direction, str] = {}
        classes: dict[Direction, list[TcClass]] = {}
        unseen: list[tuple[Direction, str, str]] = []
        for direction, dev in self.devices.directions():
            class_text, filter_texts[direction] = split_tc(parts.get(f"tc {direction}", ""), groups)
            texts[direction], has_groups = class_lines(class_text, targets)
            if not has_groups:
                raise ScopeUnavailable(f"{self.name}: {dev} has no edgebill tree to add to")
            kinds = memory.kinds.get(direction)
            if kinds is None:  # built on the first scoped read after a full one, from the qdiscs it listed
                listed = memory.qdiscs.get(direction, [])
                kinds = memory.kinds[direction] = {
                    str(q["handle"]).rstrip(":"): str(q["kind"]) for q in listed if "parent" in q
                }
            classes[direction] = list(parse_classes(texts[direction]).values())
            unseen += [
                (direction, dev, cls.classid)
                for cls in classes[direction]
                if cls.leaf is not None and cls.leaf not in kinds
            ]
        if unseen:
            leaves = sections(self._run("sh -s", parallel_script(leaf_script(unseen)), read=True).stdout)
            for direction, _, cid in unseen:
                for q in parse_qdiscs(leaves.get(f"leaf {direction} {cid}", "")):
                    memory.kinds[direction][str(q["handle"]).rstrip(":")] = str(q["kind"])
        resources: list[Resource] = []
        for direction, dev in self.devices.directions():
            kinds = memory.kinds.get(direction, {})
            qdiscs: list[dict[str, Any]] = [{"kind": "htb", "handle": f"{hx(ROOT_MAJOR)}:", "root": True}]
            for cls in classes[direction]:
                if cls.leaf is not None and cls.leaf in kinds:
                    qdiscs.append({"kind": kinds[cls.leaf], "handle": f"{cls.leaf}:", "parent": cls.classid})
            state = device_state(
                direction,
                dev,
                qdiscs,
                texts[direction],
                filter_texts[direction],
                child_parents=[f"{hx(g)}:" for g in groups],
            )
            resources += targets.select([*state.groups, *state.subscribers])
        keys: list[Resource] = []
        for g in groups:
            text = parts.get(f"keys {hx(g)}", "")
            if text.strip() != MISSING:
                keys += key_resources(elements(one_json(text, {}), targets.addresses))
        suspended: dict[str, str] = {}
        for name in sorted(memory.address_lists):
            text = parts.get(f"list {name}", "")
            if text.strip() == MISSING:
                raise ScopeUnavailable(f"{self.name}: address list {name!r} is missing")
            for elems in elements(one_json(text, {}), targets.addresses).values():
                for addr in (element_address(e) for e in elems):
                    if addr is not None:
                        suspended.setdefault(addr, name)
        for addr in targets.addresses:
            memory.keys.pop(addr, None)
        memory.keys.update((r.key, r.fields["key"]) for r in keys)
        resources += keys
        resources += [Resource(KIND_SUSPENDED, addr, {"set": name}) for addr, name in suspended.items()]
        return tuple(resources)

    def _resources(self, text: str) -> tuple[Resource, ...]:
        """The resources in the output of :meth:`_read_script`."""
        parts = sections(text)
        memory = self._memory
        resources: list[Resource] = []
        d = self.devices
        if d.ifb is not None:
            link = link_resource(d.ifb, one_json(parts.get("link", ""), []))
            if link is not None:
                resources.append(link)
        memos: dict[Direction, ReadMemo] = {}
        qdiscs_of: dict[Direction, list[dict[str, Any]]] = {}
        for direction, dev in d.directions():
            memos[direction] = ReadMemo()
            qdiscs = parse_qdiscs(parts.get(f"qdisc {direction}", ""), memos[direction], memory.reads.get(direction))
            qdiscs_of[direction] = qdiscs
            filter_part = parts.get(f"filter {direction}", "")
            _, _, filter_json = filter_part.partition("\n")
            parents = filter_part.partition("\n")[0].split()
            state = device_state(
                direction,
                dev,
                qdiscs,
                parts.get(f"class {direction}", ""),
                filter_json,
                child_parents=parents,
                memo=memos[direction],
                previous=memory.reads.get(direction),
            )
            if direction == "down" and d.ifb is not None:
                resources += ingress_resources(d, qdiscs, one_json(parts.get("ingress", ""), []))
            if state.root is not None:
                resources.append(state.root)
            resources += state.groups
            resources += state.subscribers
        nft_text = parts.get("nft", "")
        if memory.nft is not None and memory.nft[0] == nft_text:
            nft = memory.nft[1]
        else:
            nft = tuple(nft_resources(one_json(nft_text, {"nftables": []})))
        resources += nft
        memory.reads, memory.nft = memos, (nft_text, nft)
        memory.keys = {r.key: r.fields["key"] for r in nft if r.kind == KIND_NFT_SUB}
        table = next((r for r in nft if r.kind == KIND_TABLE), None)
        memory.address_lists = tuple(n for n in table.fields["set"].split(",") if n) if table is not None else ()
        memory.kinds, memory.qdiscs = {}, qdiscs_of
        return tuple(resources)

    # --- planning -----------------------------------------------------------------------------------------

    def plan(self, desired: DesiredState, actual: Iterable[Resource], scope: Scope | None = None) -> ChangeSet:
        """Pure: the writes that bring the gateway to ``desired`` (with a ``scope``: :meth:`_scoped_plan`).

        Subscribers that cannot be shaped (no address, outside ``subnets``, a duplicate address, a /24 whose
        handles another /24 already takes) are reported as conflicts and left out. A device whose root qdisc,
        ingress qdisc or ifb link edgebill does not own is reported and not written at all. Raises
        :class:`LayoutError` when the state would cross the kernel's limits. Subscribers rendered from the same
        values as in the last plan for this gateway reuse those resources: the result is the same either way.
        """
        actual = tuple(actual)
        if scope is not None:
            return self._scoped_plan(desired, actual, scope)
        memo = RenderMemo()
        rendered = render(desired, self.devices, self.subnets, memo=memo, previous=self._memory.render)
        self._memory.render = memo
        changes, conflicts = diff(rendered.resources, actual, order=ORDER)
        return self._finish(rendered, actual, changes, conflicts)

    def _scoped_plan(self, desired: DesiredState, actual: Sequence[Resource], scope: Scope) -> ChangeSet:
        """The writes for ``scope``'s subscribers alone; their /24 is created when missing and never changed or
        removed here (a /24 that differs from what it should be is :class:`ScopeUnavailable`: a full run)."""
        keys = self._memory.keys
        if keys is None:
            raise ScopeUnavailable(f"{self.name}: the gateway has not been read in full yet")
        # The addresses the scope's keys held when it was read: one the read found gone is still cleared.
        read = self._targets
        targets = read[1] if read is not None and read[0] == scope else Targets.of(scope, keys)
        rendered = render(desired, self.devices, self.subnets, previous=self._memory.render)
        rendered = replace(
            rendered,
            resources=tuple(targets.select(rendered.resources)),
            conflicts=tuple(c for c in rendered.conflicts if c.kind == KIND_SUB and c.key in scope.keys),
        )
        changes, conflicts = diff(rendered.resources, targets.select(actual), order=ORDER)
        kept: list[Change] = []
        for c in changes:
            if c.kind == KIND_GROUP and c.action is Action.CHANGE:
                raise ScopeUnavailable(f"{self.name}: group {c.key} differs from its layout; a full run repairs it")
            if c.kind == KIND_GROUP and c.action is Action.REMOVE:
                continue  # another subscriber may still be in it: a full run removes groups left empty
            kept.append(c)
        return self._finish(rendered, actual, tuple(kept), conflicts)

    def _finish(
        self,
        rendered: Rendered,
        actual: Sequence[Resource],
        changes: Sequence[Change],
        conflicts: Sequence[Conflict],
    ) -> ChangeSet:
        """The change set: devices edgebill does not own left out, a new leaf kind as a new class, the nftables
        table written whole."""
        blocked = self._blocked(conflicts)
        want: dict[tuple[str, str], Resource] = {}
        have: dict[tuple[str, str], Resource] = {}
        if any(c.action is Action.CHANGE and (c.kind == KIND_TABLE or "leaf" in c.fields) for c in changes):
            want, have = index(rendered.resources), index(actual)
        out: list[Change] = []
        for c in changes:
            if self._direction_of(c) in blocked:
                continue
            if c.action is Action.CHANGE and c.kind == KIND_SUB and "leaf" in c.fields:
                # A new leaf kind means a new class: its counters restart, and the epoch says so.
                old = have[(c.kind, c.key)]
                out.append(Change(Action.REMOVE, c.kind, c.key, {}, before=dict(old.fields), ref=old.ref))
                out.append(Change(Action.ADD, c.kind, c.key, dict(want[(c.kind, c.key)].fields)))
                continue
            if c.action is Action.CHANGE and c.kind == KIND_TABLE:
                full = want[(c.kind, c.key)]
                before = have[(c.kind, c.key)]
                c = replace(c, fields=dict(full.fields), before=dict(before.fields))
            out.append(c)
        return ChangeSet(tuple(out), (*rendered.conflicts, *conflicts), ())

    def _blocked(self, conflicts: Sequence[Conflict]) -> set[Direction]:
        blocked: set[Direction] = set()
        for c in conflicts:
            if c.kind == KIND_QDISC:
                dev = c.key.partition("|")[0]
                if c.key.endswith("|ingress") or dev == self.devices.ifb:
                    blocked.add("up")
                else:
                    blocked.add("down")
            elif c.kind == KIND_LINK:
                blocked.add("up")
        return blocked

    def _direction_of(self, c: Change) -> Direction | None:
        if c.kind in (KIND_GROUP, KIND_SUB):
            return "down" if c.key.startswith("down|") else "up"
        if c.kind in (KIND_LINK, KIND_REDIRECT):
            return "up"
        if c.kind == KIND_QDISC:
            dev = c.key.partition("|")[0]
            return "up" if c.key.endswith("|ingress") or dev == self.devices.ifb else "down"
        return None

    # --- writing ------------------------------------------------------------------------------------------

    def apply(self, changes: ChangeSet) -> ApplyResult:
        """Write ``changes``: one ``ip -batch``, one ``tc -batch`` and one atomic nftables transaction.

        ``tc`` runs with ``-force`` so that every line is tried: lines that find their work already done (a
        hash table that exists, a class already gone) count as success, so applying the same change set again
        converges. The first change with a real failure is reported in :class:`ApplyError`, with every change
        that was fully written in ``applied``.
        """
        todo = changes.changes
        if not todo:
            return ApplyResult((), ())
        script = self._builder.build(todo)
        failed: dict[int, str] = {}
        if script.ip:
            failed.update(self._batch("ip -force -batch -", script.ip))
            if failed:
                self._raise(todo, failed, set())
        if script.tc:
            failed.update(self._batch("tc -force -batch -", script.tc))
            if failed:
                self._raise(todo, failed, set(script.nft_changes))
        if script.nft:
            payload = json.dumps({"nftables": script.nft}, separators=(",", ":"))
            out = self._run("nft -j -f -", payload, check=False)
            if out.status != 0:
                reason = _first_line(out.stderr) or f"exit status {out.status}"
                first = min(script.nft_changes)
                failed[first] = f"nft: {reason}"
                self._raise(todo, failed, set(script.nft_changes))
        log.info("%s: applied %d changes", self.name, len(todo))
        self._remember(todo)
        return ApplyResult(todo, ())

    def _remember(self, written: Sequence[Change]) -> None:
        """Keep what scoped reads rely on in step with what was just written: keys and the address list."""
        memory = self._memory
        for c in written:
            if c.kind == KIND_NFT_SUB and memory.keys is not None:
                if c.action is Action.REMOVE:
                    memory.keys.pop(c.key, None)
                elif "key" in c.fields:
                    memory.keys[c.key] = c.fields["key"]
            elif c.kind == KIND_TABLE:
                memory.address_lists = () if c.action is Action.REMOVE else (str(c.fields["set"]),)

    def _batch(self, argv: str, lines: Sequence[Line]) -> dict[int, str]:
        """Run ``lines`` through ``argv``; the changes whose lines really failed, with the kernel's reason."""
        text = "".join(line.text + "\n" for line in lines)
        out = self._run(argv, text, check=False)
        if out.status == 0:
            return {}
        failed: dict[int, str] = {}
        message: list[str] = []
        seen_failure = False
        for raw in out.stderr.splitlines():
            m = _FAILED.match(raw.strip())
            if m is None:
                if raw.strip() and raw.strip() != "We have an error talking to the kernel":
                    message.append(raw.strip())
                continue
            seen_failure = True
            n = int(m.group(1)) - 1
            reason = "; ".join(message) or "failed"
            message = []
            if not 0 <= n < len(lines):
                continue
            line = lines[n]
            if any(t in reason for t in line.tolerate):
                continue
            failed.setdefault(line.change, f"{line.text.split(' dev ')[0]}: {reason}")
        if not seen_failure:
            raise CommandError(f"{argv.split()[0]} failed on {self.name}: {_first_line(out.stderr)}", command=argv)
        return failed

    def _raise(self, todo: Sequence[Change], failed: dict[int, str], not_run: set[int]) -> None:
        first = min(failed)
        applied = [c for i, c in enumerate(todo) if i not in failed and i not in not_run]
        cause = CommandError(failed[first])
        raise ApplyError(applied, todo[first], cause)

    # --- counters -----------------------------------------------------------------------------------------

    def counters(self) -> tuple[CounterSample, ...]:
        """Bytes per subscriber from the HTB class counters: ``bytes_out`` downloaded, ``bytes_in`` uploaded.

        Subscribers are named by the keys recorded in the gateway's ``subscribers`` set. ``epoch`` combines the
        gateway's boot id, the device's ifindex and the kernel-assigned leaf handle of each class, all of which
        change when the class or the device is recreated.
        """
        d = self.devices
        reads: list[tuple[str, str]] = [("boot", "cat /proc/sys/kernel/random/boot_id")]
        for direction, dev in d.directions():
            reads += [
                (f"index {direction}", f"cat /sys/class/net/{dev}/ifindex 2>/dev/null"),
                (f"class {direction}", f"tc -s class show dev {dev} 2>/dev/null | grep -E '^class|^ Sent'"),
            ]
        reads.append(("nft", f"nft -j list table {NFT_FAMILY} {NFT_TABLE} 2>/dev/null || echo '{_EMPTY_NFT}'"))
        out = self._run(COMPRESSED_SH, parallel_script(reads), read=True)
        taken = datetime.now(UTC)
        parts = sections(text_of(out))
        boot = parts.get("boot", "").strip()[:8]
        classes = {direction: class_counters(parts.get(f"class {direction}", "")) for direction, _ in d.directions()}
        ifindex = {direction: parts.get(f"index {direction}", "").strip() for direction, _ in d.directions()}
        keys = {r.key: r.fields["key"] for r in key_resources(nft_sets(one_json(parts.get("nft", ""), {})))}
        samples: list[CounterSample] = []
        for addr_text, key in sorted(keys.items(), key=lambda kv: kv[1]):
            try:
                cid = class_id(IPv4Address(int.from_bytes(socket.inet_aton(addr_text), "big")))
            except OSError:
                continue
            down = classes.get("down", {}).get(cid)
            if down is None or not key:
                continue
            up = classes.get("up", {}).get(cid)
            epoch = f"{boot}.{ifindex.get('down', '')}.{down[0] or '-'}"
            if d.ifb is not None:
                epoch += f".{ifindex.get('up', '')}.{up[0] if up and up[0] else '-'}"
            samples.append(
                CounterSample(
                    key=key,
                    bytes_in=up[1] if up else 0,
                    bytes_out=down[1],
                    epoch=epoch,
                    taken_at=taken,
                )
            )
        return tuple(samples)

    def disconnect(self, key: str) -> bool:
        """A static gateway has no sessions to drop: always False. New shaping applies to the next packet."""
        return False


def parallel_script(parts: Sequence[tuple[str, str]]) -> str:
    """A shell script running each ``(section, command)`` at once, then printing them in order after ``@@section``.

    The commands read a busy gateway's tables concurrently; their output is kept in a private folder meanwhile.
    """
    lines = ["d=$(mktemp -d) || exit 1", "trap 'rm -rf \"$d\"' EXIT"]
    lines += [f'( {command} ) > "$d/{i}" &' for i, (_, command) in enumerate(parts)]
    lines.append("wait")
    for i, (name, _) in enumerate(parts):
        lines += [f"echo '@@{name}'", f'cat "$d/{i}"']
    return "\n".join(lines) + "\n"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
