"""The API listeners: one thread per connection, replies through a per-connection writer.

The router's lock is only held while a request is executed; encoding and socket writes happen outside it,
so a slow or stuck client only ever stalls its own connection.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import select
import socket
import ssl
import threading
import time
from binascii import Error as HexError
from binascii import unhexlify
from collections import deque
from collections.abc import Mapping, Sequence
from hashlib import md5

from lab.routeros.errors import Trap
from lab.routeros.model import Sentence, parse_request
from lab.routeros.router import Router
from lab.routeros.wire import ENCODING, PeerClosed, ProtocolViolation, SentenceReader, encode_sentence

logger = logging.getLogger(__name__)

#: Before login a client may send only a few small sentences (RouterOS limits them too).
PRELOGIN_SENTENCES = 16
PRELOGIN_BYTES = 4096
OUTBOX_BYTES = 16 * 1024 * 1024
TLS_HANDSHAKE_TIMEOUT = 10.0
_POLL = 0.05


class _Transport:
    """Plain TCP: reads and writes may happen at the same time from two threads."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.shutdown()
        self.sock.close()


class _TlsTransport(_Transport):
    """TLS: one TLS object must not read and write concurrently, so both go through a lock and reads poll."""

    def __init__(self, sock: ssl.SSLSocket, raw: socket.socket) -> None:
        super().__init__(sock)
        self.tls = sock
        self.raw = raw
        self.io = threading.Lock()
        self.closed = False

    def recv(self, size: int) -> bytes:
        while True:
            if self.closed:
                return b""
            if not self.tls.pending():
                readable, _, _ = select.select([self.raw], [], [], _POLL)
                if not readable:
                    continue
            with self.io:
                try:
                    self.tls.settimeout(_POLL)
                    return self.tls.recv(size)
                except (TimeoutError, ssl.SSLWantReadError):
                    continue
                finally:
                    self.tls.settimeout(None)

    def sendall(self, data: bytes) -> None:
        with self.io:
            self.tls.sendall(data)

    def shutdown(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.raw.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.shutdown()
        self.raw.close()
        self.tls.close()


class _Outbox:
    """Replies waiting for the writer, bounded in bytes: a client that stops reading stalls only itself.

    ``None`` is the end marker; it is always accepted.
    """

    def __init__(self, limit: int = OUTBOX_BYTES) -> None:
        self._items: deque[bytes | None] = deque()
        self._size = 0
        self._limit = limit
        self._changed = threading.Condition()

    def _fits(self, data: bytes) -> bool:
        return self._size == 0 or self._size + len(data) <= self._limit

    def put(self, data: bytes | None, *, block: bool = True) -> bool:
        """Queue ``data``, waiting for room; with ``block=False`` returns False at once when it does not fit."""
        with self._changed:
            if data is not None and not self._fits(data):
                if not block:
                    return False
                self._changed.wait_for(lambda: self._fits(data))
            self._items.append(data)
            self._size += len(data) if data is not None else 0
            self._changed.notify_all()
            return True

    def get(self) -> bytes | None:
        with self._changed:
            self._changed.wait_for(lambda: bool(self._items))
            data = self._items.popleft()
            self._size -= len(data) if data is not None else 0
            self._changed.notify_all()
            return data


class _Refused(Exception):
    def __init__(self, sentences: list[Sentence]) -> None:
        super().__init__("refused")
        self.sentences = sentences


class Connection:
    """One API client session."""

    def __init__(self, server: ApiServer, sock: socket.socket, peer: str) -> None:
        self.server = server
        self.router = server.router
        self.raw = sock
        self.peer = peer
        self.transport: _Transport = _Transport(sock)
        self.outbox = _Outbox()
        self.logged_in = False
        self.user: str | None = None
        self.challenge: str | None = None
        self.closing = False
        self.active: dict[str | None, int] = {}  # tag -> listen subscription
        self.active_lock = threading.Lock()
        self.reader = threading.Thread(target=self._read_loop, name=f"routeros-api {peer}", daemon=True)
        self.writer = threading.Thread(target=self._write_loop, name=f"routeros-api-out {peer}", daemon=True)

    def start(self) -> None:
        self.reader.start()

    # ---------------------------------------------------------------- output

    def _write_loop(self) -> None:
        broken = False
        while True:
            data = self.outbox.get()
            if data is None:
                break
            if broken:
                continue  # keep draining so a producer never blocks on a dead connection
            try:
                self.transport.sendall(data)
            except OSError:
                broken = True
                self.abort()
        self.transport.close()

    def send(self, sentences: Sequence[Sentence], tag: str | None) -> None:
        if self.closing:
            return
        parts = [encode_sentence(words if tag is None else [*words, f".tag={tag}"]) for words in sentences]
        if parts:
            self.outbox.put(b"".join(parts))

    def _send_nowait(self, words: Sentence, tag: str | None) -> None:
        """Used from router callbacks (router lock held): never blocks; a full outbox drops the client."""
        if self.closing:
            return
        if not self.outbox.put(encode_sentence(words if tag is None else [*words, f".tag={tag}"]), block=False):
            logger.warning("API client %s is not reading its listen stream; disconnecting it", self.peer)
            self.abort()

    def finish(self) -> None:
        """Flush what is queued, then close."""
        if not self.closing:
            self.closing = True
            self.outbox.put(None)

    def abort(self) -> None:
        """Drop the connection now, without flushing."""
        self.closing = True
        self.transport.shutdown()
        self.outbox.put(None)

    # ---------------------------------------------------------------- input

    def _read_loop(self) -> None:
        try:
            if self.server.tls_context is not None:
                self.raw.settimeout(TLS_HANDSHAKE_TIMEOUT)
                tls = self.server.tls_context.wrap_socket(self.raw, server_side=True)
                tls.settimeout(None)
                # wrap_socket() took over the descriptor; a duplicate lets us poll and shut down
                # the connection without touching the TLS object from a second thread.
                self.transport = _TlsTransport(tls, socket.fromfd(tls.fileno(), tls.family, tls.type))
            self.writer.start()
            reader = SentenceReader(self.transport.recv)
            prelogin = 0
            while not self.closing:
                words = reader.read_sentence(None if self.logged_in else PRELOGIN_BYTES)
                if not words:
                    continue
                if not self.logged_in:
                    prelogin += 1
                    if prelogin > PRELOGIN_SENTENCES:
                        raise ProtocolViolation("too many sentences before login")
                try:
                    self._handle(words)
                except Exception:
                    # A defect in the emulator must not look like a network failure to the client.
                    logger.exception("API request %r from %s failed", words[0], self.peer)
                    self.send([["!trap", "=message=failure: internal error"], ["!done"]], _tag_of(words))
        except (PeerClosed, ProtocolViolation, OSError, ssl.SSLError) as error:
            if not self.closing and not isinstance(error, PeerClosed):
                logger.info("API connection from %s closed: %s", self.peer, error)
        except Exception:
            logger.exception("API connection from %s failed", self.peer)
        finally:
            self._cancel_all()
            if self.writer.ident is None:  # the TLS handshake failed before the writer started
                self.transport.close()
            else:
                # The writer flushes what is queued (a final !fatal, say), then closes the socket.
                self.closing = True
                self.outbox.put(None)
            self.server._forget(self)

    def _handle(self, words: list[str]) -> None:
        command = words[0]
        tag = _tag_of(words)
        if command == "/login":
            self._login(words, tag)
            return
        if not self.logged_in:
            self.send([["!fatal", "not logged in"]], None)
            self.finish()
            return
        if command == "/quit":
            self.send([["!fatal", "session terminated on request"]], None)
            self.finish()
            return
        if command == "/cancel":
            self._cancel(words, tag)
            return
        self._pause()
        if command.endswith("/listen") or _is_follow(words):
            self._listen(words, tag)
            return
        outcome = self.router.execute(words)
        if outcome.drop:
            self.abort()
            return
        self.send(outcome.sentences, tag)

    def _pause(self) -> None:
        delay = self.server.latency
        if delay > 0:
            time.sleep(delay)

    # ---------------------------------------------------------------- login

    def _login(self, words: list[str], tag: str | None) -> None:
        try:
            attributes = parse_request(words).attributes
        except Trap as trap:
            self.send([trap.words(), ["!done"]], tag)
            return
        name = attributes.get("name")
        password = attributes.get("password")
        response = attributes.get("response")
        if name is not None and password is not None and self.router.plain_login:
            ok = self._check_password(name, password)
        elif name is not None and response is not None and self.challenge is not None:
            ok = self._check_response(name, response, self.challenge)
            self.challenge = None
        elif response is None and self.router.legacy_login:
            self.challenge = secrets.token_hex(16)
            self.send([["!done", f"=ret={self.challenge}"]], tag)
            return
        else:
            ok = False
        if ok:
            self.logged_in = True
            self.user = name
            logger.debug("API user %s logged in from %s", name, self.peer)
            self.send([["!done"]], tag)
        else:
            logger.info("API login failed for user %r from %s", name, self.peer)
            self.send([Trap(self.router.login_failure()).words(), ["!done"]], tag)

    def _secret(self, name: str) -> bytes | None:
        stored = self.server.users.get(name)
        return stored.encode("utf-8") if stored is not None else None

    def _check_password(self, name: str, password: str) -> bool:
        stored = self._secret(name)
        return stored is not None and hmac.compare_digest(stored, password.encode(ENCODING))

    def _check_response(self, name: str, response: str, challenge: str) -> bool:
        stored = self._secret(name)
        if stored is None:
            return False
        return hmac.compare_digest(legacy_response(stored, challenge), response.lower())

    # ---------------------------------------------------------------- listen / cancel

    def _listen(self, words: list[str], tag: str | None) -> None:
        try:
            request = parse_request(words)
            path = request.command.rsplit("/", 1)[0]
            with self.active_lock:
                if tag in self.active:
                    raise Trap("failure: already have command with such tag")
                # The initial rows and the subscription are taken atomically, so no change falls in between.
                with self.router.lock:
                    if not request.command.endswith("/listen") and "follow-only" not in request.attributes:
                        plain = [word for word in words if word.partition("=")[2].partition("=")[0] != "follow"]
                        outcome = self.router.execute(plain)
                        if any(sentence[0] == "!trap" for sentence in outcome.sentences):
                            raise _Refused(outcome.sentences)
                        for sentence in outcome.sentences:
                            if sentence[0] == "!re":
                                self._send_nowait(sentence, tag)
                    token = self.router.subscribe(
                        path, request.queries, request.proplist, lambda sentence: self._send_nowait(sentence, tag)
                    )
                    self.active[tag] = token
        except Trap as trap:
            self.send([trap.words(), ["!done"]], tag)
        except _Refused as refused:
            self.send(refused.sentences, tag)

    def _cancel(self, words: list[str], tag: str | None) -> None:
        try:
            attributes = parse_request(words).attributes
        except Trap as trap:
            self.send([trap.words(), ["!done"]], tag)
            return
        with self.active_lock:
            if "tag" in attributes:
                target = attributes["tag"] or None
                wanted = [target] if target in self.active else []
            else:
                wanted = [key for key in self.active if key != tag]
            stopped = []
            for key in wanted:
                self.router.unsubscribe(self.active.pop(key))
                stopped.append(key)
        for key in stopped:
            self.send([["!trap", "=category=2", "=message=interrupted"]], key)
        self.send([["!done"]], tag)
        for key in stopped:
            self.send([["!done"]], key)

    def _cancel_all(self) -> None:
        with self.active_lock:
            for token in self.active.values():
                self.router.unsubscribe(token)
            self.active.clear()


def legacy_response(password: bytes, challenge: str) -> str:
    """The pre-6.43 login answer: ``"00" + md5(b"\\x00" + password + unhexlify(challenge))`` in hex."""
    try:
        salt = unhexlify(challenge)
    except (HexError, ValueError):
        salt = b""
    return "00" + md5(b"\x00" + password + salt, usedforsecurity=False).hexdigest()


def _tag_of(words: Sequence[str]) -> str | None:
    for word in words[1:]:
        if word.startswith(".tag="):
            return word[5:] or None
    return None


def _is_follow(words: Sequence[str]) -> bool:
    if not words[0].endswith(("/print", "/getall")):
        return False
    return any(word.split("=", 2)[1] in ("follow", "follow-only") for word in words[1:] if word.startswith("="))


class ApiServer:
    """One listening socket (plain or TLS) serving the API for a router."""

    def __init__(
        self,
        router: Router,
        users: Mapping[str, str],
        host: str,
        port: int,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.router = router
        self.users = dict(users)
        self.tls_context = tls_context
        self.latency = 0.0
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, port), family=family)
        self._listener.settimeout(0.2)
        self.host, self.port = self._listener.getsockname()[:2]
        self._stop = threading.Event()
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"routeros-accept {self.host}:{self.port}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                logger.exception("accepting an API connection failed")
                time.sleep(0.1)
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(self, sock, f"{address[0]}:{address[1]}")
            with self._lock:
                if self._stop.is_set():
                    sock.close()
                    return
                self._connections.add(connection)
            connection.start()

    def _forget(self, connection: Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    def drop_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.abort()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below at once on Linux
        self._listener.close()
        self._thread.join(timeout=5)
        self.drop_connections()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.reader.join(timeout=2)
