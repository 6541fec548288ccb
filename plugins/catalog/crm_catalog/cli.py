"""``crm price ...`` and ``crm catalog ...``: explain a price, list what to reorder, recompute
discount tiers.

::

    crm price explain --account "Acme" --product LAP-14 --quantity 5 [--date 2026-06-01] [--json]
    crm catalog reorder [--json]
    crm catalog tiers [--date 2026-06-01]

Every command acts as ``--as USER`` (default: the system actor) in one unit of work: a product,
account or price list the user may not read is missing. ``--account`` takes an id or an exact
account name; ``--product`` a product code (or ``#id``).
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING, Any

import click
from crmcore.cli import current_actor, current_app, echo_json
from crmcore.errors import NotFoundError, ValidationError

from crm_catalog.pricing import PricedLine, explain_price
from crm_catalog.stock import reorder_list
from crm_catalog.tiers import recompute_tiers

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["catalog", "explain_lines", "price"]

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _account_id(uow: UnitOfWork, given: str | None) -> int | None:
    if given is None or not given.strip():
        return None
    text = given.strip()
    if text.isdigit():
        return uow.get("account", int(text)).id
    found = uow.select("account", fields=("id",)).where(name=text).all()
    if len(found) != 1:
        problem = "no account is" if not found else f"{len(found)} accounts are"
        raise NotFoundError(f"{problem} named {text!r}; give the account's id instead", entity="account")
    return int(found[0]["id"])


def _product_id(uow: UnitOfWork, code: str) -> int:
    text = code.strip()
    if text.startswith("#") and text[1:].isdigit():
        return uow.get("product", int(text[1:])).id
    found = uow.select("product", fields=("id",)).where(code=text).all()
    if not found:
        raise NotFoundError(f"no product has the code {text!r}; see crm list product", entity="product")
    return int(found[0]["id"])


def _day(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValidationError({"date": [f"{value!r} is not a date; write it as YYYY-MM-DD"]}) from None


def explain_lines(line: PricedLine) -> list[str]:
    """The explanation of a priced line as text: one line per step with its input and output,
    then the result."""
    out = []
    for number, step in enumerate(line.steps, 1):
        before = "" if step.input is None else f"{step.input} -> "
        out.append(f"{number}. {step.kind}: {step.source}")
        out.append(f"   {step.detail}: {before}{step.output}")
    net = line.net_unit_price
    out.append(f"unit price {line.unit_price}, customer discount {line.discount_percent.normalize():f}%, "
               f"net {net.amount.quantize(line.unit_price.amount)} {net.currency}, "
               f"tax {line.tax_category or '-'} {line.tax_rate}%")
    return out


@click.group("price")
def price() -> None:
    """Prices from the catalog: explain how one is made."""


@price.command("explain")
@click.option("--account", "account", help="The account (id or exact name); none: a price for anybody.")
@click.option("--product", "product", required=True, help="The product code (or #id).")
@click.option("--quantity", "quantity", default="1", show_default=True, help="How many units.")
@click.option("--date", "day", help="The day priced (YYYY-MM-DD); default: today.")
@click.option("--currency", help="Price in this currency; default: the product's list price currency.")
@_JSON
def explain(account: str | None, product: str, quantity: str, day: str | None, currency: str | None,
            as_json: bool) -> None:
    """Explain the price of QUANTITY of PRODUCT for ACCOUNT: each step, its input and output."""
    crm = current_app()
    try:
        amount = decimal.Decimal(quantity)
    except decimal.InvalidOperation:
        raise ValidationError({"quantity": [f"{quantity!r} is not a number"]}) from None
    with crm.unit_of_work(current_actor()) as uow:
        line = explain_price(uow, _account_id(uow, account), _product_id(uow, product), amount, _day(day),
                             currency=currency.upper() if currency else None)
    if as_json:
        echo_json(line.snapshot())
        return
    for text in explain_lines(line):
        click.echo(text)


@click.group("catalog")
def catalog() -> None:
    """The catalog: stock to reorder, discount tiers."""


@catalog.command("reorder")
@_JSON
def reorder(as_json: bool) -> None:
    """List the tracked products at or below their reorder point, with whom to order from."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        lines = reorder_list(uow)
    if as_json:
        echo_json([_reorder_json(line) for line in lines])
        return
    if not lines:
        click.echo("nothing to reorder")
        return
    for line in lines:
        vendor = "no vendor" if line.vendor is None else f"from {line.vendor}"
        details = [f"vendor code {line.vendor_code}" if line.vendor_code else "",
                   f"cost {line.cost}" if line.cost is not None else "",
                   f"lead time {line.lead_time_days} days" if line.lead_time_days is not None else ""]
        order = f"order {line.reorder_quantity.normalize():f}" if line.reorder_quantity else "order"
        extra = ", ".join(d for d in details if d)
        click.echo(f"{line.code} {line.name}: available {line.available.normalize():f} "
                   f"(on hand {line.on_hand.normalize():f}, reserved {line.reserved.normalize():f}), reorder point "
                   f"{line.reorder_point.normalize():f}; {order} {vendor}{' (' + extra + ')' if extra else ''}")


def _reorder_json(line: Any) -> dict[str, Any]:
    return {"product_id": line.product_id, "code": line.code, "name": line.name, "on_hand": str(line.on_hand),
            "reserved": str(line.reserved), "available": str(line.available),
            "reorder_point": str(line.reorder_point),
            "reorder_quantity": None if line.reorder_quantity is None else str(line.reorder_quantity),
            "vendor_id": line.vendor_id, "vendor": line.vendor, "vendor_code": line.vendor_code,
            "cost": None if line.cost is None else {"amount": str(line.cost.amount), "currency": line.cost.currency},
            "lead_time_days": line.lead_time_days}


@catalog.command("tiers")
@click.option("--date", "day", help="Recompute as of this day (YYYY-MM-DD); default: today.")
def tiers(day: str | None) -> None:
    """Recompute the customer discount tiers from trailing revenue now (the job does it daily)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        report = recompute_tiers(uow, today=_day(day))
        uow.commit()
    click.echo(report.summary())
