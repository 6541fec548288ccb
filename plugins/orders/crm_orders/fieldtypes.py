"""The orders plugin's own field type: a line's cascading discounts."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import weakref
from typing import Any, ClassVar

import attrs
from crm_catalog.pricing import PricedLine, PriceStep
from crmcore.fields import Choice, FieldValueError, Json
from crmcore.money import CURRENCIES, Money

__all__ = ["Currency", "Discounts", "FrozenDict", "FrozenList", "PriceSnapshot", "currency_choice"]

_HUNDRED = decimal.Decimal(100)


@attrs.frozen
class Discounts(Json):
    """Line discounts in percent, applied one after the other: a list of exact decimals from 0
    to 100, kept as texts (``["10", "2.5"]``); a single number or text is a list of one."""

    kind: ClassVar[str] = "json"

    def parse(self, value: Any) -> list[str]:
        items = json.loads(value) if isinstance(value, str) and value.lstrip().startswith("[") else value
        if items is None or items == "":
            return []
        if not isinstance(items, list | tuple):
            items = [items]
        parsed = []
        for item in items:
            if isinstance(item, bool | float | dict | list) or item is None:
                raise FieldValueError(f"a discount is a percentage such as \"12.5\", got {item!r}")
            try:
                number = decimal.Decimal(str(item))
            except decimal.InvalidOperation:
                raise FieldValueError(f"a discount is a percentage such as \"12.5\", got {item!r}") from None
            if not number.is_finite() or not 0 <= number <= _HUNDRED:
                raise FieldValueError(f"a discount is a percentage from 0 to 100, got {item!r}")
            parsed.append(str(number))
        return parsed

    def describe(self) -> str:
        return "a list of percentages from 0 to 100, applied one after the other"

    def sample(self, n: int) -> list[str]:
        """A valid sample (for conformance checks): 10 percent, then 5."""
        return ["10", "5"]


class Currency(Choice):
    """A document's currency: an ISO 4217 code. The deployment's currency (``[crm] currency``)
    comes first, so it is also the sample."""

    def __init__(self, first: str = "USD") -> None:
        super().__init__(first, *sorted(CURRENCIES - {first}))

    def bind(self, *, currency: str, timezone: dt.tzinfo) -> Currency:
        return self if self.choices[0] == currency or currency not in CURRENCIES else Currency(currency)

    def sample(self, n: int) -> str:
        """A valid sample (for conformance checks): the deployment's currency."""
        return self.choices[0]


def currency_choice() -> Currency:
    """The currency field type, before the deployment's currency is bound."""
    return Currency()


@attrs.frozen
class PriceSnapshot(Json):
    """The catalog's resolved price of a line, frozen: what :meth:`PricedLine.snapshot` gives,
    or the :class:`PricedLine` itself (the form pricing many lines uses: a priced line is an
    immutable value, so the lines that share one are checked once and share one frozen
    snapshot, whose text a batch writes once). Anything else is refused; a valid snapshot is
    stored in its canonical form (a fresh copy of a plain dict given)."""

    kind: ClassVar[str] = "json"

    def parse(self, value: Any) -> dict[str, Any] | None:
        if type(value) is PricedLine:
            return _priced_snapshot(value)
        if type(value) is FrozenDict:  # a snapshot made above: checked, and it cannot change
            return value
        if type(value) is dict:  # what PricedLine.snapshot() gives: checked and copied in one pass
            copied = _plain_snapshot(value)
            if copied is not None:
                return copied
        data = json.loads(value) if isinstance(value, str) else value
        if data is None:
            return None
        problem = _snapshot_problem(data)
        if problem is not None:
            raise FieldValueError(f"not a priced line's snapshot ({problem}); keep what PricedLine.snapshot() gave")
        try:
            text = json.dumps(data, ensure_ascii=False, allow_nan=False)
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise FieldValueError("a price snapshot's text may not hold a lone surrogate; check the encoding") from None
        if "\\u0000" in text:
            raise FieldValueError("a price snapshot's text may not hold the NUL character (\\x00)")
        return json.loads(text)  # a fresh copy, as the database gives it back

    def describe(self) -> str:
        return "a priced line's snapshot (PricedLine.snapshot()) or the PricedLine"

    def sample(self, n: int) -> dict[str, Any]:
        """A valid sample (for conformance checks): a list price of 10.00 USD."""
        price = Money(decimal.Decimal("10.00"), "USD")
        return PricedLine(product_id=1, quantity=decimal.Decimal(1), list_price=price, unit_price=price,
                          discount_percent=decimal.Decimal(0), tax_category=None, tax_rate=decimal.Decimal(0),
                          price_list_id=None, price_list_line_id=None,
                          steps=(PriceStep("list_price", "product 1", "the list price", None, price),)).snapshot()


_SNAPSHOT_DECIMALS = ("quantity", "discount_percent", "tax_rate")
_SNAPSHOT_IDS = ("price_list_id", "price_list_line_id")
_STEP_TEXTS = ("kind", "source", "detail")


def _money_problem(value: Any, name: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, dict) or set(value) != {"amount", "currency"}:
        return f"{name} is not an amount"
    if value["currency"] not in CURRENCIES:
        return f"{name} has an unknown currency {value['currency']!r}"
    return _decimal_problem(value["amount"], f"{name}.amount")


def _decimal_problem(value: Any, name: str) -> str | None:
    if not isinstance(value, str):
        return f"{name} is not a decimal text"
    try:
        number = decimal.Decimal(value)
    except decimal.InvalidOperation:
        return f"{name} is not a decimal: {value!r}"
    return None if number.is_finite() else f"{name} is not finite"


def _snapshot_problem(data: Any) -> str | None:
    """What makes *data* something else than a :meth:`PricedLine.snapshot` (``None``: nothing):
    the keys, the types and the decimals are checked without building the priced line."""
    if not isinstance(data, dict):
        return "not an object"
    expected = {"product_id", "list_price", "unit_price", "tax_category", "steps", *_SNAPSHOT_DECIMALS, *_SNAPSHOT_IDS}
    if set(data) != expected:
        return f"its keys are {', '.join(sorted(data))}"
    if not isinstance(data["product_id"], int) or isinstance(data["product_id"], bool):
        return "product_id is not an id"
    for name in _SNAPSHOT_IDS:
        if data[name] is not None and (not isinstance(data[name], int) or isinstance(data[name], bool)):
            return f"{name} is not an id"
    if data["tax_category"] is not None and not isinstance(data["tax_category"], str):
        return "tax_category is not a text"
    for name in _SNAPSHOT_DECIMALS:
        problem = _decimal_problem(data[name], name)
        if problem:
            return problem
    for name in ("list_price", "unit_price"):
        problem = _money_problem(data[name], name)
        if problem:
            return problem
    if not isinstance(data["steps"], list):
        return "steps is not a list"
    for number, step in enumerate(data["steps"], start=1):
        if not isinstance(step, dict) or set(step) != {*_STEP_TEXTS, "input", "output"}:
            return f"step {number} is not a price step"
        if not all(isinstance(step[name], str) for name in _STEP_TEXTS):
            return f"step {number} has a kind, source or detail that is not a text"
        problem = _money_problem(step["input"], f"step {number} input", optional=True) or _money_problem(
            step["output"], f"step {number} output")
        if problem:
            return problem
    return None


class FrozenDict(dict):  # type: ignore[type-arg]
    """A ``dict`` that refuses changes: part of a snapshot several lines share."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a price snapshot is a value and cannot change; copy it (dict(...)) to make another")

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (dict(self),)


class FrozenList(list):  # type: ignore[type-arg]
    """A ``list`` that refuses changes: the steps of a snapshot several lines share."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a price snapshot is a value and cannot change; copy it (list(...)) to make another")

    __setitem__ = __delitem__ = __iadd__ = __imul__ = append = clear = extend = insert = pop = remove = reverse = sort = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return list, (list(self),)


#: Priced lines alive and already checked, by identity: ``id -> (a weak reference to the line,
#: its frozen snapshot)``; an entry goes when its line goes (nothing is kept past the batch).
_CHECKED: dict[int, tuple[weakref.ref[PricedLine], FrozenDict]] = {}


def _priced_snapshot(line: PricedLine) -> FrozenDict:
    """The canonical snapshot of *line*, checked once per priced line and frozen (a
    :class:`PricedLine` is immutable: its money, decimals, texts and steps are values), so the
    lines that share a priced line share its snapshot, and a batch writes its text once."""
    key = id(line)
    found = _CHECKED.get(key)
    if found is None or found[0]() is not line:
        frozen = _frozen_of(line)
        if frozen is None:  # a value of another type than pricing makes: checked as its snapshot
            data = line.snapshot()
            checked = _plain_snapshot(data)
            if checked is None:
                problem = _snapshot_problem(data) or "a text holds the NUL character or a lone surrogate"
                raise FieldValueError(f"not a priced line's snapshot ({problem}); keep what PricedLine.snapshot() gave")
            frozen = _frozen(checked)
        found = _CHECKED[key] = (weakref.ref(line, lambda _, key=key: _CHECKED.pop(key, None)), frozen)  # type: ignore[misc]
    return found[1]


def _frozen_of(line: PricedLine) -> FrozenDict | None:
    """The frozen snapshot of *line* made from its values in one pass: what
    ``_frozen(_plain_snapshot(line.snapshot()))`` gives, key order included; ``None`` when a
    value is not of the type pricing makes (the general path then checks it)."""
    numbers = [line.quantity, line.discount_percent, line.tax_rate]
    texts = [line.tax_category or ""]
    moneys: dict[int, FrozenDict] = {}

    def money(value: Any) -> FrozenDict | None:
        if type(value) is not Money:
            return None
        made = moneys.get(id(value))
        if made is None:
            if value.currency not in CURRENCIES:
                return None
            numbers.append(value.amount)
            made = moneys[id(value)] = FrozenDict(amount=str(value.amount), currency=value.currency)
        return made

    if type(line.product_id) is not int or (line.tax_category is not None and type(line.tax_category) is not str):
        return None
    if any(value is not None and type(value) is not int for value in (line.price_list_id, line.price_list_line_id)):
        return None
    list_price, unit_price = money(line.list_price), money(line.unit_price)
    if list_price is None or unit_price is None or type(line.steps) is not tuple:
        return None
    steps = []
    for step in line.steps:
        if type(step) is not PriceStep:
            return None
        kind, source, detail = step.kind, step.source, step.detail
        if type(kind) is not str or type(source) is not str or type(detail) is not str:
            return None
        texts += kind, source, detail
        before = None if step.input is None else money(step.input)
        after = money(step.output)
        if after is None or (before is None and step.input is not None):
            return None
        steps.append(FrozenDict(kind=kind, source=source, detail=detail, input=before, output=after))
    for number in numbers:
        if type(number) is not decimal.Decimal or not number.is_finite():
            return None
    joined = "\x01".join(texts)  # the checks of the general path's JSON text, on every text at once
    if "\x00" in joined or "\\u0000" in joined:
        return None
    if not joined.isascii():
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return FrozenDict(
        product_id=line.product_id, quantity=str(line.quantity), list_price=list_price, unit_price=unit_price,
        discount_percent=str(line.discount_percent), tax_category=line.tax_category, tax_rate=str(line.tax_rate),
        price_list_id=line.price_list_id, price_list_line_id=line.price_list_line_id, steps=FrozenList(steps))


def _frozen(data: dict[str, Any]) -> FrozenDict:
    """A checked snapshot made of frozen dicts and lists (equal to it, key order included)."""
    return FrozenDict({**data, "list_price": FrozenDict(data["list_price"]), "unit_price": FrozenDict(data["unit_price"]),
                       "steps": FrozenList(FrozenDict({**step, "input": None if step["input"] is None else FrozenDict(step["input"]),
                                                       "output": FrozenDict(step["output"])}) for step in data["steps"])})


_SNAPSHOT_KEYS = frozenset({"product_id", "list_price", "unit_price", "tax_category", "steps", *_SNAPSHOT_DECIMALS, *_SNAPSHOT_IDS})
_STEP_KEYS = frozenset({*_STEP_TEXTS, "input", "output"})
_MONEY_KEYS = frozenset({"amount", "currency"})


def _plain_snapshot(data: dict[str, Any]) -> dict[str, Any] | None:
    """A fresh copy of *data* when it is a valid snapshot made of plain dicts, lists, texts,
    ints and ``None`` only (what :meth:`PricedLine.snapshot` gives), equal to the JSON round trip
    of the general path, key order included; ``None`` for anything else, which the general path
    then accepts or refuses with its message."""
    if data.keys() != _SNAPSHOT_KEYS or type(data["product_id"]) is not int:
        return None
    for name in _SNAPSHOT_IDS:
        if data[name] is not None and type(data[name]) is not int:
            return None
    tax_category, steps = data["tax_category"], data["steps"]
    if (tax_category is not None and type(tax_category) is not str) or type(steps) is not list:
        return None
    texts = [tax_category or ""]
    numbers = [data[name] for name in _SNAPSHOT_DECIMALS]
    list_price, unit_price = _plain_money(data["list_price"], numbers), _plain_money(data["unit_price"], numbers)
    if list_price is None or unit_price is None:
        return None
    copied_steps = []
    for step in steps:
        if type(step) is not dict or step.keys() != _STEP_KEYS:
            return None
        kind, source, detail, given = step["kind"], step["source"], step["detail"], step["input"]
        if type(kind) is not str or type(source) is not str or type(detail) is not str:
            return None
        texts += kind, source, detail
        before = None if given is None else _plain_money(given, numbers)
        after = _plain_money(step["output"], numbers)
        if after is None or (before is None and given is not None):
            return None
        copied_steps.append({**step, "input": before, "output": after})
    for number in numbers:  # a text Decimal takes holds neither NUL nor a surrogate
        if type(number) is not str:
            return None
        try:
            if not decimal.Decimal(number).is_finite():
                return None
        except decimal.InvalidOperation:
            return None
    joined = "\x01".join(texts)  # the checks of the general path's JSON text, on every text at once
    if "\x00" in joined or "\\u0000" in joined:
        return None
    if not joined.isascii():
        try:
            joined.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return {**data, "list_price": list_price, "unit_price": unit_price, "steps": copied_steps}


def _plain_money(value: Any, numbers: list[Any]) -> dict[str, Any] | None:
    """A copy of *value* when it is a plain ``{"amount", "currency"}`` of a known currency (the
    amount added to *numbers*, checked later); ``None`` otherwise."""
    if type(value) is not dict or value.keys() != _MONEY_KEYS:
        return None
    currency = value["currency"]
    if type(currency) is not str or currency not in CURRENCIES:
        return None
    numbers.append(value["amount"])
    return dict(value)
