"""Service orders and work reports: the pipeline, orders from tickets, lines priced through
the entitlement, and invoicing through the billing hook.

A service order moves through ``service.order``: ``new`` → ``scheduled`` (needs a time
window) → ``in_progress`` → ``done`` (needs a work report) → ``invoiced``; any open stage may
go to ``cancelled``. An ``invoiced`` order goes back to ``done`` once every invoice holding
its work is cancelled (:func:`~crm_service.hookspecs.service_invoice_held` names one that is
not; a billing plugin moves the order back when it cancels the last one); its lines lose their
``invoice_ref`` and may be invoiced again. Each work line is priced when written: its unit
price (the labour or travel rate of the settings, or the price
:func:`~crm_service.hookspecs.service_price_part` gives a part), its amount, and the
customer's charge from the entitlement of its unit on the report's day, naming the granting
record. A charge that departs from the entitlement needs the privilege
``service.work_line.reprice`` and a reason. Coverages are read as the system
(:meth:`~crmcore.UnitOfWork.system_scope`), so a technician who may not read contracts still
prices a line as the contract says. Moving an order to ``invoiced``
hands its billable lines to :func:`~crm_service.hookspecs.service_invoice_lines` and stamps
the answer on them.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.errors import NotFoundError, TransitionError, ValidationError
from crmcore.money import Money
from crmcore.workflow import Pipeline, Stage, Transition

from crm_service.entitlement import entitlement_many
from crm_service.settings import service_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "ORDER_PIPELINE",
    "PRICE_FIELDS",
    "REPRICE_PERMISSION",
    "check_done",
    "invoice",
    "order_from_ticket",
    "pipeline",
    "price_lines",
]

ORDER_PIPELINE = "service.order"
REPRICE_PERMISSION = "service.work_line.reprice"
#: Why pricing reads coverages as the system (the audit trail's reason of a system scope).
PRICING_REASON = "price work lines through the entitlement"
#: Changes to these fields of a work line price it again.
PRICE_FIELDS = ("unit_id", "line_type", "quantity", "unit_price", "charge", "report_id")
_CENT = decimal.Decimal("0.01")


def pipeline() -> Pipeline:
    """The pipeline of service orders."""
    stages = (
        Stage("new"),
        Stage("scheduled", required=("window_start",)),
        Stage("in_progress", label="In progress"),
        Stage("done", kind="won", on_enter={"done_at": "now"}),
        Stage("invoiced", kind="won"),
        Stage("cancelled", kind="lost"),
    )
    moves = [("new", "scheduled"), ("scheduled", "new"), ("scheduled", "in_progress"),
             ("in_progress", "scheduled"), ("in_progress", "done"), ("done", "in_progress"),
             ("done", "invoiced"), ("invoiced", "done")]
    moves += [(s, "cancelled") for s in ("new", "scheduled", "in_progress")]
    return Pipeline(
        ORDER_PIPELINE,
        "service_order",
        stages,
        tuple(Transition(a, b) for a, b in moves),
        field="status",
        label="Service orders",
        default=True,
        origin="service",
    )


def order_from_ticket(uow: UnitOfWork, ticket_id: int, **values: Any) -> Record:
    """Open a service order for a help desk ticket: its subject, description, account,
    contact and priority, unless *values* give others.

    :raises NotFoundError: when the help desk is not enabled or the ticket is not readable.
    :raises ValidationError: when the ticket has no account and *values* give none.
    """
    if "ticket" not in uow.registry:
        raise NotFoundError(
            "service orders come from tickets only with the help desk enabled; "
            "add 'helpdesk' to [crm] plugins", entity="ticket", id=ticket_id)
    ticket = uow.get("ticket", ticket_id)
    data: dict[str, Any] = {
        "subject": ticket.subject,
        "problem": ticket.values.get("description"),
        "account_id": ticket.values.get("account_id"),
        "contact_id": ticket.values.get("contact_id"),
        "priority": ticket.values.get("priority") or "normal",
        "ticket_id": ticket.id,
    }
    data.update(values)
    if data["account_id"] is None:
        raise ValidationError(
            {"account_id": [f"ticket {ticket.id} has no account; give the order's account"]},
            entity="service_order",
        )
    return uow.create("service_order", data)


def _money(value: Any, currency: str) -> Money:
    if isinstance(value, Money):
        return value
    return Money(decimal.Decimal(str(value)), currency)


def price_lines(
    uow: UnitOfWork, items: Sequence[Mapping[str, Any]], *, old: Sequence[Record | None] = ()
) -> list[dict[str, Any]]:
    """The computed fields of work lines about to be written (their values after the write):
    one read of their reports and one entitlement batch for all of them.

    :param old: the lines before an update, in the order of *items* (empty for creates).
    :raises ValidationError: for a part without a price, or a charge set by hand without a
        reason.
    :raises PermissionDeniedError: for a charge set by hand without the privilege.
    """
    settings = service_settings(uow.crm)
    report_ids = sorted({v["report_id"] for v in items if v.get("report_id") is not None})
    reports = {r["id"]: r for r in uow.select(
        "work_report", ("id", "order_id", "work_date", "order_id.account_id")
    ).where(("id", "in", report_ids)).all()} if report_ids else {}
    priced: list[dict[str, Any]] = []
    lines: list[tuple[int, Any, str]] = []
    for values in items:
        report = reports.get(values.get("report_id"))
        if report is None:
            raise ValidationError(
                {"report_id": [f"no work report {values.get('report_id')!r}"]}, entity="work_line")
        line_type = values["line_type"]
        price = values.get("unit_price")
        if price is None:
            if line_type == "labour":
                price = settings.labour_rate
            elif line_type == "travel":
                price = settings.travel_rate
            else:
                price = uow.crm.hook.service_price_part(
                    uow=uow, product_code=values.get("product_code") or "",
                    quantity=values["quantity"], account_id=report["order_id.account_id"])
                if price is None:
                    raise ValidationError(
                        {"unit_price": [f"part {values.get('product_code') or '(no code)'!r} has "
                                        "no price; give the line's unit_price"]},
                        entity="work_line")
        price = _money(price, settings.currency)
        quantity = decimal.Decimal(str(values["quantity"]))
        amount = Money((quantity * price.amount).quantize(_CENT, decimal.ROUND_HALF_UP),
                       price.currency)
        priced.append({"order_id": report["order_id"], "unit_price": price, "amount": amount})
        if values.get("unit_id") is not None:
            lines.append((values["unit_id"], report["work_date"], line_type))
    with uow.system_scope(PRICING_REASON):  # the whole coverage, whoever writes the line
        decisions = iter(entitlement_many(uow, lines))
    for index, values in enumerate(items):
        result = priced[index]
        amount = result["amount"]
        if values.get("unit_id") is None:
            percent, source, reason = 0, None, "no unit named: billable"
            charge = amount
        else:
            decision = next(decisions)
            percent, source, reason = decision.percent, decision.granted_by, decision.reason
            charge = decision.customer_share(amount)
        result.update(covered_percent=percent, entitlement_source=source or None,
                      entitlement_reason=reason)
        given = values.get("charge")
        previous = old[index] if old else None
        kept = previous is not None and given == previous.values.get("charge") and not (
            previous.values.get("charge_reason"))
        if given is None or kept or _money(given, amount.currency) == charge:
            result["charge"] = charge
        else:
            uow.require("work_line", REPRICE_PERMISSION)
            if not str(values.get("charge_reason") or "").strip():
                raise ValidationError(
                    {"charge_reason": [f"the charge {given} departs from the entitlement "
                                       f"({charge}: {reason}); give a reason"]},
                    entity="work_line")
            result["charge"] = _money(given, amount.currency)
        priced[index] = result
    return priced


def check_done(uow: UnitOfWork, moves: Sequence[tuple[Record, Any, Mapping[str, Any]]]) -> None:
    """An order is done only with a work report.

    :raises TransitionError: naming the first order without one.
    """
    ids = [record.id for record, transition, _ in moves if transition.target == "done"]
    if not ids:
        return
    reported = {r["order_id"] for r in uow.select("work_report", ("order_id",)).where(
        ("order_id", "in", ids)).all()}
    for order_id in ids:
        if order_id not in reported:
            raise TransitionError(
                f"service_order {order_id} cannot be done without a work report; "
                "write the report of the visit first")


def check_uninvoiced(
    uow: UnitOfWork, moves: Sequence[tuple[Record, Any, Mapping[str, Any]]]
) -> None:
    """An invoiced order goes back to ``done`` only when no invoice holds its work any more.

    :raises TransitionError: naming the first order and the invoice that still holds its work.
    """
    ids = [record.id for record, transition, _ in moves
           if transition.target == "done" and record.values.get("status") == "invoiced"]
    if not ids:
        return
    held: dict[int, list[Record]] = {}
    for line in uow.query("work_line").where(
        ("order_id", "in", ids), ("invoice_ref", "is not null")
    ).order_by("id"):
        held.setdefault(line.order_id, []).append(line)
    for record, transition, _ in moves:
        if record.id not in held or transition.target != "done":
            continue
        ref = uow.crm.hook.service_invoice_held(uow=uow, order=record, lines=held[record.id])
        if ref is not None:
            raise TransitionError(
                f"service_order {record.id} cannot go back to 'done' while {ref} holds its work; "
                "cancel that invoice first")


def uninvoice(uow: UnitOfWork, orders: Sequence[Record]) -> None:
    """Clear the ``invoice_ref`` of the lines of orders back from ``invoiced`` to ``done``."""
    ids = [order.id for order in orders]
    if ids:
        uow.update_where("work_line", [("order_id", "in", ids), ("invoice_ref", "is not null")],
                         set={"invoice_ref": None})


def invoice(uow: UnitOfWork, orders: Sequence[Record]) -> None:
    """Hand the billable lines of orders entering ``invoiced`` to the billing hook and stamp
    its reference on them."""
    for order in orders:
        lines = [line for line in uow.query("work_line").where(order_id=order.id).order_by("id")
                 if line.charge is not None and line.charge.amount > 0]
        if not lines:
            continue
        ref = uow.crm.hook.service_invoice_lines(uow=uow, order=order, lines=lines)
        if ref is not None:
            uow.update_many("work_line", [(line, {"invoice_ref": str(ref)}) for line in lines])
