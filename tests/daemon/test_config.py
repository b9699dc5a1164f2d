"""The configuration loader: the example file, defaults, and a corpus of bad files with their exact messages.

Every file in ``tests/daemon/configs/`` is a configuration an administrator could write, with the one-line
error it must produce on its first line (``# error: KEY: REASON``; ``{dir}`` stands for the folder holding
the file, ``{config}`` for the file itself), in UTF-8 whatever bytes the rest holds. The files are loaded from
a temporary folder that also holds the secret files they refer to, created with the permissions a careful
administrator would give them.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from datetime import time, timedelta
from decimal import Decimal
from ipaddress import IPv4Network
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from daemon.cli import main
from daemon.config import (
    ConfigError,
    DatabaseSettings,
    EnforcementSettings,
    RouterSettings,
    SchedulerSettings,
    SecuritySettings,
    Settings,
    SmtpSettings,
    WebSettings,
    default_config_path,
    format_duration,
    load_settings,
    parse_duration,
    render_settings,
)
from policies.money import currency

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"
CORPUS = Path(__file__).resolve().parent / "configs"
CORPUS_FILES = sorted(CORPUS.glob("*.toml"))

WEB_KEY = b"k" * 48
ROUTER_PASSWORD = "p4ss word\u00e9"
SMTP_PASSWORD = "smtp-s3cret"
PRIVATE_KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"

MINIMAL = """\
[database]
url = "sqlite:///edgebill.db"

[web]
secret_key_file = "secrets/web.key"

[security]
secret_key_file = "secrets/data.key"

[billing]
currency = "EUR"
timezone = "Europe/Madrid"
"""

MIKROTIK = """
[[routers]]
name = "core1"
kind = "mikrotik"
host = "192.0.2.1"
username = "edgebill"
password_file = "secrets/core1.password"
"""

LINUX = """
[[routers]]
name = "gw1"
kind = "linux"
host = "gw1.example.net"
username = "root"
ssh_key_file = "secrets/gw1.key"
interface = "eth1"
"""


def _write(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


@pytest.fixture
def confdir(tmp_path: Path) -> Path:
    """A folder with the secret files the corpus and the example refer to."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    _write(secrets / "web.key", WEB_KEY + b"\n")
    _write(secrets / "data.key", Fernet.generate_key() + b"\n")
    _write(secrets / "core1.password", ROUTER_PASSWORD.encode() + b"\n")
    _write(secrets / "smtp.password", SMTP_PASSWORD.encode() + b"\n")
    _write(secrets / "gw1.key", PRIVATE_KEY)
    _write(secrets / "gw1.key.pub", b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE edgebill@gw1\n", 0o644)
    _write(secrets / "known_hosts", b"", 0o644)
    _write(secrets / "short.key", b"0123456789\n")
    _write(secrets / "open.key", WEB_KEY, 0o644)
    _write(secrets / "open.password", b"hunter2\n", 0o644)
    return tmp_path


def _config(folder: Path, text: str, name: str = "edgebill.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def _error(path: Path | str) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


# -- the corpus -------------------------------------------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS_FILES) >= 30


@pytest.mark.parametrize("source", CORPUS_FILES, ids=[path.stem for path in CORPUS_FILES])
def test_bad_config_is_refused_with_exact_message(source: Path, confdir: Path) -> None:
    first = source.read_bytes().split(b"\n", 1)[0].decode("utf-8")  # the rest may be anything (bad bytes, NUL)
    assert first.startswith("# error: "), f"{source.name} must start with '# error: '"
    target = confdir / source.name
    shutil.copyfile(source, target)
    target.chmod(0o644)  # a configuration file without secrets in it may be world-readable
    expected = first.removeprefix("# error: ").replace("{dir}", str(confdir)).replace("{config}", str(target))

    message = _error(target)

    assert message == f"{target}: {expected}"
    assert "\n" not in message
    for secret in ("hunter2", ROUTER_PASSWORD, SMTP_PASSWORD, WEB_KEY.decode()):
        assert secret not in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert _error(path) == f"{path}: cannot read: No such file or directory"


def test_config_path_is_a_directory(tmp_path: Path) -> None:
    assert _error(tmp_path) == f"{tmp_path}: cannot read: is a directory"


def test_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[billing]\ntimezone = "Europe/Z\xfcrich"\n')
    assert _error(path) == f"{path}: not valid UTF-8: byte 0xfc at offset 30"


def test_config_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "notepad.toml"
    path.write_bytes(b"\xef\xbb\xbf[billing]\n")
    assert _error(path) == f"{path}: starts with a byte order mark (BOM): save it as UTF-8 without BOM"


def test_huge_config_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.toml"
    with path.open("wb") as handle:
        handle.truncate(7 * 512 * 1024 + 100)  # sparse: nothing written, nothing read
    assert _error(path) == f"{path}: is too large (3.5 MB; at most 1 MB)"
    assert _error("/dev/zero") == "/dev/zero: is too large (more than 1 MB)"


def test_a_bad_config_is_one_line_and_exit_1_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 10_000 + "]" * 10_000 + "\n", encoding="utf-8")
    assert main(["--config", str(path), "config", "check"]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"edgebill: error: {path}: values are nested more than 8 levels deep\n"
    assert captured.out == ""


def test_message_names_the_path_as_given(confdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _config(confdir, MINIMAL.replace('"EUR"', '"EURO"'))
    monkeypatch.chdir(confdir)
    assert _error("edgebill.toml") == (
        'edgebill.toml: billing.currency: unknown currency, expected an ISO 4217 code such as "USD", got "EURO"'
    )


def test_unparsable_database_url_hides_password(confdir: Path) -> None:
    path = _config(confdir, MINIMAL.replace("sqlite:///edgebill.db", "postgresql://u:hunter2@db:notaport/x"))
    message = _error(path)
    assert message == f'{path}: database.url: not a database URL, got "postgresql://u:***@db:notaport/x"'


# -- secret files -----------------------------------------------------------------------------------------------


def test_group_readable_secret_is_accepted_with_warning(confdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (confdir / "secrets" / "web.key").chmod(0o640)
    with caplog.at_level(logging.WARNING, logger="daemon.config"):
        load_settings(_config(confdir, MINIMAL))
    assert f"secret file {confdir}/secrets/web.key is readable by its group (mode 0640)" in caplog.messages


def test_insecure_transport_is_accepted_with_warnings(confdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = (
        MINIMAL
        + '\n[smtp]\nhost = "mail.example.net"\nusername = "billing"\npassword_file = "secrets/smtp.password"\n'
        + MIKROTIK
        + "tls = true\ntls_verify = false\n"
    )
    path = _config(confdir, text)
    with caplog.at_level(logging.WARNING, logger="daemon.config"):
        load_settings(path)
    assert caplog.messages == [
        f"{path}: smtp: the password for billing is sent to mail.example.net unencrypted; set starttls = true",
        f"{path}: routers[0]: router core1: its TLS certificate is not verified (tls_verify = false)",
    ]
    assert SMTP_PASSWORD not in caplog.text


def test_world_writable_secret_is_refused(confdir: Path) -> None:
    (confdir / "secrets" / "data.key").chmod(0o602)
    path = _config(confdir, MINIMAL)
    assert _error(path) == (
        f"{path}: security.secret_key_file: is accessible to all users (mode 0602); run chmod o-rwx on it "
        f'({confdir}/secrets/data.key), got "secrets/data.key"'
    )


def test_unreadable_secret_is_refused(confdir: Path) -> None:
    # A folder where the key file should be cannot be read by anyone, root included.
    key = confdir / "secrets" / "web.key"
    key.unlink()
    key.mkdir(mode=0o700)
    path = _config(confdir, MINIMAL)
    assert _error(path).startswith(f"{path}: web.secret_key_file: ")
    assert _error(path).endswith(f'({confdir}/secrets/web.key), got "secrets/web.key"')


def test_absolute_secret_path_is_not_repeated(confdir: Path) -> None:
    missing = confdir / "elsewhere" / "web.key"
    path = _config(confdir, MINIMAL.replace('"secrets/web.key"', f'"{missing}"'))
    assert _error(path) == f'{path}: web.secret_key_file: no such file, got "{missing}"'


def test_router_password_is_read_at_call_time(confdir: Path) -> None:
    settings = load_settings(_config(confdir, MINIMAL + MIKROTIK))
    router = settings.router("core1")
    assert router.password() == ROUTER_PASSWORD
    (confdir / "secrets" / "core1.password").write_bytes(b"rotated\r\n")
    assert router.password() == "rotated"
    (confdir / "secrets" / "core1.password").write_bytes(b"two\n\n")
    assert router.password() == "two\n"
    assert "rotated" not in repr(router)


def test_router_password_errors(confdir: Path) -> None:
    router = load_settings(_config(confdir, MINIMAL + MIKROTIK)).router("core1")
    secret = confdir / "secrets" / "core1.password"
    secret.chmod(0o644)
    with pytest.raises(ConfigError) as info:
        router.password()
    assert str(info.value) == (
        f'{secret}: password of router "core1": is accessible to all users (mode 0644); run chmod o-rwx on it'
    )
    secret.unlink()
    with pytest.raises(ConfigError) as info:
        router.password()
    remedy = "restore it, or correct the path in the configuration and restart"
    assert str(info.value) == f'{secret}: password of router "core1": no such file; {remedy}'
    _write(secret, b"\n")
    with pytest.raises(ConfigError) as info:
        router.password()
    assert str(info.value) == f'{secret}: password of router "core1": is empty'

    linux = RouterSettings(name="gw9", kind="linux", host="192.0.2.9", port=22, username="root")
    with pytest.raises(ConfigError) as info:
        linux.password()
    assert str(info.value) == 'password of router "gw9": no password_file is configured'


def test_web_and_data_keys(confdir: Path) -> None:
    settings = load_settings(_config(confdir, MINIMAL))
    assert settings.web.secret_key() == WEB_KEY
    old, new = Fernet.generate_key(), Fernet.generate_key()
    _write(confdir / "secrets" / "data.key", b"# rotated 2026-11\n" + new + b"\n\n" + old + b"\n")
    keys = settings.security.fernet_keys()
    assert keys == (new, old)
    token = Fernet(old).encrypt(b"pppoe")
    assert Fernet(keys[1]).decrypt(token) == b"pppoe"
    _write(confdir / "secrets" / "data.key", b"# keys\n" + new + b"\nnot-a-key\n")
    with pytest.raises(ConfigError) as info:
        settings.security.fernet_keys()
    assert str(info.value) == (
        f"{confdir}/secrets/data.key: data encryption key: line 3 is not a Fernet key "
        "(32 url-safe base64-encoded bytes)"
    )


def test_smtp_password(confdir: Path) -> None:
    text = MINIMAL + '\n[smtp]\nusername = "billing"\npassword_file = "secrets/smtp.password"\nstarttls = true\n'
    smtp = load_settings(_config(confdir, text)).smtp
    assert smtp.password() == SMTP_PASSWORD
    assert SmtpSettings().password() is None


# -- the example, defaults, round trip --------------------------------------------------------------------------


def test_example_loads_as_is(confdir: Path) -> None:
    path = confdir / "edgebill.toml"
    shutil.copyfile(EXAMPLE, path)

    settings = load_settings(path)

    assert settings.path == path
    assert settings.database.url == "sqlite:////var/lib/edgebill/edgebill.db"
    assert settings.web == WebSettings("127.0.0.1", 8080, confdir / "secrets/web.key", "http://127.0.0.1:8080")
    assert settings.scheduler == SchedulerSettings(
        timedelta(seconds=60), timedelta(minutes=5), time(4), timedelta(hours=1)
    )
    assert settings.billing.currency == currency("USD")
    assert settings.billing.timezone == ZoneInfo("America/New_York")
    assert settings.billing.tax_rate == Decimal("0.00")
    assert [(s.name, s.days_past_due, s.action) for s in settings.dunning] == [
        ("reminder", 1, "remind"),
        ("throttle", 7, "throttle"),
        ("suspend", 21, "suspend"),
    ]
    assert settings.dunning[1].throttle_rate == (1_000_000, 512_000)
    assert settings.dunning[1].min_amount == Decimal("1.00")
    assert settings.enforcement == EnforcementSettings("edgebill-overdue", "disable", "http://portal.example.net/pay")
    core1, gw1 = settings.routers
    assert (core1.kind, core1.port, core1.encoding, core1.site) == ("mikrotik", 8728, "cp1252", "North POP")
    assert core1.password() == ROUTER_PASSWORD
    assert (gw1.kind, gw1.port, gw1.interface, gw1.upload_ifb) == ("linux", 22, "eth1", "ifb0")
    assert gw1.subnets == (IPv4Network("100.64.0.0/16"),)
    assert gw1.known_hosts_file == confdir / "secrets" / "known_hosts"


def test_minimal_config_gets_documented_defaults(confdir: Path) -> None:
    settings = load_settings(_config(confdir, MINIMAL + MIKROTIK + LINUX))

    assert settings.database == DatabaseSettings(f"sqlite:///{confdir}/edgebill.db")
    assert settings.web == WebSettings("127.0.0.1", 8080, confdir / "secrets/web.key", "http://127.0.0.1:8080")
    assert settings.security == SecuritySettings(confdir / "secrets/data.key")
    assert settings.scheduler == SchedulerSettings(
        reconcile_interval=timedelta(seconds=60),
        poll_interval=timedelta(minutes=5),
        billing_at=time(4, 0),
        dunning_interval=timedelta(hours=1),
    )
    billing = settings.billing
    assert (billing.anchor, billing.tax_rate, billing.tax_inclusive) == ("calendar", Decimal(0), False)
    assert (billing.due_days, billing.invoice_series) == (14, "INV")
    assert settings.dunning == ()
    assert settings.enforcement == EnforcementSettings("edgebill-overdue", "disable", "http://127.0.0.1:8080")
    assert settings.smtp == SmtpSettings()
    # Defaults of the loader and of the dataclasses are the same.
    assert settings.routers == (
        RouterSettings(
            name="core1",
            kind="mikrotik",
            host="192.0.2.1",
            port=8728,
            username="edgebill",
            password_file=confdir / "secrets/core1.password",
        ),
        RouterSettings(
            name="gw1",
            kind="linux",
            host="gw1.example.net",
            port=22,
            username="root",
            ssh_key_file=confdir / "secrets/gw1.key",
            interface="eth1",
        ),
    )


@pytest.mark.parametrize("text", [MINIMAL + MIKROTIK + LINUX, None], ids=["minimal", "example"])
def test_render_round_trips(confdir: Path, text: str | None) -> None:
    first_path = confdir / "first.toml"
    if text is None:
        shutil.copyfile(EXAMPLE, first_path)
    else:
        _config(confdir, text, "first.toml")
    first = load_settings(first_path)

    rendered = render_settings(first)
    (confdir / "elsewhere").mkdir()
    second_path = _config(confdir / "elsewhere", rendered)
    second = load_settings(second_path)

    assert dataclasses.replace(second, path=first.path) == first
    assert render_settings(second) == rendered


def test_render_masks_database_password(confdir: Path) -> None:
    url = "postgresql+psycopg://edgebill:hunter2@db.example.net/edgebill"
    settings = load_settings(_config(confdir, MINIMAL.replace("sqlite:///edgebill.db", url)))
    assert settings.database.url == url
    assert "hunter2" not in render_settings(settings)
    assert 'url = "postgresql+psycopg://edgebill:***@db.example.net/edgebill"' in render_settings(settings)
    assert f'url = "{url}"' in render_settings(settings, reveal=True)


def test_settings_are_frozen(confdir: Path) -> None:
    settings = load_settings(_config(confdir, MINIMAL))
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.web.port = 80  # type: ignore[misc]


# -- values ---------------------------------------------------------------------------------------------------


def test_relative_sqlite_path_resolves_against_config_folder(
    confdir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    path = _config(confdir, MINIMAL.replace("sqlite:///edgebill.db", "sqlite:///data/edgebill.db?timeout=30"))
    assert load_settings(path).database.url == f"sqlite:///{confdir}/data/edgebill.db?timeout=30"


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("postgresql://edgebill@127.0.0.1:5432/edgebill", "postgresql+psycopg://edgebill@127.0.0.1:5432/edgebill"),
        ("postgres://edgebill@db/edgebill", "postgresql+psycopg://edgebill@db/edgebill"),
        ("postgresql+psycopg:///edgebill", "postgresql+psycopg:///edgebill"),
        ("sqlite:////srv/edgebill.db", "sqlite:////srv/edgebill.db"),
    ],
)
def test_database_urls(confdir: Path, url: str, stored: str) -> None:
    settings = load_settings(_config(confdir, MINIMAL.replace("sqlite:///edgebill.db", url)))
    assert settings.database.url == stored


@pytest.mark.parametrize(
    ("listen", "host", "port", "base_url"),
    [
        ("[::1]:8081", "::1", 8081, "http://[::1]:8081"),
        ("localhost:80", "localhost", 80, "http://localhost:80"),
        ("192.0.2.10:8443", "192.0.2.10", 8443, "http://192.0.2.10:8443"),
    ],
)
def test_listen(confdir: Path, listen: str, host: str, port: int, base_url: str) -> None:
    text = MINIMAL.replace("[web]\n", f'[web]\nlisten = "{listen}"\n')
    web = load_settings(_config(confdir, text)).web
    assert (web.host, web.port, web.base_url) == (host, port, base_url)


def test_base_url_trailing_slash_is_dropped(confdir: Path) -> None:
    text = MINIMAL.replace("[web]\n", '[web]\nlisten = "0.0.0.0:8080"\nbase_url = "https://isp.example.net/billing/"\n')
    settings = load_settings(_config(confdir, text))
    assert settings.web.base_url == "https://isp.example.net/billing"
    assert settings.enforcement.payment_page_url == "https://isp.example.net/billing"


def test_mikrotik_tls_port_and_encoding(confdir: Path) -> None:
    text = MINIMAL + MIKROTIK + 'tls = true\ntls_verify = false\nencoding = "latin-1"\ntimeout = "1m30s"\n'
    router = load_settings(_config(confdir, text)).routers[0]
    assert (router.port, router.tls, router.tls_verify) == (8729, True, False)
    assert router.encoding == "iso8859-1"
    assert router.timeout == timedelta(seconds=90)


def test_linux_trust_on_first_use(confdir: Path) -> None:
    text = MINIMAL + LINUX + 'trust_on_first_use = true\nknown_hosts_file = "state/known_hosts"\n'
    (confdir / "state").mkdir()
    router = load_settings(_config(confdir, text)).routers[0]
    assert router.trust_on_first_use
    assert router.known_hosts_file == confdir / "state" / "known_hosts"


def test_toml_local_time_and_lowercase_currency(confdir: Path) -> None:
    text = MINIMAL.replace('"EUR"', '"eur"') + "\n[scheduler]\nbilling_at = 05:30:00\n"
    settings = load_settings(_config(confdir, text))
    assert settings.scheduler.billing_at == time(5, 30)
    assert settings.billing.currency == currency("EUR")


def test_billing_time_in_daylight_saving_gap_warns(confdir: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = MINIMAL.replace("Europe/Madrid", "America/New_York") + '\n[scheduler]\nbilling_at = "02:30"\n'
    path = _config(confdir, text)
    with caplog.at_level(logging.WARNING, logger="daemon.config"):
        load_settings(path)
    assert any("scheduler.billing_at 02:30 is skipped or repeated" in message for message in caplog.messages)


def test_router_lookup(confdir: Path) -> None:
    path = _config(confdir, MINIMAL + MIKROTIK + LINUX)
    settings = load_settings(path)
    assert settings.router("gw1").interface == "eth1"
    with pytest.raises(ConfigError) as info:
        settings.router("gw2")
    assert str(info.value) == f'{path}: routers: no router named "gw2"; did you mean "gw1"?'
    with pytest.raises(ConfigError) as info:
        settings.router("edge")
    assert str(info.value) == f'{path}: routers: no router named "edge"'


def test_config_error_without_location() -> None:
    assert str(ConfigError("no router named x")) == "no router named x"
    error = ConfigError("bad", path=Path("/etc/edgebill/edgebill.toml"), key="web.listen")
    assert str(error) == "/etc/edgebill/edgebill.toml: web.listen: bad"
    assert (error.reason, error.key) == ("bad", "web.listen")


def test_default_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGEBILL_CONFIG", raising=False)
    assert default_config_path() == Path("/etc/edgebill/edgebill.toml")
    (tmp_path / "edgebill.toml").write_text("")
    assert default_config_path() == tmp_path / "edgebill.toml"
    monkeypatch.setenv("EDGEBILL_CONFIG", "/srv/edgebill/site.toml")
    assert default_config_path() == Path("/srv/edgebill/site.toml")


# -- durations ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d", timedelta(days=1)),
        ("2d12h", timedelta(days=2, hours=12)),
        ("0s", timedelta(0)),
        (" 10s ", timedelta(seconds=10)),
    ],
)
def test_parse_duration(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value


@pytest.mark.parametrize("text", ["", "60", "5 m", "1m1h", "1h1h", "1.5h", "-5m", "5min", "1w", "s"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r'^must be a duration like "90s", "5m", "1h30m" or "1d", got ".*"$'):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**8))
def test_format_duration_round_trips(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


def test_settings_type_is_exported() -> None:
    assert Settings.__dataclass_params__.frozen  # type: ignore[attr-defined]
