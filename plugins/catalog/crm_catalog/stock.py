"""Optional stock: on hand per location, reservations, and the reorder list.

Only products with ``track_stock`` keep stock. A confirmed order reserves what it sells
(:func:`reserve`) and gives it back when it is cancelled or fulfilled (:func:`release`); both
are set-based and a no-op for products without stock tracking. A product's available stock is
its stock on hand at every location less its reservations; :func:`reorder_list` names the
tracked products whose available stock is at or below their reorder point, with the preferred
vendor (else the cheapest), its cost and lead time. Full inventory stays the ERP's job.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ValidationError
from crmcore.money import Money

from crm_catalog.loading import chunks

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["ReorderLine", "available", "release", "reorder_list", "reserve"]

_ZERO = decimal.Decimal(0)


def _checked(reservations: Iterable[tuple[int, Any]], source: str) -> dict[int, decimal.Decimal]:
    if not isinstance(source, str) or not source.strip():
        raise ValidationError({"source": [f"a reservation needs a source such as 'order:42', got {source!r}"]},
                              entity="stock_reservation")
    wanted: dict[int, decimal.Decimal] = {}
    for product_id, quantity in reservations:
        try:
            amount = quantity if isinstance(quantity, decimal.Decimal) else decimal.Decimal(str(quantity))
        except decimal.InvalidOperation:
            amount = decimal.Decimal("NaN")
        if not amount.is_finite() or amount <= 0:
            raise ValidationError({"quantity": [f"must be more than 0 for product {product_id}, got {quantity!r}"]},
                                  entity="stock_reservation")
        wanted[product_id] = wanted.get(product_id, _ZERO) + amount
    return wanted


def _tracked(uow: UnitOfWork, product_ids: Iterable[int]) -> set[int]:
    tracked: set[int] = set()
    for part in chunks(sorted(product_ids)):
        rows = uow.select("product", fields=("id",)).where(("id", "in", part), track_stock=True).all()
        tracked.update(r["id"] for r in rows)
    return tracked


def reserve(uow: UnitOfWork, reservations: Sequence[tuple[int, decimal.Decimal]], *, source: str) -> None:
    """Reserve ``(product_id, quantity)`` pairs for *source* (``"order:42"``): one reservation
    row per tracked product; products without stock tracking are left out.

    :raises ValidationError: naming a quantity that is not positive or an empty source.
    """
    wanted = _checked(reservations, source)
    tracked = _tracked(uow, wanted)
    rows = [{"product_id": pid, "quantity": qty, "source": source} for pid, qty in wanted.items() if pid in tracked]
    if rows:
        uow.create_many("stock_reservation", rows)


def release(uow: UnitOfWork, reservations: Sequence[tuple[int, decimal.Decimal]], *, source: str) -> None:
    """Give back what *source* reserved of each ``(product_id, quantity)``: its reservations of
    the product shrink by the quantity (and go when nothing is left). Releasing more than is
    reserved releases what there is; products without stock tracking are left out."""
    wanted = _checked(reservations, source)
    held: list[Any] = []
    for part in chunks(sorted(wanted)):
        held += uow.query("stock_reservation").where(("product_id", "in", part), source=source).order_by("id").all()
    gone: list[Any] = []
    shrunk: list[tuple[Any, dict[str, Any]]] = []
    for record in held:
        left = wanted.get(record.product_id, _ZERO)
        if left <= 0:
            continue
        if record.quantity <= left:
            gone.append(record)
            wanted[record.product_id] = left - record.quantity
        else:
            shrunk.append((record, {"quantity": record.quantity - left}))
            wanted[record.product_id] = _ZERO
    if shrunk:
        uow.update_many("stock_reservation", shrunk)
    if gone:
        uow.delete_many("stock_reservation", gone)


def available(uow: UnitOfWork, product_ids: Iterable[int]) -> dict[int, tuple[decimal.Decimal, decimal.Decimal]]:
    """``{product_id: (on hand, reserved)}`` for tracked products among *product_ids*."""
    ids = sorted(set(product_ids))
    found: dict[int, tuple[decimal.Decimal, decimal.Decimal]] = {pid: (_ZERO, _ZERO) for pid in _tracked(uow, ids)}
    for part in chunks(list(found)):
        for row in uow.select("stock_level").where(("product_id", "in", part)).group_by("product_id").aggregate(
                sum=["on_hand"]):
            on_hand, reserved = found[row["product_id"]]
            found[row["product_id"]] = (on_hand + (row["sum_on_hand"] or _ZERO), reserved)
        for row in uow.select("stock_reservation").where(("product_id", "in", part)).group_by("product_id").aggregate(
                sum=["quantity"]):
            on_hand, reserved = found[row["product_id"]]
            found[row["product_id"]] = (on_hand, reserved + (row["sum_quantity"] or _ZERO))
    return found


@attrs.frozen
class ReorderLine:
    """A product to reorder: its stock, reorder point and quantity, and whom to order from."""

    product_id: int
    code: str
    name: str
    on_hand: decimal.Decimal
    reserved: decimal.Decimal
    reorder_point: decimal.Decimal
    reorder_quantity: decimal.Decimal | None
    vendor_id: int | None
    vendor: str | None
    vendor_code: str | None
    cost: Money | None
    lead_time_days: int | None

    @property
    def available(self) -> decimal.Decimal:
        return self.on_hand - self.reserved


def reorder_list(uow: UnitOfWork) -> list[ReorderLine]:
    """The tracked products whose available stock is at or below their reorder point, by code,
    each with its preferred vendor (else the one with the lowest cost), cost and lead time."""
    products = (uow.select("product", fields=("id", "code", "name", "reorder_point", "reorder_quantity"))
                .where(("reorder_point", "is not null"), track_stock=True, active=True).order_by("code").all())
    stock = available(uow, [p["id"] for p in products])
    due = [p for p in products if stock[p["id"]][0] - stock[p["id"]][1] <= p["reorder_point"]]
    vendors: dict[int, list[dict[str, Any]]] = {}
    for part in chunks([p["id"] for p in due]):
        for row in uow.select("vendor_product", fields=("id", "product_id", "vendor_id", "vendor_id.name", "vendor_code",
                                                        "cost", "lead_time_days", "preferred")).where(
                                                            ("product_id", "in", part)).all():
            vendors.setdefault(row["product_id"], []).append(row)
    lines = []
    for p in due:
        offers = vendors.get(p["id"], [])
        best = min(offers, key=_vendor_rank, default=None)
        on_hand, reserved = stock[p["id"]]
        lines.append(ReorderLine(
            p["id"], p["code"], p["name"], on_hand, reserved, p["reorder_point"], p["reorder_quantity"],
            best["vendor_id"] if best else None, best["vendor_id.name"] if best else None,
            best["vendor_code"] if best else None, best["cost"] if best else None,
            best["lead_time_days"] if best else None,
        ))
    return lines


def _vendor_rank(row: dict[str, Any]) -> tuple[Any, ...]:
    cost = row["cost"]
    return (not row["preferred"], cost is None, cost.amount if cost is not None else _ZERO, row["id"])
