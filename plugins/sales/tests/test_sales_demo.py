"""The sales chapters of ``crm demo``: leads imported, checked and scored, the hot ones
converted, today's moves waking the guided-selling rule, the worker a day later, and the
forecast the plugin adds to the summary, checked against the database."""

from __future__ import annotations

import datetime as dt
import decimal
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from crmcore.cli import CliState
from crmcore.jobs import due_reminders
from crmcore.testing import CrmFactory, ToldStory, demo_counts, run_crm, tell_story

from crm_sales.demo import CHAPTERS

pytestmark = pytest.mark.usefixtures("crm_workdir")


def demo(*args: str, obj: CliState | None = None) -> Result:
    return run_crm("demo", *args, obj=obj)


def test_the_demo_file_gets_the_leads_their_conversions_and_the_forecast(tmp_path: Path) -> None:
    """What the sales chapters add to the core's demo (tests/test_demo.py checks the rest)."""
    result = demo("--db", str(tmp_path / "demo.db"))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert "\nForecast by quarter (crm forecast --period quarter)" in result.stdout
    assert re.search(r"^  opportunities +53$", result.stdout, re.M)  # 46 sample deals, 7 from converted leads
    counts = demo_counts(tmp_path / "demo.db", ("account", "contact", "lead", "opportunity"))
    assert counts == {"account": 25, "contact": 47, "lead": 34, "opportunity": 53}


def test_the_sales_chapters_are_small_functions_of_the_story() -> None:
    assert [c.__name__ for c in CHAPTERS] == ["leads", "conversion", "first_steps", "moves"]
    assert all(c.__doc__ for c in CHAPTERS)


def test_with_sales_disabled_the_demo_tells_the_core_story_only() -> None:
    Path("crm.toml").write_text('[crm]\ndisabled = ["sales"]\n')
    result = demo("--db", "core.db")
    assert result.exit_code == 0, result.output
    assert "Leads: " not in result.stdout and "Forecast by quarter" not in result.stdout
    assert demo_counts(Path("core.db"))["lead"] == 0


# -- the sales story, step by step, checked against the database ------------------------------

TODAY = dt.date(2026, 3, 2)


@pytest.fixture(scope="module")
def told(crm_module_factory: CrmFactory) -> ToldStory:
    """The story told once on the database under test, for the tests that only read it."""
    return tell_story(crm_module_factory(), today=TODAY)

def _section(lines: list[str], heading: str) -> list[str]:
    """The lines under *heading* up to the next empty line."""
    start = lines.index(heading) + 1
    end = lines.index("", start) if "" in lines[start:] else len(lines)
    return lines[start:end]


def test_leads_are_imported_once_each_audited_checked_and_scored(told: ToldStory) -> None:
    crm, story, lines = told
    assert [(r.source, r.rows, r.created, r.skipped, r.invalid) for r in story.imports] == [
        ("leads.csv", 30, 30, 0, 0), ("web_leads.csv", 14, 11, 3, 0),
    ]
    audit = crm.core_tables["audit"]
    with crm.unit_of_work() as uow:
        created = uow.connection.execute(
            sa.select(audit.c.record_id, audit.c.actor_id, audit.c.changes)
            .where(audit.c.entity == "lead", audit.c.action == "created").order_by(audit.c.record_id)
        ).all()
        remaining = uow.query("lead").order_by("id").all()
        updated = uow.connection.execute(
            sa.select(audit.c.record_id, audit.c.changes).where(audit.c.entity == "lead", audit.c.action == "updated")
        ).all()
    assert len(created) == 41 and {actor for _, actor, _ in created} == {story.users["dana"].id}
    emails = [changes["email"][1].lower() for _, _, changes in created if changes.get("email")]
    assert len(emails) == len(set(emails)) == 39  # duplicates skipped; two rows had no e-mail
    assert "coral.soulsby@edgeblab.example.com" in emails and "lianna.sinisbury@blogtags.example.com" in emails
    converted = {c.lead_id for c in story.conversions}
    assert sorted([lead.id for lead in remaining] + sorted(converted)) == [record_id for record_id, _, _ in created]
    assert all(lead.checked_at is not None and lead.score is not None for lead in remaining)
    temperatures = {record_id: changes["temperature"][1] for record_id, changes in updated if "temperature" in changes}
    assert len(temperatures) == 41
    counts = {t: sum(1 for v in temperatures.values() if v == t) for t in ("hot", "warm", "cold")}
    assert counts == {"hot": 7, "warm": 31, "cold": 3}
    assert {i for i, t in temperatures.items() if t == "hot"} == converted  # every hot lead converted
    assert {lead.id: lead.temperature for lead in remaining} == {i: t for i, t in temperatures.items() if i not in converted}
    assert "  scored 41 leads: 7 hot, 31 warm, 3 cold" in lines
    assert "  lead import from web_leads.csv: 14 rows read, 11 created, 3 duplicates skipped" in lines


def test_hot_leads_are_qualified_then_converted_into_accounts_contacts_and_opportunities(told: ToldStory) -> None:
    crm, story, lines = told
    assert len(story.conversions) == 7
    quire, prinz = story.accounts["apex2"], next(c for c in story.contacts["apex2"] if c.last_name == "Flowers")
    with crm.unit_of_work() as uow:
        for conversion in story.conversions:
            assert uow.get_many("lead", [conversion.lead_id]) == []
            history = uow.history("lead", conversion.lead_id)
            moves = [tuple(e.changes["status"]) for e in history if "status" in e.changes and e.action == "updated"]
            assert moves == [("new", "qualified")]
            assert [e.action for e in history][-2:] == ["converted", "deleted"]
            made = {name: tuple(change) for name, change in history[-2].changes.items()}
            assert conversion.account is not None and conversion.opportunity is not None
            assert made == {"account_id": (None, conversion.account.id), "contact_id": (None, conversion.contact.id),
                            "opportunity_id": (None, conversion.opportunity.id)}
            owner = history[0].changes["owner_id"][1]
            account = uow.get("account", conversion.account.id)
            contact = uow.get("contact", conversion.contact.id)
            opportunity = uow.get("opportunity", conversion.opportunity.id)
            assert contact.account_id == account.id
            assert (opportunity.account_id, opportunity.contact_id, opportunity.owner_id) == (account.id, contact.id, owner)
            assert opportunity.stage == "identification"  # moved on today, after a first meeting
        cold = uow.query("lead").where(temperature="cold").all()
    matched = next(c for c in story.conversions if c.contact.id == prinz.id)
    assert matched.account is not None and matched.account.id == quire.id
    assert not matched.account_created and not matched.contact_created
    assert sum(c.account_created for c in story.conversions) == 5 and sum(c.contact_created for c in story.conversions) == 6
    assert len(cold) == 3 and {lead.status for lead in cold} == {"disqualified"}
    assert any(line.startswith(f"  lead {matched.lead_id} converted: account {quire.id} Quire (existing), "
                               f"contact {prinz.id} Prinz Flowers (existing)") for line in lines)


def test_a_deal_over_50000_entering_rfp_received_gets_a_review_with_the_reps_manager(told: ToldStory) -> None:
    crm, story, lines = told
    fired = [move for move in story.moved if move.activities]
    with crm.unit_of_work() as uow:
        meetings = uow.query("activity").where(subject="Review with senior manager").order_by("id").all()
        reminders = {m.id: uow.query("reminder").where(activity_id=m.id).all() for m in meetings}
        deals = {m.id: uow.get("opportunity", m.opportunity_id) for m in meetings}
    # one meeting per RFP received today, one in each team; the replayed history woke no rule
    assert len(meetings) == len(fired) == 2
    assert {m.id for m in meetings} == {a.id for move in fired for a in move.activities}
    assert {story.managers[story.username(d.owner_id)] for d in deals.values()} == {"marco", "priya"}
    for meeting in meetings:
        deal = deals[meeting.id]
        owner = story.username(deal.owner_id)
        manager = story.users[story.managers[owner] or ""]
        assert deal.stage == "rfp_received" and deal.amount is not None and deal.amount.amount > 50000
        assert (meeting.kind, meeting.status, meeting.owner_id) == ("meeting", "planned", deal.owner_id)
        assert meeting.participants == [{"user_id": manager.id}]
        assert meeting.account_id == deal.account_id
        assert abs(meeting.due_at - meeting.created_at - dt.timedelta(days=2)) < dt.timedelta(minutes=1)
        assert [(r.user_id, r.remind_at) for r in reminders[meeting.id]] == [
            (deal.owner_id, meeting.due_at - dt.timedelta(days=1))
        ]
        assert any(line.startswith(f"  {deal.name} (") and f"meeting {meeting.id} 'Review with senior manager' for "
                   f"{owner} with {manager.username} ({owner}'s manager) as participant, due " in line for line in lines)


def test_the_worker_runs_once_and_each_user_sees_the_reminders_now_due(told: ToldStory) -> None:
    crm, story, lines = told
    stats, at = story.worker_stats, story.worker_at
    assert stats is not None and at is not None
    with crm.unit_of_work() as uow:
        jobs = uow.query("job").where(kind="reminder.due").all()
        due = uow.query("reminder").where(status="due").all()
        waiting = uow.query("reminder").where(status="scheduled").all()
    assert stats.ran == stats.done == len(due) == sum(j.status == "done" for j in jobs) > 0
    assert all(r.remind_at <= at for r in due) and all(r.remind_at > at for r in waiting)
    assert {r.id for move in story.moved for r in move.reminders} <= {r.id for r in due}  # the reviews' too
    assert sum(len(found) for found in story.due.values()) == len(due)
    for name, found in story.due.items():  # what crm reminders --as NAME shows
        with crm.unit_of_work(name) as uow:
            assert [r.id for r in due_reminders(uow)] == [r.id for r in found]
            assert {r.user_id for r in found} == {story.users[name].id}
        assert f"  crm reminders --as {name}: {len(found)} due" in lines
    assert f"Worker: a day later ({at:%Y-%m-%d %H:%M} UTC) crm worker --once ran {stats.ran} jobs: {stats.ran} done, " \
           "0 to retry, 0 failed" in lines
    printed = {line.split()[0]: int(line.split()[1]) for line in _section(lines, "Reminders due (crm reminders --as USER)")}
    assert printed == {name: len(found) for name, found in story.due.items()}


def test_the_summary_pipeline_and_forecast_equal_direct_aggregates(told: ToldStory) -> None:
    crm, story, lines = told
    printed = {}
    for line in _section(lines, "Pipeline by stage")[1:]:
        match = re.fullmatch(r"  ([a-z_]+) +(\d+) +([\d,.]+) USD", line)
        if match:
            printed[match[1]] = (int(match[2]), decimal.Decimal(match[3].replace(",", "")))
    with crm.engine.connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT stage, count(*), sum(amount), min(amount_currency), max(amount_currency) FROM crm_opportunity GROUP BY stage"
        )).all()
        deals = connection.execute(sa.text("SELECT close_date, amount, probability, stage FROM crm_opportunity")).all()
    assert {currency for row in rows for currency in row[3:]} == {"USD"}
    assert printed == {stage: (number, decimal.Decimal(int(total)).scaleb(-2)) for stage, number, total, _, _ in rows}
    assert len(printed) == 8
    quarters: dict[str, list[Any]] = {}
    for close_date, amount, probability, stage in deals:
        if stage in ("won", "lost"):
            continue
        day = close_date if isinstance(close_date, dt.date) else dt.date.fromisoformat(str(close_date))
        into = quarters.setdefault(f"{day.year}-Q{(day.month - 1) // 3 + 1}", [0, 0, 0])
        into[0] += 1
        into[1] += int(amount)
        into[2] += int(amount) * int(probability)
    expected = {
        period: (n, f"{decimal.Decimal(units).scaleb(-2):,.2f}", f"{decimal.Decimal(weighted).scaleb(-4):,.2f}")
        for period, (n, units, weighted) in quarters.items()
    }
    shown = {}
    for line in _section(lines, "Forecast by quarter (crm forecast --period quarter)")[1:]:
        cells = line.split()
        if int(cells[2]):
            shown[cells[0]] = (int(cells[2]), cells[3], cells[4])
    assert shown == expected
