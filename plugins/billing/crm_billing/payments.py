"""Payments and the customer's open position.

A payment is applied to the account's open instalments in its currency, the oldest due first
(or to the instalments named); what no instalment takes stays on the payment as
``unapplied``: an over-payment is the customer's credit, an under-payment leaves the
instalment's residual open. Both are explicit in :func:`open_position`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from crmcore import Actor
from crmcore.errors import ValidationError
from crmcore.money import Money

from crm_billing import ledger

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["OpenPosition", "apply_payments", "credits_of", "open_positions", "record_payment", "record_payments"]


def record_payment(uow: UnitOfWork, *, account_id: int, amount: Money | str, received_on: dt.date,
                   reference: str | None = None, instalment_ids: Sequence[int] = (), **values: Any) -> Record:
    """Record a payment of *account_id* and apply it (to *instalment_ids* in that order when
    given, else oldest due first). Returns the payment with its ``unapplied`` part."""
    return record_payments(uow, [{"account_id": account_id, "amount": amount, "received_on": received_on,
                                  "reference": reference, "instalment_ids": list(instalment_ids), **values}])[0]


def record_payments(uow: UnitOfWork, rows: Sequence[dict[str, Any]]) -> list[Record]:
    """Record many payments (dicts as :func:`record_payment`'s arguments), set-based, and apply
    them in order."""
    named = [list(row.pop("instalment_ids", None) or ()) for row in rows]
    made = uow.create_many("payment", [dict(row) for row in rows])
    return apply_payments(uow, made, named)


def apply_payments(uow: UnitOfWork, payments: Sequence[Record], named: Sequence[Sequence[int]] | None = None) -> list[Record]:
    """Apply *payments* (with nothing applied yet) to open instalments."""
    named = named or [()] * len(payments)
    accounts = sorted({p.account_id for p in payments})
    pool = ledger.open_instalments(uow, account_ids=accounts)
    by_account: dict[int, list[Record]] = {}
    for instalment in pool:
        by_account.setdefault(instalment.account_id, []).append(instalment)
    wanted = sorted({i for ids in named for i in ids})
    if wanted:
        known = {i.id: i for i in pool}
        with uow.acting_as(Actor.system()):
            present = {r.id: r for r in uow.find_many("instalment", "id", wanted)}
        for payment, ids in zip(payments, named, strict=True):
            for instalment_id in ids:
                found = present.get(instalment_id)
                if found is None or found.account_id != payment.account_id:
                    raise ValidationError({"instalment_ids": [
                        f"instalment {instalment_id} is not an instalment of account {payment.account_id}"]})
                if instalment_id not in known:
                    raise ValidationError({"instalment_ids": [f"instalment {instalment_id} is already settled"]})
    changed_invoices: set[int] = set()
    updates = []
    current = {i.id: i for i in pool}
    for payment, ids in zip(payments, named, strict=True):
        if ids:
            targets = [current[i] for i in ids]
        else:
            targets = [current[i.id] for i in by_account.get(payment.account_id, [])]
        left, changed = ledger.allocate(uow, {"payment_id": payment.id}, payment.amount, targets)
        for instalment in changed:
            current[instalment.id] = instalment
            changed_invoices.add(instalment.invoice_id)
        updates.append((payment, {"unapplied": left}))
    with uow.acting_as(Actor.system()):
        done = uow.update_many("payment", updates) if updates else []
    ledger.recompute_invoices(uow, changed_invoices)
    return done


@attrs.frozen
class OpenPosition:
    """An account's net open position in one currency.

    :ivar receivable: residuals of its posted invoices' instalments.
    :ivar overdue: residuals due before the day asked about (blocked ones aside).
    :ivar unapplied: payments no instalment took.
    :ivar credits: credit notes not yet set against an invoice.
    """

    account_id: int
    currency: str
    receivable: Money
    overdue: Money
    blocked: Money
    unapplied: Money
    credits: Money

    @property
    def net(self) -> Money:
        """What the customer owes once its credits and unapplied payments count (negative: we owe)."""
        return self.receivable - self.unapplied - self.credits

    @property
    def net_overdue(self) -> Money:
        """What is overdue and not covered by the customer's credits."""
        return self.overdue - self.unapplied - self.credits


def open_positions(uow: UnitOfWork, account_ids: Iterable[int] | None = None, *, on: dt.date) -> dict[tuple[int, str], OpenPosition]:
    """The open positions by (account, currency), set-based: three grouped reads."""
    wanted = sorted(set(account_ids)) if account_ids is not None else None
    where: list[Any] = [("account_id", "in", wanted)] if wanted is not None else []
    parts: dict[tuple[int, str], dict[str, Decimal]] = {}

    def add(account: int, money: Any, kind: str) -> None:
        if money is None:
            return
        key = (account, money.currency)
        parts.setdefault(key, dict.fromkeys(("receivable", "overdue", "blocked", "unapplied", "credits"), Decimal(0)))
        parts[key][kind] += money.amount

    with uow.acting_as(Actor.system()):
        for row in (uow.select("instalment", fields=("account_id", "blocked")).where(("residual", ">", 0), *where)
                    .group_by("account_id", "blocked").aggregate(sum=["residual"])):
            add(row["account_id"], row["sum_residual"], "receivable")
            if row["blocked"]:
                add(row["account_id"], row["sum_residual"], "blocked")
        for row in (uow.select("instalment", fields=("account_id",))
                    .where(("residual", ">", 0), ("due_date", "<", on), ("blocked", "!=", True), *where)
                    .group_by("account_id").aggregate(sum=["residual"])):
            add(row["account_id"], row["sum_residual"], "overdue")
    for (account, _), (unapplied, credits) in credits_of(uow, wanted).items():
        add(account, unapplied, "unapplied")
        add(account, credits, "credits")
    return {key: OpenPosition(key[0], key[1], **{k: Money(v, key[1]) for k, v in values.items()})
            for key, values in sorted(parts.items())}


def credits_of(uow: UnitOfWork, account_ids: Sequence[int] | None) -> dict[tuple[int, str], tuple[Money, Money]]:
    """Per (account, currency): unapplied payments and open credit notes (two grouped reads;
    every account when *account_ids* is ``None``)."""
    where: list[Any] = [("account_id", "in", sorted(set(account_ids)))] if account_ids is not None else []
    found: dict[tuple[int, str], list[Money]] = {}

    def add(account: int, money: Money | None, index: int) -> None:
        if money is None:
            return
        pair = found.setdefault((account, money.currency), [Money(0, money.currency), Money(0, money.currency)])
        pair[index] = pair[index] + money

    with uow.acting_as(Actor.system()):
        for row in (uow.select("payment", fields=("account_id",)).where(("unapplied", ">", 0), *where)
                    .group_by("account_id").aggregate(sum=["unapplied"])):
            add(row["account_id"], row["sum_unapplied"], 0)
        for row in (uow.select("invoice", fields=("account_id",))
                    .where(kind="credit_note", state="posted").where(("open_amount", ">", 0), *where)
                    .group_by("account_id").aggregate(sum=["open_amount"])):
            add(row["account_id"], row["sum_open_amount"], 1)
    return {key: (pair[0], pair[1]) for key, pair in found.items()}
