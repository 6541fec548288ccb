"""Monthly service report: SLA attainment and customer satisfaction per agent and per queue.

For one calendar month (in the deployment's time zone):

- **response attainment**: of the tickets opened in the month whose first response target is
  settled, the share met;
- **resolution attainment**: of the tickets resolved in the month, the share resolved in time;
- **CSAT**: of the surveys answered in the month, the share scoring 4 or 5, and the average.

Agents are the tickets' assignees (a survey's agent is the assignee at resolution). The figures
come from three aggregate queries (:meth:`crmcore.query.Query.aggregate`), so they count only
the tickets and surveys the actor may read, and a field the report needs that is hidden from
the actor refuses the report as such a query would (:class:`~crmcore.errors.PermissionDeniedError`
naming the field). Agents and queues are named where the actor may read them (``#id`` else).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ValidationError

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["MonthlyReport", "ReportLine", "month_bounds", "monthly_report"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_bounds(month: str, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """The first instant of *month* (``"2026-03"``) and of the next one, in *tz*, as UTC.

    :raises ValidationError: for text that is not a month.
    """
    match = _MONTH.match(month.strip()) if isinstance(month, str) else None
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValidationError(f"expected a month such as '2026-03', got {month!r}")
    year, number = int(match.group(1)), int(match.group(2))
    start = dt.datetime(year, number, 1, tzinfo=tz)
    following = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(dt.UTC), following.astimezone(dt.UTC)


def _share(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


@attrs.frozen
class ReportLine:
    """The figures of one agent or queue (``key`` ``None``: unassigned, or no queue)."""

    key: int | None
    name: str
    opened: int = 0
    responses_met: int = 0
    responses_breached: int = 0
    resolved: int = 0
    resolutions_met: int = 0
    resolutions_breached: int = 0
    surveys: int = 0
    satisfied: int = 0
    average_score: float | None = None

    @property
    def response_attainment(self) -> float | None:
        """Percent of settled first responses that met their target."""
        return _share(self.responses_met, self.responses_met + self.responses_breached)

    @property
    def resolution_attainment(self) -> float | None:
        """Percent of resolutions (with a target) in time."""
        return _share(self.resolutions_met, self.resolutions_met + self.resolutions_breached)

    @property
    def csat(self) -> float | None:
        """Percent of answered surveys scoring 4 or 5."""
        return _share(self.satisfied, self.surveys)

    def to_dict(self) -> dict[str, Any]:
        return {
            **attrs.asdict(self),
            "response_attainment": self.response_attainment,
            "resolution_attainment": self.resolution_attainment,
            "csat": self.csat,
        }


@attrs.frozen
class MonthlyReport:
    """The report of one month: a line per agent, a line per queue, and the totals."""

    month: str
    agents: tuple[ReportLine, ...]
    queues: tuple[ReportLine, ...]
    total: ReportLine

    def to_dict(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "agents": [a.to_dict() for a in self.agents],
            "queues": [q.to_dict() for q in self.queues],
            "total": self.total.to_dict(),
        }


#: The figures of a report line read from each aggregate: (entity, time field, extra
#: condition, the field whose values split the count, {figure: values counted}).
_SOURCES: tuple[tuple[str, str, tuple[Any, ...], str, dict[str, tuple[Any, ...] | None]], ...] = (
    (
        "ticket",
        "opened_at",
        (),
        "response_status",
        {"opened": None, "responses_met": ("met",), "responses_breached": ("breached",)},
    ),
    (
        "ticket",
        "resolved_at",
        (),
        "resolution_status",
        {"resolved": None, "resolutions_met": ("met",), "resolutions_breached": ("breached",)},
    ),
    (
        "csat_survey",
        "answered_at",
        (("score", "is not null"),),
        "score",
        {"surveys": None, "satisfied": (4, 5)},
    ),
)
_KEYS = {"ticket": ("assignee_id", "queue_id"), "csat_survey": ("agent_id", "queue_id")}


def _figures(
    uow: UnitOfWork, start: dt.datetime, end: dt.datetime
) -> tuple[dict[Any, dict[str, Any]], dict[Any, dict[str, Any]], dict[str, Any]]:
    """``(per agent, per queue, total)`` figures, each ``{figure: value}``: one aggregate query
    per source, grouped by agent, queue and the field the figures split on."""
    agents: dict[Any, dict[str, Any]] = {}
    queues: dict[Any, dict[str, Any]] = {}
    total: dict[str, Any] = {}
    scores: dict[tuple[str, Any], list[int]] = {}  # (level, key) -> [sum of scores, count]
    for entity, moment, extra, split, counted in _SOURCES:
        agent_key, queue_key = _KEYS[entity]
        rows = (
            uow.query(entity)
            .where((moment, ">=", start), (moment, "<", end), *extra)
            .aggregate(group_by=[agent_key, queue_key, split])
        )
        for row in rows:
            n, value = row["count"], row[split]
            for level, key, figures in (
                ("agent", row[agent_key], agents.setdefault(row[agent_key], {})),
                ("queue", row[queue_key], queues.setdefault(row[queue_key], {})),
                ("total", None, total),
            ):
                for name, values in counted.items():
                    if values is None or value in values:
                        figures[name] = figures.get(name, 0) + n
                if split == "score":
                    held = scores.setdefault((level, key), [0, 0])
                    held[0] += int(value) * n
                    held[1] += n
    for (level, key), (summed, count) in scores.items():
        figures = total if level == "total" else (agents if level == "agent" else queues)[key]
        figures["average_score"] = _average(summed, count)
    return agents, queues, total


def _average(summed: int, count: int) -> decimal.Decimal:
    """The average as :meth:`crmcore.query.Query.aggregate` gives it for an integer field:
    the exact quotient rounded half-even to 2 places."""
    with decimal.localcontext() as context:
        context.prec = 60
        return (decimal.Decimal(summed) / count).quantize(
            decimal.Decimal("0.01"), rounding=decimal.ROUND_HALF_EVEN
        )


def _names(uow: UnitOfWork, entity: str, field: str, ids: list[int]) -> dict[int, str]:
    """The *field* of the records of *entity* the actor may read (where visible)."""
    found = uow.get_many(entity, ids) if ids else []
    return {r.id: str(r.values[field]) for r in found if r.values.get(field) is not None}


def _line(key: Any, name: str, values: dict[str, Any]) -> ReportLine:
    average = values.get("average_score")
    return ReportLine(
        key,
        name,
        *(
            int(values.get(f) or 0)
            for f in (
                "opened",
                "responses_met",
                "responses_breached",
                "resolved",
                "resolutions_met",
                "resolutions_breached",
                "surveys",
                "satisfied",
            )
        ),
        round(float(average), 2) if average is not None else None,
    )


def monthly_report(uow: UnitOfWork, month: str) -> MonthlyReport:
    """The service report of *month* (``"2026-03"``), over what the actor may read."""
    start, end = month_bounds(month, uow.registry.timezone or dt.UTC)
    agents, queues, total = _figures(uow, start, end)
    agent_names = _names(uow, "user", "username", [k for k in agents if k is not None])
    queue_names = _names(uow, "queue", "name", [k for k in queues if k is not None])

    def ordered(
        figures: dict[Any, dict[str, Any]], names: dict[int, str], empty: str
    ) -> tuple[ReportLine, ...]:
        lines = [
            _line(k, names.get(k, f"#{k}") if k is not None else empty, v)
            for k, v in figures.items()
        ]
        return tuple(sorted(lines, key=lambda line: (line.key is None, line.name)))

    return MonthlyReport(
        month.strip(),
        ordered(agents, agent_names, "(unassigned)"),
        ordered(queues, queue_names, "(no queue)"),
        _line(None, "total", total),
    )
