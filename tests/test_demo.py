"""``crm demo``: the real story on a fresh SQLite file, plugin chapters, and its bundled data; the sales
story (import, scoring, conversion, guided selling, worker, summary) checked against the database."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import importlib.resources
import io
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from crmcore import PluginInfo, create_app, hookimpl
from crmcore.cli import CliState
from crmcore.demo import CHAPTERS, read_data, tell
from crmcore.testing import CrmFactory, ToldStory, demo_counts, run_crm, tell_story
from crmcore.workflow.actions import manager_of

pytestmark = pytest.mark.usefixtures("crm_workdir")


def demo(*args: str, obj: CliState | None = None) -> Result:
    return run_crm("demo", *args, obj=obj)


#: The core's story alone (the sales plugin's chapters are tested in plugins/sales/tests).
CORE_ONLY = {"crm": {"disabled": ["sales"]}}


class ServicePlugin:
    PLUGIN = PluginInfo(name="service", title="A service chapter")

    @hookimpl
    def crm_demo(self, crm: Any, echo: Any) -> None:
        with crm.unit_of_work() as uow:
            account = uow.all("account", limit=1)[0]
            uow.create("note", title="Service", body="Printer on fire", account_id=account.id)
            uow.commit()
        echo("Service: 1 complaint noted")


def test_demo_builds_the_company_and_prints_a_summary(tmp_path: Path) -> None:
    Path("crm.toml").write_text('[crm]\ndisabled = ["sales"]\n')  # the core's story; plugins/sales tells the rest
    result = demo("--db", str(tmp_path / "demo.db"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"crm demo: a small company on sqlite:///{tmp_path / 'demo.db'}")
    for heading in ("Records", "Pipeline by stage", "Reminders due (crm reminders --as USER)",
                    "Top accounts by open pipeline", "Timeline of "):
        assert f"\n{heading}" in out
    assert "Northwind Analytics: 8 users in 3 teams (1 sales director, 2 sales managers, 4 sales reps, 1 support agent)" in out
    assert re.search(r"^  opportunities +46$", out, re.M)  # the sample deals
    assert "open pipeline" in out
    assert result.stderr == ""
    counts = demo_counts(tmp_path / "demo.db")
    assert counts == {"user": 8, "team": 3, "account": 20, "contact": 41, "lead": 0, "opportunity": 46,
                      "activity": counts["activity"], "note": counts["note"]}
    assert counts["activity"] > 46 and counts["note"] > 10


def test_the_default_demo_file_is_crm_demo_db_and_a_rerun_replaces_it() -> None:
    assert demo().exit_code == 0
    assert demo().exit_code == 0
    assert demo_counts(Path("crm-demo.db"))["account"] == 25  # not 50


def test_the_demo_ignores_the_root_database_option(tmp_path: Path) -> None:
    result = run_crm("--db", "sqlite:///elsewhere.db", "demo", "--db", "d.db")
    assert result.exit_code == 0, result.output
    assert Path("d.db").exists() and not Path("elsewhere.db").exists()


def test_the_demo_accepts_an_sqlite_url() -> None:
    assert demo("--db", "sqlite:///url.db").exit_code == 0
    assert demo_counts(Path("url.db"))["opportunity"] >= 46


@pytest.mark.parametrize("content", [b"precious notes\n", None])
def test_the_demo_refuses_to_replace_a_file_it_did_not_make(content: bytes | None) -> None:
    path = Path("precious.db")
    if content is None:  # an SQLite database of someone else's
        connection = sqlite3.connect(path)
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
        connection.close()
    else:
        path.write_bytes(content)
    before = path.read_bytes()
    result = demo("--db", str(path))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 'precious.db' exists and was not made by crm demo; it was left alone.")
    assert path.read_bytes() == before


def test_the_demo_runs_on_sqlite_only() -> None:
    result = demo("--db", "postgresql+psycopg://postgres@127.0.0.1/test")
    assert result.exit_code == 1
    assert "crm demo runs on an SQLite file" in result.stderr


def test_plugins_tell_their_chapter_after_the_core_and_before_the_summary(tmp_path: Path) -> None:
    result = demo("--db", "p.db", obj=CliState(plugins=[ServicePlugin()]))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("Notes: ") < out.index("Service: 1 complaint noted") < out.index("Worker: ") < out.index("\nRecords")
    assert demo_counts(Path("p.db"))["note"] > 0


def test_the_demo_uses_the_settings_file_but_not_its_database(tmp_path: Path) -> None:
    Path("crm.toml").write_text('[crm]\ndatabase = "sqlite:///prod.db"\ntimezone = "Europe/Paris"\n'
                               '[custom_fields.account]\ntier = { type = "choice", choices = ["a", "b"] }\n')
    assert demo("--db", "t.db").exit_code == 0
    assert not Path("prod.db").exists()
    connection = sqlite3.connect("t.db")
    assert "custom_tier" in [row[1] for row in connection.execute("PRAGMA table_info(crm_account)")]
    connection.close()


def test_broken_settings_stop_the_demo_with_one_line() -> None:
    Path("crm.toml").write_text("[crm]\nplugins = 'x'\n")
    result = demo("--db", "b.db")
    assert result.exit_code == 1
    assert result.stderr == "error: crm.toml: crm.plugins must be a list, got 'x' (line 2)\n"


def test_the_story_is_told_on_the_database_under_test(crm_factory: Any) -> None:
    """The core's chapters and the summary run on SQLite and on PostgreSQL alike."""
    crm = crm_factory(settings=CORE_ONLY)
    lines: list[str] = []
    story = tell(crm, echo=lines.append, today=dt.date(2026, 3, 2))
    assert len(story.opportunities) == 46 and story.leads == [] and story.conversions == []
    expected = sum(decimal.Decimal(row["amount"]) for row in read_data("opportunities.csv"))
    assert sum(o.amount.amount for o in story.opportunities) == expected
    open_deals = [o for o in story.opportunities if o.stage not in ("won", "lost")]
    assert all(o.close_date >= dt.date(2026, 3, 2) for o in open_deals)
    assert all(o.close_date <= dt.date(2026, 3, 2) for o in story.opportunities if o not in open_deals)
    open_total = sum(o.amount.amount for o in open_deals)
    assert any(line.strip().startswith("open pipeline") and f"{open_total:,.2f} USD" in line for line in lines)
    with crm.unit_of_work() as uow:
        furthest = max(open_deals, key=lambda o: o.probability)
        moved = [e.changes["stage"] for e in uow.history("opportunity", furthest.id) if e.action == "updated"]
        assert moved[0][0] == "initiation" and moved[-1][1] == furthest.stage == "final_stage"
        assert sorted(uow.tag_counts()) == [("customer", 5)]


def test_chapters_are_small_functions_of_the_story() -> None:
    assert [c.__name__ for c in CHAPTERS] == [
        "company", "accounts", "pipeline", "activities", "notes", "plugin_chapters", "duplicates", "worker",
    ]
    assert all(c.__doc__ for c in CHAPTERS)


def test_the_sample_data_ships_with_the_package_and_its_provenance() -> None:
    folder = importlib.resources.files("crmcore").joinpath("data")
    provenance = folder.joinpath("PROVENANCE.md").read_text(encoding="utf-8")
    assert "CC0" in provenance and "trailheadapps/apex-recipes" in provenance
    assert "web_leads.csv" in provenance
    for name in ("accounts.csv", "contacts.csv", "leads.csv", "web_leads.csv", "opportunities.csv"):
        rows = list(csv.DictReader(io.StringIO(folder.joinpath(name).read_text(encoding="utf-8"))))
        assert rows, name
        for row in rows:  # no real third-party addresses
            assert (row.get("email") or "x@y.example.com").endswith(".example.com")
            assert (row.get("website") or "https://y.example.com").endswith(".example.com")
    app = create_app(database="sqlite://")  # every stage in the data is a stage of the core
    stages = app.workflow.defaults["opportunity"].stage_names
    assert {row["stage"] for row in read_data("opportunities.csv")} <= set(stages)
    app.close()


# -- the core's story, told once, checked against the database ---------------------------------

TODAY = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def told(crm_module_factory: CrmFactory) -> ToldStory:
    """The core's story told once on the database under test, for the tests that only read it."""
    return tell_story(crm_module_factory(settings=CORE_ONLY), today=TODAY)

def test_the_role_tree_gives_each_rep_the_manager_of_their_team(told: ToldStory) -> None:
    crm, story, lines = told
    assert story.managers == {"dana": None, "marco": "dana", "priya": "dana", "sam": "marco", "lena": "marco",
                              "tom": "priya", "aiko": "priya", "chris": None}
    with crm.unit_of_work() as uow:
        for rep in story.reps:
            manager = manager_of(uow, story.users[rep].id)
            assert manager is not None and manager == story.users[story.managers[rep] or ""].id
            assert uow.get("user", manager).team_id == story.users[rep].team_id
    assert "Role tree: marco, priya report to dana; sam, lena report to marco; tom, aiko report to priya" in lines




def test_the_story_finds_plans_merges_and_undoes_a_duplicate_account(told: ToldStory) -> None:
    crm, story, lines = told
    start = next(i for i, line in enumerate(lines) if line.startswith("Duplicates: account "))
    told_lines = lines[start:start + 8]

    assert any(line.startswith("  crm dedupe find account: ") for line in told_lines)
    assert any(line.startswith("  crm merge undo 1: account ") for line in told_lines)
    with crm.unit_of_work() as uow:
        assert uow.query("account").count() == len(story.accounts)  # merged again for good
