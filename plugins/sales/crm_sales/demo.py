"""The sales chapters of ``crm demo`` (told through ``crm_demo``) and the forecast the plugin adds
to its summary (``crm_demo_summary``).

After the core's chapters have made the company, its accounts, contacts, opportunities,
activities and notes:

1. the sales director imports two lead lists (``crm import``, deduplicated on e-mail, audited);
   every lead is checked and scored hot, warm or cold (``crm leads check``, ``crm leads
   score``);
2. each rep qualifies their hot leads through the lead pipeline and converts them (``crm leads
   convert``); the converted deals and the warm leads being worked get their first activities;
3. today's moves: a deal over 50,000 entering ``rfp_received`` wakes the guided-selling rule.

Then the core's worker runs a day later and the summary ends with the forecast by quarter
(``crm forecast --period quarter``).
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any

from crmcore.demo import Move, Story, log_activities, money_text, read_data
from crmcore.money import Money
from crmcore.records import Record
from crmcore.transfer import import_rows

from crm_sales.conversion import convert_leads
from crm_sales.forecast import weighted_pipeline
from crm_sales.leads import check_leads, sales_settings
from crm_sales.scoring import score_leads

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["CHAPTERS", "summary", "tell"]

#: Sources of the trade-show list's leads, by row (the web list names its own).
LEAD_SOURCES = ("web", "referral", "event", "campaign", "partner", "cold_call")
#: The lead lists imported, in order: file name and what it is (the core's sample data).
LEAD_FILES = (("leads.csv", "trade-show list"), ("web_leads.csv", "web sign-ups"))
#: Warm leads from this score on are being worked (first call logged); the others wait.
WORKED_FROM = 50
#: The guided-selling rule the builtin rules plugin ships (``crmcore.builtin.rules``).
GUIDED_SELLING = "guided_selling_review"


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
        f"{money_text(Money(total, story.currency))}; {disqualified} cold leads disqualified, {worked} warm leads worked on"
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


def _converted(story: Story) -> list[Record]:
    return [c.opportunity for c in story.conversions if c.opportunity is not None]


def first_steps(story: Story) -> None:
    """The first activities of the converted deals (a first meeting done, the next steps
    planned) and a first call with each warm lead being worked."""
    worked = [lead for lead in story.leads if lead.status == "working"]
    count, done, reminded = log_activities(story, _converted(story), worked)
    story.echo(f"First steps: {count} activities about the converted deals and the leads being worked "
               f"({done} done, {count - done} planned); {reminded} reminders")


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
        story.echo(f"  {story.owner_name(deal)}: {deal.name}  {move.source} -> {deal.stage}  ({money_text(deal.amount)})")
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
            story.echo(f"  {deal.name} ({money_text(deal.amount)}): {meeting.kind} {meeting.id} {meeting.subject!r} for "
                       f"{story.username(meeting.owner_id)} with {', '.join(people) or 'nobody'}{whose} as participant, "
                       f"due {due}")
        for reminder in move.reminders:
            reminded = story.username(reminder.user_id)
            story.echo(f"    reminder {reminder.id} for {reminded} at {story.local(reminded, reminder.remind_at)}: "
                       f"{reminder.message}")


#: The sales chapters, in the order they are told. Each takes the :class:`~crmcore.demo.Story`.
CHAPTERS = (leads, conversion, first_steps, moves)


def tell(story: Story) -> None:
    """Tell the sales chapters."""
    for chapter in CHAPTERS:
        chapter(story)


def summary(crm: Crm) -> list[str]:
    """The forecast by quarter (``crm forecast --period quarter``), as the system sees it."""
    with crm.unit_of_work() as uow:
        forecast = weighted_pipeline(uow, period="quarter")
    lines = ["Forecast by quarter (crm forecast --period quarter)"]
    echo = lines.append
    if not forecast:
        echo("  no open opportunities")
    else:
        echo(f"  {'period':<8} {'currency':<8} {'open':>4}  {'pipeline':>16}  {'weighted':>16}  {'won':>16}")
        for row in forecast:
            cells = ["" if m is None else f"{m.amount:,.2f}" for m in (row.amount, row.weighted, row.won)]
            echo(f"  {row.period or 'no date':<8} {row.currency or '-':<8} {row.count:>4}  "
                 f"{cells[0]:>16}  {cells[1]:>16}  {cells[2]:>16}")

    return lines
