"""The entity types of the service plugin (tables ``service_<entity>``).

The installed base: ``location`` (a tree of sites and rooms of an account) and
``installed_unit`` (a piece of equipment with its serial number, product, place and parent
unit). A unit's product is its own fields (``product_code``, ``product_name``,
``product_group``), so the plugin runs without a catalog; a catalog plugin may fill them.
"""

from __future__ import annotations

from crmcore import EntityType, Field
from crmcore.fields import (
    Boolean,
    Choice,
    Date,
    DateTime,
    Decimal,
    Integer,
    MoneyType,
    Reference,
    String,
    Text,
)

from crm_service.fieldtypes import ClockTime, RecurrenceRule, TimeZoneName

__all__ = [
    "ACTIVITY_FIELDS",
    "DOCUMENT_FIELDS",
    "ENTITIES",
    "INSTALLED_UNIT",
    "LINE_TYPES",
    "LOCATION",
    "UNIT_STATUSES",
    "WARRANTY_KINDS",
    "WARRANTY_REGISTRATION",
    "WARRANTY_TERM",
    "CONTRACT_ITEM",
    "ENTITLEMENT_OVERRIDE",
    "ORDER_STAGES",
    "ORDER_TECHNICIAN",
    "ORDER_UNIT",
    "PLAN_EXCEPTION",
    "PLAN_OCCURRENCE",
    "PRIORITIES",
    "SLA_PENALTY",
    "SERVICE_PLAN",
    "WEEKDAYS",
    "SERVICE_ORDER",
    "WORK_LINE",
    "WORK_REPORT",
    "CONTRACT_STATUSES",
    "SERVICE_CONTRACT",
    "coverage_fields",
]

#: The kinds of service line the entitlement prices.
LINE_TYPES = ("labour", "parts", "travel")
#: A manufacturer's warranty, or one bought on top of it.
WARRANTY_KINDS = ("standard", "extended")
#: The states of a service contract (only ``active`` ones cover anything).
CONTRACT_STATUSES = ("draft", "active", "expired", "renewed", "cancelled")
#: Priorities of a service order, lowest first.
PRIORITIES = ("low", "normal", "high", "urgent")
#: Stages of the service order pipeline ``service.order``.
ORDER_STAGES = ("new", "scheduled", "in_progress", "done", "invoiced", "cancelled")
#: Weekdays, Monday first (``date.weekday()`` order).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: The states of an installed unit.
UNIT_STATUSES = ("active", "in_repair", "inactive", "scrapped")

LOCATION = EntityType(
    "location",
    fields=(
        Field("name", String(200), required=True),
        Field("account_id", Reference("account", on_delete="cascade"), label="Account"),
        Field(
            "parent_id",
            Reference("location", on_delete="cascade"),
            label="Inside",
            help="The location this one is part of (a building's floor, a floor's room).",
        ),
        Field("street", String(200)),
        Field("postal_code", String(20)),
        Field("city", String(100)),
        Field("country", String(100)),
    ),
    help="A customer site or a place inside one; locations form a tree.",
)

INSTALLED_UNIT = EntityType(
    "installed_unit",
    fields=(
        Field("serial_number", String(100), required=True, unique=True, aliases=("Serial",)),
        Field("product_code", String(64), required=True, index=True, aliases=("SKU",)),
        Field("product_name", String(200)),
        Field("product_group", String(64), index=True),
        Field("account_id", Reference("account", on_delete="restrict"), label="Account",
              index=True),
        Field("location_id", Reference("location", on_delete="set_null"), label="Location"),
        Field("site_address", Text(), help="Where the unit stands, when no location is kept."),
        Field(
            "parent_id",
            Reference("installed_unit", on_delete="set_null"),
            label="Part of",
            help="The unit this one is a component of.",
        ),
        Field("delivery_date", Date()),
        Field("install_date", Date()),
        Field("status", Choice(*UNIT_STATUSES), default="active", index=True),
    ),
    label="Unit",
    title_field="serial_number",
    help="A piece of equipment at a customer's site (an asset of the installed base).",
)



def coverage_fields(default: int = 0) -> tuple[Field, ...]:
    """The percentage covered per line type (``labour_pct``, ``parts_pct``, ``travel_pct``)."""
    return tuple(
        Field(
            f"{line_type}_pct",
            Integer(minimum=0, maximum=100),
            default=default,
            label=f"{line_type.capitalize()} covered %",
            help=f"Percent of {line_type} lines covered, 0 to 100.",
        )
        for line_type in LINE_TYPES
    )


WARRANTY_TERM = EntityType(
    "warranty_term",
    fields=(
        Field("name", String(100), required=True, unique=True),
        Field(
            "applies_to",
            Choice("product", "group"),
            default="product",
            required=True,
            help="Whether 'product' is a product code or a product group.",
        ),
        Field(
            "product",
            String(64),
            required=True,
            index=True,
            help="The product code (or product group) it applies to; a code's term wins.",
        ),
        Field("kind", Choice(*WARRANTY_KINDS), default="standard", required=True),
        Field("months", Integer(minimum=1, maximum=1200), required=True),
        Field(
            "starts_from",
            Choice("delivery", "installation"),
            default="installation",
            required=True,
            help="The event that starts a standard warranty.",
        ),
        *coverage_fields(100),
    ),
    help="What a warranty on a product (or product group) covers, and for how long.",
)

WARRANTY_REGISTRATION = EntityType(
    "warranty_registration",
    fields=(
        Field(
            "unit_id",
            Reference("installed_unit", on_delete="cascade"),
            required=True,
            label="Unit",
            index=True,
        ),
        Field("term_id", Reference("warranty_term", on_delete="restrict"), required=True,
              label="Term"),
        Field("kind", Choice(*WARRANTY_KINDS), default="standard", required=True),
        Field("starts_on", Date(), required=True),
        Field("ends_on", Date(), required=True, help="The last day covered."),
        *coverage_fields(0),
        Field("reference", String(100), help="A certificate or purchase number."),
    ),
    title_field="reference",
    help="A warranty stamped on a unit: its term's coverage, copied, for a span of days.",
)

SERVICE_CONTRACT = EntityType(
    "service_contract",
    fields=(
        Field("number", String(40), required=True, unique=True),
        Field("name", String(200)),
        Field("account_id", Reference("account", on_delete="restrict"), required=True,
              label="Account", index=True),
        Field("starts_on", Date(), required=True),
        Field("ends_on", Date(), required=True, index=True, help="The last day covered."),
        Field("status", Choice(*CONTRACT_STATUSES), default="active", required=True, index=True),
        *coverage_fields(0),
        Field(
            "sla_policy_id",
            Integer(minimum=1),
            label="SLA policy",
            help="The id of the help desk's SLA policy for the contract's tickets (with the "
            "help desk enabled).",
        ),
        Field("auto_renew", Boolean(), default=False,
              help="Renew for renewal_months when it ends, instead of expiring."),
        Field("renewal_months", Integer(minimum=1, maximum=120), default=12),
        Field("remind_days", Integer(minimum=0, maximum=365), default=30,
              help="Days before the end the owner gets a renewal reminder."),
        Field("reminded_on", Date(), read_only=True),
        Field("renewed_from_id", Reference("service_contract", on_delete="set_null"),
              label="Renews", read_only=True),
        Field("penalty_amount", MoneyType(),
              help="What one SLA breach costs (a service order's window missed, a ticket's "
              "target breached with the help desk)."),
        Field("fee", MoneyType(), help="The recurring fee billed per billing period."),
        Field("billing_period", Choice("monthly", "quarterly", "yearly"), default="monthly"),
        Field("billed_until", Date(), read_only=True,
              help="The last day the recurring fee was handed to billing for."),
    ),
    ownable=True,
    title_field="number",
    help="A service agreement: what it covers, for which units or sites, until when.",
)

CONTRACT_ITEM = EntityType(
    "contract_item",
    fields=(
        Field("contract_id", Reference("service_contract", on_delete="cascade"), required=True,
              label="Contract", index=True),
        Field("unit_id", Reference("installed_unit", on_delete="cascade"), label="Unit",
              index=True),
        Field("location_id", Reference("location", on_delete="cascade"), label="Site",
              index=True, help="Covers every unit at this location and the locations inside."),
    ),
    help="What a contract covers: one unit, or one site; neither covers every unit of the "
    "contract's account.",
)

ENTITLEMENT_OVERRIDE = EntityType(
    "entitlement_override",
    fields=(
        Field("unit_id", Reference("installed_unit", on_delete="cascade"), required=True,
              label="Unit", index=True),
        Field("line_type", Choice(*LINE_TYPES), help="The line type it decides; empty: all."),
        Field("valid_from", Date(), required=True),
        Field("valid_to", Date(), help="The last day it applies; empty: open-ended."),
        Field("percent", Integer(minimum=0, maximum=100), required=True,
              help="The percentage covered, whatever warranties and contracts say."),
        Field("reason", Text(), required=True),
    ),
    title_field="reason",
    help="A decision taken by hand on a unit's entitlement (needs the privilege "
    "service.entitlement_override.grant); it wins over warranties and contracts.",
)

SERVICE_ORDER = EntityType(
    "service_order",
    fields=(
        Field("subject", String(200), required=True),
        Field("account_id", Reference("account", on_delete="restrict"), required=True,
              label="Account", index=True),
        Field("contact_id", Reference("contact", on_delete="set_null"), label="Contact"),
        Field("problem", Text()),
        Field("priority", Choice(*PRIORITIES), default="normal", index=True),
        Field("window_start", DateTime(), help="When the visit may start."),
        Field("window_end", DateTime(), help="When the visit must be over."),
        Field("location_id", Reference("location", on_delete="set_null"), label="Site"),
        Field("site_address", Text()),
        Field("contract_id", Reference("service_contract", on_delete="set_null"),
              label="Contract"),
        Field("ticket_id", Integer(minimum=1), label="Ticket",
              help="The help desk ticket it came from (with the help desk enabled)."),
        Field("occurrence_id", Reference("plan_occurrence", on_delete="set_null"),
              label="Planned occurrence", read_only=True,
              help="The occurrence of a service plan it was generated for."),
        Field("status", Choice(*ORDER_STAGES), index=True,
              help="The stage in the pipeline service.order; moves follow its transitions."),
        Field("done_at", DateTime(), read_only=True, help="When the order entered done."),
    ),
    ownable=True,
    help="A visit to do work on units at a customer's site.",
)

ORDER_UNIT = EntityType(
    "order_unit",
    fields=(
        Field("order_id", Reference("service_order", on_delete="cascade"), required=True,
              label="Order", index=True),
        Field("unit_id", Reference("installed_unit", on_delete="cascade"), required=True,
              label="Unit", index=True),
    ),
    help="A unit a service order is about.",
)

ORDER_TECHNICIAN = EntityType(
    "order_technician",
    fields=(
        Field("order_id", Reference("service_order", on_delete="cascade"), required=True,
              label="Order", index=True),
        Field("user_id", Reference("user", on_delete="cascade"), required=True,
              label="Technician", index=True),
    ),
    help="A technician assigned to a service order.",
)

WORK_REPORT = EntityType(
    "work_report",
    fields=(
        Field("order_id", Reference("service_order", on_delete="cascade"), required=True,
              label="Order", index=True),
        Field("work_date", Date(), required=True, index=True,
              help="The day the work was done: the day its lines are priced for."),
        Field("notes", Text()),
        Field("signed_by", String(200), help="The name of the customer who signed it off."),
        Field("signed_at", DateTime()),
    ),
    title_field="work_date",
    help="What was done on a visit: time, parts, travel, notes and the customer's sign-off.",
)

WORK_LINE = EntityType(
    "work_line",
    fields=(
        Field("report_id", Reference("work_report", on_delete="cascade"), required=True,
              label="Work report", index=True),
        Field("order_id", Reference("service_order", on_delete="cascade"), label="Order",
              index=True, read_only=True),
        Field("unit_id", Reference("installed_unit", on_delete="restrict"), label="Unit",
              index=True),
        Field("line_type", Choice(*LINE_TYPES), required=True),
        Field("technician_id", Reference("user", on_delete="set_null"), label="Technician",
              index=True),
        Field("description", String(200)),
        Field("product_code", String(64), help="The part used (parts lines)."),
        Field("quantity", Decimal(scale=2), required=True,
              help="Hours (labour), pieces (parts) or kilometres (travel)."),
        Field("unit_price", MoneyType(),
              help="Default: the labour or travel rate, or the price a catalog gives a part."),
        Field("amount", MoneyType(), read_only=True, help="Quantity times unit price."),
        Field("covered_percent", Integer(minimum=0, maximum=100), read_only=True),
        Field("entitlement_source", String(80), read_only=True,
              help="The record that granted the coverage ('warranty_registration 3')."),
        Field("entitlement_reason", Text(), read_only=True),
        Field("charge", MoneyType(),
              help="What the customer pays; priced through the entitlement unless set by "
              "someone holding service.work_line.reprice, with a reason."),
        Field("charge_reason", Text(), help="Why the charge departs from the entitlement."),
        Field("invoice_ref", String(100), read_only=True),
    ),
    title_field="description",
    help="One line of a work report, priced through the unit's entitlement.",
)

SERVICE_PLAN = EntityType(
    "service_plan",
    fields=(
        Field("name", String(200), required=True),
        Field("account_id", Reference("account", on_delete="cascade"), required=True,
              label="Account", index=True),
        Field("contract_id", Reference("service_contract", on_delete="cascade"),
              label="Contract", index=True),
        Field("unit_id", Reference("installed_unit", on_delete="cascade"), label="Unit",
              index=True),
        Field("rule", RecurrenceRule(), required=True,
              help="RFC 5545 recurrence, e.g. 'FREQ=MONTHLY;BYMONTHDAY=1', with optional "
              "'EXDATE:20261224' lines."),
        Field("starts_on", Date(), required=True),
        Field("ends_on", Date(), help="The last day a visit may be planned on; empty: open."),
        Field("time_of_day", ClockTime(), required=True, default="09:00",
              help="The wall-clock time of the visits, in the plan's time zone."),
        Field("timezone", TimeZoneName(), required=True, default="UTC"),
        Field("duration_minutes", Integer(minimum=1, maximum=1440), default=120),
        Field("early_days", Integer(minimum=0, maximum=60), default=0,
              help="Days before the planned day a visit may happen."),
        Field("late_days", Integer(minimum=0, maximum=60), default=0,
              help="Days after the planned day a visit may still happen."),
        Field("horizon_days", Integer(minimum=1, maximum=3660),
              help="Days ahead occurrences are generated; empty: plan_horizon_days."),
        Field("calendar_id", Reference("business_calendar", on_delete="set_null"),
              label="Calendar",
              help="A business calendar (crmcore.calendars): its days without hours and its "
              "holidays are shifted off."),
        Field("shift", Choice("next", "previous", "none"), default="next", required=True,
              help="Where a visit falling on a holiday or a day off goes."),
        Field("create_orders", Boolean(), default=True,
              help="Open a scheduled service order for each occurrence."),
        Field("active", Boolean(), default=True, index=True),
    ),
    ownable=True,
    help="Planned (preventive) service: visits that recur by a rule, for a contract or unit.",
)

PLAN_EXCEPTION = EntityType(
    "plan_exception",
    fields=(
        Field("plan_id", Reference("service_plan", on_delete="cascade"), required=True,
              label="Plan", index=True),
        Field("day", Date(), required=True, help="The day the rule gives."),
        Field("action", Choice("skip", "move"), default="skip", required=True),
        Field("moved_to", Date(), help="The day a moved visit happens on."),
        Field("reason", Text()),
    ),
    title_field="day",
    help="One occurrence of a plan skipped or moved.",
)

PLAN_OCCURRENCE = EntityType(
    "plan_occurrence",
    fields=(
        Field("plan_id", Reference("service_plan", on_delete="cascade"), required=True,
              label="Plan", index=True),
        Field("key", String(40), unique=True, read_only=True,
              help="'<plan id>:<rule date>': one occurrence per plan and date."),
        Field("rule_date", Date(), required=True, index=True),
        Field("scheduled_on", Date(), required=True, index=True),
        Field("starts_at", DateTime()),
        Field("window_start", DateTime()),
        Field("window_end", DateTime()),
        Field("status", Choice("planned", "moved", "skipped"), default="planned"),
        Field("note", String(200)),
    ),
    title_field="key",
    auditable=False,
    help="A visit a plan generated, unique per plan and date (generated in bulk, not "
    "audited: its plan, exceptions and service order are).",
)

SLA_PENALTY = EntityType(
    "sla_penalty",
    fields=(
        Field("contract_id", Reference("service_contract", on_delete="cascade"), required=True,
              label="Contract", index=True),
        Field("order_id", Reference("service_order", on_delete="cascade"), label="Order"),
        Field("ticket_id", Integer(minimum=1), label="Ticket"),
        Field("kind", Choice("order_window", "ticket_response", "ticket_resolution"),
              required=True),
        Field("breached_at", DateTime(), required=True, index=True),
        Field("amount", MoneyType(), required=True),
        Field("key", String(60), unique=True, read_only=True,
              help="What breached ('order:12', 'ticket:5:response'): recorded once."),
    ),
    title_field="key",
    help="An SLA breach under a contract that declares a penalty, with the amount at stake.",
)

ENTITIES = (
    LOCATION,
    INSTALLED_UNIT,
    WARRANTY_TERM,
    WARRANTY_REGISTRATION,
    SERVICE_CONTRACT,
    CONTRACT_ITEM,
    ENTITLEMENT_OVERRIDE,
    SERVICE_ORDER,
    ORDER_UNIT,
    ORDER_TECHNICIAN,
    WORK_REPORT,
    WORK_LINE,
    SERVICE_PLAN,
    PLAN_EXCEPTION,
    PLAN_OCCURRENCE,
    SLA_PENALTY,
)

#: Added to the core's ``activity`` (column ``service_service_order_id``): a call or visit
#: about a service order shows in the order's timeline.
ACTIVITY_FIELDS = (
    Field("service_order_id", Reference("service_order", on_delete="set_null"),
          label="Service order"),
)

#: Added to the core's ``document`` (columns ``service_service_contract_id`` and
#: ``service_work_report_id``): contract documents and printed work reports attach there.
DOCUMENT_FIELDS = (
    Field("service_contract_id", Reference("service_contract", on_delete="set_null"),
          label="Service contract"),
    Field("work_report_id", Reference("work_report", on_delete="set_null"),
          label="Work report"),
)
