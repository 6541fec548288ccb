"""How :func:`crm_catalog.pricing.price_lines` resolves prices: load once, resolve in Python.

:meth:`Resolver.load` reads, as the unit of work's actor and with a few statements per call,
the products asked for, the whole product group tree, the tax categories, the accounts, the
active price lists that may apply (for everyone, or for one of the accounts, valid on one of
the days), their lines that cover the products (by product, by one of their groups or for
everything), the lists those lines take their base from, and the accounts' customer discounts.

For each line, the price lists that apply are tried in order of audience (the account's own
lists, then its customer group's, then its segment's, then those for everyone), then by the
list's priority (higher first), then by id; the first list with a line matching the product
and quantity sets the price, by its declared stacking policy (``exclusive``: its first line by
priority; ``cumulative``: each matching line in priority order, each starting from the price
before; ``best_for_customer``: the lowest price of its matching lines). With no list, the list
price stands. Lists price in their own currency only; the line's currency is the request's,
or the product's list price currency. The customer discounts that apply (valid on the day, for
the product's group or one above, or for every product) combine as ``[plugins.catalog]
discount_combination`` says: the best one, or cascaded. Results are memoised per call, so
10,000 lines of one product cost one resolution.
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
from crm_catalog.pricing import PricedLine, PriceRequest, PriceStep
from crm_catalog.settings import catalog_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["AUDIENCES", "Resolver", "chunks", "group_ancestors"]

#: Audiences of price lists, most specific first: the order lists are tried in.
AUDIENCES = ("account", "customer_group", "segment", "everyone")
#: Values per ``in`` condition of one statement.
CHUNK = 900
_HUNDRED = decimal.Decimal(100)
_ZERO = decimal.Decimal(0)
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


def _valid(row: dict[str, Any], on: dt.date) -> bool:
    start, end = row.get("valid_from"), row.get("valid_to")
    return (start is None or start <= on) and (end is None or on <= end)


@attrs.frozen
class _Line:
    id: int
    list_id: int
    priority: int
    min_quantity: decimal.Decimal
    formula: Formula
    base_list_id: int | None
    fixed: Money | None


@attrs.frozen
class _Result:
    unit: Money
    steps: tuple[PriceStep, ...]
    list_id: int | None
    line_id: int | None


@attrs.define(eq=False)
class Resolver:
    """What one :func:`~crm_catalog.pricing.price_lines` call read, and its memos."""

    products: dict[int, dict[str, Any]]
    parents: dict[int, int | None]
    taxes: dict[int, tuple[str, decimal.Decimal]]
    accounts: dict[int, dict[str, Any]]
    lists: dict[int, dict[str, Any]]
    lines: dict[int, dict[str, list[Any]]]  # list id -> {"product": {pid: [...]}, "group": {gid: [...]}, "all": [...]}
    discounts: dict[int, list[dict[str, Any]]]
    combination: str
    quantum: decimal.Decimal
    _candidates: dict[Any, tuple[int, ...]] = attrs.field(factory=dict)
    _matches: dict[tuple[int, int], tuple[_Line, ...]] = attrs.field(factory=dict)
    _results: dict[Any, _Result] = attrs.field(factory=dict)
    _discounted: dict[Any, tuple[decimal.Decimal, tuple[PriceStep, ...]]] = attrs.field(factory=dict)
    _ancestors: dict[int | None, tuple[int, ...]] = attrs.field(factory=dict)

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, uow: UnitOfWork, requests: Sequence[PriceRequest]) -> Resolver:
        """Read what pricing *requests* needs (a few statements per call)."""
        product_ids = sorted({r.product_id for r in requests})
        products: dict[int, dict[str, Any]] = {}
        for part in chunks(product_ids):
            for row in uow.select("product", fields=_PRODUCT_FIELDS).where(("id", "in", part)).all():
                products[row["id"]] = row
        for pid in product_ids:
            if pid not in products:
                raise NotFoundError(f"product {pid} not found; check the product id (crm list product)",
                                    entity="product", id=pid)
            if not products[pid]["active"]:
                raise ValidationError({"product_id": [
                    f"product {products[pid]['code']!r} (id {pid}) is inactive and cannot be priced; "
                    "activate it or choose another product"]}, entity="product")
        parents = {r["id"]: r["parent_id"] for r in uow.select("product_group", fields=("id", "parent_id")).all()}
        taxes = {r["id"]: (r["code"], r["rate"]) for r in uow.select("tax_category", fields=("id", "code", "rate")).all()}
        account_ids = sorted({r.account_id for r in requests if r.account_id is not None})
        accounts: dict[int, dict[str, Any]] = {}
        for part in chunks(account_ids):
            for row in uow.select("account", fields=("id", "segment", "customer_group_id")).where(("id", "in", part)).all():
                accounts[row["id"]] = row
        for aid in account_ids:
            if aid not in accounts:
                raise NotFoundError(f"account {aid} not found; check the account id (crm list account)",
                                    entity="account", id=aid)
        first, last = min(r.on for r in requests), max(r.on for r in requests)
        dated = (
            {"any": [("valid_from", "is null"), ("valid_from", "<=", last)]},
            {"any": [("valid_to", "is null"), ("valid_to", ">=", first)]},
        )
        lists = {r["id"]: r for r in uow.select("price_list", fields=_LIST_FIELDS)
                 .where(("account_id", "is null"), *dated, active=True).all()}
        for part in chunks(account_ids):
            lists.update((r["id"], r) for r in uow.select("price_list", fields=_LIST_FIELDS)
                         .where(("account_id", "in", part), *dated, active=True).all())
        groups = sorted({g for p in products.values() for g in group_ancestors(parents, p["group_id"])})
        lines: dict[int, dict[str, Any]] = {}
        cls._load_lines(uow, lines, sorted(lists), product_ids, groups)
        tried = set(lists)
        wanted = {b for entry in lines.values() for b in entry["bases"]} - tried
        while wanted:  # lists other lines take their base from, whatever their audience
            found = uow.select("price_list", fields=_LIST_FIELDS).where(("id", "in", sorted(wanted))).all()
            lists.update((r["id"], r) for r in found)
            tried |= wanted
            cls._load_lines(uow, lines, [r["id"] for r in found], product_ids, groups)
            wanted = {b for entry in lines.values() for b in entry["bases"]} - tried
        discounts: dict[int, list[dict[str, Any]]] = {}
        for part in chunks(account_ids):
            for row in uow.select("customer_discount", fields=_DISCOUNT_FIELDS).where(("account_id", "in", part)).all():
                discounts.setdefault(row["account_id"], []).append(row)
        settings = catalog_settings(uow)
        return cls(products, parents, taxes, accounts, lists, lines, discounts, settings.discount_combination,
                   decimal.Decimal(1).scaleb(-settings.price_decimals))

    @staticmethod
    def _load_lines(uow: UnitOfWork, into: dict[int, dict[str, Any]], list_ids: Sequence[int],
                    product_ids: Sequence[int], groups: Sequence[int]) -> None:
        for lid in list_ids:
            into.setdefault(lid, {"product": {}, "group": {}, "all": [], "bases": set()})
        if not list_ids:
            return
        rows: list[dict[str, Any]] = []
        for lists in chunks(list_ids):
            select = uow.select("price_list_line", fields=_LINE_FIELDS)
            for part in chunks(product_ids):
                rows += select.where(("price_list_id", "in", lists), ("product_id", "in", part)).all()
            rows += select.where(("price_list_id", "in", lists), ("product_id", "is null"),
                                 {"any": [("group_id", "is null"), ("group_id", "in", list(groups) or [0])]}).all()
        for row in rows:
            line = _Line(row["id"], row["price_list_id"], row["priority"], row["min_quantity"] or _ZERO,
                         Formula.of(row), row["base_price_list_id"], row["fixed_price"])
            entry = into[row["price_list_id"]]
            if row["product_id"] is not None:
                entry["product"].setdefault(row["product_id"], []).append(line)
            elif row["group_id"] is not None:
                entry["group"].setdefault(row["group_id"], []).append(line)
            else:
                entry["all"].append(line)
            if line.formula.base == "price_list" and line.base_list_id is not None:
                entry["bases"].add(line.base_list_id)

    # -- resolving ----------------------------------------------------------------------------
    def price_all(self, requests: Sequence[PriceRequest]) -> list[PricedLine]:
        """The priced lines of *requests*, in order."""
        return [self.price(r) for r in requests]

    def price(self, request: PriceRequest) -> PricedLine:
        product = self.products[request.product_id]
        list_price: Money = product["list_price"]
        currency = request.currency or list_price.currency
        candidates = self._candidates_for(request.account_id, request.on, currency)
        key: list[Any] = [request.product_id, currency]
        chosen: tuple[int, tuple[_Line, ...]] | None = None
        for lid in candidates:
            lines = tuple(line for line in self._lines_for(lid, product) if line.min_quantity <= request.quantity)
            if lines:
                chosen = (lid, lines)
                key.append(lid)
                key.extend(line.id for line in lines)
                break
        memo = tuple(key)
        result = self._results.get(memo)
        if result is None:
            result = self._resolve(product, currency, chosen, request)
            self._results[memo] = result
        percent, discount_steps = self._discount(request, product, result.unit)
        tax = self.taxes.get(product["tax_category_id"]) if product["tax_category_id"] is not None else None
        return PricedLine(
            product_id=request.product_id,
            quantity=request.quantity,
            list_price=list_price,
            unit_price=result.unit,
            discount_percent=percent,
            tax_category=tax[0] if tax else None,
            tax_rate=tax[1] if tax else _ZERO,
            price_list_id=result.list_id,
            price_list_line_id=result.line_id,
            steps=result.steps + discount_steps,
        )

    def _ancestors_of(self, group_id: int | None) -> tuple[int, ...]:
        found = self._ancestors.get(group_id)
        if found is None:
            found = self._ancestors[group_id] = group_ancestors(self.parents, group_id)
        return found

    def _candidates_for(self, account_id: int | None, on: dt.date, currency: str) -> tuple[int, ...]:
        key = (account_id, on, currency)
        found = self._candidates.get(key)
        if found is not None:
            return found
        account = self.accounts.get(account_id) if account_id is not None else None
        ranked = []
        for row in self.lists.values():
            if row["currency"] != currency or not row["active"] or not _valid(row, on):
                continue
            if row["account_id"] is not None:
                rank = 0 if account is not None and row["account_id"] == account["id"] else None
            elif row["customer_group_id"] is not None:
                rank = 1 if account is not None and row["customer_group_id"] == account["customer_group_id"] else None
            elif row["segment"]:
                rank = 2 if account is not None and row["segment"] == account["segment"] else None
            else:
                rank = 3
            if rank is not None:
                ranked.append((rank, -(row["priority"] or 0), row["id"]))
        found = self._candidates[key] = tuple(lid for _, _, lid in sorted(ranked))
        return found

    def _lines_for(self, list_id: int, product: dict[str, Any]) -> tuple[_Line, ...]:
        key = (list_id, product["id"])
        found = self._matches.get(key)
        if found is None:
            entry = self.lines.get(list_id)
            matched: list[_Line] = []
            if entry is not None:
                matched += entry["product"].get(product["id"], ())
                for gid in self._ancestors_of(product["group_id"]):
                    matched += entry["group"].get(gid, ())
                matched += entry["all"]
            found = self._matches[key] = tuple(sorted(matched, key=lambda line: (-line.priority, line.id)))
        return found

    def _resolve(self, product: dict[str, Any], currency: str, chosen: tuple[int, tuple[_Line, ...]] | None,
                 request: PriceRequest) -> _Result:
        list_price: Money = product["list_price"]
        first = PriceStep("list_price", f"product {product['code']}", "list price", None, list_price)
        if chosen is None:
            if list_price.currency != currency:
                raise ValidationError({"currency": [
                    f"no price list prices product {product['code']!r} in {currency} and its list price is in "
                    f"{list_price.currency}; add a {currency} price list or price in {list_price.currency}"]},
                    entity="product")
            return self._final(list_price.amount, currency, (first,), None, None)
        list_id, lines = chosen
        value, steps, line_id = self._apply_list(product, currency, list_id, lines, request, depth=0)
        return self._final(value, currency, (first, *steps), list_id, line_id)

    def _final(self, value: decimal.Decimal, currency: str, steps: tuple[PriceStep, ...], list_id: int | None,
               line_id: int | None) -> _Result:
        rounded = value.quantize(self.quantum, rounding=decimal.ROUND_HALF_UP)
        if rounded != value:
            steps = (*steps, PriceStep("rounding", "currency", f"half up to {self.quantum}", Money(value, currency),
                                       Money(rounded, currency)))
        return _Result(Money(rounded, currency), steps, list_id, line_id)

    def _apply_list(self, product: dict[str, Any], currency: str, list_id: int, lines: tuple[_Line, ...],
                    request: PriceRequest, depth: int) -> tuple[decimal.Decimal, tuple[PriceStep, ...], int]:
        row = self.lists[list_id]
        stacking = row["stacking"]
        name = f"price list {row['name']!r}"
        if stacking == "cumulative":
            value, steps = self._apply_line(product, currency, name, lines[0], request, None, depth)
            for line in lines[1:]:
                value, more = self._apply_line(product, currency, name, line, request, value, depth)
                steps += more
            return value, steps, lines[-1].id
        if stacking == "best_for_customer":
            tried = [(self._apply_line(product, currency, name, line, request, None, depth), line) for line in lines]
            (value, steps), line = min(tried, key=lambda t: (t[0][0], -t[1].priority, t[1].id))
            others = ", ".join(f"line {other.id}: {v}" for (v, _), other in tried if other is not line)
            if others:
                steps += (PriceStep("price_list_line", f"{name} best_for_customer",
                                    f"lowest of line {line.id} and {others}", Money(value, currency), Money(value, currency)),)
            return value, steps, line.id
        value, steps = self._apply_line(product, currency, name, lines[0], request, None, depth)
        return value, steps, lines[0].id

    def _apply_line(self, product: dict[str, Any], currency: str, name: str, line: _Line, request: PriceRequest,
                    previous: decimal.Decimal | None, depth: int) -> tuple[decimal.Decimal, tuple[PriceStep, ...]]:
        formula = line.formula
        source = f"{name} line {line.id} (priority {line.priority})"
        steps: tuple[PriceStep, ...] = ()
        if previous is not None:
            base, base_text = previous, "previous price"
        else:
            base, base_text, steps = self._base(product, currency, line, request, depth)
        adjusted = formula.adjust(base)
        detail = formula.describe(base_text, currency)
        if line.min_quantity:
            detail += f" (from quantity {line.min_quantity.normalize():f})"
        steps += (PriceStep("price_list_line", source, detail, Money(base, currency), Money(adjusted, currency)),)
        value = formula.round(adjusted)
        if value != adjusted:
            steps += (PriceStep("rounding", source, f"half up to a multiple of {formula.rounding}",
                                Money(adjusted, currency), Money(value, currency)),)
        cost: Money | None = product["cost"]
        if formula.has_clamp and cost is not None and cost.currency == currency:
            clamped, bound = formula.clamp(value, cost.amount)
            if bound is not None:
                percent = formula.min_margin_percent if bound == "min" else formula.max_margin_percent
                steps += (PriceStep("clamp", source, f"{bound}imum margin {percent}% over cost {cost}",
                                    Money(value, currency), Money(clamped, currency)),)
                value = clamped
        return value, steps

    def _base(self, product: dict[str, Any], currency: str, line: _Line, request: PriceRequest,
              depth: int) -> tuple[decimal.Decimal, str, tuple[PriceStep, ...]]:
        kind = line.formula.base
        code = product["code"]
        if kind == "fixed":
            if line.fixed is None or line.fixed.currency != currency:
                raise ValidationError({"fixed_price": [
                    f"price list line {line.id} has base 'fixed' but no fixed price in {currency}; set its fixed_price"]},
                    entity="price_list_line")
            return line.fixed.amount, "fixed price", ()
        if kind == "cost":
            cost: Money | None = product["cost"]
            if cost is None or cost.currency != currency:
                raise ValidationError({"cost": [
                    f"price list line {line.id} prices product {code!r} from its cost, which is not set in {currency}; "
                    "set the product's cost"]}, entity="product")
            return cost.amount, "cost", ()
        if kind == "price_list" and line.base_list_id is not None:
            return self._base_list(product, currency, line, request, depth)
        list_price: Money = product["list_price"]
        if list_price.currency != currency:
            raise ValidationError({"list_price": [
                f"price list line {line.id} starts from the list price of product {code!r}, which is in "
                f"{list_price.currency}, not {currency}; use a fixed price or a {list_price.currency} list"]},
                entity="product")
        return list_price.amount, "list price", ()

    def _base_list(self, product: dict[str, Any], currency: str, line: _Line, request: PriceRequest,
                   depth: int) -> tuple[decimal.Decimal, str, tuple[PriceStep, ...]]:
        base_id = line.base_list_id
        assert base_id is not None
        row = self.lists.get(base_id)
        if depth > 8 or row is None:
            problem = "is missing or not readable" if row is None else "is based on lists more than 8 deep (a cycle?)"
            raise ValidationError({"base_price_list_id": [
                f"price list line {line.id} takes its base from price list {base_id}, which {problem}; "
                "choose another base list"]}, entity="price_list_line")
        lines = tuple(x for x in self._lines_for(base_id, product) if x.min_quantity <= request.quantity)
        valid = row["active"] and row["currency"] == currency and _valid(row, request.on)
        if not lines or not valid:
            list_price: Money = product["list_price"]
            return list_price.amount, f"list price (price list {row['name']!r} does not price it)", ()
        value, steps, _ = self._apply_list(product, currency, base_id, lines, request, depth + 1)
        return value, f"price list {row['name']!r}", steps

    def _discount(self, request: PriceRequest, product: dict[str, Any],
                  unit: Money) -> tuple[decimal.Decimal, tuple[PriceStep, ...]]:
        if request.account_id is None or request.account_id not in self.discounts:
            return _ZERO, ()
        key = (request.account_id, request.on, product["group_id"], unit)
        found = self._discounted.get(key)
        if found is not None:
            return found
        groups = self._ancestors_of(product["group_id"])
        applying = [d for d in self.discounts[request.account_id]
                    if (d["group_id"] is None or d["group_id"] in groups) and _valid(d, request.on)
                    and d["percent"]]
        applying.sort(key=lambda d: (-d["percent"], d["id"]))
        steps: list[PriceStep] = []
        if not applying:
            found = (_ZERO, ())
        elif self.combination == "best":
            best = applying[0]
            percent = best["percent"]
            others = f"; best of {len(applying)}" if len(applying) > 1 else ""
            steps.append(PriceStep("customer_discount", _discount_source(best), f"- {percent}%{others}",
                                   unit, unit * (1 - percent / _HUNDRED)))
            found = (percent, tuple(steps))
        else:
            remaining, value = decimal.Decimal(1), unit
            for d in applying:
                factor = 1 - d["percent"] / _HUNDRED
                steps.append(PriceStep("customer_discount", _discount_source(d), f"- {d['percent']}% (cascaded)",
                                       value, value * factor))
                remaining *= factor
                value = value * factor
            found = ((1 - remaining) * _HUNDRED, tuple(steps))
        self._discounted[key] = found
        return found


def _discount_source(row: dict[str, Any]) -> str:
    scope = f"group {row['group_id']}" if row["group_id"] is not None else "every product"
    return f"{row['kind']} customer discount {row['id']} ({scope})"
