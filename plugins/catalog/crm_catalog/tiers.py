"""Customer discount tiers: recomputed from revenue by a job, with their history kept.

A :class:`discount_tier <crm_catalog.entities.DISCOUNT_TIER>` gives ``percent`` to accounts whose
revenue over the trailing ``[plugins.catalog] revenue_months`` (12 by default) reaches its
``min_revenue``, counting the revenue of its product group and the groups below it (or all
revenue, for a tier without a group). Revenue comes from the ``catalog_revenue`` hook: every
implementation's answers are summed (the orders plugin reports confirmed orders; billing
reports invoices), in the tier's currency only.

:func:`recompute_tiers` runs as the job ``catalog.recompute_tiers`` (daily; ``crm catalog tiers``
runs it now). For each account and tier group, the best tier reached is the account's tier
discount (a ``customer_discount`` of kind ``tier``): when it changes, the current one is closed
(``valid_to`` the day before) and a new one starts today, so the rows of kind ``tier`` of an
account are its tier history. Manual discounts are never touched.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.jobs import current_job, enqueue
from crmcore.money import Money

from crm_catalog.loading import chunks, group_ancestors
from crm_catalog.settings import catalog_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["JOB_KIND", "JOB_KEY", "TierReport", "queue_tier_job", "recompute_tiers", "run_tier_job", "window"]

#: The job that recomputes the tiers, and its dedupe key (one queued at a time).
JOB_KIND = "catalog.recompute_tiers"
JOB_KEY = "catalog:recompute_tiers"
#: Accounts asked about per ``catalog_revenue`` call.
BATCH = 500


@attrs.frozen
class TierReport:
    """What a recomputation did: accounts looked at, tier discounts started, closed, kept."""

    accounts: int
    started: int
    closed: int
    kept: int

    def summary(self) -> str:
        return (f"{self.accounts} accounts: {self.started} tier discounts started, {self.closed} closed, "
                f"{self.kept} kept")


def window(today: dt.date, months: int) -> tuple[dt.date, dt.date]:
    """The first and last day of the trailing *months* ending *today* (the same day *months*
    earlier, or the month's last day when it has no such day, plus one day)."""
    month = today.month - 1 - months
    year, month = today.year + month // 12, month % 12 + 1
    for day in range(today.day, 0, -1):
        try:
            start = dt.date(year, month, day)
            break
        except ValueError:
            continue
    return start + dt.timedelta(days=1), today


def _revenue(uow: UnitOfWork, account_ids: list[int], since: dt.date, until: dt.date) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for answer in uow.crm.hook.catalog_revenue(uow=uow, account_ids=account_ids, since=since, until=until):
        rows.extend(answer or ())
    return rows


def recompute_tiers(uow: UnitOfWork, *, today: dt.date | None = None) -> TierReport:
    """Recompute every account's tier discounts as of *today* (default: the date today).

    :returns: what changed.
    """
    today = today or dt.date.today()
    since, until = window(today, catalog_settings(uow).revenue_months)
    tiers = uow.select("discount_tier", fields=("id", "name", "group_id", "min_revenue", "percent")).all()
    parents = {r["id"]: r["parent_id"] for r in uow.select("product_group", fields=("id", "parent_id")).all()}
    tier_groups = sorted({t["group_id"] for t in tiers}, key=lambda g: (g is not None, g or 0))
    current = uow.query("customer_discount").where(
        {"any": [("valid_to", "is null"), ("valid_to", ">=", today)]}, kind="tier").order_by("id").all()
    held: dict[tuple[int, int | None], Record] = {(d.account_id, d.group_id): d for d in current}
    account_ids = [r["id"] for r in uow.select("account", fields=("id",)).order_by("id").all()]
    reached: dict[tuple[int, int | None], tuple[dict[str, Any], Money]] = {}
    for batch in chunks(account_ids, BATCH):
        totals: dict[tuple[int, int | None, str], decimal.Decimal] = {}
        for row in _revenue(uow, batch, since, until):
            chain = group_ancestors(parents, row.get("product_group_id"))
            amount: Money = row["amount"]
            for group in tier_groups:
                if group is None or group in chain:
                    key = (row["account_id"], group, amount.currency)
                    totals[key] = totals.get(key, decimal.Decimal(0)) + amount.amount
        for (account_id, group, currency), total in totals.items():
            best = _best(tiers, group, Money(total, currency))
            if best is not None:
                known = reached.get((account_id, group))
                if known is None or best["percent"] > known[0]["percent"]:
                    reached[(account_id, group)] = (best, Money(total, currency))
    return _apply(uow, today, held, reached, len(account_ids))


def _best(tiers: Iterable[dict[str, Any]], group: int | None, revenue: Money) -> dict[str, Any] | None:
    eligible = [t for t in tiers if t["group_id"] == group and t["min_revenue"].currency == revenue.currency
                and t["min_revenue"].amount <= revenue.amount]
    return max(eligible, key=lambda t: (t["min_revenue"].amount, t["percent"], -t["id"]), default=None)


def _apply(uow: UnitOfWork, today: dt.date, held: dict[tuple[int, int | None], Record],
           reached: dict[tuple[int, int | None], tuple[dict[str, Any], Money]], accounts: int) -> TierReport:
    closing: list[tuple[Record, dict[str, Any]]] = []
    removing: list[Record] = []
    starting: list[dict[str, Any]] = []
    kept = 0
    yesterday = today - dt.timedelta(days=1)
    for key in sorted(set(held) | set(reached), key=lambda k: (k[0], k[1] is not None, k[1] or 0)):
        old, new = held.get(key), reached.get(key)
        if old is not None and new is not None and old.tier_id == new[0]["id"]:
            if old.revenue != new[1]:
                closing.append((old, {"revenue": new[1]}))
            kept += 1
            continue
        if old is not None:
            if old.valid_from is not None and old.valid_from >= today:
                removing.append(old)  # started today: replaced, not history
            else:
                closing.append((old, {"valid_to": yesterday}))
        if new is not None:
            tier, revenue = new
            starting.append({"account_id": key[0], "group_id": key[1], "percent": tier["percent"], "kind": "tier",
                             "tier_id": tier["id"], "revenue": revenue, "valid_from": today,
                             "note": f"tier {tier['name']}"[:200]})
    if closing:
        uow.update_many("customer_discount", closing)
    if removing:
        uow.delete_many("customer_discount", removing)
    if starting:
        uow.create_many("customer_discount", starting)
    closed = sum(1 for _, changes in closing if "valid_to" in changes) + len(removing)
    return TierReport(accounts, len(starting), closed, kept)


def queue_tier_job(uow: UnitOfWork, run_at: dt.datetime | dt.timedelta | None = None) -> int:
    """Queue the tier recomputation at *run_at* (default: now); a queued one moves there."""
    return enqueue(uow, JOB_KIND, None, run_at=run_at, key=JOB_KEY, max_attempts=3)


def run_tier_job(uow: UnitOfWork, payload: Any) -> None:
    """Job ``catalog.recompute_tiers``: recompute as of the worker's day, queue the next run a
    day later."""
    running = current_job()
    now = running.now if running is not None else dt.datetime.now(dt.UTC)
    recompute_tiers(uow, today=now.date())
    queue_tier_job(uow, now + dt.timedelta(days=1))
