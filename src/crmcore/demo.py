"""``crm demo``: the story of a small company's sales, told on a fresh SQLite file.

The story is a list of chapters (:data:`CHAPTERS`), each a small function taking the
:class:`Story` (the app, the records made so far, a seeded random generator and ``echo``). The
core's chapters work on the bundled sample data in ``crmcore/data`` (see its ``PROVENANCE.md``)
through the same functions the ``crm`` commands call:

1. the company: teams, users and the role tree that says who manages whom;
2. accounts and their contacts;
3. two lead lists imported (``crm import``, deduplicated on e-mail, audited), checked and scored
   hot, warm or cold (``crm leads check``, ``crm leads score``);
4. the hot leads qualified through the lead pipeline and converted (``crm leads convert``);
5. the sample opportunities moved through the pipeline to where they stand;
6. activities (with reminders) and notes;
7. today's moves: a deal over 50,000 entering ``rfp_received`` wakes the guided-selling rule;
8. a day later the worker runs once (``crm worker --once``) and reminders are due
   (``crm reminders --as USER``).

Then every plugin tells its own chapter through the ``crm_demo`` hook, and :func:`summary`
prints counts, the pipeline by stage, the forecast by quarter, the reminders due per user, the
top accounts and the timeline of one account. To extend the story, add a chapter function to
:data:`CHAPTERS`.

The story is told around its ``today``; the rule engine and the job queue read the clock, so
what rules plan is dated from the moment the demo runs, and the worker runs a day after the
later of that moment and noon (UTC) of ``today``.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import importlib.resources
import importlib.util
import io
import json
import random
import sqlite3
import zoneinfo
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.app import Crm, create_app
from crmcore.errors import ConfigError
from crmcore.jobs import WorkerStats, due_reminders, run_worker, schedule_reminder
from crmcore.money import Money
from crmcore.records import Record
from crmcore.sales import Conversion, check_leads, convert_leads, score_leads, weighted_pipeline
from crmcore.sales.leads import sales_settings
from crmcore.security import admin
from crmcore.settings import load_settings
from crmcore.transfer import ImportReport, import_rows
from crmcore.workflow.actions import manager_of

__all__ = ["CHAPTERS", "DEFAULT_PATH", "Move", "Story", "read_data", "run", "summary", "tell"]

DEFAULT_PATH = "crm-demo.db"

#: Marks a database file as made by ``crm demo`` (SQLite ``PRAGMA application_id``), so that a
#: rerun replaces only its own files.
APPLICATION_ID = 0x43524D44  # "CRMD"

#: The sample close dates are spread around this day; the demo moves them around today.
DATA_ANCHOR = dt.date(2025, 6, 1)

OPEN_STAGES = ("initiation", "identification", "qualification", "rfp_received", "quotation_sent", "final_stage")
PROBABILITY = {
    "initiation": 10, "identification": 20, "qualification": 30, "rfp_received": 50,
    "quotation_sent": 65, "final_stage": 80, "won": 100, "lost": 0,
}
#: Sources of the trade-show list's leads, by row (the web list names its own).
LEAD_SOURCES = ("web", "referral", "event", "campaign", "partner", "cold_call")
#: The lead lists imported, in order: file name and what it is.
LEAD_FILES = (("leads.csv", "trade-show list"), ("web_leads.csv", "web sign-ups"))
#: Warm leads from this score on are being worked (first call logged); the others wait.
WORKED_FROM = 50
#: How many of a user's due reminders the worker chapter lists.
SHOWN = 5
#: The guided-selling rule the builtin rules plugin ships (``crmcore.builtin.rules``).
GUIDED_SELLING = "guided_selling_review"

Echo = Callable[[str], None]


def read_data(name: str) -> Any:
    """A bundled sample file: CSV as a list of dicts, JSON as parsed."""
    text = importlib.resources.files("crmcore").joinpath("data", name).read_text(encoding="utf-8")
    if name.endswith(".json"):
        return json.loads(text)
    return list(csv.DictReader(io.StringIO(text)))


@attrs.frozen
class Move:
    """A deal moved today: the deal after the move, the stage it left, and the activities and
    reminders the move made through the rules (the guided-selling meeting and its reminder)."""

    opportunity: Record
    source: str
    activities: tuple[Record, ...] = ()
    reminders: tuple[Record, ...] = ()


@attrs.define(eq=False)
class Story:
    """What the chapters share: the app, the records made so far, the clock and the dice."""

    crm: Crm
    echo: Echo
    today: dt.date
    company: dict[str, Any]
    rng: random.Random = attrs.field(factory=lambda: random.Random(20250601))
    users: dict[str, Record] = attrs.field(factory=dict)
    roles: dict[str, str] = attrs.field(factory=dict)
    managers: dict[str, str | None] = attrs.field(factory=dict)
    teams: dict[str, Record] = attrs.field(factory=dict)
    accounts: dict[str, Record] = attrs.field(factory=dict)
    contacts: dict[str, list[Record]] = attrs.field(factory=dict)
    imports: list[ImportReport] = attrs.field(factory=list)
    leads: list[Record] = attrs.field(factory=list)
    conversions: list[Conversion] = attrs.field(factory=list)
    opportunities: list[Record] = attrs.field(factory=list)
    moved: list[Move] = attrs.field(factory=list)
    worker_at: dt.datetime | None = None
    worker_stats: WorkerStats | None = None
    due: dict[str, list[Record]] = attrs.field(factory=dict)

    @property
    def currency(self) -> str:
        return str(self.company.get("currency", "USD"))

    @property
    def reps(self) -> list[str]:
        """Usernames of the sales reps, in the order of the company file."""
        return [name for name, role in self.roles.items() if role == "Sales rep"]

    @property
    def director(self) -> str:
        """The username of the sales director (the first user otherwise)."""
        return next((name for name, role in self.roles.items() if role == "Sales director"), next(iter(self.users)))

    def actor(self, username: str) -> Actor:
        """The actor of a demo user (the records they make are theirs in the audit trail)."""
        user = self.users[username]
        return Actor(user.id, username)

    def owner_name(self, record: Record) -> str:
        return next(name for name, user in self.users.items() if user.id == record.owner_id)

    def username(self, user_id: int | None) -> str:
        return next((name for name, user in self.users.items() if user.id == user_id), f"user {user_id}")

    def at(self, username: str, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        """A time on *day* in the user's own time zone."""
        tz = zoneinfo.ZoneInfo(self.users[username].timezone or "UTC")
        return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)

    def local(self, username: str, when: dt.datetime) -> str:
        """*when* in the user's time zone, as ``crm reminders`` shows times."""
        tz = zoneinfo.ZoneInfo(self.users[username].timezone or "UTC")
        return when.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")

    def __repr__(self) -> str:
        return f"<Story users={len(self.users)} accounts={len(self.accounts)} opportunities={len(self.opportunities)}>"


# -- chapters -----------------------------------------------------------------------------------


def company(story: Story) -> None:
    """Teams, users and the role tree: a sales director, a sales manager per team over its
    reps, and a support agent. A rule's ``owner_manager`` is the next user up the tree."""
    data = story.company
    with story.crm.unit_of_work() as uow:
        for team in data["teams"]:
            story.teams[team["key"]] = uow.create("team", name=team["name"], description=team["description"])
        roles = {r.name: r.id for r in uow.query("role").all()}  # roles the settings declare are kept
        for role in data.get("roles", ()):
            if role["name"] not in roles:
                parent = roles[role["parent"]] if role.get("parent") else None
                roles[role["name"]] = uow.create("role", name=role["name"], label=role["label"], parent_id=parent).id
        for user in data["users"]:
            team_id = story.teams[user["team"]].id if user["team"] else None
            record = story.users[user["username"]] = uow.create(
                "user", username=user["username"], full_name=user["full_name"], team_id=team_id,
                timezone=user["timezone"],
                email=f"{user['username']}@{data['company'].lower().replace(' ', '-')}.example.com",
            )
            story.roles[user["username"]] = user["role"]
            if user.get("holds"):
                admin.assign_roles(uow, record, [user["holds"]])
        for name, user in story.users.items():
            manager_id = manager_of(uow, user.id)
            story.managers[name] = story.username(manager_id) if manager_id is not None else None
        uow.commit()
    roles_count: dict[str, int] = {}
    for role in story.roles.values():
        roles_count[role] = roles_count.get(role, 0) + 1
    people = ", ".join(f"{n} {role.lower()}{'s' if n > 1 else ''}" for role, n in roles_count.items())
    story.echo(f"{data['company']}: {len(story.users)} users in {len(story.teams)} teams ({people})")
    reports: dict[str, list[str]] = {}
    for name, manager in story.managers.items():
        if manager is not None:
            reports.setdefault(manager, []).append(name)
    story.echo("Role tree: " + "; ".join(f"{', '.join(names)} report to {manager}" for manager, names in reports.items()))


def accounts(story: Story) -> None:
    """Accounts and their contacts, shared out among the reps, each creating their own."""
    rows = read_data("accounts.csv")
    contacts = read_data("contacts.csv")
    reps = story.reps
    mine: dict[str, list[dict[str, str]]] = {rep: [] for rep in reps}
    for i, row in enumerate(rows):
        mine[reps[i % len(reps)]].append(row)
    for rep, owned in mine.items():
        with story.crm.unit_of_work(story.actor(rep)) as uow:
            for row in owned:
                revenue = row["annual_revenue"]
                account = uow.create("account", {
                    "name": row["name"], "industry": row["industry"], "phone": row["phone"],
                    "website": row["website"], "employees": row["employees"],
                    "annual_revenue": f"{revenue} {story.currency}" if revenue else "",
                    "billing_street": row["billing_street"], "billing_city": row["billing_city"],
                    "billing_postal_code": row["billing_postal_code"], "billing_country": row["billing_country"],
                })
                story.accounts[row["key"]] = account
                story.contacts[row["key"]] = [
                    uow.create("contact", {
                        "first_name": c["first_name"], "last_name": c["last_name"], "title": c["title"],
                        "email": c["email"], "phone": c["phone"], "account_id": account.id,
                    })
                    for c in contacts if c["account_key"] == row["key"]
                ]
            uow.commit()
    count = sum(len(c) for c in story.contacts.values())
    story.echo(f"Accounts: {len(story.accounts)} accounts with {count} contacts, shared out among {len(reps)} reps")


def leads(story: Story) -> None:
    """The sales director imports the trade-show list and the web sign-ups (deduplicated on
    e-mail, each row shared out to a rep), then every lead is checked and scored."""
    reps = story.reps
    importer = story.director
    index = 0  # rows are shared out to the reps in turn, across both lists
    with story.crm.unit_of_work(story.actor(importer)) as uow:
        for name, _ in LEAD_FILES:
            rows = []
            for row in read_data(name):
                values: dict[str, Any] = dict(row)
                values["source"] = row.get("source") or LEAD_SOURCES[index % len(LEAD_SOURCES)]
                values["owner_id"] = story.users[reps[index % len(reps)]].id
                rows.append(values)
                index += 1
            story.imports.append(import_rows(uow, "lead", rows, source=name, dedupe_on="email", on_duplicate="skip"))
        uow.commit()
    for report in story.imports:
        report.committed = True
    with story.crm.unit_of_work() as uow:  # crm leads check; crm leads score
        checks = check_leads(uow)
        scores = score_leads(uow)
        uow.commit()
    with story.crm.unit_of_work() as uow:
        story.leads = uow.query("lead").order_by("id").all()
    created = sum(r.created for r in story.imports)
    lists = " and the ".join(what for _, what in LEAD_FILES)
    story.echo(f"Leads: {importer} imported {created} leads from the {lists}, deduplicated on e-mail")
    for report in story.imports:
        story.echo(f"  {report.summary()}")
    issues: dict[str, int] = {}
    for check in checks:
        for code in check.codes:
            issues[code] = issues.get(code, 0) + 1
    flagged = sum(1 for c in checks if not c.ok)
    found = f" ({', '.join(f'{number} {code}' for code, number in issues.items())})" if issues else ""
    story.echo(f"  checked {len(checks)} leads: {len(checks) - flagged} without issues, {flagged} with issues{found}")
    counts = {t: sum(1 for s in scores if s.temperature == t) for t in ("hot", "warm", "cold")}
    story.echo(f"  scored {len(scores)} leads: {counts['hot']} hot, {counts['warm']} warm, {counts['cold']} cold")


def conversion(story: Story) -> None:
    """Each rep qualifies their hot leads through the lead pipeline and converts them into an
    account, a contact and an opportunity; cold leads are disqualified, the better warm ones
    worked on."""
    plan: dict[str, list[Record]] = {}
    for lead in story.leads:
        plan.setdefault(story.owner_name(lead), []).append(lead)
    specs: dict[int, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for lead in story.leads:
        if lead.get("temperature") == "hot":
            company = lead.company or lead.last_name
            seen[company] = seen.get(company, 0) + 1
            name = f"{company} pilot" + (f" {seen[company]}" if seen[company] > 1 else "")
            specs[lead.id] = {
                "name": name, "amount": Money(decimal.Decimal(story.rng.randrange(12, 96) * 1000), story.currency),
                "close_date": story.today + dt.timedelta(days=story.rng.randint(45, 120)),
            }
    worked = disqualified = 0
    for owner, owned in plan.items():
        with story.crm.unit_of_work(story.actor(owner)) as uow:
            target = sales_settings(uow).conversion.statuses[0]  # the status that converts: qualified
            hot = [uow.move(lead, target) if lead.status != target else lead for lead in owned if lead.id in specs]
            story.conversions.extend(convert_leads(uow, hot, opportunity=lambda lead: specs[lead.id]))
            for lead in owned:
                if lead.get("temperature") == "cold":
                    uow.move(lead, "disqualified")
                    disqualified += 1
                elif lead.get("temperature") == "warm" and (lead.score or 0) >= WORKED_FROM:
                    uow.move(lead, "working")
                    worked += 1
            uow.commit()
    story.conversions.sort(key=lambda c: c.lead_id)
    with story.crm.unit_of_work() as uow:
        story.leads = uow.query("lead").order_by("id").all()
    accounts = {c.account.id: c.account_created for c in story.conversions if c.account is not None}
    contacts = {c.contact.id: c.contact_created for c in story.conversions}
    total = sum((c.opportunity.amount.amount for c in story.conversions if c.opportunity is not None), decimal.Decimal(0))
    new_accounts, new_contacts = sum(accounts.values()), sum(contacts.values())
    story.echo(
        f"Conversion: {len(story.conversions)} hot leads qualified and converted: {len(accounts)} accounts "
        f"({new_accounts} new, {len(accounts) - new_accounts} existing), {len(contacts)} contacts ({new_contacts} new, "
        f"{len(contacts) - new_contacts} existing), {len(story.conversions)} opportunities worth "
        f"{_money(Money(total, story.currency))}; {disqualified} cold leads disqualified, {worked} warm leads worked on"
    )
    for c in story.conversions:
        parts = []
        if c.account is not None:
            parts.append(f"account {c.account.id} {c.account.name} ({'new' if c.account_created else 'existing'})")
        person = " ".join(p for p in (c.contact.get("first_name"), c.contact.get("last_name")) if p)
        parts.append(f"contact {c.contact.id} {person} ({'new' if c.contact_created else 'existing'})")
        if c.opportunity is not None:
            parts.append(f"opportunity {c.opportunity.id} {c.opportunity.name}")
        story.echo(f"  lead {c.lead_id} converted: " + ", ".join(parts))


def _close_date(story: Story, original: dt.date, stage: str) -> dt.date:
    day = original + (story.today - DATA_ANCHOR)
    if stage in OPEN_STAGES and day < story.today:  # open deals close ahead of today
        day = story.today + (story.today - day)
    if stage not in OPEN_STAGES and day > story.today:  # closed deals closed in the past
        day = story.today - (day - story.today)
    return day


def _path_to(stage: str, rng: random.Random) -> list[str]:
    """The stages a deal went through to reach *stage*, the first one included."""
    if stage == "won":
        return [*OPEN_STAGES, "won"]
    if stage == "lost":
        return [*OPEN_STAGES[: rng.randint(2, len(OPEN_STAGES))], "lost"]
    return list(OPEN_STAGES[: OPEN_STAGES.index(stage) + 1])


def pipeline(story: Story) -> None:
    """The sample opportunities open at the first stage; then each owner moves theirs through
    the pipeline to where they stand. A deal's amount is filled in with its latest step (just
    after it when that step was its RFP), so replaying this history does not wake the
    guided-selling rule, whose chapter is today's moves."""
    by_owner: dict[str, list[tuple[dict[str, Any], list[str], Money]]] = {}
    for row in read_data("opportunities.csv"):
        account = story.accounts[row["account_key"]]
        contacts = story.contacts[row["account_key"]]
        path = _path_to(row["stage"], story.rng)
        amount = Money(decimal.Decimal(row["amount"]), story.currency)
        values = {
            "name": row["name"], "account_id": account.id, "contact_id": contacts[0].id if contacts else None,
            "close_date": _close_date(story, dt.date.fromisoformat(row["close_date"]), row["stage"]),
            "stage": path[0], "probability": PROBABILITY[path[0]], "description": row["description"],
        }
        if len(path) == 1:
            values["amount"] = amount
        by_owner.setdefault(story.owner_name(account), []).append((values, path, amount))
    moved = 0
    for owner, deals in by_owner.items():
        with story.crm.unit_of_work(story.actor(owner)) as uow:
            opened = [(uow.create("opportunity", values), path, amount) for values, path, amount in deals]
            uow.commit()
        with story.crm.unit_of_work(story.actor(owner)) as uow:
            for opportunity, path, amount in opened:
                for stage in path[1:]:
                    changes: dict[str, Any] = {"stage": stage, "probability": PROBABILITY[stage]}
                    if stage == path[-1] and stage != "rfp_received":
                        changes["amount"] = amount
                    opportunity = uow.update(opportunity, data=changes)
                if opportunity.amount is None:  # a deal whose latest step was its RFP
                    opportunity = uow.update(opportunity, amount=amount)
                moved += len(path) > 1
                story.opportunities.append(opportunity)
            uow.commit()
    story.opportunities.sort(key=lambda o: o.id)
    won = sum(o.stage == "won" for o in story.opportunities)
    lost = sum(o.stage == "lost" for o in story.opportunities)
    story.echo(f"Pipeline: {len(story.opportunities)} opportunities; {moved} moved forward, {won} won, {lost} lost")


def _converted(story: Story) -> list[Record]:
    return [c.opportunity for c in story.conversions if c.opportunity is not None]


def activities(story: Story) -> None:
    """Calls, meetings, e-mails and tasks about each deal (done in the past, planned ahead),
    first calls with the leads being worked, and a reminder for each planned meeting and call
    an hour before it starts."""
    templates = story.company["activities"]
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for opportunity in [*story.opportunities, *_converted(story)]:
        owner = story.owner_name(opportunity)
        participants = [{"user_id": story.users[owner].id}]
        if opportunity.contact_id:
            participants.append({"contact_id": opportunity.contact_id})
        closed = opportunity.stage in ("won", "lost")
        for n, (kind, subject) in enumerate(templates[opportunity.stage]):
            done = (closed and opportunity.stage == "lost") or (not closed and n == 0)
            offset = story.rng.randint(2, 30) if done else story.rng.randint(1, 14)
            day = opportunity.close_date if closed and done else (
                story.today - dt.timedelta(days=offset) if done else story.today + dt.timedelta(days=offset))
            starts = story.at(owner, day, story.rng.choice((9, 10, 11, 14, 15, 16)), story.rng.choice((0, 30)))
            values: dict[str, Any] = {
                "kind": kind, "subject": subject.format(deal=opportunity.name)[:200],
                "status": "done" if done else "planned", "account_id": opportunity.account_id,
                "opportunity_id": opportunity.id, "contact_id": opportunity.contact_id,
                "timezone": story.users[owner].timezone,
            }
            if kind == "task":
                values["due_at"] = starts
            else:
                values.update(starts_at=starts, ends_at=starts + dt.timedelta(minutes=60 if kind == "meeting" else 30))
                if kind in ("meeting", "call"):
                    values["participants"] = participants
            by_owner.setdefault(owner, []).append(values)
    for lead in story.leads:
        if lead.status == "working":
            owner = story.owner_name(lead)
            kind, subject = templates["lead"][0]
            starts = story.at(owner, story.today - dt.timedelta(days=story.rng.randint(1, 20)), 11)
            by_owner.setdefault(owner, []).append({
                "kind": kind, "subject": subject.format(name=f"{lead.first_name} {lead.last_name}", company=lead.company)[:200],
                "status": "done", "lead_id": lead.id, "starts_at": starts, "ends_at": starts + dt.timedelta(minutes=20),
            })
    count = reminded = 0
    for owner, planned in by_owner.items():
        with story.crm.unit_of_work(story.actor(owner)) as uow:
            for values in planned:
                activity = uow.create("activity", values)
                count += 1
                if activity.status == "planned" and activity.kind in ("meeting", "call"):
                    schedule_reminder(uow, activity, None, activity.starts_at - dt.timedelta(hours=1))
                    reminded += 1
            uow.commit()
    done = sum(v["status"] == "done" for vs in by_owner.values() for v in vs)
    story.echo(f"Activities: {count} calls, meetings, e-mails and tasks ({done} done, {count - done} planned); "
               f"{reminded} reminders an hour before the planned meetings and calls")


def notes(story: Story) -> None:
    """Notes on won and lost deals, on key contacts and on the leads being worked; won accounts
    are tagged ``customer``."""
    texts = story.company["notes"]
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for opportunity in story.opportunities:
        if opportunity.stage in ("won", "lost"):
            body = texts[opportunity.stage].format(deal=opportunity.name, amount=_money(opportunity.amount))
            by_owner.setdefault(story.owner_name(opportunity), []).append(
                {"title": f"{opportunity.stage.capitalize()}: {opportunity.name}"[:200], "body": body,
                 "opportunity_id": opportunity.id, "account_id": opportunity.account_id})
    for key, account in story.accounts.items():
        contacts = story.contacts[key]
        if contacts and contacts[0].title:
            contact = contacts[0]
            body = texts["account"].format(account=account.name, contact=f"{contact.first_name} {contact.last_name}",
                                           title=contact.title)
            by_owner.setdefault(story.owner_name(account), []).append(
                {"title": "Key contact", "body": body, "account_id": account.id, "contact_id": contact.id})
    for lead in story.leads:
        if lead.status == "working" and lead.source == "event":
            by_owner.setdefault(story.owner_name(lead), []).append(
                {"title": "Trade show", "body": texts["lead"].format(company=lead.company), "lead_id": lead.id})
    customers = {o.account_id for o in story.opportunities if o.stage == "won"}
    count = 0
    for owner, planned in by_owner.items():
        with story.crm.unit_of_work(story.actor(owner)) as uow:
            for values in planned:
                uow.create("note", values)
                count += 1
            for account in story.accounts.values():
                if account.id in customers and story.owner_name(account) == owner:
                    uow.tag(account, "customer")
            uow.commit()
    story.echo(f"Notes: {count}; {len(customers)} accounts tagged 'customer'")


def moves(story: Story) -> None:
    """Today the reps move deals on: the converted leads' deals after a first meeting, and in
    each team the biggest deal in qualification, whose RFP arrived. Entering ``rfp_received``
    with more than 50,000 wakes the guided-selling rule: a review meeting with the rep's
    manager in two days, and a reminder for the rep the day before."""
    teams: dict[str, str] = {u["username"]: u["team"] for u in story.company["users"]}
    biggest: dict[str, Record] = {}
    for opportunity in story.opportunities:
        if opportunity.stage == "qualification" and opportunity.amount is not None:
            team = teams.get(story.owner_name(opportunity)) or ""
            if team not in biggest or opportunity.amount.amount > biggest[team].amount.amount:
                biggest[team] = opportunity
    planned = [(o, "identification") for o in _converted(story)] + [(o, "rfp_received") for o in biggest.values()]
    by_owner: dict[str, list[tuple[Record, str]]] = {}
    for opportunity, stage in planned:
        by_owner.setdefault(story.owner_name(opportunity), []).append((opportunity, stage))
    made: list[tuple[Record, str, list[int], list[int]]] = []
    for owner, wanted in by_owner.items():
        with story.crm.unit_of_work(story.actor(owner)) as uow:
            for opportunity, stage in wanted:
                mark = len(uow.changes)
                moved = uow.move(opportunity, stage)
                changes = uow.changes[mark:]
                created = [(c.entity, c.id) for c in changes if c.action == "created"]
                made.append((moved, opportunity.stage,
                             [i for e, i in created if e == "activity"], [i for e, i in created if e == "reminder"]))
            uow.commit()
    with story.crm.unit_of_work() as uow:
        for moved, source, activity_ids, reminder_ids in made:
            story.moved.append(Move(moved, source, tuple(uow.get_many("activity", activity_ids)),
                                    tuple(uow.get_many("reminder", reminder_ids))))
    by_id = {m.opportunity.id: m.opportunity for m in story.moved}
    story.opportunities = [by_id.get(o.id, o) for o in story.opportunities]
    story.echo(f"Today: {len(made)} deals moved on ({len(_converted(story))} converted deals to identification, "
               f"{len(biggest)} RFPs received)")
    for move in story.moved:
        deal = move.opportunity
        story.echo(f"  {story.owner_name(deal)}: {deal.name}  {move.source} -> {deal.stage}  ({_money(deal.amount)})")
    rule = story.crm.rules.rules.get(GUIDED_SELLING)
    fired = [m for m in story.moved if m.activities]
    if rule is None or not rule.enabled:
        story.echo(f"Guided selling: the rule {GUIDED_SELLING!r} is switched off in the settings")
        return
    story.echo(f"Guided selling ({rule.name}: {rule.on} when {rule.when}): fired for {len(fired)} "
               f"deal{'s' if len(fired) != 1 else ''}")
    for move in fired:
        deal = move.opportunity
        owner = story.owner_name(deal)
        for meeting in move.activities:
            people = [story.username(p["user_id"]) for p in meeting.participants or () if "user_id" in p]
            whose = f" ({owner}'s manager)" if people == [story.managers.get(owner)] else ""
            due = story.local(owner, meeting.due_at) if meeting.due_at else "no due time"
            story.echo(f"  {deal.name} ({_money(deal.amount)}): {meeting.kind} {meeting.id} {meeting.subject!r} for "
                       f"{story.username(meeting.owner_id)} with {', '.join(people) or 'nobody'}{whose} as participant, "
                       f"due {due}")
        for reminder in move.reminders:
            reminded = story.username(reminder.user_id)
            story.echo(f"    reminder {reminder.id} for {reminded} at {story.local(reminded, reminder.remind_at)}: "
                       f"{reminder.message}")


def worker(story: Story) -> None:
    """A day later the worker runs once (``crm worker --once``): the reminders whose time has
    come are due, and each user sees theirs (``crm reminders --as USER``)."""
    noon = dt.datetime.combine(story.today, dt.time(12), tzinfo=dt.UTC)
    later = max(dt.datetime.now(dt.UTC), noon) + dt.timedelta(days=1)
    story.worker_at = later.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)  # the next full minute
    stats = story.worker_stats = run_worker(story.crm, once=True, now=story.worker_at, worker_id="crm-demo")
    story.echo(f"Worker: a day later ({story.worker_at:%Y-%m-%d %H:%M} UTC) crm worker --once ran {stats.ran} jobs: "
               f"{stats.done} done, {stats.retried} to retry, {stats.failed} failed")
    story.due = _due_by_user(story)
    if not story.due:
        story.echo("  no reminders are due")
    for name, due in story.due.items():
        story.echo(f"  crm reminders --as {name}: {len(due)} due")
        activities = {a.id: a for a in _read_activities(story, name, due)}
        for reminder in due[:SHOWN]:
            activity = activities.get(reminder.activity_id)
            subject = activity.subject if activity is not None else ""
            text = f"    {reminder.id}  {story.local(name, reminder.remind_at)}  {reminder.activity_id} {subject}"
            text += f"  {reminder.message}" if reminder.get("message") else ""
            story.echo(text if len(text) <= 110 else text[:109] + "…")
        if len(due) > SHOWN:
            story.echo(f"    … and {len(due) - SHOWN} more")


def _due_by_user(story: Story) -> dict[str, list[Record]]:
    """The due reminders of each user, read as that user (as ``crm reminders --as USER``)."""
    due: dict[str, list[Record]] = {}
    for name in story.users:
        with story.crm.unit_of_work(story.actor(name)) as uow:
            found = due_reminders(uow)
        if found:
            due[name] = found
    return due


def _read_activities(story: Story, name: str, due: Sequence[Record]) -> list[Record]:
    with story.crm.unit_of_work(story.actor(name)) as uow:
        return uow.get_many("activity", {r.activity_id for r in due})


#: The core's chapters, in the order they are told. Each takes the :class:`Story`.
CHAPTERS: tuple[Callable[[Story], None], ...] = (
    company, accounts, leads, conversion, pipeline, activities, notes, moves, worker,
)


def plugin_chapters(story: Story) -> None:
    """Let every plugin tell its chapter (``crm_demo``), in plugin order."""
    arguments = {"crm": story.crm, "echo": story.echo}
    for impl in story.crm.hook.crm_demo.get_hookimpls():
        impl.function(*[arguments[name] for name in impl.argnames])


# -- summary ------------------------------------------------------------------------------------


def _money(value: Money | None) -> str:
    return "-" if value is None else f"{value.amount:,.2f} {value.currency}"


def stage_totals(crm: Crm) -> list[tuple[str, str | None, int, Money | None]]:
    """``(stage, currency, deals, amount)`` per stage and currency of the opportunities, in the
    order of the default pipeline's stages (the query API's aggregate, as the system sees it)."""
    stages = crm.workflow.defaults["opportunity"].stage_names
    with crm.unit_of_work() as uow:
        rows = uow.query("opportunity").aggregate(group_by=["stage"], sum=["amount"])
    found = [(r["stage"], r.get("amount_currency"), int(r["count"]), r.get("sum_amount")) for r in rows]
    return sorted(found, key=lambda r: (stages.index(r[0]) if r[0] in stages else len(stages), r[0] or "", r[1] or ""))


def summary(story: Story) -> None:
    """Counts per entity type, the pipeline by stage, the forecast by quarter, the reminders due
    per user, the top accounts and one account's timeline."""
    from crmcore.cli import timeline_lines

    crm, echo = story.crm, story.echo
    registry = crm.registry
    opportunity = registry.entity("opportunity")
    table = registry.table("opportunity")
    amount = table.c[opportunity.field("amount").column]
    currency = table.c[f"{opportunity.field('amount').column}_currency"]
    by_stage = stage_totals(crm)
    with crm.unit_of_work() as uow:
        connection = uow.connection
        counts = []
        for entity in registry:
            number = connection.execute(sa.select(sa.func.count()).select_from(registry.table(entity.name))).scalar_one()
            counts.append((entity.plural.lower(), number))
        forecast = weighted_pipeline(uow, period="quarter")
        accounts = registry.table("account")
        open_amount = sa.func.sum(amount)
        top = connection.execute(
            sa.select(accounts.c.id, accounts.c.name, currency, sa.func.count(), open_amount)
            .join(table, table.c[opportunity.field("account_id").column] == accounts.c.id)
            .where(table.c.stage.not_in(("won", "lost")))
            .group_by(accounts.c.id, accounts.c.name, currency)
            .order_by(open_amount.desc(), accounts.c.id).limit(5)
        ).all()
        featured = top[0] if top else None
        lines = timeline_lines(crm, uow, uow.timeline("account", featured.id)) if featured else []
    due = _due_by_user(story)

    echo("")
    echo("Records")
    width = max(len(name) for name, _ in counts)
    for name, number in counts:
        echo(f"  {name:<{width}}  {number:>5}")

    echo("")
    echo("Pipeline by stage")
    totals: dict[str, decimal.Decimal] = {}
    echo(f"  {'stage':<16} {'deals':>5}  {'amount':>18}")
    for stage, code, number, total in by_stage:
        echo(f"  {stage:<16} {number:>5}  {_money(total):>18}")
        if code and stage not in ("won", "lost") and total is not None:
            totals[code] = totals.get(code, decimal.Decimal(0)) + total.amount
    for code, value in totals.items():
        echo(f"  {'open pipeline':<16} {'':>5}  {_money(Money(value, code)):>18}")

    echo("")
    echo("Forecast by quarter (crm forecast --period quarter)")
    if not forecast:
        echo("  no open opportunities")
    else:
        echo(f"  {'period':<8} {'currency':<8} {'open':>4}  {'pipeline':>16}  {'weighted':>16}  {'won':>16}")
        for row in forecast:
            cells = ["" if m is None else f"{m.amount:,.2f}" for m in (row.amount, row.weighted, row.won)]
            echo(f"  {row.period or 'no date':<8} {row.currency or '-':<8} {row.count:>4}  "
                 f"{cells[0]:>16}  {cells[1]:>16}  {cells[2]:>16}")

    echo("")
    echo("Reminders due (crm reminders --as USER)")
    if not due:
        echo("  none")
    for name, found in due.items():
        echo(f"  {name:<8} {len(found):>3}")

    echo("")
    echo("Top accounts by open pipeline")
    for n, (_, name, code, number, total) in enumerate(top, 1):
        echo(f"  {n}. {name:<24} {_money(Money(total, code)):>18}  ({number} open)")

    if featured is not None:
        echo("")
        echo(f"Timeline of {featured.name} (latest {min(8, len(lines))} of {len(lines)} entries)")
        for line in lines[-8:]:
            echo("  " + (line if len(line) <= 110 else line[:109] + "…"))


# -- running ------------------------------------------------------------------------------------


def tell(crm: Crm, *, echo: Echo = print, today: dt.date | None = None,
         chapters: Sequence[Callable[[Story], None]] = CHAPTERS) -> Story:
    """Tell the story on *crm*, whose schema exists and holds no records yet.

    :param today: the day the story is told (default: today); dates are placed around it.
    :returns: the :class:`Story`, with the records the chapters made.
    """
    story = Story(crm=crm, echo=echo, today=today or dt.date.today(), company=read_data("company.json"))
    for chapter in chapters:
        chapter(story)
    plugin_chapters(story)
    summary(story)
    return story


def _fresh_file(path: str) -> Path:
    """The demo's SQLite file, its old copy (made by ``crm demo``) removed."""
    if path.startswith("sqlite:///"):
        path = path[len("sqlite:///"):]
    elif "://" in path:
        raise ConfigError(f"crm demo runs on an SQLite file; give a path such as {DEFAULT_PATH!r}, not {path!r}")
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"{str(file)!r} is a folder; give crm demo a file path such as {DEFAULT_PATH!r}")
    if file.exists() and file.stat().st_size > 0:
        if _application_id(file) != APPLICATION_ID:
            raise ConfigError(
                f"{str(file)!r} exists and was not made by crm demo; it was left alone. "
                "Remove it or give another path with --db"
            )
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{file}{suffix}").unlink(missing_ok=True)
    file.parent.mkdir(parents=True, exist_ok=True)
    return file


def _application_id(file: Path) -> int | None:
    with open(file, "rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            return None
    try:
        connection = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        try:
            return int(connection.execute("PRAGMA application_id").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.Error:
        return None


def _create_schema(crm: Crm) -> None:
    if importlib.util.find_spec("crmcore.storage.migrations") is not None:
        crm.upgrade()
    else:
        crm.create_schema()
    with crm.engine.begin() as connection:
        connection.exec_driver_sql(f"PRAGMA application_id = {APPLICATION_ID}")


def run(
    path: str = DEFAULT_PATH,
    *,
    settings: str | None = None,
    plugins: Sequence[str] = (),
    plugin_objects: Sequence[Any] = (),
    echo: Echo = print,
    today: dt.date | None = None,
) -> Story:
    """``crm demo``: (re)create *path* as an SQLite file and tell the story on it.

    :param settings: a settings file whose plugins, plugin settings and custom fields the demo
        uses (its database is replaced by *path*).
    :param plugins: names of further installed plugins to enable.
    :param plugin_objects: plugin objects to register (embedding, tests).
    :raises ConfigError: when *path* is not an SQLite file path, or exists and was not made by
        ``crm demo``.
    """
    base = load_settings(settings)
    file = _fresh_file(path)
    url = f"sqlite:///{file}"
    merged = load_settings(base, database=url, plugins=[*base.plugins, *(p for p in plugins if p not in base.plugins)])
    with create_app(merged, plugins=plugin_objects) as crm:
        _create_schema(crm)
        echo(f"crm demo: a small company on {url}")
        echo("")
        story = tell(crm, echo=echo, today=today)
        echo("")
        echo(f"Explore it: crm --db {url} show account 1   (or: timeline account 1, forecast --period quarter, "
             "reminders --as sam, plugins list)")
    return story
