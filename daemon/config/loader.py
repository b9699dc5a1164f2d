"""The loader: one TOML file, read once, validated completely, returned as :class:`Settings`.

:func:`load_settings` is the only way a TOML file becomes settings. It either returns settings in which every
value has been checked, or raises :class:`ConfigError` on the first problem, with one line naming the file, the
dotted key (list entries by index, counting from 0: ``routers[1].port``) and the reason, quoting the offending
value as it was written. The keys each section accepts are those declared by the settings classes of
:mod:`daemon.config.schema`; this module holds the rules each value must follow.
"""

from __future__ import annotations

import codecs
import ipaddress
import logging
import os
import re
import stat
import tomllib
from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from decimal import Decimal
from email.utils import parseaddr
from ipaddress import IPv4Network
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from daemon.config.errors import ConfigError
from daemon.config.errors import show as _show
from daemon.config.files import FileProblem, check_nesting, decode_text, read_user_file
from daemon.config.schema import (
    ACTIONS,
    ANCHORS,
    LEAF_QDISCS,
    LOG_FORMATS,
    LOG_LEVELS,
    MIN_WEB_KEY_BYTES,
    ROUTER_KINDS,
    SUSPEND_MODES,
    BillingSettings,
    DaemonSettings,
    DatabaseSettings,
    DunningStepSettings,
    EnforcementSettings,
    LoggingSettings,
    PaymentSettings,
    RouterKind,
    RouterSettings,
    SchedulerSettings,
    SecuritySettings,
    Settings,
    SmtpSettings,
    WebSettings,
    array_key,
    default,
    kind_keys,
    known_keys,
)
from daemon.config.secrets import fernet_keys, is_public_key
from daemon.config.tables import REQUIRED, Source, Table, resolved
from daemon.config.values import is_loopback, join_host_port, mask_url, suggest_zone, valid_host, zone
from daemon.config.web import web_settings
from policies import naming
from policies.money import Currency, Money, UnknownCurrency, currency
from policies.naming import NamingError
from policies.rates import RateError, parse_rate

__all__ = ["CONFIG_ENV", "SYSTEM_CONFIG", "default_config_path", "load_settings"]

logger = logging.getLogger(__name__)

#: The environment variable naming the configuration file (see :func:`default_config_path`).
CONFIG_ENV: Final = "EDGEBILL_CONFIG"
#: Where the daemon looks last for its configuration.
SYSTEM_CONFIG: Final = Path("/etc/edgebill/edgebill.toml")

#: The largest configuration file read (the example is 8 KB).
MAX_CONFIG_BYTES: Final = 1024 * 1024
#: How deep arrays and tables may nest in it (the schema needs 3: ``dunning.steps[0].throttle_rate``).
MAX_NESTING: Final = 8

_DEFAULT_PORTS: Final = {("mikrotik", False): 8728, ("mikrotik", True): 8729, ("linux", False): 22}


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
        text = decode_text(read_user_file(file, limit=MAX_CONFIG_BYTES))
        mode = file.stat().st_mode
        data = tomllib.loads(text)
        check_nesting(data, limit=MAX_NESTING)
    except FileProblem as exc:
        raise ConfigError(str(exc), path=shown) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=shown) from None
    except RecursionError:  # tomllib reads nested arrays and inline tables recursively
        raise ConfigError(f"values are nested more than {MAX_NESTING} levels deep", path=shown) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", path=shown) from None
    return _Loader(shown, file.absolute(), mode).settings(data)


# -- rules of single values -------------------------------------------------------------------------------------


_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_NAME_RULE: Final = 'must be 1-32 lower-case letters, digits, "_" or "-", starting with a letter or digit'
_TEMPLATE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_SERIES = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,15}")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")

_MIN_INTERVAL: Final = timedelta(seconds=10)
_MAX_INTERVAL: Final = timedelta(days=1)
_MIN_TIMEOUT: Final = timedelta(seconds=1)
_MAX_TIMEOUT: Final = timedelta(minutes=10)


class _Loader:
    """Turns the parsed TOML document into :class:`Settings`, failing on the first problem."""

    def __init__(self, shown: str, file: Path, mode: int) -> None:
        self.shown = shown
        self.file = file
        self.source = Source(shown, file.parent)
        self.mode = mode

    def settings(self, data: Mapping[str, object]) -> Settings:
        root = Table(self.source, "", data)
        root.check_keys(known_keys(Settings))
        database = self.database(root.table("database", required=True))
        web = self.web(root.table("web", required=True))
        security = self.security(root.table("security", required=True))
        scheduler = self.scheduler(root.table("scheduler"))
        billing = self.billing(root.table("billing", required=True))
        dunning = self.dunning(root.table("dunning"), billing.currency)
        enforcement = self.enforcement(root.table("enforcement"), web.base_url)
        smtp = self.smtp(root.table("smtp"))
        payments = self.payments(root.table("payments"))
        process = self.process(root.table("daemon"))
        logs = self.logs(root.table("logging"))
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
            payments=payments,
            daemon=process,
            logging=logs,
            routers=routers,
        )

    # -- sections -------------------------------------------------------------------------------------------

    def database(self, sec: Table) -> DatabaseSettings:
        sec.check_keys(known_keys(DatabaseSettings))
        text = sec.string("url", REQUIRED)
        try:
            url = make_url(text)
        except (ArgumentError, ValueError):
            sec.fail("url", f"not a database URL, got {_show(mask_url(text))}")
        shown = _show(url.render_as_string(hide_password=True))
        driver = url.drivername
        if driver in ("sqlite", "sqlite+pysqlite"):
            database = url.database or ""
            if database in ("", ":memory:") or database.startswith("file:"):
                sec.fail("url", f"must name an SQLite file (an in-memory database loses everything), got {shown}")
            path = Path(database)
            if not path.is_absolute():
                url = url.set(database=str(self.source.base / path))
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

    def web(self, sec: Table) -> WebSettings:
        sec.check_keys(known_keys(WebSettings))
        listen = sec.string("listen", "127.0.0.1:8080")
        host, port = sec.host_port("listen", listen)
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
            base_url = f"http://{join_host_port(host, port)}"
        return web_settings(sec, host=host, port=port, secret_key_file=key_file, base_url=base_url)

    def security(self, sec: Table) -> SecuritySettings:
        sec.check_keys(known_keys(SecuritySettings))
        key_file = sec.secret_file("secret_key_file")
        _, problem = fernet_keys(sec.read_secret("secret_key_file", key_file))
        if problem:
            sec.fail("secret_key_file", f"{problem}, in {_show(sec.get('secret_key_file'))}")
        return SecuritySettings(secret_key_file=key_file)

    def scheduler(self, sec: Table) -> SchedulerSettings:
        sec.check_keys(known_keys(SchedulerSettings))
        defaults = SchedulerSettings()
        reconcile = sec.duration("reconcile_interval", defaults.reconcile_interval, _MIN_INTERVAL, _MAX_INTERVAL)
        poll = sec.duration("poll_interval", defaults.poll_interval, _MIN_INTERVAL, _MAX_INTERVAL)
        billing_at = sec.clock("billing_at", defaults.billing_at)
        dunning = sec.duration("dunning_interval", defaults.dunning_interval, _MIN_INTERVAL, _MAX_INTERVAL)
        return SchedulerSettings(
            reconcile_interval=reconcile, poll_interval=poll, billing_at=billing_at, dunning_interval=dunning
        )

    def billing(self, sec: Table) -> BillingSettings:
        sec.check_keys(known_keys(BillingSettings))
        code = sec.string("currency", REQUIRED)
        try:
            cur = currency(code)
        except UnknownCurrency:
            sec.fail("currency", f'unknown currency, expected an ISO 4217 code such as "USD", got {_show(code)}')
        zone_name = sec.string("timezone", REQUIRED)
        tz = zone(zone_name)
        if tz is None:
            sec.fail("timezone", f"unknown time zone, got {_show(zone_name)}{suggest_zone(zone_name)}")
        anchor = sec.choice("anchor", ANCHORS, default(BillingSettings, "anchor"))
        tax_rate = self.tax_rate(sec)
        tax_inclusive = sec.boolean("tax_inclusive", default(BillingSettings, "tax_inclusive"))
        due_days = sec.integer("due_days", 0, 365, default(BillingSettings, "due_days"))
        series = sec.string("invoice_series", default(BillingSettings, "invoice_series"))
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

    def tax_rate(self, sec: Table) -> Decimal:
        if not sec.has("tax_rate"):
            absent: Decimal = default(BillingSettings, "tax_rate")
            return absent
        raw = sec.get("tax_rate")
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

    def dunning(self, sec: Table, cur: Currency) -> tuple[DunningStepSettings, ...]:
        array = array_key(Settings, "dunning")
        sec.check_keys((array,))
        steps: list[DunningStepSettings] = []
        for step_sec in sec.tables(array):
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

    def dunning_step(self, sec: Table, cur: Currency) -> DunningStepSettings:
        sec.check_keys(known_keys(DunningStepSettings))
        name = sec.string("name", REQUIRED)
        if not _NAME.fullmatch(name):
            sec.fail("name", f"{_NAME_RULE}, got {_show(name)}")
        days = sec.integer("days_past_due", 0, 3650, REQUIRED)
        action = sec.choice("action", ACTIONS, REQUIRED)
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

    def min_amount(self, sec: Table, cur: Currency) -> Decimal:
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

    def throttle_rate(self, sec: Table) -> tuple[int, int]:
        text = sec.string("throttle_rate", REQUIRED)
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

    def enforcement(self, sec: Table, base_url: str) -> EnforcementSettings:
        sec.check_keys(known_keys(EnforcementSettings))
        address_list = sec.string("address_list", "edgebill-overdue")
        try:
            naming.address_list(address_list)
        except NamingError as exc:
            sec.fail("address_list", str(exc).removeprefix("address list "))
        mode = sec.choice("suspend_mode", SUSPEND_MODES, "disable")
        page = sec.url("payment_page_url", allow_query=True) if sec.has("payment_page_url") else base_url
        return EnforcementSettings(address_list=address_list, suspend_mode=mode, payment_page_url=page)

    def smtp(self, sec: Table) -> SmtpSettings:
        sec.check_keys(known_keys(SmtpSettings))
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
        if username and not starttls and port != 465 and not is_loopback(host):
            logger.warning(
                "%s: smtp: the password for %s is sent to %s unencrypted; set starttls = true",
                self.shown,
                username,
                host,
            )
        sender = sec.string("sender", defaults.sender)
        _, address = parseaddr(sender)
        local, _, domain = address.rpartition("@")
        if not local or not domain or " " in local or not valid_host(domain):
            sec.fail("sender", f'must be an e-mail address like "billing@example.net", got {_show(sender)}')
        return SmtpSettings(
            host=host,
            port=port,
            starttls=starttls,
            username=username,
            password_file=password_file,
            sender=sender,
        )

    def payments(self, sec: Table) -> PaymentSettings:
        sec.check_keys(known_keys(PaymentSettings))
        return PaymentSettings(stripe_webhook_secret_file=sec.optional_secret_file("stripe_webhook_secret_file"))

    def process(self, sec: Table) -> DaemonSettings:
        sec.check_keys(known_keys(DaemonSettings))
        listen = sec.string("metrics_listen", "", allow_empty=True)
        if listen:
            sec.host_port("metrics_listen", listen)
        return DaemonSettings(metrics_listen=listen)

    def logs(self, sec: Table) -> LoggingSettings:
        sec.check_keys(known_keys(LoggingSettings))
        defaults = LoggingSettings()
        return LoggingSettings(
            format=sec.choice("format", LOG_FORMATS, defaults.format),
            level=sec.choice("level", LOG_LEVELS, defaults.level),
        )

    def routers(self, tables: Sequence[Table]) -> tuple[RouterSettings, ...]:
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

    def router(self, sec: Table) -> RouterSettings:
        sec.check_keys(known_keys(RouterSettings))
        name = sec.string("name", REQUIRED)
        if not _NAME.fullmatch(name):
            sec.fail("name", f"{_NAME_RULE}, got {_show(name)}")
        kind: RouterKind = "mikrotik" if sec.choice("kind", ROUTER_KINDS, REQUIRED) == "mikrotik" else "linux"
        for other_kind in ROUTER_KINDS:
            if other_kind != kind:
                for key in kind_keys(RouterSettings, other_kind):
                    if sec.has(key):
                        sec.fail(key, f'only valid for kind = "{other_kind}", this router is {_show(kind)}')
        host = sec.host("host", REQUIRED)
        username = sec.string("username", REQUIRED)
        site = sec.string("site", default(RouterSettings, "site"), allow_empty=True, max_length=100)
        timeout = sec.duration("timeout", default(RouterSettings, "timeout"), _MIN_TIMEOUT, _MAX_TIMEOUT)
        if kind == "mikrotik":
            tls = sec.boolean("tls", default(RouterSettings, "tls"))
            port = sec.integer("port", 1, 65535, _DEFAULT_PORTS[kind, tls])
            password_file = sec.optional_secret_file("password_file")
            if password_file is None:
                sec.fail("password_file", "required for a mikrotik router")
            tls_verify = sec.boolean("tls_verify", default(RouterSettings, "tls_verify"))
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
        if named is not None and is_public_key(named):
            sec.fail(
                "ssh_key_file",
                f"holds a public key; name the private key file, got {_show(sec.get('ssh_key_file'))}",
            )
        key_file = sec.optional_secret_file("ssh_key_file")
        if key_file is None:
            sec.fail("ssh_key_file", "required for a linux router")
        tofu = sec.boolean("trust_on_first_use", default(RouterSettings, "trust_on_first_use"))
        known_hosts = sec.optional_path("known_hosts_file")
        if known_hosts is not None and not tofu and not known_hosts.is_file():
            sec.fail(
                "known_hosts_file",
                f"no such file{resolved(sec.get('known_hosts_file'), known_hosts)} (set trust_on_first_use "
                f"= true to record the key on first connection), got {_show(sec.get('known_hosts_file'))}",
            )
        if known_hosts is not None and tofu and not known_hosts.parent.is_dir():
            sec.fail(
                "known_hosts_file",
                f"folder {_show(str(known_hosts.parent))} does not exist, got {_show(sec.get('known_hosts_file'))}",
            )
        if tofu and known_hosts is None:
            sec.fail("known_hosts_file", "required with trust_on_first_use = true, to record the host key in")
        interface = sec.interface("interface", REQUIRED)
        upload_ifb = sec.interface("upload_ifb", None)
        if upload_ifb is not None and upload_ifb == interface:
            sec.fail("upload_ifb", f"must differ from interface, got {_show(upload_ifb)}")
        leaf_qdisc = sec.choice("leaf_qdisc", LEAF_QDISCS, default(RouterSettings, "leaf_qdisc"))
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

    def encoding(self, sec: Table) -> str:
        name = sec.string("encoding", default(RouterSettings, "encoding"))
        try:
            "edgebill".encode(name)
            return codecs.lookup(name).name
        except LookupError:
            sec.fail("encoding", f'unknown text encoding, expected a codec name such as "cp1252", got {_show(name)}')

    def subnets(self, sec: Table) -> tuple[IPv4Network, ...]:
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
