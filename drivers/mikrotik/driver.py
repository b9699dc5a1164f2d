"""The MikroTik RouterOS driver: the :class:`drivers.base.Driver` contract over the RouterOS API (librouteros).

One API session per driver, plain (8728) or API-SSL (8729), kept across runs while a
:class:`~drivers.pool.RouterPool` keeps the driver; commands from several threads take turns on it. Reads are one
``print`` per menu with a ``.proplist`` (a scoped read adds a query naming the scoped subscribers' entries); a read
that finds the connection dropped reconnects once and is repeated. Writes are never repeated behind the caller's
back: a failed write raises :class:`~drivers.base.ApplyError` with what was written before it, and the next
reconcile reads the router again and plans from what is there.

Every librouteros and socket exception is translated here: ``!trap`` -> :class:`CommandError`, a refused login
or certificate -> :class:`AuthError`, a timeout -> :class:`ConnectTimeout`, a closed or reset connection ->
:class:`ConnectError`, a reply we cannot parse -> :class:`ReplyError`.
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import ClassVar, cast

import librouteros
from librouteros.api import Api
from librouteros.exceptions import ConnectionClosed, FatalError, LibRouterosError, MultiTrapError, TrapError

from drivers.base import (
    ApplyError,
    AuthError,
    CommandError,
    ConnectError,
    ConnectTimeout,
    Driver,
    DriverError,
    ReplyError,
    RouterParams,
)
from drivers.mikrotik import plan as routeros_plan
from drivers.mikrotik.menus import (
    ADDRESS_LIST,
    KINDS,
    MENU_FIELDS,
    PROFILE,
    QUEUE,
    SECRET,
    UNSETTABLE,
    dedupe,
    is_owned,
    normalise_duration,
    resource_of_row,
    subscriber_address,
    text_of,
)
from drivers.models import Action, ApplyResult, Change, ChangeSet, CounterSample, Resource, RouterFacts, Scope
from policies.desired import DesiredState

__all__ = ["MikrotikDriver", "tls_context"]

log = logging.getLogger(__name__)

Row = dict[str, object]

#: The most names or addresses one scoped ``print`` asks for; a larger scope is read in several prints.
QUERY_BATCH = 100


class _RedactSecrets(logging.Filter):
    """librouteros logs every API word at DEBUG, passwords included: blank them out."""

    # One word per record (``<--- '=password=...'``): everything after the name is the secret and its quote.
    _WORD = re.compile(r"(=password=).*", re.DOTALL)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "=password=" in record.msg:
            record.msg = self._WORD.sub(r"\1(secret)", record.msg)
        return True


_librouteros_log = logging.getLogger("librouteros")
if not any(isinstance(f, _RedactSecrets) for f in _librouteros_log.filters):
    _librouteros_log.addFilter(_RedactSecrets())


class _BufferedSocket:
    """A socket whose ``recv`` reads ahead: librouteros asks for each word in 2-3 tiny reads."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def recv(self, size: int) -> bytes:
        if not self._buffer:
            chunk = self._sock.recv(max(size, 65536))
            if not chunk:
                return b""
            self._buffer += chunk
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data)

    def close(self) -> None:
        self._sock.close()


def tls_context(verify: bool) -> ssl.SSLContext:
    """The TLS settings for API-SSL.

    With ``verify`` the router's certificate must chain to a trusted authority and name the configured host.
    Without it any certificate is accepted, and so are the anonymous Diffie-Hellman ciphers a router without a
    certificate offers (``ADH``, TLS 1.2 only, which OpenSSL allows only at security level 0).
    """
    if verify:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_ciphers("DEFAULT:ADH:@SECLEVEL=0")
    return ctx


def _words(fields: Mapping[str, str]) -> list[str]:
    return [f"={name}={value}" for name, value in fields.items()]


class MikrotikDriver(Driver):
    """A RouterOS router over its API. Use as a context manager: ``with MikrotikDriver(params) as r: ...``."""

    kind: ClassVar[str] = "mikrotik"

    def __init__(self, params: RouterParams) -> None:
        self._params = params
        try:
            self._encoding = codecs.lookup(params.encoding).name
        except LookupError:
            raise ValueError(f"router {params.name}: unknown encoding {params.encoding!r}") from None
        self._api: Api | None = None
        self._opened = False
        #: One command at a time on the one API connection, whichever thread sends it (see :meth:`_run`).
        self._lock = threading.RLock()

    # --- session ---------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._params.name

    @property
    def encoding(self) -> str:
        return self._encoding

    def open(self) -> None:
        with self._lock:
            self._drop()
            self._opened = True
            self._connect()

    def close(self) -> None:
        with self._lock:
            self._opened = False
            self._drop()

    def _where(self) -> str:
        p = self._params
        return f"router {p.name} ({p.host}:{p.port})"

    def _connect(self) -> Api:
        p = self._params
        try:
            password = p.password()
        except Exception as exc:  # a ConfigError or OSError from reading the password file
            raise AuthError(f"{self._where()}: cannot read the API password: {exc}") from None
        wrapper: Callable[[socket.socket], socket.socket]
        if p.tls:
            ctx = tls_context(p.tls_verify)

            def wrapper(sock: socket.socket) -> socket.socket:
                wrapped = ctx.wrap_socket(sock, server_hostname=p.host)
                return cast(socket.socket, _BufferedSocket(wrapped))

        else:

            def wrapper(sock: socket.socket) -> socket.socket:
                return cast(socket.socket, _BufferedSocket(sock))

        try:
            api = librouteros.connect(
                p.host,
                p.username,
                password,
                port=p.port,
                timeout=p.timeout.total_seconds(),
                encoding=self._encoding,
                ssl_wrapper=wrapper,
            )
        except (TrapError, MultiTrapError) as exc:
            raise AuthError(f"{self._where()}: login refused for user {p.username!r}: {exc}") from None
        except ssl.SSLCertVerificationError as exc:
            raise AuthError(f"{self._where()}: certificate not trusted: {exc.verify_message}") from None
        except TimeoutError:
            raise ConnectTimeout(f"{self._where()}: no answer within {p.timeout.total_seconds():g}s") from None
        except ssl.SSLError as exc:
            raise ConnectError(f"{self._where()}: TLS handshake failed: {exc.reason or exc}") from None
        except (ConnectionClosed, FatalError) as exc:
            raise ConnectError(f"{self._where()}: connection closed during login: {exc}") from None
        except OSError as exc:
            raise ConnectError(f"{self._where()}: {exc.strerror or exc}") from None
        except LibRouterosError as exc:
            raise ReplyError(f"{self._where()}: unexpected reply during login: {exc}") from None
        self._api = api
        log.debug("connected to %s", self._where())
        return api

    def _drop(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            with contextlib.suppress(OSError):
                api.close()

    def _session(self) -> Api:
        if self._api is not None:
            return self._api
        if not self._opened:
            raise ConnectError(f"{self._where()}: the driver is not open")
        return self._connect()

    # --- commands --------------------------------------------------------------------------------------------

    def _run(self, command: str, words: Iterable[str] = ()) -> list[Row]:
        """Send one command and read its whole reply, translating every failure.

        Commands from several threads (a poll while a reconcile runs) take turns on the one connection.
        """
        with self._lock:
            return self._command(command, words)

    def _command(self, command: str, words: Iterable[str]) -> list[Row]:
        api = self._session()
        try:
            return [dict(row) for row in api.rawCmd(command, *words)]
        except TrapError as exc:
            raise CommandError(f"{self._where()}: {command}: {exc.message}", command=command) from None
        except MultiTrapError as exc:
            raise CommandError(f"{self._where()}: {command}: {exc}", command=command) from None
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start : exc.end] if isinstance(exc.object, str) else ""
            raise CommandError(
                f"{self._where()}: {command}: {bad!r} cannot be written in the router's {self._encoding} encoding",
                command=command,
            ) from None
        except TimeoutError:
            self._drop()
            raise ConnectTimeout(
                f"{self._where()}: {command}: no answer within {self._params.timeout.total_seconds():g}s"
            ) from None
        except (ConnectionClosed, FatalError) as exc:
            self._drop()
            raise ConnectError(f"{self._where()}: {command}: connection lost: {exc}") from None
        except OSError as exc:
            self._drop()
            raise ConnectError(f"{self._where()}: {command}: {exc.strerror or exc}") from None
        except (LibRouterosError, ValueError, KeyError) as exc:
            self._drop()
            raise ReplyError(f"{self._where()}: {command}: unexpected reply: {exc}") from None

    def _read(self, command: str, words: Iterable[str] = ()) -> list[Row]:
        """A read: on a dropped connection (not a timeout) reconnect once and ask again."""
        words = list(words)
        try:
            return self._run(command, words)
        except ConnectTimeout:
            raise
        except ConnectError as exc:
            log.warning("%s; reconnecting once", exc)
        return self._run(command, words)

    def _print(self, path: str, props: Iterable[str], query: Iterable[str] = ()) -> list[Row]:
        return self._read(f"{path}/print", [f"=.proplist={','.join(props)}", *query])

    # --- contract ----------------------------------------------------------------------------------------------

    def facts(self) -> RouterFacts:
        identity = self._read("/system/identity/print")
        resource = self._read("/system/resource/print")
        if not identity or not resource:
            raise ReplyError(f"{self._where()}: /system/identity or /system/resource printed nothing")
        res = resource[0]
        uptime = normalise_duration(text_of(res.get("uptime", "0s")))
        try:
            seconds = int(uptime.removesuffix("s"))
        except ValueError:
            raise ReplyError(f"{self._where()}: cannot read the uptime {uptime!r}") from None
        return RouterFacts(
            identity=text_of(identity[0].get("name", "")),
            version=text_of(res.get("version", "")),
            uptime_seconds=seconds,
            model=text_of(res.get("board-name", "")),
        )

    def read_state(self, scope: Scope | None = None) -> tuple[Resource, ...]:
        """Every entry of ``/ppp/profile``, ``/ppp/secret``, ``/queue/simple`` and the address list.

        With a ``scope``: the whole ``/ppp/profile`` menu (it holds a few entries per plan), the secrets and
        queues named by the scoped keys, and the address-list entries at the scope's addresses and at the
        addresses those secrets and queues hold (where a terminated subscriber's entry still is). Each of these
        is one ``print`` with a query per :data:`QUERY_BATCH` names or addresses.

        Entries are normalised (:func:`drivers.mikrotik.menus.resource_of_row`); dynamic and built-in entries and
        entries without the owner mark are ``owned=False``, the same in a scoped read as in a full one.
        """
        if scope is None:
            return dedupe(entry for kind in KINDS for entry in self._read_kind(kind))
        found = self._read_kind(PROFILE)
        keys = sorted(key for key in scope.keys if self._encodable(key))
        for kind in (SECRET, QUEUE):
            found += self._read_kind(kind, "name", keys)
        addresses = {str(a) for a in scope.addresses}
        addresses.update(a for r in found if r.kind in (SECRET, QUEUE) and (a := subscriber_address(r)))
        found += self._read_kind(ADDRESS_LIST, "address", sorted(addresses))
        return dedupe(found)

    def _read_kind(self, kind: str, prop: str = "", values: Sequence[str] | None = None) -> list[Resource]:
        """The entries of ``kind`` whose ``prop`` is one of ``values`` (every entry when ``values`` is None)."""
        props = (".id", *MENU_FIELDS[kind])
        if values is None:
            return [resource_of_row(kind, row) for row in self._print(f"/{kind}", props)]
        out: list[Resource] = []
        for start in range(0, len(values), QUERY_BATCH):
            batch = values[start : start + QUERY_BATCH]
            # ``?=prop=a ?=prop=b ?#| ?=prop=c ?#|``: each ``|`` folds the next value into one "any of".
            query = [f"?={prop}={batch[0]}"]
            for value in batch[1:]:
                query += [f"?={prop}={value}", "?#|"]
            out.extend(resource_of_row(kind, row) for row in self._print(f"/{kind}", props, query))
        return out

    def _encodable(self, name: str) -> bool:
        """Whether ``name`` can be sent to the router (one that cannot is on no router: render refuses it)."""
        try:
            name.encode(self._encoding)
        except UnicodeEncodeError:
            return False
        return True

    def plan(self, desired: DesiredState, actual: Iterable[Resource], scope: Scope | None = None) -> ChangeSet:
        """Pure: :func:`drivers.mikrotik.plan.plan` in the router's encoding."""
        return routeros_plan.plan(desired, actual, encoding=self._encoding, scope=scope)

    def apply(self, changes: ChangeSet) -> ApplyResult:
        applied: list[Change] = []
        for change in changes.changes:
            try:
                self._write(change)
            except DriverError as exc:
                raise ApplyError(applied, change, exc) from exc
            log.info("%s: %s", self._params.name, change.describe())
            applied.append(change)
        disconnected: list[str] = []
        if changes.disconnect:
            try:
                sessions = self._active_sessions()
            except DriverError as exc:
                raise ApplyError(applied, Change(Action.REMOVE, "ppp/active", changes.disconnect[0], {}), exc) from exc
            for key in changes.disconnect:
                ids = sessions.get(key, [])
                if not ids:
                    continue
                try:
                    self._remove_ids("/ppp/active", ids)
                except DriverError as exc:
                    raise ApplyError(applied, Change(Action.REMOVE, "ppp/active", key, {}), exc) from exc
                log.info("%s: disconnected %s", self._params.name, key)
                disconnected.append(key)
        return ApplyResult(tuple(applied), tuple(disconnected))

    def disconnect(self, key: str) -> bool:
        rows = self._print("/ppp/active", (".id", "name"), [f"?=name={key}"])
        ids = [text_of(r[".id"]) for r in rows if ".id" in r and text_of(r.get("name")) == key]
        if not ids:
            return False
        self._remove_ids("/ppp/active", ids)
        log.info("%s: disconnected %s", self._params.name, key)
        return True

    def counters(self) -> tuple[CounterSample, ...]:
        """PPPoE sessions from their dynamic ``<pppoe-NAME>`` interfaces, static queues from ``bytes``.

        The epoch of a PPPoE counter is its session id (a new session restarts the interface's counters); the
        epoch of a queue's counter is the queue's ``.id`` (a recreated queue starts from zero). A reboot restarts
        both; the reader sees the counter go down.
        """
        taken = datetime.now(UTC)
        sessions = {
            text_of(r.get("name")): text_of(r.get("session-id", ""))
            for r in self._print("/ppp/active", ("name", "session-id"))
        }
        out: list[CounterSample] = []
        for row in self._print("/interface", (".id", "name", "type", "rx-byte", "tx-byte", "dynamic")):
            name = text_of(row.get("name"))
            if not (name.startswith("<pppoe-") and name.endswith(">")):
                continue
            key = name[len("<pppoe-") : -1]
            try:
                rx, tx = int(text_of(row.get("rx-byte", "0"))), int(text_of(row.get("tx-byte", "0")))
            except ValueError:
                raise ReplyError(f"{self._where()}: interface {name} has unreadable byte counters") from None
            epoch = sessions.get(key) or f"if{text_of(row.get('.id', ''))}"
            out.append(CounterSample(key, bytes_in=rx, bytes_out=tx, epoch=epoch, taken_at=taken))
        for row in self._print(f"/{QUEUE}", (".id", "name", "bytes", "comment", "dynamic")):
            if text_of(row.get("dynamic")) == "true" or not is_owned(text_of(row.get("comment", ""))):
                continue
            up, _, down = text_of(row.get("bytes", "0/0")).partition("/")
            try:
                sent, received = int(up), int(down or up)
            except ValueError:
                raise ReplyError(f"{self._where()}: queue {row.get('name')} has unreadable byte counters") from None
            out.append(
                CounterSample(
                    text_of(row.get("name")),
                    bytes_in=sent,
                    bytes_out=received,
                    epoch=text_of(row.get(".id")),
                    taken_at=taken,
                )
            )
        return tuple(out)

    # --- writes ------------------------------------------------------------------------------------------------

    def _write(self, change: Change) -> None:
        path = f"/{change.kind}"
        unsettable = UNSETTABLE.get(change.kind, frozenset())
        if change.action is Action.ADD:
            fields = {k: v for k, v in change.fields.items() if not (v == "" and k in unsettable)}
            try:
                self._run(f"{path}/add", _words(fields))
            except CommandError as exc:
                if "already" not in str(exc):
                    raise
                # Written before a dropped connection, or added by hand since the read: take it over only if ours.
                ref = self._find_owned(change, exc)
                self._set(path, ref, fields, unsettable)
        elif change.action is Action.CHANGE:
            ref = change.ref or self._find_owned(change, None)
            try:
                self._set(path, ref, dict(change.fields), unsettable)
            except CommandError as exc:
                if "no such item" not in str(exc):
                    raise
                self._set(path, self._find_owned(change, exc), dict(change.fields), unsettable)
        else:
            if change.ref is None:
                return
            try:
                self._run(f"{path}/remove", [f"=.id={change.ref}"])
            except CommandError as exc:
                if "no such item" not in str(exc):
                    raise

    def _set(self, path: str, ref: str, fields: Mapping[str, str], unsettable: frozenset[str]) -> None:
        values = {k: v for k, v in fields.items() if not (v == "" and k in unsettable)}
        if values:
            self._run(f"{path}/set", [f"=.id={ref}", *_words(values)])
        for name in sorted(k for k, v in fields.items() if v == "" and k in unsettable):
            self._run(f"{path}/unset", [f"=.id={ref}", f"=value-name={name}"])

    def _find_owned(self, change: Change, cause: CommandError | None) -> str:
        """The ``.id`` of the owned entry holding ``change``'s key now; CommandError if none or not ours."""
        if change.kind == ADDRESS_LIST:
            lst, _, address = change.key.partition("|")
            query = [f"?=list={lst}", f"?=address={address}"]
        else:
            query = [f"?=name={change.key}"]
        rows = self._print(f"/{change.kind}", (".id", "comment", "dynamic"), query)
        for row in rows:
            if text_of(row.get("dynamic")) != "true" and is_owned(text_of(row.get("comment", ""))) and ".id" in row:
                return text_of(row[".id"])
        reason = str(cause) if cause else f"{change.kind} {change.key} is not on the router"
        raise CommandError(f"{reason} (and no entry managed by edgebill holds {change.key!r})")

    def _remove_ids(self, path: str, ids: list[str]) -> None:
        try:
            self._run(f"{path}/remove", [f"=.id={','.join(ids)}"])
        except CommandError as exc:
            if "no such item" not in str(exc):
                raise

    def _active_sessions(self) -> dict[str, list[str]]:
        sessions: dict[str, list[str]] = {}
        for row in self._print("/ppp/active", (".id", "name")):
            if ".id" in row:
                sessions.setdefault(text_of(row.get("name")), []).append(text_of(row[".id"]))
        return sessions
