"""``crm leads check|score|convert`` and ``crm forecast``.

Each command runs in one unit of work as :func:`crmcore.cli.current_actor`, so it sees and
changes what that actor may, and commits when it succeeds (``--dry-run`` shows what would be
written and writes nothing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import click
from crmcore.cli import current_actor, current_app, dump_record, echo_json
from crmcore.errors import ValidationError
from crmcore.query import parse_where

from crm_sales.conversion import convert_lead
from crm_sales.forecast import GROUPS, PERIODS, ForecastRow, history_forecast, weighted_pipeline
from crm_sales.leads import LeadCheck, check_leads
from crm_sales.scoring import score_leads

__all__ = ["forecast", "leads"]

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
_DRY = click.option("--dry-run", is_flag=True, help="Show the results without writing them.")


@click.group()
def leads() -> None:
    """Lead quality checks, scoring and conversion."""


@leads.command("check")
@click.argument("ids", nargs=-1, type=int)
@click.option("--unchecked", is_flag=True, help="Only leads never checked.")
@_DRY
@_JSON
def check_command(ids: tuple[int, ...], unchecked: bool, dry_run: bool, as_json: bool) -> None:
    """Check leads (IDS, or every lead you may update): contact information, e-mail and phone,
    disposable domains, duplicates. Stores the normalised e-mail and phone and the issues."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        results = check_leads(uow, list(ids) if ids else None, store=not dry_run, unchecked=unchecked)
        if not dry_run:
            uow.commit()
    if as_json:
        echo_json([_check_json(c) for c in results])
        return
    for check in results:
        if not check.ok:
            click.echo(f"lead {check.lead_id}: " + "; ".join(str(issue) for issue in check.issues))
    flagged = sum(1 for c in results if not c.ok)
    verb = "would be stored" if dry_run else "stored"
    click.echo(f"checked {len(results)} lead{'s' if len(results) != 1 else ''}: {len(results) - flagged} without issues, "
               f"{flagged} with issues ({verb})")


def _check_json(check: LeadCheck) -> dict[str, Any]:
    return {
        "lead_id": check.lead_id, "issues": [{"code": i.code, "field": i.field, "message": i.message} for i in check.issues],
        "email": check.email, "phone": check.phone, "duplicates": [{"entity": e, "id": i} for e, i in check.duplicates],
    }


@leads.command("score")
@click.argument("ids", nargs=-1, type=int)
@_DRY
@_JSON
def score_command(ids: tuple[int, ...], dry_run: bool, as_json: bool) -> None:
    """Score leads (IDS, or every lead you may update) with the rules of [sales.scoring]."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        results = score_leads(uow, list(ids) if ids else None, store=not dry_run)
        if not dry_run:
            uow.commit()
    if as_json:
        echo_json([{"lead_id": s.lead_id, "score": s.score, "temperature": s.temperature,
                    "previous_score": s.previous_score, "previous_temperature": s.previous_temperature} for s in results])
        return
    for result in results:
        if result.changed:
            before = f" (was {result.previous_score} {result.previous_temperature})" if result.previous_score is not None else ""
            click.echo(f"lead {result.lead_id}: {result.score} {result.temperature}{before}")
    counts = {t: sum(1 for s in results if s.temperature == t) for t in ("hot", "warm", "cold")}
    changed = sum(1 for s in results if s.changed)
    click.echo(f"scored {len(results)} lead{'s' if len(results) != 1 else ''}: {counts['hot']} hot, {counts['warm']} warm, "
               f"{counts['cold']} cold; {changed} changed")


@leads.command("convert")
@click.argument("lead_id", type=int)
@click.option("--opportunity", "name", metavar="NAME", help="Create an opportunity with this name.")
@click.option("--amount", metavar="AMOUNT", help="The opportunity's amount, such as '12000 EUR' (creates one).")
@click.option("--close-date", metavar="DATE", help="The opportunity's expected close date (creates one).")
@click.option("--account", "account_id", type=int, metavar="ID", help="Attach to this account instead of finding one.")
@_JSON
def convert_command(lead_id: int, name: str | None, amount: str | None, close_date: str | None,
                    account_id: int | None, as_json: bool) -> None:
    """Convert qualified lead LEAD_ID into an account, a contact and optionally an opportunity."""
    crm = current_app()
    opportunity = {k: v for k, v in (("name", name), ("amount", amount), ("close_date", close_date)) if v is not None}
    with crm.unit_of_work(current_actor()) as uow:
        conversion = convert_lead(uow, lead_id, opportunity=opportunity or None, account_id=account_id)
        uow.commit()
    if as_json:
        echo_json({
            "lead_id": conversion.lead_id,
            "account": dump_record(crm, conversion.account) if conversion.account is not None else None,
            "account_created": conversion.account_created,
            "contact": dump_record(crm, conversion.contact),
            "contact_created": conversion.contact_created,
            "opportunity": dump_record(crm, conversion.opportunity) if conversion.opportunity is not None else None,
        })
        return
    parts = []
    if conversion.account is not None:
        parts.append(f"account {conversion.account.id} {conversion.account.get('name', '')} "
                     f"({'new' if conversion.account_created else 'existing'})")
    contact = conversion.contact
    person = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p)
    parts.append(f"contact {contact.id} {person} ({'new' if conversion.contact_created else 'existing'})")
    if conversion.opportunity is not None:
        parts.append(f"opportunity {conversion.opportunity.id} {conversion.opportunity.get('name', '')}")
    click.echo(f"lead {lead_id} converted: " + ", ".join(parts))


@click.command("forecast")
@click.option("--period", type=click.Choice(PERIODS), default="month", show_default=True, help="Periods of the forecast.")
@click.option("--by", type=click.Choice(GROUPS), help="Group by owner, team or pipeline.")
@click.option("--history", is_flag=True, help="Forecast from past win rates and cycle times per stage.")
@click.option("--from", "start", metavar="DATE", help="Only opportunities (expected to be) closing on or after DATE.")
@click.option("--to", "end", metavar="DATE", help="Only opportunities closing on or before DATE.")
@click.option("--where", "where", multiple=True, metavar="EXPR", help="A filter such as 'amount>50000' (repeatable).")
@_JSON
def forecast(period: str, by: str | None, history: bool, start: str | None, end: str | None,
             where: tuple[str, ...], as_json: bool) -> None:
    """The weighted pipeline (amount × probability) of the opportunities you may read, per
    month or quarter of close date; with --history, expected wins from past win rates."""
    crm = current_app()
    conditions = [parse_where(text) for text in where]
    with crm.unit_of_work(current_actor()) as uow:
        first, last = _date(start, "--from"), _date(end, "--to")
        if history:
            result = history_forecast(uow, period=period, by=by, start=first, end=last, where=conditions)
            rows: Sequence[ForecastRow] = result.rows
        else:
            rows = weighted_pipeline(uow, period=period, by=by, start=first, end=last, where=conditions)
    if as_json:
        data: dict[str, Any] = {"period": period, "by": by, "history": history, "rows": [r.to_dict() for r in rows]}
        if history:
            data["stages"] = [
                {"pipeline": s.pipeline, "stage": s.stage, "closed": s.closed, "won": s.won,
                 "win_rate": None if s.win_rate is None else float(s.win_rate), "days_to_close": s.days_to_close,
                 "probability": s.probability, "used": s.closed >= result.min_history}
                for s in result.stages
            ]
        echo_json(data)
        return
    _table(rows, by, history)


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(f"{option} expects a date such as '2026-03-31', got {text!r}") from None


def _table(rows: Sequence[ForecastRow], by: str | None, history: bool) -> None:
    if not rows:
        click.echo("no open opportunities")
        return
    head = ["period", *([by] if by else []), "currency", "open", "pipeline", "expected" if history else "weighted",
            *([] if history else ["won"])]
    lines = []
    for row in rows:
        group = [row.label or (str(row.group) if row.group is not None else "-")] if by else []
        amounts = [row.amount, row.weighted, *([] if history else [row.won])]
        lines.append([row.period or "no date", *group, row.currency or "-", str(row.count),
                      *("" if m is None else str(m.amount) for m in amounts)])
    widths = [max(len(str(c)) for c in column) for column in zip(head, *lines, strict=True)]
    texts = [head, *lines]
    numeric = len(head) - (3 if history else 4)
    for cells in texts:
        click.echo("  ".join(c.ljust(w) if i < numeric else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip())
