"""A real Linux gateway in network namespaces: OpenSSH, veth pairs, subscribers and an iperf3 server.

Three namespaces are created (names end in a per-lab tag so that several labs can run side by side):

* ``ebgw-TAG``, the gateway: ``sub0`` faces the subscribers (``100.64.0.1/10``), ``up0`` the upstream
  (``198.18.0.1/24``); it forwards between them and runs ``/usr/sbin/sshd`` on its own loopback with a host key
  and an authorized client key generated for this lab;
* ``ebsub-TAG``, the subscribers: one ``eth0`` holding every subscriber address;
* ``ebup-TAG``, the upstream: ``198.18.0.2`` runs an iperf3 server and an HTTP server on port 80,
  ``198.18.0.3`` an HTTP server on port 8080 standing for the payment portal.

No address is added outside these namespaces. The gateway's SSH port is reached through a TCP forwarder
listening on ``127.0.0.1`` in the caller's namespace, which opens its upstream sockets inside the gateway
namespace (``setns`` on a dedicated thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

SUBSCRIBER_NET: Final = IPv4Network("100.64.0.0/10")
GATEWAY_SUB_ADDRESS: Final = IPv4Address("100.64.0.1")
GATEWAY_UP_ADDRESS: Final = IPv4Address("198.18.0.1")
UPSTREAM_ADDRESS: Final = IPv4Address("198.18.0.2")
PORTAL_ADDRESS: Final = IPv4Address("198.18.0.3")
PORTAL_PORT: Final = 8080
IPERF_PORT: Final = 5201
#: Interface names inside the gateway namespace.
SUB_IFACE: Final = "sub0"
UP_IFACE: Final = "up0"
IFB_IFACE: Final = "ifb0"
UPSTREAM_BODY: Final = "edgebill-lab upstream"
PORTAL_BODY: Final = "edgebill-lab payment due"

_CLONE_NEWNET: Final = 0x40000000
_SSHD: Final = Path("/usr/sbin/sshd")


class LabError(RuntimeError):
    """The lab could not be built (missing tool, no privilege, a command failed)."""


def problem() -> str:
    """Why a lab gateway cannot be built here, or an empty string when it can."""
    if os.geteuid() != 0:
        return "the Linux gateway lab needs root (network namespaces)"
    for tool in ("ip", "tc", "nft", "iperf3", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"the Linux gateway lab needs {tool!r} (Debian: iproute2, nftables, iperf3, openssh-client)"
    if not _SSHD.exists():
        return "the Linux gateway lab needs /usr/sbin/sshd (Debian: openssh-server)"
    return ""


def _run(argv: Sequence[str], *, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), input=input_text, capture_output=True, text=True, check=False, timeout=60)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def subscriber_addresses(count: int) -> tuple[IPv4Address, ...]:
    """``count`` subscriber addresses, 200 per /24 from ``100.64.1.10`` on."""
    return tuple(IPv4Address(f"100.64.{1 + i // 200}.{10 + i % 200}") for i in range(count))


# --- a TCP forwarder into a namespace ------------------------------------------------------------------------


def _enter_netns(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


class Forwarder:
    """Listens on ``127.0.0.1:PORT`` here and relays each connection to ``target`` inside namespace ``netns``."""

    def __init__(self, netns: str, target: tuple[str, int]) -> None:
        self.netns = netns
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, name=f"fwd-{netns}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._closed.is_set():
                client.close()
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._relay, args=(client,), name="fwd-relay", daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with self._lock:
            self._open.add(client)
        upstream: socket.socket | None = None
        try:
            _enter_netns(self.netns)  # this thread only; the socket below lives in the gateway namespace
            upstream = socket.create_connection(self.target, timeout=10)
            upstream.settimeout(None)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._open.add(upstream)
            back = threading.Thread(target=_pump, args=(upstream, client), name="fwd-back", daemon=True)
            back.start()
            _pump(client, upstream)
            back.join()
        except OSError as exc:
            log.warning("forwarder to %s in %s: %s", self.target, self.netns, exc)
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with self._lock:
                        self._open.discard(sock)
                    sock.close()

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)
        with self._lock:
            socks = list(self._open)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(1 << 16)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


# --- the lab ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IperfResult:
    """One iperf3 run: the receiver's rate in bits per second."""

    bits_per_second: float
    seconds: float


@dataclass
class LinuxGateway:
    """A running lab gateway. Build one with ``with LinuxGateway.up() as gw:``."""

    tag: str
    workdir: Path
    subscribers: tuple[IPv4Address, ...]
    host: str = "127.0.0.1"
    port: int = 0
    username: str = "root"
    interface: str = SUB_IFACE
    upload_ifb: str = IFB_IFACE
    upstream_address: IPv4Address = UPSTREAM_ADDRESS
    portal_address: IPv4Address = PORTAL_ADDRESS
    portal_port: int = PORTAL_PORT
    own_workdir: bool = False
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    _forwarder: Forwarder | None = field(default=None, repr=False)

    # names -------------------------------------------------------------------------------------------

    @property
    def gw_ns(self) -> str:
        return f"ebgw-{self.tag}"

    @property
    def sub_ns(self) -> str:
        return f"ebsub-{self.tag}"

    @property
    def up_ns(self) -> str:
        return f"ebup-{self.tag}"

    @property
    def key_file(self) -> Path:
        """The client's private key, authorized for ``root`` on the gateway."""
        return self.workdir / "client_key"

    @property
    def known_hosts_file(self) -> Path:
        """A known_hosts file holding the gateway's host key for ``[host]:port``."""
        return self.workdir / "known_hosts"

    @property
    def subnet(self) -> IPv4Network:
        return SUBSCRIBER_NET

    @property
    def payment_page_url(self) -> str:
        return f"http://{self.portal_address}:{self.portal_port}/pay"

    @property
    def upstream_url(self) -> str:
        return f"http://{self.upstream_address}/"

    # building ---------------------------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def up(cls, subscribers: int = 8, *, tag: str | None = None, workdir: Path | None = None) -> Iterator[LinuxGateway]:
        """Build the lab, yield it, and tear it down afterwards (also when the body raises)."""
        gw = cls.start(subscribers, tag=tag, workdir=workdir)
        try:
            yield gw
        finally:
            gw.down()

    @classmethod
    def start(cls, subscribers: int = 8, *, tag: str | None = None, workdir: Path | None = None) -> LinuxGateway:
        """Build the lab and return it running; call :meth:`down` to remove it."""
        why = problem()
        if why:
            raise LabError(why)
        if not 1 <= subscribers <= 10_000:
            raise LabError(f"subscribers must be between 1 and 10000, got {subscribers}")
        tag = tag or secrets.token_hex(3)
        own_dir = workdir is None
        path = Path(tempfile.mkdtemp(prefix=f"edgebill-gw-{tag}-")) if workdir is None else workdir
        path.mkdir(parents=True, exist_ok=True)
        gw = cls(tag=tag, workdir=path, subscribers=subscriber_addresses(subscribers), own_workdir=own_dir)
        try:
            gw._build()
        except BaseException:
            gw.down()
            raise
        return gw

    def _ns(self, ns: str, *argv: str, input_text: str | None = None, check: bool = True) -> str:
        return _run(["ip", "netns", "exec", ns, *argv], input_text=input_text, check=check).stdout

    def _build(self) -> None:
        for ns in (self.gw_ns, self.sub_ns, self.up_ns):
            _run(["ip", "netns", "add", ns])
        gw, sub, up = self.gw_ns, self.sub_ns, self.up_ns
        self._ns(gw, "ip", "link", "add", "name", SUB_IFACE, "type", "veth", "peer", "name", "eth0", "netns", sub)
        self._ns(gw, "ip", "link", "add", "name", UP_IFACE, "type", "veth", "peer", "name", "eth0", "netns", up)
        batch_gw = [
            "link set dev lo up",
            f"address add {GATEWAY_SUB_ADDRESS}/{SUBSCRIBER_NET.prefixlen} dev {SUB_IFACE}",
            f"address add {GATEWAY_UP_ADDRESS}/24 dev {UP_IFACE}",
            f"link set dev {SUB_IFACE} up",
            f"link set dev {UP_IFACE} up",
        ]
        self._ns(gw, "ip", "-batch", "-", input_text="\n".join(batch_gw) + "\n")
        self._ns(gw, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        batch_sub = ["link set dev lo up", "link set dev eth0 up"]
        batch_sub += [f"address add {a}/32 dev eth0" for a in self.subscribers]
        batch_sub += [
            f"route add {GATEWAY_SUB_ADDRESS}/32 dev eth0",
            f"route add default via {GATEWAY_SUB_ADDRESS} dev eth0",
        ]
        self._ns(sub, "ip", "-batch", "-", input_text="\n".join(batch_sub) + "\n")
        batch_up = [
            "link set dev lo up",
            f"address add {UPSTREAM_ADDRESS}/24 dev eth0",
            f"address add {PORTAL_ADDRESS}/24 dev eth0",
            "link set dev eth0 up",
            f"route add {SUBSCRIBER_NET} via {GATEWAY_UP_ADDRESS} dev eth0",
        ]
        self._ns(up, "ip", "-batch", "-", input_text="\n".join(batch_up) + "\n")
        self._start_sshd()
        self._start_servers()
        self._wait_ready()

    def _start_sshd(self) -> None:
        d = self.workdir
        for name in ("ssh_host_ed25519_key", "client_key"):
            key = d / name
            if not key.exists():
                _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"edgebill-lab-{self.tag}", "-f", str(key)])
        shutil.copyfile(d / "client_key.pub", d / "authorized_keys")
        (d / "authorized_keys").chmod(0o600)
        config = d / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    "Port 22",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {d / 'ssh_host_ed25519_key'}",
                    f"PidFile {d / 'sshd.pid'}",
                    f"AuthorizedKeysFile {d / 'authorized_keys'}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    "MaxSessions 64",
                    "MaxStartups 64",
                    "LogLevel ERROR",
                    "",
                ]
            ),
            encoding="ascii",
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._spawn(self.gw_ns, str(_SSHD), "-D", "-e", "-f", str(config))
        self._forwarder = Forwarder(self.gw_ns, ("127.0.0.1", 22))
        self.port = self._forwarder.port
        host_key = (d / "ssh_host_ed25519_key.pub").read_text(encoding="ascii").split()
        self.known_hosts_file.write_text(f"[{self.host}]:{self.port} {host_key[0]} {host_key[1]}\n", encoding="ascii")
        self.known_hosts_file.chmod(0o600)

    def _start_servers(self) -> None:
        self._spawn(self.up_ns, "iperf3", "-s", "-B", str(UPSTREAM_ADDRESS), "-p", str(IPERF_PORT))
        for address, port, body in (
            (UPSTREAM_ADDRESS, 80, UPSTREAM_BODY),
            (PORTAL_ADDRESS, PORTAL_PORT, PORTAL_BODY),
        ):
            root = self.workdir / f"www-{address}"
            root.mkdir(exist_ok=True)
            (root / "index.html").write_text(body + "\n", encoding="utf-8")
            (root / "pay").write_text(body + "\n", encoding="utf-8")
            self._spawn(
                self.up_ns,
                sys.executable,
                "-m",
                "http.server",
                "--bind",
                str(address),
                "--directory",
                str(root),
                str(port),
            )

    def _spawn(self, ns: str, *argv: str) -> None:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._procs.append(proc)

    def _wait_ready(self) -> None:
        listening = {
            self.gw_ns: ["127.0.0.1:22"],
            self.up_ns: [
                f"{UPSTREAM_ADDRESS}:{IPERF_PORT}",
                f"{UPSTREAM_ADDRESS}:80",
                f"{PORTAL_ADDRESS}:{PORTAL_PORT}",
            ],
        }
        deadline = time.monotonic() + 15
        for ns, wanted in listening.items():
            while True:
                out = self._ns(ns, "ss", "-Hltn", check=False)
                if all(w in out for w in wanted):
                    break
                for proc in self._procs:
                    if proc.poll() is not None:
                        raise LabError(f"{proc.args!r} exited with status {proc.returncode}")
                if time.monotonic() > deadline:
                    raise LabError(f"servers in {ns} did not start: want {wanted}, listening: {out.strip()}")
                time.sleep(0.05)

    def down(self) -> None:
        """Stop every process of the lab and delete its namespaces; safe to call twice."""
        if self._forwarder is not None:
            self._forwarder.close()
            self._forwarder = None
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._procs.clear()
        for ns in (self.gw_ns, self.sub_ns, self.up_ns):
            _run(["ip", "netns", "del", ns], check=False)
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # using it ---------------------------------------------------------------------------------------------

    def gateway(self, *argv: str, input_text: str | None = None, check: bool = True) -> str:
        """Run a command inside the gateway namespace (what an admin's shell on the gateway would do)."""
        return self._ns(self.gw_ns, *argv, input_text=input_text, check=check)

    def iperf(self, source: IPv4Address, *, download: bool, seconds: int = 3, omit: int = 1) -> IperfResult:
        """Run iperf3 from subscriber ``source`` to the upstream; ``download`` measures upstream -> subscriber."""
        argv = [
            "iperf3",
            "-c",
            str(UPSTREAM_ADDRESS),
            "-p",
            str(IPERF_PORT),
            "-B",
            str(source),
            "-t",
            str(seconds),
            "-O",
            str(omit),
            "-J",
        ]
        if download:
            argv.append("-R")
        for attempt in range(20):
            proc = _run(["ip", "netns", "exec", self.sub_ns, *argv], check=False)
            try:
                data = json.loads(proc.stdout)
            except json.JSONDecodeError:
                raise LabError(f"iperf3 printed no JSON: {proc.stderr.strip()}") from None
            error = str(data.get("error", ""))
            if "busy" in error and attempt < 19:
                time.sleep(0.2)
                continue
            if error:
                raise LabError(f"iperf3 from {source}: {error}")
            end = data["end"]["sum_received"]
            return IperfResult(float(end["bits_per_second"]), float(end["seconds"]))
        raise LabError("iperf3 server stayed busy")

    def http_get(self, source: IPv4Address, url: str, *, timeout: float = 3.0) -> str | None:
        """GET ``url`` from subscriber address ``source``; the body, or ``None`` when no answer came."""
        code = (
            "import socket, sys, urllib.parse\n"
            "u = urllib.parse.urlsplit(sys.argv[2])\n"
            "s = socket.create_connection((u.hostname, u.port or 80), timeout=float(sys.argv[3]),"
            " source_address=(sys.argv[1], 0))\n"
            "s.sendall(('GET ' + (u.path or '/') + ' HTTP/1.0\\r\\nHost: ' + u.hostname + '\\r\\n\\r\\n').encode())\n"
            "data = b''\n"
            "while chunk := s.recv(65536):\n"
            "    data += chunk\n"
            "sys.stdout.write(data.decode('utf-8', 'replace').partition('\\r\\n\\r\\n')[2])\n"
        )
        proc = _run(
            ["ip", "netns", "exec", self.sub_ns, sys.executable, "-c", code, str(source), url, str(timeout)],
            check=False,
        )
        return proc.stdout if proc.returncode == 0 else None

    def can_connect(self, source: IPv4Address, address: IPv4Address, port: int, *, timeout: float = 1.5) -> bool:
        """Whether a TCP connection from ``source`` to ``address:port`` is accepted."""
        code = (
            "import socket, sys\n"
            "socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=float(sys.argv[4]),"
            " source_address=(sys.argv[1], 0)).close()\n"
        )
        proc = _run(
            [
                "ip",
                "netns",
                "exec",
                self.sub_ns,
                sys.executable,
                "-c",
                code,
                str(source),
                str(address),
                str(port),
                str(timeout),
            ],
            check=False,
        )
        return proc.returncode == 0
