"""Monthly service report: SLA attainment and customer satisfaction per agent and per queue.

For one calendar month (in the deployment's time zone):

- **response attainment**: of the tickets opened in the month whose first response target is
  settled, the share met;
- **resolution attainment**: of the tickets resolved in the month, the share resolved in time;
- **CSAT**: of the surveys answered in the month, the share scoring 4 or 5, and the average.

Agents are the tickets' assignees (a survey's agent is the assignee at resolution). Each figure
is one grouped SQL statement over the tickets (or surveys) the actor may read.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from crmcore.errors import ValidationError

if TYPE_CHECKING:
    from crmcore.storage.uow import UnitOfWork

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


def _count(condition: Any) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _figures(
    uow: UnitOfWork, start: dt.datetime, end: dt.datetime, by: str | None
) -> dict[Any, dict[str, Any]]:
    ticket, survey = uow.registry.table("ticket"), uow.registry.table("csat_survey")
    figures: dict[Any, dict[str, Any]] = {}

    def grouped(
        table: sa.Table, column: str, columns: dict[str, Any], condition: Any, entity: str
    ) -> None:
        key = table.c[column] if by is not None else sa.null()
        labelled = [expression.label(name) for name, expression in columns.items()]
        statement = sa.select(key.label("key"), *labelled).where(
            condition, uow.read_filter(entity, table)
        )
        if by is not None:
            statement = statement.group_by(table.c[column])
        for row in uow.connection.execute(statement).mappings():
            if by is None and not any(row[name] for name in columns):
                continue
            figures.setdefault(row["key"], {}).update({name: row[name] for name in columns})

    grouped(
        ticket,
        "assignee_id" if by == "agent" else "queue_id",
        {
            "opened": sa.func.count(),
            "responses_met": _count(ticket.c.response_status == "met"),
            "responses_breached": _count(ticket.c.response_status == "breached"),
        },
        sa.and_(ticket.c.opened_at >= start, ticket.c.opened_at < end),
        "ticket",
    )
    grouped(
        ticket,
        "assignee_id" if by == "agent" else "queue_id",
        {
            "resolved": sa.func.count(),
            "resolutions_met": _count(ticket.c.resolution_status == "met"),
            "resolutions_breached": _count(ticket.c.resolution_status == "breached"),
        },
        sa.and_(ticket.c.resolved_at >= start, ticket.c.resolved_at < end),
        "ticket",
    )
    grouped(
        survey,
        "agent_id" if by == "agent" else "queue_id",
        {
            "surveys": sa.func.count(),
            "satisfied": _count(survey.c.score >= 4),
            "average_score": sa.func.avg(survey.c.score),
        },
        sa.and_(
            survey.c.answered_at >= start, survey.c.answered_at < end, survey.c.score.is_not(None)
        ),
        "csat_survey",
    )
    return figures


def _names(uow: UnitOfWork, entity: str, column: str, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    table = uow.registry.table(entity)
    rows = uow.connection.execute(sa.select(table.c.id, table.c[column]).where(table.c.id.in_(ids)))
    return {row[0]: row[1] for row in rows}


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
    agents = _figures(uow, start, end, "agent")
    queues = _figures(uow, start, end, "queue")
    total = _figures(uow, start, end, None).get(None, {})
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
