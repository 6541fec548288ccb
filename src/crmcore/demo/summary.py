"""The summary that ends ``crm demo``: counts, the pipeline by stage, the parts plugins add
(``crm_demo_summary``: the sales plugin's forecast by quarter), the reminders due per user, the
top accounts and the timeline of one account. Every figure comes
from the unit of work's query API (counts, aggregates), so it applies the read predicate and
hidden fields of the actor (the demo's system actor sees everything).
"""

from __future__ import annotations

import decimal
from typing import TYPE_CHECKING

from crmcore.app import Crm
from crmcore.demo.story import (
    Story,
    due_by_user,
    money_text,
)
from crmcore.money import Money

if TYPE_CHECKING:
    from crmcore.storage.uow import UnitOfWork

__all__ = ["stage_totals", "summary"]


def stage_totals(crm: Crm) -> list[tuple[str, str | None, int, Money | None]]:
    """``(stage, currency, deals, amount)`` per stage and currency of the opportunities, in the
    order of the default pipeline's stages (the query API's aggregate, as the system sees it)."""
    stages = crm.workflow.defaults["opportunity"].stage_names
    with crm.unit_of_work() as uow:
        rows = uow.query("opportunity").aggregate(group_by=["stage"], sum=["amount"])
    found = [(r["stage"], r.get("amount_currency"), int(r["count"]), r.get("sum_amount")) for r in rows]
    return sorted(found, key=lambda r: (stages.index(r[0]) if r[0] in stages else len(stages), r[0] or "", r[1] or ""))


def _top_accounts(uow: UnitOfWork, limit: int = 5) -> list[tuple[int, str, int, Money]]:
    """``(account id, name, open deals, open amount)`` of the accounts with the largest open
    pipeline in one currency (the query API's aggregate, so what the actor may read)."""
    rows = (uow.query("opportunity").where(("stage", "not in", ["won", "lost"]))
            .aggregate(group_by=["account_id"], sum=["amount"]))
    rows = [r for r in rows if r["account_id"] is not None and r["sum_amount"] is not None]
    rows = sorted(rows, key=lambda r: (-r["sum_amount"].amount, r["account_id"]))[:limit]
    names = {a.id: a.get("name", "") for a in uow.get_many("account", [r["account_id"] for r in rows])}
    return [(r["account_id"], names[r["account_id"]], r["count"], r["sum_amount"]) for r in rows if r["account_id"] in names]


def summary(story: Story) -> None:
    """Counts per entity type, the pipeline by stage, the plugins' parts, the reminders due
    per user, the top accounts and one account's timeline."""
    from crmcore.cli import timeline_lines

    crm, echo = story.crm, story.echo
    registry = crm.registry
    by_stage = stage_totals(crm)
    with crm.unit_of_work() as uow:
        counts = [(entity.plural.lower(), uow.query(entity.name).count()) for entity in registry]
        top = _top_accounts(uow)
        featured = top[0] if top else None
        lines = timeline_lines(crm, uow, uow.timeline("account", featured[0])) if featured else []
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

    for part in crm.plugins.call_each("crm_demo_summary", crm=crm, story=story):
        echo("")
        for line in part.result:
            echo(line)

    echo("")
    echo("Reminders due (crm reminders --as USER)")
    if not due:
        echo("  none")
    for name, found in due.items():
        echo(f"  {name:<8} {len(found):>3}")

    echo("")
    echo("Top accounts by open pipeline")
    for n, (_, name, number, total) in enumerate(top, 1):
        echo(f"  {n}. {name:<24} {money_text(total):>18}  ({number} open)")

    if featured is not None:
        echo("")
        echo(f"Timeline of {featured[1]} (latest {min(8, len(lines))} of {len(lines)} entries)")
        for line in lines[-8:]:
            echo("  " + (line if len(line) <= 110 else line[:109] + "…"))
