"""SLA penalties: breaches under contracts that declare a penalty, and their report.

A contract with a ``penalty_amount`` pays it for each breach of its service: a service order
of the contract whose time window ended before it was done (``done_at``, stamped when the
order enters ``done``), and, with the help desk, a ticket of the contract's account whose SLA
target the help desk's sweep found breached (its ``sla_event``) on a day the contract ran.
:func:`record_breaches` (run by the daily job) records each breach once: the penalty's key
(``order:12``, ``ticket:5:response``) is a unique column. :func:`penalty_report` sums them per
contract.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from crmcore.money import Money

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["LOOK_BACK_DAYS", "penalty_report", "record_breaches"]

#: How far back the sweep looks for help desk breaches (their penalties are keyed: once each).
LOOK_BACK_DAYS = 7
_OPEN = ("new", "scheduled", "in_progress")


def _existing(uow: UnitOfWork, keys: Iterable[str]) -> set[str]:
    wanted = list(dict.fromkeys(keys))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        rows = uow.select("sla_penalty", ("key",)).where(
            ("key", "in", wanted[start:start + 500])).all()
        found.update(r["key"] for r in rows)
    return found


def record_breaches(uow: UnitOfWork, now: dt.datetime) -> int:
    """Record the penalties of the breaches found at *now* that are not recorded yet.

    :returns: the number of penalties recorded.
    """
    rows = _order_breaches(uow, now) + _ticket_breaches(uow, now)
    if not rows:
        return 0
    known = _existing(uow, [r["key"] for r in rows])
    fresh = [r for r in rows if r["key"] not in known]
    if fresh:
        with uow.system_scope("record SLA penalties"):
            uow.create_many("sla_penalty", fresh)
    return len(fresh)


def _order_breaches(uow: UnitOfWork, now: dt.datetime) -> list[dict[str, Any]]:
    found = uow.select("service_order", (
        "id", "contract_id", "window_end", "done_at", "status", "contract_id.penalty_amount",
    )).where(("window_end", "<", now), ("contract_id.penalty_amount", "is not null"),
             ("status", "!=", "cancelled")).all()
    rows = []
    for order in found:
        done = order["done_at"]
        if done is not None and done <= order["window_end"]:
            continue
        if done is None and order["status"] not in _OPEN:
            continue
        rows.append({"contract_id": order["contract_id"], "order_id": order["id"],
                     "kind": "order_window", "breached_at": order["window_end"],
                     "amount": order["contract_id.penalty_amount"],
                     "key": f"order:{order['id']}"})
    return rows


def _ticket_breaches(uow: UnitOfWork, now: dt.datetime) -> list[dict[str, Any]]:
    if "sla_event" not in uow.registry:
        return []
    events = uow.select("sla_event", ("ticket_id", "target", "at", "ticket_id.account_id")).where(
        ("at", ">=", now - dt.timedelta(days=LOOK_BACK_DAYS)), ("at", "<=", now),
        kind="breach").all()
    accounts = sorted({e["ticket_id.account_id"] for e in events if e["ticket_id.account_id"]})
    if not accounts:
        return []
    contracts: dict[int, list[dict[str, Any]]] = {}
    for row in uow.select("service_contract", ("id", "account_id", "starts_on", "ends_on",
                                               "penalty_amount")).where(
            ("account_id", "in", accounts), ("penalty_amount", "is not null"),
            ("status", "in", ["active", "expired", "renewed"])).order_by("id").all():
        contracts.setdefault(row["account_id"], []).append(row)
    rows = []
    for event in events:
        day = event["at"].date()
        for contract in contracts.get(event["ticket_id.account_id"], ()):
            if contract["starts_on"] <= day <= contract["ends_on"]:
                rows.append({"contract_id": contract["id"], "ticket_id": event["ticket_id"],
                             "kind": f"ticket_{event['target']}", "breached_at": event["at"],
                             "amount": contract["penalty_amount"],
                             "key": f"ticket:{event['ticket_id']}:{event['target']}"})
                break
    return rows


def penalty_report(uow: UnitOfWork, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """Per contract, the breaches recorded from *first* to *last* (inclusive): ``number``,
    ``count`` and ``sum`` (a ``Money`` per currency, one row each)."""
    start = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    rows = (uow.select("sla_penalty").where(("breached_at", ">=", start),
                                            ("breached_at", "<", end))
            .group_by("contract_id", "contract_id.number").aggregate(sum=["amount"]))
    return [{"contract_id": r["contract_id"], "number": r["contract_id.number"],
             "count": r["count"], "sum": r["sum_amount"]} for r in rows
            if isinstance(r["sum_amount"], Money)]
