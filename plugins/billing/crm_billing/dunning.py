"""Dunning on the customer's net open position, per instalment.

:func:`preview` reads, set-based, every open instalment due before the day and each
customer's open position, and says per customer which instalments would reach which level
and why, and what is suppressed and why; it writes nothing. :func:`run` makes the notices of
that preview (one per customer, currency and level), raises the instalments' levels, books
fees and interest by the fee policy, plans calls and prints letters; e-mails are sent after
the commit by :func:`crm_billing.notices.send_pending`.

Rules:

- a customer follows the procedure its account names (``dunning_procedure``), else the
  default one (a name the settings lack is noted on the preview, and the default applies);
- levels climb one step per run and never skip: an instalment at level 1 can reach level 2
  only, once the days of level 2 have passed since its due date (``counted_from = "due"``) or
  since its last reminder (``"previous"``);
- blocked instalments (disputes, agreements) are not reminded;
- a customer whose open credit notes and unapplied payments cover the overdue amount is not
  reminded at all; otherwise the notice asks for the overdue amount less those credits;
- interest is residual × rate × days overdue (since the due date) / 365, in the currency's
  places;
- a notice is made once per (customer, currency, level, run date): a rerun, or a second
  worker running at the same time, makes none twice (a unique key).
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import attrs
from crm_orders.totals import currency_places
from crmcore import Actor
from crmcore.money import Money

from crm_billing.payments import credits_of
from crm_billing.settings import BillingSettings, Level

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["CustomerPreview", "Item", "RunSummary", "Suppressed", "preview", "run"]

_FIELDS = ("id", "account_id", "invoice_id.number", "due_date", "residual", "blocked", "dunning_level",
           "last_dunned_on")


class Item(NamedTuple):
    """An instalment a notice reminds, the level it reaches and why.

    A named tuple rather than a frozen attrs class: a preview makes one per overdue
    instalment, and a tuple is made several times faster; it is just as immutable."""

    instalment_id: int
    invoice_number: str | None
    due_date: dt.date
    residual: Money
    level: int
    days_overdue: int
    interest: Money
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"instalment_id": self.instalment_id, "invoice_number": self.invoice_number,
                "due_date": self.due_date.isoformat(), "residual": str(self.residual), "level": self.level,
                "days_overdue": self.days_overdue, "interest": str(self.interest)}


class Suppressed(NamedTuple):
    """An overdue instalment no notice reminds this time, and why (a named tuple, as
    :class:`Item`)."""

    instalment_id: int
    invoice_number: str | None
    residual: Money
    reason: str


@attrs.frozen
class CustomerPreview:
    """What a run would do for one customer in one currency."""

    account_id: int
    currency: str
    overdue: Money
    credits: Money
    items: tuple[Item, ...]
    suppressed: tuple[Suppressed, ...]
    procedure: str = "standard"
    note: str | None = None

    @property
    def levels(self) -> list[int]:
        return sorted({item.level for item in self.items})

    @property
    def amount_due(self) -> Money:
        """The overdue amount less the customer's credits."""
        return self.overdue - self.credits


def _interest(residual: Money, rate: Decimal, days: int) -> Money:
    if not rate or days <= 0:
        return Money(0, residual.currency)
    quantum = Decimal(1).scaleb(-currency_places(residual.currency))
    return Money((residual.amount * rate / Decimal(100) * Decimal(days) / Decimal(365)).quantize(quantum, ROUND_HALF_UP),
                 residual.currency)


def _procedures(uow: UnitOfWork, account_ids: Sequence[int] | None) -> dict[int, str]:
    """The accounts following another procedure than the default (few: read them all)."""
    where: list[Any] = [("dunning_procedure", "!=", None)]
    if account_ids is not None:
        where.append(("id", "in", sorted(set(account_ids))))
    with uow.acting_as(Actor.system()):
        return {r["id"]: r["dunning_procedure"] for r in uow.select("account", fields=("id", "dunning_procedure")).where(*where).all()
                if r["dunning_procedure"]}


def preview(uow: UnitOfWork, on: dt.date, *, account_ids: Sequence[int] | None = None) -> list[CustomerPreview]:
    """Per customer and currency, the instalments a run on *on* would remind, at which level
    and why, and the overdue ones it would not, and why. Writes nothing. It reads the
    instalments the acting user may read (the system actor of the daily job: all of them);
    their customers' credits are summed whoever may read the payments.

    Set-based: one select of the overdue instalments (with their invoices' numbers), two
    grouped reads of the customers' credits and one of the accounts following another
    procedure; the levels are then decided per instalment in one pass, with the texts and
    amounts that repeat (zero interest, the reasons of a level) made once per run.

    While it reads and decides, the cyclic garbage collector waits: the rows, amounts and
    items are many small objects without cycles, which reference counting frees, and the
    collector's repeated scans of them would cost a third of the time."""
    if not gc.isenabled():
        return _preview(uow, on, account_ids)
    gc.disable()
    try:
        return _preview(uow, on, account_ids)
    finally:
        gc.enable()


def _preview(uow: UnitOfWork, on: dt.date, account_ids: Sequence[int] | None) -> list[CustomerPreview]:
    settings = uow.crm.state(BillingSettings)
    where: list[Any] = [("residual", ">", 0), ("due_date", "<", on)]
    if account_ids is not None:
        where.append(("account_id", "in", sorted(set(account_ids))))
    # as the acting user: a preview shows the instalments (and invoice numbers) they may read
    rows = uow.select("instalment", fields=_FIELDS).where(*where).order_by("account_id", "due_date", "id").all()
    if not rows:
        return []
    credits_by = credits_of(uow, account_ids)
    procedures = _procedures(uow, account_ids)
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["account_id"], row["residual"].currency)
        members = groups.get(key)
        if members is None:
            groups[key] = [row]
        else:
            members.append(row)
    decide = _Decider(on)
    found = []
    for (account, currency), members in groups.items():
        zero = decide.zero(currency)
        held = credits_by.get((account, currency))
        credits = held[0] + held[1] if held is not None else zero
        overdue = Money(sum([r["residual"].amount for r in members if not r["blocked"]], Decimal(0)), currency)
        covered = (f"credits and unapplied payments of {credits} cover the overdue {overdue}"
                   if overdue.amount > 0 and credits >= overdue else None)
        named = procedures.get(account)
        procedure: str = named if named and named in settings.procedures else settings.default_procedure
        note = (f"account {account} names the dunning procedure {named!r}, which the settings lack; "
                f"{procedure!r} applies" if named and named != procedure else None)
        items, suppressed = decide.members(members, procedure, settings.levels_of(procedure), covered)
        found.append(CustomerPreview(account, currency, overdue, credits, tuple(items), tuple(suppressed), procedure, note))
    return found


class _Decider:
    """The level each overdue instalment reaches on *on*, and why; what repeats across
    instalments (zero amounts, interest of equal residuals and days, the texts of a level) is
    made once."""

    def __init__(self, on: dt.date) -> None:
        self.on = on
        self._zeros: dict[str, Money] = {}
        self._interest: dict[tuple[Decimal, str, Decimal, int], Money] = {}
        self._last: dict[int, str] = {}
        #: per procedure (its levels), the decision and reason of a (since, due date, level reached)
        self._texts: dict[str, dict[tuple[dt.date, dt.date, int], tuple[bool, str, int]]] = {}

    def zero(self, currency: str) -> Money:
        found = self._zeros.get(currency)
        if found is None:
            found = self._zeros[currency] = Money(0, currency)
        return found

    def interest(self, residual: Money, rate: Decimal, days: int) -> Money:
        if not rate or days <= 0:
            return self.zero(residual.currency)
        key = (residual.amount, residual.currency, rate, days)
        found = self._interest.get(key)
        if found is None:
            found = self._interest[key] = _interest(residual, rate, days)
        return found

    def members(self, members: list[dict[str, Any]], procedure: str, levels: tuple[Level, ...], covered: str | None
                ) -> tuple[list[Item], list[Suppressed]]:
        on = self.on
        items: list[Item] = []
        suppressed: list[Suppressed] = []
        last = len(levels)
        texts = self._texts.setdefault(procedure, {})
        for row in members:
            number = row["invoice_id.number"]
            if row["blocked"]:
                suppressed.append(Suppressed(row["id"], number, row["residual"], "blocked"))
                continue
            if covered:
                suppressed.append(Suppressed(row["id"], number, row["residual"], covered))
                continue
            reached = row["dunning_level"] or 0
            if reached >= last:
                text = self._last.get(last)
                if text is None:
                    text = self._last[last] = f"the last level ({last}) was reached"
                suppressed.append(Suppressed(row["id"], number, row["residual"], text))
                continue
            level = levels[reached]
            due = row["due_date"]
            previous = row["last_dunned_on"]
            since = due if level.counted_from == "due" or not previous else previous
            key = (since, due, reached)
            known = texts.get(key)
            if known is None:
                waited = (on - since).days
                origin = "the due date" if since == due else f"the level {reached} reminder of {since}"
                if waited < level.days:
                    known = (False, f"level {level.number} after {level.days} days since {origin}; {waited} so far", 0)
                else:
                    known = (True, f"{waited} days since {origin} (level {level.number} after {level.days})", (on - due).days)
                texts[key] = known
            reminded, reason, days_overdue = known
            if not reminded:
                suppressed.append(Suppressed(row["id"], number, row["residual"], reason))
                continue
            items.append(Item(row["id"], number, due, row["residual"], level.number, days_overdue,
                              self.interest(row["residual"], level.interest_rate, days_overdue), reason))
        return items, suppressed


@attrs.frozen
class RunSummary:
    """What a run did: notices made per channel, instalments raised, notices already made."""

    notices: tuple[Record, ...]
    instalments: int
    already_done: int
    suppressed: int

    def lines(self) -> list[str]:
        channels: dict[str, int] = {}
        for notice in self.notices:
            channels[notice.channel] = channels.get(notice.channel, 0) + 1
        made = ", ".join(f"{count} {channel}" for channel, count in sorted(channels.items())) or "none"
        return [f"notices made: {made}", f"instalments raised a level: {self.instalments}",
                f"already made before: {self.already_done}", f"suppressed or waiting: {self.suppressed}"]


#: Notices made per set-based step of a run (and per report of its progress).
RUN_CHUNK = 500


def run(uow: UnitOfWork, on: dt.date, *, account_ids: Sequence[int] | None = None,
        progress: Callable[[int, int], Any] | None = None) -> RunSummary:
    """Make the notices of :func:`preview` on *on* in *uow* (the caller commits, then sends
    the e-mails with :func:`crm_billing.notices.send_pending`), for the instalments the acting
    user may read; they need the privilege to create dunning notices.

    The notices are made :data:`RUN_CHUNK` at a time, each chunk set-based (the notices, the
    instalments' levels, then fees, letters and calls).

    :raises PermissionDeniedError: when the acting user may not create dunning notices.
    :param progress: called as ``progress(done, total)`` with the notices considered so far
        and in all: once with ``done = 0`` after the preview, then after each chunk (the
        command line draws its progress bar from it, the daily job logs it).
    """
    uow.require("dunning_notice", "create")
    settings = uow.crm.state(BillingSettings)
    previews = preview(uow, on, account_ids=account_ids)
    planned: list[tuple[CustomerPreview, int, list[Item]]] = []
    for customer in previews:
        by_level: dict[int, list[Item]] = {}
        for item in customer.items:
            by_level.setdefault(item.level, []).append(item)
        planned.extend((customer, level, items) for level, items in sorted(by_level.items()))
    total = len(planned)
    if progress is not None:
        progress(0, total)
    made: list[Record] = []
    raised = already = 0
    for start in range(0, total, RUN_CHUNK):
        chunk = planned[start:start + RUN_CHUNK]
        notices, count = _run_chunk(uow, on, settings, chunk)
        made.extend(notices)
        raised += count
        already += len(chunk) - len(notices)
        if progress is not None:
            progress(min(start + RUN_CHUNK, total), total)
    suppressed = sum(len(c.suppressed) for c in previews)
    return RunSummary(tuple(made), raised, already, suppressed)


def _run_chunk(uow: UnitOfWork, on: dt.date, settings: BillingSettings,
               planned: Sequence[tuple[CustomerPreview, int, list[Item]]]) -> tuple[list[Record], int]:
    """The notices of *planned* not made before (by their keys), the instalments raised and
    the notices booked: ``(notices made, instalments raised)``."""
    from crm_billing import notices

    keys = [f"{c.account_id}:{c.currency}:{level}:{on.isoformat()}" for c, level, _ in planned]
    with uow.acting_as(Actor.system()):
        done = {r.values["dunning_key"] for r in uow.find_many("dunning_notice", "dunning_key", keys, fields=("dunning_key",))} if keys else set()
    rows: list[dict[str, Any]] = []
    raised: list[tuple[int, int]] = []
    for key, (customer, level_number, items) in zip(keys, planned, strict=True):
        if key in done:
            continue
        level = settings.levels_of(customer.procedure)[level_number - 1]
        currency = customer.currency
        interest = sum((i.interest for i in items), Money(0, currency))
        fee = Money(level.fee, currency)
        if settings.fee_policy == "waive":
            fee, interest = Money(0, currency), Money(0, currency)
        rows.append({"account_id": customer.account_id, "level": level_number, "run_date": on, "channel": level.channel,
                     "status": "planned" if level.channel == "phone" else "pending",
                     "items": [i.as_json() for i in items], "amount_due": customer.amount_due, "fee": fee,
                     "interest": interest, "fee_policy": settings.fee_policy, "attempts": 0, "dunning_key": key,
                     "procedure": customer.procedure})
        raised.extend((i.instalment_id, level_number) for i in items)
    if not rows:
        return [], 0
    with uow.acting_as(Actor.system()):
        made = uow.create_many("dunning_notice", rows)
        if raised:
            levels_by_id = dict(raised)
            instalments = uow.find_many("instalment", "id", sorted(levels_by_id))
            uow.update_many("instalment", [(i, {"dunning_level": levels_by_id[i.id], "last_dunned_on": on}) for i in instalments])
        made = notices.book(uow, made, settings, on)
    return made, len(raised)
