"""The billing commands end to end: argparse, one transaction per command, text and JSON output."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from daemon.cli import build_parser
from daemon.config import Settings, load_settings
from daemon.services import ServiceError
from tests.billing.conftest import World
from tests.support import require


def edgebill(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = build_parser().parse_args(argv)
    args.settings = load_settings(args.config)
    try:
        code = args.handler(args)
    except ServiceError as exc:
        print(f"edgebill: error: {exc}", file=sys.stderr)
        code = 1
    finally:
        engine = getattr(args, "_engine", None)
        if engine is not None:
            engine.dispose()
    out, err = capsys.readouterr()
    return code, out, err


def as_json(text: str) -> Any:
    return json.loads(text)


def test_billing_payments_credit_notes_and_balance(
    db: Session, world: World, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(settings.path)
    world.plan("home-30", "30.00", tax_rate="0.16")
    cid = world.customer("Ana Lima")
    sid = world.service(cid, "home-30", date(2026, 1, 1))
    db.commit()
    db.close()

    code, out, _ = edgebill(capsys, "--config", config, "billing", "run", "--as-of", "2026-02-01", "--json")
    run = as_json(out)
    assert code == 0 and run["invoices_issued"] == 1 and run["invoices"][0]["total"] == "34.80"
    code, out, _ = edgebill(capsys, "--config", config, "billing", "run", "--as-of", "2026-02-01")
    assert out.strip() == "billing run 2026-02-01: 1 customers, 0 invoices (0.00 USD), 0 prepaid services lapsed"

    code, out, _ = edgebill(capsys, "--config", config, "customer", "balance", str(cid), "--json")
    assert {k: as_json(out)[k] for k in ("customer_id", "currency", "balance")} == {
        "customer_id": cid,
        "currency": "USD",
        "balance": "34.80",
    }

    statement = tmp_path / "bank.csv"
    statement.write_text("date,amount,reference\n2026-02-03,40.00,INV-000001\n2026-02-03,5.00,who?\n")
    code, out, _ = edgebill(capsys, "--config", config, "payment", "import", str(statement))
    assert code == 0 and out.splitlines()[-1] == "1 recorded, 0 already imported, 1 unmatched"

    code, out, _ = edgebill(
        capsys, "--config", config, "credit-note", "add", "1", "--amount", "11.60", "--reason", "outage"
    )
    assert code == 0 and out.strip() == "credit note INV-CN-000001 of -11.60 USD issued on invoice 1"
    code, out, _ = edgebill(capsys, "--config", config, "customer", "balance", str(cid))
    assert out.strip() == f"customer {cid} has a credit of 16.80 USD"  # 40.00 paid - 34.80 + 11.60 credited

    code, out, _ = edgebill(capsys, "--config", config, "payment", "refund", "1", "--amount", "6.80", "--json")
    assert code == 0 and as_json(out)["amount"] == "-6.80"
    code, out, err = edgebill(capsys, "--config", config, "payment", "refund", "1", "--amount", "99.00")
    assert code == 1 and "exceeds the 33.20 USD left to refund on payment 1" in err

    code, out, _ = edgebill(capsys, "--config", config, "service", "promise", str(sid), "--until", "2099-01-01")
    assert code == 0 and out.startswith(f"service {sid}: promise to pay until 2099-01-01")


def test_void_and_broken_statement(
    db: Session, world: World, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(settings.path)
    world.plan("home-30", "30.00")
    cid = world.customer("Bo")
    world.service(cid, "home-30", date(2026, 1, 1))
    db.commit()
    db.close()
    edgebill(capsys, "--config", config, "billing", "run", "--as-of", "2026-02-01")
    code, out, _ = edgebill(capsys, "--config", config, "invoice", "void", "1")
    assert code == 0 and out.strip() == "invoice INV-000001 voided"
    code, out, err = edgebill(capsys, "--config", config, "invoice", "void", "1")
    assert code == 1 and "only open invoices can be voided" in err
    code, out, _ = edgebill(capsys, "--config", config, "customer", "balance", str(cid), "--json")
    assert as_json(out)["balance"] == "0.00"

    broken = tmp_path / "broken.csv"
    broken.write_text("date,amount,reference\n2026-02-30,1.00,C1\n")
    code, out, err = edgebill(capsys, "--config", config, "payment", "import", str(broken))
    assert code == 1
    assert err.splitlines() == [
        f"{broken}: line 2: invalid date '2026-02-30': expected YYYY-MM-DD",
        "edgebill: error: 1 broken row(s); nothing was imported",
    ]

    code, out, _ = edgebill(capsys, "--config", config, "dunning", "run", "--as-of", "2026-03-01", "--json")
    assert code == 0 and as_json(out)["customers"] == 0  # nothing open after the void: nobody to look at


def test_invoice_pdf_is_a_document_a_customer_can_read(
    db: Session, world: World, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require(importlib.util.find_spec("weasyprint") is not None, "WeasyPrint is not installed")
    require(shutil.which("pdftotext") is not None, "pdftotext (Debian poppler-utils) is not installed")
    world.plan("home-30", "30.00", setup_fee="10.00", tax_rate="0.16")
    cid = world.customer("Ana Lima")
    world.service(cid, "home-30", date(2026, 1, 11))
    db.commit()
    db.close()
    config = str(settings.path)
    edgebill(capsys, "--config", config, "billing", "run", "--as-of", "2026-02-01")
    target = tmp_path / "inv.pdf"
    code, _out, _ = edgebill(capsys, "--config", config, "invoice", "pdf", "1", "-o", str(target))
    assert code == 0 and target.read_bytes().startswith(b"%PDF-")
    assert target.stat().st_mode & 0o777 == 0o600  # it names the customer: readable by its owner only
    text = subprocess.run(["pdftotext", "-layout", str(target), "-"], capture_output=True, text=True, check=True).stdout
    for expected in ("Invoice", "INV-000001", "Ana Lima", "C1", "2026-02-15", "2026-01-11 to 2026-01-31", "35.17 USD"):
        assert expected in text, expected
