"""The settings: frozen dataclasses, one per section of the TOML file, and the keys of the file declared once.

Each field of a settings class is one key of its section, under the field's name and in the field's order, unless
its ``metadata["toml"]`` (a :class:`Key`, made by :func:`toml`) says otherwise: another key name, no key of its own,
a key of one router kind only. :func:`known_keys` derives from these declarations the keys the loader accepts, and
the renderer writes them, so a new setting is declared in one place: its field here. Where a field has a default,
it is the default of the loader too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from datetime import time, timedelta
from decimal import Decimal
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any, Final, Literal, get_args
from zoneinfo import ZoneInfo

from daemon.config.errors import ConfigError, show, suggest
from daemon.config.secrets import check_secret_file, decode_password, fernet_keys, read_secret
from daemon.config.values import join_host_port
from policies.money import Currency
from policies.rates import format_rate

__all__ = [
    "ACTIONS",
    "ANCHORS",
    "LEAF_QDISCS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MIN_WEB_KEY_BYTES",
    "ROUTER_KINDS",
    "SUSPEND_MODES",
    "BillingSettings",
    "DaemonSettings",
    "DatabaseSettings",
    "DunningStepSettings",
    "EnforcementSettings",
    "Key",
    "LoggingSettings",
    "PaymentSettings",
    "RouterKind",
    "RouterSettings",
    "SchedulerSettings",
    "SecuritySettings",
    "Settings",
    "SmtpSettings",
    "TomlField",
    "WebSettings",
    "array_key",
    "default",
    "kind_keys",
    "known_keys",
    "toml",
    "toml_fields",
]

RouterKind = Literal["mikrotik", "linux"]
#: The kinds of router, as the ``kind`` key names them.
ROUTER_KINDS: Final[tuple[RouterKind, ...]] = get_args(RouterKind)

#: Billing period anchors: calendar months, or months counted from each service's start date.
ANCHORS: Final = ("calendar", "anniversary")
#: Dunning step actions, in the order an account usually meets them.
ACTIONS: Final = ("remind", "throttle", "suspend")
#: How a suspended account is cut off: its PPPoE secret disabled, or a blocking limit plus the address list.
SUSPEND_MODES: Final = ("disable", "block")
#: Leaf queueing disciplines the Linux gateway driver attaches under each subscriber's class.
LEAF_QDISCS: Final = ("fq_codel", "sfq", "pfifo")

#: How log records are written: one plain line each, or one JSON object each (for log shippers).
LOG_FORMATS: Final = ("plain", "json")
#: The least severe records written, lowest first.
LOG_LEVELS: Final = ("debug", "info", "warning", "error")

#: The shortest secret the web application accepts as its Flask session key, in bytes.
MIN_WEB_KEY_BYTES: Final = 32


# -- how a field is written in the file -------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """How a settings field appears in the TOML file (the field's ``metadata["toml"]``)."""

    #: The key's name when it differs from the field's; the renderer writes the attribute of that name.
    name: str = ""
    #: False when the field has no key of its own (it is written as part of another key, or not at all).
    in_file: bool = True
    #: Router keys only: the one kind of router the key is valid for; ``None``: every kind.
    kind: RouterKind | None = None
    #: The renderer leaves the key out while the value is ``None`` (else it writes ``""``).
    omit_none: bool = False
    #: A section that holds an array of tables under this key: ``[[dunning.steps]]`` for ``"steps"``.
    array: str = ""
    #: How the renderer writes the value as a TOML string, when the value's type does not tell.
    text: Callable[[Any], str] | None = None


_PLAIN: Final = Key()


def toml(**how: Any) -> dict[str, Key]:
    """Field metadata declaring how the field is written in the file: ``field(metadata=toml(kind="linux"))``."""
    return {"toml": Key(**how)}


@dataclass(frozen=True)
class TomlField:
    """One key of a section: the field holding it, the key's name, and how it is written."""

    field: str
    key: str
    how: Key


def toml_fields(cls: type) -> tuple[TomlField, ...]:
    """The keys of the section read into the settings class ``cls``, in the order they are declared."""
    found = []
    for item in fields(cls):
        how: Key = item.metadata.get("toml", _PLAIN)
        if how.in_file:
            found.append(TomlField(item.name, how.name or item.name, how))
    return tuple(found)


def known_keys(cls: type) -> tuple[str, ...]:
    """Every key the section read into ``cls`` may hold."""
    return tuple(entry.key for entry in toml_fields(cls))


def kind_keys(cls: type, kind: str) -> tuple[str, ...]:
    """The keys of ``cls`` valid for routers of ``kind`` only."""
    return tuple(entry.key for entry in toml_fields(cls) if entry.how.kind == kind)


def array_key(cls: type, name: str) -> str:
    """The key of the array of tables that the section ``name`` of ``cls`` holds: ``"steps"`` for ``dunning``."""
    for entry in toml_fields(cls):
        if entry.field == name and entry.how.array:
            return entry.how.array
    raise LookupError(f"{cls.__name__}.{name} holds no array of tables")


def default(cls: type, name: str) -> Any:
    """The default of the field ``name`` of ``cls``: what the loader uses when the key is absent."""
    for item in fields(cls):
        if item.name == name:
            if item.default is not MISSING:
                return item.default
            if item.default_factory is not MISSING:
                return item.default_factory()
            break
    raise LookupError(f"{cls.__name__}.{name} has no default")


def _rate_pair(rate: tuple[int, int]) -> str:
    down, up = rate
    return f"{format_rate(down)}/{format_rate(up)}"


# -- the sections ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the ledger lives."""

    #: An SQLAlchemy URL: ``sqlite:////abs/path.db`` (relative paths already resolved) or
    #: ``postgresql+psycopg://user@host/db`` (``postgresql://`` and ``postgres://`` are rewritten to it).
    url: str


@dataclass(frozen=True)
class WebSettings:
    """The dashboard's listening socket, session key and public address."""

    #: Address to bind, without brackets (``"::1"`` for ``[::1]:8080``); written with the port as ``listen``.
    host: str = field(metadata=toml(name="listen"))
    #: Port to bind, written in ``listen``.
    port: int = field(metadata=toml(in_file=False))
    #: File holding the Flask secret key, at least :data:`MIN_WEB_KEY_BYTES` bytes.
    secret_key_file: Path
    #: Public address of the dashboard, without a trailing slash; links are built on it.
    base_url: str
    #: Largest request body read, in bytes (1 KiB..64 MiB); a larger request is refused with 413 before it is read.
    max_request_bytes: int = 1_048_576
    #: Failed sign-ins allowed per user name, as rate limits such as ``"5 per minute; 20 per hour"``.
    login_limit_per_account: str = "5 per minute; 20 per hour"
    #: Failed sign-ins allowed per client address, as rate limits.
    login_limit_per_address: str = "20 per minute; 100 per hour"
    #: Where the sign-in counters are kept: ``"memory://"`` (this process), or a shared store (``"redis://..."``).
    rate_limit_storage_uri: str = "memory://"
    #: A signed-in session ends after this long without a request.
    session_idle_timeout: timedelta = timedelta(minutes=30)
    #: A signed-in session ends this long after sign-in, however active it is.
    session_lifetime: timedelta = timedelta(hours=12)
    #: Reverse proxies in front of the dashboard (0..5) whose ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are
    #: believed; 0 ignores those headers, so a client cannot choose the address it is throttled by.
    trusted_proxies: int = 0

    @property
    def listen(self) -> str:
        """The socket as the ``listen`` key writes it: ``"127.0.0.1:8080"``, ``"[::1]:8080"``."""
        return join_host_port(self.host, self.port)

    def secret_key(self) -> bytes:
        """The Flask secret key, read now (one trailing newline removed)."""
        key = read_secret(self.secret_key_file, "web secret key")
        if len(key) < MIN_WEB_KEY_BYTES:
            raise ConfigError(
                f"must hold at least {MIN_WEB_KEY_BYTES} bytes, holds {len(key)}",
                path=self.secret_key_file,
                key="web secret key",
            )
        return key


@dataclass(frozen=True)
class SecuritySettings:
    """Encryption of secrets stored in the database."""

    #: File holding Fernet keys, one per line (``#`` comments allowed): the first encrypts, every one decrypts.
    secret_key_file: Path

    def fernet_keys(self) -> tuple[bytes, ...]:
        """The Fernet keys, read now; the first is the one to encrypt with."""
        keys, problem = fernet_keys(read_secret(self.secret_key_file, "data encryption key"))
        if problem:
            raise ConfigError(problem, path=self.secret_key_file, key="data encryption key")
        return keys


@dataclass(frozen=True)
class SchedulerSettings:
    """How often the daemon's periodic jobs run."""

    #: Desired state diffed against every router.
    reconcile_interval: timedelta = timedelta(seconds=60)
    #: Traffic counters pulled from every router.
    poll_interval: timedelta = timedelta(minutes=5)
    #: Local wall-clock time (in ``billing.timezone``) of the daily billing run.
    billing_at: time = time(4, 0)
    #: Dunning steps evaluated against overdue accounts.
    dunning_interval: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class BillingSettings:
    """Invoicing rules shared by every account."""

    #: Currency of every price and invoice (an ISO 4217 code in the file).
    currency: Currency
    #: Time zone of billing periods, due dates and the daily run (an IANA name in the file).
    timezone: ZoneInfo
    #: One of :data:`ANCHORS`.
    anchor: str = "calendar"
    #: Decimal fraction, ``0 <= tax_rate < 1`` with at most 6 places.
    tax_rate: Decimal = Decimal("0")
    #: True when plan prices already include the tax.
    tax_inclusive: bool = False
    #: Days from issue to due date.
    due_days: int = 14
    #: Prefix of the gapless invoice numbers.
    invoice_series: str = "INV"


@dataclass(frozen=True)
class DunningStepSettings:
    """One step of the dunning ladder, taken once an invoice is ``days_past_due`` days overdue."""

    #: Names the step in the audit log and on the account.
    name: str
    #: Days an invoice is overdue before the step is taken.
    days_past_due: int
    #: One of :data:`ACTIONS`.
    action: str
    #: The step applies only when the overdue balance is at least this much (in ``billing.currency``).
    min_amount: Decimal | None = field(default=None, metadata=toml(omit_none=True))
    #: ``(download, upload)`` in bits per second; set on ``throttle`` steps only.
    throttle_rate: tuple[int, int] | None = field(default=None, metadata=toml(omit_none=True, text=_rate_pair))
    #: Name of the e-mail template sent when the step is taken; required on ``remind`` steps.
    email_template: str | None = field(default=None, metadata=toml(omit_none=True))


@dataclass(frozen=True)
class EnforcementSettings:
    """How throttled and suspended accounts are marked on the routers."""

    #: RouterOS address list (and Linux set) holding the addresses of throttled and suspended accounts.
    address_list: str
    #: One of :data:`SUSPEND_MODES`.
    suspend_mode: str
    #: Where suspended subscribers are sent to pay.
    payment_page_url: str


@dataclass(frozen=True)
class SmtpSettings:
    """The mail relay used for invoices and reminders."""

    #: The relay's host name or address.
    host: str = "localhost"
    #: The relay's port.
    port: int = 25
    #: Upgrade the connection with STARTTLS before authenticating.
    starttls: bool = False
    #: Empty for no authentication.
    username: str = ""
    #: File holding the password of ``username``; required with it.
    password_file: Path | None = None
    #: ``From:`` address, optionally with a display name: ``Billing <billing@example.net>``.
    sender: str = "edgebill@localhost"

    def password(self) -> str | None:
        """The SMTP password, read now (one trailing newline removed); ``None`` without authentication."""
        if self.password_file is None:
            return None
        return decode_password(read_secret(self.password_file, "SMTP password"), self.password_file, "SMTP password")


@dataclass(frozen=True)
class PaymentSettings:
    """Online payments."""

    #: File holding the Stripe webhook endpoint's signing secret (``whsec_...``); ``None``: the webhook is off.
    stripe_webhook_secret_file: Path | None = None

    def stripe_webhook_secret(self) -> str | None:
        """The signing secret, read now; ``None`` when no file is configured."""
        if self.stripe_webhook_secret_file is None:
            return None
        path, what = self.stripe_webhook_secret_file, "Stripe webhook secret"
        return decode_password(read_secret(path, what), path, what)


@dataclass(frozen=True)
class DaemonSettings:
    """What ``edgebill run`` serves besides its scheduler."""

    #: ``"host:port"`` of the HTTP listener serving ``/metrics``, ``/healthz`` and ``/readyz``; empty: none.
    #: It has no authentication: keep it on the loopback or a management network.
    metrics_listen: str = ""

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """The listener's host (without brackets) and port; ``None`` when there is none."""
        if not self.metrics_listen:
            return None
        host, _, port = self.metrics_listen.rpartition(":")
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class LoggingSettings:
    """How the processes write their log records (on standard error, where journald or a shipper takes them)."""

    #: One of :data:`LOG_FORMATS`.
    format: str = "plain"
    #: One of :data:`LOG_LEVELS`; ``-v`` on the command line lowers it to ``info``, ``-vv`` to ``debug``.
    level: str = "info"


_MIKROTIK: Final = toml(kind="mikrotik")
_LINUX: Final = toml(kind="linux")


@dataclass(frozen=True)
class RouterSettings:
    """One MikroTik RouterOS router or Linux ``tc`` gateway.

    Keys of the other kind keep their defaults: a ``mikrotik`` router has no ``interface``, a ``linux``
    gateway no ``password_file``.
    """

    #: Names the router in the database, the CLI and the dashboard.
    name: str
    #: Which driver manages it.
    kind: RouterKind
    #: Address or host name the daemon connects to.
    host: str
    #: mikrotik: the API port (8728, or 8729 with ``tls``); linux: the SSH port (22).
    port: int
    #: The login: the RouterOS API user, or the SSH user on a gateway.
    username: str
    #: Free text shown in the dashboard.
    site: str = ""
    #: Connect and command timeout.
    timeout: timedelta = timedelta(seconds=10)
    #: mikrotik: file holding the API password.
    password_file: Path | None = field(default=None, metadata=_MIKROTIK)
    #: mikrotik: API over TLS (``api-ssl``).
    tls: bool = field(default=False, metadata=_MIKROTIK)
    #: mikrotik: verify the router's certificate when ``tls`` is on.
    tls_verify: bool = field(default=True, metadata=_MIKROTIK)
    #: mikrotik: codec of names and comments on the router (a Python codec name, normalised).
    encoding: str = field(default="utf-8", metadata=_MIKROTIK)
    #: linux: private key for SSH.
    ssh_key_file: Path | None = field(default=None, metadata=_LINUX)
    #: linux: OpenSSH known_hosts file holding the gateway's host key; ``None`` means the known hosts of the
    #: user the daemon runs as (``~/.ssh/known_hosts``). An unknown host key is refused unless
    #: ``trust_on_first_use``.
    known_hosts_file: Path | None = field(default=None, metadata=_LINUX)
    #: linux: accept and record the host key on first connection (into ``known_hosts_file``).
    trust_on_first_use: bool = field(default=False, metadata=_LINUX)
    #: linux: subscriber-facing interface the download shaping is attached to.
    interface: str | None = field(default=None, metadata=_LINUX)
    #: linux: IFB device the upload shaping is attached to; ``None`` for no upload shaping.
    upload_ifb: str | None = field(default=None, metadata=_LINUX)
    #: linux: one of :data:`LEAF_QDISCS`.
    leaf_qdisc: str = field(default="fq_codel", metadata=_LINUX)
    #: linux: subscriber address ranges shaped by this gateway.
    subnets: tuple[IPv4Network, ...] = field(default=(), metadata=_LINUX)

    def password(self) -> str:
        """The router's API password, read now (one trailing newline removed).

        Raises :class:`ConfigError` when the router has no password file or it cannot be read.
        """
        what = f'password of router "{self.name}"'
        if self.password_file is None:
            raise ConfigError("no password_file is configured", key=what)
        return decode_password(read_secret(self.password_file, what), self.password_file, what)

    def check_secrets(self) -> None:
        """Check, now, the secret file this router logs in with (``ssh_key_file``, else ``password_file``).

        Raises :class:`ConfigError` naming the file and what to do when it was moved, emptied or opened to all
        users since the configuration was loaded; a driver that keeps its session open would not notice.
        """
        if self.ssh_key_file is not None:
            check_secret_file(self.ssh_key_file, f'SSH key of router "{self.name}"')
        else:
            self.password()


@dataclass(frozen=True)
class Settings:
    """Everything in the configuration file; each field but ``path`` is a section, in the file's order."""

    #: The configuration file, as an absolute path.
    path: Path = field(metadata=toml(in_file=False))
    #: ``[database]``.
    database: DatabaseSettings
    #: ``[web]``.
    web: WebSettings
    #: ``[security]``.
    security: SecuritySettings
    #: ``[scheduler]``.
    scheduler: SchedulerSettings
    #: ``[billing]``.
    billing: BillingSettings
    #: ``[[dunning.steps]]``, in the order they are taken; ``days_past_due`` strictly increasing. Empty: never
    #: throttle or suspend.
    dunning: tuple[DunningStepSettings, ...] = field(metadata=toml(array="steps"))
    #: ``[enforcement]``.
    enforcement: EnforcementSettings
    #: ``[smtp]``.
    smtp: SmtpSettings
    #: ``[payments]``.
    payments: PaymentSettings = PaymentSettings()
    #: ``[daemon]``.
    daemon: DaemonSettings = DaemonSettings()
    #: ``[logging]``.
    logging: LoggingSettings = LoggingSettings()
    #: ``[[routers]]``, in the file's order.
    routers: tuple[RouterSettings, ...] = ()

    def router(self, name: str) -> RouterSettings:
        """The router called ``name``; :class:`ConfigError` (not ``KeyError``) when there is none."""
        for router in self.routers:
            if router.name == name:
                return router
        names = [router.name for router in self.routers]
        raise ConfigError(f"no router named {show(name)}{suggest(name, names)}", path=self.path, key="routers")
