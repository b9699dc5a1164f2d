"""The keys of the configuration file are declared once, by the settings classes of ``daemon.config.schema``.

The loader accepts exactly the declared keys (``tests/daemon/test_config.py`` checks its messages); these tests
check that the renderer writes exactly them too, and that every field of every settings class is documented.
"""

from __future__ import annotations

import dataclasses
import inspect
import tomllib
from datetime import time, timedelta
from decimal import Decimal
from ipaddress import IPv4Network
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from daemon.config import (
    BillingSettings,
    DaemonSettings,
    DatabaseSettings,
    DunningStepSettings,
    EnforcementSettings,
    LoggingSettings,
    PaymentSettings,
    RouterSettings,
    SchedulerSettings,
    SecuritySettings,
    Settings,
    SmtpSettings,
    WebSettings,
    render_settings,
    schema,
)
from daemon.config.schema import kind_keys, known_keys
from policies.money import currency

SECRETS = Path("/etc/edgebill/secrets")

MIKROTIK = RouterSettings(
    name="core1",
    kind="mikrotik",
    host="192.0.2.1",
    port=8729,
    username="edgebill",
    password_file=SECRETS / "core1.password",
    tls=True,
)
LINUX = RouterSettings(
    name="gw1",
    kind="linux",
    host="gw1.example.net",
    port=22,
    username="root",
    ssh_key_file=SECRETS / "gw1.key",
    known_hosts_file=SECRETS / "known_hosts",
    interface="eth1",
    upload_ifb="ifb0",
    subnets=(IPv4Network("100.64.0.0/16"), IPv4Network("10.0.0.0/8")),
)
FULL = Settings(
    path=Path("/etc/edgebill/edgebill.toml"),
    database=DatabaseSettings("postgresql+psycopg://edgebill:hunter2@db.example.net/edgebill"),
    web=WebSettings("::1", 8080, SECRETS / "web.key", "https://isp.example.net"),
    security=SecuritySettings(SECRETS / "data.key"),
    scheduler=SchedulerSettings(timedelta(minutes=1), timedelta(minutes=5), time(4, 30), timedelta(hours=1)),
    billing=BillingSettings(currency("EUR"), ZoneInfo("Europe/Madrid"), tax_rate=Decimal("0.21")),
    dunning=(
        DunningStepSettings("remind", 1, "remind", email_template="reminder"),
        DunningStepSettings(
            "throttle",
            7,
            "throttle",
            min_amount=Decimal("1.00"),
            throttle_rate=(1_000_000, 512_000),
            email_template="throttled",
        ),
    ),
    enforcement=EnforcementSettings("edgebill-overdue", "block", "https://isp.example.net/pay"),
    smtp=SmtpSettings(username="billing", password_file=SECRETS / "smtp.password", starttls=True),
    payments=PaymentSettings(SECRETS / "stripe"),
    daemon=DaemonSettings("127.0.0.1:9464"),
    logging=LoggingSettings("json", "debug"),
    routers=(MIKROTIK, LINUX),
)
SECTIONS = {
    "database": DatabaseSettings,
    "web": WebSettings,
    "security": SecuritySettings,
    "scheduler": SchedulerSettings,
    "billing": BillingSettings,
    "enforcement": EnforcementSettings,
    "smtp": SmtpSettings,
    "payments": PaymentSettings,
    "daemon": DaemonSettings,
    "logging": LoggingSettings,
}


def test_sections_are_the_fields_of_settings() -> None:
    every = (
        "database",
        "web",
        "security",
        "scheduler",
        "billing",
        "dunning",
        "enforcement",
        "smtp",
        "payments",
        "daemon",
        "logging",
    )
    assert known_keys(Settings) == (*every, "routers")
    assert tuple(tomllib.loads(render_settings(FULL))) == known_keys(Settings)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_renderer_writes_the_declared_keys(section: str) -> None:
    rendered = tomllib.loads(render_settings(FULL))
    assert tuple(rendered[section]) == known_keys(SECTIONS[section])


def test_renderer_writes_each_routers_keys_of_its_kind() -> None:
    rendered = tomllib.loads(render_settings(FULL))["routers"]
    common = tuple(key for key in known_keys(RouterSettings) if key not in kind_keys(RouterSettings, "mikrotik"))
    common = tuple(key for key in common if key not in kind_keys(RouterSettings, "linux"))
    assert tuple(rendered[0]) == common + kind_keys(RouterSettings, "mikrotik")
    assert tuple(rendered[1]) == common + kind_keys(RouterSettings, "linux")
    assert rendered[1]["subnets"] == ["100.64.0.0/16", "10.0.0.0/8"]


def test_renderer_leaves_out_unset_step_keys() -> None:
    steps = tomllib.loads(render_settings(FULL))["dunning"]["steps"]
    assert tuple(steps[1]) == known_keys(DunningStepSettings)
    assert steps[1]["throttle_rate"] == "1M/512k"
    assert tuple(steps[0]) == ("name", "days_past_due", "action", "email_template")


def test_web_listen_joins_host_and_port() -> None:
    assert known_keys(WebSettings) == (
        "listen",
        "secret_key_file",
        "base_url",
        "max_request_bytes",
        "login_limit_per_account",
        "login_limit_per_address",
        "rate_limit_storage_uri",
        "session_idle_timeout",
        "session_lifetime",
        "trusted_proxies",
    )
    assert tomllib.loads(render_settings(FULL))["web"]["listen"] == "[::1]:8080"


def test_every_settings_field_is_documented() -> None:
    classes = [cls for _, cls in inspect.getmembers(schema, inspect.isclass) if cls.__module__ == schema.__name__]
    settings = [cls for cls in classes if dataclasses.is_dataclass(cls) and cls.__name__.endswith("Settings")]
    assert len(settings) == 13
    for cls in settings:
        lines, _ = inspect.getsourcelines(cls)
        for item in dataclasses.fields(cls):
            at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{item.name}:"))
            above = lines[at - 1].strip()
            assert above.startswith("#:"), f"{cls.__name__}.{item.name} has no #: comment"
