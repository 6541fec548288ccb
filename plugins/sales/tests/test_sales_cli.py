"""``crm leads check|score|convert`` and ``crm forecast`` through click's ``CliRunner``, on the
database under test, as the system actor and as users with roles."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from crmcore.security import add_user
from crmcore.testing import crm_ok, run_crm

SETTINGS = """\
[sales]
default_region = "GB"

[security.profiles.sales]
privileges = { lead = "all", account = "all", contact = "all", opportunity = "all" }

[security.roles]
manager = { profiles = ["sales"] }
rep = { parent = "manager", profiles = ["sales"] }

[security.entities]
lead = { sharing = "private" }
opportunity = { sharing = "private" }
"""


@pytest.fixture(autouse=True)
def _in_tmp(crm_workdir: Path) -> None:
    (crm_workdir / "crm.toml").write_text(SETTINGS)


@pytest.fixture
def db(crm_factory: Any) -> str:
    """Two reps with leads and deals."""
    url: str = crm_factory.database_url(file=True)
    app = crm_factory(settings=tomllib.loads(SETTINGS), database=url)
    with app.unit_of_work() as uow:
        for name, role in (("boss", "manager"), ("rep1", "rep"), ("rep2", "rep")):
            add_user(uow, name, roles=[role])
        uow.commit()
    for name in ("rep1", "rep2"):
        with app.unit_of_work(name) as uow:
            uow.create("lead", last_name=f"{name} Lovelace", company=f"{name} Ltd", email=f"{name}@mailinator.com",
                       phone="020 7946 0958", status="qualified", source="referral")
            uow.create("opportunity", name=f"{name} deal", amount="1000 EUR", close_date="2026-05-01",
                       stage="rfp_received" if name == "rep1" else "final_stage")
            uow.commit()
    return url


def test_leads_check_lists_the_issues_and_stores_them(db):
    out = crm_ok("--db", db, "leads", "check")
    assert "lead 1: disposable_email: 'mailinator.com' is a disposable e-mail domain; duplicate_lead: same e-mail" in out
    assert out.endswith("checked 2 leads: 0 without issues, 2 with issues (stored)\n")
    shown = json.loads(crm_ok("--db", db, "show", "lead", "1", "--json"))
    assert (shown["phone"], shown["quality_issues"]) == ("+442079460958", ["disposable_email", "duplicate_lead"])


def test_leads_check_as_a_rep_sees_their_leads_and_a_dry_run_writes_nothing(db):
    out = crm_ok("--db", db, "--as", "rep2", "leads", "check", "--dry-run", "--json")
    data = json.loads(out)
    # lead 1 (rep1's, same phone) is not found for rep2, so it is no duplicate of theirs either
    assert [(d["lead_id"], [i["code"] for i in d["issues"]]) for d in data] == [(2, ["disposable_email"])]
    assert data[0]["duplicates"] == [] and data[0]["phone"] == "+442079460958"
    assert json.loads(crm_ok("--db", db, "show", "lead", "2", "--json"))["checked_at"] is None
    refused = run_crm("--db", db, "--as", "rep2", "leads", "check", "1")
    assert refused.exit_code == 1 and refused.stderr == "error: lead 1 not found\n"


def test_leads_score_prints_changes_and_a_summary(db):
    crm_ok("--db", db, "leads", "check")
    out = crm_ok("--db", db, "leads", "score")
    assert out.splitlines() == ["lead 1: 5 cold", "lead 2: 5 cold", "scored 2 leads: 0 hot, 0 warm, 2 cold; 2 changed"]
    assert crm_ok("--db", db, "leads", "score", "1").splitlines() == ["scored 1 lead: 0 hot, 0 warm, 1 cold; 0 changed"]
    data = json.loads(crm_ok("--db", db, "leads", "score", "--dry-run", "--json"))
    assert data[0] == {"lead_id": 1, "score": 5, "temperature": "cold", "previous_score": 5, "previous_temperature": "cold"}


def test_leads_convert_makes_account_contact_and_opportunity(db):
    out = crm_ok("--db", db, "--as", "rep1", "leads", "convert", "1", "--opportunity", "Engines", "--amount", "12000 EUR", "--close-date", "2026-09-30")
    assert out == "lead 1 converted: account 1 rep1 Ltd (new), contact 1 rep1 Lovelace (new), opportunity 3 Engines\n"
    deal = json.loads(crm_ok("--db", db, "show", "opportunity", "3", "--json"))
    assert (deal["amount"], deal["close_date"], deal["contact_id"], deal["account_id"]) == (
        {"amount": "12000.00", "currency": "EUR"}, "2026-09-30", 1, 1)
    again = run_crm("--db", db, "--as", "rep1", "leads", "convert", "1")
    assert again.exit_code == 1 and "lead 1 was converted on" in again.stderr and "converting twice is refused" in again.stderr


def test_leads_convert_json_and_refusals(db):
    data = json.loads(crm_ok("--db", db, "leads", "convert", "2", "--json"))
    assert (data["lead_id"], data["account_created"], data["contact"]["last_name"], data["opportunity"]) == (2, True, "rep2 Lovelace", None)
    other = run_crm("--db", db, "--as", "rep2", "leads", "convert", "1")
    assert other.exit_code == 1 and other.stderr == "error: lead 1 not found\n"


def test_forecast_prints_the_weighted_pipeline(db):
    out = crm_ok("--db", db, "forecast", "--period", "quarter", "--by", "owner")
    assert out.splitlines() == [
        "period   owner  currency  open  pipeline  weighted  won",
        "2026-Q2  rep1   EUR          1   1000.00    500.00",
        "2026-Q2  rep2   EUR          1   1000.00    800.00",
    ]
    mine = json.loads(crm_ok("--db", db, "--as", "rep1", "forecast", "--json"))
    assert mine["rows"] == [{"period": "2026-05", "group": None, "label": None, "currency": "EUR", "count": 1,
                             "amount": "1000.00", "weighted": "500.00", "won": None}]


def test_forecast_with_history_and_filters(db):
    data = json.loads(crm_ok("--db", db, "forecast", "--history", "--json", "--where", "name~rep2"))
    assert [r["weighted"] for r in data["rows"]] == ["800.00"]
    final = next(s for s in data["stages"] if s["stage"] == "final_stage")
    assert final == {"pipeline": "sales", "stage": "final_stage", "closed": 0, "won": 0, "win_rate": None,
                     "days_to_close": None, "probability": 80, "used": False}
    assert crm_ok("--db", db, "forecast", "--from", "2027-01-01") == "no open opportunities\n"
    bad = run_crm("--db", db, "forecast", "--from", "soon")
    assert bad.exit_code == 1 and bad.stderr == "error: --from expects a date such as '2026-03-31', got 'soon'\n"


def test_the_commands_are_listed(db):
    assert {"leads", "forecast"} <= set(crm_ok("--db", db, "--help").split())
    assert "check" in crm_ok("--db", db, "leads", "--help") and "convert" in crm_ok("--db", db, "leads", "--help")
