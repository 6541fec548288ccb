"""The hooks the service plugin offers to other plugins, added from its ``crm_add_hookspecs``.

A catalog plugin prices parts (:func:`service_price_part`); a billing plugin turns the billable
lines of a service order into invoice lines (:func:`service_invoice_lines`) and bills the
recurring fees of contracts (:func:`service_contract_fee`). Without them the
service plugin runs on its own: parts need a price on the line, and invoicing an order marks
it invoiced without an invoice reference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore.hookspecs import hookspec

if TYPE_CHECKING:
    from crmcore import Money, UnitOfWork
    from crmcore.records import Record

__all__ = [
    "service_contract_fee", "service_invoice_held", "service_invoice_lines", "service_price_part",
]


@hookspec(firstresult=True)
def service_price_part(
    uow: UnitOfWork, product_code: str, quantity: Any, account_id: int | None
) -> Money | None:
    """Give the unit price of a part used on a work line that names no price.

    Called inside the unit of work that creates the line, for each part line without a
    ``unit_price``. The first answer that is not ``None`` is used.

    :param uow: the unit of work writing the line.
    :param product_code: the part's product code (the line's ``product_code``).
    :param quantity: the quantity used (a ``Decimal``).
    :param account_id: the account of the service order, for customer prices.
    :returns: the price of one unit as a ``crmcore.Money``, or ``None`` to abstain (a part no
        plugin prices must carry its ``unit_price``).

    Example::

        @hookimpl
        def service_price_part(uow, product_code):
            row = uow.select("product", ("price",)).where(code=product_code).first()
            return row["price"] if row else None

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def service_invoice_lines(uow: UnitOfWork, order: Record, lines: list[Record]) -> str | None:
    """Invoice the billable lines of a service order moving to ``invoiced``.

    Called inside the unit of work of the move, once per order, with the order's work lines
    whose ``charge`` is above zero (covered lines are left out). The first answer that is not
    ``None`` is used.

    :param uow: the unit of work of the move.
    :param order: the service order being invoiced.
    :param lines: its billable work lines, each with ``charge`` (what the customer pays),
        ``amount``, ``covered_percent`` and ``entitlement_source``.
    :returns: the invoice's reference, stamped on the lines (``invoice_ref``), or ``None``
        when no plugin invoices.

    Example::

        @hookimpl
        def service_invoice_lines(uow, order, lines):
            invoice = uow.create("invoice", account_id=order.account_id)
            uow.create_many("invoice_line", [
                {"invoice_id": invoice.id, "description": line.description,
                 "amount": line.charge, "work_line_id": line.id} for line in lines])
            return invoice.number

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def service_invoice_held(uow: UnitOfWork, order: Record, lines: list[Record]) -> str | None:
    """Name the invoice that still holds the work of a service order moving from
    ``invoiced`` back to ``done``.

    Called inside the unit of work of the move, once per order, with the order's work lines
    that carry an ``invoice_ref``. An order goes back to ``done`` only when every invoice
    holding its work is cancelled; the move is refused while an answer names one. A billing
    plugin moves the order back itself when the last such invoice is cancelled, so the work
    can be invoiced again.

    :param uow: the unit of work of the move.
    :param order: the service order moving back to ``done``.
    :param lines: its work lines with an ``invoice_ref``.
    :returns: the reference of an invoice (not cancelled) holding one of the lines, or
        ``None`` when none does (or no plugin invoices).

    Example::

        @hookimpl
        def service_invoice_held(uow, order, lines):
            row = uow.select("invoice_line", ("invoice_id",)).where(
                ("work_line_id", "in", [line.id for line in lines]),
                ("invoice_id.state", "!=", "cancelled")).first()
            return f"invoice {row['invoice_id']}" if row else None

    .. versionadded:: 0.2
    """


@hookspec(firstresult=True)
def service_contract_fee(
    uow: UnitOfWork, contract: Record, first: Any, last: Any, amount: Money
) -> str | None:
    """Bill one period of a contract's recurring fee.

    Called by the daily job inside its unit of work, for each active contract with a ``fee``
    whose next billing period has begun, once per period. The first answer that is not
    ``None`` is used; the contract's ``billed_until`` then moves to *last*. With no answer the
    period stays unbilled and is offered again the next day.

    :param uow: the unit of work of the job.
    :param contract: the service contract.
    :param first: the first day of the period (a ``datetime.date``).
    :param last: its last day (the contract's end at the latest).
    :param amount: the fee for the period (``contract.fee``).
    :returns: the reference of the invoice line made, or ``None`` to abstain.

    Example::

        @hookimpl
        def service_contract_fee(uow, contract, first, last, amount):
            line = uow.create("invoice_line", account_id=contract.account_id, amount=amount,
                              description=f"Service contract {contract.number}, {first} to {last}")
            return str(line.id)

    .. versionadded:: 0.1
    """
