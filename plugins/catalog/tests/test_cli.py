"""``crm price explain``, ``crm catalog reorder`` and ``crm catalog tiers`` through click's
``CliRunner``, on the database under test."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from catalog_support import catalog
from click.testing import CliRunner, Result
from crmcore.cli import CliState, main
from crmcore.security import add_user

SETTINGS = """\
[crm]
plugins = ["catalog"]

[security.profiles.seller]
privileges = { product = ["read"], product_group = ["read"], tax_category = ["read"], account = "all", price_list = ["read"], price_list_line = ["read"], customer_discount = ["read"] }

[security.profiles.outsider]
privileges = { account = "all" }

[security.roles]
seller = { profiles = ["seller"] }
outsider = { profiles = ["outsider"] }
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_PLUGINS", raising=False)
    (tmp_path / "crm.toml").write_text(SETTINGS)


@pytest.fixture
def db(crm_factory: Any) -> str:
    url: str = crm_factory.database_url(file=True)
    app = crm_factory(settings=tomllib.loads(SETTINGS), database=url)
    c = catalog(app)
    with app.unit_of_work() as uow:
        retail = uow.create("price_list", name="Retail", currency="EUR", segment="retail")
        uow.create("price_list_line", price_list_id=retail.id, group_id=c["hardware"].id, priority=1,
                   discount_percent="10", rounding="5")
        uow.create("customer_discount", account_id=c["retail"].id, percent="2")
        uow.update("product", c["dock"].id, track_stock=True, reorder_point="3", reorder_quantity="12")
        vendor = uow.create("account", name="Parts Inc", vendor=True)
        uow.create("vendor_product", vendor_id=vendor.id, product_id=c["dock"].id, vendor_code="PI-D",
                   cost="110 EUR", lead_time_days=9, preferred=True)
        uow.create("stock_level", product_id=c["dock"].id, location_id=uow.create("stock_location", name="Main").id,
                   on_hand="2")
        add_user(uow, "sid", roles=["seller"])
        add_user(uow, "otto", roles=["outsider"])
        uow.commit()
    return url


def crm(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], obj=CliState(), catch_exceptions=False)


def ok(db: str, *args: str) -> str:
    result = crm(db, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_price_explain_prints_each_step_with_its_input_and_output(db) -> None:
    out = ok(db, "--as", "sid", "price", "explain", "--account", "Retail Co", "--product", "LAP-14", "--quantity", "3",
             "--date", "2026-06-01")
    assert out.splitlines() == [
        "1. list_price: product LAP-14",
        "   list price: 1000.00 EUR",
        "2. price_list_line: price list 'Retail' line 1 (priority 1)",
        "   list price - 10%: 1000.00 EUR -> 900.00 EUR",
        "3. customer_discount: manual customer discount 1 (every product)",
        "   - 2.00%: 900.00 EUR -> 882.00 EUR",
        "unit price 900.00 EUR, customer discount 2%, net 882.00 EUR, tax VAT19 19.00%",
    ]


def test_price_explain_as_json_is_the_snapshot(db) -> None:
    data = json.loads(ok(db, "price", "explain", "--account", "1", "--product", "DOCK", "--json"))
    assert (data["unit_price"], data["discount_percent"], data["price_list_line_id"]) == (
        {"amount": "180.00", "currency": "EUR"}, "2.00", 1)
    assert [s["kind"] for s in data["steps"]] == ["list_price", "price_list_line", "customer_discount"]


def test_an_unreadable_product_is_not_found_like_a_missing_one(db) -> None:
    hidden = crm(db, "--as", "otto", "price", "explain", "--product", "LAP-14")
    missing = crm(db, "--as", "sid", "price", "explain", "--product", "NOPE")
    assert hidden.exit_code == missing.exit_code == 1
    assert hidden.stderr == "error: no product has the code 'LAP-14'; see crm list product\n"
    assert missing.stderr == hidden.stderr.replace("LAP-14", "NOPE")
    bad = crm(db, "price", "explain", "--product", "DOCK", "--quantity", "two")
    assert bad.exit_code == 1 and "'two' is not a number" in bad.stderr


def test_reorder_lists_the_preferred_vendor(db) -> None:
    out = ok(db, "catalog", "reorder")
    assert out == ("DOCK Dock: available 2 (on hand 2, reserved 0), reorder point 3; order 12 from Parts Inc "
                   "(vendor code PI-D, cost 110.00 EUR, lead time 9 days)\n")
    [line] = json.loads(ok(db, "catalog", "reorder", "--json"))
    assert (line["code"], line["vendor"], line["lead_time_days"], line["available"]) == ("DOCK", "Parts Inc", 9, "2.000")


def test_tiers_recomputes_now(db) -> None:
    assert ok(db, "catalog", "tiers", "--date", "2026-06-01") == (
        "3 accounts: 0 tier discounts started, 0 closed, 0 kept\n")
