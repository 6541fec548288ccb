"""The summary that ends ``crm demo``: counts, the pipeline by stage, the forecast by quarter, the
reminders due per user, the top accounts and the timeline of one account.
"""

from __future__ import annotations

import decimal

import sqlalchemy as sa

from crmcore.app import Crm
from crmcore.demo.story import (
    Story,
    due_by_user,
    money_text,
)
from crmcore.money import Money
from crmcore.sales import weighted_pipeline

__all__ = ["stage_totals", "summary"]


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
    due = due_by_user(story)

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
        echo(f"  {stage:<16} {number:>5}  {money_text(total):>18}")
        if code and stage not in ("won", "lost") and total is not None:
            totals[code] = totals.get(code, decimal.Decimal(0)) + total.amount
    for code, value in totals.items():
        echo(f"  {'open pipeline':<16} {'':>5}  {money_text(Money(value, code)):>18}")

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
        echo(f"  {n}. {name:<24} {money_text(Money(total, code)):>18}  ({number} open)")

    if featured is not None:
        echo("")
        echo(f"Timeline of {featured.name} (latest {min(8, len(lines))} of {len(lines)} entries)")
        for line in lines[-8:]:
            echo("  " + (line if len(line) <= 110 else line[:109] + "…"))
