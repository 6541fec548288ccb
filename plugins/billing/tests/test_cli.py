"""``crm invoices|payments|dunning|revenue ...`` through click's ``CliRunner`` on the database
under test."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from billing_support import seed
from click.testing import Result
from crmcore.testing import crm_ok, run_crm

SETTINGS = """\
[crm]
plugins = ["billing"]

[plugins.billing]
letters_dir = "letters"

[outbox.sinks.sales_office_review]
type = "file"
path = "office"
"""


@pytest.fixture(autouse=True)
def _in_tmp(crm_workdir: Path) -> None:
    (crm_workdir / "crm.toml").write_text(SETTINGS)


@pytest.fixture
def db(crm_factory: Any) -> tuple[str, dict[str, Any]]:
    url: str = crm_factory.database_url(file=True)
    app = crm_factory(plugins=["billing"], settings=tomllib.loads(SETTINGS), database=url)
    return url, seed(app)


def run(db: str, *args: str) -> Result:
    return run_crm("--db", db, *args)


def ok(db: str, *args: str) -> str:
    return crm_ok("--db", db, *args)


def test_invoice_pay_dun_and_credit_from_the_command_line(db, tmp_path):
    url, s = db
    lathe = s["lines"][0].id
    assert ok(url, "invoices", "new", "--from-order", str(s["order"].id), "--line", f"{lathe}=1") == (
        "invoice 1 (draft) [draft] account 1: total 1190.00 EUR, open -\n")
    refused = run(url, "invoices", "new", "--from-order", str(s["order"].id), "--line", f"{lathe}=5")
    assert refused.exit_code == 1 and f"order line {lathe} has 1 left to invoice, not 5" in refused.stderr
    posted = ok(url, "invoices", "post", "1")
    assert posted.startswith("invoice 1 INV-") and "[posted]" in posted and "open 1190.00 EUR" in posted
    shown = ok(url, "invoices", "show", "1")
    assert "  1. Lathe: 1 x 1000.0000 EUR" in shown and "instalment 1: 1190.00 EUR due" in shown
    assert ok(url, "invoices", "pdf", "1").startswith("wrote invoice-1.pdf")
    assert (tmp_path / "invoice-1.pdf").read_bytes().startswith(b"%PDF")
    assert "nothing overdue" in ok(url, "dunning", "preview", "--date", "2000-01-01")
    (tmp_path / "bank.csv").write_text("date,amount,currency,account,reference\n2026-12-01,190.00,EUR,1,part\n")
    assert ok(url, "payments", "import", "bank.csv") == "bank.csv: 1 payment(s) recorded, 0 seen before, 0 with an unapplied rest\n"
    assert ok(url, "payments", "add", "--account", "1", "--amount", "10.00 EUR", "--date", "2026-12-02").startswith("payment 2")
    far = "2099-01-01"
    preview = ok(url, "dunning", "preview", "--date", far)
    assert "at level 1" in preview and "(990.00 EUR)" in preview
    out = ok(url, "dunning", "run", "--date", far)
    assert "notices made: 1 email" in out and "e-mails sent: 0, failed (retried next run): 1" in out
    credited = ok(url, "invoices", "credit", "1")
    assert credited.startswith("credit_note 2 CN-")
    assert "nothing overdue" in ok(url, "dunning", "preview", "--date", far)
    assert "history" in ok(url, "revenue", "estimate", "--account", "1", "--horizon", "6m")
    assert ok(url, "revenue", "chart", "--account", "1", "-o", "acme.svg").startswith("wrote acme.svg")
    assert b"<svg" in (tmp_path / "acme.svg").read_bytes()
    bad = run(url, "revenue", "estimate", "--horizon", "forever")
    assert bad.exit_code == 2 and "give months such as 12m" in bad.output
    assert ok(url, "revenue", "prospects") == "no prospects\n"  # Initech: no pipeline, no activities


def _overdue(url: str, s: dict[str, Any]) -> None:
    ok(url, "invoices", "new", "--from-order", str(s["order"].id))
    ok(url, "invoices", "post", "1")


def test_a_dunning_run_is_quiet_when_piped(db):
    url, s = db
    _overdue(url, s)
    result = run(url, "dunning", "run", "--date", "2099-01-01")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "notices made: 1 email" in result.stdout


def test_a_dunning_run_shows_its_progress_on_a_terminal(db, monkeypatch):
    import click.testing

    url, s = db
    _overdue(url, s)
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True, raising=False)
    result = run(url, "dunning", "run", "--date", "2099-01-01")
    assert result.exit_code == 0, result.output
    assert "dunning notices" in result.stderr and "sending e-mails" in result.stderr and "100%" in result.stderr
    assert "notices made: 1 email" in result.stdout and "dunning notices" not in result.stdout
