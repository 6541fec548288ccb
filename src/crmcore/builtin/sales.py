"""The sales core as a builtin plugin: lead quality and scoring, conversion, opportunity
details and the forecast.

Declares the entity types ``opportunity_contact`` (key participants and their roles),
``opportunity_line`` (products of interest) and ``opportunity_milestone``; adds to the lead its
``temperature`` (hot, warm, cold), ``quality_issues`` and ``checked_at``, to the opportunity the
customer's budget and a team, to the account its internet ``domain`` (kept from its website or
e-mail, used to match converted leads). Reads the ``[sales]`` settings
(:mod:`crmcore.sales.settings`), keeps line totals and account domains up to date, makes
participants, lines and milestones follow their opportunity's access, and adds ``crm leads
check|score|convert`` and ``crm forecast``. The logic lives in :mod:`crmcore.sales`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import ConfigError, ValidationError
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
from crmcore.plugins import PluginInfo
from crmcore.registry import EntityType
from crmcore.sales import cli as sales_cli
from crmcore.sales.conversion import domain_of
from crmcore.sales.leads import check_records, sales_settings
from crmcore.sales.opportunities import (
    CHILDREN,
    PARTICIPANT_ROLES,
    check_child,
    line_changes,
    parent_restriction,
)
from crmcore.sales.scoring import score_records
from crmcore.sales.settings import ISSUES, TEMPERATURES, parse_sales_settings
from crmcore.storage import internal

if TYPE_CHECKING:
    import click

    from crmcore.app import Crm
    from crmcore.records import Record
    from crmcore.security import AccessContext, Restriction
    from crmcore.storage.uow import UnitOfWork

log = logging.getLogger(__name__)

PLUGIN = PluginInfo(
    name="core.sales",
    title="Sales",
    sections=("sales",),
    description="Lead checks and scoring, lead conversion, opportunity participants, lines and milestones, forecast.",
)

OPPORTUNITY_CONTACT = EntityType(
    "opportunity_contact",
    label="Opportunity contact",
    fields=(
        Field("opportunity_id", Reference("opportunity", on_delete="cascade"), required=True, label="Opportunity"),
        Field("contact_id", Reference("contact", on_delete="cascade"), required=True, label="Contact"),
        Field("role", Choice(*PARTICIPANT_ROLES), required=True, default="other",
              help="The part the contact plays in the deal."),
        Field("notes", Text()),
    ),
    title_field="role",
    help="A contact taking part in a deal, with their role: the key participants.",
)

OPPORTUNITY_LINE = EntityType(
    "opportunity_line",
    label="Opportunity line",
    fields=(
        Field("opportunity_id", Reference("opportunity", on_delete="cascade"), required=True, label="Opportunity"),
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

OPPORTUNITY_MILESTONE = EntityType(
    "opportunity_milestone",
    label="Opportunity milestone",
    fields=(
        Field("opportunity_id", Reference("opportunity", on_delete="cascade"), required=True, label="Opportunity"),
        Field("name", String(200), required=True),
        Field("due_on", Date(), required=True, index=True),
        Field("done_on", Date(), help="When it was reached; empty while it is ahead."),
        Field("description", Text()),
    ),
    help="A dated step of a deal: demo, proof of concept, signature.",
)

LEAD_FIELDS = (
    Field("temperature", Choice(*TEMPERATURES), read_only=True, index=True,
          help="Hot, warm or cold: the score against the thresholds of [sales.scoring]; set by scoring."),
    Field("quality_issues", MultiChoice(*ISSUES), read_only=True,
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
def crm_configure(crm: Crm) -> None:
    statuses = tuple(dict.fromkeys(s.name for p in crm.workflow.by_entity.get("lead", []) for s in p.stages))
    try:
        crm.set_state(parse_sales_settings(crm.settings.sections.get("sales"), crm.registry, lead_statuses=statuses))
    except ConfigError as exc:
        raise ConfigError(f"{crm.settings.source}: {exc}", path=crm.settings.path, key=exc.key) from None


# -- records ----------------------------------------------------------------------------------


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> list[dict[str, Any] | None] | None:
    if entity == "lead":
        if sales_settings(uow).require_contact:
            for values in items:
                if not values.get("email") and not values.get("phone"):
                    raise ValidationError({"email": ["a lead needs an e-mail address or a phone number ([sales] require_contact)"]},
                                          entity="lead")
        return None
    if entity == "account":
        free = sales_settings(uow).free_mail_domains
        return [_account_domain(values, free) for values in items]
    if entity in CHILDREN:
        return [_new_child(uow, entity, values) for values in items]
    return None


def _account_domain(values: dict[str, Any], free: Any) -> dict[str, Any] | None:
    if values.get("domain") is None:
        domain = domain_of(values.get("website"), values.get("email"), free=free)
        return {"domain": domain} if domain is not None else None
    return None


def _new_child(uow: UnitOfWork, entity: str, values: dict[str, Any]) -> dict[str, Any] | None:
    check_child(uow, entity, values)
    return _line(values) if entity == "opportunity_line" else None


@hookimpl
def crm_before_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]) -> list[Any] | None:
    if entity == "account" or entity in CHILDREN:
        return [_changed(uow, record, changes) for record, changes in items]
    return None


def _changed(uow: UnitOfWork, record: Record, changes: dict[str, Any]) -> dict[str, Any] | None:
    entity = record.entity
    if entity == "account" and ("website" in changes or "email" in changes) and "domain" not in changes:
        free = sales_settings(uow).free_mail_domains
        kept = domain_of(record.values.get("website"), record.values.get("email"), free=free)
        if record.values.get("domain") in (None, kept):  # derived before, so derived again
            merged = record.merged(changes)
            return {"domain": domain_of(merged.get("website"), merged.get("email"), free=free)}
        return None
    if entity in CHILDREN:
        merged = record.merged(changes)
        check_child(uow, entity, merged, record)
        if entity == "opportunity_line":
            return _line(merged)
    return None


def _line(values: dict[str, Any]) -> dict[str, Any]:
    quantity = values.get("quantity")
    if quantity is not None and quantity <= 0:
        raise ValidationError({"quantity": [f"must be more than 0, got {quantity}"]}, entity="opportunity_line")
    return line_changes(values)


@hookimpl
def crm_before_commit(uow: UnitOfWork) -> None:
    limit = sales_settings(uow).check_on_commit
    if limit <= 0:
        return
    leads: set[int] = set()
    activities: set[int] = set()
    for change in uow.changes:
        if change.entity == "lead" and change.action != "deleted":
            leads.add(change.id)
        elif change.entity == "activity" and change.action != "deleted":
            activities.add(change.id)
    if len(leads) > limit:
        log.info("%d leads were created or changed; left for 'crm leads check' (check_on_commit = %d)", len(leads), limit)
        return
    scored = set(leads)
    if activities:
        table = uow.registry.table("activity")
        chunk = sorted(activities)[: limit * 10]
        scored |= {r[0] for r in internal.execute(uow, sa.select(table.c.lead_id).where(table.c.id.in_(chunk), table.c.lead_id.is_not(None)))}
    if not scored or len(scored) > limit:
        return
    checked = _full_leads(uow, leads)
    if checked:
        check_records(uow, checked, store=True)
    score_records(uow, _full_leads(uow, scored), store=True)


def _full_leads(uow: UnitOfWork, ids: set[int]) -> list[Record]:
    """The full records of the leads *ids* that still exist (bookkeeping reads every field)."""
    if not ids:
        return []
    etype = uow.registry.entity("lead")
    table = uow.registry.table("lead")
    rows = internal.execute(uow, sa.select(table).where(table.c.id.in_(sorted(ids))).order_by(table.c.id)).mappings()
    return [internal.row_of(uow, etype, row, full=True) for row in rows]


# -- access ------------------------------------------------------------------------------------


@hookimpl
def crm_access_restrictions(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    return parent_restriction(context, entity, action)


# -- command line ------------------------------------------------------------------------------


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    return [sales_cli.leads, sales_cli.forecast]
