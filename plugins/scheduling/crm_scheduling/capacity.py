"""Capacity against demand for a period, by day and by week.

For each resource: the minutes it works (calendar and holidays, absences taken out), the
minutes it is absent, the minutes booked (bookings with their travel, and the activities its
user holds) and the minutes free. Summed per team, per skill (a resource counts for each skill
it has) and per territory, beside the demand: the minutes of open service orders and plan
occurrences whose window opens that day (per the skills they need and their territory; demand
already booked is counted as booked, not again as demand). Days are UTC days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ValidationError

from crm_scheduling.demand import load_demand
from crm_scheduling.intervals import clip, minutes, subtract
from crm_scheduling.resources import day_span, load_resources
from crm_scheduling.settings import SchedulingSettings

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["CapacityRow", "capacity", "chart", "free_time", "iso_week", "table"]


@attrs.frozen
class CapacityRow:
    """Minutes of one group (``team``, ``skill``, ``territory`` or ``resource``) in one period
    (an ISO day ``2027-01-18`` or week ``2027-W03``)."""

    period: str
    group: str
    name: str
    working: float
    absent: float
    booked: float
    free: float
    demand: float

    @property
    def load(self) -> float:
        """Booked and wanted time as a share of working time (0 without working time)."""
        return (self.booked + self.demand) / self.working if self.working else 0.0


def iso_week(text: str) -> tuple[dt.date, dt.date]:
    """The Monday and Sunday of an ISO week such as ``2027-W03``."""
    try:
        year, week = text.upper().split("-W")
        monday = dt.date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        raise ValidationError(f"expected an ISO week such as '2027-W03', got {text!r}") from None
    return monday, monday + dt.timedelta(days=6)


def free_time(uow: UnitOfWork, first: dt.date, last: dt.date) -> dict[int, list[Any]]:
    """``{resource id: [(start, end), ...]}``: the free working time from *first* to *last*."""
    lo, hi = day_span(first)[0], day_span(last)[1]
    return {r.id: clip(r.free, lo, hi)
            for r in load_resources(uow, first, last).values()}


def capacity(uow: UnitOfWork, first: dt.date, last: dt.date, *,
             by: str = "day") -> list[CapacityRow]:
    """Capacity and demand per resource, team, skill and territory, per day (or ``week``)."""
    settings = uow.crm.state(SchedulingSettings)
    resources = load_resources(uow, first, last)
    demand = [d for d in load_demand(uow, first, last, default_minutes=settings.default_duration)
              if not d.booked]
    teams = {r["id"]: r["name"] for r in uow.select("team", ("id", "name")).all()}
    places = {r["id"]: r["name"] for r in uow.select("territory", ("id", "name")).all()}
    sums: dict[tuple[str, str, str], list[float]] = {}

    def add(period: str, group: str, name: str, values: Sequence[float]) -> None:
        row = sums.setdefault((period, group, name), [0.0] * 5)
        for i, v in enumerate(values):
            row[i] += v

    day = first
    while day <= last:
        lo, hi = day_span(day)
        period = day.isoformat() if by == "day" else _week(day)
        for r in resources.values():
            working = clip(r.working, lo, hi)
            values = (minutes(working), minutes(clip(r.absent, lo, hi)),
                      minutes(clip(r.busy, lo, hi)),
                      minutes(subtract(working, r.busy)), 0.0)
            add(period, "resource", r.name, values)
            add(period, "team", teams.get(r.team_id, "(no team)"), values)
            add(period, "territory", places.get(r.territory_id, "(everywhere)"), values)
            for skill in r.skills:
                add(period, "skill", skill, values)
        for d in demand:
            if lo <= d.window_start < hi or (day == first and d.window_start < lo):
                wanted = (0.0, 0.0, 0.0, 0.0, float(d.minutes))
                add(period, "territory", places.get(d.territory_id, "(everywhere)"), wanted)
                add(period, "team", "(all teams)", wanted)
                for skill in d.skills:
                    add(period, "skill", skill, wanted)
        day += dt.timedelta(days=1)
    order = {"team": 0, "skill": 1, "territory": 2, "resource": 3}
    return [CapacityRow(p, g, n, *v) for (p, g, n), v in
            sorted(sums.items(), key=lambda kv: (kv[0][0], order[kv[0][1]], kv[0][2]))]


def _week(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def table(rows: Sequence[CapacityRow]) -> list[str]:
    """The rows as text, in hours."""
    out = [f"{'period':<10} {'group':<9} {'name':<24} {'work h':>7} {'absent':>7} "
           f"{'booked':>7} {'free':>7} {'demand':>7} {'load':>5}"]
    for r in rows:
        out.append(f"{r.period:<10} {r.group:<9} {r.name[:24]:<24} {r.working / 60:>7.1f} "
                   f"{r.absent / 60:>7.1f} {r.booked / 60:>7.1f} {r.free / 60:>7.1f} "
                   f"{r.demand / 60:>7.1f} {r.load:>5.0%}")
    return out


def chart(rows: Sequence[CapacityRow], path: str | Path, *, group: str = "team") -> Path:
    """A bar chart (PNG) of working, booked and wanted hours per *group* and period
    (matplotlib, the ``charts`` extra)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    chosen = [r for r in rows if r.group == group]
    labels = [f"{r.period}\n{r.name}" for r in chosen]
    x = range(len(chosen))
    figure, axes = pyplot.subplots(figsize=(max(6.0, len(chosen) * 0.9), 4.5))
    try:
        axes.bar([i - 0.27 for i in x], [r.working / 60 for r in chosen], 0.27, label="working")
        axes.bar(list(x), [r.booked / 60 for r in chosen], 0.27, label="booked")
        axes.bar([i + 0.27 for i in x], [r.demand / 60 for r in chosen], 0.27, label="demand")
        axes.set_xticks(list(x), labels, fontsize=7)
        axes.set_ylabel("hours")
        axes.set_title(f"Capacity against demand per {group}")
        axes.legend()
        figure.tight_layout()
        figure.savefig(path, format="png")
    finally:
        pyplot.close(figure)
    return Path(path)
