"""``crm marketing segments|campaigns|run|roi|plan`` through click's ``CliRunner``, on the
database under test, as the system actor and as a rep."""

from __future__ import annotations

import importlib.util
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from crmcore.cli import CliState, main
from crmcore.security import add_user

SETTINGS = """\
[crm]
plugins = ["marketing"]

[plugins.marketing]
smtp_port = {port}
secret = "cli-secret"

[security.profiles.sales]
privileges = {{ lead = "all", account = "all", contact = "all", opportunity = "all", activity = "all", \
geography = "all", segment = "all", segment_entry = "all", campaign = "all", campaign_cost = "all", \
campaign_run = "all", campaign_member = "all", campaign_touch = "all", market_plan = "all", plan_target = "all", \
plan_goal = "all" }}

[security.roles]
manager = {{ profiles = ["sales"] }}
rep = {{ parent = "manager", profiles = ["sales"] }}

[security.entities]
account = {{ sharing = "private" }}
contact = {{ sharing = "private" }}
"""


@pytest.fixture
def db(crm_factory: Any, smtp_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Two reps with an account and a contact each, a segment, an e-mail campaign, a plan."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_PLUGINS", raising=False)
    text = SETTINGS.format(port=smtp_server.port)
    (tmp_path / "crm.toml").write_text(text)
    url: str = crm_factory.database_url(file=True)
    settings = tomllib.loads(text)
    settings["crm"]["plugins"] = []
    app = crm_factory(plugins=["marketing"], settings=settings, database=url)
    with app.unit_of_work() as uow:
        users = {name: add_user(uow, name, roles=[role]) for name, role in (("boss", "manager"), ("rep1", "rep"),
                                                                            ("rep2", "rep"))}
        de = uow.create("geography", name="Germany", code="DE")
        for rep in ("rep1", "rep2"):
            account = uow.create("account", name=f"{rep} GmbH", geography_id=de.id, owner_id=users[rep].id)
            uow.create("contact", first_name=rep, last_name="Kunde", email=f"{rep}@kunde.test", account_id=account.id,
                       owner_id=users[rep].id)
            deal = uow.create("opportunity", name=f"{rep} deal", account_id=account.id, amount="1000 EUR",
                              close_date="2026-05-01", stage="won", product_group="PUMPS", owner_id=users[rep].id)
        segment = uow.create("segment", name="German contacts", member_entity="contact", geography_id=de.id)
        campaign = uow.create("campaign", name="News", code="NEWS", channel="email", segment_id=segment.id,
                              subject="Hi {{ first_name }}", message="Hello {{ first_name }}\n{{ unsubscribe_url }}")
        uow.create("campaign_cost", campaign_id=campaign.id, description="Design", amount="500 EUR")
        uow.create("campaign_touch", campaign_id=campaign.id, kind="linked", at="2026-04-01T10:00:00+00:00",
                   opportunity_id=deal.id, account_id=account.id)
        plan = uow.create("market_plan", name="2026", starts_on="2026-01-01", ends_on="2026-12-31", currency="EUR")
        uow.create("plan_target", plan_id=plan.id, product_group="PUMPS", geography_id=de.id,
                   starts_on="2026-01-01", ends_on="2026-12-31", amount="4000 EUR", count=4)
        uow.create("plan_target", plan_id=plan.id, segment_id=segment.id, user_id=users["rep1"].id,
                   starts_on="2026-01-01", ends_on="2026-12-31", count=1, calls=2)
        uow.create("plan_goal", plan_id=plan.id, text="Known in Germany", status="at_risk")
        uow.create("plan_goal", plan_id=plan.id, text="Two fairs", status="on_track", score=50,
                   evidence=["https://example.com/fair"])
        uow.commit()
    return url


def crm(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], obj=CliState(), catch_exceptions=False)


def ok(db: str, *args: str) -> str:
    result = crm(db, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_segments_lists_and_shows_members_the_user_may_read(db: str) -> None:
    assert "German contacts  (filter, 2 contacts)" in ok(db, "marketing", "segments")
    out = ok(db, "--as", "rep1", "marketing", "segments", "German contacts")
    assert "rep1 Kunde  rep1@kunde.test" in out and "rep2" not in out
    assert out.endswith("1 contact in segment 'German contacts'\n")


def test_run_sends_once_and_roi_counts_the_cost_once(db: str, smtp_server: Any) -> None:
    assert "NEWS       News  email, planned" in ok(db, "marketing", "campaigns")
    assert ok(db, "marketing", "run", "NEWS") == "campaign 1 run 1: 2 members (2 sent)\n"
    assert json.loads(ok(db, "marketing", "run", "NEWS", "--json"))["counts"] == {"already_sent": 2}
    assert sorted(m["Subject"] for m in smtp_server.messages) == ["Hi rep1", "Hi rep2"]
    out = ok(db, "marketing", "roi")
    assert ("News: reached 2, responded 0, leads 0, converted 0, won 1, revenue 1,000.00 EUR, cost 500.00 EUR, "
            "ROI 100.0 %") in out
    assert json.loads(ok(db, "marketing", "roi", "1", "--json"))[0]["roi"] == "1.0000"


def test_plan_reports_target_against_actual(db: str) -> None:
    out = ok(db, "marketing", "plan", "2026")
    assert ("PUMPS · Germany · 2026-01-01..2026-12-31: target 4,000.00 EUR, actual 2,000.00 EUR, variance "
            "-2,000.00 EUR, attainment 50.00 %, deals 2/4") in out
    assert "goal [at_risk] Known in Germany" in out
    assert "goal [on_track score 50] Two fairs <https://example.com/fair>" in out
    assert "all groups · everywhere · segment German contacts · user rep1 · 2026-01-01..2026-12-31" in out
    assert "deals 1/1, calls 0/2" in out
    rep = json.loads(ok(db, "--as", "rep1", "marketing", "plan", "2026", "--json"))
    assert rep["lines"][0]["actual"] == "1000.00"  # only what rep1 may read


def test_unknown_campaign_is_one_line(db: str) -> None:
    result = crm(db, "marketing", "run", "NOPE")
    assert result.exit_code == 1 and "no campaign with code or name 'NOPE'" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                    reason="matplotlib (the chart extra) is not installed")
def test_plan_chart_is_drawn(db: str, tmp_path: Path) -> None:
    ok(db, "marketing", "plan", "2026", "--chart", str(tmp_path / "plan.png"))
    assert (tmp_path / "plan.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed")
def test_plan_chart_without_matplotlib_says_how_to_get_it(db: str, tmp_path: Path) -> None:
    result = crm(db, "marketing", "plan", "2026", "--chart", str(tmp_path / "plan.png"))
    assert result.exit_code == 1 and "pip install 'crm-marketing[chart]'" in result.stderr


def test_plan_report_by_dimension_and_period(db: str) -> None:
    out = ok(db, "plans", "report", "2026", "--by", "product_group", "--period", "quarter")
    assert ("PUMPS · everywhere · 2026-04-01..2026-06-30: target 997.26 EUR, actual 2,000.00 EUR, variance "
            "1,002.74 EUR") in out
    assert "segment" not in out  # the segment × owner target is not in a roll-up without them
    rows = json.loads(ok(db, "marketing", "plan", "2026", "--by", "segment,owner", "--json"))["lines"]
    assert {(r["segment_id"], r["user_id"], r["actual_count"]) for r in rows} == {(None, None, 2), (1, 2, 1)}
    result = crm(db, "plans", "report", "2026", "--by", "city")
    assert result.exit_code == 1 and "unknown dimension 'city'" in result.stderr


def test_the_documented_command_names(db: str, smtp_server: Any) -> None:
    assert "German contacts  (filter, 2 contacts)" in ok(db, "segments", "list")
    assert "members: 2" in ok(db, "segments", "show", "German contacts")
    assert "rep1 Kunde" in ok(db, "--as", "rep1", "segments", "members", "German contacts")
    assert "plan 2 2027 (2027-01-01..2027-12-31, EUR)" in ok(db, "plans", "new", "2027", "--from", "2027-01-01",
                                                                 "--to", "2027-12-31", "--currency", "eur")
    assert "campaign 2 Calls (call, visit)" in ok(db, "campaigns", "new", "Calls", "--channel", "call", "--also",
                                                  "visit", "--segment", "German contacts")
    assert "Calls  call, visit, planned" in ok(db, "campaigns", "list")
    refused = crm(db, "campaigns", "send-newsletter", "Calls")
    assert refused.exit_code != 0 and "crm campaigns run Calls" in refused.output + refused.stderr
    assert ok(db, "campaigns", "send-newsletter", "NEWS") == "campaign 1 run 1: 2 members (2 sent)\n"
    assert "News: reached 2" in ok(db, "campaigns", "report")
    assert ok(db, "campaigns", "run", "Calls") == "campaign 2 run 2: 2 members (4 planned)\n"
