"""The Linux ``tc`` gateway driver: HTB shaping and nftables enforcement over one SSH session.

The driver does the I/O: it runs the scripts of :mod:`drivers.linux.readback` and the batches of
:mod:`drivers.linux.commands` over its :class:`~drivers.linux.ssh.SshSession`, and keeps two caches between calls,
each handed to a pure function and replaced by the one it returns: the :class:`~drivers.linux.readback.GatewayCache`
of its reads and the :class:`~drivers.linux.plan.RenderMemo` of its last plan. Nothing is kept outside the
instance: a :class:`~drivers.pool.RouterPool` keeps the driver, and so its session and caches, for a process.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from ipaddress import IPv4Network
from typing import ClassVar

from drivers.base import ApplyError, CommandError, Driver, ReplyError, RouterParams, ScopeUnavailable
from drivers.linux import plan as gateway_plan
from drivers.linux.commands import Builder, Line
from drivers.linux.layout import Devices, LayoutError
from drivers.linux.parse import sections
from drivers.linux.plan import RenderMemo
from drivers.linux.readback import (
    GatewayCache,
    after_apply,
    counter_samples,
    counter_script,
    gateway_state,
    leaves_script,
    read_script,
    scoped_script,
    scoped_state,
    unseen_leaves,
)
from drivers.linux.scope import Targets
from drivers.linux.ssh import COMPRESSED_SH, Output, SshSession, SshTarget, text_of
from drivers.models import ApplyResult, Change, ChangeSet, CounterSample, Resource, RouterFacts, Scope
from policies.desired import DesiredState

log = logging.getLogger(__name__)

_FAILED = re.compile(r"^Command failed -:(\d+)$")


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
        self._builder = Builder(self.devices)
        #: Guards the session's creation and the replacement of the caches below.
        self._lock = threading.Lock()
        self._cache = GatewayCache()
        self._rendered: RenderMemo | None = None

    # --- session ----------------------------------------------------------------------------------------

    def _session(self) -> SshSession:
        with self._lock:
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
                self._ssh = SshSession(target, sudo=p.username != "root")
            return self._ssh

    def open(self) -> None:
        self._session().open()

    def close(self) -> None:
        if self._ssh is not None:
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

    def read_state(self, scope: Scope | None = None) -> tuple[Resource, ...]:
        """Every entry edgebill manages on the gateway (:func:`drivers.linux.readback.gateway_state`), or with a
        ``scope`` those of its subscribers and their /24s (:func:`drivers.linux.readback.scoped_state`)."""
        if scope is not None:
            return self._scoped_read(scope)
        text = text_of(self._run(COMPRESSED_SH, read_script(self.devices), read=True))
        resources, cache = gateway_state(text, self.devices, self._cache)
        with self._lock:
            self._cache = cache
        return resources

    def _scoped_read(self, scope: Scope) -> tuple[Resource, ...]:
        cache = self._cache
        if cache.keys is None or not cache.address_lists:
            raise ScopeUnavailable(f"{self.name}: the gateway has not been read in full yet")
        targets = Targets.of(scope, cache.keys)
        if not targets.addresses:
            with self._lock:
                self._cache = replace(self._cache, scoped=(scope, targets))
            return ()
        parts = sections(self._run("sh -s", scoped_script(self.devices, targets, cache), read=True).stdout)
        unseen = unseen_leaves(parts, self.devices, targets, cache, self.name)
        leaves = sections(self._run("sh -s", leaves_script(unseen), read=True).stdout) if unseen else {}
        resources, cache = scoped_state(parts, leaves, self.devices, scope, targets, cache, self.name)
        with self._lock:
            self._cache = cache
        return resources

    # --- planning -----------------------------------------------------------------------------------------

    def plan(self, desired: DesiredState, actual: Iterable[Resource], scope: Scope | None = None) -> ChangeSet:
        """Pure: :func:`drivers.linux.plan.plan`, or with a ``scope`` :func:`drivers.linux.plan.scoped_plan` over
        what the scoped read covered. The memo of the render is kept for the next plan: the result is the same
        without it."""
        if scope is not None:
            targets = self._cache.targets(scope, self.name)
            return gateway_plan.scoped_plan(
                desired,
                actual,
                scope,
                targets,
                self.devices,
                self.subnets,
                previous=self._rendered,
                name=self.name,
            )
        changes, rendered = gateway_plan.plan(desired, actual, self.devices, self.subnets, previous=self._rendered)
        self._rendered = rendered
        return changes

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
        with self._lock:
            self._cache = after_apply(self._cache, todo)
        return ApplyResult(todo, ())

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
        """Bytes per subscriber from the HTB class counters (:func:`drivers.linux.readback.counter_samples`)."""
        out = self._run(COMPRESSED_SH, counter_script(self.devices), read=True)
        return counter_samples(text_of(out), self.devices, datetime.now(UTC))

    def disconnect(self, key: str) -> bool:
        """A static gateway has no sessions to drop: always False. New shaping applies to the next packet."""
        return False


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
