"""The one contract every router driver implements, the errors it may raise, and the settings it is given.

A reconcile is a transaction in four steps, each a method here: :meth:`Driver.read_state` (one read per table),
:meth:`Driver.plan` (pure: desired state rendered to native entries and diffed against what was read by
:func:`drivers.diff.diff`; an empty change set means nothing to do), :meth:`Driver.apply` (the writes, in
order), and a second :meth:`Driver.read_state` by the caller to record what was observed. Vendor exceptions never
leave ``drivers``: they are translated into :class:`DriverError` subclasses whose ``retryable`` flag says whether
trying again later can help.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from ipaddress import IPv4Network
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Protocol, Self

from drivers.models import ApplyResult, Change, ChangeSet, CounterSample, Resource, RouterFacts, Scope
from policies.desired import DesiredState

# --- errors -------------------------------------------------------------------------------------------------


class DriverError(Exception):
    """Base of every error a driver raises. ``retryable`` tells whether a later attempt may succeed."""

    retryable: ClassVar[bool] = False


class ConnectError(DriverError):
    """The router could not be reached or the session was lost (refused, reset, unreachable)."""

    retryable = True


class ConnectTimeout(ConnectError):
    """The router did not answer in time."""


class AuthError(DriverError):
    """The router refused our credentials or our host-key check failed: retrying will not help."""


class CommandError(DriverError):
    """The router rejected a command (a RouterOS ``!trap``, a non-zero ``tc`` exit)."""

    def __init__(self, message: str, *, command: str = "") -> None:
        super().__init__(message)
        self.command = command


class ScopeUnavailable(DriverError):
    """The driver cannot read a :class:`Scope` alone right now (it has not read the whole router yet, or what the
    scope hangs from is missing): the caller runs in full instead."""

    retryable = True


class ReplyError(DriverError):
    """The router answered with something we cannot interpret."""


class ApplyError(DriverError):
    """A write failed part-way. ``applied`` were written before ``failed`` went wrong; ``cause`` says why."""

    def __init__(self, applied: Sequence[Change], failed: Change, cause: DriverError) -> None:
        super().__init__(f"{failed.describe()}: {cause}")
        self.applied = tuple(applied)
        self.failed = failed
        self.cause = cause

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return self.cause.retryable


# --- what a driver is given ---------------------------------------------------------------------------------


class RouterParams(Protocol):
    """The connection settings a driver reads (``daemon.config.RouterSettings`` satisfies it)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def tls(self) -> bool: ...
    @property
    def tls_verify(self) -> bool: ...
    @property
    def encoding(self) -> str: ...
    @property
    def timeout(self) -> timedelta: ...
    @property
    def ssh_key_file(self) -> Path | None: ...
    @property
    def known_hosts_file(self) -> Path | None: ...
    @property
    def trust_on_first_use(self) -> bool: ...
    @property
    def interface(self) -> str | None: ...
    @property
    def upload_ifb(self) -> str | None: ...
    @property
    def leaf_qdisc(self) -> str: ...
    @property
    def subnets(self) -> tuple[IPv4Network, ...]: ...

    def password(self) -> str: ...


# --- the contract -------------------------------------------------------------------------------------------


class Driver(Protocol):
    """One router. Use as a context manager: ``with create(params) as router: ...``.

    Drivers subclass this protocol to inherit the context manager (:meth:`open` on entry, :meth:`close` on exit).
    A driver owns its session and whatever it caches between calls (no state outside the instance), and may be
    kept open across runs by a :class:`drivers.pool.RouterPool`: it then reopens a session lost meanwhile on
    next use, and serves calls from several threads at once (the daemon polls counters while a reconcile runs).
    """

    kind: ClassVar[str]

    def open(self) -> None:
        """Connect and authenticate. Raises :class:`ConnectError`, :class:`ConnectTimeout` or :class:`AuthError`."""

    def close(self) -> None:
        """Close the session; safe to call twice."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def facts(self) -> RouterFacts:
        """Identity, software version and uptime."""

    def read_state(self, scope: Scope | None = None) -> tuple[Resource, ...]:
        """Every entry in the tables edgebill manages, ours and others' (``owned`` tells which).

        With a ``scope``, only the entries of those subscribers and what they need (see :class:`Scope`). Raises
        :class:`ScopeUnavailable` when the driver cannot read that narrowly now; the caller then runs in full.
        """

    def plan(self, desired: DesiredState, actual: Iterable[Resource], scope: Scope | None = None) -> ChangeSet:
        """Pure: the writes that turn ``actual`` into ``desired``. No I/O; the same in check mode.

        A driver may keep what a plan rendered to make the next one cheaper (passed to its pure plan function
        and replaced by the one returned), never anything the result depends on.

        With a ``scope``, ``desired`` holds (at least) the scoped subscribers and ``actual`` what
        ``read_state(scope)`` returned: only the scoped subscribers' entries are added, changed or removed, and
        what they need is added; nothing shared is changed or removed.
        """

    def apply(self, changes: ChangeSet) -> ApplyResult:
        """Write ``changes`` in order, then drop the sessions in ``changes.disconnect``.

        Raises :class:`ApplyError` carrying what was written before a failure. Every write is idempotent:
        applying a change set again after a partial failure converges on the same state.
        """

    def counters(self) -> tuple[CounterSample, ...]:
        """Per-subscriber byte counters for every managed subscriber the router is counting now."""

    def disconnect(self, key: str) -> bool:
        """Drop the live session of subscriber ``key``; False when it had none."""
