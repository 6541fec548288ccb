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

from crm_marketing import actuals as _actuals
from crm_marketing.actuals import MEASURES
from crm_marketing.geography import Tree, read_tree

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "BY_DIMENSIONS", "DIMENSIONS", "MEASURES", "TARGET_FIELDS", "PlanLine", "PlanReport", "actuals", "add_targets",
    "builtin_actuals",
    "distribute", "periods", "plan_named", "plan_report", "plan_summary",
]

DIMENSIONS = ("product_group", "geography", "owner")
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


def builtin_actuals(uow: UnitOfWork, period: tuple[dt.date, dt.date], dimensions: Sequence[str],
                    accounts: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Actual revenue from won opportunities closed in *period*: each deal's
    ``product_group``, its account's geography and its owner (one aggregate query)."""
    return _actuals.builtin_actuals(uow, period, dimensions, accounts)


def actuals(uow: UnitOfWork, period: tuple[dt.date, dt.date], dimensions: Sequence[str] = DIMENSIONS,
            accounts: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """The revenue actuals of *period* from the ``marketing_actuals`` hook (the first answer)."""
    unknown = [d for d in dimensions if d not in DIMENSIONS]
    if unknown:
        raise ValidationError({"dimensions": [f"unknown dimension {unknown[0]!r}; use {', '.join(DIMENSIONS)}"]})
    return list(uow.crm.hook.marketing_actuals(uow=uow, period=tuple(period), dimensions=tuple(dimensions),
                                               accounts=None if accounts is None else list(accounts)) or [])


_ZERO = {"revenue": decimal.Decimal(0), "quantity": decimal.Decimal(0)}


@attrs.frozen
class _Figures:
    """Figures per measure that add up (the zero of a roll-up); a measure no part sets is
    absent."""

    values: Mapping[str, Any] = attrs.field(factory=dict)

    def __add__(self, other: _Figures) -> _Figures:
        if not other.values:
            return self
        if not self.values:
            return other
        merged = dict(self.values)
        for measure, value in other.values.items():
            merged[measure] = merged[measure] + value if measure in merged else value
        return _Figures(merged)


_NONE = _Figures()


@attrs.frozen
class PlanLine:
    """One line of a plan report: a product group × geography node × segment × owner × period,
    targets and actuals rolled up the geography tree. ``target_amount``/``target_count`` are
    ``None`` where no target sets them; the other measures are in :attr:`targets` and
    :attr:`actuals` (``{measure: value}``, a measure only when some target of the line sets it)."""

    product_group: str | None
    geography_id: int | None
    geography: str
    starts_on: dt.date
    ends_on: dt.date
    target_amount: Money | None
    target_count: int | None
    actual_amount: Money
    actual_count: int
    segment_id: int | None = None
    user_id: int | None = None
    team_id: int | None = None
    targets: Mapping[str, Any] = attrs.field(factory=dict)
    actuals: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def variance(self) -> Money | None:
        return None if self.target_amount is None else self.actual_amount - self.target_amount

    @property
    def attainment(self) -> decimal.Decimal | None:
        """Actual over target amount, as a percentage (two decimals)."""
        if self.target_amount is None or not self.target_amount.amount:
            return None
        return (self.actual_amount.amount * 100 / self.target_amount.amount).quantize(decimal.Decimal("0.01"))

    def attainment_of(self, measure: str) -> decimal.Decimal | None:
        """Actual over target of *measure* (``quantity``, ``leads``...), as a percentage."""
        target = self.targets.get(measure)
        if not target:
            return None
        actual = self.actuals.get(measure) or 0
        return (decimal.Decimal(actual) * 100 / decimal.Decimal(target)).quantize(decimal.Decimal("0.01"))


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


#: The target field of each measure.
TARGET_FIELDS = {"revenue": "amount", "won_deals": "count", "quantity": "quantity", "new_accounts": "new_accounts",
                 "leads": "leads", "visits": "visits", "calls": "calls"}
_EXTRA = MEASURES[2:]
_TARGET_READ = ("id", "product_group", "geography_id", "segment_id", "user_id", "team_id", "starts_on", "ends_on",
                *TARGET_FIELDS.values())


def plan_report(uow: UnitOfWork, plan: int | str | Record) -> PlanReport:
    """Each target of *plan* against the actuals of its period (see the module docs).

    Targets with the same product group, segment, owner and period form a slice; within it,
    targets and actuals roll up the geography tree. Actuals are read once for the whole plan
    (:mod:`crm_marketing.actuals`): a query per source of the measures the targets set.
    """
    record = plan_named(uow, plan)
    currency = record.values["currency"]
    targets = (uow.select("plan_target", fields=_TARGET_READ).where(plan_id=record.id)
               .order_by("starts_on", "product_group", "id").all())
    goals = uow.query("plan_goal").where(plan_id=record.id).order_by("id").all()
    tree = read_tree(uow)
    slices: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for target in targets:
        amount = target.get("amount")
        if amount is not None and amount.currency != currency:
            raise ValidationError({"amount": [f"plan_target {target['id']} is in {amount.currency}, the plan in "
                                              f"{currency}; give targets in the plan's currency"]},
                                  entity="plan_target")
        slices[(target["product_group"], target["segment_id"], target["user_id"], target["team_id"],
                target["starts_on"], target["ends_on"])].append(target)
    spans = sorted({(key[4], key[5]) for key in slices})
    span_index = {span: i for i, span in enumerate(spans)}
    measures = ["revenue", "won_deals", *(m for m in _EXTRA if any(t.get(TARGET_FIELDS[m]) is not None
                                                                     for t in targets))]
    dimensions = ["geography"]
    if any(key[0] is not None for key in slices):
        dimensions.append("product_group")
    if any(key[2] is not None or key[3] is not None for key in slices):
        dimensions.append("owner")
    others: dict[str, Money] = {}
    facts_of: dict[int | None, dict[int, list[_actuals.Fact]]] = {}
    for segment_id in dict.fromkeys(key[1] for key in slices):
        segment = None if segment_id is None else _actuals.segment_members(uow, segment_id)
        found = _read_facts(uow, record, spans, measures, currency, dimensions, segment,
                            others if segment_id is None else {})
        by_span: dict[int, list[_actuals.Fact]] = defaultdict(list)
        for fact in found:
            by_span[fact.period].append(fact)
        facts_of[segment_id] = by_span
    groups = _group_codes(uow) if "product_group" in dimensions else {}
    teams = ({u["id"]: u["team_id"] for u in uow.select("user", fields=("id", "team_id")).all()}
             if "owner" in dimensions else {})
    lines: list[PlanLine] = []
    for (group, segment_id, user_id, team_id, start, end), members in slices.items():
        codes = groups.get(group, {group}) if group is not None else None
        own_actual: dict[int | None, _Figures] = defaultdict(_Figures)
        everywhere = _NONE
        for fact in facts_of[segment_id].get(span_index[(start, end)], ()):
            if codes is not None and fact.product_group not in codes:
                continue
            if user_id is not None and fact.owner_id != user_id:
                continue
            if team_id is not None and teams.get(fact.owner_id) != team_id:
                continue
            figures = _Figures(fact.values)
            node = _placed(tree, fact.geography_id)
            own_actual[node] = own_actual[node] + figures
            everywhere = everywhere + figures
        own_target: dict[int | None, _Figures] = defaultdict(_Figures)
        for target in members:
            set_values = {m: (target[f].amount if m == "revenue" else target[f])
                          for m, f in TARGET_FIELDS.items() if target.get(f) is not None}
            own_target[target["geography_id"]] = own_target[target["geography_id"]] + _Figures(set_values)
        target_totals = tree.roll_up(own_target, _NONE)
        actual_totals = tree.roll_up(own_actual, _NONE)
        target_totals[None] = own_target.get(None, _NONE) + sum(
            (target_totals[n] for n in tree.children.get(None, ())), _NONE)
        actual_totals[None] = everywhere
        shown: list[int | None] = []
        for node in own_target:
            for step in ([None] if node is None else [*reversed(tree.ancestors(node))]):
                if step not in shown:
                    shown.append(step)
        for node in _tree_order(tree, shown):
            t, a = target_totals.get(node, _NONE).values, actual_totals.get(node, _NONE).values
            lines.append(PlanLine(
                group, node, "everywhere" if node is None else tree.names.get(node, str(node)), start, end,
                Money(t["revenue"], currency) if "revenue" in t else None, t.get("won_deals"),
                Money(a.get("revenue", decimal.Decimal(0)), currency), a.get("won_deals", 0),
                segment_id, user_id, team_id,
                {m: t[m] for m in _EXTRA if m in t},
                {m: a.get(m, _ZERO.get(m, 0)) for m in _EXTRA if m in measures},
            ))
    return PlanReport(record, lines, goals, others)


def _read_facts(uow: UnitOfWork, plan: Record, spans: Sequence[tuple[dt.date, dt.date]], measures: Sequence[str],
                currency: str, dimensions: Sequence[str], segment: _actuals.Segment | None,
                others: dict[str, Money]) -> list[_actuals.Fact]:
    """The facts of every measure: revenue and won deals from another plugin's answer to
    ``marketing_actuals`` when there is one, revenue from orders when the plan says so."""
    found: list[_actuals.Fact] = []
    rest = list(measures)
    answered = _actuals.hook_facts(uow, spans, currency=currency, dimensions=dimensions, segment=segment,
                                   others=others)
    if answered is not None:
        found += answered
        rest = [m for m in rest if m not in ("revenue", "won_deals")]
    elif plan.values.get("revenue_from") == "orders":
        found += _actuals.order_facts(uow, spans, currency=currency, segment=segment, others=others)
        rest.remove("revenue")
    return found + _actuals.facts(uow, spans, rest, currency=currency, dimensions=dimensions, segment=segment,
                                  others=others)


def _group_codes(uow: UnitOfWork) -> dict[str, set[str]]:
    """With the catalog: each product group's code and the codes of the groups below it, so a
    target for a group counts its subgroups' actuals. Without it: nothing (codes match as
    they are)."""
    if "product_group" not in uow.registry.entity_names:
        return {}
    rows = uow.select("product_group", fields=("id", "code", "parent_id")).all()
    tree = Tree({r["id"]: r["parent_id"] for r in rows})
    code = {r["id"]: r["code"] for r in rows}
    return {code[r["id"]]: {code[n] for n in tree.subtree(r["id"]) if code.get(n)} for r in rows if r["code"]}


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
                profile: Mapping[int, decimal.Decimal] | Sequence[decimal.Decimal] | None = None,
                segment_id: int | None = None, user_id: int | None = None, team_id: int | None = None,
                **measures: int | decimal.Decimal) -> list[Record]:
    """Spread a target over the plan's months, quarters (*by*) or the whole plan (``"plan"``):
    one ``plan_target`` per period, shares by *profile* (weights per period in order, or a
    mapping of period number from 1 to weight; evenly when ``None``), to the cent, with the
    cents left over going to the first periods so the shares sum to *amount* exactly (and the
    counts to *count*, and each of *measures* — ``quantity`` to the hundredth, ``new_accounts``,
    ``leads``, ``visits``, ``calls`` — to its total).

    :raises ValidationError: for a profile that does not fit the periods, or an unknown measure.
    """
    v = plan.values
    spans = [(v["starts_on"], v["ends_on"])] if by == "plan" else periods(v["starts_on"], v["ends_on"], by)
    weights: list[decimal.Decimal] = (
        [decimal.Decimal(1)] * len(spans) if profile is None
        else [decimal.Decimal(profile.get(n, 0)) for n in range(1, len(spans) + 1)] if isinstance(profile, Mapping)
        else [decimal.Decimal(w) for w in profile])
    if len(weights) != len(spans) or any(w < 0 for w in weights) or not sum(weights):
        raise ValidationError({"profile": [f"expected {len(spans)} non-negative weights, not all zero, "
                                           f"got {weights!r}"]})
    unknown = sorted(set(measures) - {TARGET_FIELDS[m] for m in _EXTRA})
    if unknown:
        raise ValidationError({unknown[0]: [f"unknown measure {unknown[0]!r}; use "
                                            f"{', '.join(TARGET_FIELDS[m] for m in _EXTRA)}"]}, entity="plan_target")
    shares: dict[str, list[Any]] = {"count": distribute(count, weights) if count is not None else [None] * len(spans)}
    for name, total in measures.items():
        if name == "quantity":
            shares[name] = [decimal.Decimal(n) / 100 for n in distribute(int(decimal.Decimal(total) * 100), weights)]
        else:
            shares[name] = list(distribute(int(total), weights))
    amounts: list[Money | None] = [None] * len(spans)
    if amount is not None:
        amounts = [Money(decimal.Decimal(cents) / 100, amount.currency)
                   for cents in distribute(int(amount.amount * 100), weights)]
    rows = []
    for index, (start, end) in enumerate(spans):
        rows.append({"plan_id": plan.id, "product_group": product_group, "geography_id": geography_id,
                     "segment_id": segment_id, "user_id": user_id, "team_id": team_id, "starts_on": start,
                     "ends_on": end, "amount": amounts[index],
                     **{name: share[index] for name, share in shares.items()}})
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


#: The dimensions ``--by`` accepts.
BY_DIMENSIONS = ("product_group", "geography", "segment", "owner")


def plan_summary(uow: UnitOfWork, plan: int | str | Record, *, by: str | Sequence[str] = ("product_group", "geography"),
                 period: str | None = None) -> PlanReport:
    """*plan* sliced by the dimensions *by* (of :data:`BY_DIMENSIONS`) and periods of *period*
    (``month``, ``quarter``, ``year``; the targets' own periods when ``None``).

    The semantics, chosen so that no record and no target counts twice on a line:

    - **Actuals are computed for each line directly** from the records matching the line's own
      values (its product group and the groups below it, the geography node and its subtree, the
      segment's members, the user or the team's users), never by adding other lines up; a won
      deal in the Retail segment owned by ann counts once on the Retail line and once on ann's
      line, and once on a line of neither.
    - **Targets are summed over the dimensions not in *by* only where they are disjoint**:
      product groups and geography nodes add up (as in :func:`plan_report`), but segments
      overlap each other and owners overlap segments (a user and her team too), so a target set
      for a segment or an owner counts only on lines of a *by* that includes that dimension.
      ``--by product_group`` on a plan with a line for everyone, a line for Retail and a line
      for ann shows the everyone line's target against all actuals.
    - A target whose period covers several periods of *period* is spread over them in
      proportion to their days, to the cent (and to the unit for counts), so the shares sum to
      the target exactly.

    Every line of every key is shown for each period, with ``target_amount`` ``None`` where no
    target falls in it.
    """
    chosen = [part.strip() for part in (by.split(",") if isinstance(by, str) else by) if part.strip()]
    unknown = [d for d in chosen if d not in BY_DIMENSIONS]
    if unknown:
        raise ValidationError({"by": [f"unknown dimension {unknown[0]!r}; use {', '.join(BY_DIMENSIONS)} "
                                      f"(comma-separated)"]})
    record = plan_named(uow, plan)
    currency = record.values["currency"]
    targets = (uow.select("plan_target", fields=_TARGET_READ).where(plan_id=record.id)
               .order_by("starts_on", "product_group", "id").all())
    for target in targets:
        amount = target.get("amount")
        if amount is not None and amount.currency != currency:
            raise ValidationError({"amount": [f"plan_target {target['id']} is in {amount.currency}, the plan in "
                                              f"{currency}; give targets in the plan's currency"]},
                                  entity="plan_target")
    if "segment" not in chosen:
        targets = [t for t in targets if t["segment_id"] is None]
    if "owner" not in chosen:
        targets = [t for t in targets if t["user_id"] is None and t["team_id"] is None]
    if period is None:
        buckets = sorted({(t["starts_on"], t["ends_on"]) for t in targets})
    else:
        buckets = periods(record.values["starts_on"], record.values["ends_on"], period)
    measures = ["revenue", "won_deals", *(m for m in _EXTRA if any(t.get(TARGET_FIELDS[m]) is not None
                                                                     for t in targets))]
    tree = read_tree(uow)
    cells: dict[tuple[Any, ...], dict[int, dict[int | None, _Figures]]] = {}
    for target in targets:
        key = (target["product_group"] if "product_group" in chosen else None,
               target["segment_id"], target["user_id"], target["team_id"])
        node = target["geography_id"] if "geography" in chosen else None
        per_bucket = cells.setdefault(key, {})
        for index, figures in _split(target, buckets):
            own = per_bucket.setdefault(index, defaultdict(_Figures))
            own[node] = own[node] + figures
    dimensions = ["geography"]
    if "product_group" in chosen:
        dimensions.append("product_group")
    if "owner" in chosen:
        dimensions.append("owner")
    others: dict[str, Money] = {}
    facts_of: dict[int | None, dict[int, list[_actuals.Fact]]] = {}
    if buckets:
        for segment_id in dict.fromkeys(key[1] for key in cells):
            segment = None if segment_id is None else _actuals.segment_members(uow, segment_id)
            by_span: dict[int, list[_actuals.Fact]] = defaultdict(list)
            for fact in _read_facts(uow, record, buckets, measures, currency, dimensions, segment,
                                    others if segment_id is None else {}):
                by_span[fact.period].append(fact)
            facts_of[segment_id] = by_span
    groups = _group_codes(uow) if "product_group" in chosen else {}
    teams = ({u["id"]: u["team_id"] for u in uow.select("user", fields=("id", "team_id")).all()}
             if "owner" in chosen else {})
    lines: list[PlanLine] = []
    for (group, segment_id, user_id, team_id), per_bucket in cells.items():
        codes = groups.get(group, {group}) if group is not None else None
        shown: list[int | None] = []
        for own in per_bucket.values():
            for node in own:
                for step in ([None] if node is None else [*reversed(tree.ancestors(node))]):
                    if step not in shown:
                        shown.append(step)
        for index, (start, end) in enumerate(buckets):
            own_target = per_bucket.get(index, {})
            own_actual: dict[int | None, _Figures] = defaultdict(_Figures)
            everywhere = _NONE
            for fact in facts_of[segment_id].get(index, ()):
                if codes is not None and fact.product_group not in codes:
                    continue
                if user_id is not None and fact.owner_id != user_id:
                    continue
                if team_id is not None and teams.get(fact.owner_id) != team_id:
                    continue
                figures = _Figures(fact.values)
                node = _placed(tree, fact.geography_id) if "geography" in chosen else None
                own_actual[node] = own_actual[node] + figures
                everywhere = everywhere + figures
            target_totals = tree.roll_up(own_target, _NONE)
            actual_totals = tree.roll_up(own_actual, _NONE)
            target_totals[None] = own_target.get(None, _NONE) + sum(
                (target_totals[n] for n in tree.children.get(None, ())), _NONE)
            actual_totals[None] = everywhere
            for node in _tree_order(tree, shown):
                t, a = target_totals.get(node, _NONE).values, actual_totals.get(node, _NONE).values
                lines.append(PlanLine(
                    group, node, "everywhere" if node is None else tree.names.get(node, str(node)), start, end,
                    Money(t["revenue"], currency) if "revenue" in t else None, t.get("won_deals"),
                    Money(a.get("revenue", decimal.Decimal(0)), currency), a.get("won_deals", 0),
                    segment_id, user_id, team_id,
                    {m: t[m] for m in _EXTRA if m in t},
                    {m: a.get(m, _ZERO.get(m, 0)) for m in _EXTRA if m in measures},
                ))
    return PlanReport(record, lines, uow.query("plan_goal").where(plan_id=record.id).order_by("id").all(), others)


def _split(target: Mapping[str, Any], buckets: Sequence[tuple[dt.date, dt.date]]) -> list[tuple[int, _Figures]]:
    """*target*'s figures shared over the *buckets* it overlaps, by days, summing exactly."""
    start, end = target["starts_on"], target["ends_on"]
    weights = [decimal.Decimal(max(0, (min(end, b_end) - max(start, b_start)).days + 1)) for b_start, b_end in buckets]
    if not sum(weights):
        return []
    shares: list[dict[str, Any]] = [{} for _ in buckets]
    for measure, field in TARGET_FIELDS.items():
        value = target.get(field)
        if value is None:
            continue
        parts: list[Any]
        if measure == "revenue":
            parts = [decimal.Decimal(c) / 100 for c in distribute(int(value.amount * 100), weights)]
        elif measure == "quantity":
            parts = [decimal.Decimal(c) / 100 for c in distribute(int(decimal.Decimal(value) * 100), weights)]
        else:
            parts = distribute(int(value), weights)
        for index, part in enumerate(parts):
            if weights[index]:
                shares[index][measure] = part
    return [(index, _Figures(values)) for index, values in enumerate(shares) if weights[index]]
