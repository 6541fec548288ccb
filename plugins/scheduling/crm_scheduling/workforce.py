"""Workforce figures: planned against actual hours per technician, utilisation and overtime,
and the weekly roster as CSV or iCalendar.

Planned hours are a technician's bookings in the period; actual hours are the labour lines of
the service plugin's work reports the technician's user did (``work_line.technician_id``) on
days of the period (``work_report.work_date``). Utilisation is actual over working hours
(calendar, holidays and absences applied); overtime is, day by day, the actual hours beyond
that day's working hours.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from crm_scheduling.intervals import clip, minutes
from crm_scheduling.resources import day_span, load_resources

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["Hours", "hours", "hours_table", "roster", "roster_csv", "roster_ics"]


@attrs.frozen
class Hours:
    """One technician's hours over a period."""

    resource_id: int
    name: str
    working: float
    planned: float
    actual: float
    overtime: float

    @property
    def utilisation(self) -> float:
        """Actual over working hours (0 without working hours)."""
        return self.actual / self.working if self.working else 0.0


def hours(uow: UnitOfWork, first: dt.date, last: dt.date) -> list[Hours]:
    """Planned, actual and overtime hours of every technician with a user, *first* to *last*."""
    resources = {r.id: r for r in load_resources(uow, first, last, kinds=("technician",)).values()
                 if r.user_id}
    by_user = {r.user_id: r.id for r in resources.values()}
    actual: dict[tuple[int, dt.date], Decimal] = {}
    if by_user:
        lines = uow.select("work_line", ("technician_id", "quantity", "report_id.work_date")).where(
            ("technician_id", "in", sorted(by_user)), line_type="labour").where(
            ("report_id.work_date", ">=", first), ("report_id.work_date", "<=", last)).all()
        for line in lines:
            key = (by_user[line["technician_id"]], line["report_id.work_date"])
            actual[key] = actual.get(key, Decimal(0)) + (line["quantity"] or Decimal(0))
    out = []
    for r in resources.values():
        working = planned = done = over = 0.0
        day = first
        while day <= last:
            lo, hi = day_span(day)
            today = minutes(clip(r.working, lo, hi)) / 60
            worked = float(actual.get((r.id, day), 0))
            working += today
            done += worked
            over += max(0.0, worked - today)
            planned += sum((min(b["ends_at"], hi) - max(b["starts_at"], lo)).total_seconds()
                           for b in r.bookings if b["starts_at"] < hi and b["ends_at"] > lo) / 3600
            day += dt.timedelta(days=1)
        out.append(Hours(r.id, r.name, working, planned, done, over))
    return sorted(out, key=lambda h: h.name)


def hours_table(rows: Sequence[Hours]) -> list[str]:
    """The rows as text."""
    out = [f"{'technician':<24} {'working':>8} {'planned':>8} {'actual':>8} {'overtime':>8} "
           f"{'utilised':>8}"]
    out += [f"{h.name[:24]:<24} {h.working:>8.1f} {h.planned:>8.1f} {h.actual:>8.1f} "
            f"{h.overtime:>8.1f} {h.utilisation:>8.0%}" for h in rows]
    return out


def roster(uow: UnitOfWork, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """The bookings from *first* to *last*, with their resource, order, customer and site."""
    return uow.select("booking", (
        "id", "resource_id.name", "starts_at", "ends_at", "travel_minutes", "order_id",
        "order_id.subject", "order_id.account_id.name", "order_id.site_address")).where(
        ("starts_at", "<", day_span(last)[1]), ("ends_at", ">", day_span(first)[0])).order_by(
        "resource_id.name", "starts_at").all()


def roster_csv(uow: UnitOfWork, first: dt.date, last: dt.date) -> str:
    """The roster as CSV: one row per booking."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["resource", "date", "start_utc", "end_utc", "travel_minutes", "order",
                     "subject", "customer", "site"])
    for r in roster(uow, first, last):
        writer.writerow([r["resource_id.name"], r["starts_at"].date().isoformat(),
                         f"{r['starts_at']:%H:%M}", f"{r['ends_at']:%H:%M}",
                         r["travel_minutes"] or 0, r["order_id"] or "", r["order_id.subject"] or "",
                         r["order_id.account_id.name"] or "",
                         " ".join((r["order_id.site_address"] or "").split())])
    return out.getvalue()


def _ics_text(value: str) -> str:
    return (value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\n", "\\n"))


def _fold(line: str) -> list[str]:
    data = line.encode()
    if len(data) <= 75:
        return [line]
    parts, current = [], ""
    for char in line:
        if len((current + char).encode()) > (75 if not parts else 74):
            parts.append(current)
            current = ""
        current += char
    parts.append(current)
    return [parts[0], *(" " + p for p in parts[1:])]


def roster_ics(uow: UnitOfWork, first: dt.date, last: dt.date, *,
               stamp: dt.datetime | None = None) -> str:
    """The roster as an iCalendar (RFC 5545) file: one event per booking."""
    stamp = stamp or dt.datetime.now(dt.UTC)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//crmcore//scheduling//EN",
             "CALSCALE:GREGORIAN"]
    for r in roster(uow, first, last):
        summary = f"{r['resource_id.name']}: order {r['order_id']} {r['order_id.subject'] or ''}"
        lines += ["BEGIN:VEVENT", f"UID:booking-{r['id']}@crm-scheduling",
                  f"DTSTAMP:{stamp:%Y%m%dT%H%M%SZ}", f"DTSTART:{r['starts_at']:%Y%m%dT%H%M%SZ}",
                  f"DTEND:{r['ends_at']:%Y%m%dT%H%M%SZ}", f"SUMMARY:{_ics_text(summary.strip())}"]
        where = " ".join((r["order_id.site_address"] or "").split())
        if where:
            lines.append(f"LOCATION:{_ics_text(where)}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "".join(f"{part}\r\n" for line in lines for part in _fold(line))
