"""The one totals engine of every commercial document (quotes, orders, later invoices).

Everything is exact :class:`~decimal.Decimal` arithmetic, rounded only where a document shows
an amount, with the rounding chosen in settings per currency:

1. A line's gross amount is ``quantity × unit price``, rounded.
2. Line discounts cascade: 10 % then 5 % leave ``0.90 × 0.95`` of the price (14.5 % off, not
   15 %). The line's net is the gross amount times that factor, rounded.
3. A document discount (a percentage of the subtotal, or an amount) is rounded once, then
   spread over the lines in proportion to their nets by the largest-remainder method, so the
   lines' shares always add up to the document discount to the last cent.
4. Taxes per tax category: with ``line`` rounding, each line's tax is rounded and the category
   sums them; with ``global`` rounding, each category's tax is computed on the sum of its lines
   and rounded once, then spread back over its lines (largest remainder) so lines still add
   up. Either way the document's tax is the sum of its categories and its total is net + tax.

``half_up`` or ``half_even`` and the number of decimal places are per currency
(:func:`rounding_for`). The engine does no I/O: quotes, orders and invoices call it on their
lines, which is why they never disagree.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from decimal import Decimal

import attrs
from crmcore.errors import ValidationError
from crmcore.money import Money

__all__ = [
    "METHODS",
    "MODES",
    "DocumentTotals",
    "LineInput",
    "LineTotals",
    "Rounding",
    "TaxTotal",
    "compute_totals",
    "currency_places",
    "discount_factor",
    "rounding_for",
]

#: Where taxes are rounded: on every line, or once per tax category.
MODES = ("line", "global")
#: How halves are rounded.
METHODS = {"half_up": decimal.ROUND_HALF_UP, "half_even": decimal.ROUND_HALF_EVEN}

_ZERO_PLACES = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split())
_THREE_PLACES = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
_HUNDRED = Decimal(100)
_CONTEXT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])


def currency_places(currency: str) -> int:
    """The decimal places amounts in *currency* are shown with (ISO 4217 minor units)."""
    if currency in _ZERO_PLACES:
        return 0
    if currency in _THREE_PLACES:
        return 3
    return 2


#: The quantum of each number of places a rounding allows (0 to 6).
_QUANTA = {places: Decimal(1).scaleb(-places) for places in range(7)}


@attrs.frozen
class Rounding:
    """How a document's amounts are rounded.

    :ivar mode: ``"line"`` (tax rounded per line) or ``"global"`` (per tax category).
    :ivar method: ``"half_up"`` or ``"half_even"``.
    :ivar places: decimal places of the currency's amounts.
    """

    mode: str = attrs.field(default="line", validator=attrs.validators.in_(MODES))
    method: str = attrs.field(default="half_up", validator=attrs.validators.in_(tuple(METHODS)))
    places: int = attrs.field(default=2, validator=attrs.validators.and_(
        attrs.validators.ge(0), attrs.validators.le(6)))

    @property
    def quantum(self) -> Decimal:
        return _QUANTA[self.places]

    def round(self, value: Decimal) -> Decimal:
        return value.quantize(_QUANTA[self.places], rounding=METHODS[self.method], context=_CONTEXT)


def rounding_for(
    currency: str,
    *,
    mode: str = "line",
    methods: Mapping[str, str] | None = None,
    default_method: str = "half_up",
    places: Mapping[str, int] | None = None,
) -> Rounding:
    """The rounding of documents in *currency*: the method named for the currency in
    *methods* (else *default_method*) and its places from *places* (else ISO 4217)."""
    method = (methods or {}).get(currency, default_method)
    digits = (places or {}).get(currency, currency_places(currency))
    return Rounding(mode, method, digits)


@attrs.frozen
class LineInput:
    """What the engine needs of one document line (amounts in the document's currency).

    :ivar discounts: line discounts in percent, applied one after the other.
    :ivar tax_code: the tax category's code (``None``: untaxed).
    :ivar tax_rate: its rate in percent.
    """

    quantity: Decimal
    unit_price: Decimal
    discounts: tuple[Decimal, ...] = ()
    tax_code: str | None = None
    tax_rate: Decimal = Decimal(0)


@attrs.frozen
class LineTotals:
    """One line's amounts: ``gross - line_discount = subtotal``; ``subtotal - document_discount
    = net``; ``net + tax = total`` (each a :class:`Money` in *currency*, made when asked for)."""

    currency: str
    amounts: tuple[Decimal, Decimal, Decimal, Decimal, Decimal, Decimal, Decimal]
    tax_code: str | None
    tax_rate: Decimal

    def _money(self, index: int) -> Money:
        return Money(self.amounts[index], self.currency)

    gross = property(lambda self: self._money(0), doc="Quantity times unit price, rounded.")
    line_discount = property(lambda self: self._money(1), doc="What the line's own discounts take off.")
    subtotal = property(lambda self: self._money(2), doc="Gross less the line discounts.")
    document_discount = property(lambda self: self._money(3), doc="The line's share of the document discount.")
    net = property(lambda self: self._money(4), doc="Subtotal less its share of the document discount.")
    tax = property(lambda self: self._money(5), doc="The line's tax.")
    total = property(lambda self: self._money(6), doc="Net plus tax.")


@attrs.frozen
class TaxTotal:
    """One tax category's base and tax."""

    code: str | None
    rate: Decimal
    base: Money
    tax: Money


@attrs.frozen
class DocumentTotals:
    """A document's totals; its lines add up to them exactly."""

    currency: str
    lines: tuple[LineTotals, ...]
    gross: Money
    line_discount: Money
    subtotal: Money
    document_discount: Money
    net: Money
    taxes: tuple[TaxTotal, ...]
    tax: Money
    total: Money
    rounding: Rounding

    def as_fields(self) -> dict[str, Money]:
        """The amounts a document record keeps."""
        return {
            "subtotal": self.subtotal,
            "discount_total": self.document_discount,
            "net_total": self.net,
            "tax_total": self.tax,
            "grand_total": self.total,
        }

    @property
    def max_discount_percent(self) -> Decimal:
        """The largest effective discount of a line, document discount included, in percent of
        its gross amount (0 for a document without amounts)."""
        worst = Decimal(0)
        for line in self.lines:
            gross, net = line.amounts[0], line.amounts[4]
            if gross > 0:
                worst = max(worst, (gross - net) * _HUNDRED / gross)
        return worst.quantize(Decimal("0.01"), rounding=decimal.ROUND_HALF_UP)


def discount_factor(discounts: Sequence[Decimal]) -> Decimal:
    """What remains of a price after cascading *discounts* (percent): ``Π (1 - d / 100)``.

    :raises ValidationError: for a discount outside 0..100.
    """
    key = tuple(discounts)
    found = _FACTORS.get(key)
    if found is not None:
        return found
    factor = Decimal(1)
    for discount in discounts:
        if not Decimal(0) <= discount <= _HUNDRED:
            raise ValidationError({"discounts": [f"a discount is a percentage from 0 to 100, got {discount}"]})
        factor = _CONTEXT.multiply(factor, _CONTEXT.subtract(Decimal(1), _CONTEXT.divide(discount, _HUNDRED)))
    if len(_FACTORS) >= 10_000:
        _FACTORS.clear()
    _FACTORS[key] = factor
    return factor


#: Cascading discounts and what remains after them: lines share a few (equal discounts give
#: equal factors; a subtotal rounds the product with the factor to its quantum).
_FACTORS: dict[tuple[Decimal, ...], Decimal] = {}


def _spread(total: Decimal, weights: Sequence[Decimal], rounding: Rounding) -> list[Decimal]:
    """*total* (a multiple of the quantum) split in proportion to *weights* (all >= 0) by the
    largest-remainder method: the parts are multiples of the quantum and add up to *total*."""
    if not weights:
        return []
    quantum = rounding.quantum
    if not total:  # nothing to spread (no document discount): every part is 0 (at the quantum)
        return [Decimal(0) * quantum] * len(weights)
    units = int((total / quantum).to_integral_value())
    weight_sum = sum(weights, Decimal(0))
    if weight_sum == 0:
        weights, weight_sum = [Decimal(1)] * len(weights), Decimal(len(weights))
    exact = [_CONTEXT.divide(_CONTEXT.multiply(Decimal(units), w), weight_sum) for w in weights]
    floors = [int(e.to_integral_value(rounding=decimal.ROUND_FLOOR)) for e in exact]
    left = units - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - floors[i]), i))
    for index in order[:left]:
        floors[index] += 1
    return [Decimal(n) * quantum for n in floors]


def compute_totals(
    lines: Sequence[LineInput],
    *,
    document_discount: Decimal | Money | None = None,
    rounding: Rounding | None = None,
    currency: str,
) -> DocumentTotals:
    """The totals of a document with *lines* in *currency*.

    :param document_discount: a percentage of the subtotal (``Decimal``), an amount
        (:class:`Money` in *currency*), or ``None``.
    :param rounding: the currency's rounding (:func:`rounding_for`); ISO places, half-up and
        per-line taxes when left out.
    :raises ValidationError: for a negative quantity or price, a discount outside 0..100 %, or a
        document discount above the subtotal or in another currency.
    """
    rounding = rounding or rounding_for(currency)
    gross: list[Decimal] = []
    subtotals: list[Decimal] = []
    for number, line in enumerate(lines, start=1):
        if line.quantity < 0 or line.unit_price < 0:
            raise ValidationError({"lines": [
                f"line {number}: quantity and unit price must not be negative, got {line.quantity} × {line.unit_price}"]})
        exact = _CONTEXT.multiply(line.quantity, line.unit_price)
        gross.append(rounding.round(exact))
        subtotals.append(rounding.round(_CONTEXT.multiply(exact, discount_factor(line.discounts))))
    subtotal = sum(subtotals, Decimal(0))
    discount = _document_discount(document_discount, subtotal, rounding, currency)
    shares = _spread(discount, subtotals, rounding)
    nets = [s - d for s, d in zip(subtotals, shares, strict=True)]
    taxes = _line_taxes(lines, nets, rounding)

    def money(value: Decimal) -> Money:
        return Money(value, currency)

    line_totals = tuple(
        LineTotals(currency, (g, g - s, s, d, n, t, n + t), line.tax_code, line.tax_rate)
        for line, g, s, d, n, t in zip(lines, gross, subtotals, shares, nets, taxes, strict=True)
    )
    categories: dict[tuple[str | None, Decimal], list[Decimal]] = {}
    for line, net, tax in zip(lines, nets, taxes, strict=True):
        base_tax = categories.setdefault((line.tax_code, line.tax_rate.normalize()), [Decimal(0), Decimal(0)])
        base_tax[0] += net
        base_tax[1] += tax
    tax_totals = tuple(
        TaxTotal(code, rate, money(base), money(tax))
        for (code, rate), (base, tax) in sorted(categories.items(), key=lambda item: (item[0][0] or "", item[0][1]))
    )
    net = sum(nets, Decimal(0))
    tax = sum(taxes, Decimal(0))
    total_gross = sum(gross, Decimal(0))
    return DocumentTotals(
        currency, line_totals, money(total_gross), money(total_gross - subtotal), money(subtotal),
        money(discount), money(net), tax_totals, money(tax), money(net + tax), rounding,
    )


def _document_discount(value: Decimal | Money | None, subtotal: Decimal, rounding: Rounding, currency: str) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, Money):
        if value.currency != currency:
            raise ValidationError({"document_discount": [
                f"the document discount is in {value.currency} but the document in {currency}; give it in {currency}"]})
        amount = rounding.round(value.amount)
    else:
        if not Decimal(0) <= value <= _HUNDRED:
            raise ValidationError({"document_discount": [f"a discount is a percentage from 0 to 100, got {value}"]})
        amount = rounding.round(_CONTEXT.divide(_CONTEXT.multiply(subtotal, value), _HUNDRED))
    if amount < 0 or amount > subtotal:
        raise ValidationError({"document_discount": [
            f"the document discount {amount} {currency} must lie between 0 and the subtotal {subtotal} {currency}"]})
    return amount


def _line_taxes(lines: Sequence[LineInput], nets: Sequence[Decimal], rounding: Rounding) -> list[Decimal]:
    if rounding.mode == "line":
        return [rounding.round(_CONTEXT.divide(_CONTEXT.multiply(net, line.tax_rate), _HUNDRED))
                for line, net in zip(lines, nets, strict=True)]
    taxes = [Decimal(0)] * len(lines)
    groups: dict[tuple[str | None, Decimal], list[int]] = {}
    for index, line in enumerate(lines):
        groups.setdefault((line.tax_code, line.tax_rate.normalize()), []).append(index)
    for (_, rate), indexes in groups.items():
        base = sum((nets[i] for i in indexes), Decimal(0))
        tax = rounding.round(_CONTEXT.divide(_CONTEXT.multiply(base, rate), _HUNDRED))
        for index, part in zip(indexes, _spread(tax, [nets[i] for i in indexes], rounding), strict=True):
            taxes[index] = part
    return taxes
