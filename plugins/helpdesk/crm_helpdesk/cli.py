"""``crm helpdesk ...``: work tickets, watch the SLA, search the knowledge base, report.

::

    crm helpdesk ticket open "Printer on fire" --account 7 --priority high
    crm helpdesk ticket assign 12 --to ann          (without --to: the queue picks)
    crm helpdesk ticket reply 12 "We are on our way" [--kind call]
    crm helpdesk ticket resolve 12 [--article 3]
    crm helpdesk ticket close 12
    crm helpdesk sla status
    crm helpdesk sla sweep
    crm helpdesk kb search "printer toner"
    crm helpdesk report --month 2026-03

Every command acts as ``--as USER`` (default: the system actor) in one unit of work; ``--json``
prints JSON instead of text. Times are shown in the deployment's time zone.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click
from crmcore.cli import current_actor, current_app, dump_record, echo_json

from crm_helpdesk import kb, reports, sla, tickets
from crm_helpdesk.entities import CHANNELS, PRIORITIES

if TYPE_CHECKING:
    from crmcore import Crm, UnitOfWork
    from crmcore.records import Record

__all__ = ["helpdesk"]

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _when(crm: Crm, moment: dt.datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(crm.registry.timezone or dt.UTC).strftime("%Y-%m-%d %H:%M")


def _user_id(uow: UnitOfWork, username: str | None) -> int | None:
    if username is None:
        return None
    return uow.crm.actor(username).user_id


def _describe(uow: UnitOfWork, ticket: Record) -> str:
    crm = uow.crm
    parts = [f"ticket {ticket.id} {ticket.status}", f"priority {ticket.priority}"]
    if ticket.queue_id:
        parts.append(f"queue {uow.get('queue', ticket.queue_id).name}")
    if ticket.assignee_id:
        parts.append(f"assigned to {uow.get('user', ticket.assignee_id).username}")
    else:
        parts.append("unassigned")
    if ticket.response_due is not None:
        parts.append(
            f"first response due {_when(crm, ticket.response_due)} ({ticket.response_status})"
        )
    if ticket.resolution_due is not None:
        parts.append(
            f"resolution due {_when(crm, ticket.resolution_due)} ({ticket.resolution_status})"
        )
    return "; ".join(parts)


def _done(uow: UnitOfWork, ticket: Record, as_json: bool, verb: str) -> None:
    ticket = uow.get("ticket", ticket.id)
    if as_json:
        echo_json(dump_record(uow.crm, ticket))
    else:
        click.echo(f"{verb}: {_describe(uow, ticket)}")


@click.group("helpdesk")
def helpdesk() -> None:
    """Help desk: tickets, SLA, knowledge base, reports."""


# -- tickets ---------------------------------------------------------------------------------------


@helpdesk.group("ticket")
def ticket() -> None:
    """Open, assign, answer, resolve and close tickets."""


@ticket.command("open")
@click.argument("subject")
@click.option("--description", "-d", help="What the customer wrote.")
@click.option("--account", "account_id", type=int, help="The account's id.")
@click.option(
    "--contact",
    "contact_id",
    type=int,
    help="The contact's id (its account is taken when --account is not given).",
)
@click.option(
    "--channel", type=click.Choice(CHANNELS), help="Where the request came from [default: web]."
)
@click.option("--priority", type=click.Choice(PRIORITIES), help="[default: normal]")
@click.option("--category", help="A category, free text.")
@click.option("--queue", help="The queue's name or id [default: the default queue].")
@click.option(
    "--assignee", metavar="USERNAME", help="Give it to this user instead of the queue's pick."
)
@_JSON
def open_command(subject: str, as_json: bool, assignee: str | None, **options: Any) -> None:
    """Open a ticket; its queue assigns it and its SLA policy sets its clocks."""
    crm = current_app()
    values = {k: v for k, v in options.items() if v is not None}
    with crm.unit_of_work(current_actor()) as uow:
        user = _user_id(uow, assignee)
        if user is not None:
            values["assignee_id"] = user
        record = tickets.open_ticket(uow, subject, **values)
        uow.commit()
    with crm.unit_of_work(current_actor()) as uow:
        _done(uow, record, as_json, "opened")


@ticket.command("assign")
@click.argument("ticket_id", type=int)
@click.option("--to", "username", metavar="USERNAME", help="The user [default: the queue's pick].")
@_JSON
def assign_command(ticket_id: int, username: str | None, as_json: bool) -> None:
    """Give a ticket to a user, or to the agent its queue picks."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        record = tickets.assign(uow, ticket_id, _user_id(uow, username))
        uow.commit()
    with crm.unit_of_work(current_actor()) as uow:
        _done(uow, record, as_json, "assigned")


@ticket.command("reply")
@click.argument("ticket_id", type=int)
@click.argument("text")
@click.option(
    "--kind",
    type=click.Choice(tickets.RESPONSE_KINDS),
    default="email",
    show_default=True,
    help="How the customer was answered.",
)
@_JSON
def reply_command(ticket_id: int, text: str, kind: str, as_json: bool) -> None:
    """Answer the customer: an activity on the ticket (the first one stops the response clock)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        activity = tickets.reply(uow, ticket_id, text, kind=kind)
        uow.commit()
    with crm.unit_of_work(current_actor()) as uow:
        if as_json:
            echo_json(
                {
                    "activity": dump_record(crm, activity),
                    "ticket": dump_record(crm, uow.get("ticket", ticket_id)),
                }
            )
        else:
            click.echo(
                f"replied ({kind}, activity {activity.id}): "
                f"{_describe(uow, uow.get('ticket', ticket_id))}"
            )


@ticket.command("resolve")
@click.argument("ticket_id", type=int)
@click.option(
    "--article",
    "articles",
    type=int,
    multiple=True,
    help="A knowledge base article that helped (repeat).",
)
@_JSON
def resolve_command(ticket_id: int, articles: tuple[int, ...], as_json: bool) -> None:
    """Resolve a ticket; a satisfaction survey is sent."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        record = tickets.resolve(uow, ticket_id, articles=articles)
        uow.commit()
    with crm.unit_of_work(current_actor()) as uow:
        _done(uow, record, as_json, "resolved")


@ticket.command("close")
@click.argument("ticket_id", type=int)
@_JSON
def close_command(ticket_id: int, as_json: bool) -> None:
    """Close a ticket."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        record = tickets.close(uow, ticket_id)
        uow.commit()
    with crm.unit_of_work(current_actor()) as uow:
        _done(uow, record, as_json, "closed")


@ticket.command("reopen")
@click.argument("ticket_id", type=int)
@_JSON
def reopen_command(ticket_id: int, as_json: bool) -> None:
    """Reopen a resolved or closed ticket (within the reopen window)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        record = tickets.reopen(uow, ticket_id)
        uow.commit()
    with crm.unit_of_work(current_actor()) as uow:
        _done(uow, record, as_json, "reopened")


# -- SLA -------------------------------------------------------------------------------------------


@helpdesk.group("sla")
def sla_group() -> None:
    """SLA clocks of the unfinished tickets."""


@sla_group.command("status")
@_JSON
def status_command(as_json: bool) -> None:
    """Per queue: unfinished tickets, paused, warned about, breached, next due time."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        rows = sla.sla_status(uow)
    if as_json:
        echo_json(
            [
                {
                    "queue_id": r.queue_id,
                    "queue": r.name,
                    "open": r.open,
                    "paused": r.paused,
                    "warning": r.warning,
                    "breached": r.breached,
                    "next_due": r.next_due.isoformat() if r.next_due else None,
                }
                for r in rows
            ]
        )
        return
    if not rows:
        click.echo("no unfinished tickets")
        return
    width = max(len("queue"), *(len(r.name) for r in rows))
    click.echo(
        f"{'queue':<{width}}  {'open':>5}  {'paused':>6}  {'warning':>7}  {'breached':>8}  next due"
    )
    for r in rows:
        click.echo(
            f"{r.name:<{width}}  {r.open:>5}  {r.paused:>6}  {r.warning:>7}  {r.breached:>8}  "
            f"{_when(crm, r.next_due)}"
        )


@sla_group.command("sweep")
@_JSON
def sweep_command(as_json: bool) -> None:
    """Check every open ticket's SLA now (the worker does it every few minutes)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        result = sla.sla_sweep(uow)
        uow.commit()
    if as_json:
        echo_json(
            {
                "at": result.at.isoformat(),
                "response_warnings": list(result.response_warnings),
                "resolution_warnings": list(result.resolution_warnings),
                "response_breaches": list(result.response_breaches),
                "resolution_breaches": list(result.resolution_breaches),
                "jobs": result.jobs,
            }
        )
    else:
        click.echo(f"sla sweep at {_when(crm, result.at)}: {result.summary()}")


# -- knowledge base --------------------------------------------------------------------------------


@helpdesk.group("kb")
def kb_group() -> None:
    """The knowledge base."""


def _hits(crm: Crm, hits: list[kb.Hit], as_json: bool) -> None:
    if as_json:
        echo_json(
            [
                {
                    "id": h.article.id,
                    "title": h.article.title,
                    "status": h.article.status,
                    "rank": round(h.rank, 4),
                    "helped": h.helped,
                }
                for h in hits
            ]
        )
        return
    if not hits:
        click.echo("no article found")
        return
    for h in hits:
        helped = f", helped {h.helped} ticket{'s' if h.helped != 1 else ''}" if h.helped else ""
        click.echo(f"{h.article.id:>6}  {h.article.title}  ({h.article.status}{helped})")


@kb_group.command("search")
@click.argument("text")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@_JSON
def search_command(text: str, limit: int, as_json: bool) -> None:
    """Articles containing every word of TEXT, best first (those you may read)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        hits = kb.search(uow, text, limit)
    _hits(crm, hits, as_json)


@kb_group.command("suggest")
@click.argument("ticket_id", type=int)
@click.option("--limit", default=5, show_default=True, type=click.IntRange(1, 50))
@_JSON
def suggest_command(ticket_id: int, limit: int, as_json: bool) -> None:
    """Published articles that may answer a ticket, from its subject and description."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        hits = kb.suggest(uow, ticket_id, limit)
    _hits(crm, hits, as_json)


# -- report ----------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


@helpdesk.command("report")
@click.option(
    "--month", required=True, metavar="YYYY-MM", help="The month, in the deployment's time zone."
)
@_JSON
def report_command(month: str, as_json: bool) -> None:
    """SLA attainment and satisfaction per agent and per queue for one month."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        report = reports.monthly_report(uow, month)
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(f"Service report {report.month}")
    for title, lines in (("agent", report.agents), ("queue", report.queues), ("", (report.total,))):
        click.echo("")
        names = [line.name for line in lines] or [""]
        width = max(len(title or "total"), *(len(n) for n in names))
        click.echo(
            f"{title or 'total':<{width}}  {'opened':>6}  {'response':>8}  {'resolved':>8}  "
            f"{'in time':>7}  {'surveys':>7}  {'CSAT':>6}  {'avg':>4}"
        )
        for line in lines:
            average = "-" if line.average_score is None else f"{line.average_score:.1f}"
            click.echo(
                f"{line.name:<{width}}  {line.opened:>6}  {_percent(line.response_attainment):>8}  "
                f"{line.resolved:>8}  {_percent(line.resolution_attainment):>7}  "
                f"{line.surveys:>7}  "
                f"{_percent(line.csat):>6}  {average:>4}"
            )
