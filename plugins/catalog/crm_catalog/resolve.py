"""How :func:`crm_catalog.pricing.price_lines` resolves prices, in Python, over what
:mod:`crm_catalog.loading` read once.

For each line, the price lists that apply are tried in order of audience (the account's own
lists, then its customer group's, then its segment's, then those for everyone), then by the
list's priority (higher first), then by id; the first list with a line matching the product
and quantity sets the price, by its declared stacking policy (``exclusive``: its first line by
priority; ``cumulative``: each matching line in priority order, each after the first starting
from the price before; ``best_for_customer``: the lowest price of its matching lines, ties to
the higher priority). With no list, the list price stands. Lists price in their own currency
only; the line's currency is the request's, or the product's list price currency. The customer
discounts that apply (valid on the day, for the product's group or one above it, or for every
product) combine as ``[plugins.catalog] discount_combination`` says: the best one, or cascaded.

Resolution is memoised per call: per account, day and currency the lists in order; per those
lists and product a ladder of quantity thresholds; per list, product and matching lines the
price and its steps. A call pricing 100,000 lines resolves each distinct case once.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from crmcore.errors import ValidationError
from crmcore.money import Money

from crm_catalog.loading import Line, PricingData, Product, group_ancestors
from crm_catalog.pricing import PricedLine, PriceRequest, PriceStep

__all__ = ["AUDIENCES", "Resolver"]

#: Audiences of price lists, most specific first: the order lists are tried in.
AUDIENCES = ("account", "customer_group", "segment", "everyone")
_HUNDRED = decimal.Decimal(100)
_ZERO = decimal.Decimal(0)
_ONE = decimal.Decimal(1)
_CENT = decimal.Decimal("0.01")
_Result = tuple[Money, tuple[PriceStep, ...], "int | None", "int | None"]


def _valid(row: dict[str, Any], on: dt.date) -> bool:
    start, end = row.get("valid_from"), row.get("valid_to")
    return (start is None or start <= on) and (end is None or on <= end)


def _line_order(line: Line) -> tuple[int, int]:
    return -line.priority, line.id


def _tidy(value: decimal.Decimal) -> decimal.Decimal:
    """*value* without the trailing zeros of exact products past two places (1056.000000 ->
    1056.00; 1055.12340 -> 1055.1234): the same number, easier to read in an explanation."""
    cents = value.quantize(_CENT)
    return cents if cents == value else value.normalize()


def _plain(value: decimal.Decimal) -> str:
    return format(value.normalize(), "f")


class Resolver:
    """Resolves requests over one call's :class:`~crm_catalog.loading.PricingData`."""

    def __init__(self, data: PricingData, combination: str, quantum: decimal.Decimal) -> None:
        self.data = data
        self.combination = combination
        self.quantum = quantum
        self._rounding_text = f"half up to {quantum}"
        self._candidates: dict[tuple[int | None, dt.date, str], tuple[int, ...]] = {}
        self._audiences: dict[tuple[dt.date, str], dict[str, dict[Any, tuple[int, ...]]]] = {}
        self._ladder_sets: dict[tuple[int, ...], dict[int, list[list[Any]]]] = {}
        self._matches: dict[tuple[int, int], tuple[Line, ...]] = {}
        self._results: dict[Any, _Result] = {}
        self._discounts: dict[tuple[int, dt.date], dict[int | None, tuple[tuple[Any, ...], ...]]] = {}
        self._ancestors: dict[int | None, tuple[int, ...]] = {}
        self._first: dict[int, PriceStep] = {}
        self._texts: dict[int, tuple[str, str, str]] = {}
        self._last: tuple[Any, ...] = (object(),)
        self._current: tuple[tuple[int, ...], dict[int, list[list[Any]]], dict[int | None, Any] | None] = ((), {}, None)
        self._products = data.products

    def price_all(self, requests: list[PriceRequest] | tuple[PriceRequest, ...]) -> list[PricedLine]:
        """The priced lines of *requests*, in order."""
        return [self.price(r) for r in requests]

    def price(self, request: PriceRequest) -> PricedLine:
        product = self._products[request.product_id]
        list_price = product.list_price
        account_id, on = request.account_id, request.on
        currency = request.currency or list_price.currency
        if (account_id, on, currency) != self._last:  # lines of a quote share them: worked out once
            self._switch(account_id, on, currency)
        candidates, ladders, discounts = self._current
        ladder = ladders.get(product.id)
        if ladder is None:
            ladder = ladders[product.id] = self._ladder(candidates, product)
        quantity = request.quantity
        for slot in ladder:  # [threshold, case, dynamic, result, discounted]
            if quantity >= slot[0]:
                break
        applying: tuple[tuple[Any, ...], ...] = ()
        if discounts is not None:
            applying = discounts.get(product.group_id)  # type: ignore[assignment]
            if applying is None:
                applying = discounts[product.group_id] = self._applying(account_id, on, product)
        dynamic = slot[2]
        if not dynamic:  # priced lines are values: the same case, quantity and discounts give the same one
            memo_key: Any = (quantity, id(applying)) if applying else quantity
            made = slot[4].get(memo_key)
            if made is not None:
                return made  # type: ignore[no-any-return]
            result = slot[3]
            if result is None:
                result = slot[3] = self._result(product, currency, slot[1], slot[1], request)
        else:  # a line based on another list: its day and quantity matter too
            result = self._result(product, currency, (slot[1], on, quantity), slot[1], request)
        unit, steps, list_id, line_id = result
        percent = _ZERO
        if applying:
            percent, more = self._discount(applying, unit)
            steps = steps + more
        tax_code, tax_rate = product.tax
        line = PricedLine(product.id, quantity, list_price, unit, percent, tax_code, tax_rate, list_id, line_id, steps)
        if not dynamic:
            slot[4][memo_key] = line
        return line

    def _switch(self, account_id: int | None, on: dt.date, currency: str) -> None:
        candidates = self._candidates.get((account_id, on, currency))
        if candidates is None:
            candidates = self._candidates[(account_id, on, currency)] = self._candidates_for(account_id, on, currency)
        ladders = self._ladder_sets.get(candidates)
        if ladders is None:
            ladders = self._ladder_sets[candidates] = {}
        discounts = None
        if account_id is not None and account_id in self.data.discounts:
            discounts = self._discounts.get((account_id, on))
            if discounts is None:
                discounts = self._discounts[(account_id, on)] = {}
        self._last = (account_id, on, currency)
        self._current = (candidates, ladders, discounts)

    def _result(self, product: Product, currency: str, key: Any, case: Any, request: PriceRequest) -> _Result:
        result = self._results.get(key)
        if result is None:
            result = self._results[key] = self._resolve(product, currency, case, request)
        return result

    # -- which lists, which lines -----------------------------------------------------------------
    def _ancestors_of(self, group_id: int | None) -> tuple[int, ...]:
        found = self._ancestors.get(group_id)
        if found is None:
            found = self._ancestors[group_id] = group_ancestors(self.data.parents, group_id)
        return found

    def _candidates_for(self, account_id: int | None, on: dt.date, currency: str) -> tuple[int, ...]:
        index = self._audiences.get((on, currency))
        if index is None:
            index = self._audiences[(on, currency)] = self._audience_index(on, currency)
        account = self.data.accounts.get(account_id) if account_id is not None else None
        if account is None:
            return index["everyone"].get(None, ())
        return (*index["account"].get(account["id"], ()), *index["customer_group"].get(account["customer_group_id"], ()),
                *index["segment"].get(account["segment"], ()), *index["everyone"].get(None, ()))

    def _audience_index(self, on: dt.date, currency: str) -> dict[str, dict[Any, tuple[int, ...]]]:
        """The lists valid on a day in a currency, by audience and its key, each in order."""
        found: dict[str, dict[Any, list[tuple[int, int]]]] = {audience: {} for audience in AUDIENCES}
        for row in self.data.lists.values():
            if row["currency"] != currency or not row["active"] or not _valid(row, on):
                continue
            if row["account_id"] is not None:
                audience, key = "account", row["account_id"]
            elif row["customer_group_id"] is not None:
                audience, key = "customer_group", row["customer_group_id"]
            elif row["segment"]:
                audience, key = "segment", row["segment"]
            else:
                audience, key = "everyone", None
            found[audience].setdefault(key, []).append((-(row["priority"] or 0), row["id"]))
        return {audience: {key: tuple(lid for _, lid in sorted(ids)) for key, ids in keyed.items()}
                for audience, keyed in found.items()}

    def _lines_for(self, list_id: int, product: Product) -> tuple[Line, ...]:
        key = (list_id, product.id)
        found = self._matches.get(key)
        if found is None:
            data = self.data
            matched = list(data.by_product.get(key, ()))
            for gid in self._ancestors_of(product.group_id):
                matched += data.by_group.get((list_id, gid), ())
            matched += data.for_all.get(list_id, ())
            if len(matched) > 1:
                matched.sort(key=_line_order)
            found = self._matches[key] = tuple(matched)
        return found

    def _ladder(self, candidates: tuple[int, ...], product: Product) -> list[list[Any]]:
        """The cases of a product under these lists, by quantity threshold, highest first: each
        ``[threshold, case, dynamic, result, priced lines]`` holds from its threshold on; a case is
        ``(product id,)`` (the list price) or ``(list id, product id, the matching lines)``; dynamic when a line takes its base from another list (whose own lines depend
        on day and quantity); the result and the priced lines (by quantity and discounts) are kept
        as they are made."""
        matched = []
        for lid in candidates:  # the lists up to the first that prices every quantity
            lines = self._lines_for(lid, product)
            if lines:
                matched.append((lid, lines))
                if all(line.min_quantity <= 0 for line in lines):  # the usual case: one rung
                    if len(matched) == 1:
                        return [[_ZERO, (lid, product.id, lines), any(line.dynamic for line in lines), None, {}]]
                    break
                if any(line.min_quantity <= 0 for line in lines):
                    break
        thresholds = sorted({_ZERO, *(line.min_quantity for _, lines in matched for line in lines)}, reverse=True)
        ladder = []
        for threshold in thresholds:
            case: Any = (product.id,)
            dynamic = False
            for lid, lines in matched:
                found = tuple(line for line in lines if line.min_quantity <= threshold)
                if found:
                    case = (lid, product.id, found)
                    dynamic = any(line.dynamic for line in found)
                    break
            ladder.append([threshold, case, dynamic, None, {}])
        return ladder

    # -- prices -----------------------------------------------------------------------------------
    def _first_step(self, product: Product) -> PriceStep:
        step = self._first.get(product.id)
        if step is None:
            step = self._first[product.id] = PriceStep("list_price", f"product {product.code}", "list price", None,
                                                       product.list_price)
        return step

    def _resolve(self, product: Product, currency: str, case: Any, request: PriceRequest) -> _Result:
        list_price = product.list_price
        first = self._first_step(product)
        if len(case) == 1:
            if list_price.currency != currency:
                raise ValidationError({"currency": [
                    f"no price list prices product {product.code!r} in {currency} and its list price is in "
                    f"{list_price.currency}; add a {currency} price list or price in {list_price.currency}"]},
                    entity="product")
            return self._final(list_price, (first,), None, None)
        list_id, _, lines = case
        value, steps, line_id = self._apply_list(product, currency, list_id, lines, request, 0)
        return self._final(value, (first, *steps), list_id, line_id)

    def _final(self, value: Money, steps: tuple[PriceStep, ...], list_id: int | None, line_id: int | None) -> _Result:
        rounded = value.amount.quantize(self.quantum, rounding=decimal.ROUND_HALF_UP)
        money = Money(rounded, value.currency)
        if rounded != value.amount:
            steps = (*steps, PriceStep("rounding", "currency", self._rounding_text, value, money))
        return money, steps, list_id, line_id

    def _apply_list(self, product: Product, currency: str, list_id: int, lines: tuple[Line, ...],
                    request: PriceRequest, depth: int) -> tuple[Money, tuple[PriceStep, ...], int]:
        row = self.data.lists[list_id]
        stacking = row["stacking"]
        if stacking == "cumulative":
            value, steps = self._apply_line(product, currency, lines[0], request, None, depth)
            for line in lines[1:]:
                value, more = self._apply_line(product, currency, line, request, value, depth)
                steps += more
            return value, steps, lines[-1].id
        if stacking == "best_for_customer" and len(lines) > 1:  # the prices first, the winner's steps then
            tried = [(self._value_of(product, currency, line, request, depth), line) for line in lines]
            _, best = min(tried, key=lambda t: (t[0], -t[1].priority, t[1].id))
            value, steps = self._apply_line(product, currency, best, request, None, depth)
            others = ", ".join(f"line {line.id}: {_tidy(v)} {currency}" for v, line in tried if line is not best)
            steps += (PriceStep("price_list_line", f"price list {row['name']!r} best_for_customer",
                                f"lowest of line {best.id} and {others}", value, value),)
            return value, steps, best.id
        value, steps = self._apply_line(product, currency, lines[0], request, None, depth)
        return value, steps, lines[0].id

    def _texts_of(self, line: Line, currency: str) -> tuple[str, str, str]:
        """The source of a line's steps, the formula after its base and the rounding's detail
        (made once per line)."""
        found = self._texts.get(line.id)
        if found is None:
            name = self.data.lists[line.list_id]["name"]
            source = f"price list {name!r} line {line.id} (priority {line.priority})"
            tail = line.formula.describe("", currency)
            if line.min_quantity:
                tail += f" (from quantity {_plain(line.min_quantity)})"
            rounding = line.formula.rounding
            found = self._texts[line.id] = (source, tail, f"half up to a multiple of {_plain(rounding)}" if rounding else "")
        return found

    def _apply_line(self, product: Product, currency: str, line: Line, request: PriceRequest,
                    previous: Money | None, depth: int) -> tuple[Money, tuple[PriceStep, ...]]:
        formula = line.formula
        source, tail, rounding_text = self._texts_of(line, currency)
        steps: tuple[PriceStep, ...] = ()
        if previous is not None:
            base, base_text = previous, "previous price"
        elif formula.base == "list_price" and product.list_price.currency == currency:
            base, base_text = product.list_price, "list price"
        else:
            base, base_text, steps = self._base(product, currency, line, request, depth)
        adjusted = base.amount
        if line.factor is not None:
            adjusted = adjusted * line.factor
        if formula.surcharge is not None:
            adjusted = adjusted + formula.surcharge
        value = Money(_tidy(adjusted), currency) if adjusted is not base.amount else base
        steps += (PriceStep("price_list_line", source, base_text + tail, base, value),)
        if formula.rounding is not None:
            rounded = formula.round(adjusted)
            if rounded != adjusted:
                money = Money(_tidy(rounded), currency)
                steps += (PriceStep("rounding", source, rounding_text, value, money),)
                value = money
        cost = product.cost
        if formula.has_clamp and cost is not None and cost.currency == currency:
            clamped, bound = formula.clamp(value.amount, cost.amount)
            if bound is not None:
                percent = formula.min_margin_percent if bound == "min" else formula.max_margin_percent
                money = Money(_tidy(clamped), currency)
                steps += (PriceStep("clamp", source, f"{bound}imum margin {percent}% over cost {cost}", value, money),)
                value = money
        return value, steps

    def _value_of(self, product: Product, currency: str, line: Line, request: PriceRequest, depth: int) -> decimal.Decimal:
        """The price a line gives, without its explanation (what :meth:`_apply_line` computes)."""
        formula = line.formula
        if formula.base == "list_price" and product.list_price.currency == currency:
            value = product.list_price.amount
        else:
            value = self._base(product, currency, line, request, depth)[0].amount
        if line.factor is not None:
            value = value * line.factor
        if formula.surcharge is not None:
            value = value + formula.surcharge
        if formula.rounding is not None:
            value = formula.round(value)
        cost = product.cost
        if formula.has_clamp and cost is not None and cost.currency == currency:
            value = formula.clamp(value, cost.amount)[0]
        return value

    def _base(self, product: Product, currency: str, line: Line, request: PriceRequest,
              depth: int) -> tuple[Money, str, tuple[PriceStep, ...]]:
        kind = line.formula.base
        if kind == "fixed":
            if line.fixed is None or line.fixed.currency != currency:
                raise ValidationError({"fixed_price": [
                    f"price list line {line.id} has base 'fixed' but no fixed price in {currency}; set its fixed_price"]},
                    entity="price_list_line")
            return line.fixed, "fixed price", ()
        if kind == "cost":
            if product.cost is None or product.cost.currency != currency:
                raise ValidationError({"cost": [
                    f"price list line {line.id} prices product {product.code!r} from its cost, which is not set in "
                    f"{currency}; set the product's cost"]}, entity="product")
            return product.cost, "cost", ()
        if kind == "price_list" and line.base_list_id is not None:
            return self._base_list(product, currency, line, request, depth)
        if product.list_price.currency != currency:
            raise ValidationError({"list_price": [
                f"price list line {line.id} starts from the list price of product {product.code!r}, which is in "
                f"{product.list_price.currency}, not {currency}; use a fixed price or a {product.list_price.currency} list"]},
                entity="product")
        return product.list_price, "list price", ()

    def _base_list(self, product: Product, currency: str, line: Line, request: PriceRequest,
                   depth: int) -> tuple[Money, str, tuple[PriceStep, ...]]:
        base_id = line.base_list_id
        assert base_id is not None
        row = self.data.lists.get(base_id)
        if depth > 8 or row is None:
            problem = "is missing or not readable" if row is None else "is based on lists more than 8 deep (a cycle?)"
            raise ValidationError({"base_price_list_id": [
                f"price list line {line.id} takes its base from price list {base_id}, which {problem}; "
                "choose another base list"]}, entity="price_list_line")
        lines = tuple(x for x in self._lines_for(base_id, product) if x.min_quantity <= request.quantity)
        valid = row["active"] and row["currency"] == currency and _valid(row, request.on)
        if not lines or not valid:
            if product.list_price.currency != currency:
                raise ValidationError({"base_price_list_id": [
                    f"price list {row['name']!r} does not price product {product.code!r} in {currency} on {request.on}"
                    f" and its list price is in {product.list_price.currency}; add a line to the base list"]},
                    entity="price_list_line")
            return product.list_price, f"list price (price list {row['name']!r} does not price it)", ()
        value, steps, _ = self._apply_list(product, currency, base_id, lines, request, depth + 1)
        return value, f"price list {row['name']!r}", steps

    # -- customer discounts -----------------------------------------------------------------------
    def _applying(self, account_id: int | None, on: dt.date, product: Product) -> tuple[tuple[Any, ...], ...]:
        """The account's discounts for the product's group on a day, best first: ``(percent,
        factor, source)``."""
        assert account_id is not None
        groups = self._ancestors_of(product.group_id)
        rows = [d for d in self.data.discounts[account_id]
                if (d["group_id"] is None or d["group_id"] in groups) and _valid(d, on) and d["percent"]]
        rows.sort(key=lambda d: (-d["percent"], d["id"]))
        return tuple(
            (d["percent"], 1 - d["percent"] / _HUNDRED,
             f"{d['kind']} customer discount {d['id']} "
             f"({'group ' + str(d['group_id']) if d['group_id'] is not None else 'every product'})")
            for d in rows)

    def _discount(self, applying: tuple[tuple[Any, ...], ...], unit: Money) -> tuple[decimal.Decimal, tuple[PriceStep, ...]]:
        if self.combination == "best":
            percent, factor, source = applying[0]
            others = f"; best of {len(applying)}" if len(applying) > 1 else ""
            after = Money(_tidy(unit.amount * factor), unit.currency)
            return percent, (PriceStep("customer_discount", source, f"- {percent}%{others}", unit, after),)
        steps: list[PriceStep] = []
        remaining, value = _ONE, unit
        for percent, factor, source in applying:
            after = Money(_tidy(value.amount * factor), value.currency)
            steps.append(PriceStep("customer_discount", source, f"- {percent}% (cascaded)", value, after))
            remaining *= factor
            value = after
        return ((1 - remaining) * _HUNDRED).normalize(), tuple(steps)
