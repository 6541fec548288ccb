"""Business calendars as a builtin plugin: the ``business_calendar``, ``business_hours`` and
``business_holiday`` entity types (tables ``crm_business_calendar``, ``crm_business_hours``,
``crm_business_holiday``) that the help desk's SLA clocks, planned service and scheduling share,
and the check that a window closes after it opens.

They are records like any other (``crm list business_calendar``, imports, audit, permissions);
:func:`crmcore.calendars.load_calendars` turns them into
:class:`~crmcore.calendars.BusinessCalendar` values. A plugin that runs on calendars lists
``"core.calendars"`` in its ``requires``, so leaving this plugin out in ``[crm] disabled`` names
the plugins that need it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crmcore import EntityType
from crmcore.calendars import WEEKDAYS, ClockTime, TimeZoneName
from crmcore.errors import ValidationError
from crmcore.fields import Choice, Date, Field, Reference, String, Text
from crmcore.hookspecs import hookimpl
from crmcore.plugins import PluginInfo

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

PLUGIN = PluginInfo(
    name="core.calendars",
    title="Business calendars",
    description="Weekly hours, time zone and holidays shared by SLA clocks, planned service and scheduling.",
)

BUSINESS_CALENDAR = EntityType(
    "business_calendar",
    fields=(
        Field("name", String(100), required=True, unique=True),
        Field("timezone", TimeZoneName(), required=True, default="UTC",
              help="The IANA time zone its hours and holidays are written in."),
        Field("description", Text()),
    ),
    label="Business calendar",
    help="Working time: weekly hours (business_hours) in a time zone, and holidays (business_holiday).",
)

BUSINESS_HOURS = EntityType(
    "business_hours",
    fields=(
        Field("calendar_id", Reference("business_calendar", on_delete="cascade"), required=True,
              label="Calendar", index=True),
        Field("weekday", Choice(*WEEKDAYS), required=True),
        Field("opens", ClockTime(), required=True, help="Local time the window opens, '09:00'."),
        Field("closes", ClockTime(closing=True), required=True,
              help="Local time the window closes, '17:00'; '24:00' for midnight."),
    ),
    label="Business hours",
    plural="Business hours",
    title_field="weekday",
    help="One window of opening hours of a calendar on a weekday (several per day allowed).",
)

BUSINESS_HOLIDAY = EntityType(
    "business_holiday",
    fields=(
        Field("calendar_id", Reference("business_calendar", on_delete="cascade"), required=True,
              label="Calendar", index=True),
        Field("day", Date(), required=True, index=True, help="The local date without business hours."),
        Field("name", String(100)),
    ),
    label="Business holiday",
    title_field="name",
    help="A day on which a calendar has no working time.",
)

#: The entity types of this plugin.
ENTITIES = (BUSINESS_CALENDAR, BUSINESS_HOURS, BUSINESS_HOLIDAY)


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return list(ENTITIES)


def _check_hours(values: Mapping[str, Any]) -> None:
    opens, closes = values.get("opens"), values.get("closes")
    if opens is not None and closes is not None and closes <= opens:
        raise ValidationError(
            {"closes": [f"closes at {closes!r}, not after it opens at {opens!r}; "
                        "use two windows for hours past midnight"]},
            entity="business_hours",
        )


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> None:
    if entity == "business_hours":
        for values in items:
            _check_hours(values)


@hookimpl
def crm_before_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]) -> None:
    if entity == "business_hours":
        for record, changes in items:
            _check_hours({**record.values, **changes})
