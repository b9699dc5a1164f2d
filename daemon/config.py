"""Settings: one TOML file, read once, validated completely, returned as frozen typed values.

:func:`load_settings` is the only way a TOML file becomes :class:`Settings`. It either returns settings in
which every value has been checked, or raises :class:`ConfigError` with one line naming the file, the dotted
key (list entries by index, counting from 0: ``routers[1].port``) and the reason, quoting the offending value
as it was written::

    /etc/edgebill/edgebill.toml: routers[1].port: must be 1..65535, got "abc"

The rules, exactly:

* Unknown keys and sections are refused, with the closest known key suggested. Keys that belong to the other
  kind of router (``interface`` on a ``mikrotik`` router) are refused too: nothing in the file is ignored.
* Values must have the TOML type their key documents: ``port = "8728"`` is refused, amounts and rates are
  quoted strings, and a TOML float is never accepted where money or a tax rate is expected.
* Relative file paths and relative SQLite paths resolve against the folder holding the configuration file,
  not against the working directory.
* Secret files (``web.secret_key_file``, ``security.secret_key_file``, ``smtp.password_file`` and each
  router's ``password_file`` or ``ssh_key_file``) must exist, be regular readable files, and must not be
  readable or writable by all users (any of the ``o=rw`` mode bits): such a file is refused with the
  ``chmod`` that fixes it. A file readable by its group is accepted with a logged warning, so a service group
  can share it. Their contents are never echoed; messages name only the file.
* A database URL holding a password is refused when the configuration file itself is readable by all users.
* Durations are strings such as ``"90s"``, ``"5m"``, ``"1h30m"`` or ``"1d"`` (:func:`parse_duration`).
"""

from __future__ import annotations

import codecs
import difflib
import enum
import ipaddress
import logging
import math
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from email.utils import parseaddr
from ipaddress import IPv4Network
from pathlib import Path
from typing import Final, Literal, NoReturn
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from policies.money import Currency, Money, UnknownCurrency, currency
from policies.rates import RateError, format_rate, parse_rate

__all__ = [
    "ACTIONS",
    "ANCHORS",
    "CONFIG_ENV",
    "LEAF_QDISCS",
    "MIN_WEB_KEY_BYTES",
    "SUSPEND_MODES",
    "SYSTEM_CONFIG",
    "BillingSettings",
    "ConfigError",
    "DatabaseSettings",
    "DunningStepSettings",
    "EnforcementSettings",
    "RouterKind",
    "RouterSettings",
    "SchedulerSettings",
    "SecuritySettings",
    "Settings",
    "SmtpSettings",
    "WebSettings",
    "default_config_path",
    "format_duration",
    "load_settings",
    "parse_duration",
    "render_settings",
]

logger = logging.getLogger(__name__)

RouterKind = Literal["mikrotik", "linux"]

#: Billing period anchors: calendar months, or months counted from each service's start date.
ANCHORS: Final = ("calendar", "anniversary")
#: Dunning step actions, in the order an account usually meets them.
ACTIONS: Final = ("remind", "throttle", "suspend")
#: How a suspended account is cut off: its PPPoE secret disabled, or a blocking limit plus the address list.
SUSPEND_MODES: Final = ("disable", "block")
#: Leaf queueing disciplines the Linux gateway driver attaches under each subscriber's class.
LEAF_QDISCS: Final = ("fq_codel", "sfq", "pfifo")

#: The environment variable naming the configuration file (see :func:`default_config_path`).
CONFIG_ENV: Final = "EDGEBILL_CONFIG"
#: Where the daemon looks last for its configuration.
SYSTEM_CONFIG: Final = Path("/etc/edgebill/edgebill.toml")

#: The shortest secret the web application accepts as its Flask session key, in bytes.
MIN_WEB_KEY_BYTES: Final = 32

_DEFAULT_PORTS: Final = {("mikrotik", False): 8728, ("mikrotik", True): 8729, ("linux", False): 22}


# -- errors -----------------------------------------------------------------------------------------------------


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` is one line: ``FILE: KEY: REASON``.

    ``ConfigError("reason")`` alone is allowed too; ``path`` and ``key`` are prefixed when given.
    """

    def __init__(self, reason: str, *, path: Path | str | None = None, key: str = "") -> None:
        self.reason = reason
        self.path = path
        self.key = key
        parts = [str(path)] if path is not None else []
        if key:
            parts.append(key)
        parts.append(reason)
        super().__init__(": ".join(parts))


# -- durations --------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:([0-9]{1,6})d)?(?:([0-9]{1,7})h)?(?:([0-9]{1,9})m)?(?:([0-9]{1,11})s)?")
_DURATION_HINT: Final = 'must be a duration like "90s", "5m", "1h30m" or "1d"'


def parse_duration(text: str) -> timedelta:
    """Parse ``"90s"``, ``"5m"``, ``"1h30m"``, ``"1d"`` (units d, h, m, s, largest first, each at most once).

    Raises ``ValueError`` whose message reads well after a key: ``must be a duration like ..., got "abc"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_duration needs a string, got {type(text).__name__}")
    match = _DURATION.fullmatch(text.strip())
    if match is None or not any(match.groups()):
        raise ValueError(f"{_DURATION_HINT}, got {_show(text)}")
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Print a whole-second, non-negative duration the way :func:`parse_duration` reads it: ``"1h30m"``."""
    if value < timedelta(0) or value.microseconds:
        raise ValueError(f"cannot print {value!r} as a duration: it must be whole, non-negative seconds")
    total = int(value.total_seconds())
    if total == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


# -- values -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the ledger lives."""

    #: An SQLAlchemy URL: ``sqlite:////abs/path.db`` (relative paths already resolved) or
    #: ``postgresql+psycopg://user@host/db`` (``postgresql://`` and ``postgres://`` are rewritten to it).
    url: str


@dataclass(frozen=True)
class WebSettings:
    """The dashboard's listening socket, session key and public address."""

    #: Address to bind, without brackets (``"::1"`` for ``[::1]:8080``).
    host: str
    port: int
    #: File holding the Flask secret key, at least :data:`MIN_WEB_KEY_BYTES` bytes.
    secret_key_file: Path
    #: Public address of the dashboard, without a trailing slash; links are built on it.
    base_url: str

    def secret_key(self) -> bytes:
        """The Flask secret key, read now (one trailing newline removed)."""
        key = _read_secret(self.secret_key_file, "web secret key")
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
        keys, problem = _fernet_keys(_read_secret(self.secret_key_file, "data encryption key"))
        if problem:
            raise ConfigError(problem, path=self.secret_key_file, key="data encryption key")
        return keys


@dataclass(frozen=True)
class SchedulerSettings:
    """How often the daemon's periodic jobs run."""

    #: Desired state diffed against every router.
    reconcile_interval: timedelta
    #: Traffic counters pulled from every router.
    poll_interval: timedelta
    #: Local wall-clock time (in ``billing.timezone``) of the daily billing run.
    billing_at: time
    #: Dunning steps evaluated against overdue accounts.
    dunning_interval: timedelta


@dataclass(frozen=True)
class BillingSettings:
    """Invoicing rules shared by every account."""

    currency: Currency
    timezone: ZoneInfo
    #: One of :data:`ANCHORS`.
    anchor: str
    #: Decimal fraction, ``0 <= tax_rate < 1`` with at most 6 places.
    tax_rate: Decimal
    #: True when plan prices already include the tax.
    tax_inclusive: bool
    #: Days from issue to due date.
    due_days: int
    #: Prefix of the gapless invoice numbers.
    invoice_series: str


@dataclass(frozen=True)
class DunningStepSettings:
    """One step of the dunning ladder, taken once an invoice is ``days_past_due`` days overdue."""

    name: str
    days_past_due: int
    #: One of :data:`ACTIONS`.
    action: str
    #: The step applies only when the overdue balance is at least this much (in ``billing.currency``).
    min_amount: Decimal | None = None
    #: ``(download, upload)`` in bits per second; set on ``throttle`` steps only.
    throttle_rate: tuple[int, int] | None = None
    #: Name of the e-mail template sent when the step is taken; required on ``remind`` steps.
    email_template: str | None = None


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

    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    #: Empty for no authentication.
    username: str = ""
    password_file: Path | None = None
    #: ``From:`` address, optionally with a display name: ``Billing <billing@example.net>``.
    sender: str = "edgebill@localhost"

    def password(self) -> str | None:
        """The SMTP password, read now (one trailing newline removed); ``None`` without authentication."""
        if self.password_file is None:
            return None
        return _decode_password(_read_secret(self.password_file, "SMTP password"), self.password_file, "SMTP password")


@dataclass(frozen=True)
class PaymentSettings:
    """Online payments."""

    #: File holding the Stripe webhook endpoint's signing secret (``whsec_...``); ``None``: the webhook is off.
    stripe_webhook_secret_file: Path | None = None

    def stripe_webhook_secret(self) -> str | None:
        """The signing secret, read now; ``None`` when no file is configured."""
        if self.stripe_webhook_secret_file is None:
            return None
        what = "Stripe webhook secret"
        return _decode_password(
            _read_secret(self.stripe_webhook_secret_file, what), self.stripe_webhook_secret_file, what
        )


@dataclass(frozen=True)
class RouterSettings:
    """One MikroTik RouterOS router or Linux ``tc`` gateway.

    Keys of the other kind keep their defaults: a ``mikrotik`` router has no ``interface``, a ``linux``
    gateway no ``password_file``.
    """

    name: str
    kind: RouterKind
    host: str
    port: int
    username: str
    #: mikrotik: file holding the API password.
    password_file: Path | None = None
    #: mikrotik: API over TLS (``api-ssl``).
    tls: bool = False
    #: mikrotik: verify the router's certificate when ``tls`` is on.
    tls_verify: bool = True
    #: Free text shown in the dashboard.
    site: str = ""
    #: mikrotik: codec of names and comments on the router (a Python codec name, normalised).
    encoding: str = "utf-8"
    #: Connect and command timeout.
    timeout: timedelta = timedelta(seconds=10)
    #: linux: private key for SSH.
    ssh_key_file: Path | None = None
    #: linux: OpenSSH known_hosts file holding the gateway's host key; ``None`` means the known hosts of the
    #: user the daemon runs as (``~/.ssh/known_hosts``). An unknown host key is refused unless
    #: ``trust_on_first_use``.
    known_hosts_file: Path | None = None
    #: linux: accept and record the host key on first connection (into ``known_hosts_file``).
    trust_on_first_use: bool = False
    #: linux: subscriber-facing interface the download shaping is attached to.
    interface: str | None = None
    #: linux: IFB device the upload shaping is attached to; ``None`` for no upload shaping.
    upload_ifb: str | None = None
    #: linux: one of :data:`LEAF_QDISCS`.
    leaf_qdisc: str = "fq_codel"
    #: linux: subscriber address ranges shaped by this gateway.
    subnets: tuple[IPv4Network, ...] = ()

    def password(self) -> str:
        """The router's API password, read now (one trailing newline removed).

        Raises :class:`ConfigError` when the router has no password file or it cannot be read.
        """
        what = f'password of router "{self.name}"'
        if self.password_file is None:
            raise ConfigError("no password_file is configured", key=what)
        return _decode_password(_read_secret(self.password_file, what), self.password_file, what)


@dataclass(frozen=True)
class Settings:
    """Everything in the configuration file."""

    #: The configuration file, as an absolute path.
    path: Path
    database: DatabaseSettings
    web: WebSettings
    security: SecuritySettings
    scheduler: SchedulerSettings
    billing: BillingSettings
    #: In the order they are taken; ``days_past_due`` strictly increasing. Empty: never throttle or suspend.
    dunning: tuple[DunningStepSettings, ...]
    enforcement: EnforcementSettings
    smtp: SmtpSettings
    routers: tuple[RouterSettings, ...]
    payments: PaymentSettings = PaymentSettings()

    def router(self, name: str) -> RouterSettings:
        """The router called ``name``; :class:`ConfigError` (not ``KeyError``) when there is none."""
        for router in self.routers:
            if router.name == name:
                return router
        names = [router.name for router in self.routers]
        hint = _suggest(name, names)
        raise ConfigError(f"no router named {_show(name)}{hint}", path=self.path, key="routers")


# -- entry points -----------------------------------------------------------------------------------------------


def default_config_path() -> Path:
    """``$EDGEBILL_CONFIG`` when set, else ``./edgebill.toml`` when it exists, else ``/etc/edgebill/edgebill.toml``."""
    env = os.environ.get(CONFIG_ENV, "")
    if env:
        return Path(env)
    local = Path.cwd() / "edgebill.toml"
    if local.is_file():
        return local
    return SYSTEM_CONFIG


def load_settings(path: Path | str) -> Settings:
    """Read and validate the TOML file at ``path``; raises :class:`ConfigError` on the first problem."""
    shown = str(path)
    file = Path(path)
    try:
        with file.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=shown) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not valid UTF-8: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}", path=shown
        ) from None
    except IsADirectoryError:
        raise ConfigError("cannot read: is a directory", path=shown) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=shown) from None
    return _Loader(shown, file.absolute(), mode).settings(data)


# -- rendering --------------------------------------------------------------------------------------------------


def render_settings(settings: Settings, *, reveal: bool = False) -> str:
    """The settings as TOML that :func:`load_settings` reads back to equal settings (paths absolute).

    Secret files are named, never read. A password inside the database URL is masked unless ``reveal``.
    """
    url = make_url(settings.database.url).render_as_string(hide_password=not reveal)
    web, sched, bill, enf, smtp = (
        settings.web,
        settings.scheduler,
        settings.billing,
        settings.enforcement,
        settings.smtp,
    )
    lines = [
        "[database]",
        f"url = {_toml(url)}",
        "",
        "[web]",
        f"listen = {_toml(_join_host_port(web.host, web.port))}",
        f"secret_key_file = {_toml(str(web.secret_key_file))}",
        f"base_url = {_toml(web.base_url)}",
        "",
        "[security]",
        f"secret_key_file = {_toml(str(settings.security.secret_key_file))}",
        "",
        "[scheduler]",
        f"reconcile_interval = {_toml(format_duration(sched.reconcile_interval))}",
        f"poll_interval = {_toml(format_duration(sched.poll_interval))}",
        f"billing_at = {_toml(sched.billing_at.strftime('%H:%M'))}",
        f"dunning_interval = {_toml(format_duration(sched.dunning_interval))}",
        "",
        "[billing]",
        f"currency = {_toml(bill.currency.code)}",
        f"timezone = {_toml(bill.timezone.key)}",
        f"anchor = {_toml(bill.anchor)}",
        f"tax_rate = {_toml(str(bill.tax_rate))}",
        f"tax_inclusive = {_toml(bill.tax_inclusive)}",
        f"due_days = {bill.due_days}",
        f"invoice_series = {_toml(bill.invoice_series)}",
    ]
    for step in settings.dunning:
        lines += ["", "[[dunning.steps]]", f"name = {_toml(step.name)}", f"days_past_due = {step.days_past_due}"]
        lines.append(f"action = {_toml(step.action)}")
        if step.min_amount is not None:
            lines.append(f"min_amount = {_toml(str(step.min_amount))}")
        if step.throttle_rate is not None:
            down, up = step.throttle_rate
            lines.append(f"throttle_rate = {_toml(f'{format_rate(down)}/{format_rate(up)}')}")
        if step.email_template is not None:
            lines.append(f"email_template = {_toml(step.email_template)}")
    lines += [
        "",
        "[enforcement]",
        f"address_list = {_toml(enf.address_list)}",
        f"suspend_mode = {_toml(enf.suspend_mode)}",
        f"payment_page_url = {_toml(enf.payment_page_url)}",
        "",
        "[smtp]",
        f"host = {_toml(smtp.host)}",
        f"port = {smtp.port}",
        f"starttls = {_toml(smtp.starttls)}",
        f"username = {_toml(smtp.username)}",
        f"password_file = {_toml(str(smtp.password_file or ''))}",
        f"sender = {_toml(smtp.sender)}",
        "",
        "[payments]",
        f"stripe_webhook_secret_file = {_toml(str(settings.payments.stripe_webhook_secret_file or ''))}",
    ]
    for router in settings.routers:
        lines += [
            "",
            "[[routers]]",
            f"name = {_toml(router.name)}",
            f"kind = {_toml(router.kind)}",
            f"host = {_toml(router.host)}",
            f"port = {router.port}",
            f"username = {_toml(router.username)}",
            f"site = {_toml(router.site)}",
            f"timeout = {_toml(format_duration(router.timeout))}",
        ]
        if router.kind == "mikrotik":
            lines += [
                f"password_file = {_toml(str(router.password_file or ''))}",
                f"tls = {_toml(router.tls)}",
                f"tls_verify = {_toml(router.tls_verify)}",
                f"encoding = {_toml(router.encoding)}",
            ]
        else:
            lines += [
                f"ssh_key_file = {_toml(str(router.ssh_key_file or ''))}",
                f"known_hosts_file = {_toml(str(router.known_hosts_file or ''))}",
                f"trust_on_first_use = {_toml(router.trust_on_first_use)}",
                f"interface = {_toml(router.interface or '')}",
                f"upload_ifb = {_toml(router.upload_ifb or '')}",
                f"leaf_qdisc = {_toml(router.leaf_qdisc)}",
                f"subnets = [{', '.join(_toml(str(net)) for net in router.subnets)}]",
            ]
    return "\n".join(lines) + "\n"


def _toml(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _quote(value)


# -- the loader -------------------------------------------------------------------------------------------------


class _Required(enum.Enum):
    REQUIRED = enum.auto()


_REQUIRED: Final = _Required.REQUIRED

_SECTIONS: Final = (
    "database",
    "web",
    "security",
    "scheduler",
    "billing",
    "dunning",
    "enforcement",
    "smtp",
    "payments",
    "routers",
)
_ROUTER_COMMON: Final = ("name", "kind", "host", "port", "username", "site", "timeout")
_ROUTER_KIND_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "mikrotik": ("password_file", "tls", "tls_verify", "encoding"),
    "linux": (
        "ssh_key_file",
        "known_hosts_file",
        "trust_on_first_use",
        "interface",
        "upload_ifb",
        "leaf_qdisc",
        "subnets",
    ),
}
_STEP_KEYS: Final = ("name", "days_past_due", "action", "min_amount", "throttle_rate", "email_template")

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_NAME_RULE: Final = 'must be 1-32 lower-case letters, digits, "_" or "-", starting with a letter or digit'
_TEMPLATE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_ADDRESS_LIST = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_SERIES = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,15}")
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_MIN_INTERVAL: Final = timedelta(seconds=10)
_MAX_INTERVAL: Final = timedelta(days=1)
_MIN_TIMEOUT: Final = timedelta(seconds=1)
_MAX_TIMEOUT: Final = timedelta(minutes=10)


class _Loader:
    """Turns the parsed TOML document into :class:`Settings`, failing on the first problem."""

    def __init__(self, shown: str, file: Path, mode: int) -> None:
        self.shown = shown
        self.file = file
        self.base = file.parent
        self.mode = mode

    def fail(self, key: str, reason: str) -> NoReturn:
        raise ConfigError(reason, path=self.shown, key=key)

    def settings(self, data: Mapping[str, object]) -> Settings:
        root = _Table(self, "", data)
        root.check_keys(_SECTIONS)
        database = self.database(root.table("database", required=True))
        web = self.web(root.table("web", required=True))
        security = self.security(root.table("security", required=True))
        scheduler = self.scheduler(root.table("scheduler"))
        billing = self.billing(root.table("billing", required=True))
        dunning = self.dunning(root.table("dunning"), billing.currency)
        enforcement = self.enforcement(root.table("enforcement"), web.base_url)
        smtp = self.smtp(root.table("smtp"))
        payments = self.payments(root.table("payments"))
        routers = self.routers(root.tables("routers"))
        _warn_dst(scheduler.billing_at, billing.timezone, self.shown)
        return Settings(
            path=self.file,
            database=database,
            web=web,
            security=security,
            scheduler=scheduler,
            billing=billing,
            dunning=dunning,
            enforcement=enforcement,
            smtp=smtp,
            routers=routers,
            payments=payments,
        )

    # -- sections -------------------------------------------------------------------------------------------

    def database(self, sec: _Table) -> DatabaseSettings:
        sec.check_keys(("url",))
        text = sec.string("url", _REQUIRED)
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            sec.fail("url", f"not a database URL, got {_show(_mask_url(text))}")
        shown = _show(url.render_as_string(hide_password=True))
        driver = url.drivername
        if driver in ("sqlite", "sqlite+pysqlite"):
            database = url.database or ""
            if database in ("", ":memory:") or database.startswith("file:"):
                sec.fail("url", f"must name an SQLite file (an in-memory database loses everything), got {shown}")
            path = Path(database)
            if not path.is_absolute():
                url = url.set(database=str(self.base / path))
        elif driver in ("postgresql", "postgres", "postgresql+psycopg"):
            url = url.set(drivername="postgresql+psycopg")
            if not url.database:
                sec.fail("url", f"must name a database, got {shown}")
            if url.password is not None and self.mode & stat.S_IROTH:
                sec.fail(
                    "url",
                    f"holds a password but {self.shown} is readable by all users (mode "
                    f"{stat.S_IMODE(self.mode):04o}); chmod o-rwx it, or use a URL without a password "
                    "(~/.pgpass or peer authentication)",
                )
        else:
            sec.fail("url", f'must be a "sqlite:///" or "postgresql+psycopg://" URL, got {shown}')
        return DatabaseSettings(url=url.render_as_string(hide_password=False))

    def web(self, sec: _Table) -> WebSettings:
        sec.check_keys(("listen", "secret_key_file", "base_url"))
        listen = sec.string("listen", "127.0.0.1:8080")
        host, port = self.listen(sec, "listen", listen)
        key_file = sec.secret_file("secret_key_file")
        key = sec.read_secret("secret_key_file", key_file)
        if len(key) < MIN_WEB_KEY_BYTES:
            sec.fail(
                "secret_key_file",
                f"must hold at least {MIN_WEB_KEY_BYTES} bytes, {_show(sec.get('secret_key_file'))} holds {len(key)}",
            )
        if sec.has("base_url"):
            base_url = sec.url("base_url", allow_query=False)
        else:
            if host in ("0.0.0.0", "::"):
                sec.fail("base_url", f"required when web.listen binds every address, got listen = {_show(listen)}")
            base_url = f"http://{_join_host_port(host, port)}"
        return WebSettings(host=host, port=port, secret_key_file=key_file, base_url=base_url)

    def listen(self, sec: _Table, key: str, text: str) -> tuple[str, int]:
        hint = f'must be "host:port" (IPv6 as "[::1]:8080"), got {_show(text)}'
        if text.startswith("["):
            host, sep, port_text = text[1:].partition("]:")
            if not sep:
                sec.fail(key, hint)
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                sec.fail(key, f"not an IPv6 address inside the brackets, got {_show(text)}")
        else:
            host, sep, port_text = text.rpartition(":")
            if not sep or not host:
                sec.fail(key, hint)
            if ":" in host:
                sec.fail(key, f'IPv6 addresses need brackets, as in "[::1]:8080", got {_show(text)}')
            if not _valid_host(host):
                sec.fail(key, f"not a valid IP address or host name, got {_show(text)}")
        if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 1 <= int(port_text) <= 65535:
            sec.fail(key, f"port must be 1..65535, got {_show(text)}")
        return host, int(port_text)

    def security(self, sec: _Table) -> SecuritySettings:
        sec.check_keys(("secret_key_file",))
        key_file = sec.secret_file("secret_key_file")
        _, problem = _fernet_keys(sec.read_secret("secret_key_file", key_file))
        if problem:
            sec.fail("secret_key_file", f"{problem}, in {_show(sec.get('secret_key_file'))}")
        return SecuritySettings(secret_key_file=key_file)

    def scheduler(self, sec: _Table) -> SchedulerSettings:
        sec.check_keys(("reconcile_interval", "poll_interval", "billing_at", "dunning_interval"))
        reconcile = sec.duration("reconcile_interval", "60s", _MIN_INTERVAL, _MAX_INTERVAL)
        poll = sec.duration("poll_interval", "5m", _MIN_INTERVAL, _MAX_INTERVAL)
        billing_at = sec.clock("billing_at", time(4, 0))
        dunning = sec.duration("dunning_interval", "1h", _MIN_INTERVAL, _MAX_INTERVAL)
        return SchedulerSettings(
            reconcile_interval=reconcile, poll_interval=poll, billing_at=billing_at, dunning_interval=dunning
        )

    def billing(self, sec: _Table) -> BillingSettings:
        sec.check_keys(("currency", "timezone", "anchor", "tax_rate", "tax_inclusive", "due_days", "invoice_series"))
        code = sec.string("currency", _REQUIRED)
        try:
            cur = currency(code)
        except UnknownCurrency:
            sec.fail("currency", f'unknown currency, expected an ISO 4217 code such as "USD", got {_show(code)}')
        zone = sec.string("timezone", _REQUIRED)
        tz = _zone(zone)
        if tz is None:
            sec.fail("timezone", f"unknown time zone, got {_show(zone)}{_suggest_zone(zone)}")
        anchor = sec.choice("anchor", ANCHORS, "calendar")
        tax_rate = self.tax_rate(sec)
        tax_inclusive = sec.boolean("tax_inclusive", False)
        due_days = sec.integer("due_days", 0, 365, 14)
        series = sec.string("invoice_series", "INV")
        if not _SERIES.fullmatch(series):
            sec.fail(
                "invoice_series",
                'must be 1-16 letters, digits, "_", ".", "/" or "-", starting with a letter or digit, '
                f"got {_show(series)}",
            )
        return BillingSettings(
            currency=cur,
            timezone=tz,
            anchor=anchor,
            tax_rate=tax_rate,
            tax_inclusive=tax_inclusive,
            due_days=due_days,
            invoice_series=series,
        )

    def tax_rate(self, sec: _Table) -> Decimal:
        raw = sec.get("tax_rate", "0")
        if isinstance(raw, float):
            sec.fail("tax_rate", f'must be a quoted decimal like "0.16" (a float is inexact), got {_show(raw)}')
        if not isinstance(raw, str):
            sec.fail("tax_rate", f'must be a quoted decimal fraction like "0.16", got {_show(raw)}')
        if not _DECIMAL.fullmatch(raw):
            sec.fail("tax_rate", f'must be a decimal fraction like "0.16", got {_show(raw)}')
        rate = Decimal(raw)
        if rate >= 1:
            sec.fail("tax_rate", f'must be below 1 (16% is written "0.16"), got {_show(raw)}')
        exponent = rate.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -6:
            sec.fail("tax_rate", f"must have at most 6 decimal places, got {_show(raw)}")
        return rate

    def dunning(self, sec: _Table, cur: Currency) -> tuple[DunningStepSettings, ...]:
        sec.check_keys(("steps",))
        steps: list[DunningStepSettings] = []
        for step_sec in sec.tables("steps"):
            step = self.dunning_step(step_sec, cur)
            for earlier in steps:
                if earlier.name == step.name:
                    step_sec.fail("name", f"already used by another step, got {_show(step.name)}")
            if steps and step.days_past_due <= steps[-1].days_past_due:
                step_sec.fail(
                    "days_past_due",
                    f"must be greater than the previous step's ({steps[-1].days_past_due}), got {step.days_past_due}",
                )
            steps.append(step)
        return tuple(steps)

    def dunning_step(self, sec: _Table, cur: Currency) -> DunningStepSettings:
        sec.check_keys(_STEP_KEYS)
        name = sec.string("name", _REQUIRED)
        if not _NAME.fullmatch(name):
            sec.fail("name", f"{_NAME_RULE}, got {_show(name)}")
        days = sec.integer("days_past_due", 0, 3650, _REQUIRED)
        action = sec.choice("action", ACTIONS, _REQUIRED)
        min_amount = self.min_amount(sec, cur) if sec.has("min_amount") else None
        throttle: tuple[int, int] | None = None
        if action == "throttle":
            if not sec.has("throttle_rate"):
                sec.fail("throttle_rate", 'required on a throttle step, like "1M/512k" (download/upload)')
            throttle = self.throttle_rate(sec)
        elif sec.has("throttle_rate"):
            sec.fail("throttle_rate", f"only valid on a throttle step, got action = {_show(action)}")
        template = sec.optional_string("email_template")
        if template is None and action == "remind":
            sec.fail("email_template", "required on a remind step")
        if template is not None and not _TEMPLATE.fullmatch(template):
            sec.fail(
                "email_template",
                'must be 1-64 lower-case letters, digits, "_" or "-", starting with a letter or digit, '
                f"got {_show(template)}",
            )
        return DunningStepSettings(
            name=name,
            days_past_due=days,
            action=action,
            min_amount=min_amount,
            throttle_rate=throttle,
            email_template=template,
        )

    def min_amount(self, sec: _Table, cur: Currency) -> Decimal:
        raw = sec.get("min_amount")
        if isinstance(raw, float):
            sec.fail("min_amount", f'must be a quoted amount like "1.00" (a float is inexact), got {_show(raw)}')
        if not isinstance(raw, str) or not _DECIMAL.fullmatch(raw):
            sec.fail("min_amount", f'must be a non-negative amount like "1.00", got {_show(raw)}')
        try:
            return Money.parse(raw, cur).amount
        except ValueError as exc:
            if "decimal places" in str(exc):
                sec.fail("min_amount", f"{cur.code} has {cur.minor_units} decimal places, got {_show(raw)}")
            sec.fail("min_amount", f"out of range, got {_show(raw)}")

    def throttle_rate(self, sec: _Table) -> tuple[int, int]:
        text = sec.string("throttle_rate", _REQUIRED)
        parts = text.split("/")
        if len(parts) > 2:
            sec.fail("throttle_rate", f'must be "download/upload" like "1M/512k", got {_show(text)}')
        try:
            rates = [parse_rate(part) for part in parts]
        except RateError:
            sec.fail(
                "throttle_rate",
                f'must be "download/upload" rates like "1M/512k" (suffixes k, M, G), got {_show(text)}',
            )
        return (rates[0], rates[-1])

    def enforcement(self, sec: _Table, base_url: str) -> EnforcementSettings:
        sec.check_keys(("address_list", "suspend_mode", "payment_page_url"))
        address_list = sec.string("address_list", "edgebill-overdue")
        if not _ADDRESS_LIST.fullmatch(address_list):
            sec.fail(
                "address_list",
                'must be 1-63 letters, digits, "_", "." or "-", starting with a letter or digit, '
                f"got {_show(address_list)}",
            )
        mode = sec.choice("suspend_mode", SUSPEND_MODES, "disable")
        page = sec.url("payment_page_url", allow_query=True) if sec.has("payment_page_url") else base_url
        return EnforcementSettings(address_list=address_list, suspend_mode=mode, payment_page_url=page)

    def smtp(self, sec: _Table) -> SmtpSettings:
        sec.check_keys(("host", "port", "starttls", "username", "password_file", "sender"))
        defaults = SmtpSettings()
        host = sec.host("host", defaults.host)
        port = sec.integer("port", 1, 65535, defaults.port)
        starttls = sec.boolean("starttls", defaults.starttls)
        username = sec.string("username", defaults.username, allow_empty=True)
        password_file = sec.optional_secret_file("password_file")
        if username and password_file is None:
            sec.fail("password_file", f"required when smtp.username is set, got username = {_show(username)}")
        if password_file is not None and not username:
            sec.fail("username", "required when smtp.password_file is set")
        if username and not starttls and port != 465 and not _is_loopback(host):
            logger.warning(
                "%s: smtp: the password for %s is sent to %s unencrypted; set starttls = true",
                self.shown,
                username,
                host,
            )
        sender = sec.string("sender", defaults.sender)
        _, address = parseaddr(sender)
        local, _, domain = address.rpartition("@")
        if not local or not domain or " " in local or not _valid_host(domain):
            sec.fail("sender", f'must be an e-mail address like "billing@example.net", got {_show(sender)}')
        return SmtpSettings(
            host=host,
            port=port,
            starttls=starttls,
            username=username,
            password_file=password_file,
            sender=sender,
        )

    def payments(self, sec: _Table) -> PaymentSettings:
        sec.check_keys(("stripe_webhook_secret_file",))
        return PaymentSettings(stripe_webhook_secret_file=sec.optional_secret_file("stripe_webhook_secret_file"))

    def routers(self, tables: Sequence[_Table]) -> tuple[RouterSettings, ...]:
        routers: list[RouterSettings] = []
        networks: list[tuple[str, IPv4Network]] = []
        for sec in tables:
            router = self.router(sec)
            for other in routers:
                if other.name == router.name:
                    sec.fail("name", f"already used by another router, got {_show(router.name)}")
                if (other.host, other.port) == (router.host, router.port):
                    sec.fail("host", f'same host and port as router "{other.name}", got {_show(router.host)}')
            for index, net in enumerate(router.subnets):
                for where, seen in networks:
                    if net.overlaps(seen):
                        sec.fail(f"subnets[{index}]", f'overlaps {where} "{seen}", got {_show(str(net))}')
                networks.append((f"{sec.prefix}.subnets[{index}]", net))
            routers.append(router)
        return tuple(routers)

    def router(self, sec: _Table) -> RouterSettings:
        every = _ROUTER_COMMON + tuple(key for keys in _ROUTER_KIND_KEYS.values() for key in keys)
        sec.check_keys(every)
        name = sec.string("name", _REQUIRED)
        if not _NAME.fullmatch(name):
            sec.fail("name", f"{_NAME_RULE}, got {_show(name)}")
        kind: RouterKind = "mikrotik" if sec.choice("kind", ("mikrotik", "linux"), _REQUIRED) == "mikrotik" else "linux"
        for other_kind, keys in _ROUTER_KIND_KEYS.items():
            if other_kind != kind:
                for key in keys:
                    if sec.has(key):
                        sec.fail(key, f'only valid for kind = "{other_kind}", this router is {_show(kind)}')
        host = sec.host("host", _REQUIRED)
        username = sec.string("username", _REQUIRED)
        site = sec.string("site", "", allow_empty=True, max_length=100)
        timeout = sec.duration("timeout", "10s", _MIN_TIMEOUT, _MAX_TIMEOUT)
        if kind == "mikrotik":
            tls = sec.boolean("tls", False)
            port = sec.integer("port", 1, 65535, _DEFAULT_PORTS[kind, tls])
            password_file = sec.optional_secret_file("password_file")
            if password_file is None:
                sec.fail("password_file", "required for a mikrotik router")
            tls_verify = sec.boolean("tls_verify", True)
            if tls and not tls_verify:
                logger.warning(
                    "%s: %s: router %s: its TLS certificate is not verified (tls_verify = false)",
                    self.shown,
                    sec.prefix,
                    name,
                )
            encoding = self.encoding(sec)
            return RouterSettings(
                name=name,
                kind=kind,
                host=host,
                port=port,
                username=username,
                password_file=password_file,
                tls=tls,
                tls_verify=tls_verify,
                site=site,
                encoding=encoding,
                timeout=timeout,
            )
        port = sec.integer("port", 1, 65535, _DEFAULT_PORTS[kind, False])
        named = sec.optional_path("ssh_key_file")
        if named is not None and _is_public_key(named):
            sec.fail(
                "ssh_key_file",
                f"holds a public key; name the private key file, got {_show(sec.get('ssh_key_file'))}",
            )
        key_file = sec.optional_secret_file("ssh_key_file")
        if key_file is None:
            sec.fail("ssh_key_file", "required for a linux router")
        tofu = sec.boolean("trust_on_first_use", False)
        known_hosts = sec.optional_path("known_hosts_file")
        if known_hosts is not None and not tofu and not known_hosts.is_file():
            sec.fail(
                "known_hosts_file",
                f"no such file{_resolved(sec.get('known_hosts_file'), known_hosts)} (set trust_on_first_use "
                f"= true to record the key on first connection), got {_show(sec.get('known_hosts_file'))}",
            )
        if known_hosts is not None and tofu and not known_hosts.parent.is_dir():
            sec.fail(
                "known_hosts_file",
                f"folder {_show(str(known_hosts.parent))} does not exist, got {_show(sec.get('known_hosts_file'))}",
            )
        if tofu and known_hosts is None:
            sec.fail("known_hosts_file", "required with trust_on_first_use = true, to record the host key in")
        interface = sec.interface("interface", _REQUIRED)
        upload_ifb = sec.interface("upload_ifb", None)
        if upload_ifb is not None and upload_ifb == interface:
            sec.fail("upload_ifb", f"must differ from interface, got {_show(upload_ifb)}")
        leaf_qdisc = sec.choice("leaf_qdisc", LEAF_QDISCS, "fq_codel")
        subnets = self.subnets(sec)
        return RouterSettings(
            name=name,
            kind=kind,
            host=host,
            port=port,
            username=username,
            site=site,
            timeout=timeout,
            ssh_key_file=key_file,
            known_hosts_file=known_hosts,
            trust_on_first_use=tofu,
            interface=interface,
            upload_ifb=upload_ifb,
            leaf_qdisc=leaf_qdisc,
            subnets=subnets,
        )

    def encoding(self, sec: _Table) -> str:
        name = sec.string("encoding", "utf-8")
        try:
            "edgebill".encode(name)
            return codecs.lookup(name).name
        except LookupError:
            sec.fail("encoding", f'unknown text encoding, expected a codec name such as "cp1252", got {_show(name)}')

    def subnets(self, sec: _Table) -> tuple[IPv4Network, ...]:
        raw = sec.get("subnets", [])
        if not isinstance(raw, list):
            sec.fail("subnets", f'must be an array of networks like ["100.64.0.0/16"], got {_show(raw)}')
        nets: list[IPv4Network] = []
        for index, item in enumerate(raw):
            key = f"subnets[{index}]"
            if not isinstance(item, str):
                sec.fail(key, f'must be a network like "100.64.0.0/16", got {_show(item)}')
            try:
                net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                sec.fail(key, f'must be a network like "100.64.0.0/16", got {_show(item)}')
            if not isinstance(net, IPv4Network):
                sec.fail(key, f"must be an IPv4 network, got {_show(item)}")
            if str(net) != item and str(net.network_address) != item:
                sec.fail(key, f'has host bits set (the network is "{net}"), got {_show(item)}')
            for earlier_index, earlier in enumerate(nets):
                if net.overlaps(earlier):
                    sec.fail(key, f'overlaps subnets[{earlier_index}] "{earlier}", got {_show(item)}')
            nets.append(net)
        return tuple(nets)


class _Table:
    """One TOML table under validation, with its dotted key prefix for messages."""

    def __init__(self, loader: _Loader, prefix: str, data: Mapping[str, object]) -> None:
        self.loader = loader
        self.prefix = prefix
        self.data = data

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, reason: str) -> NoReturn:
        self.loader.fail(self.key(name), reason)

    def has(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, default: object = None) -> object:
        return self.data.get(name, default)

    def check_keys(self, known: Sequence[str]) -> None:
        for name in self.data:
            if name not in known:
                what = "section" if not self.prefix else "key"
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
                if close:
                    self.fail(name, f"unknown {what}; did you mean {_show(close[0])}?")
                self.fail(name, f"unknown {what}; expected one of {', '.join(_show(k) for k in known)}")

    # -- nested tables --------------------------------------------------------------------------------------

    def table(self, name: str, *, required: bool = False) -> _Table:
        raw = self.data.get(name)
        if raw is None:
            if required:
                self.fail(name, f"required section is missing; add a [{self.key(name)}] table")
            return _Table(self.loader, self.key(name), {})
        if not isinstance(raw, dict):
            self.fail(name, f"must be a table ([{self.key(name)}]), got {_show(raw)}")
        return _Table(self.loader, self.key(name), raw)

    def tables(self, name: str) -> list[_Table]:
        raw = self.data.get(name, [])
        if not isinstance(raw, list):
            self.fail(name, f"must be an array of tables ([[{self.key(name)}]]), got {_show(raw)}")
        result = []
        for index, item in enumerate(raw):
            if not isinstance(item, dict):
                self.fail(f"{name}[{index}]", f"must be a table, got {_show(item)}")
            result.append(_Table(self.loader, f"{self.key(name)}[{index}]", item))
        return result

    # -- scalars --------------------------------------------------------------------------------------------

    def _present(self, name: str, default: object) -> object:
        if name not in self.data:
            if default is _REQUIRED:
                self.fail(name, "required key is missing")
            return default
        return self.data[name]

    def string(self, name: str, default: str | _Required, *, allow_empty: bool = False, max_length: int = 1024) -> str:
        raw = self._present(name, default)
        if not isinstance(raw, str):
            self.fail(name, f"must be a string, got {_show(raw)}")
        if not raw and not allow_empty:
            self.fail(name, "must not be empty")
        if _CONTROL.search(raw):
            self.fail(name, f"must not contain control characters, got {_show(raw)}")
        if len(raw) > max_length:
            self.fail(name, f"must be at most {max_length} characters, got {_show(raw)}")
        return raw

    def optional_string(self, name: str) -> str | None:
        if self.data.get(name, "") == "":
            return None
        return self.string(name, _REQUIRED)

    def integer(self, name: str, low: int, high: int, default: int | _Required) -> int:
        raw = self._present(name, default)
        if type(raw) is not int or not low <= raw <= high:
            quoted = isinstance(raw, str) and raw.strip().lstrip("+-").isdigit()
            hint = " (an integer, without quotes)" if quoted else ""
            self.fail(name, f"must be {low}..{high}{hint}, got {_show(raw)}")
        return raw

    def boolean(self, name: str, default: bool) -> bool:
        raw = self._present(name, default)
        if not isinstance(raw, bool):
            self.fail(name, f"must be true or false, got {_show(raw)}")
        return raw

    def choice(self, name: str, choices: Sequence[str], default: str | _Required) -> str:
        raw = self._present(name, default)
        if not isinstance(raw, str) or raw not in choices:
            self.fail(name, f"must be one of {', '.join(_show(c) for c in choices)}, got {_show(raw)}")
        return raw

    def duration(self, name: str, default: str, low: timedelta, high: timedelta) -> timedelta:
        raw = self._present(name, default)
        if not isinstance(raw, str):
            self.fail(name, f"{_DURATION_HINT} (a quoted string), got {_show(raw)}")
        try:
            value = parse_duration(raw)
        except ValueError as exc:
            self.fail(name, str(exc))
        if not low <= value <= high:
            self.fail(name, f"must be between {format_duration(low)} and {format_duration(high)}, got {_show(raw)}")
        return value

    def clock(self, name: str, default: time) -> time:
        raw = self._present(name, default)
        if isinstance(raw, time) and raw.tzinfo is None and raw.second == 0 and raw.microsecond == 0:
            return raw
        match = _HHMM.fullmatch(raw) if isinstance(raw, str) else None
        if match is None:
            self.fail(name, f'must be a 24-hour time "HH:MM" like "04:00", got {_show(raw)}')
        return time(int(match.group(1)), int(match.group(2)))

    def host(self, name: str, default: str | _Required) -> str:
        text = self.string(name, default)
        if not _valid_host(text):
            self.fail(name, f"not a valid IP address or host name, got {_show(text)}")
        return text

    def interface(self, name: str, default: str | _Required | None) -> str | None:
        raw = self._present(name, default)
        if raw is None or (raw == "" and default is None):
            return None
        if not isinstance(raw, str) or not _IFNAME.fullmatch(raw) or raw in (".", ".."):
            self.fail(
                name,
                f'must be a Linux interface name (1-15 letters, digits, "_", "." or "-"), got {_show(raw)}',
            )
        return raw

    def url(self, name: str, *, allow_query: bool) -> str:
        text = self.string(name, _REQUIRED)
        problem = _url_problem(text, allow_query=allow_query)
        if problem:
            self.fail(name, f"{problem}, got {_show(text)}")
        return text if allow_query else text.rstrip("/")

    # -- files ----------------------------------------------------------------------------------------------

    def optional_path(self, name: str) -> Path | None:
        text = self.optional_string(name)
        if text is None:
            return None
        return self.loader.base / text

    def secret_file(self, name: str) -> Path:
        path = self.optional_secret_file(name)
        if path is None:
            self.fail(name, "required key is missing" if name not in self.data else "must not be empty")
        return path

    def optional_secret_file(self, name: str) -> Path | None:
        path = self.optional_path(name)
        if path is None:
            return None
        shown = self.get(name)
        problem = _secret_file_problem(path)
        if problem:
            self.fail(name, f"{problem}{_resolved(shown, path)}, got {_show(shown)}")
        return path

    def read_secret(self, name: str, path: Path) -> bytes:
        try:
            return _strip_newline(path.read_bytes())
        except OSError as exc:
            self.fail(name, f"cannot read: {exc.strerror or exc}, got {_show(self.get(name))}")


# -- helpers ----------------------------------------------------------------------------------------------------


def _show(value: object) -> str:
    """Quote a configuration value the way it is written in TOML, shortened to keep messages on one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _quote(value if len(value) <= 80 else value[:77] + "...")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        text = "[" + ", ".join(_show(item) for item in value) + "]"
        return text if len(text) <= 100 else f"an array of {len(value)} items"
    return repr(value)


_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _quote(text: str) -> str:
    """A TOML basic string."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {_show(close[0])}?" if close else ""


def _zone(name: str) -> ZoneInfo | None:
    if not name or name != name.strip() or name.startswith("/") or ".." in name.split("/"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _suggest_zone(name: str) -> str:
    zones = available_timezones()
    folded = {zone.lower(): zone for zone in zones}
    if name.lower() in folded:
        return f"; did you mean {_show(folded[name.lower()])}?"
    return _suggest(name, zones)


def _mask_url(text: str) -> str:
    """Hide a password in a URL that SQLAlchemy could not parse."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", text)


def _valid_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    if labels[-1].isdigit():
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in labels)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _url_problem(text: str, *, allow_query: bool) -> str:
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return 'must be an "http://" or "https://" URL'
    host = parts.hostname or ""
    if not host or not _valid_host(host):
        return "must name a valid host"
    if parts.username is not None or parts.password is not None:
        return "must not contain a user name or password"
    if port == 0:
        return "port must be 1..65535"
    if parts.fragment or text.endswith("#"):
        return "must not have a #fragment"
    if parts.query and not allow_query:
        return "must not have a ?query"
    if " " in text:
        return "must not contain spaces"
    return ""


def _resolved(shown: object, path: Path) -> str:
    """`` (resolved to /abs/path)`` when the value was a relative path."""
    if isinstance(shown, str) and not Path(shown).is_absolute():
        return f" ({path})"
    return ""


def _secret_file_problem(path: Path) -> str:
    """Why ``path`` cannot hold a secret, or an empty string; logs a warning when its group may read it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        return f"is accessible to all users (mode {mode:04o}); run chmod o-rwx on it"
    if not os.access(path, os.R_OK):
        return "cannot read: Permission denied"
    if mode & stat.S_IRGRP:
        logger.warning("secret file %s is readable by its group (mode %04o)", path, mode)
    return ""


def _is_public_key(path: Path) -> bool:
    """True when ``path`` is a readable OpenSSH public key (a common mistake for the private key file)."""
    if not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        return False
    return head.startswith((b"ssh-", b"ecdsa-", b"sk-"))


def _read_secret(path: Path, what: str) -> bytes:
    problem = _secret_file_problem(path)
    if problem:
        raise ConfigError(problem, path=path, key=what)
    try:
        return _strip_newline(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=path, key=what) from None


def _strip_newline(data: bytes) -> bytes:
    if data.endswith(b"\r\n"):
        return data[:-2]
    if data.endswith(b"\n"):
        return data[:-1]
    return data


def _decode_password(data: bytes, path: Path, what: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("is not valid UTF-8", path=path, key=what) from None
    if not text:
        raise ConfigError("is empty", path=path, key=what)
    return text


def _fernet_keys(data: bytes) -> tuple[tuple[bytes, ...], str]:
    """The Fernet keys in a key file (one per line; blank lines and ``#`` comments ignored), or why not."""
    keys: list[bytes] = []
    for number, raw in enumerate(data.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        try:
            Fernet(line)
        except (ValueError, TypeError):
            return (), f"line {number} is not a Fernet key (32 url-safe base64-encoded bytes)"
        keys.append(line)
    if not keys:
        return (), "holds no Fernet key"
    return tuple(keys), ""


def _warn_dst(at: time, tz: ZoneInfo, shown: str) -> None:
    """Log when the daily run falls in a daylight-saving gap or overlap of ``tz`` in the coming year."""
    today = datetime.now(tz).date()
    for offset in range(366):
        day = today + timedelta(days=offset)
        local = datetime.combine(day, at, tzinfo=tz)
        round_trip = local.astimezone(ZoneInfo("UTC")).astimezone(tz)
        other = local.replace(fold=1)
        if round_trip.replace(tzinfo=None) != local.replace(tzinfo=None) or other.utcoffset() != local.utcoffset():
            logger.warning(
                "%s: scheduler.billing_at %s is skipped or repeated by a daylight-saving change in %s on %s; "
                "the billing run that day moves",
                shown,
                at.strftime("%H:%M"),
                tz.key,
                day.isoformat(),
            )
            return
