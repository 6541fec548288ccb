"""``crm schedule ...``: capacity, proposals and their acceptance, urgent dispatch, each
technician's day, conflicts.

::

    crm schedule capacity --week 2027-W03 [--by week] [--group team] [--chart FILE.png]
    crm schedule free --date 2027-01-18 [--to 2027-01-22]
    crm schedule propose [--date D] [--to D] [--solver greedy]
    crm schedule accept [--date D] [--to D] [--solver greedy]
    crm schedule dispatch ORDER [--now 2027-01-18T10:30Z] [--accept]
    crm schedule board --date D
    crm schedule conflicts [--date D] [--to D]
    crm schedule replan [--date D] [--to D] [--accept]   (after an absence, say)
    crm schedule hours --week 2027-W03          (planned, actual, overtime, utilisation)
    crm schedule roster --week 2027-W03 FILE    (.csv or .ics)

Every command acts as ``--as USER`` (default: the system actor) in one unit of work.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click
from crmcore.cli import current_actor, current_app

from crm_scheduling import capacity as capacities
from crm_scheduling import planning, workday, workforce

if TYPE_CHECKING:
    from crm_scheduling.solver import Proposal

__all__ = ["schedule"]


def _date(value: str | None) -> dt.date:
    if value is None:
        return dt.datetime.now(dt.UTC).date()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected a date such as 2027-01-18, got {value!r}") from None


def _unit() -> Any:
    return current_app().unit_of_work(current_actor())


@click.group("schedule")
def schedule() -> None:
    """Resource planning: capacity, proposals, dispatch, each technician's day."""


@schedule.command("capacity")
@click.option("--week", help="An ISO week such as 2027-W03.")
@click.option("--date", "first", help="The first day (with --to), instead of --week.")
@click.option("--to", "last", help="The last day.")
@click.option("--by", type=click.Choice(["day", "week"]), default="day", show_default=True)
@click.option("--group", type=click.Choice(["team", "skill", "territory", "resource", "all"]),
              default="all", show_default=True)
@click.option("--chart", "chart_path", type=click.Path(dir_okay=False),
              help="Also draw the rows of --group (team when all) as a PNG bar chart.")
def capacity_command(week: str | None, first: str | None, last: str | None, by: str,
                     group: str, chart_path: str | None) -> None:
    """Working, absent, booked and free hours against demand."""
    if week:
        start, end = capacities.iso_week(week)
    else:
        start = _date(first)
        end = _date(last) if last else start
    with _unit() as uow:
        rows = capacities.capacity(uow, start, end, by=by)
    shown = [r for r in rows if group == "all" or r.group == group]
    for line in capacities.table(shown):
        click.echo(line)
    if chart_path:
        capacities.chart(rows, chart_path, group="team" if group == "all" else group)
        click.echo(f"chart written to {chart_path}")


@schedule.command("free")
@click.option("--date", "first", help="The first day (default: today).")
@click.option("--to", "last", help="The last day (default: the first).")
def free_command(first: str | None, last: str | None) -> None:
    """The free working time of each resource."""
    start = _date(first)
    end = _date(last) if last else start
    with _unit() as uow:
        free = capacities.free_time(uow, start, end)
        names = {r["id"]: r["name"] for r in uow.select("resource", ("id", "name")).all()}
    for rid, spans in free.items():
        text = ", ".join(f"{s:%m-%d %H:%M}-{e:%H:%M}" for s, e in spans) or "none"
        click.echo(f"{names[rid]}: {text}")


def _print_proposal(proposal: Proposal, names: dict[int, str]) -> None:
    for a in sorted(proposal.assignments, key=lambda a: a.demand.rank):
        d = a.demand
        if a.resource_id is None:
            click.echo(f"{d.source} {d.id} ({d.priority}): not placed - {a.reason}")
        else:
            click.echo(f"{d.source} {d.id} ({d.priority}) -> {names[a.resource_id]} "
                       f"{a.starts_at:%Y-%m-%d %H:%M}-{a.ends_at:%H:%M} UTC, "
                       f"{a.travel_km:.1f} km: {a.reason}")
    placed = len(proposal.assignments) - len(proposal.unassigned)
    click.echo(f"{placed} placed, {len(proposal.unassigned)} not placed, "
               f"{proposal.total_km:.1f} km of travel ({proposal.solver})")


def _names(uow: Any) -> dict[int, str]:
    return {r["id"]: r["name"] for r in uow.select("resource", ("id", "name")).all()}


@schedule.command("propose")
@click.option("--date", "first", help="The first day (default: today).")
@click.option("--to", "last", help="The last day (default: the first).")
@click.option("--solver", help="greedy, routing or a plugin's (default: the setting).")
def propose_command(first: str | None, last: str | None, solver: str | None) -> None:
    """Propose assignments for the unbooked demand; writes nothing."""
    start = _date(first)
    with _unit() as uow:
        proposal = planning.propose(uow, start, _date(last) if last else start, solver=solver)
        _print_proposal(proposal, _names(uow))


@schedule.command("accept")
@click.option("--date", "first", help="The first day (default: today).")
@click.option("--to", "last", help="The last day (default: the first).")
@click.option("--solver", help="greedy, routing or a plugin's (default: the setting).")
def accept_command(first: str | None, last: str | None, solver: str | None) -> None:
    """Propose and book the proposal (the same proposal `propose` prints)."""
    start = _date(first)
    with _unit() as uow:
        proposal = planning.propose(uow, start, _date(last) if last else start, solver=solver)
        made = planning.accept(uow, proposal)
        uow.commit()
    click.echo(f"{len(made)} bookings made, {len(proposal.unassigned)} orders not placed")


@schedule.command("dispatch")
@click.argument("order_id", type=int)
@click.option("--now", "now_text", help="The moment to dispatch from (ISO, default: now).")
@click.option("--accept", "accept_it", is_flag=True, help="Book it at once.")
def dispatch_command(order_id: int, now_text: str | None, accept_it: bool) -> None:
    """Send the best available technician to an urgent order."""
    now = (dt.datetime.fromisoformat(now_text.replace("Z", "+00:00")) if now_text
           else dt.datetime.now(dt.UTC))
    if now.tzinfo is None:
        raise click.BadParameter(f"--now needs a time zone, such as {now_text}Z")
    with _unit() as uow:
        found = planning.dispatch(uow, order_id, now)
        _print_proposal(found.proposal, _names(uow))
        for victim in found.displaced:
            click.echo(f"order {victim} gives up its booking and moves as shown")
        if accept_it and found.assignment.resource_id is not None:
            planning.accept(uow, found.proposal, found.unbook)
            uow.commit()
            click.echo("accepted")


@schedule.command("board")
@click.option("--date", "day", help="The day (default: today).")
def board_command(day: str | None) -> None:
    """Each resource's day: where it goes, when, and how far."""
    with _unit() as uow:
        for line in workday.board(uow, _date(day)):
            click.echo(line)


@schedule.command("conflicts")
@click.option("--date", "first", help="The first day (default: today).")
@click.option("--to", "last", help="The last day (default: the first).")
def conflicts_command(first: str | None, last: str | None) -> None:
    """Bookings that break a hard constraint (changed calendars, absences, skills)."""
    start = _date(first)
    with _unit() as uow:
        found = workday.conflicts(uow, start, _date(last) if last else start)
    for line in found or ["no conflicts"]:
        click.echo(line)


@schedule.command("replan")
@click.option("--date", "first", help="The first day (default: today).")
@click.option("--to", "last", help="The last day (default: the first).")
@click.option("--accept", "accept_it", is_flag=True, help="Book the new proposal at once.")
def replan_command(first: str | None, last: str | None, accept_it: bool) -> None:
    """Take conflicting bookings off their resources and propose their orders again."""
    start = _date(first)
    with _unit() as uow:
        orders, proposal = workday.replan(uow, start, _date(last) if last else start)
        click.echo("orders taken off conflicting bookings: "
                   f"{', '.join(map(str, orders)) or 'none'}")
        _print_proposal(proposal, _names(uow))
        if accept_it:
            planning.accept(uow, proposal)
            uow.commit()
            click.echo("accepted")


def _week(week: str | None) -> tuple[dt.date, dt.date]:
    if week:
        return capacities.iso_week(week)
    today = _date(None)
    monday = today - dt.timedelta(days=today.weekday())
    return monday, monday + dt.timedelta(days=6)


@schedule.command("hours")
@click.option("--week", help="An ISO week such as 2027-W03 (default: this week).")
def hours_command(week: str | None) -> None:
    """Planned against actual hours per technician, overtime and utilisation."""
    first, last = _week(week)
    with _unit() as uow:
        rows = workforce.hours(uow, first, last)
    for line in workforce.hours_table(rows):
        click.echo(line)


@schedule.command("roster")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--week", help="An ISO week such as 2027-W03 (default: this week).")
def roster_command(path: str, week: str | None) -> None:
    """Write the week's bookings as CSV (FILE.csv) or iCalendar (FILE.ics)."""
    first, last = _week(week)
    with _unit() as uow:
        if path.lower().endswith(".ics"):
            text = workforce.roster_ics(uow, first, last)
        elif path.lower().endswith(".csv"):
            text = workforce.roster_csv(uow, first, last)
        else:
            raise click.BadParameter(f"expected a file ending .csv or .ics, got {path!r}")
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(text)
    click.echo(f"roster of {first} to {last} written to {path}")
