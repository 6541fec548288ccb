"""Service contracts: validity, covered units and sites, the help desk's SLA policy, renewal.

A contract covers, while ``active`` and between ``starts_on`` and ``ends_on``, the units and
sites its items name (an item naming neither covers every unit of the account), at the
percentage it declares per line type. The daily sweep (job ``service.daily``) reminds the
owner ``remind_days`` before the end with a task on the account, then, once the last day has
passed, renews a contract marked ``auto_renew`` (a new contract from the next day, the same
coverage and items, the old one ``renewed``) or expires it. Each step happens once: a
contract reminded keeps ``reminded_on``, one renewed or expired is no longer active.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.errors import ValidationError

from crm_service.entities import LINE_TYPES
from crm_service.warranty import end_of

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "PERIOD_MONTHS",
    "SweepResult",
    "bill_fees",
    "check_contract",
    "check_item",
    "contract_sweep",
    "renewal_number",
]

#: Months per billing period.
PERIOD_MONTHS = {"monthly": 1, "quarterly": 3, "yearly": 12}
_MAX_PERIODS = 24


def check_contract(uow: UnitOfWork, values: Mapping[str, Any]) -> None:
    """A contract ends on or after its start; its SLA policy exists (with the help desk).

    :raises ValidationError: naming the contract and the value at fault.
    """
    starts, ends = values.get("starts_on"), values.get("ends_on")
    if starts is not None and ends is not None and ends < starts:
        raise ValidationError(
            {"ends_on": [f"contract {values.get('number')!r} ends on {ends} before it starts "
                         f"on {starts}"]},
            entity="service_contract",
        )
    policy = values.get("sla_policy_id")
    if policy is not None and "sla_policy" in uow.registry:
        if not uow.select("sla_policy").where(id=policy).exists():
            raise ValidationError(
                {"sla_policy_id": [f"no SLA policy with id {policy!r}; list them with "
                                   "'crm list sla_policy'"]},
                entity="service_contract",
            )


def check_item(values: Mapping[str, Any]) -> None:
    """An item names a unit or a site, not both.

    :raises ValidationError: naming both.
    """
    if values.get("unit_id") is not None and values.get("location_id") is not None:
        raise ValidationError(
            {"location_id": [
                f"a contract item names unit {values['unit_id']} and site "
                f"{values['location_id']}; give one of them (one item per unit or site)"
            ]},
            entity="contract_item",
        )


def renewal_number(number: str) -> str:
    """The number of a renewal: ``SC-1`` becomes ``SC-1/2``, ``SC-1/2`` becomes ``SC-1/3``."""
    base, _, count = number.rpartition("/")
    if base and count.isdigit():
        return f"{base}/{int(count) + 1}"
    return f"{number}/2"


class SweepResult:
    """What one contract sweep did: ids of contracts reminded, renewed (old ids) and expired."""

    def __init__(self) -> None:
        self.reminded: list[int] = []
        self.renewed: list[int] = []
        self.expired: list[int] = []

    def summary(self) -> str:
        return (
            f"{len(self.reminded)} reminded, {len(self.renewed)} renewed, "
            f"{len(self.expired)} expired"
        )

    def __repr__(self) -> str:
        return f"<SweepResult {self.summary()}>"


_COPIED = ("name", "account_id", "sla_policy_id", "auto_renew", "renewal_months", "remind_days",
           "owner_id", *(f"{t}_pct" for t in LINE_TYPES))


def contract_sweep(uow: UnitOfWork, today: dt.date) -> SweepResult:
    """Remind, renew and expire active contracts as of *today* (set-based: one read of the
    contracts due, one write per kind of change)."""
    result = SweepResult()
    horizon = today + dt.timedelta(days=365)
    due = uow.query("service_contract").where(
        ("ends_on", "<=", horizon), status="active"
    ).order_by("id").all()
    remind = [c for c in due if c.reminded_on is None and c.ends_on >= today
              and c.ends_on - dt.timedelta(days=c.remind_days) <= today]
    if remind:
        uow.create_many("activity", [
            {"kind": "task", "subject": f"Renew service contract {c.number} (ends {c.ends_on})",
             "account_id": c.account_id, "owner_id": c.owner_id, "status": "planned",
             "due_at": dt.datetime.combine(c.ends_on, dt.time(9), tzinfo=dt.UTC),
             "description": f"Service contract {c.number} ends on {c.ends_on}; "
             + ("it renews by itself." if c.auto_renew else "it expires unless renewed.")}
            for c in remind
        ])
        fresh = {
            c.id: c
            for c in uow.update_many(
                "service_contract", [(c, {"reminded_on": today}) for c in remind]
            )
        }
        result.reminded = [c.id for c in remind]
        due = [fresh.get(c.id, c) for c in due]
    ended = [c for c in due if c.ends_on < today]
    renew = [c for c in ended if c.auto_renew]
    expire = [c for c in ended if not c.auto_renew]
    if renew:
        _renew(uow, renew)
        result.renewed = [c.id for c in renew]
    if expire:
        uow.update_many("service_contract", [(c, {"status": "expired"}) for c in expire])
        result.expired = [c.id for c in expire]
    return result


def _renew(uow: UnitOfWork, contracts: Sequence[Record]) -> None:
    rows = []
    for c in contracts:
        starts = c.ends_on + dt.timedelta(days=1)
        row = {k: c.values.get(k) for k in _COPIED}
        row.update(number=renewal_number(c.number), starts_on=starts,
                   ends_on=end_of(starts, c.renewal_months), status="active",
                   renewed_from_id=c.id)
        rows.append(row)
    made = uow.create_many("service_contract", rows)
    new_of = {c.id: m.id for c, m in zip(contracts, made, strict=True)}
    items = uow.select("contract_item", ("contract_id", "unit_id", "location_id")).where(
        ("contract_id", "in", list(new_of))).order_by("id").all()
    if items:
        uow.create_many("contract_item", [
            {"contract_id": new_of[i["contract_id"]], "unit_id": i["unit_id"],
             "location_id": i["location_id"]} for i in items
        ])
    uow.update_many("service_contract", [(c, {"status": "renewed"}) for c in contracts])


def bill_fees(uow: UnitOfWork, today: dt.date) -> int:
    """Offer the billing periods of active contracts' fees that have begun by *today* to
    :func:`~crm_service.hookspecs.service_contract_fee` (at most 24 per contract a run) and
    move ``billed_until`` past those a plugin billed.

    :returns: the number of periods billed.
    """
    due = uow.query("service_contract").where(
        ("fee", "is not null"), ("starts_on", "<=", today), status="active").order_by("id").all()
    billed = 0
    plan: list[tuple[Record, dict[str, Any]]] = []
    for contract in due:
        first = (contract.billed_until + dt.timedelta(days=1) if contract.billed_until
                 else contract.starts_on)
        until = contract.billed_until
        for _ in range(_MAX_PERIODS):
            if first > today or first > contract.ends_on:
                break
            last = min(end_of(first, PERIOD_MONTHS[contract.billing_period]), contract.ends_on)
            ref = uow.crm.hook.service_contract_fee(uow=uow, contract=contract, first=first,
                                                     last=last, amount=contract.fee)
            if ref is None:
                break
            until, first = last, last + dt.timedelta(days=1)
            billed += 1
        if until != contract.billed_until:
            plan.append((contract, {"billed_until": until}))
    if plan:
        with uow.system_scope("record the contract fees billed"):
            uow.update_many("service_contract", plan)
    return billed
