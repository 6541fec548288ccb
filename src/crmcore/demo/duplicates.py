"""The duplicates chapter of ``crm demo``: an account entered twice is found, the merge is
planned, made (its help desk tickets and campaign members following, when those plugins run),
undone, and made again for good.

The duplicate is a second account with the name of a customer and a legal form, and the
customer's phone; one of the customer's tickets and one of its campaign members (alone in
their campaign run) are put on it, as if logged against the wrong record. Merging it into the
customer brings them back, so the story ends with the records it began with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crmcore.demo.story import Story
    from crmcore.merge import MergePlan
    from crmcore.records import Record
    from crmcore.storage.uow import UnitOfWork

__all__ = ["duplicates"]


def _moved(uow: UnitOfWork, kept: int, duplicate: int) -> list[str]:
    """Put one of *kept*'s tickets and campaign members on *duplicate*; what was put."""
    moved: list[str] = []
    if "ticket" in uow.registry:
        ticket = uow.query("ticket").where(account_id=kept).first()
        if ticket is not None:
            uow.update(ticket, account_id=duplicate)
            moved.append(f"ticket {ticket.id}")
    if "campaign_member" in uow.registry:
        for member in uow.query("campaign_member").where(account_id=kept).all():
            if uow.query("campaign_member").where(account_id=kept, run_id=member.run_id).count() == 1:
                changes: dict[str, Any] = {"account_id": duplicate}
                if member.member_entity == "account":
                    changes["member_id"] = duplicate
                uow.update(member, data=changes)
                moved.append(f"campaign member {member.id}")
                break
    return moved


def _customer(uow: UnitOfWork) -> Record | None:
    """An account with a phone, with tickets and campaign members if the plugins made some."""
    linked: set[int] | None = None
    for entity in ("ticket", "campaign_member"):
        if entity in uow.registry:
            rows = uow.select(entity, fields=("account_id",)).where(("account_id", "is not null")).all()
            found = {row["account_id"] for row in rows}
            linked = found if linked is None else (linked & found) or linked
    query = uow.query("account").where(("phone", "is not null"))
    if linked:
        query = query.where(("id", "in", sorted(linked)))
    return query.first()


def _plan_lines(plan: MergePlan) -> list[str]:
    return [f"    {r.name} ({r.strategy}): {r.count} moving" + (f", {r.merged_count} merged away" if r.merged_count else "")
            for r in plan.relations if r.count or r.merged_count]


def duplicates(story: Story) -> None:
    """An account entered twice: ``crm dedupe find`` finds it, ``crm merge --dry-run`` plans the
    merge, ``crm merge`` makes it (tickets and campaign members follow), ``crm merge undo``
    undoes it, and the merge is made again for good."""
    with story.crm.unit_of_work() as uow:
        customer = _customer(uow)
        if customer is None:
            return
        duplicate = uow.create("account", name=f"{customer.name} Inc.", phone=customer.phone,
                               industry=customer.get("industry"))
        moved = _moved(uow, customer.id, duplicate.id)
        uow.commit()
    shown = f"; {' and '.join(moved)} logged against it" if moved else ""
    story.echo(f"Duplicates: account {duplicate.id} {duplicate.name!r} is {customer.name!r} entered twice{shown}")
    with story.crm.unit_of_work() as uow:
        group = next(g for g in uow.find_duplicates("account", 0.8) if duplicate.id in g.ids)
        story.echo(f"  crm dedupe find account: {' '.join(map(str, group.ids))}  score {group.score:.2f} "
                   f"({', '.join(group.reasons)})")
        plan = uow.plan_merge("account", [duplicate.id], into=customer.id)
        story.echo(f"  crm merge account {customer.id} {duplicate.id} --into {customer.id} --dry-run:")
        for line in _plan_lines(plan):
            story.echo(line)
        first = uow.merge("account", [duplicate.id], into=customer.id)
        uow.commit()
    with story.crm.unit_of_work() as uow:
        resolved = uow.get("account", duplicate.id)
        story.echo(f"  crm merge: merge {first.merge_id}; account {duplicate.id} now resolves to {resolved.id} "
                   f"{resolved.name!r}, {first.plan.rows} rows moved")
        uow.undo_merge(first.merge_id)
        uow.commit()
    with story.crm.unit_of_work() as uow:
        back = uow.get("account", duplicate.id)
        story.echo(f"  crm merge undo {first.merge_id}: account {back.id} {back.name!r} is back with what was "
                   "logged against it")
        final = uow.merge("account", [duplicate.id], into=customer.id)
        uow.commit()
    story.echo(f"  merged again for good: merge {final.merge_id}")
