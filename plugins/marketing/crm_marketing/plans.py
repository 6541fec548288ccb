"""Market plans monitored against actuals.

A plan (``market_plan``) has a period and a currency; its quantitative targets
(``plan_target``) are amounts and deal counts per product group (a catalog code, or a free
code without a catalog; empty for every group) × geography node (empty for everywhere) ×
period within the plan; its qualitative targets (``plan_goal``) are text with a status and an
assessment.

:func:`plan_report` compares each target with the actuals of its period, which come from the
``marketing_actuals`` hook (:mod:`crm_marketing.hookspecs`): an orders or billing plugin may
answer it; otherwise the plugin answers from won opportunities. Both targets and actuals roll
up the geography tree: a node's figure is its own plus its children's, so the children's
totals sum into their parent exactly, and an actual placed in a city counts for its region and
country. The report has a line for each node with a target and each of its ancestors.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import NotFoundError, ValidationError
from crmcore.money import Money

from crm_marketing.attribution import won_condition
from crm_marketing.geography import Tree, read_tree

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "DIMENSIONS", "PlanLine", "PlanReport", "actuals", "add_targets", "builtin_actuals", "distribute", "periods",
    "plan_named",
    "plan_report",
]

DIMENSIONS = ("product_group", "geography")
_MONTHS = {"year": 12, "quarter": 3, "month": 1}


def periods(start: dt.date, end: dt.date, kind: str) -> list[tuple[dt.date, dt.date]]:
    """The months, quarters or years from *start* (the first day of one) to *end*, as
    ``(first day, last day)`` pairs; the last one ends at *end*."""
    if kind not in _MONTHS:
        raise ValidationError({"period": [f"unknown period {kind!r}; use year, quarter or month"]})
    step = _MONTHS[kind]
    found = []
    first = start
    while first <= end:
        month = first.month - 1 + step
        following = dt.date(first.year + month // 12, month % 12 + 1, 1)
        found.append((first, min(end, following - dt.timedelta(days=1))))
        first = following
    return found


def plan_named(uow: UnitOfWork, ref: int | str | Record) -> Record:
    """The plan *ref* (a record, an id, or a name; a name first) as the actor may read it."""
    if not isinstance(ref, int | str):
        return uow.get("market_plan", ref.id)
    if isinstance(ref, int):
        return uow.get("market_plan", ref)
    found = uow.query("market_plan").where(name=ref).first()
    if found is None and ref.isdigit():
        return uow.get("market_plan", int(ref))
    if found is None:
        raise NotFoundError(f"no market plan named {ref!r}; crm marketing plan --list lists them")
    return found


def builtin_actuals(uow: UnitOfWork, period: tuple[dt.date, dt.date],
                    dimensions: Sequence[str]) -> list[dict[str, Any]]:
    """Actual revenue from won opportunities closed in *period*: each deal's
    ``product_group`` and its account's geography (one aggregate query)."""
    paths = {"product_group": "product_group", "geography": "account_id.geography_id"}
    groups = [paths[d] for d in DIMENSIONS if d in dimensions]
    select = uow.select("opportunity").where(won_condition(uow), ("close_date", ">=", period[0]),
                                             ("close_date", "<=", period[1]))
    if groups:
        select = select.group_by(*groups)
    rows = []
    for row in select.aggregate(sum=["amount"]):
        rows.append({"product_group": row.get("product_group"), "geography_id": row.get("account_id.geography_id"),
                     "amount": row["sum_amount"], "count": row["count"]})
    return rows


def actuals(uow: UnitOfWork, period: tuple[dt.date, dt.date],
            dimensions: Sequence[str] = DIMENSIONS) -> list[dict[str, Any]]:
    """The actuals of *period* from the ``marketing_actuals`` hook (the first answer)."""
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown:
        raise ValidationError({"dimensions": [f"unknown dimension {unknown[0]!r}; use {', '.join(DIMENSIONS)}"]})
    return list(uow.crm.hook.marketing_actuals(uow=uow, period=tuple(period), dimensions=tuple(dimensions)) or [])


@attrs.frozen
class _Figure:
    """An amount and a count that add up (the zero of a roll-up)."""

    amount: decimal.Decimal = decimal.Decimal(0)
    count: int = 0
    has_amount: bool = False
    has_count: bool = False

    def __add__(self, other: _Figure) -> _Figure:
        return _Figure(self.amount + other.amount, self.count + other.count,
                       self.has_amount or other.has_amount, self.has_count or other.has_count)


@attrs.frozen
class PlanLine:
    """One target line: a product group × geography node × period, targets and actuals rolled
    up the tree. ``target_amount``/``target_count`` are ``None`` where no target sets them."""

    product_group: str | None
    geography_id: int | None
    geography: str
    starts_on: dt.date
    ends_on: dt.date
    target_amount: Money | None
    target_count: int | None
    actual_amount: Money
    actual_count: int

    @property
    def variance(self) -> Money | None:
        return None if self.target_amount is None else self.actual_amount - self.target_amount

    @property
    def attainment(self) -> decimal.Decimal | None:
        """Actual over target amount, as a percentage (two decimals)."""
        if self.target_amount is None or not self.target_amount.amount:
            return None
        return (self.actual_amount.amount * 100 / self.target_amount.amount).quantize(decimal.Decimal("0.01"))


@attrs.frozen
class PlanReport:
    """A plan's lines and goals; ``other_currencies`` holds actuals not in the plan's currency
    (not compared), per currency."""

    plan: Record
    lines: list[PlanLine]
    goals: list[Record]
    other_currencies: dict[str, Money]

    def __repr__(self) -> str:
        return f"<PlanReport plan={self.plan.id} lines={len(self.lines)} goals={len(self.goals)}>"


def plan_report(uow: UnitOfWork, plan: int | str | Record) -> PlanReport:
    """Each target of *plan* against the actuals of its period, rolled up the geography tree
    (see the module docs)."""
    record = plan_named(uow, plan)
    currency = record.values["currency"]
    targets = uow.query("plan_target").where(plan_id=record.id).order_by("starts_on", "product_group", "id").all()
    goals = uow.query("plan_goal").where(plan_id=record.id).order_by("id").all()
    tree = read_tree(uow)
    groups: dict[tuple[Any, dt.date, dt.date], list[Record]] = defaultdict(list)
    for target in targets:
        v = target.values
        amount = v.get("amount")
        if amount is not None and amount.currency != currency:
            raise ValidationError({"amount": [f"plan_target {target.id} is in {amount.currency}, the plan in "
                                              f"{currency}; give targets in the plan's currency"]},
                                  entity="plan_target")
        groups[(v.get("product_group"), v["starts_on"], v["ends_on"])].append(target)
    lines: list[PlanLine] = []
    others: dict[str, Money] = {}
    answers: dict[tuple[dt.date, dt.date], list[dict[str, Any]]] = {}
    for (group, start, end), members in groups.items():
        if (start, end) not in answers:
            answers[(start, end)] = actuals(uow, (start, end))
        own_actual: dict[int | None, _Figure] = defaultdict(_Figure)
        everywhere = _Figure()
        for row in answers[(start, end)]:
            if group is not None and row.get("product_group") != group:
                continue
            amount = row.get("amount")
            if amount is not None and amount.currency != currency:
                others[amount.currency] = others.get(amount.currency, Money(0, amount.currency)) + amount
                amount = None
            value = amount.amount if amount is not None else decimal.Decimal(0)
            figure = _Figure(value, row.get("count") or 0, True, True)
            node = _placed(tree, row.get("geography_id"))
            own_actual[node] = own_actual[node] + figure
            everywhere = everywhere + figure
        own_target: dict[int | None, _Figure] = defaultdict(_Figure)
        for target in members:
            v = target.values
            own_target[v.get("geography_id")] = own_target[v.get("geography_id")] + _Figure(
                v["amount"].amount if v.get("amount") is not None else decimal.Decimal(0), v.get("count") or 0,
                v.get("amount") is not None, v.get("count") is not None)
        target_totals = tree.roll_up(own_target, _Figure())
        actual_totals = tree.roll_up(own_actual, _Figure())
        target_totals[None] = own_target.get(None, _Figure()) + sum(
            (target_totals[n] for n in tree.children.get(None, ())), _Figure())
        actual_totals[None] = everywhere
        shown: list[int | None] = []
        for node in own_target:
            for step in ([None] if node is None else [*reversed(tree.ancestors(node))]):
                if step not in shown:
                    shown.append(step)
        for node in _tree_order(tree, shown):
            t, a = target_totals.get(node, _Figure()), actual_totals.get(node, _Figure())
            lines.append(PlanLine(
                group, node, "everywhere" if node is None else tree.names.get(node, str(node)), start, end,
                Money(t.amount, currency) if t.has_amount else None, t.count if t.has_count else None,
                Money(a.amount, currency), a.count,
            ))
    return PlanReport(record, lines, goals, others)


def _placed(tree: Tree, node: int | None) -> int | None:
    return node if node in tree.parents else None


def _tree_order(tree: Tree, nodes: Sequence[int | None]) -> list[int | None]:
    """*nodes* parents first, siblings by id."""
    wanted = set(nodes)
    ordered: list[int | None] = [None] if None in wanted else []
    todo = list(reversed(tree.children.get(None, [])))
    while todo:
        node = todo.pop()
        if node in wanted:
            ordered.append(node)
        todo.extend(reversed(tree.children.get(node, [])))
    return ordered


def add_targets(uow: UnitOfWork, plan: Record, *, amount: Money | None = None, count: int | None = None,
                product_group: str | None = None, geography_id: int | None = None, by: str = "month",
                profile: Mapping[int, decimal.Decimal] | Sequence[decimal.Decimal] | None = None) -> list[Record]:
    """Spread a target over the plan's months, quarters (*by*) or the whole plan (``"plan"``):
    one ``plan_target`` per period, shares by *profile* (weights per period, evenly when
    ``None``), to the cent, with the cents left over going to the first periods so the shares
    sum to *amount* exactly (and the counts to *count*)."""
    v = plan.values
    spans = [(v["starts_on"], v["ends_on"])] if by == "plan" else periods(v["starts_on"], v["ends_on"], by)
    weights = list(profile) if profile is not None else [decimal.Decimal(1)] * len(spans)
    if len(weights) != len(spans) or any(w < 0 for w in weights) or not sum(weights):
        raise ValidationError({"profile": [f"expected {len(spans)} non-negative weights, not all zero, "
                                           f"got {weights!r}"]})
    amounts = distribute(int(amount.amount * 100), weights) if amount is not None else [None] * len(spans)
    counts = distribute(count, weights) if count is not None else [None] * len(spans)
    rows = []
    for (start, end), cents, n in zip(spans, amounts, counts, strict=True):
        rows.append({"plan_id": plan.id, "product_group": product_group, "geography_id": geography_id,
                     "starts_on": start, "ends_on": end, "count": n,
                     "amount": Money(decimal.Decimal(cents) / 100, amount.currency) if amount is not None else None})
    return uow.create_many("plan_target", rows)


def distribute(total: int, weights: Sequence[decimal.Decimal]) -> list[int]:
    """*total* units shared by *weights* (largest remainders), summing to *total* exactly."""
    whole = sum(weights)
    exact = [decimal.Decimal(total) * w / whole for w in weights]
    floors = [int(e) for e in exact]
    left = total - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors
