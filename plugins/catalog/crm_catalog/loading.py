"""What one pricing call reads, set-based, as the unit of work's actor.

:func:`load` reads the products asked for, the product group tree, the tax categories, the
accounts, the active price lists that may apply (for everyone, or for one of the accounts,
valid on one of the days), the lines of those lists that may cover the products asked with
them (by product, by one of their groups, or for everything), the lists those lines take their
base from, and the accounts' customer discounts. A list's product lines are read only for the
products asked by accounts it serves: a list for one account reads the lines of that account's
products, a list for everyone those of every product asked. Each read is one statement per
chunk of at most :data:`CHUNK` values, so a call costs a few statements whatever the number of
lines. A record the actor may not read is missing: an unreadable product or account raises
:class:`~crmcore.errors.NotFoundError`, an unreadable list or line does not apply.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import NotFoundError, ValidationError
from crmcore.money import Money

from crm_catalog.formula import Formula

if TYPE_CHECKING:
    from crmcore import UnitOfWork

    from crm_catalog.pricing import PriceRequest

__all__ = ["CHUNK", "Line", "PricingData", "Product", "chunks", "group_ancestors", "load"]

#: Values per ``in`` condition of one statement.
CHUNK = 900
_ZERO = decimal.Decimal(0)
_HUNDRED = decimal.Decimal(100)
_PRODUCT_FIELDS = ("id", "code", "group_id", "list_price", "cost", "tax_category_id", "active")
_LIST_FIELDS = ("id", "name", "currency", "segment", "customer_group_id", "account_id", "valid_from",
                "valid_to", "priority", "stacking", "active")
_LINE_FIELDS = ("id", "price_list_id", "product_id", "group_id", "min_quantity", "priority", "base",
                "base_price_list_id", "fixed_price", "discount_percent", "surcharge", "rounding",
                "min_margin_percent", "max_margin_percent")
_DISCOUNT_FIELDS = ("id", "account_id", "group_id", "percent", "kind", "valid_from", "valid_to", "note")


def chunks(values: Iterable[Any], size: int = CHUNK) -> Iterable[list[Any]]:
    """*values* in lists of at most *size*."""
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def group_ancestors(parents: dict[int, int | None], group_id: int | None) -> tuple[int, ...]:
    """*group_id* and the groups above it, nearest first (a cycle stops the walk)."""
    chain: list[int] = []
    while group_id is not None and group_id not in chain:
        chain.append(group_id)
        group_id = parents.get(group_id)
    return tuple(chain)


class Product:
    """The parts of a product pricing reads."""

    __slots__ = ("code", "cost", "group_id", "id", "list_price", "tax", "tax_category_id")

    def __init__(self, row: dict[str, Any], taxes: dict[int, tuple[str, decimal.Decimal]]) -> None:
        self.id: int = row["id"]
        self.code: str = row["code"]
        self.group_id: int | None = row["group_id"]
        self.list_price: Money = row["list_price"]
        self.cost: Money | None = row["cost"]
        self.tax_category_id: int | None = row["tax_category_id"]
        #: the tax category's code and rate (``None`` and 0 without one)
        self.tax: tuple[str | None, decimal.Decimal] = taxes.get(self.tax_category_id, (None, _ZERO)) \
            if self.tax_category_id is not None else (None, _ZERO)


class Line:
    """A price list line as pricing uses it: scope, threshold, priority and formula, with the
    texts its explanation steps carry made once."""

    __slots__ = ("base_list_id", "dynamic", "factor", "fixed", "formula", "id", "list_id", "min_quantity", "priority")

    def __init__(self, row: dict[str, Any]) -> None:
        self.id: int = row["id"]
        self.list_id: int = row["price_list_id"]
        self.priority: int = row["priority"]
        self.min_quantity: decimal.Decimal = row["min_quantity"] or _ZERO
        self.base_list_id: int | None = row["base_price_list_id"]
        self.fixed: Money | None = row["fixed_price"]
        self.formula: Formula = Formula.of(row)
        #: its base is another list, whose lines depend on the day and quantity
        self.dynamic: bool = self.formula.base == "price_list" and self.base_list_id is not None
        #: what the discount multiplies the base by, when there is one
        discount = self.formula.discount_percent
        self.factor: decimal.Decimal | None = None if discount is None else 1 - discount / _HUNDRED


@attrs.define(eq=False)
class PricingData:
    """Everything one pricing call read."""

    products: dict[int, Product]
    parents: dict[int, int | None]
    taxes: dict[int, tuple[str, decimal.Decimal]]
    accounts: dict[int, dict[str, Any]]
    lists: dict[int, dict[str, Any]]
    by_product: dict[tuple[int, int], list[Line]]
    by_group: dict[tuple[int, int], list[Line]]
    for_all: dict[int, list[Line]]
    discounts: dict[int, list[dict[str, Any]]]


def load(uow: UnitOfWork, requests: Sequence[PriceRequest]) -> PricingData:
    """Read what pricing *requests* needs (a few statements per call).

    :raises NotFoundError: naming a product or account that is missing or unreadable.
    :raises ValidationError: naming an inactive product.
    """
    product_ids = sorted({r.product_id for r in requests})
    rows: dict[int, dict[str, Any]] = {}
    for part in chunks(product_ids):
        rows.update((r["id"], r) for r in uow.select("product", fields=_PRODUCT_FIELDS).where(("id", "in", part)).all())
    for pid in product_ids:
        row = rows.get(pid)
        if row is None:
            raise NotFoundError(f"product {pid} not found; check the product id (crm list product)",
                                entity="product", id=pid)
        if not row["active"]:
            raise ValidationError({"product_id": [
                f"product {row['code']!r} (id {pid}) is inactive and cannot be priced; "
                "activate it or choose another product"]}, entity="product")
    taxes = {r["id"]: (r["code"], r["rate"]) for r in uow.select("tax_category", fields=("id", "code", "rate")).all()}
    products = {pid: Product(row, taxes) for pid, row in rows.items()}
    parents = {r["id"]: r["parent_id"] for r in uow.select("product_group", fields=("id", "parent_id")).all()}
    asked: dict[int | None, set[int]] = {}
    for r in requests:
        asked.setdefault(r.account_id, set()).add(r.product_id)
    account_ids = sorted(a for a in asked if a is not None)
    accounts: dict[int, dict[str, Any]] = {}
    for part in chunks(account_ids):
        accounts.update((r["id"], r) for r in uow.select("account", fields=("id", "segment", "customer_group_id"))
                        .where(("id", "in", part)).all())
    for aid in account_ids:
        if aid not in accounts:
            raise NotFoundError(f"account {aid} not found; check the account id (crm list account)",
                                entity="account", id=aid)
    lists = _lists(uow, requests, account_ids)
    data = PricingData(products, parents, taxes, accounts, lists, {}, {}, {}, {})
    groups = sorted({g for p in products.values() for g in group_ancestors(parents, p.group_id)})
    wanted = _wanted_products(lists, asked, accounts, product_ids)
    _load_lines(uow, data, wanted, groups)
    tried = set(lists)
    bases = _bases(data) - tried
    while bases:  # lists other lines take their base from, whatever their audience
        found = uow.select("price_list", fields=_LIST_FIELDS).where(("id", "in", sorted(bases))).all()
        lists.update((r["id"], r) for r in found)
        tried |= bases
        _load_lines(uow, data, {r["id"]: product_ids for r in found}, groups)
        bases = _bases(data) - tried
    for part in chunks(account_ids):
        for row in uow.select("customer_discount", fields=_DISCOUNT_FIELDS).where(("account_id", "in", part)).all():
            data.discounts.setdefault(row["account_id"], []).append(row)
    return data


def _lists(uow: UnitOfWork, requests: Sequence[PriceRequest], account_ids: list[int]) -> dict[int, dict[str, Any]]:
    first: dt.date = min(r.on for r in requests)
    last: dt.date = max(r.on for r in requests)
    dated = (
        {"any": [("valid_from", "is null"), ("valid_from", "<=", last)]},
        {"any": [("valid_to", "is null"), ("valid_to", ">=", first)]},
    )
    select = uow.select("price_list", fields=_LIST_FIELDS)
    lists = {r["id"]: r for r in select.where(("account_id", "is null"), *dated, active=True).all()}
    for part in chunks(account_ids):
        lists.update((r["id"], r) for r in select.where(("account_id", "in", part), *dated, active=True).all())
    return lists


def _wanted_products(lists: dict[int, dict[str, Any]], asked: dict[int | None, set[int]],
                     accounts: dict[int, dict[str, Any]], every: list[int]) -> dict[int, Sequence[int]]:
    """The products whose lines each list may need: those asked by the accounts it serves (all
    asked products for a list that serves more than half of them)."""
    wanted: dict[int, Sequence[int]] = {}
    by_segment: dict[str, set[int]] = {}
    by_group: dict[int, set[int]] = {}
    for aid, account in accounts.items():
        if account["segment"]:
            by_segment.setdefault(account["segment"], set()).update(asked[aid])
        if account["customer_group_id"] is not None:
            by_group.setdefault(account["customer_group_id"], set()).update(asked[aid])
    half = len(every) / 2
    for lid, row in lists.items():
        if row["account_id"] is not None:
            served = asked.get(row["account_id"], set())
        elif row["customer_group_id"] is not None:
            served = by_group.get(row["customer_group_id"], set())
        elif row["segment"]:
            served = by_segment.get(row["segment"], set())
        else:
            served = set(every)
        wanted[lid] = every if len(served) > half else sorted(served)
    return wanted


def _bases(data: PricingData) -> set[int]:
    lines = [line for group in (data.by_product, data.by_group) for found in group.values() for line in found]
    lines += [line for found in data.for_all.values() for line in found]
    return {line.base_list_id for line in lines if line.formula.base == "price_list" and line.base_list_id is not None}


def _load_lines(uow: UnitOfWork, data: PricingData, wanted: dict[int, Sequence[int]], groups: list[int]) -> None:
    if not wanted:
        return
    select = uow.select("price_list_line", fields=_LINE_FIELDS)
    rows: list[dict[str, Any]] = []
    shared: dict[int, list[int]] = {}  # lists that want the same products share statements
    for lid, products in wanted.items():
        shared.setdefault(id(products), []).append(lid)
    packed: list[Any] = []
    size = 0
    for lids in shared.values():
        products = wanted[lids[0]]
        if len(lids) > 1 or len(products) > CHUNK // 2:
            for lists in chunks(sorted(lids)):
                for part in chunks(products):
                    rows += select.where(("price_list_id", "in", lists), ("product_id", "in", part)).all()
            continue
        if not products:
            continue
        packed.append({"all": [("price_list_id", "=", lids[0]), ("product_id", "in", list(products))]})
        size += len(products) + 1
        if size >= CHUNK:
            rows += select.where({"any": packed}).all()
            packed, size = [], 0
    if packed:
        rows += select.where({"any": packed}).all()
    for lists in chunks(sorted(wanted)):
        rows += select.where(("price_list_id", "in", lists), ("product_id", "is null"),
                             {"any": [("group_id", "is null"), ("group_id", "in", groups or [0])]}).all()
    for row in rows:
        line = Line(row)
        if row["product_id"] is not None:
            data.by_product.setdefault((line.list_id, row["product_id"]), []).append(line)
        elif row["group_id"] is not None:
            data.by_group.setdefault((line.list_id, row["group_id"]), []).append(line)
        else:
            data.for_all.setdefault(line.list_id, []).append(line)
