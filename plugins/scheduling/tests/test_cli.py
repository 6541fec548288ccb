"""``crm schedule ...`` through click's ``CliRunner``, on the database under test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from crmcore import create_app
from crmcore.cli import CliState, main
from scheduling_support import order, world

PLUGINS = ["scheduling"]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_PLUGINS", raising=False)
    (tmp_path / "crm.toml").write_text('[crm]\nplugins = ["scheduling"]\n')


@pytest.fixture
def db(crm_factory: Any) -> tuple[str, dict[str, Any]]:
    url: str = crm_factory.database_url(file=True)
    crm = crm_factory(plugins=PLUGINS, database=url)
    ids = world(crm)
    ids["pump"] = order(crm, ids, "Pump", skills={"hydraulics": 3}, latitude="0",
                        longitude="0.9")
    ids["lamp"] = order(crm, ids, "Lamp", skills={"electrical": 1})
    return url, ids


def run(db: tuple[str, Any], *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db[0], *args], obj=CliState(),
                              catch_exceptions=False)


def ok(db: tuple[str, Any], *args: str) -> str:
    result = run(db, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_capacity_of_a_week_prints_and_draws(db, tmp_path: Path) -> None:
    out = ok(db, "schedule", "capacity", "--week", "2027-W03", "--by", "week",
             "--chart", str(tmp_path / "week.png"))
    assert "2027-W03   skill     hydraulics                  90.0" in out
    assert f"chart written to {tmp_path / 'week.png'}" in out
    assert (tmp_path / "week.png").read_bytes().startswith(b"\x89PNG")
    daily = ok(db, "schedule", "capacity", "--week", "2027-W03", "--group", "resource")
    assert daily.count("resource  Ann") == 7


def test_a_bad_week_is_an_error_naming_it(db) -> None:
    result = run(db, "schedule", "capacity", "--week", "2027-3")
    assert result.exit_code == 1
    assert "expected an ISO week such as '2027-W03', got '2027-3'" in result.stderr


def test_propose_accept_board_free_and_conflicts(db) -> None:
    proposed = ok(db, "schedule", "propose", "--date", "2027-01-18")
    assert f"service_order {db[1]['pump']} (normal) -> Bob 2027-01-18" in proposed
    assert "2 placed, 0 not placed" in proposed
    assert "2 bookings made" in ok(db, "schedule", "accept", "--date", "2027-01-18")
    board = ok(db, "schedule", "board", "--date", "2027-01-18")
    assert "Bob (1 job) from home base" in board and "order 1 (normal) Pump - Acme" in board
    free = ok(db, "schedule", "free", "--date", "2027-01-18")
    assert "Van 1: 01-18 08:00-17:00" in free
    assert ok(db, "schedule", "conflicts", "--date", "2027-01-18").strip() == "no conflicts"


def test_dispatch_accepts_an_urgent_order(db) -> None:
    crm = create_app({"crm": {"database": db[0], "plugins": PLUGINS}})
    with crm:
        urgent = order(crm, db[1], "Outage", priority="urgent", skills={"electrical": 3})
    out = ok(db, "schedule", "dispatch", str(urgent), "--now", "2027-01-18T10:30Z", "--accept")
    assert f"service_order {urgent} (urgent) -> Ann 2027-01-18 10:30-11:30 UTC" in out
    assert out.rstrip().endswith("accepted")


def test_hours_and_roster_of_a_week(db, tmp_path: Path) -> None:
    ok(db, "schedule", "accept", "--date", "2027-01-18")
    hours = ok(db, "schedule", "hours", "--week", "2027-W03")
    assert hours.splitlines()[0].split() == ["technician", "working", "planned", "actual",
                                             "overtime", "utilised"]
    assert "Bob                          45.0      1.0      0.0      0.0       0%" in hours
    assert "written to" in ok(db, "schedule", "roster", "--week", "2027-W03",
                              str(tmp_path / "week.ics"))
    assert (tmp_path / "week.ics").read_text().count("BEGIN:VEVENT") == 2
    ok(db, "schedule", "roster", "--week", "2027-W03", str(tmp_path / "week.csv"))
    assert (tmp_path / "week.csv").read_text().count("\n") == 3
    assert run(db, "schedule", "roster", str(tmp_path / "week.txt")).exit_code == 2


def test_replan_after_an_absence(db) -> None:
    ok(db, "schedule", "accept", "--date", "2027-01-18")
    crm = create_app({"crm": {"database": db[0], "plugins": PLUGINS}})
    with crm, crm.unit_of_work() as uow:
        uow.create("absence", resource_id=db[1]["ann"], starts_at="2027-01-18T00:00:00Z",
                   ends_at="2027-01-19T00:00:00Z", kind="sickness")
        uow.commit()
    flagged = ok(db, "list", "booking", "--where", "conflict is not null", "--json")
    assert "outside the working hours of Ann" in flagged  # flagged when the absence was written
    assert "outside the working hours of Ann" in ok(db, "schedule", "conflicts", "--date",
                                                   "2027-01-18")
    out = ok(db, "schedule", "replan", "--date", "2027-01-18", "--accept")
    assert f"orders taken off conflicting bookings: {db[1]['lamp']}\n" in out
    assert f"service_order {db[1]['lamp']} (normal): not placed" in out  # Bob lacks electrical
    assert ok(db, "schedule", "conflicts", "--date", "2027-01-18").strip() == "no conflicts"
