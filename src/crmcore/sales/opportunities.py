"""Opportunities in detail: key participants, products of interest, milestones, totals.

Three entity types hang off an opportunity (declared in :mod:`crmcore.builtin.sales`):

- ``opportunity_contact``: a contact taking part in the deal, with their role (decision maker,
  economic buyer, champion, influencer...); a contact takes part once per opportunity;
- ``opportunity_line``: a product of interest (a product name or a description), its quantity
  and unit price; ``line_total`` is ``quantity × unit_price``, computed exactly (4 decimal
  places hold the product of 2 and 2) on every create and update;
- ``opportunity_milestone``: a named date in the deal (demo, proof of concept, signature),
  done or not.

These records follow their opportunity's access: an actor reads the lines, participants and
milestones of the opportunities it may read, and writes those of the opportunities it may
update (:func:`parent_restriction`, a restriction on the access predicate, so lists, counts
and aggregates agree with single-record checks).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import ValidationError
from crmcore.money import Money
from crmcore.security import Restriction
from crmcore.security.predicate import ALWAYS, NEVER, FieldIn, IdSet
from crmcore.storage import internal

if TYPE_CHECKING:
    from crmcore.records import Record
    from crmcore.security import AccessContext
    from crmcore.storage.uow import UnitOfWork

__all__ = [
    "CHILDREN",
    "PARTICIPANT_ROLES",
    "check_child",
    "line_changes",
    "line_totals",
    "parent_restriction",
]

#: The entity types that belong to an opportunity and follow its access.
CHILDREN = ("opportunity_contact", "opportunity_line", "opportunity_milestone")
#: The roles a contact plays in a deal.
PARTICIPANT_ROLES = (
    "decision_maker", "economic_buyer", "champion", "influencer", "technical_evaluator", "user", "blocker", "other",
)
_QUANTUM = decimal.Decimal("0.0001")


def line_changes(values: Mapping[str, Any]) -> dict[str, Any]:
    """The computed fields of an opportunity line with *values*: its ``line_total``.

    :raises ValidationError: for a line with neither product nor description.
    """
    if not values.get("product") and not values.get("description"):
        raise ValidationError(
            {"product": ["a line names a product or describes what is of interest (description)"]},
            entity="opportunity_line",
        )
    quantity, price = values.get("quantity"), values.get("unit_price")
    if quantity is None or price is None:
        return {"line_total": None}
    total = (quantity * price.amount).quantize(_QUANTUM)  # exact: 2 + 2 decimal places
    return {"line_total": Money(total, price.currency)}


def check_child(uow: UnitOfWork, entity: str, values: Mapping[str, Any], record: Record | None = None) -> None:
    """Checks of a participant, line or milestone about to be written: the actor may update
    the opportunity (for a new record, or one moved to another opportunity), and a contact
    takes part once per opportunity.

    :raises NotFoundError: for an opportunity the actor may not read.
    :raises PermissionDeniedError: for one it may not update.
    :raises ValidationError: for a contact already taking part.
    """
    opportunity_id = values.get("opportunity_id")
    moved = record is None or opportunity_id != record.values.get("opportunity_id")
    if opportunity_id is not None and moved and not uow.actor.is_system:
        uow.check_access(uow.get("opportunity", opportunity_id), "update")
    if entity != "opportunity_contact":
        return
    contact_id = values.get("contact_id")
    if record is not None and (opportunity_id, contact_id) == (record.values.get("opportunity_id"), record.values.get("contact_id")):
        return
    table = uow.registry.table(entity)
    statement = sa.select(table.c.id).where(table.c.opportunity_id == opportunity_id, table.c.contact_id == contact_id)
    if record is not None:
        statement = statement.where(table.c.id != record.id)
    taken = internal.execute(uow, statement.limit(1)).scalar()
    if taken is not None:
        raise ValidationError(
            {"contact_id": [f"contact {contact_id} already takes part in opportunity {opportunity_id} "
                            f"(opportunity_contact {taken}); change that record's role instead"]},
            entity=entity,
        )


def parent_restriction(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    """The restriction that makes *entity* (one of :data:`CHILDREN`) follow its opportunity:
    readable with a readable opportunity, writable with an updatable one."""
    if entity not in CHILDREN or context.is_system:
        return None
    needed = "read" if action in ("read", "export") else "update"
    predicate = context.predicate("opportunity", needed)
    if predicate == ALWAYS:
        return None
    reason = f"a {entity.replace('_', ' ')} follows its opportunity ({needed})"
    if predicate == NEVER:
        return [Restriction(NEVER, reason)]
    table = context.table("opportunity")
    ids = IdSet(query=sa.select(table.c.id).where(predicate.sql(table)), label=f"opportunities the actor may {needed}")
    return [Restriction(FieldIn("opportunity_id", ids), reason)]


def line_totals(uow: UnitOfWork, opportunity_id: int) -> list[Money]:
    """The sum of the line totals of an opportunity, one :class:`Money` per currency (exact),
    over the lines the actor may read."""
    rows = uow.query("opportunity_line").where(opportunity_id=opportunity_id).aggregate(sum=["line_total"])
    return [row["sum_line_total"] for row in rows if row["sum_line_total"] is not None]
