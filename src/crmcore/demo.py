"""``crm demo``: the story of a small company, told on a fresh SQLite file.

The story is a list of chapters (:data:`CHAPTERS`), each a small function taking the
:class:`Story` (the app, the records made so far, a seeded random generator and ``echo``). The
core's chapters build the company from the bundled sample data in ``crmcore/data`` (see its
``PROVENANCE.md``): users and teams, accounts and contacts, leads, opportunities moved through
the pipeline, activities and notes. Then every plugin tells its own chapter through the
``crm_demo`` hook, and :func:`summary` prints counts, the pipeline by stage, the top accounts and
the timeline of one account. To extend the story, add a chapter function to :data:`CHAPTERS`.
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
from crmcore.money import Money
from crmcore.records import Record
from crmcore.settings import load_settings

__all__ = ["CHAPTERS", "DEFAULT_PATH", "Story", "run", "summary", "tell"]

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
LEAD_STATUSES = ("new", "working", "working", "qualified", "new", "disqualified")
LEAD_SOURCES = ("web", "referral", "event", "campaign", "partner", "cold_call")

Echo = Callable[[str], None]


def read_data(name: str) -> Any:
    """A bundled sample file: CSV as a list of dicts, JSON as parsed."""
    text = importlib.resources.files("crmcore").joinpath("data", name).read_text(encoding="utf-8")
    if name.endswith(".json"):
        return json.loads(text)
    return list(csv.DictReader(io.StringIO(text)))


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
    teams: dict[str, Record] = attrs.field(factory=dict)
    accounts: dict[str, Record] = attrs.field(factory=dict)
    contacts: dict[str, list[Record]] = attrs.field(factory=dict)
    leads: list[Record] = attrs.field(factory=list)
    opportunities: list[Record] = attrs.field(factory=list)

    @property
    def currency(self) -> str:
        return str(self.company.get("currency", "USD"))

    @property
    def reps(self) -> list[str]:
        """Usernames of the sales reps, in the order of the company file."""
        return [name for name, role in self.roles.items() if role == "Sales rep"]

    def actor(self, username: str) -> Actor:
        """The actor of a demo user (the records they make are theirs in the audit trail)."""
        user = self.users[username]
        return Actor(user.id, username)

    def owner_name(self, record: Record) -> str:
        return next(name for name, user in self.users.items() if user.id == record.owner_id)

    def at(self, username: str, day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
        """A time on *day* in the user's own time zone."""
        tz = zoneinfo.ZoneInfo(self.users[username].timezone or "UTC")
        return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)

    def __repr__(self) -> str:
        return f"<Story users={len(self.users)} accounts={len(self.accounts)} opportunities={len(self.opportunities)}>"


# -- chapters -----------------------------------------------------------------------------------


def company(story: Story) -> None:
    """Teams and users: a sales director, two sales managers, reps and a support agent."""
    data = story.company
    with story.crm.unit_of_work() as uow:
        for team in data["teams"]:
            story.teams[team["key"]] = uow.create("team", name=team["name"], description=team["description"])
        for user in data["users"]:
            team_id = story.teams[user["team"]].id if user["team"] else None
            story.users[user["username"]] = uow.create(
                "user", username=user["username"], full_name=user["full_name"], team_id=team_id,
                timezone=user["timezone"],
                email=f"{user['username']}@{data['company'].lower().replace(' ', '-')}.example.com",
            )
            story.roles[user["username"]] = user["role"]
        uow.commit()
    roles: dict[str, int] = {}
    for role in story.roles.values():
        roles[role] = roles.get(role, 0) + 1
    people = ", ".join(f"{n} {role.lower()}{'s' if n > 1 else ''}" for role, n in roles.items())
    story.echo(f"{data['company']}: {len(story.users)} users in {len(story.teams)} teams ({people})")


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
    """Leads from trade shows, the web and referrals, some worked on, some qualified."""
    reps = story.reps
    rows = read_data("leads.csv")
    by_rep: dict[str, list[tuple[int, dict[str, str]]]] = {rep: [] for rep in reps}
    for i, row in enumerate(rows):
        by_rep[reps[i % len(reps)]].append((i, row))
    for rep, owned in by_rep.items():
        with story.crm.unit_of_work(story.actor(rep)) as uow:
            for i, row in owned:
                status = LEAD_STATUSES[i % len(LEAD_STATUSES)]
                score = None if status == "new" else story.rng.randint(20, 95)
                story.leads.append(uow.create("lead", {
                    "first_name": row["first_name"], "last_name": row["last_name"], "company": row["company"],
                    "title": row["title"], "email": row["email"], "phone": row["phone"],
                    "source": LEAD_SOURCES[i % len(LEAD_SOURCES)], "status": status, "score": score,
                }))
            uow.commit()
    statuses: dict[str, int] = {}
    for lead in story.leads:
        statuses[lead.status] = statuses.get(lead.status, 0) + 1
    story.echo(f"Leads: {len(story.leads)} ({', '.join(f'{n} {s}' for s, n in statuses.items())})")


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
    """Opportunities open at the first stage; later each owner moves theirs through the
    pipeline to where they stand now."""
    by_owner: dict[str, list[tuple[dict[str, Any], list[str]]]] = {}
    for row in read_data("opportunities.csv"):
        account = story.accounts[row["account_key"]]
        contacts = story.contacts[row["account_key"]]
        path = _path_to(row["stage"], story.rng)
        values = {
            "name": row["name"], "account_id": account.id, "contact_id": contacts[0].id if contacts else None,
            "amount": Money(decimal.Decimal(row["amount"]), story.currency),
            "close_date": _close_date(story, dt.date.fromisoformat(row["close_date"]), row["stage"]),
            "stage": path[0], "probability": PROBABILITY[path[0]], "description": row["description"],
        }
        by_owner.setdefault(story.owner_name(account), []).append((values, path))
    moved = 0
    for owner, deals in by_owner.items():
        with story.crm.unit_of_work(story.actor(owner)) as uow:
            opened = [(uow.create("opportunity", values), path) for values, path in deals]
            uow.commit()
        with story.crm.unit_of_work(story.actor(owner)) as uow:
            for opportunity, path in opened:
                for stage in path[1:]:
                    opportunity = uow.update(opportunity, stage=stage, probability=PROBABILITY[stage])
                moved += len(path) > 1
                story.opportunities.append(opportunity)
            uow.commit()
    story.opportunities.sort(key=lambda o: o.id)
    won = sum(o.stage == "won" for o in story.opportunities)
    lost = sum(o.stage == "lost" for o in story.opportunities)
    story.echo(f"Pipeline: {len(story.opportunities)} opportunities; {moved} moved forward, {won} won, {lost} lost")


def activities(story: Story) -> None:
    """Calls, meetings, e-mails and tasks about each deal (done in the past, planned ahead) and
    first calls with the leads being worked."""
    templates = story.company["activities"]
    count = 0
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for opportunity in story.opportunities:
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
        if lead.status in ("working", "qualified"):
            owner = story.owner_name(lead)
            kind, subject = templates["lead"][0]
            starts = story.at(owner, story.today - dt.timedelta(days=story.rng.randint(1, 20)), 11)
            by_owner.setdefault(owner, []).append({
                "kind": kind, "subject": subject.format(name=f"{lead.first_name} {lead.last_name}", company=lead.company)[:200],
                "status": "done", "lead_id": lead.id, "starts_at": starts, "ends_at": starts + dt.timedelta(minutes=20),
            })
    for owner, planned in by_owner.items():
        with story.crm.unit_of_work(story.actor(owner)) as uow:
            for values in planned:
                uow.create("activity", values)
                count += 1
            uow.commit()
    done = sum(v["status"] == "done" for vs in by_owner.values() for v in vs)
    story.echo(f"Activities: {count} calls, meetings, e-mails and tasks ({done} done, {count - done} planned)")


def notes(story: Story) -> None:
    """Notes on won and lost deals, on key contacts and on qualified leads; won accounts are
    tagged ``customer``."""
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
        if lead.status == "qualified":
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


#: The core's chapters, in the order they are told. Each takes the :class:`Story`.
CHAPTERS: tuple[Callable[[Story], None], ...] = (company, accounts, leads, pipeline, activities, notes)


def plugin_chapters(story: Story) -> None:
    """Let every plugin tell its chapter (``crm_demo``), in plugin order."""
    arguments = {"crm": story.crm, "echo": story.echo}
    for impl in story.crm.hook.crm_demo.get_hookimpls():
        impl.function(*[arguments[name] for name in impl.argnames])


# -- summary ------------------------------------------------------------------------------------


def _money(value: Money | None) -> str:
    return "-" if value is None else f"{value.amount:,.2f} {value.currency}"


def summary(story: Story) -> None:
    """Counts per entity type, the pipeline by stage, the top accounts and one account's timeline."""
    from crmcore.cli import timeline_lines

    crm, echo = story.crm, story.echo
    registry = crm.registry
    opportunity = registry.entity("opportunity")
    table = registry.table("opportunity")
    amount = table.c[opportunity.field("amount").column]
    currency = table.c[f"{opportunity.field('amount').column}_currency"]
    stages = crm.workflow.defaults["opportunity"].stage_names
    with crm.unit_of_work() as uow:
        connection = uow.connection
        counts = []
        for entity in registry:
            number = connection.execute(sa.select(sa.func.count()).select_from(registry.table(entity.name))).scalar_one()
            counts.append((entity.plural.lower(), number))
        by_stage = connection.execute(
            sa.select(table.c.stage, currency, sa.func.count(), sa.func.sum(amount))
            .group_by(table.c.stage, currency)
        ).all()
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

    echo("")
    echo("Records")
    width = max(len(name) for name, _ in counts)
    for name, number in counts:
        echo(f"  {name:<{width}}  {number:>5}")

    echo("")
    echo("Pipeline by stage")
    rows = sorted(by_stage, key=lambda r: (stages.index(r[0]) if r[0] in stages else len(stages), r[1] or ""))
    totals: dict[str, decimal.Decimal] = {}
    echo(f"  {'stage':<16} {'deals':>5}  {'amount':>18}")
    for stage, code, number, total in rows:
        echo(f"  {stage:<16} {number:>5}  {_money(Money(total, code)) if total is not None else '-':>18}")
        if code and stage not in ("won", "lost") and total is not None:
            totals[code] = totals.get(code, decimal.Decimal(0)) + total
    for code, total in totals.items():
        echo(f"  {'open pipeline':<16} {'':>5}  {_money(Money(total, code)):>18}")

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
        echo(f"Explore it: crm --db {url} show account 1   (or: timeline account 1, plugins list)")
    return story
