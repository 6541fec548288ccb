"""Quotes: made from opportunities, from an account or directly, priced by the catalog; sent,
revised into new versions, accepted, rejected or expired.

Each function works inside the caller's unit of work, as its actor (the read-only bookkeeping
of versions and totals is written as the system once the actor's access is checked)::

    from crm_orders.quotes import accept_quote, quote_from_opportunity, revise_quote, send_quote

    with crm.unit_of_work("ada") as uow:
        quote = quote_from_opportunity(uow, 7)
        sent = send_quote(uow, quote.id)          # sent.held: an approval is pending
        quote2 = revise_quote(uow, quote.id)      # version 2, a draft; version 1 superseded
        uow.commit()
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
from crmcore import Actor
from crmcore.errors import TransitionError, ValidationError
from crmcore.workflow import APPROVED, PENDING, REJECTED, request_approval

from crm_orders import documents, following
from crm_orders.pricing import Wanted, price_wanted
from crm_orders.settings import orders_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "DISCOUNT_RULE",
    "QuoteSpec",
    "SendResult",
    "accept_quote",
    "add_lines",
    "check_sends",
    "create_quotes",
    "expire_quotes",
    "new_quote",
    "quote_from_opportunity",
    "quotes_from_opportunities",
    "reject_quote",
    "revise_quote",
    "send_quote",
    "today_in",
]

#: The rule name of the approvals discounts ask for.
DISCOUNT_RULE = "orders.discount_approval"
#: From this many quotes on, the cyclic garbage collector pauses while they are made.
_BATCH = 200
_OPPORTUNITY_LINE_FIELDS = ("id", "opportunity_id", "product_id", "product", "description", "quantity", "unit_price", "position")


def today_in(uow: UnitOfWork) -> dt.date:
    """Today in the deployment's time zone."""
    return dt.datetime.now(uow.registry.timezone).date()


@attrs.frozen
class QuoteSpec:
    """A quote to make: its header and the lines to price."""

    title: str
    currency: str
    lines: tuple[Wanted, ...] = ()
    account_id: int | None = None
    opportunity_id: int | None = None
    valid_until: dt.date | None = None
    pricing_date: dt.date | None = None
    document_discount: Decimal | None = None
    notes: str | None = None


@attrs.frozen
class SendResult:
    """What sending did: the quote (sent, or still a draft while *approval* is pending)."""

    quote: Record
    approval: Record | None = None

    @property
    def held(self) -> bool:
        return self.approval is not None and self.approval.values.get("status") == PENDING


@contextlib.contextmanager
def _collector_paused(size: int) -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch of *size* quotes is made (from
    :data:`_BATCH` on): making quotes makes many small objects without cycles (rows, snapshots,
    totals, records, audit texts), which reference counting frees, and the collector's repeated
    scans of them would cost about a third of the time."""
    if size < _BATCH or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def create_quotes(uow: UnitOfWork, specs: Sequence[QuoteSpec]) -> list[Record]:
    """Make draft quotes, their lines priced by the catalog in one call per currency, their
    totals computed before they are written; set-based (a few statements whatever the number of
    quotes and lines)."""
    if not specs:
        return []
    with _collector_paused(len(specs)):
        return _create_quotes(uow, specs)


def _create_quotes(uow: UnitOfWork, specs: Sequence[QuoteSpec]) -> list[Record]:
    settings = orders_settings(uow.crm)
    today = today_in(uow)
    rows = []
    for spec in specs:
        rounding = settings.rounding(spec.currency)
        on = spec.pricing_date or today
        rows.append({
            "title": spec.title, "account_id": spec.account_id, "opportunity_id": spec.opportunity_id,
            "currency": spec.currency, "state": "draft", "notes": spec.notes,
            "valid_until": spec.valid_until or on + dt.timedelta(days=settings.quote_valid_days),
            "document_discount": spec.document_discount or Decimal(0), "pricing_date": on,
            "rounding_mode": rounding.mode, "rounding_method": rounding.method, "rounding_places": rounding.places,
        })
    priced = _priced_rows(uow, specs, today)
    documents.prepare(uow, "quote", [documents.totals_of(row, lines) for row, lines in zip(rows, priced, strict=True)])
    quotes = uow.create_many("quote", rows)
    line_rows = [{**line, "quote_id": quote.id} for quote, lines in zip(quotes, priced, strict=True) for line in lines]
    if line_rows:
        uow.create_many("quote_line", line_rows, known={"quote": [q.id for q in quotes]})
    documents.forget(uow, "quote", [q.id for q in quotes])
    following.follow_amounts(uow, quotes)
    return quotes


def _priced_rows(uow: UnitOfWork, specs: Sequence[QuoteSpec], today: dt.date) -> list[list[dict[str, Any]]]:
    """The priced line values of each spec (one pricing call per currency and day)."""
    by_key: dict[tuple[str, dt.date], list[tuple[int, Wanted]]] = {}
    for index, spec in enumerate(specs):
        by_key.setdefault((spec.currency, spec.pricing_date or today), []).extend((index, line) for line in spec.lines)
    found: list[list[dict[str, Any]]] = [[] for _ in specs]
    for (currency, on), wanted in by_key.items():
        priced = price_wanted(uow, [line for _, line in wanted], currency=currency, on=on)
        for (index, _), values in zip(wanted, priced, strict=True):
            found[index].append({**values, "position": len(found[index]) + 1})
    return found


def new_quote(uow: UnitOfWork, *, title: str | None = None, account_id: int | None = None, currency: str | None = None,
              lines: Sequence[Wanted] = (), **header: Any) -> Record:
    """A draft quote for an account, or for nobody in particular (*account_id* ``None``)."""
    if account_id is not None:
        account = uow.get("account", account_id)
        title = title or f"Quote for {account.values.get('name')}"
    lines = tuple(attrs.evolve(line, account_id=line.account_id or account_id) for line in lines)
    spec = QuoteSpec(title=title or "Quote", currency=currency or uow.registry.currency, lines=lines,
                     account_id=account_id, **header)
    return create_quotes(uow, [spec])[0]


def quotes_from_opportunities(uow: UnitOfWork, opportunity_ids: Sequence[int], **header: Any) -> list[Record]:
    """A draft quote per opportunity, in the order given: lines naming a catalog product are
    priced for the opportunity's account; free-text lines keep their unit price. Two reads
    whatever the number of opportunities.

    :raises NotFoundError: for an opportunity the actor may not read.
    """
    with _collector_paused(len(opportunity_ids)):
        return _quotes_from_opportunities(uow, opportunity_ids, header)


def _quotes_from_opportunities(uow: UnitOfWork, opportunity_ids: Sequence[int], header: dict[str, Any]) -> list[Record]:
    opportunities = {o.id: o for o in uow.get_many("opportunity", opportunity_ids)}
    for opportunity_id in opportunity_ids:
        if opportunity_id not in opportunities:
            uow.get("opportunity", opportunity_id)  # raises NotFoundError naming it
    lines: dict[int, list[dict[str, Any]]] = {}
    wanted_ids = sorted(opportunities)
    for start in range(0, len(wanted_ids), 500):
        for row in (uow.select("opportunity_line", fields=_OPPORTUNITY_LINE_FIELDS)
                    .where(("opportunity_id", "in", wanted_ids[start:start + 500]))
                    .order_by("opportunity_id", "position", "id").all()):
            lines.setdefault(row["opportunity_id"], []).append(row)
    specs = []
    for opportunity_id in opportunity_ids:
        opportunity = opportunities[opportunity_id].values
        account_id = opportunity.get("account_id")
        amount = opportunity.get("amount")
        currency = header.get("currency") or (amount.currency if amount is not None else uow.registry.currency)
        wanted = tuple(
            Wanted(quantity=Decimal(row["quantity"]), product_id=row.get("product_id"), account_id=account_id,
                   description=row.get("description") or row.get("product"),
                   unit_price=None if row.get("product_id") else row.get("unit_price"),
                   opportunity_line_id=row["id"])
            for row in lines.get(opportunity_id, ())
        )
        specs.append(QuoteSpec(title=header.get("title") or f"Quote: {opportunity.get('name')}", currency=currency,
                               lines=wanted, account_id=account_id, opportunity_id=opportunity_id,
                               **{k: v for k, v in header.items() if k not in ("title", "currency")}))
    return create_quotes(uow, specs)


def quote_from_opportunity(uow: UnitOfWork, opportunity_id: int, **header: Any) -> Record:
    """A draft quote from one opportunity (see :func:`quotes_from_opportunities`)."""
    return quotes_from_opportunities(uow, [opportunity_id], **header)[0]


def _draft(uow: UnitOfWork, quote_id: int) -> Record:
    quote = uow.get("quote", quote_id)
    if quote.values.get("state") != "draft":
        raise ValidationError(f"quote {quote.id} is {quote.values.get('state')!r}; only a draft changes (revise it for a new version)")
    return quote


def add_lines(uow: UnitOfWork, quote_id: int, lines: Sequence[Wanted]) -> Record:
    """Price and add *lines* to a draft quote; returns the quote with its new totals."""
    quote = _draft(uow, quote_id)
    uow.check_access(quote, "update")
    values = quote.values
    on = values.get("pricing_date") or today_in(uow)
    lines = [attrs.evolve(line, account_id=line.account_id or values.get("account_id")) for line in lines]
    start = uow.select("quote_line").where(quote_id=quote.id).count()
    rows = [{**row, "quote_id": quote.id, "position": start + row["position"]}
            for row in price_wanted(uow, lines, currency=values["currency"], on=on)]
    uow.create_many("quote_line", rows)
    documents.refresh(uow, "quote", [quote.id])
    return _reread(uow, quote.id)


def _reread(uow: UnitOfWork, quote_id: int) -> Record:
    with uow.acting_as(Actor.system()):
        quote = uow.get("quote", quote_id)
    following.follow_amounts(uow, [quote])
    return uow.get("quote", quote_id)


def _current(quote: Record, doing: str) -> None:
    if not quote.values.get("is_current"):
        raise ValidationError(
            f"quote {quote.id} (version {quote.values.get('version_number')}) was superseded by quote "
            f"{quote.values.get('superseded_by_id')}; {doing} the current version instead")


def send_quote(uow: UnitOfWork, quote_id: int) -> SendResult:
    """Send a draft quote: its version is frozen (lines and pricing fields can no longer
    change) and its opportunity moves to ``quotation_sent`` where the pipeline allows.

    A line discount above ``approval_discount_percent`` first asks the ``approval_role`` for
    an approval; while it is pending, the quote stays a draft (``SendResult.held``) and sending
    again after the approval sends it.

    :raises ValidationError: for a quote without lines, superseded or not a draft.
    :raises TransitionError: when the approval was rejected.
    """
    quote = _draft(uow, quote_id)
    _current(quote, "send")
    totals = documents.refresh(uow, "quote", [quote.id])[quote.id]
    if not totals.lines:
        raise ValidationError(f"quote {quote.id} has no lines; add lines before sending it")
    settings = orders_settings(uow.crm)
    approval = None
    discount = totals.max_discount_percent
    if discount > settings.approval_discount_percent:
        approval = request_approval(
            uow, quote, settings.approval_role, rule=DISCOUNT_RULE,
            message=f"quote {quote.id} gives a discount of {discount}% (above {settings.approval_discount_percent}%)")
        if approval.values.get("status") == PENDING:
            return SendResult(uow.get("quote", quote.id), approval)
        if approval.values.get("status") == REJECTED:
            raise TransitionError(
                f"quote {quote.id} cannot be sent: approval {approval.id} of its {discount}% discount was rejected; "
                f"lower the discount to {settings.approval_discount_percent}% or less, or revise the quote")
    sent = uow.move(uow.get("quote", quote.id), "sent")
    following.quotation_sent(uow, [sent])
    return SendResult(sent, approval)


def check_sends(uow: UnitOfWork, quotes: Sequence[Record]) -> None:
    """Before quotes move to ``sent`` (``crm_before_move``), whoever moves them: a quote whose
    discount is above ``approval_discount_percent`` needs an approved discount approval (one
    read of the lines, one of the approvals, for the batch).

    :raises TransitionError: naming the quote, its discount and how to ask for the approval.
    """
    if not quotes:
        return
    settings = orders_settings(uow.crm)
    ids = [q.id for q in quotes]
    lines = documents.lines_of(uow, documents.DOCUMENTS["quote"], ids)
    over = {}
    for quote in quotes:
        discount = documents.totals_of(quote.values, lines[quote.id]).max_discount_percent
        if discount > settings.approval_discount_percent:
            over[quote.id] = discount
    if not over:
        return
    with uow.acting_as(Actor.system()):
        approved = {row["record_id"] for row in uow.select("approval", fields=("record_id",)).where(
            ("record_id", "in", sorted(over)), record_entity="quote", rule=DISCOUNT_RULE, status=APPROVED).all()}
    for quote_id, discount in over.items():
        if quote_id not in approved:
            raise TransitionError(
                f"quote {quote_id} cannot move to 'sent': its discount of {discount}% is above "
                f"{settings.approval_discount_percent}% and needs the approval of role {settings.approval_role!r}; "
                f"'crm quotes send {quote_id}' asks for it")


def revise_quote(uow: UnitOfWork, quote_id: int, *, reprice: bool = False) -> Record:
    """A new draft version of a sent, rejected or expired quote, with the same lines and their
    price snapshots (or priced again by today's catalog with *reprice*); the old version is
    superseded and no longer current."""
    old = uow.get("quote", quote_id)
    _current(old, "revise")
    if old.values.get("state") not in ("sent", "rejected", "expired"):
        raise ValidationError(f"quote {old.id} is {old.values.get('state')!r}; only a sent, rejected or expired quote is revised"
                              + (" (a draft is changed as it is)" if old.values.get("state") == "draft" else ""))
    values = old.values
    keep = ("title", "account_id", "opportunity_id", "notes")
    header = {name: values.get(name) for name in keep}
    lines = documents.lines_of(uow, documents.DOCUMENTS["quote"], [old.id], fields=(*documents.LINE_FIELDS, "id", "opportunity_line_id"))[old.id]
    settings = orders_settings(uow.crm)
    today = today_in(uow)
    if reprice:
        wanted = [Wanted(quantity=line["quantity"], product_id=line.get("product_id"), account_id=values.get("account_id"),
                         description=line.get("description"), unit_price=None if line.get("product_id") else line.get("unit_price"),
                         opportunity_line_id=line.get("opportunity_line_id")) for line in lines]
        rounding = settings.rounding(values["currency"])
        pricing = {"currency": values["currency"], "document_discount": values.get("document_discount"), "pricing_date": today,
                   "rounding_mode": rounding.mode, "rounding_method": rounding.method, "rounding_places": rounding.places}
        rows = price_wanted(uow, wanted, currency=values["currency"], on=today)
    else:
        pricing = documents.copy_pricing(values)
        rows = [{**copied, "opportunity_line_id": line.get("opportunity_line_id")}
                for copied, line in zip(documents.copy_lines(lines), lines, strict=True)]
    new = uow.create("quote", **header, **pricing, state="draft",
                     valid_until=max(values.get("valid_until") or today, today + dt.timedelta(days=settings.quote_valid_days)))
    uow.create_many("quote_line", [{**row, "quote_id": new.id} for row in rows])
    uow.check_access(old, "update")
    with uow.acting_as(Actor.system()):
        uow.update("quote", new.id, version_number=(values.get("version_number") or 1) + 1,
                   root_id=values.get("root_id") or old.id, supersedes_id=old.id)
        uow.update("quote", old.id, superseded_by_id=new.id, is_current=False)
    documents.refresh(uow, "quote", [new.id])
    return _reread(uow, new.id)


def accept_quote(uow: UnitOfWork, quote_id: int, *, today: dt.date | None = None) -> Record:
    """The customer accepts the current version of a sent quote (before its ``valid_until``).
    With ``order_on_accept`` its sales order is made (and confirmed with ``confirm_on_accept``);
    with ``won_on = "accepted"`` the opportunity is won."""
    quote = uow.get("quote", quote_id)
    _current(quote, "accept")
    day = today or today_in(uow)
    valid_until = quote.values.get("valid_until")
    if valid_until is not None and valid_until < day:
        raise TransitionError(f"quote {quote.id} was valid until {valid_until.isoformat()}; revise it for a new version")
    accepted = uow.move(quote, "accepted")
    following.mark_won(uow, "accepted", [accepted], today=day)
    settings = orders_settings(uow.crm)
    if settings.order_on_accept:
        from crm_orders.orders import confirm_order, order_from_quote

        order = order_from_quote(uow, accepted.id)
        if settings.confirm_on_accept:
            confirm_order(uow, order.id)
    return uow.get("quote", quote.id)


def reject_quote(uow: UnitOfWork, quote_id: int) -> Record:
    """The customer rejects a sent quote; with ``lost_when_quotes_closed`` an opportunity left
    without a live quote or order is lost."""
    rejected = uow.move(uow.get("quote", quote_id), "rejected")
    following.mark_lost_if_closed(uow, [rejected.values.get("opportunity_id")])
    return rejected


def expire_quotes(uow: UnitOfWork, *, today: dt.date | None = None) -> list[Record]:
    """Expire the draft and sent quotes whose ``valid_until`` has passed (set-based), then mark
    lost the opportunities left without a live quote or order (``lost_when_quotes_closed``)."""
    day = today or today_in(uow)
    with uow.acting_as(Actor.system()):
        due = uow.query("quote").where(("state", "in", ("draft", "sent")), ("valid_until", "<", day)).all()
        if not due:
            return []
        expired = uow.move_many(due, "expired")
    following.mark_lost_if_closed(uow, [q.values.get("opportunity_id") for q in expired])
    return expired
