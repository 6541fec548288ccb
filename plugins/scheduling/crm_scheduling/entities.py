"""The scheduling plugin's entity types and the fields it adds to service orders.

Resources (technicians, who are users, and vehicles, rooms and tools), their skills, the
territories they work in (a tree of their own, each node optionally naming a node of the
marketing plugin's geography tree), their absences, the skills a service order needs, and the
bookings of a resource's time.

A resource works its shift (``day_start`` to ``day_end`` in its own time zone) within the hours
of a business calendar (the core's ``business_calendar``, :mod:`crmcore.calendars`, shared with
the help desk's SLA clocks and planned service): weekly hours, time zone and holidays; an absence
takes its span out of that.
"""

from __future__ import annotations

from crmcore import EntityType, Field
from crmcore.calendars import ClockTime, TimeZoneName
from crmcore.fields import (
    Boolean,
    Choice,
    DateTime,
    Decimal,
    Integer,
    MoneyType,
    Reference,
    String,
    Text,
)

from crm_scheduling.fieldtypes import BookingEnd, BookingStart, Level

__all__ = [
    "ABSENCE",
    "ACTIVITY_FIELDS",
    "BOOKING",
    "ENTITIES",
    "ORDER_FIELDS",
    "ORDER_SKILL",
    "RESOURCE",
    "RESOURCE_KINDS",
    "RESOURCE_SKILL",
    "TERRITORY",
]

RESOURCE_KINDS = ("technician", "vehicle", "room", "tool")
ABSENCE_KINDS = ("leave", "training", "sickness", "other")

TERRITORY = EntityType(
    "territory",
    fields=(
        Field("name", String(200), required=True, unique=True),
        Field("parent_id", Reference("territory", on_delete="restrict"), label="Parent",
              index=True),
        Field("geography_id", Integer(minimum=1), label="Geography", index=True,
              help="A node of the marketing plugin's geography tree (with marketing enabled): "
              "orders of accounts in that node or below it fall in this territory."),
    ),
    help="An area resources work in: a tree (a region holds its districts).",
)

RESOURCE = EntityType(
    "resource",
    fields=(
        Field("name", String(200), required=True, unique=True),
        Field("kind", Choice(*RESOURCE_KINDS), default="technician", required=True, index=True),
        Field("user_id", Reference("user", on_delete="set_null"), label="User", index=True,
              help="The user a technician is (their bookings land on their calendar)."),
        Field("team_id", Reference("team", on_delete="set_null"), label="Team", index=True),
        Field("territory_id", Reference("territory", on_delete="set_null"), label="Territory",
              index=True),
        Field("home_address", Text(), help="Where the resource starts and ends its day."),
        Field("home_latitude", Decimal(scale=6)),
        Field("home_longitude", Decimal(scale=6)),
        Field("calendar_id", Reference("business_calendar", on_delete="set_null"),
              label="Calendar", help="Opening hours and holidays its shift falls within; "
              "empty: Monday to Friday."),
        Field("day_start", ClockTime(), default="08:00",
              help="When its working day starts, in its time zone (empty: 08:00)."),
        Field("day_end", ClockTime(), default="17:00",
              help="When its working day ends, in its time zone (empty: 17:00)."),
        Field("timezone", TimeZoneName(), default="UTC", help="Empty: UTC."),
        Field("cost_per_hour", MoneyType()),
        Field("active", Boolean(), default=True, index=True),
    ),
    help="A technician, vehicle, room or tool whose time is planned.",
)

RESOURCE_SKILL = EntityType(
    "resource_skill",
    fields=(
        Field("resource_id", Reference("resource", on_delete="cascade"), required=True,
              label="Resource", index=True),
        Field("skill", String(64), required=True, index=True),
        Field("level", Level(), default=1, required=True,
              help="1 (beginner) to 5 (expert)."),
    ),
    title_field="skill",
    help="A skill a resource has, at a level.",
)

ABSENCE = EntityType(
    "absence",
    fields=(
        Field("resource_id", Reference("resource", on_delete="cascade"), required=True,
              label="Resource", index=True),
        Field("kind", Choice(*ABSENCE_KINDS), default="leave", required=True),
        Field("starts_at", DateTime(), required=True, index=True),
        Field("ends_at", DateTime(), required=True, index=True),
        Field("note", String(200)),
    ),
    title_field="kind",
    help="Time a resource does not work (leave, training): taken out of its calendar.",
)

ORDER_SKILL = EntityType(
    "order_skill",
    fields=(
        Field("order_id", Reference("service_order", on_delete="cascade"), required=True,
              label="Order", index=True),
        Field("skill", String(64), required=True),
        Field("min_level", Level(), default=1, required=True),
    ),
    title_field="skill",
    help="A skill a service order needs, at a minimum level.",
)

BOOKING = EntityType(
    "booking",
    fields=(
        Field("resource_id", Reference("resource", on_delete="cascade"), required=True,
              label="Resource", index=True),
        Field("order_id", Reference("service_order", on_delete="cascade"), label="Order",
              index=True),
        Field("activity_id", Reference("activity", on_delete="set_null"), label="Activity"),
        Field("starts_at", BookingStart(), required=True, index=True),
        Field("ends_at", BookingEnd(), required=True, index=True),
        Field("travel_minutes", Integer(minimum=0), default=0,
              help="Travel to the site before starts_at."),
        Field("note", Text(), help="Why this resource was chosen."),
        Field("conflict", Text(), read_only=True,
              help="The hard constraints it breaks since something it relies on changed (an "
              "absence, a skill, working hours, holidays, the order's window), one a line; "
              "empty: none. Set and cleared by the plugin on every such change."),
    ),
    title_field="starts_at",
    help="A span of a resource's time given to an order (or held by hand); no two bookings "
    "of one resource overlap.",
)

ORDER_FIELDS = (
    Field("duration_minutes", Integer(minimum=5, maximum=1440),
          help="Minutes of work on site; empty: the scheduling default."),
    Field("latitude", Decimal(scale=6), help="The site's latitude, for travel times."),
    Field("longitude", Decimal(scale=6), help="The site's longitude, for travel times."),
    Field("territory_id", Reference("territory", on_delete="set_null"), label="Territory"),
)

ACTIVITY_FIELDS = (
    Field("needs_technician", Boolean(), default=False, index=True,
          help="A technician must be found for it (a visit, a meeting on site): scheduling "
          "places it as demand at its own time and books the technician for it."),
)

ENTITIES = (TERRITORY, RESOURCE, RESOURCE_SKILL, ABSENCE, ORDER_SKILL, BOOKING)
