"""The leakage report: work billed while it was covered, and work given free while no
coverage applied, per period, customer and technician.

Every work line of the period is decided again through the entitlement of its unit on its
report's day, as the records stand now (a warranty registered late, a contract signed
backdated, an override), and its charge compared with what the decision says the customer
owes (coverages are read as the system, lines as the actor). Lines are read in pages of
5,000 and decided a page at a time.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.money import Money

from crm_service.entitlement import entitlement_many

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["BILLED_WHILE_COVERED", "FREE_WHILE_NOT_COVERED", "Leak", "LeakageReport", "leakage"]

BILLED_WHILE_COVERED = "billed_while_covered"
FREE_WHILE_NOT_COVERED = "free_while_not_covered"
_PAGE = 5000
_FIELDS = ("id", "unit_id", "line_type", "technician_id", "technician_id.username", "amount",
           "charge", "charge_reason", "report_id.work_date", "order_id", "order_id.account_id",
           "order_id.account_id.name", "unit_id.serial_number")


@attrs.frozen
class Leak:
    """One work line whose charge departs from its entitlement.

    :ivar kind: ``billed_while_covered`` or ``free_while_not_covered``.
    :ivar at_stake: the difference between the charge and what the entitlement says.
    """

    kind: str
    line_id: int
    order_id: int | None
    account: str | None
    technician: str | None
    work_date: dt.date
    line_type: str
    serial_number: str | None
    charged: Money
    expected: Money
    at_stake: Money
    reason: str
    charge_reason: str | None


@attrs.define
class LeakageReport:
    """The leaks of a period and their totals per customer and per technician."""

    first: dt.date
    last: dt.date
    lines_checked: int = 0
    leaks: list[Leak] = attrs.field(factory=list)

    @property
    def clean(self) -> bool:
        return not self.leaks

    def totals(self, by: str) -> dict[tuple[str | None, str, str], Money]:
        """``{(customer or technician, kind, currency): amount at stake}``.

        :param by: ``"account"`` or ``"technician"``.
        """
        sums: dict[tuple[str | None, str, str], decimal.Decimal] = {}
        for leak in self.leaks:
            key = (getattr(leak, by), leak.kind, leak.at_stake.currency)
            sums[key] = sums.get(key, decimal.Decimal(0)) + leak.at_stake.amount
        return {key: Money(amount, key[2]) for key, amount in sorted(
            sums.items(), key=lambda kv: tuple(str(p) for p in kv[0]))}

    def summary(self) -> str:
        if self.clean:
            return f"{self.first} to {self.last}: {self.lines_checked} lines checked, no leakage"
        billed = sum(1 for leak in self.leaks if leak.kind == BILLED_WHILE_COVERED)
        return (f"{self.first} to {self.last}: {self.lines_checked} lines checked, "
                f"{billed} billed while covered, {len(self.leaks) - billed} free while not "
                "covered")


def _pages(uow: UnitOfWork, conditions: list[Any]) -> Iterator[list[dict[str, Any]]]:
    after = 0
    while True:
        rows = (uow.select("work_line", _FIELDS).where(("id", ">", after), *conditions)
                .order_by("id").limit(_PAGE).all())
        if not rows:
            return
        yield rows
        after = rows[-1]["id"]


def leakage(
    uow: UnitOfWork, first: dt.date, last: dt.date, *, account_id: int | None = None,
    technician_id: int | None = None,
) -> LeakageReport:
    """The leaks among the work lines of reports dated *first* to *last* (inclusive),
    optionally of one customer or one technician."""
    conditions: list[Any] = [("report_id.work_date", ">=", first),
                             ("report_id.work_date", "<=", last)]
    if account_id is not None:
        conditions.append(("order_id.account_id", "=", account_id))
    if technician_id is not None:
        conditions.append(("technician_id", "=", technician_id))
    report = LeakageReport(first, last)
    for rows in _pages(uow, conditions):
        report.lines_checked += len(rows)
        with_unit = [r for r in rows if r["unit_id"] is not None]
        with uow.system_scope("decide work lines again for the leakage report"):
            found = entitlement_many(
                uow, [(r["unit_id"], r["report_id.work_date"], r["line_type"])
                      for r in with_unit])
        decisions = dict(zip((r["id"] for r in with_unit), found, strict=True))
        for row in rows:
            amount, charged = row["amount"], row["charge"]
            if amount is None or charged is None:
                continue
            decision = decisions.get(row["id"])
            expected = decision.customer_share(amount) if decision else amount
            reason = decision.reason if decision else "no unit named: billable"
            if charged.amount == expected.amount:
                continue
            kind = BILLED_WHILE_COVERED if charged.amount > expected.amount else (
                FREE_WHILE_NOT_COVERED)
            report.leaks.append(Leak(
                kind, row["id"], row["order_id"], row["order_id.account_id.name"],
                row["technician_id.username"], row["report_id.work_date"], row["line_type"],
                row["unit_id.serial_number"], charged, expected,
                Money(abs(charged.amount - expected.amount), charged.currency), reason,
                row["charge_reason"],
            ))
    return report
