"""The revenue estimate per customer over a horizon, each part shown with its sources.

- **History**: invoiced net revenue (posted invoices less posted credit notes, before taxes)
  in the trailing months up to the day itself, per month, the customer's child accounts included (``parent_id``,
  one level and below).
- **Recurring**: what plugins report through ``billing_recurring_revenue`` (contracts,
  subscriptions) for the horizon, with their sources.
- **Run-rate**: the history's monthly average times the horizon's months.
- **Weighted pipeline**: open opportunities (probability above 0 and below 100) closing within
  the horizon or undated, amount × probability / 100.
- **Estimate**: run-rate plus recurring plus weighted pipeline.

Everything is read set-based (one select of documents, one of opportunities, one of accounts)
as the acting user, so an estimate counts what its reader may see. :func:`backtest` compares
the run-rate estimates as they would have been made at a past day with what was invoiced
afterwards; :func:`prospects` puts the weighted pipeline of accounts without invoices next to
the effort spent on them (activities logged, and with the marketing plugin the campaign costs
attributed to them: :func:`campaign_costs`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

import attrs
from crm_orders.totals import currency_places
from crmcore.money import Money

from crm_billing.entities import OPEN_STATES

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["Backtest", "Estimate", "Prospect", "backtest", "estimate", "prospects"]


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _months_before(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(year, month + 1, 1)


@attrs.frozen
class Estimate:
    """One customer's estimate in one currency, part by part, with the records behind each."""

    account_id: int
    currency: str
    history: Money
    history_months: dict[str, Decimal]
    history_sources: tuple[int, ...]
    run_rate: Money
    pipeline: Money
    pipeline_sources: tuple[int, ...]
    recurring: Money
    recurring_sources: tuple[str, ...]

    @property
    def total(self) -> Money:
        return self.run_rate + self.recurring + self.pipeline

    @property
    def history_by_month(self) -> dict[str, Money]:
        """The history per month (``"2026-02"``), months without documents left out."""
        return {month: Money(amount, self.currency) for month, amount in self.history_months.items()}


def _families(uow: UnitOfWork, account_ids: Sequence[int] | None) -> tuple[dict[int, int], list[int]]:
    """``{account: the root asked about}`` for the accounts asked about and their descendants."""
    rows = uow.select("account", fields=("id", "parent_id")).all()
    parent = {r["id"]: r["parent_id"] for r in rows}
    roots = set(account_ids) if account_ids is not None else {r["id"] for r in rows}
    owner: dict[int, int] = {}
    for account in parent:
        seen, node = set(), account
        while node is not None and node not in seen:
            if node in roots:
                owner[account] = node
                break
            seen.add(node)
            node = parent.get(node)
    return owner, sorted(roots)


def _documents(uow: UnitOfWork, accounts: Iterable[int] | None, since: dt.date, until: dt.date) -> list[dict[str, Any]]:
    """Posted documents dated from *since* to before *until* of *accounts* (all when ``None``)."""
    if accounts is None:
        return uow.select("invoice", fields=("id", "kind", "account_id", "invoice_date", "net_total")).where(
            ("state", "in", OPEN_STATES), ("invoice_date", ">=", since), ("invoice_date", "<", until)).all()
    wanted = sorted(set(accounts))
    found: list[dict[str, Any]] = []
    for first in range(0, len(wanted), 1000):
        found.extend(uow.select("invoice", fields=("id", "kind", "account_id", "invoice_date", "net_total")).where(
            ("account_id", "in", wanted[first:first + 1000]), ("state", "in", OPEN_STATES),
            ("invoice_date", ">=", since), ("invoice_date", "<", until)).all())
    return found


def estimate(uow: UnitOfWork, on: dt.date, *, account_ids: Sequence[int] | None = None, horizon: int = 12,
             history: int = 12) -> list[Estimate]:
    """The estimates of *account_ids* (every account when ``None``) for the *horizon* months
    from *on*, from the *history* months before *on*."""
    owner, _ = _families(uow, account_ids)
    start = _months_before(on.replace(day=1), history)
    everyone = account_ids is None
    documents = _documents(uow, None if everyone else owner, start, on + dt.timedelta(days=1)) if owner else []
    parts: dict[tuple[int, str], dict[str, Any]] = {}

    def part(account: int, currency: str) -> dict[str, Any]:
        return parts.setdefault((account, currency), {"history": Decimal(0), "months": {}, "sources": [],
                                                      "pipeline": Decimal(0), "opportunities": [],
                                                      "recurring": Decimal(0), "contracts": []})

    for document in documents:
        money = document["net_total"]
        if money is None:
            continue
        sign = -1 if document["kind"] == "credit_note" else 1
        if document["account_id"] not in owner:
            continue
        bucket = part(owner[document["account_id"]], money.currency)
        bucket["history"] += sign * money.amount
        month = _month(document["invoice_date"])
        bucket["months"][month] = bucket["months"].get(month, Decimal(0)) + sign * money.amount
        bucket["sources"].append(document["id"])
    end = _months_before(on.replace(day=1), -horizon)
    wanted = sorted(owner)
    chunks = [None] if everyone else [wanted[first:first + 1000] for first in range(0, len(wanted), 1000)]
    for chunk in chunks:
        where: list[Any] = [("probability", ">", 0), ("probability", "<", 100)]
        if chunk is not None:
            where.append(("account_id", "in", chunk))
        for row in uow.select("opportunity", fields=("id", "account_id", "amount", "probability", "close_date")).where(*where).all():
            if row["account_id"] not in owner or row["amount"] is None or (row["close_date"] is not None and not on <= row["close_date"] < end):
                continue
            bucket = part(owner[row["account_id"]], row["amount"].currency)
            bucket["pipeline"] += row["amount"].amount * Decimal(row["probability"]) / Decimal(100)
            bucket["opportunities"].append(row["id"])
    asked = None if everyone else sorted(owner)
    for answer in uow.crm.hook.billing_recurring_revenue(uow=uow, account_ids=asked, since=on, until=end):
        for row in answer or ():
            if row["account_id"] in owner:
                bucket = part(owner[row["account_id"]], row["amount"].currency)
                bucket["recurring"] += row["amount"].amount
                bucket["contracts"].append(str(row.get("source", "")))
    found = []
    for (account, currency), bucket in sorted(parts.items()):
        rate = (bucket["history"] / Decimal(history) * Decimal(horizon)).quantize(Decimal("0.01"))
        found.append(Estimate(
            account, currency, Money(bucket["history"], currency),
            dict(sorted(bucket["months"].items())), tuple(bucket["sources"]),
            Money(rate, currency), Money(bucket["pipeline"].quantize(Decimal("0.01")), currency),
            tuple(bucket["opportunities"]), Money(bucket["recurring"], currency), tuple(bucket["contracts"])))
    return found


@attrs.frozen
class Backtest:
    """A run-rate estimate made as of *as_of* against what was invoiced in the horizon after."""

    account_id: int
    currency: str
    estimated: Money
    actual: Money

    @property
    def error(self) -> Money:
        return self.actual - self.estimated


def backtest(uow: UnitOfWork, as_of: dt.date, *, account_ids: Sequence[int] | None = None, horizon: int = 12,
             history: int = 12) -> list[Backtest]:
    """Per customer, the run-rate estimate as of *as_of* (history before it only: the pipeline
    of that day is not kept) and the net invoiced in the *horizon* months from it."""
    past = {(e.account_id, e.currency): e.run_rate for e in estimate(uow, as_of, account_ids=account_ids,
                                                                    horizon=horizon, history=history)}
    owner, _ = _families(uow, account_ids)
    actual: dict[tuple[int, str], Decimal] = {}
    for document in _documents(uow, owner, as_of, _months_before(as_of.replace(day=1), -horizon)) if owner else []:
        money = document["net_total"]
        key = (owner[document["account_id"]], money.currency)
        actual[key] = actual.get(key, Decimal(0)) + (-1 if document["kind"] == "credit_note" else 1) * money.amount
    keys = sorted(set(past) | set(actual))
    return [Backtest(a, c, past.get((a, c), Money(0, c)), Money(actual.get((a, c), Decimal(0)), c)) for a, c in keys]


@attrs.frozen
class Prospect:
    """An account without posted invoices: its weighted pipeline against the effort so far."""

    account_id: int
    name: str
    pipeline: Money | None
    opportunities: tuple[int, ...]
    activities: int
    campaign_costs: tuple[Money, ...] = ()
    campaigns: tuple[int, ...] = ()


def campaign_costs(uow: UnitOfWork) -> dict[int, dict[int, Money]]:
    """``{account: {campaign: share}}``: each campaign's cost (the marketing plugin's cost
    lines) shared evenly among the accounts its touches reached (an opt-out is no touch), the cents left over to the
    lowest account ids, so the shares add up to the cost exactly. Read as the acting user
    (three grouped reads); empty without the marketing plugin."""
    reached: dict[int, list[int]] = {}
    for row in (uow.select("campaign_touch", fields=("campaign_id", "account_id")).where(("account_id", "!=", None), ("kind", "!=", "opt_out"))
                .group_by("campaign_id", "account_id").aggregate()):
        reached.setdefault(row["campaign_id"], []).append(row["account_id"])
    if not reached:
        return {}
    found: dict[int, dict[int, Money]] = {}
    for row in (uow.select("campaign_cost", fields=("campaign_id",)).where(("campaign_id", "in", sorted(reached)))
                .group_by("campaign_id").aggregate(sum=["amount"])):
        total: Money | None = row["sum_amount"]
        if total is None or total.amount <= 0:
            continue
        accounts = sorted(reached[row["campaign_id"]])
        quantum = Decimal(1).scaleb(-currency_places(total.currency))
        share = (total.amount / len(accounts)).quantize(quantum, ROUND_DOWN)
        left = int((total.amount - share * len(accounts)) / quantum)
        for index, account in enumerate(accounts):
            amount = share + (quantum if index < left else 0)
            found.setdefault(account, {})[row["campaign_id"]] = Money(amount, total.currency)
    return found


def _sum_by_currency(amounts: list[Money]) -> list[Money]:
    totals: dict[str, Money] = {}
    for amount in amounts:
        totals[amount.currency] = totals[amount.currency] + amount if amount.currency in totals else amount
    return list(totals.values())


def prospects(uow: UnitOfWork, on: dt.date, *, horizon: int = 12) -> list[Prospect]:
    """Accounts that were never invoiced, with an open pipeline, logged activities or
    attributed campaign costs (:func:`campaign_costs`, with the marketing plugin), the largest
    weighted pipeline first."""
    invoiced = {r["account_id"] for r in uow.select("invoice", fields=("account_id",))
                .where(("state", "in", OPEN_STATES)).group_by("account_id").aggregate()}
    estimates = {e.account_id: e for e in estimate(uow, on, horizon=horizon) if e.account_id not in invoiced}
    effort = {r["account_id"]: r["count"] for r in uow.select("activity", fields=("account_id",))
              .where(("account_id", "!=", None)).group_by("account_id").aggregate()}
    costs = campaign_costs(uow) if "campaign_touch" in uow.registry else {}
    names = {r["id"]: r["name"] for r in uow.select("account", fields=("id", "name")).all()}
    wanted = sorted((set(estimates) | set(effort) | set(costs)) - invoiced)
    found = []
    for a in wanted:
        if a not in names:
            continue
        spent = costs.get(a, {})
        found.append(Prospect(a, names[a], estimates[a].pipeline if a in estimates else None,
                              estimates[a].pipeline_sources if a in estimates else (), effort.get(a, 0),
                              tuple(sorted(_sum_by_currency([m for m in spent.values()]), key=lambda m: m.currency)),
                              tuple(sorted(spent))))
    return sorted(found, key=lambda p: (-(p.pipeline.amount if p.pipeline else 0), p.account_id))
