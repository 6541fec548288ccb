"""Forecasts: the weighted pipeline, and a forecast from past win rates and cycle times.

:func:`weighted_pipeline` adds up, per month or quarter of the expected close date and per
owner, team or pipeline, the open opportunities' amounts and their amounts weighted by their
probability (``amount × probability / 100``), and what was won. The figures of both forecasts
come from :meth:`crmcore.query.Query.aggregate` (amounts summed per close date, stage,
probability and group), so they count exactly the opportunities the actor may read, and a
field hidden from the actor (the amount, say) refuses the forecast with
:class:`~crmcore.errors.PermissionDeniedError` as it refuses any aggregate. Sums are exact,
one row per currency (amounts in different currencies are never added).

:func:`history_forecast` learns from the opportunities that closed: for each stage of each
pipeline, the share of the deals that passed through it and were won (its win rate) and the
median number of days from entering it to winning (its cycle time), read from the audit trail
of stage changes. It then expects each open opportunity to close after its stage's cycle time
(counted from when it entered the stage) with its stage's win rate as the chance, and adds up
``amount × win rate`` per period. A stage with fewer than ``[sales.forecast] min_history``
closed deals behind it falls back to the stage's declared probability and the opportunity's
own close date.

The team of an opportunity is its ``team_id`` when set, else its owner's team.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.errors import ValidationError
from crmcore.money import Money
from crmcore.sales.leads import sales_settings
from crmcore.storage import internal

if TYPE_CHECKING:
    from crmcore.query import Query
    from crmcore.storage.uow import UnitOfWork
    from crmcore.workflow.engine import Workflow

__all__ = [
    "GROUPS",
    "PERIODS",
    "ForecastRow",
    "HistoryForecast",
    "StageHistory",
    "history_forecast",
    "period_of",
    "stage_history",
    "weighted_pipeline",
]

PERIODS = ("month", "quarter")
GROUPS = ("owner", "team", "pipeline")


@attrs.frozen
class ForecastRow:
    """One period and group of a forecast, in one currency.

    :ivar period: ``"2026-03"`` (month) or ``"2026-Q1"`` (quarter); ``None`` for opportunities
        without a close date.
    :ivar group: the owner's or team's id, or the pipeline's name; ``None`` when not grouped
        (or for records without one).
    :ivar label: the owner's username, the team's or the pipeline's name.
    :ivar currency: the currency of the amounts (``None`` for opportunities without amount).
    :ivar count: open opportunities.
    :ivar amount: their total amount.
    :ivar weighted: the weighted pipeline (``amount × probability``), or for a history
        forecast ``amount × the stage's win rate``.
    :ivar won: the amount won in the period (weighted pipeline only).
    """

    period: str | None
    group: Any
    label: str | None
    currency: str | None
    count: int
    amount: Money | None
    weighted: Money | None
    won: Money | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible values (amounts as text)."""
        return {
            "period": self.period, "group": self.group, "label": self.label, "currency": self.currency,
            "count": self.count, **{name: None if (m := getattr(self, name)) is None else str(m.amount)
                                     for name in ("amount", "weighted", "won")},
        }


@attrs.frozen
class StageHistory:
    """What closed deals say about one stage.

    :ivar closed: closed deals that passed through the stage.
    :ivar won: how many of them were won.
    :ivar days_to_close: the median days from entering the stage to winning (``None`` without
        won deals).
    :ivar probability: the stage's declared probability, the fallback.
    """

    pipeline: str
    stage: str
    closed: int
    won: int
    days_to_close: float | None
    probability: int

    @property
    def win_rate(self) -> Fraction | None:
        return Fraction(self.won, self.closed) if self.closed else None


@attrs.frozen
class HistoryForecast:
    """A history-based forecast: its rows, and the stage history behind it."""

    rows: tuple[ForecastRow, ...]
    stages: tuple[StageHistory, ...]
    min_history: int


def period_of(day: dt.date | None, period: str) -> str | None:
    """``"2026-03"`` or ``"2026-Q1"`` for *day*."""
    if day is None:
        return None
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year}-{day.month:02d}"


def _check(period: str, by: str | None) -> None:
    if period not in PERIODS:
        raise ValidationError(f"period must be one of {', '.join(PERIODS)}, got {period!r}", entity="opportunity")
    if by is not None and by not in GROUPS:
        raise ValidationError(f"a forecast groups by {', '.join(GROUPS)}, got {by!r}", entity="opportunity")


def _stage_kinds(workflow: Workflow) -> tuple[dict[str, dict[str, str]], str]:
    """``{pipeline: {stage: kind}}`` of the opportunity pipelines, and the default one's name."""
    pipelines = workflow.by_entity.get("opportunity", [])
    if not pipelines:
        raise ValidationError("opportunities have no pipeline, so there is no forecast", entity="opportunity")
    return {p.name: {s.name: s.kind for s in p.stages} for p in pipelines}, workflow.defaults["opportunity"].name


def _base(uow: UnitOfWork, where: Iterable[Any], start: dt.date | None, end: dt.date | None) -> Query:
    query = uow.query("opportunity")
    for condition in where:
        query = query.where(condition)
    if start is not None:
        query = query.where(("close_date", ">=", start))
    if end is not None:
        query = query.where(("close_date", "<=", end))
    return query


def _kind_condition(kinds: Mapping[str, Mapping[str, str]], default: str, *wanted: str) -> dict[str, Any]:
    """A query condition: the opportunities in a stage of one of the *wanted* kinds (an empty
    pipeline is the default one)."""
    parts: list[Any] = []
    for name, stages in kinds.items():
        names = sorted(s for s, kind in stages.items() if kind in wanted)
        if not names:
            continue
        pipeline: Any = ("pipeline", "=", name)
        if name == default:
            pipeline = {"any": [pipeline, ("pipeline", "is null")]}
        parts.append({"all": [pipeline, ("stage", "in", names)]})
    return {"any": parts}


def _group_fields(by: str | None) -> list[str]:
    """The fields a forecast grouped *by* owner, team or pipeline groups the aggregate by."""
    if by == "owner":
        return ["owner_id"]
    if by == "team":
        return ["team_id", "owner_id"]
    return ["pipeline"] if by == "pipeline" else []


def _grouper(uow: UnitOfWork, by: str | None, default: str, rows: Sequence[Mapping[str, Any]]) -> Callable[[Mapping[str, Any]], Any]:
    """The group value of an aggregate row: its owner, its team (the opportunity's ``team_id``
    when set, else its owner's team) or its pipeline."""
    if by == "owner":
        return lambda row: row["owner_id"]
    if by == "pipeline":
        return lambda row: row["pipeline"] or default
    if by == "team":
        owners = sorted({row["owner_id"] for row in rows if row["team_id"] is None and row["owner_id"] is not None})
        teams: dict[Any, Any] = {}
        if owners:
            user = uow.registry.table("user")
            statement = sa.select(user.c.id, user.c.team_id).where(user.c.id.in_(owners))
            teams = {row[0]: row[1] for row in internal.execute(uow, statement)}
        return lambda row: row["team_id"] if row["team_id"] is not None else teams.get(row["owner_id"])
    return lambda row: None


def _units(money: Money | None, scale: int) -> int | None:
    """*money* in integer units of ``10**-scale``."""
    return None if money is None else int(money.amount.scaleb(scale))


def weighted_pipeline(
    uow: UnitOfWork,
    *,
    period: str = "month",
    by: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    where: Iterable[Any] = (),
) -> list[ForecastRow]:
    """The weighted pipeline per period of close date (and per owner, team or pipeline), of the
    opportunities the actor may read.

    The figures come from one :meth:`~crmcore.query.Query.aggregate` (amounts summed per close
    date, stage, probability and group), so the actor's read predicate and hidden fields apply
    exactly as they do to any aggregate.

    :param period: ``"month"`` or ``"quarter"``.
    :param by: ``"owner"``, ``"team"``, ``"pipeline"`` or ``None``.
    :param start: only opportunities closing on or after this day.
    :param end: only those closing on or before this day.
    :param where: further conditions, as :meth:`crmcore.query.Query.where` takes them.
    :returns: rows ordered by period (no date last), group and currency.
    :raises ValidationError: for an unknown period or grouping, or a bad condition.
    :raises PermissionDeniedError: when a field the forecast uses (amount, probability, stage,
        pipeline, close date, owner, team) is hidden from the actor.
    """
    _check(period, by)
    kinds, default = _stage_kinds(uow.crm.workflow)
    query = _base(uow, where, start, end).where(_kind_condition(kinds, default, "open", "won"))
    scale = uow.registry.entity("opportunity").field("amount").type.scale  # type: ignore[attr-defined]
    fields = list(dict.fromkeys(["close_date", "pipeline", "stage", "probability", *_group_fields(by)]))
    found = query.aggregate(group_by=fields, sum=["amount"])
    group_of = _grouper(uow, by, default, found)
    totals: dict[tuple[Any, ...], list[int]] = {}
    for row in found:
        key = (period_of(row["close_date"], period), group_of(row), row["amount_currency"])
        into = totals.setdefault(key, [0, 0, 0, 0, 0])  # count, amount, weighted, won, has won
        units = _units(row["sum_amount"], scale)
        if kinds[row["pipeline"] or default].get(row["stage"]) == "open":
            into[0] += row["count"]
            into[1] += units or 0
            into[2] += (units or 0) * (row["probability"] or 0)
        elif units is not None:
            into[3] += units
            into[4] = 1
    labels = _labels(uow, by, {key[1] for key in totals}, kinds)
    rows = []
    for (when, group_value, currency), (count, amount, weighted, won, has_won) in totals.items():
        if count == 0 and not has_won:
            continue
        rows.append(ForecastRow(
            when, group_value, labels.get(group_value), currency, count,
            _money(amount, scale, currency) if count else None,
            _money(weighted, scale + 2, currency, keep=scale) if count else None,
            _money(won, scale, currency) if has_won else None,
        ))
    return sorted(rows, key=_order)


def _money(units: int, scale: int, currency: str | None, *, keep: int | None = None) -> Money | None:
    """Exact money from integer *units* of ``10**-scale``; with *keep*, shown with *keep*
    places when that loses nothing."""
    if currency is None:
        return None
    value = decimal.Decimal(units).scaleb(-scale)
    if keep is not None and value == value.quantize(decimal.Decimal(1).scaleb(-keep)):
        value = value.quantize(decimal.Decimal(1).scaleb(-keep))
    return Money(value, currency)


def _order(row: ForecastRow) -> tuple[Any, ...]:
    return (row.period is None, row.period or "", row.group is None, str(row.group or ""), row.currency is None, row.currency or "")


def _labels(uow: UnitOfWork, by: str | None, values: set[Any], kinds: Mapping[str, Any]) -> dict[Any, str]:
    """Names of the groups: usernames, team names, pipeline labels."""
    values.discard(None)
    if not values or by is None:
        return {}
    if by == "pipeline":
        pipelines = uow.crm.workflow.pipelines
        return {name: pipelines[name].label or name for name in values if name in pipelines}
    entity, column = ("user", "username") if by == "owner" else ("team", "name")
    table = uow.registry.table(entity)
    statement = sa.select(table.c.id, table.c[column]).where(table.c.id.in_(sorted(values)))
    return {row[0]: row[1] for row in internal.execute(uow, statement)}


# -- history ------------------------------------------------------------------------------------


def stage_history(uow: UnitOfWork) -> list[StageHistory]:
    """Win rates and cycle times per stage, from the closed opportunities the actor may read
    (found with the query API, so its predicate and hidden fields apply) and the audit trail
    of their stage changes.

    :raises PermissionDeniedError: when the stage or pipeline is hidden from the actor.
    """
    kinds, default = _stage_kinds(uow.crm.workflow)
    closed = uow.query("opportunity").where(_kind_condition(kinds, default, "won", "lost"))
    final: dict[int, tuple[str, str]] = {
        row["id"]: (row["pipeline"] or default, row["stage"])
        for row in closed.aggregate(group_by=["id", "pipeline", "stage"], count=False)
    }
    visits: dict[tuple[str, str], list[tuple[bool, float | None]]] = {}
    uow.flush()
    audit = uow.crm.core_tables["audit"]
    record_ids = sorted(final)
    for start in range(0, len(record_ids), 1000):
        chunk = record_ids[start:start + 1000]
        statement = (
            sa.select(audit.c.record_id, audit.c.at, audit.c.changes)
            .where(audit.c.entity == "opportunity", audit.c.record_id.in_(chunk), audit.c.action.in_(("created", "updated")),
                   sa.cast(audit.c.changes, sa.Text()).like('%"stage"%'))
            .order_by(audit.c.record_id, audit.c.at, audit.c.id)
        )
        trail: dict[int, list[tuple[dt.datetime, str]]] = {}
        for record_id, at, changes in internal.execute(uow, statement):
            if isinstance(changes, str):
                changes = json.loads(changes)
            stage = (changes.get("stage") or (None, None))[1]
            if stage:
                trail.setdefault(record_id, []).append((at, stage))
        for record_id, entries in trail.items():
            pipeline, last = final[record_id]
            stages = kinds.get(pipeline, {})
            outcome = stages.get(last)
            closed_at = next((at for at, stage in reversed(entries) if stages.get(stage) in ("won", "lost")), None)
            entered: dict[str, dt.datetime] = {}
            for at, stage in entries:
                if stages.get(stage) == "open":
                    entered.setdefault(stage, at)
            for stage, at in entered.items():
                days = (closed_at - at).total_seconds() / 86400 if closed_at is not None and outcome == "won" else None
                visits.setdefault((pipeline, stage), []).append((outcome == "won", days))
    result = []
    for declared in uow.crm.workflow.by_entity["opportunity"]:
        for stage in declared.stages:
            if stage.kind != "open":
                continue
            seen = visits.get((declared.name, stage.name), [])
            durations = [days for won, days in seen if won and days is not None]
            result.append(StageHistory(
                declared.name, stage.name, len(seen), sum(1 for won, _ in seen if won),
                statistics.median(durations) if durations else None, stage.probability,
            ))
    return result


def history_forecast(
    uow: UnitOfWork,
    *,
    period: str = "month",
    by: str | None = None,
    today: dt.date | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    where: Iterable[Any] = (),
) -> HistoryForecast:
    """Expected wins of the open opportunities the actor may read, per period (and owner, team
    or pipeline), from the win rates and cycle times of :func:`stage_history`.

    :param today: the day the forecast is made (expected closes are never before it).
    :param start: only opportunities expected to close on or after this day.
    :param end: only those expected to close on or before this day.
    :returns: a :class:`HistoryForecast`; each row's ``weighted`` is the expected amount won,
        rounded half-even to the currency's cents once per row.
    :raises PermissionDeniedError: when a field the forecast uses is hidden from the actor (the
        figures come from :meth:`~crmcore.query.Query.aggregate`, as for
        :func:`weighted_pipeline`).
    """
    _check(period, by)
    today = today or dt.datetime.now(dt.UTC).date()
    minimum = sales_settings(uow).min_history
    kinds, default = _stage_kinds(uow.crm.workflow)
    history = {(h.pipeline, h.stage): h for h in stage_history(uow)}
    query = _base(uow, where, None, None).where(_kind_condition(kinds, default, "open"))
    scale = uow.registry.entity("opportunity").field("amount").type.scale  # type: ignore[attr-defined]
    fields = ["pipeline", "stage", "stage_entered_at", "created_at", "close_date", *_group_fields(by)]
    found = query.aggregate(group_by=list(dict.fromkeys(fields)), sum=["amount"])
    group_of = _grouper(uow, by, default, found)
    totals: dict[tuple[Any, ...], list[Any]] = {}
    for row in found:
        stage = history.get((row["pipeline"] or default, row["stage"]))
        learned = stage is not None and stage.closed >= minimum
        if learned:
            assert stage is not None
            rate = stage.win_rate or Fraction(0)
            if stage.days_to_close is not None:
                entered = row["stage_entered_at"] or row["created_at"]
                expected = max((entered + dt.timedelta(days=stage.days_to_close)).date(), today)
            else:
                expected = row["close_date"]
        else:
            rate = Fraction(stage.probability if stage is not None else 0, 100)
            expected = row["close_date"]
        if (start is not None or end is not None) and (
            expected is None or (start is not None and expected < start) or (end is not None and expected > end)
        ):
            continue
        key = (period_of(expected, period), group_of(row), row["amount_currency"])
        into = totals.setdefault(key, [0, 0, Fraction(0)])
        into[0] += row["count"]
        units = _units(row["sum_amount"], scale)
        if units is not None:
            into[1] += units
            into[2] += units * rate
    labels = _labels(uow, by, {key[1] for key in totals}, kinds)
    quantum = decimal.Decimal(1).scaleb(-scale)
    rows = []
    for (when, group_value, currency), (count, units, expected_units) in totals.items():
        with decimal.localcontext() as context:
            context.prec = 60
            expected_value = (decimal.Decimal(expected_units.numerator) / expected_units.denominator).scaleb(-scale)
        rows.append(ForecastRow(
            when, group_value, labels.get(group_value), currency, count, _money(units, scale, currency),
            None if currency is None else Money(expected_value.quantize(quantum, rounding=decimal.ROUND_HALF_EVEN), currency),
        ))
    return HistoryForecast(tuple(sorted(rows, key=_order)), tuple(history.values()), minimum)

