"""One persistent SSH session to a Linux gateway, with paramiko's errors translated into the driver's.

Commands are fixed program names (``tc -batch -``, ``nft -j -f -``, ``sh -s``); what they act on is fed on
stdin, built only from validated values. Host keys are checked against a known_hosts file; trust on first use
records an unknown key there instead (and still refuses a key that changed).
"""

from __future__ import annotations

import gzip
import logging
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import paramiko

from drivers.base import AuthError, CommandError, ConnectError, ConnectTimeout, DriverError, ReplyError

log = logging.getLogger(__name__)

#: Read size for the command's output streams.
_CHUNK: Final = 1 << 16
_GZIP_MAGIC: Final = b"\x1f\x8b"

#: Shells (SSH channels of the one connection) a session runs commands in at once, at most.
MAX_SHELLS: Final = 3

#: Runs the script on stdin and compresses what it prints when the gateway has gzip (large reads).
COMPRESSED_SH: Final = "sh -c 'if command -v gzip >/dev/null 2>&1; then sh -s | gzip -1; else sh -s; fi'"


def text_of(out: Output) -> str:
    """The command's output as text, decompressed when it was sent compressed."""
    if out.raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(out.raw).decode("utf-8", "replace")
        except (OSError, EOFError) as exc:
            raise ReplyError(f"corrupt compressed output from the gateway: {exc}") from None
    return out.stdout


@dataclass(frozen=True)
class Output:
    """What a command printed and how it exited."""

    status: int
    stdout: str
    stderr: str
    #: ``stdout`` as bytes, for output that is not text (compressed).
    raw: bytes = b""


@dataclass(frozen=True)
class SshTarget:
    """Where and how to log in. ``password`` is used only when no ``key_file`` is given."""

    host: str
    port: int
    username: str
    timeout: float
    key_file: Path | None = None
    password: str | None = None
    known_hosts: Path | None = None
    trust_on_first_use: bool = False

    def __repr__(self) -> str:
        return f"SshTarget({self.username}@{self.host}:{self.port})"


class _RecordNewKey(paramiko.MissingHostKeyPolicy):
    """Trust on first use: accept an unknown host key and append it to the known_hosts file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with self.path.open("a", encoding="ascii") as fh:
            fh.write(line)
        self.path.chmod(0o600)
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.warning("recorded new host key of %s (%s) in %s", hostname, key.get_name(), self.path)


def _load_key(path: Path) -> paramiko.PKey:
    errors: list[str] = []
    for cls in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
        try:
            key: paramiko.PKey = cls.from_private_key_file(str(path))
            return key
        except paramiko.PasswordRequiredException:
            raise AuthError(f"SSH key {path} is encrypted; give an unencrypted key readable by edgebill only") from None
        except (paramiko.SSHException, ValueError) as exc:
            errors.append(str(exc))
        except OSError as exc:
            raise AuthError(f"cannot read SSH key {path}: {exc.strerror}") from None
    raise AuthError(f"SSH key {path} is not an Ed25519, ECDSA or RSA private key")


class SshSession:
    """A lazily opened, persistent session; :meth:`run` reconnects once when the session was lost."""

    def __init__(self, target: SshTarget, *, sudo: bool = False) -> None:
        self.target = target
        self.sudo = sudo
        self._client: paramiko.SSHClient | None = None
        #: Shells (one SSH channel each) not running a command now, and how many are.
        self._idle: list[_Shell] = []
        self._busy = 0
        self._cond = threading.Condition(threading.RLock())

    @property
    def connected(self) -> bool:
        client = self._client
        if client is None:
            return False
        transport = client.get_transport()
        return transport is not None and transport.is_active()

    def open(self) -> None:
        with self._cond:
            if not self.connected:
                self._connect()

    def _connect(self) -> None:
        self.close()
        t = self.target
        client = paramiko.SSHClient()
        if t.known_hosts is not None and t.known_hosts.exists():
            try:
                client.load_host_keys(str(t.known_hosts))
            except (OSError, paramiko.SSHException) as exc:
                raise AuthError(f"cannot read known_hosts file {t.known_hosts}: {exc}") from None
        if t.trust_on_first_use and t.known_hosts is not None:
            client.set_missing_host_key_policy(_RecordNewKey(t.known_hosts))
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        pkey = _load_key(t.key_file) if t.key_file is not None else None
        where = f"{t.host}:{t.port}"
        try:
            client.connect(
                t.host,
                port=t.port,
                username=t.username,
                pkey=pkey,
                password=None if pkey is not None else t.password,
                timeout=t.timeout,
                banner_timeout=t.timeout,
                auth_timeout=t.timeout,
                look_for_keys=False,
                allow_agent=False,
            )
        except paramiko.BadHostKeyException:
            client.close()
            raise AuthError(f"host key of {where} does not match the one in {t.known_hosts}") from None
        except paramiko.AuthenticationException as exc:
            client.close()
            if "not found in known_hosts" in str(exc) or "known_hosts" in str(exc):
                raise AuthError(f"host key of {where} is not in {t.known_hosts}") from None
            raise AuthError(f"SSH login to {where} as {t.username!r} refused") from None
        except paramiko.SSHException as exc:
            client.close()
            if "not found in known_hosts" in str(exc):
                if t.known_hosts is None:
                    raise AuthError(
                        f"cannot verify the host key of {where}: no known_hosts_file is configured"
                    ) from None
                raise AuthError(f"host key of {where} is not in {t.known_hosts}") from None
            raise ConnectError(f"SSH to {where} failed: {exc}") from None
        except TimeoutError:
            client.close()
            raise ConnectTimeout(f"SSH to {where} timed out after {t.timeout:g}s") from None
        except OSError as exc:
            client.close()
            raise ConnectError(f"cannot connect to {where}: {exc.strerror or exc}") from None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(30)
        self._client = client
        log.info("SSH session to %s as %s open", where, t.username)

    def close(self) -> None:
        """Close the connection; shells running a command now fail and are not reused."""
        with self._cond:
            idle, self._idle = self._idle, []
            client, self._client = self._client, None
        for shell in idle:
            shell.close()
        if client is not None:
            client.close()

    def run(self, argv: str, stdin: bytes = b"", *, check: bool = True, idempotent: bool = False) -> Output:
        """Run ``argv`` (a fixed command line) with ``stdin`` in one of the session's shells.

        The session is opened (again) when it is not up. Commands from several threads run at once, each in a
        shell of its own (an SSH channel of the one connection; at most :data:`MAX_SHELLS`), so a long read
        (the counters) does not hold up a push. When the session turns out to be lost while the command runs,
        an ``idempotent`` command (a read) is run once more on a new session; any other raises
        :class:`ConnectError`, since it may or may not have taken effect.
        """
        for attempt in (1, 2):
            try:
                shell = self._take()
            except (paramiko.SSHException, EOFError, OSError) as exc:
                self.close()
                if attempt == 2:
                    raise ConnectError(f"SSH session to {self.target.host} lost: {exc}") from None
                continue
            try:
                out = shell.run(argv, stdin)
            except (paramiko.SSHException, EOFError, OSError) as exc:
                self._give(shell, reuse=False)
                self.close()
                if idempotent and attempt == 1:
                    log.info("SSH session to %s lost (%s); reconnecting", self.target.host, exc)
                    continue
                raise ConnectError(f"SSH session to {self.target.host} lost: {exc}") from None
            except DriverError:
                self._give(shell, reuse=False)
                raise
            self._give(shell, reuse=True)
            break
        if check and out.status != 0:
            first = next((line for line in out.stderr.splitlines() if line.strip()), f"exit status {out.status}")
            raise CommandError(f"{argv.split()[0]} failed on {self.target.host}: {first.strip()}", command=argv)
        return out

    def _take(self) -> _Shell:
        """An idle shell of the current connection, or a new one; waits while :data:`MAX_SHELLS` are busy."""
        with self._cond:
            while True:
                if not self.connected:
                    self._connect()
                client = self._client
                transport = client.get_transport() if client is not None else None
                if transport is None:
                    raise paramiko.SSHException("no transport")
                while self._idle:
                    shell = self._idle.pop()
                    if not shell.closed and shell.transport is transport:
                        self._busy += 1
                        return shell
                    shell.close()
                if self._busy < MAX_SHELLS:
                    shell = _Shell(transport, self.target, sudo=self.sudo)
                    self._busy += 1
                    return shell
                self._cond.wait(self.target.timeout)

    def _give(self, shell: _Shell, *, reuse: bool) -> None:
        with self._cond:
            self._busy -= 1
            client = self._client
            current = client.get_transport() if client is not None else None
            if reuse and not shell.closed and shell.transport is current:
                self._idle.append(shell)
            else:
                shell.close()
            self._cond.notify()


class _Shell:
    """A POSIX shell kept open on the gateway; each command's input is a here-document with a random delimiter.

    Starting a process over a new SSH channel costs a login on the gateway (tens of milliseconds, more on a
    busy machine); one shell per session makes a command cost one round trip and one fork.
    """

    def __init__(self, transport: paramiko.Transport, target: SshTarget, *, sudo: bool) -> None:
        self.target = target
        self.transport = transport
        self.chan = transport.open_session(timeout=target.timeout)
        self.chan.settimeout(target.timeout)
        self.chan.exec_command("sudo -n sh" if sudo else "sh")
        self._buf = bytearray()
        setup = "umask 077; __eb_dir=$(mktemp -d) || exit 1; trap 'rm -rf \"$__eb_dir\"' EXIT\n"
        self.chan.sendall(setup.encode())

    @property
    def closed(self) -> bool:
        return self.chan.closed or self.chan.exit_status_ready()

    def close(self) -> None:
        self.chan.close()

    def run(self, argv: str, stdin: bytes) -> Output:
        token = secrets.token_hex(12)
        end = f"__EB_IN_{token}__".encode()
        if end in stdin:
            raise CommandError("command input contains the here-document delimiter", command=argv)
        body = stdin if not stdin or stdin.endswith(b"\n") else stdin + b"\n"
        script = (
            f"{argv} <<'__EB_IN_{token}__' 2>\"$__eb_dir/err\"\n".encode()
            + body
            + end
            + b"\n"
            + f"__eb_rc=$?; printf '\\n@@@EB-ERR {token}\\n'; cat \"$__eb_dir/err\"; "
            f"printf '\\n@@@EB-END {token} %d\\n' \"$__eb_rc\"\n".encode()
        )
        failure: list[BaseException] = []

        def feed() -> None:
            try:
                self.chan.sendall(script)
            except (OSError, EOFError, paramiko.SSHException) as exc:  # a lost session: the reader says so
                failure.append(exc)

        feeder = threading.Thread(target=feed, name="ssh-stdin", daemon=True)
        feeder.start()
        marker = f"\n@@@EB-END {token} ".encode()
        buf = self._buf
        searched = 0
        while True:
            at = buf.find(marker, max(0, searched - len(marker)))
            if at >= 0:
                stop = buf.find(b"\n", at + len(marker))
                if stop >= 0:
                    break
            searched = len(buf)
            try:
                data = self.chan.recv(_CHUNK)
            except TimeoutError:
                raise ConnectTimeout(
                    f"{argv.split()[0]} on {self.target.host} gave no answer in {self.target.timeout:g}s"
                ) from None
            if not data:
                feeder.join(1)
                detail = f": {failure[0]}" if failure else ""
                raise EOFError(f"the gateway's shell exited{detail}")
            buf += data
        feeder.join(self.target.timeout)
        status = int(buf[at + len(marker) : stop])
        head = bytes(buf[:at])
        self._buf = bytearray(buf[stop + 1 :])
        err_marker = f"\n@@@EB-ERR {token}\n".encode()
        out, _, err = head.rpartition(err_marker)
        if out[:2] == _GZIP_MAGIC:
            return Output(status, "", err.decode("utf-8", "replace"), raw=bytes(out))
        return Output(status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), raw=bytes(out))
