"""``crm quotes ...`` and ``crm orders ...`` through click's ``CliRunner`` on the database under
test."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from crmcore.testing import crm_ok, run_crm
from orders_support import seed

SETTINGS = """\
[crm]
plugins = ["orders"]

[plugins.orders]
routes = { Machines = "production" }
order_on_accept = true

[outbox.sinks.production]
type = "file"
path = "production"

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
    app = crm_factory(plugins=["orders"], settings=tomllib.loads(SETTINGS), database=url)
    return url, seed(app)


def run(db: str, *args: str) -> Result:
    return run_crm("--db", db, *args)


def ok(db: str, *args: str) -> str:
    return crm_ok("--db", db, *args)


def test_a_quote_from_new_to_order(db, tmp_path):
    url, s = db
    out = ok(url, "quotes", "new", "--from-opportunity", str(s["opportunity"].id))
    assert out == "created quote 1 v1 [draft] Quote: Acme lathe line: net 19471.35 EUR, total 23003.94 EUR\n"
    shown = ok(url, "quotes", "show", "1")
    assert "  1. Lathe L1: 2.0000 x 9500.0000 EUR less 3.00% = 18430.00 EUR (+ tax 3501.70 EUR)" in shown
    assert shown.endswith("  total: 23003.94 EUR\n")
    assert ok(url, "quotes", "send", "1").startswith("sent quote 1 v1 [sent]")
    assert ok(url, "quotes", "revise", "1") == (
        "created quote 2 v2 [draft] Quote: Acme lathe line: net 19471.35 EUR, total 23003.94 EUR superseding quote 1\n")
    refused = run(url, "quotes", "accept", "1")
    assert refused.exit_code == 1 and "superseded by quote 2; accept the current version instead" in refused.stderr
    ok(url, "quotes", "send", "2")
    assert ok(url, "quotes", "accept", "2") == (
        "accepted quote 2 v2 [accepted] Quote: Acme lathe line: net 19471.35 EUR, total 23003.94 EUR; sales_order 1 [draft]\n")
    confirmed = ok(url, "orders", "confirm", "1")
    assert confirmed.splitlines()[1:] == ["  fulfilment request 1: production -> sink production",
                                          "  fulfilment request 2: sales_office_review -> sink sales_office_review"]
    data = json.loads(ok(url, "orders", "show", "1", "--json"))
    assert data["state"] == "confirmed" and [line["quote_id"] for line in data["lines"]] == [2, 2, 2]
    assert "from quote 2" in ok(url, "orders", "show", "1")
    assert ok(url, "quotes", "pdf", "2", "-o", "q.pdf").startswith("wrote q.pdf (")
    assert (tmp_path / "q.pdf").read_bytes().startswith(b"%PDF")
    ok(url, "orders", "pdf", "1")
    assert (tmp_path / "sales_order-1.pdf").exists()
    assert ok(url, "orders", "cancel", "1").startswith("cancelled sales_order 1 ")


def test_a_rejected_quote_and_usage_errors(db):
    url, s = db
    ok(url, "quotes", "new", "--account", str(s["account"].id), "--title", "Spare parts")
    refused = run(url, "quotes", "send", "1")
    assert refused.exit_code == 1 and refused.stderr == "error: quote 1 has no lines; add lines before sending it\n"
    assert run(url, "orders", "new").exit_code == 2
    ok(url, "quotes", "new", "--from-opportunity", str(s["opportunity"].id))
    ok(url, "quotes", "send", "2")
    assert ok(url, "quotes", "reject", "2").startswith("rejected quote 2 v1 [rejected]")
    assert ok(url, "orders", "new", "--from-opportunity", str(s["opportunity"].id)).startswith("created sales_order 1 [draft]")
