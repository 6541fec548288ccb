"""``crm helpdesk ...`` through click's ``CliRunner``, on the database under test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from crmcore.testing import crm_fails, crm_ok, run_crm


@pytest.fixture(autouse=True)
def _in_tmp(crm_workdir: Path) -> None:
    (crm_workdir / "crm.toml").write_text('[crm]\nplugins = ["helpdesk"]\n')


@pytest.fixture
def db(crm_factory: Any) -> str:
    """A database with the help desk, two agents in the default queue and a premium account."""
    url: str = crm_factory.database_url(file=True)
    app = crm_factory(plugins=["helpdesk"], database=url)
    with app.unit_of_work() as uow:
        ann, bob = uow.create("user", username="ann"), uow.create("user", username="bob")
        general = uow.query("queue").where(name="General").first()
        for user in (ann, bob):
            uow.create("queue_agent", queue_id=general.id, user_id=user.id)
        uow.create("account", name="Acme", support_tier="premium")
        article = uow.create(
            "kb_article",
            title="Printer prints blank labels",
            body="Check the label size and update the printer driver.",
        )
        uow.move(article, "published")
        uow.commit()
    return url


def helpdesk(db: str, *args: str) -> str:
    """``crm --db DB helpdesk ARGS``, which must succeed: its output."""
    return crm_ok("--db", db, "helpdesk", *args)


def test_open_assigns_and_sets_the_clocks(db: str) -> None:
    out = helpdesk(db, "ticket", "open", "Printer on fire", "--account", "1", "--priority", "high")
    assert out.startswith(
        "opened: ticket 1 new; priority high; queue General; assigned to ann; first response due "
    )
    data = json.loads(helpdesk(db, "ticket", "open", "Toner", "--channel", "phone", "--json"))
    assert (data["assignee_id"], data["channel"], data["response_status"]) == (
        2,
        "phone",
        "pending",
    )


def test_a_ticket_is_worked_from_the_command_line(db: str) -> None:
    helpdesk(db, "ticket", "open", "Printer on fire", "--account", "1", "-d", "Blank labels")
    assert helpdesk(db, "ticket", "assign", "1", "--to", "bob").startswith(
        "assigned: ticket 1 open; priority normal; queue General; assigned to bob"
    )
    out = helpdesk(db, "ticket", "reply", "1", "We are on our way", "--kind", "call")
    assert out.startswith("replied (call, activity 1): ticket 1 open")
    assert "(met)" in out
    assert "resolved: ticket 1 resolved" in helpdesk(db, "ticket", "resolve", "1", "--article", "1")
    assert "reopened: ticket 1 open" in helpdesk(db, "ticket", "reopen", "1")
    assert "closed: ticket 1 closed" in helpdesk(db, "ticket", "close", "1")


def test_errors_are_one_line(db: str) -> None:
    assert crm_fails("--db", db, "helpdesk", "ticket", "assign", "7") == "error: ticket 7 not found"
    helpdesk(db, "ticket", "open", "Printer on fire")
    assert "no user named 'zed'" in crm_fails(
        "--db", db, "helpdesk", "ticket", "assign", "1", "--to", "zed"
    )
    assert "no queue 'Nowhere'" in crm_fails(
        "--db", db, "helpdesk", "ticket", "open", "X", "--queue", "Nowhere"
    )
    assert "expected a month such as '2026-03'" in crm_fails(
        "--db", db, "helpdesk", "report", "--month", "March"
    )


def test_sla_status_and_sweep(db: str) -> None:
    assert helpdesk(db, "sla", "status") == "no unfinished tickets\n"
    helpdesk(
        db,
        "ticket",
        "open",
        "Printer on fire",
        "--account",
        "1",
        "--priority",
        "urgent",
    )
    lines = helpdesk(db, "sla", "status").splitlines()
    assert lines[0].split() == ["queue", "open", "paused", "warning", "breached", "next", "due"]
    assert lines[1].split()[:5] == ["General", "1", "0", "0", "0"]
    assert helpdesk(db, "sla", "sweep").startswith("sla sweep at ")
    rows = json.loads(helpdesk(db, "sla", "status", "--json"))
    assert [(r["queue"], r["open"]) for r in rows] == [("General", 1)]


def test_kb_search_and_suggest(db: str) -> None:
    assert helpdesk(db, "kb", "search", "printer driver").split() == [
        "1",
        "Printer",
        "prints",
        "blank",
        "labels",
        "(published)",
    ]
    assert helpdesk(db, "kb", "search", "nothing here") == "no article found\n"
    hits = json.loads(helpdesk(db, "kb", "search", "label", "--json"))
    assert [(h["id"], h["helped"]) for h in hits] == [(1, 0)]
    helpdesk(db, "ticket", "open", "The label printer prints blanks")
    assert "Printer prints blank labels" in helpdesk(db, "kb", "suggest", "1")


def test_report(db: str) -> None:
    helpdesk(db, "ticket", "open", "Printer on fire", "--account", "1")
    helpdesk(db, "ticket", "reply", "1", "On it")
    helpdesk(db, "ticket", "resolve", "1")
    import datetime as dt

    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    out = helpdesk(db, "report", "--month", month)
    assert out.splitlines()[0] == f"Service report {month}"
    assert any(line.split()[:3] == ["ann", "1", "100.0%"] for line in out.splitlines())
    data = json.loads(helpdesk(db, "report", "--month", month, "--json"))
    assert data["total"]["opened"] == 1 and data["queues"][0]["name"] == "General"


def test_without_the_plugin_there_is_no_helpdesk_command(db: str, tmp_path: Path) -> None:
    (tmp_path / "crm.toml").write_text("[crm]\nplugins = []\n")
    result = run_crm("--db", db, "helpdesk", "sla", "status")
    assert result.exit_code != 0
    assert "helpdesk" in result.output
