"""``edgebill`` end to end: ``main([...])`` against real SQLite and PostgreSQL databases."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from daemon.cli import main
from daemon.config import load_settings
from daemon.db import Base, RouterOp, Service, make_engine, session_factory
from daemon.db.models import AuditEntry
from daemon.services import services, users
from lab.routeros import RouterOSEmulator
from tests.conftest import MakeConfig, write_config


class Cli:
    """Runs ``edgebill --config CONFIG ...`` in-process and keeps what it printed."""

    def __init__(self, config: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.config = config
        self.capsys = capsys
        self.out = ""
        self.err = ""

    def __call__(self, *argv: str) -> int:
        self.capsys.readouterr()
        code = main(["--config", str(self.config), *argv])
        captured = self.capsys.readouterr()
        self.out, self.err = captured.out, captured.err
        return code

    def json(self, *argv: str) -> Any:
        code = self(*argv, "--json")
        assert code == 0, self.err
        return json.loads(self.out)

    def ok(self, *argv: str) -> str:
        code = self(*argv)
        assert code == 0, self.err
        return self.out

    def fails(self, *argv: str) -> str:
        """Runs a command that must be refused with one line on stderr; returns that line."""
        code = self(*argv)
        assert code == 1, self.out
        assert self.err.count("\n") == 1 and self.err.startswith("edgebill: error: "), self.err
        return self.err


def write(path: Path, content: str) -> str:
    path.write_text(content, encoding="utf-8")
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def cli(db_url: str, make_config: MakeConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Iterator[Cli]:
    """An initialised installation (both backends): schema, routers core1 and edge2, admin user."""
    runner = Cli(make_config(database_url=db_url), capsys)
    password = write(tmp_path / "admin.pw", "correct horse battery\n")
    assert runner("init", "--admin-password-file", password) == 0, runner.err
    yield runner


def snapshot(url: str) -> dict[str, int]:
    """Row counts of every table: proof that a refused command changed nothing."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for name, table in Base.metadata.tables.items()
            }
    finally:
        engine.dispose()


def test_init_migrates_syncs_routers_creates_the_admin_and_is_repeatable(cli: Cli) -> None:
    assert "admin user 'admin' created" not in cli.ok("init")  # second run: nothing to do
    assert "schema is up to date" in cli.out
    assert "0 added" in cli.out and "2 unchanged" in cli.out
    routers = cli.json("router", "list")
    assert [(r["name"], r["kind"], r["host"], r["port"], r["site"], r["status"]) for r in routers] == [
        ("core1", "mikrotik", "127.0.0.1", 18728, "North POP", "unknown"),
        ("edge2", "mikrotik", "127.0.0.2", 18728, "South POP", "unknown"),
    ]
    assert [(u["username"], u["role"], u["active"]) for u in cli.json("user", "list")] == [("admin", "admin", True)]


def test_a_full_session_of_everyday_commands(cli: Cli, db_url: str, tmp_path: Path) -> None:
    plan = cli.json(
        "plan", "add", "home-10", "--download", "10M", "--upload", "5M", "--price", "30.00", "--setup-fee", "15",
        "--quota", "100GB", "--fair-use-download", "2M", "--fair-use-upload", "1M", "--tax-rate", "0.16",
        "--burst-download", "20M", "--burst-upload", "10M", "--burst-threshold-download", "8M",
        "--burst-threshold-upload", "4M", "--burst-time", "16s",
    )  # fmt: skip
    assert plan["id"] > 0
    assert (plan["download_bps"], plan["upload_bps"], plan["download"], plan["upload"]) == (
        10_000_000,
        5_000_000,
        "10M",
        "5M",
    )
    assert (plan["price"], plan["setup_fee"], plan["currency"], plan["tax_rate"]) == ("30.00", "15.00", "USD", "0.16")
    assert (plan["quota_bytes"], plan["quota"], plan["over_quota"]) == (100 * 10**9, "100GB", "throttle")
    assert plan["burst"]["threshold_download"] == "8M" and plan["burst"]["time_s"] == 16
    assert plan["fair_use"]["download_bps"] == 2_000_000
    cli.json("plan", "add", "biz-50", "--download", "50M", "--upload", "50M", "--price", "99.5", "--cycle", "weekly")
    cli.json("plan", "add", "home-20", "--download", "20M", "--upload", "10M", "--price", "45.00")
    assert [p["name"] for p in cli.json("plan", "list")] == ["biz-50", "home-10", "home-20"]
    assert cli.json("plan", "show", "biz-50")["price"] == "99.50"

    ana = cli.json("customer", "add", "Ana Lima", "--email", "ana@example.net", "--tag", "never-suspend")
    bob = cli.json("customer", "add", "Bob Ruiz", "--phone", "+52 55 1234 5678")
    assert ana["tags"] == ["never-suspend"] and bob["id"] == ana["id"] + 1
    assert [c["name"] for c in cli.json("customer", "list", "--tag", "never-suspend")] == ["Ana Lima"]

    password = write(tmp_path / "ana.pw", "s3cret-PPP\n")
    pppoe = cli.json(
        "service", "add", "--customer", str(ana["id"]), "--plan", "home-10", "--router", "core1",
        "--pppoe", "ana", "--password-file", password, "--start", "2026-03-01",
    )  # fmt: skip
    assert (pppoe["state"], pppoe["state_reason"], pppoe["started_on"]) == ("active", "new service", "2026-03-01")
    assert (pppoe["pppoe_login"], pppoe["connection_type"], pppoe["router"]) == ("ana", "pppoe", "core1")
    assert "s3cret-PPP" not in cli.out and "password" not in pppoe
    static = cli.json(
        "service", "add", "--customer", str(bob["id"]), "--plan", "biz-50", "--router", "edge2", "--ip", "100.64.0.7"
    )
    assert (static["connection_type"], static["ipv4"], static["download"]) == ("static", "100.64.0.7", "50M")
    # the same address on another router is fine
    cli.json(
        "service", "add", "--customer", str(bob["id"]), "--plan", "biz-50", "--router", "core1", "--ip", "100.64.0.7"
    )

    assert [s["id"] for s in cli.json("service", "list", "--customer", str(bob["id"]))] == [
        static["id"],
        static["id"] + 1,
    ]
    assert len(cli.json("service", "list", "--state", "active")) == 3
    assert cli.json("service", "list", "--state", "suspended") == []
    # A plan change is prorated from the last billed day; a service never billed since March must be billed first.
    assert "run billing first" in cli.fails("service", "set-plan", str(pppoe["id"]), "--plan", "home-20")
    assert "cannot change a monthly plan to a weekly plan" in cli.fails(
        "service", "set-plan", str(pppoe["id"]), "--plan", "biz-50"
    )
    bob_pw = write(tmp_path / "bob.pw", "bob-PPP\n")
    fresh = cli.json(
        "service", "add", "--customer", str(bob["id"]), "--plan", "home-10", "--router", "edge2",
        "--pppoe", "bob", "--password-file", bob_pw,
    )  # fmt: skip
    moved = cli.json("service", "set-plan", str(fresh["id"]), "--plan", "home-20")
    assert (moved["plan"], moved["download_bps"]) == ("home-20", 20_000_000)
    assert "already on plan" in cli.ok("service", "set-plan", str(fresh["id"]), "--plan", "home-20")
    assert cli.json("service", "show", str(fresh["id"]))["plan"] == "home-20"

    paid = cli.json("payment", "add", "--customer", str(ana["id"]), "--amount", "30.00", "--method", "bank",
                    "--reference", "TR-1")  # fmt: skip
    assert (paid["amount"], paid["currency"], paid["method"], paid["reference"]) == ("30.00", "USD", "bank", "TR-1")
    shown = cli.json("customer", "show", str(ana["id"]))
    assert (shown["balance"], shown["services"]) == ("-30.00", [pppoe["id"]])
    assert [p["id"] for p in cli.json("payment", "list")] == [paid["id"]]
    refund = cli.json("payment", "refund", str(paid["id"]), "--amount", "5.00", "--reference", "goodwill")
    assert (refund["amount"], refund["refund_of_id"]) == ("-5.00", paid["id"])
    assert cli("payment", "refund", str(paid["id"]), "--amount", "25.01") == 1
    assert "exceeds the 25.00 USD left to refund" in cli.err
    assert cli.json("customer", "show", str(ana["id"]))["balance"] == "-25.00"
    assert cli.json("invoice", "list") == []

    settings = load_settings(cli.config)
    engine = make_engine(db_url)
    try:
        with session_factory(engine)() as session:
            ops = session.scalars(select(RouterOp).order_by(RouterOp.id)).all()
            # one reconcile per change, on the service's router
            assert [(op.op, op.payload["reason"], op.status.value) for op in ops] == [
                ("reconcile", "service.add", "pending"),
                ("reconcile", "service.add", "pending"),
                ("reconcile", "service.add", "pending"),
                ("reconcile", "service.add", "pending"),
                ("reconcile", "service.set_plan", "pending"),
            ]
            stored = session.get_one(Service, pppoe["id"]).pppoe_password
            assert stored is not None and b"s3cret-PPP" not in stored
            assert services.pppoe_password(session, settings, pppoe["id"]) == "s3cret-PPP"
            audit_text = json.dumps([[a.before, a.after] for a in session.scalars(select(AuditEntry))])
            assert "s3cret-PPP" not in audit_text
            actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
            assert "service.set_plan" in actions and "payment.add" in actions
    finally:
        engine.dispose()


def test_human_readable_listings(cli: Cli) -> None:
    cli.ok("plan", "add", "home-10", "--download", "10M", "--upload", "5M", "--price", "30")
    cli.ok("customer", "add", "Ana Lima")
    cli.ok("service", "add", "--customer", "1", "--plan", "home-10", "--router", "core1", "--ip", "100.64.0.9")
    listing = cli.ok("service", "list").splitlines()
    assert listing[0].split() == ["ID", "CUSTOMER", "PLAN", "ROUTER", "LOGIN/ADDRESS", "STATE", "REASON"]
    assert listing[1].split()[:6] == ["1", "1", "Ana", "Lima", "home-10", "core1"]
    assert "30.00 USD" in cli.ok("plan", "list")


def service_add(*how: str) -> list[str]:
    """``service add`` for customer 1 on plan home-10 and router core1, connected ``how``."""
    return ["service", "add", "--customer", "1", "--plan", "home-10", "--router", "core1", *how]


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installation (SQLite), built once per module: one plan, customer, PPPoE and static service,
    admin user and payment, and password files (good, short, empty, with a space)."""
    home = tmp_path_factory.mktemp("installation")
    config = write_config(home)
    admin = write(home / "admin.pw", "correct horse battery\n")
    pppoe = write(home / "pppoe.pw", "pw-1\n")
    write(home / "short.pw", "short\n")
    write(home / "empty.pw", "")
    write(home / "space.pw", "has space\n")
    (home / "utf16.pw").write_text("correct horse battery\n", encoding="utf-16")
    (home / "bom.pw").write_bytes(b"\xef\xbb\xbfcorrect horse battery\n")
    (home / "nul.pw").write_bytes(b"correct horse\x00battery\n")
    (home / "huge.pw").write_bytes(b"x" * 5000)
    (home / "folder.pw").mkdir()
    steps = [
        ["init", "--admin-password-file", admin],
        ["plan", "add", "home-10", "--download", "10M", "--upload", "5M", "--price", "30.00"],
        ["customer", "add", "Ana Lima"],
        service_add("--pppoe", "ana", "--password-file", pppoe),
        service_add("--ip", "100.64.0.1"),
        ["payment", "add", "--customer", "1", "--amount", "10.00"],
    ]  # fmt: skip
    for argv in steps:
        assert main(["--config", str(config), *argv]) == 0, argv
    return home


@pytest.fixture
def refusals(installation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    """A private copy of ``installation`` in ``tmp_path`` (its files, database and configuration)."""
    home = tmp_path / "home"
    shutil.copytree(installation, home)
    config = home / "edgebill.toml"
    config.write_text(config.read_text(encoding="utf-8").replace(str(installation), str(home)), encoding="utf-8")
    return Cli(config, capsys)


BAD_COMMANDS: list[tuple[list[str], str]] = [
    (
        ["plan", "add", "home-10", "--download", "10M", "--upload", "5M", "--price", "1"],
        "plan 'home-10' already exists",
    ),
    (["plan", "add", "p", "--download", "10Mbps", "--upload", "5M", "--price", "1"], "download rate: invalid rate"),
    (["plan", "add", "p", "--download", "0", "--upload", "5M", "--price", "1"], "must be above zero"),
    (["plan", "add", "p", "--download", "10M", "--upload", "5M", "--price", "1,000.00"], "price: invalid amount"),
    (["plan", "add", "p", "--download", "10M", "--upload", "5M", "--price", "9.999"], "USD has 2 decimal places"),
    (["plan", "add", "p", "--download", "10M", "--upload", "5M", "--price", "-1"], "must not be negative"),
    (["plan", "add", "p", "--download", "10M", "--upload", "5M", "--price", "1", "--currency", "EUR"], "differs"),
    (["plan", "add", "p", "--download", "10M", "--upload", "5M", "--price", "1", "--currency", "XYZ"], "unknown"),
    (["plan", "add", "bad name", "--download", "10M", "--upload", "5M", "--price", "1"], "invalid plan name"),
    (["plan", "add", "p", "--download", "10M", "--upload", "5M", "--price", "1", "--quota", "lots"], "volume"),
    (["plan", "add", "p", "--download", "10M", "--upload", "5M", "--price", "1", "--quota", "1GB"], "fair-use"),
    (["plan", "add", "p", "--download", "10M", "--upload", "5M", "--price", "1", "--tax-rate", "1.5"], "tax rate"),
    (
        [
            "plan",
            "add",
            "p",
            "--download",
            "10M",
            "--upload",
            "5M",
            "--price",
            "1",
            "--burst-download",
            "5M",
            "--burst-upload",
            "10M",
        ],
        "burst download rate 5M must be above",
    ),
    (["plan", "add", "p", "--download", "10M", "--upload", "5M", "--price", "1", "--burst-upload", "10M"], "burst"),
    (["plan", "show", "nope"], "plan 'nope' not found"),
    (["customer", "add", "  "], "customer name must not be empty"),
    (["customer", "add", "X", "--email", "not-an-email"], "invalid email address"),
    (["customer", "add", "X", "--tag", "Bad Tag!"], "invalid tag"),
    (["customer", "show", "99"], "customer 99 not found"),
    (
        ["service", "add", "--customer", "99", "--plan", "home-10", "--router", "core1", "--ip", "100.64.0.2"],
        "customer 99 not found",
    ),
    (
        ["service", "add", "--customer", "1", "--plan", "nope", "--router", "core1", "--ip", "100.64.0.2"],
        "plan 'nope' not found",
    ),
    (
        ["service", "add", "--customer", "1", "--plan", "home-10", "--router", "nope", "--ip", "100.64.0.2"],
        "router 'nope' not found (configured: core1, edge2)",
    ),
    (
        service_add("--ip", "100.64.0.1"),
        "IPv4 address 100.64.0.1 is already used by service 2 on router 'core1'",
    ),
    (
        service_add("--ip", "300.1.2.3"),
        "invalid IPv4 address '300.1.2.3'",
    ),
    (
        service_add("--ip", "224.0.0.1"),
        "cannot be given to a subscriber",
    ),
    (
        service_add("--pppoe", "ana", "--password-file", "{home}/pppoe.pw"),
        "PPPoE login 'ana' is already used by service 1",
    ),
    (
        service_add("--pppoe", "bo b", "--password-file", "{home}/pppoe.pw"),
        "invalid PPPoE login",
    ),
    (
        service_add("--pppoe", "bob", "--password-file", "{home}/space.pw"),
        "printable ASCII without spaces",
    ),
    (
        service_add("--pppoe", "bob", "--password-file", "{home}/empty.pw"),
        "is empty",
    ),
    (
        service_add("--pppoe", "bob", "--password-file", "{home}/missing.pw"),
        "missing.pw: cannot read: No such file or directory",
    ),
    (
        service_add("--pppoe", "bob"),
        "--pppoe needs --password-file",
    ),
    (["service", "add", "--customer", "1", "--plan", "home-10", "--router", "core1"], "needs a PPPoE login"),
    (["service", "show", "42"], "service 42 not found"),
    (["service", "set-plan", "1", "--plan", "nope"], "plan 'nope' not found"),
    (["service", "list", "--router", "nope"], "router 'nope' not found"),
    (["payment", "add", "--customer", "1", "--amount", "0"], "payment amount must be above zero"),
    (["payment", "add", "--customer", "1", "--amount", "-5.00"], "payment amount must be above zero"),
    (["payment", "add", "--customer", "1", "--amount", "1e3"], "payment amount: invalid amount"),
    (["payment", "add", "--customer", "1", "--amount", "5.001"], "USD has 2 decimal places"),
    (["payment", "add", "--customer", "7", "--amount", "5.00"], "customer 7 not found"),
    (["payment", "refund", "9"], "payment 9 not found"),
    (["payment", "refund", "1", "--amount", "10.01"], "exceeds the 10.00 USD left"),
    (["payment", "refund", "1", "--amount", "x"], "refund amount: invalid amount"),
    (["invoice", "show", "3"], "invoice 3 not found"),
    (["user", "add", "admin", "--role", "admin", "--password-file", "{home}/admin.pw"], "user 'admin' already exists"),
    (["user", "add", "Bad User", "--role", "admin", "--password-file", "{home}/admin.pw"], "invalid user name"),
    (["user", "add", "carol", "--role", "support", "--password-file", "{home}/short.pw"], "password is too short"),
    *(
        (["user", "add", "carol", "--role", "support", "--password-file", f"{{home}}/{name}.pw"], f"{name}.pw{why}")
        for name, why in (
            ("utf16", ": not valid UTF-8: byte 0xff at offset 0"),
            ("bom", ": starts with a byte order mark (BOM): save it as UTF-8 without BOM"),
            ("nul", " holds a NUL byte: is it a text file?"),
            ("huge", ": is too large (5000 bytes; at most 4 KB)"),
            ("folder", ": cannot read: is a directory"),
        )
    ),
    (["token", "create", "nobody", "ci"], "user 'nobody' not found"),
    (["token", "revoke", "5"], "API token 5 not found"),
    (["router", "check", "nope"], 'no router named "nope"'),
]


@pytest.mark.parametrize(("argv", "message"), BAD_COMMANDS, ids=[" ".join(a[:2]) + f" #{i}" for i, (a, _) in
                                                                 enumerate(BAD_COMMANDS)])  # fmt: skip
def test_bad_input_is_refused_with_one_line_and_changes_nothing(
    refusals: Cli, tmp_path: Path, argv: list[str], message: str
) -> None:
    url = load_settings(refusals.config).database.url
    before = snapshot(url)
    code = refusals(*[arg.replace("{home}", str(refusals.config.parent)) for arg in argv])
    assert code == 1
    assert refusals.out == ""
    assert refusals.err.startswith("edgebill: error: ") and refusals.err.count("\n") == 1, refusals.err
    assert message in refusals.err
    assert snapshot(url) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "add", "p", "--upload", "5M", "--price", "1"],  # --download missing
        ["plan", "add", "p", "--download", "1M", "--upload", "5M", "--price", "1", "--cycle", "yearly"],
        ["service", "add", "--customer", "abc", "--plan", "p", "--router", "r", "--ip", "1.2.3.4"],
        ["service", "add", "--customer", "1", "--plan", "p", "--router", "r", "--start", "01/03/2026"],
        ["service", "show", "0"],
        ["payment", "add", "--customer", "1", "--amount", "5", "--method", "barter"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(refusals: Cli, argv: list[str]) -> None:
    url = load_settings(refusals.config).database.url
    before = snapshot(url)
    assert refusals(*argv) == 2
    assert refusals.err.startswith("usage: edgebill") and ": error: " in refusals.err
    assert snapshot(url) == before


def test_commands_refuse_an_uninitialised_database(make_config: MakeConfig, capsys: pytest.CaptureFixture[str]) -> None:
    cli = Cli(make_config(), capsys)
    assert cli("plan", "list") == 1
    assert cli.err == "edgebill: error: the database has no edgebill schema yet; run: edgebill init\n"
    assert cli("init") == 1
    assert "give --admin-password-file" in cli.err


def test_init_refuses_a_weak_admin_password_before_touching_the_database(
    make_config: MakeConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli = Cli(make_config(), capsys)
    assert cli("init", "--admin-password-file", write(tmp_path / "pw", "short\n")) == 1
    assert "password is too short" in cli.err
    assert not (tmp_path / "edgebill.db").exists()


def test_password_from_standard_input(refusals: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("another good password\n"))
    assert refusals.json("user", "add", "carol", "--role", "readonly", "--password-file", "-")["role"] == "readonly"
    settings = load_settings(refusals.config)
    engine = make_engine(settings.database.url)
    try:
        with session_factory(engine).begin() as session:
            assert users.authenticate(session, "carol", "another good password") is not None
            assert users.authenticate(session, "carol", "another good password\n") is None
    finally:
        engine.dispose()


def test_token_is_printed_once_and_verifies(refusals: Cli) -> None:
    token = refusals.ok("token", "create", "admin", "ci").strip()
    assert token.startswith("ebt_") and "shown only now" in refusals.err
    listed = refusals.json("token", "list")
    assert [(t["name"], t["username"], t["revoked_at"]) for t in listed] == [("ci", "admin", None)]
    assert token not in json.dumps(listed)
    settings = load_settings(refusals.config)
    engine = make_engine(settings.database.url)
    try:
        with session_factory(engine).begin() as session:
            user = users.verify_token(session, token)
            assert user is not None and user.username == "admin"
            hashes = session.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
            assert token not in hashes
    finally:
        engine.dispose()
    assert refusals("token", "revoke", str(listed[0]["id"])) == 0
    engine = make_engine(settings.database.url)
    try:
        with session_factory(engine).begin() as session:
            assert users.verify_token(session, token) is None
    finally:
        engine.dispose()


def test_config_check(make_config: MakeConfig, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = make_config()
    assert main(["config", "check", str(good)]) == 0
    assert capsys.readouterr().out == f"{good}: ok\n"
    bad = make_config(name="bad.toml", billing={"currency": "ZZZ"})
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"edgebill: error: {bad}: billing.currency: unknown currency")
    assert err.count("\n") == 1
    assert main(["config", "check", str(tmp_path / "missing.toml")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_keygen_writes_private_keys_and_never_overwrites(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "data.key"
    assert main(["keygen", str(key)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    first = key.read_bytes()
    assert main(["keygen", str(key)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert key.read_bytes() == first
    web = tmp_path / "web.key"
    assert main(["keygen", "--web", str(web)]) == 0
    assert len(web.read_text().strip()) == 64


def test_router_check_logs_in_and_reports_facts(make_config: MakeConfig, capsys: pytest.CaptureFixture[str]) -> None:
    with (
        RouterOSEmulator(users={"edgebill": "router-api-password"}, identity="core-north") as good,
        RouterOSEmulator(users={"edgebill": "another-password"}) as wrong_password,
        socket.socket() as closed,
    ):
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        config = make_config(
            routers=[
                {"name": "up1", "kind": "mikrotik", "host": "127.0.0.1", "port": good.port},
                {"name": "auth1", "kind": "mikrotik", "host": "127.0.0.1", "port": wrong_password.port},
                {"name": "down1", "kind": "mikrotik", "host": "127.0.0.1", "port": closed.getsockname()[1]},
            ]
        )
        assert main(["--config", str(config), "router", "check", "up1"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"up1 (mikrotik) 127.0.0.1:{good.port}: ok: core-north, version 7.16")
        assert main(["--config", str(config), "router", "check", "--json", "--timeout", "3"]) == 1
        results = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert results["up1"]["ok"] is True and results["up1"]["identity"] == "core-north"
    assert results["auth1"]["ok"] is False and results["auth1"]["retryable"] is False
    assert results["down1"]["ok"] is False and results["down1"]["retryable"] is True
    assert "refused" in results["down1"]["error"].lower()
    assert "another-password" not in json.dumps(results) and "router-api-password" not in json.dumps(results)


def test_config_comes_from_the_environment_when_not_given(
    refusals: Cli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDGEBILL_CONFIG", str(refusals.config))
    capsys.readouterr()
    assert main(["plan", "list", "--json"]) == 0
    assert [p["name"] for p in json.loads(capsys.readouterr().out)] == ["home-10"]


def test_an_unreachable_database_is_one_clear_line(make_config: MakeConfig, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # nothing listens: the connection is refused at once
        port = closed.getsockname()[1]
        cli = Cli(make_config(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/edgebill"), capsys)
        assert cli("plan", "list") == 1
    assert cli.err.startswith("edgebill: error: the database is unavailable: ") and cli.err.count("\n") == 1


def test_python_dash_m_daemon_runs_the_cli(config_file: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "daemon", "config", "check", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{config_file}: ok\n", "")
