"""Opportunities in detail, and the sales fields of the core entities, as an essential builtin
plugin: the core keeps these entities whether or not the ``sales`` plugin is enabled.

Three entity types hang off an opportunity:

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

It also declares the fields the sales plugin (``plugins/sales``) fills: the lead's
``temperature``, ``quality_issues`` and ``checked_at``, the opportunity's ``customer_budget``
and ``team_id``, the account's ``domain``. They are data of the core entities (same columns
whichever plugins run); the logic that fills them is the plugin's.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore import Actor, EntityType
from crmcore.errors import ValidationError
from crmcore.fields import (
    Choice,
    Date,
    DateTime,
    Decimal,
    Field,
    Integer,
    MoneyType,
    MultiChoice,
    Reference,
    String,
    Text,
)
from crmcore.hookspecs import hookimpl
from crmcore.money import Money
from crmcore.plugins import PluginInfo
from crmcore.security import ALWAYS, NEVER, FieldIn, IdSet, Restriction

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record
    from crmcore.security import AccessContext

__all__ = [
    "CHILDREN",
    "LEAD_ISSUES",
    "LEAD_TEMPERATURES",
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
#: The lead's temperatures (set by the sales plugin's scoring).
LEAD_TEMPERATURES = ("hot", "warm", "cold")
#: What a lead check may find (set by the sales plugin's checks).
LEAD_ISSUES = (
    "no_contact", "invalid_email", "undeliverable_email", "disposable_email", "invalid_phone",
    "duplicate_lead", "duplicate_contact",
)
_QUANTUM = decimal.Decimal("0.0001")

def _child(name: str, *, fields: tuple[Field, ...], **options: Any) -> EntityType:
    """An entity type that belongs to an opportunity: its first field, ``opportunity_id``,
    names the opportunity (required; deleting the opportunity deletes it). Listed in
    :data:`CHILDREN`, its records follow the opportunity's access."""
    parent = Field("opportunity_id", Reference("opportunity", on_delete="cascade"), required=True, label="Opportunity")
    return EntityType(name, fields=(parent, *fields), **options)


PLUGIN = PluginInfo(
    name="core.opportunities",
    title="Opportunity details",
    description="Opportunity participants, lines and milestones; the sales fields of leads, opportunities and accounts.",
)

OPPORTUNITY_CONTACT = _child(
    "opportunity_contact",
    label="Opportunity contact",
    fields=(
        Field("contact_id", Reference("contact", on_delete="cascade"), required=True, label="Contact"),
        Field("role", Choice(*PARTICIPANT_ROLES), required=True, default="other",
              help="The part the contact plays in the deal."),
        Field("notes", Text()),
    ),
    title_field="role",
    help="A contact taking part in a deal, with their role: the key participants.",
)

OPPORTUNITY_LINE = _child(
    "opportunity_line",
    label="Opportunity line",
    fields=(
        Field("product", String(200), help="The product's name or code; a line names one or describes what is wanted."),
        Field("description", Text()),
        Field("quantity", Decimal(scale=2), required=True, default=1),
        Field("unit_price", MoneyType(), required=True),
        Field("line_total", MoneyType(scale=4), read_only=True, help="Quantity times unit price, exact; computed."),
        Field("position", Integer(), help="The line's place among the opportunity's lines."),
    ),
    title_field="product",
    help="A product of interest in a deal: quantity and unit price.",
)

OPPORTUNITY_MILESTONE = _child(
    "opportunity_milestone",
    label="Opportunity milestone",
    fields=(
        Field("name", String(200), required=True),
        Field("due_on", Date(), required=True, index=True),
        Field("done_on", Date(), help="When it was reached; empty while it is ahead."),
        Field("description", Text()),
    ),
    help="A dated step of a deal: demo, proof of concept, signature.",
)

LEAD_FIELDS = (
    Field("temperature", Choice(*LEAD_TEMPERATURES), read_only=True, index=True,
          help="Hot, warm or cold: the score against the thresholds of [sales.scoring]; set by scoring."),
    Field("quality_issues", MultiChoice(*LEAD_ISSUES), read_only=True,
          help="What the last check found: no_contact, invalid_email, disposable_email, duplicate_lead..."),
    Field("checked_at", DateTime(), read_only=True, help="When the lead was last checked (crm leads check)."),
)
OPPORTUNITY_FIELDS = (
    Field("customer_budget", MoneyType(), help="What the customer means to spend."),
    Field("team_id", Reference("team", on_delete="set_null"), label="Team",
          help="The team the deal counts for in forecasts; the owner's team when empty."),
)
ACCOUNT_FIELDS = (
    Field("domain", String(253), index=True,
          help="The company's internet domain; kept from the website or e-mail; converted leads match accounts by it."),
)


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return [OPPORTUNITY_CONTACT, OPPORTUNITY_LINE, OPPORTUNITY_MILESTONE]


@hookimpl
def crm_entity_fields(entity_type: str) -> list[Field] | None:
    return {"lead": list(LEAD_FIELDS), "opportunity": list(OPPORTUNITY_FIELDS), "account": list(ACCOUNT_FIELDS)}.get(entity_type)


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> list[dict[str, Any] | None] | None:
    if entity in CHILDREN:
        return [_new_child(uow, entity, values) for values in items]
    return None


def _new_child(uow: UnitOfWork, entity: str, values: dict[str, Any]) -> dict[str, Any] | None:
    check_child(uow, entity, values)
    return _line(uow, values) if entity == "opportunity_line" else None


@hookimpl
def crm_before_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]) -> list[dict[str, Any] | None] | None:
    if entity in CHILDREN:
        return [_changed_child(uow, entity, record, changes) for record, changes in items]
    return None


def _changed_child(uow: UnitOfWork, entity: str, record: Record, changes: dict[str, Any]) -> dict[str, Any] | None:
    merged = record.merged(changes)
    check_child(uow, entity, merged, record)
    return _line(uow, merged) if entity == "opportunity_line" else None


def _line(uow: UnitOfWork, values: dict[str, Any]) -> dict[str, Any]:
    quantity = values.get("quantity")
    if quantity is not None and quantity <= 0:
        raise ValidationError({"quantity": [f"must be more than 0, got {quantity}"]}, entity="opportunity_line")
    # a reference a plugin adds to the line (a catalog's product) names its product too
    linked = [f.name for f in uow.registry.entity("opportunity_line").fields if f.is_reference and f.name != "opportunity_id"]
    return line_changes(values, linked)


@hookimpl
def crm_access_restrictions(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    return parent_restriction(context, entity, action)


def line_changes(values: Mapping[str, Any], linked: Sequence[str] = ()) -> dict[str, Any]:
    """The computed fields of an opportunity line with *values*: its ``line_total``.

    :param linked: the line's reference fields that name a product too (a catalog plugin's
        ``product_id``).
    :raises ValidationError: for a line with neither product, a linked product nor description.
    """
    if not values.get("product") and not values.get("description") and not any(values.get(n) for n in linked):
        named = f" (product or {', '.join(linked)})" if linked else ""
        raise ValidationError(
            {"product": [f"a line names a product{named} or describes what is of interest (description)"]},
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
    with uow.acting_as(Actor.system()):  # a participant the actor may not read still takes part
        others = uow.select(entity, fields=("id",)).where(opportunity_id=opportunity_id, contact_id=contact_id)
        if record is not None:
            others = others.where(("id", "!=", record.id))
        found = others.limit(1).first()
    taken = found["id"] if found is not None else None
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
