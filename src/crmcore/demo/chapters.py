"""The chapters of ``crm demo`` (:data:`CHAPTERS`), each a function taking the
:class:`~crmcore.demo.story.Story`: the core's, and the chapters plugins tell through
``crm_demo`` (:func:`plugin_chapters`) before the worker runs.
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
from collections.abc import Callable, Sequence
from typing import Any

from crmcore.demo.duplicates import duplicates
from crmcore.demo.story import (
    DATA_ANCHOR,
    OPEN_STAGES,
    PROBABILITY,
    SHOWN,
    Story,
    due_by_user,
    money_text,
    read_data,
)
from crmcore.jobs import run_worker, schedule_reminder
from crmcore.money import Money
from crmcore.records import Record
from crmcore.security import admin
from crmcore.workflow.actions import manager_of

__all__ = ["CHAPTERS", "log_activities", "plugin_chapters"]


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


def log_activities(story: Story, opportunities: Sequence[Record], leads: Sequence[Record] = ()) -> tuple[int, int, int]:
    """Calls, meetings, e-mails and tasks about each of *opportunities* (done in the past,
    planned ahead, as the company file's templates for the deal's stage say), a first call
    with each of *leads*, and a reminder for each planned meeting and call an hour before it
    starts; each made by the record's owner.

    :returns: ``(activities, done, reminders)``: how many were made.
    """
    templates = story.company["activities"]
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for opportunity in opportunities:
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
    for lead in leads:
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
    return count, done, reminded


def activities(story: Story) -> None:
    """Calls, meetings, e-mails and tasks about each deal (done in the past, planned ahead),
    and a reminder for each planned meeting and call an hour before it starts."""
    count, done, reminded = log_activities(story, story.opportunities)
    story.echo(f"Activities: {count} calls, meetings, e-mails and tasks ({done} done, {count - done} planned); "
               f"{reminded} reminders an hour before the planned meetings and calls")


def notes(story: Story) -> None:
    """Notes on won and lost deals, on key contacts and on the leads being worked (when a
    plugin's chapter has made some); won accounts are tagged ``customer``."""
    texts = story.company["notes"]
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for opportunity in story.opportunities:
        if opportunity.stage in ("won", "lost"):
            body = texts[opportunity.stage].format(deal=opportunity.name, amount=money_text(opportunity.amount))
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


def worker(story: Story) -> None:
    """A day later the worker runs once (``crm worker --once``): the reminders whose time has
    come are due, and each user sees theirs (``crm reminders --as USER``)."""
    noon = dt.datetime.combine(story.today, dt.time(12), tzinfo=dt.UTC)
    later = max(dt.datetime.now(dt.UTC), noon) + dt.timedelta(days=1)
    story.worker_at = later.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)  # the next full minute
    stats = story.worker_stats = run_worker(story.crm, once=True, now=story.worker_at, worker_id="crm-demo")
    story.echo(f"Worker: a day later ({story.worker_at:%Y-%m-%d %H:%M} UTC) crm worker --once ran {stats.ran} jobs: "
               f"{stats.done} done, {stats.retried} to retry, {stats.failed} failed")
    story.due = due_by_user(story)
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


def _read_activities(story: Story, name: str, due: Sequence[Record]) -> list[Record]:
    with story.crm.unit_of_work(story.actor(name)) as uow:
        return uow.get_many("activity", {r.activity_id for r in due})


def plugin_chapters(story: Story) -> None:
    """Every plugin tells its chapters (``crm_demo``), in plugin order: the sales plugin its
    leads, their conversion and today's moves."""
    story.crm.plugins.call_each("crm_demo", crm=story.crm, echo=story.echo, story=story)


#: The chapters, in the order they are told. Each takes the :class:`Story`.
CHAPTERS: tuple[Callable[[Story], None], ...] = (
    company, accounts, pipeline, activities, notes, plugin_chapters, duplicates, worker,
)
