"""The calendar chapter of ``crm demo`` (``crm_demo``): a rep imports a daily stand-up from an
iCalendar file, imports it again (nothing new), and the agenda of its first week shows its
occurrences, expanded only for those days, at the same local time across the change of clocks."""

from __future__ import annotations

import datetime as dt
import importlib.resources
from typing import TYPE_CHECKING

from crm_calendar_sync.importer import import_calendar
from crm_calendar_sync.recurrence import occurrences
from crm_calendar_sync.timezones import zone

if TYPE_CHECKING:
    from crmcore.demo import Story

__all__ = ["SAMPLE", "tell"]

#: The bundled sample: a meeting every working day, exported from Google Calendar.
SAMPLE = "weekly_sync.ics"


def tell(story: Story) -> None:
    data = importlib.resources.files("crm_calendar_sync").joinpath("data", SAMPLE).read_bytes()
    username = next(iter(story.users))
    story.echo("")
    story.echo(f"Calendar: {username} imports {SAMPLE}, a stand-up every working day, from Google Calendar.")
    with story.crm.unit_of_work() as uow:
        first = import_calendar(uow, data, user=username, name=SAMPLE)
        again = import_calendar(uow, data, user=username, name=SAMPLE)
        series = uow.get("activity", first.activity_ids[0])
        start = series.starts_at.date()
        found = occurrences(uow, (start, start + dt.timedelta(days=6)), where={"id": series.id})
        uow.commit()
    story.echo(f"  first import: {first.line()}")
    story.echo(f"  same file again: {again.line()}")
    story.echo(f"  one activity, rule {series.rrule}, planned in {series.timezone}; its first week:")
    local = zone(series.timezone or "UTC") or dt.UTC
    for item in found:
        story.echo(f"    {item.starts_at.astimezone(local):%a %Y-%m-%d %H:%M %Z}  {item.subject}")
