"""Helpers of the calendar plugin's tests: the sample files and an app with the plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmcore import Crm

from crm_calendar_sync.importer import ImportSummary, import_calendar

DATA = Path(__file__).parent / "data"
SAMPLES = sorted(DATA.glob("*.ics"))
PLUGINS = ["calendar_sync"]


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def import_file(crm: Crm, name: str | bytes, *, user: Any = None, actor: Any = None, **options: Any) -> ImportSummary:
    data = sample(name) if isinstance(name, str) else name
    with crm.unit_of_work(actor) as uow:
        summary = import_calendar(uow, data, user=user, name=name if isinstance(name, str) else "calendar", **options)
        uow.commit()
    return summary


def activities(crm: Crm) -> list[Any]:
    with crm.unit_of_work() as uow:
        return uow.query("activity").order_by("id").all()
