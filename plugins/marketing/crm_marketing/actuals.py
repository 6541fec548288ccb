"""The actuals market plans are monitored against, read set-based through the unit of work.

Each measure of a plan is a declared roll-up of records, read as the unit of work's actor
(figures the actor may not read do not count) with the aggregate API: one ``GROUP BY`` per
source over the whole plan, the period of each record computed in SQL (a ``CASE`` over its
date), never a query per target or per record.

=============== ==================================================== =======================
measure         records                                              dated by
=============== ==================================================== =======================
``revenue``     won opportunities (``amount``); with the plan's      ``close_date``
                ``revenue_from = "orders"``, confirmed orders and
                posted invoices (``catalog_revenue``, answered by
                the orders and billing plugins)
``won_deals``   won opportunities (how many)                         ``close_date``
``quantity``    the lines of won opportunities (``quantity``)        the deal's close date
``new_accounts`` accounts                                            ``created_at``
``leads``       leads                                                ``created_at``
``visits``      meetings done                                        ``due_at``
``calls``       calls done                                           ``due_at``
=============== ==================================================== =======================

Each figure carries the dimensions of a plan line: the period, the product group (the deal's,
for deals and their lines), the geography node (the account's; a lead's own) and the owner
(the record's owner; a team's figures are its members'). A segment narrows a source to the
records of its accounts (the accounts themselves, the accounts of its contacts or leads), or
to its leads for lead and activity sources.

When another plugin answers ``marketing_actuals`` (:mod:`crm_marketing.hookspecs`), revenue
and won deals come from its answer instead, one call per period.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from crmcore.errors import ValidationError
from crmcore.money import Money

from crm_marketing.attribution import won_condition

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["MEASURES", "Fact", "Segment", "facts", "segment_members"]

#: The quantitative measures of a plan, in the order reports show them.
MEASURES = ("revenue", "won_deals", "quantity", "new_accounts", "leads", "visits", "calls")
_IDS_PER_QUERY = 10_000


@attrs.frozen
class Fact:
    """Actual figures of one period × product group × geography node × owner.

    :ivar values: ``{measure: value}``: revenue as a ``Decimal`` in the plan's currency, counts
        as ``int``, quantity as a ``Decimal``.
    """

    period: int
    product_group: str | None
    geography_id: int | None
    owner_id: int | None
    values: Mapping[str, Any]


@attrs.frozen
class Segment:
    """What a segment narrows actuals to: its accounts, and its leads for a lead segment."""

    accounts: tuple[int, ...]
    leads: tuple[int, ...] | None = None


def _won_on(path: str) -> Callable[[UnitOfWork], list[Any]]:
    def conditions(uow: UnitOfWork) -> list[Any]:
        return [_prefixed(won_condition(uow), path)]
    return conditions


def _prefixed(condition: Any, path: str) -> Any:
    """*condition* with each field name read through the reference *path*."""
    if isinstance(condition, Mapping):
        return {key: ([_prefixed(c, path) for c in value] if isinstance(value, list) else _prefixed(value, path))
                for key, value in condition.items()}
    if isinstance(condition, tuple):
        return (f"{path}.{condition[0]}", *condition[1:]) if path else condition
    return condition


def _done(kind: str) -> Callable[[UnitOfWork], list[Any]]:
    def conditions(uow: UnitOfWork) -> list[Any]:
        return [("kind", "=", kind), ("status", "=", "done")]
    return conditions


def _nothing(uow: UnitOfWork) -> list[Any]:
    return []


@attrs.frozen
class _Source:
    """Records one or more measures roll up: the entity, how to find and date them, the path
    of each dimension, and per measure the field summed (``None``: counted)."""

    entity: str
    date: str
    measures: Mapping[str, str | None]
    where: Callable[[UnitOfWork], list[Any]]
    product_group: str | None
    geography: str
    owner: str
    account: str
    lead: str | None = None


_SOURCES = (
    _Source("opportunity", "close_date", {"revenue": "amount", "won_deals": None}, _won_on(""),
            "product_group", "account_id.geography_id", "owner_id", "account_id"),
    _Source("opportunity_line", "opportunity_id.close_date", {"quantity": "quantity"}, _won_on("opportunity_id"),
            "opportunity_id.product_group", "opportunity_id.account_id.geography_id", "opportunity_id.owner_id",
            "opportunity_id.account_id"),
    _Source("account", "created_at", {"new_accounts": None}, _nothing, None, "geography_id", "owner_id", "id"),
    _Source("lead", "created_at", {"leads": None}, _nothing, None, "geography_id", "owner_id", "account_id", "id"),
    _Source("activity", "due_at", {"visits": None}, _done("meeting"), None, "account_id.geography_id", "owner_id",
            "account_id", "lead_id"),
    _Source("activity", "due_at", {"calls": None}, _done("call"), None, "account_id.geography_id", "owner_id",
            "account_id", "lead_id"),
)


def segment_members(uow: UnitOfWork, segment_id: int) -> Segment:
    """The accounts (and leads) segment *segment_id* narrows actuals to, as the actor reads it."""
    from crm_marketing.segments import member_chunks

    segment = uow.get("segment", segment_id)
    entity = segment.values["member_entity"]
    accounts: set[int] = set()
    leads: list[int] = []
    for rows in member_chunks(uow, segment, roles=True, size=5000):
        accounts.update(r["account_id"] for r in rows if r.get("account_id") is not None)
        if entity == "lead":
            leads.extend(r["id"] for r in rows)
    return Segment(tuple(sorted(accounts)), tuple(leads) if entity == "lead" else None)


def facts(uow: UnitOfWork, spans: Sequence[tuple[dt.date, dt.date]], measures: Sequence[str], *,
          currency: str, dimensions: Sequence[str], segment: Segment | None = None,
          others: dict[str, Money] | None = None) -> list[Fact]:
    """The actual figures of *measures* in each of *spans* (``(first day, last day)``), by
    *dimensions* (among ``product_group``, ``geography``, ``owner``), narrowed to *segment*.

    Revenue in another currency than *currency* is not added: it is summed into *others* per
    currency (the deal still counts as won).
    """
    pieces, covers = _pieces(spans)
    found: list[Fact] = []
    for source in _SOURCES:
        wanted = [m for m in source.measures if m in measures]
        if wanted:
            for fact in _read(uow, source, wanted, pieces, currency, dimensions, segment, others):
                found += [attrs.evolve(fact, period=index) for index in covers[fact.period]]
    return found


def _pieces(spans: Sequence[tuple[dt.date, dt.date]]) -> tuple[list[tuple[dt.date, dt.date]], list[list[int]]]:
    """*spans* cut into disjoint pieces in date order (a yearly target beside quarterly ones
    overlaps them), and for each piece the indexes of the spans it lies in."""
    cuts = sorted({day for start, end in spans for day in (start, end + dt.timedelta(days=1))})
    pieces, covers = [], []
    for start, following in zip(cuts, cuts[1:], strict=False):
        inside = [i for i, (s, e) in enumerate(spans) if s <= start and following - dt.timedelta(days=1) <= e]
        if inside:
            pieces.append((start, following - dt.timedelta(days=1)))
            covers.append(inside)
    return pieces, covers


def _read(uow: UnitOfWork, source: _Source, measures: Sequence[str], spans: Sequence[tuple[dt.date, dt.date]],
          currency: str, dimensions: Sequence[str], segment: Segment | None,
          others: dict[str, Money] | None) -> list[Fact]:
    if not spans:
        return []
    paths = {"product_group": source.product_group if "product_group" in dimensions else None,
             "geography": source.geography if "geography" in dimensions else None,
             "owner": source.owner if "owner" in dimensions else None}
    groups = [p for p in paths.values() if p is not None]
    sums = sorted({f for m, f in source.measures.items() if m in measures and f is not None})
    datetimes = source.date.split(".")[-1].endswith("_at")
    base = uow.select(source.entity, fields=("id",)).where(*source.where(uow))
    chunks: list[list[Any] | None] = [None]
    path = source.account
    if segment is not None:
        listed: Sequence[int] = segment.accounts
        if segment.leads is not None and source.lead is not None:
            path, listed = source.lead, segment.leads
        chunks = [list(listed[i:i + _IDS_PER_QUERY]) for i in range(0, len(listed), _IDS_PER_QUERY)]
    by_period = "." not in source.date
    if by_period:
        # The period of each record is computed in SQL (empty outside the plan), so one
        # statement reads every period; the plan's span is kept by that column, not by a range
        # on the date, which SQLite would otherwise read through the date's index row by row.
        starts = [_bound(uow, start, datetimes) for start, _ in spans]
        ends = [_bound(uow, end + dt.timedelta(days=1), datetimes) for _, end in spans]

        def period(columns: Mapping[str, sa.ColumnElement[Any]]) -> sa.ColumnElement[Any]:
            column = columns[source.date]
            whens: list[tuple[Any, Any]] = [(column < starts[0], sa.null())]
            for index, (start, end) in enumerate(zip(starts, ends, strict=True)):
                if index and start != ends[index - 1]:
                    whens.append((column < start, sa.null()))
                whens.append((column < end, index))
            return sa.case(*whens, else_=sa.null())

        base = base.extend("marketing", columns={"marketing_period": period},
                           where=lambda columns: period(columns).is_not(None))
    found: list[Fact] = []
    for chunk in chunks:
        select = base if chunk is None else base.where((path, "in", chunk))
        if by_period:
            rows = [(row["marketing_period"], row) for row in
                    select.group_by("marketing_period", *groups).aggregate(sum=sums)]
        else:
            rows = []
            for index, (start, end) in enumerate(spans):
                one = select.where((source.date, ">=", _bound(uow, start, datetimes)),
                                   (source.date, "<", _bound(uow, end + dt.timedelta(days=1), datetimes)))
                if groups:
                    one = one.group_by(*groups)
                rows += [(index, row) for row in one.aggregate(sum=sums)]
        for index, row in rows:
            values: dict[str, Any] = {}
            for measure in measures:
                name = source.measures[measure]
                if name is None:
                    values[measure] = row["count"]
                    continue
                value = row[f"sum_{name}"]
                if isinstance(value, Money):
                    if value.currency != currency:
                        if others is not None:
                            others[value.currency] = others.get(value.currency, Money(0, value.currency)) + value
                        value = None
                    else:
                        value = value.amount
                values[measure] = value if value is not None else decimal.Decimal(0)
            found.append(Fact(int(index), row.get(paths["product_group"]) if paths["product_group"] else None,
                              row.get(paths["geography"]) if paths["geography"] else None,
                              row.get(paths["owner"]) if paths["owner"] else None, values))
    return found


def _bound(uow: UnitOfWork, day: dt.date, datetimes: bool) -> Any:
    """The start of *day*: the date itself, or midnight in the deployment's time zone."""
    return dt.datetime.combine(day, dt.time(), uow.registry.timezone) if datetimes else day


def hook_facts(uow: UnitOfWork, spans: Sequence[tuple[dt.date, dt.date]], *, currency: str,
               dimensions: Sequence[str], segment: Segment | None, others: dict[str, Money]) -> list[Fact] | None:
    """Revenue and won deals from another plugin's ``marketing_actuals`` (one call per span), or
    ``None`` when only the marketing plugin's own answer is there (then :func:`facts` reads them
    in one statement)."""
    from crm_marketing import plugin

    caller = uow.crm.hook.marketing_actuals
    if all(impl.plugin is plugin for impl in caller.get_hookimpls()):  # only marketing's own answer
        return None
    asked = tuple(d for d in ("product_group", "geography", "owner") if d in dimensions)
    accounts = None if segment is None else list(segment.accounts)
    found = []
    for index, span in enumerate(spans):
        for row in caller(uow=uow, period=tuple(span), dimensions=asked, accounts=accounts) or []:
            amount = row.get("amount")
            if amount is not None and amount.currency != currency:
                others[amount.currency] = others.get(amount.currency, Money(0, amount.currency)) + amount
                amount = None
            found.append(Fact(index, row.get("product_group"), row.get("geography_id"), row.get("owner_id"),
                              {"revenue": amount.amount if amount is not None else decimal.Decimal(0),
                               "won_deals": row.get("count") or 0}))
    return found


def builtin_actuals(uow: UnitOfWork, period: tuple[dt.date, dt.date], dimensions: Sequence[str],
                    accounts: Sequence[int] | None) -> list[dict[str, Any]]:
    """The marketing plugin's own answer to ``marketing_actuals``: won opportunities closed in
    *period* (one aggregate query per 10,000 accounts asked about)."""
    paths = {"product_group": "product_group", "geography": "account_id.geography_id", "owner": "owner_id"}
    groups = [paths[d] for d in ("product_group", "geography", "owner") if d in dimensions]
    select = uow.select("opportunity").where(won_condition(uow), ("close_date", ">=", period[0]),
                                             ("close_date", "<=", period[1]))
    chunks: list[Any] = [None] if accounts is None else [
        list(accounts[i:i + _IDS_PER_QUERY]) for i in range(0, len(accounts), _IDS_PER_QUERY)]
    rows = []
    for ids in chunks:
        one = select if ids is None else select.where(("account_id", "in", ids))
        if groups:
            one = one.group_by(*groups)
        for row in one.aggregate(sum=["amount"]):
            rows.append({"product_group": row.get("product_group"), "geography_id": row.get("account_id.geography_id"),
                         "owner_id": row.get("owner_id"), "amount": row["sum_amount"], "count": row["count"]})
    return rows


def order_facts(uow: UnitOfWork, spans: Sequence[tuple[dt.date, dt.date]], *, currency: str,
                segment: Segment | None, others: dict[str, Money]) -> list[Fact]:
    """Revenue of confirmed orders and posted invoices (``catalog_revenue``, which the orders
    and billing plugins answer), per account and product group, placed by the account's
    geography and owner.

    :raises ValidationError: when no enabled plugin reports order revenue.
    """
    caller = getattr(uow.crm.hook, "catalog_revenue", None)
    if caller is None or not caller.get_hookimpls():
        raise ValidationError({"revenue_from": ["the plan takes revenue from orders, but no enabled plugin reports "
                                                "it; enable orders (and billing), or set revenue_from to won_deals"]},
                              entity="market_plan")
    accounts = {row["id"]: row for row in uow.select("account", fields=("id", "geography_id", "owner_id")).all()}
    wanted = sorted(accounts if segment is None else set(segment.accounts) & set(accounts))
    codes = {row["id"]: row["code"] for row in uow.select("product_group", fields=("id", "code")).all()}
    found = []
    for index, (start, end) in enumerate(spans):
        for row in caller(uow=uow, account_ids=wanted, since=start, until=end):
            for item in row or []:
                amount = item["amount"]
                if amount.currency != currency:
                    others[amount.currency] = others.get(amount.currency, Money(0, amount.currency)) + amount
                    continue
                account = accounts.get(item["account_id"], {})
                found.append(Fact(index, codes.get(item.get("product_group_id")), account.get("geography_id"),
                                  account.get("owner_id"), {"revenue": amount.amount}))
    return found
