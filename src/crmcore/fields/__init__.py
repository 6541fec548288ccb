"""Field types and field declarations: the one implementation of parsing and validation.

Every value that enters crmcore (Python call, CLI argument, imported cell, REST payload) is
turned into its canonical Python value by :meth:`FieldType.parse`. The marshmallow schemas of
:mod:`crmcore.schemas` delegate to it at the edges, and the bulk import calls it in a tight
loop, so both paths accept and reject exactly the same values with exactly the same messages.
A field type also knows its SQL columns, the filter operators it supports and how to write its
values to CSV and JSON.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import attrs
import sqlalchemy as sa

from crmcore.fields.base import (
    EQUALITY,
    ORDERED,
    TEXTUAL,
    FieldType,
    FieldValueError,
    _finite,
)
from crmcore.fields.json import Json
from crmcore.fields.text import Email, Phone, String, Text, Url
from crmcore.fields.time import Date, DateTime
from crmcore.money import CURRENCIES, Money
from crmcore.storage.types import JSONList, ScaledDecimal

__all__ = [
    "EQUALITY",
    "ORDERED",
    "TEXTUAL",
    "Boolean",
    "Choice",
    "Date",
    "DateTime",
    "Decimal",
    "Email",
    "Field",
    "FieldType",
    "FieldValueError",
    "Integer",
    "Json",
    "Money",
    "MoneyType",
    "MultiChoice",
    "Phone",
    "Reference",
    "String",
    "Text",
    "Url",
    "field_type_from_spec",
    "timezone_named",
]

REQUIRED_MESSAGE = "is required"

#: Names a field may not take, because records (:class:`crmcore.records.Record`) use them.
RESERVED_NAMES = frozenset({"entity", "values", "get", "to_dict"})


@attrs.frozen
class Integer(FieldType):
    """A whole number that fits a signed 64-bit column, within *minimum* and *maximum* if given."""

    minimum: int | None = None
    maximum: int | None = None
    kind: ClassVar[str] = "integer"
    operators: ClassVar[frozenset[str]] = ORDERED

    def parse(self, value: Any) -> int:
        number: int | None = None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                number = None
        elif isinstance(value, (float, decimal.Decimal)):
            if _finite(value) and value == int(value):
                number = int(value)
        if number is None or not _INT64_MIN <= number <= _INT64_MAX:
            raise self._fail(value)
        if (self.minimum is not None and number < self.minimum) or (self.maximum is not None and number > self.maximum):
            raise self._fail(value)
        return number

    def describe(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"a whole number from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"a whole number of at least {self.minimum}"
        if self.maximum is not None:
            return f"a whole number of at most {self.maximum}"
        return "a whole number"

    def declaration_problem(self) -> str | None:
        bounds = [b for b in (self.minimum, self.maximum) if b is not None]
        if any(isinstance(b, bool) or not isinstance(b, int) or not _INT64_MIN <= b <= _INT64_MAX for b in bounds):
            return f"minimum and maximum must be whole numbers of a 64-bit column, got {self.minimum!r} and {self.maximum!r}"
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            return f"minimum {self.minimum} is above maximum {self.maximum}"
        return None

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.BigInteger()


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


#: The most decimal places a decimal or money field may declare (values are scaled 64-bit integers).
MAX_SCALE = 12


def _scale_problem(scale: Any) -> str | None:
    if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= MAX_SCALE:
        return f"scale must be a whole number of decimal places from 0 to {MAX_SCALE}, got {scale!r}"
    return None


#: Per scale: its quantum, and the lowest and highest value a scaled BIGINT holds at it.
_SCALED = {scale: (decimal.Decimal(1).scaleb(-scale), decimal.Decimal(_INT64_MIN).scaleb(-scale),
                   decimal.Decimal(_INT64_MAX).scaleb(-scale)) for scale in range(MAX_SCALE + 1)}


def _parse_decimal(value: Any, scale: int) -> decimal.Decimal | None:
    if type(value) is decimal.Decimal and scale in _SCALED:  # the usual case, in fewer steps
        if not value.is_finite():
            return None
        quantum, lowest, highest = _SCALED[scale]
        try:
            quantized = value.quantize(quantum)
        except decimal.InvalidOperation:  # too many digits for the context
            return None
        if not lowest <= quantized <= highest:  # stored as a scaled BIGINT
            return None
        return quantized if quantized == value else None
    if isinstance(value, bool):
        return None
    if isinstance(value, decimal.Decimal):
        number = value
    elif isinstance(value, int):
        number = decimal.Decimal(value)
    elif isinstance(value, float):
        number = decimal.Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            return None
    else:
        return None
    if not number.is_finite():
        return None
    try:
        quantized = number.quantize(decimal.Decimal(1).scaleb(-scale))
    except decimal.InvalidOperation:  # too many digits for the context
        return None
    if not _INT64_MIN <= quantized.scaleb(scale) <= _INT64_MAX:  # stored as a scaled BIGINT
        return None
    # more decimal places than stored: only trailing zeros may go
    return quantized if quantized == number else None


@attrs.frozen
class Decimal(FieldType):
    """An exact decimal number with *scale* digits after the point (stored as scaled integer)."""

    scale: int = 2
    kind: ClassVar[str] = "decimal"
    operators: ClassVar[frozenset[str]] = ORDERED

    def parse(self, value: Any) -> decimal.Decimal:
        number = _parse_decimal(value, self.scale)
        if number is None:
            raise self._fail(value)
        return number

    def describe(self) -> str:
        return f"a decimal number with at most {self.scale} decimal places"

    def declaration_problem(self) -> str | None:
        return _scale_problem(self.scale)

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return ScaledDecimal(self.scale)

    def dump(self, value: Any) -> Any:
        return None if value is None else str(value)


_MONEY_TEXT = re.compile(r"^\s*(?:([A-Za-z]{3})\s*([-+]?[\d.]+)|([-+]?[\d.]+)\s*([A-Za-z]{3})?)\s*$")


@attrs.frozen
class MoneyType(FieldType):
    """An amount of money: an exact ``Decimal`` and an ISO 4217 currency.

    Stored in two columns, ``<column>`` (the amount, as a scaled integer so sums are exact on
    every database) and ``<column>_currency``. A bare number takes *currency*, which defaults to
    the deployment's currency.
    """

    currency: str | None = None
    scale: int = 2
    kind: ClassVar[str] = "money"
    operators: ClassVar[frozenset[str]] = ORDERED

    def parse(self, value: Any) -> Money:
        amount: Any
        currency: Any
        if isinstance(value, Money):
            amount, currency = value.amount, value.currency
        elif isinstance(value, Mapping):
            amount, currency = value.get("amount"), value.get("currency")
        elif isinstance(value, str):
            match = _MONEY_TEXT.match(value)
            if not match:
                raise self._fail(value)
            amount = match.group(2) or match.group(3)
            currency = match.group(1) or match.group(4)
        else:
            amount, currency = value, None
        number = _parse_decimal(amount, self.scale)
        if number is None:
            raise self._fail(value)
        currency = (currency or self.currency or "").upper()
        if currency not in CURRENCIES:
            raise FieldValueError(f"unknown currency {currency!r} in {value!r}; use an ISO 4217 code such as 'EUR'")
        return Money(number, currency)

    def describe(self) -> str:
        return f"an amount with at most {self.scale} decimal places and a currency, such as '1250.00 EUR'"

    def declaration_problem(self) -> str | None:
        return _scale_problem(self.scale)

    def columns(self, column: str) -> list[sa.Column[Any]]:
        return [
            sa.Column(column, ScaledDecimal(self.scale), nullable=True),
            sa.Column(f"{column}_currency", sa.String(3), nullable=True),
        ]

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return ScaledDecimal(self.scale)

    def to_db(self, value: Any, column: str) -> dict[str, Any]:
        if value is None:
            return {column: None, f"{column}_currency": None}
        return {column: value.amount, f"{column}_currency": value.currency}

    def from_db(self, row: Mapping[str, Any], column: str) -> Any:
        amount = row[column]
        if amount is None:
            return None
        return Money(amount, row[f"{column}_currency"])

    def dump(self, value: Any) -> Any:
        return None if value is None else {"amount": str(value.amount), "currency": value.currency}

    def format(self, value: Any) -> str:
        return "" if value is None else f"{value.amount} {value.currency}"

    def bind(self, *, currency: str, timezone: dt.tzinfo) -> FieldType:
        return self if self.currency else attrs.evolve(self, currency=currency)


_TRUE = frozenset({"true", "yes", "y", "1", "on", "t"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "f"})


@attrs.frozen
class Boolean(FieldType):
    """True or false; text accepts true/false, yes/no, 1/0."""

    kind: ClassVar[str] = "boolean"

    def parse(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        raise self._fail(value)

    def describe(self) -> str:
        return "true or false"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Boolean()

    def format(self, value: Any) -> str:
        return "" if value is None else ("true" if value else "false")


def _choices(values: tuple[Any, ...], what: str) -> tuple[str, ...]:
    """The choices of ``Choice("a", "b")`` or ``Choice(["a", "b"])``.

    :raises ValueError: when there is none, naming *what* declares them.
    """
    if len(values) == 1 and not isinstance(values[0], str):
        values = tuple(values[0])
    if not values:
        raise ValueError(f"{what} needs at least one choice")
    return tuple(values)


@attrs.frozen(init=False)
class Choice(FieldType):
    """One value out of a fixed list (matched case-insensitively, stored as declared)."""

    choices: tuple[str, ...]
    _lookup: dict[str, str] = attrs.field(eq=False, repr=False)
    kind: ClassVar[str] = "choice"
    operators: ClassVar[frozenset[str]] = TEXTUAL

    def __init__(self, *choices: str) -> None:
        choices = _choices(choices, "a choice field")
        self.__attrs_init__(choices, {c.lower(): c for c in choices})

    def parse(self, value: Any) -> str:
        if isinstance(value, str):
            found = self._lookup.get(value.strip().lower())
            if found is not None:
                return found
        raise self._fail(value)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(max(len(c) for c in self.choices))


@attrs.frozen(init=False)
class MultiChoice(FieldType):
    """Several values out of a fixed list; text separates them with ``;`` or ``,``."""

    choices: tuple[str, ...]
    _lookup: dict[str, str] = attrs.field(eq=False, repr=False)
    kind: ClassVar[str] = "multi_choice"
    operators: ClassVar[frozenset[str]] = frozenset({"contains", "is null", "is not null"})
    sortable: ClassVar[bool] = False

    def __init__(self, *choices: str) -> None:
        choices = _choices(choices, "a multi-choice field")
        self.__attrs_init__(choices, {c.lower(): c for c in choices})

    def parse(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            items: Iterable[Any] = [p for p in re.split(r"[;,]", value) if p.strip()]
        elif isinstance(value, (list, tuple, set, frozenset)):
            items = value
        else:
            raise self._fail(value)
        picked = set()
        for item in items:
            found = self._lookup.get(item.strip().lower()) if isinstance(item, str) else None
            if found is None:
                raise FieldValueError(f"expected values among {', '.join(map(repr, self.choices))}, got {item!r}")
            picked.add(found)
        return tuple(c for c in self.choices if c in picked)

    def describe(self) -> str:
        return "values among " + ", ".join(repr(c) for c in self.choices)

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return JSONList()

    def dump(self, value: Any) -> Any:
        return None if value is None else list(value)

    def format(self, value: Any) -> str:
        return "" if value is None else ";".join(value)


_ID_MAX = 2**31 - 1  # ids are INTEGER columns


@attrs.frozen
class Reference(FieldType):
    """The id of a record of *entity*.

    :param on_delete: what deleting the referenced record does: ``"restrict"`` (refuse, naming
        the referencing records), ``"cascade"`` (delete them too) or ``"set_null"``.
    """

    entity: str
    on_delete: str = attrs.field(default="restrict", validator=attrs.validators.in_(("restrict", "cascade", "set_null")))
    kind: ClassVar[str] = "reference"
    operators: ClassVar[frozenset[str]] = EQUALITY

    def parse(self, value: Any) -> int:
        if hasattr(value, "id") and getattr(value, "entity", None) == self.entity:
            return int(value.id)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _ID_MAX:
            return value
        if isinstance(value, str) and value.strip().isdigit() and 0 < int(value) <= _ID_MAX:
            return int(value)
        raise self._fail(value)

    def describe(self) -> str:
        article = "an" if self.entity[:1] in "aeiou" else "a"
        return f"the id of {article} {self.entity}"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Integer()


def check_snake_name(kind: str, name: str) -> None:
    """Refuse a *kind* name (``"field"``, ``"entity"``) that is not lower-case snake case.

    :raises ValueError: naming the kind and the name.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ValueError(f"{kind} name {name!r} must be lower-case snake case")


def _texts(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _default_label(name: str) -> str:
    base = name[:-3] if name.endswith("_id") else name
    return base.replace("_", " ").capitalize()


@attrs.frozen
class Field:
    """The declaration of one field of an entity type.

    :param name: the field's name (snake case; a reference ends in ``_id``).
    :param type: its :class:`FieldType`.
    :param label: the human label (import headers match it too); derived from the name.
    :param required: a value must be given on create (and may not be cleared).
    :param default: the value (or a zero-argument callable's result) used when none is given.
    :param read_only: only the system actor (workflow, jobs) may write it.
    :param unique: no two records may share a non-empty value.
    :param index: create an index for fast filters and sorts.
    :param help: one sentence for the reference docs.
    :param origin: who declared it: ``"core"``, a plugin's name, or ``"settings"``; filled in
        by the registry.
    :param column: the column name; filled in by the registry (``<plugin>_<name>`` for a field
        a plugin adds to another's entity, ``custom_<name>`` for a custom field).
    :param aliases: other column names that mean this field in the files of common CRMs and
        contact exports (``("E-mail Address", "Email Address")``); an import matches them like
        the label, ignoring case, spaces and punctuation.
    """

    name: str
    type: FieldType
    label: str = ""
    required: bool = False
    default: Any = None
    read_only: bool = False
    unique: bool = False
    index: bool = False
    help: str = ""
    origin: str = ""
    column: str = ""
    aliases: tuple[str, ...] = attrs.field(default=(), converter=_texts)

    def __attrs_post_init__(self) -> None:
        check_snake_name("field", self.name)
        if self.name in RESERVED_NAMES:
            raise ValueError(
                f"field name {self.name!r} is reserved (records use it: record.{self.name}); choose another name"
            )
        if not all(isinstance(a, str) and a.strip() for a in self.aliases):
            raise ValueError(f"the aliases of field {self.name!r} must be non-empty texts, got {self.aliases!r}")
        if not self.label:
            object.__setattr__(self, "label", _default_label(self.name))
        if not self.column:
            object.__setattr__(self, "column", self.name)

    def parse(self, value: Any) -> Any:
        """Parse *value*; empty text and ``None`` give ``None``.

        :raises FieldValueError: when the value does not fit the type.
        """
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return self.type.parse(value)

    def default_value(self) -> Any:
        default = self.default
        return default() if callable(default) else default

    @property
    def is_reference(self) -> bool:
        return isinstance(self.type, Reference)

    def __repr__(self) -> str:
        return f"<Field {self.name} {self.type.kind}>"


FIELD_TYPES: dict[str, Callable[..., FieldType]] = {
    "string": String,
    "text": Text,
    "integer": Integer,
    "decimal": Decimal,
    "money": MoneyType,
    "boolean": Boolean,
    "date": Date,
    "datetime": DateTime,
    "choice": Choice,
    "multi_choice": MultiChoice,
    "email": Email,
    "phone": Phone,
    "url": Url,
    "reference": Reference,
    "json": Json,
}

#: The keys a field declared in settings may use, with their expected Python types.
FIELD_SPEC_KEYS: dict[str, type | tuple[type, ...]] = {
    "type": str,
    "label": str,
    "required": bool,
    "default": (str, int, float, bool, list),
    "unique": bool,
    "index": bool,
    "read_only": bool,
    "help": str,
    "choices": list,
    "max_length": int,
    "scale": int,
    "currency": str,
    "entity": str,
    "on_delete": str,
    "aliases": list,
}


def field_type_from_spec(spec: Mapping[str, Any], *, where: str) -> FieldType:
    """Build a field type from a settings table such as ``{type = "choice", choices = [...]}``.

    :param where: the settings key, for messages.
    :raises ValueError: naming the key and value at fault.
    """
    kind = spec.get("type")
    if kind not in FIELD_TYPES:
        raise ValueError(
            f"{where}.type: unknown field type {kind!r}; use one of {', '.join(sorted(FIELD_TYPES))}"
        )
    args: dict[str, Any] = {}
    if kind in ("choice", "multi_choice"):
        choices = spec.get("choices")
        if not choices or not all(isinstance(c, str) for c in choices):
            raise ValueError(f"{where}.choices: a {kind} field needs a list of text choices, got {choices!r}")
        return FIELD_TYPES[kind](*choices)
    if kind == "reference":
        if not isinstance(spec.get("entity"), str):
            raise ValueError(f"{where}.entity: a reference field names the entity it points to")
        args["entity"] = spec["entity"]
        if "on_delete" in spec:
            args["on_delete"] = spec["on_delete"]
    for key in ("max_length", "scale", "currency"):
        if key in spec:
            args[key] = spec[key]
    try:
        return FIELD_TYPES[kind](**args)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def timezone_named(name: str) -> dt.tzinfo:
    """The ``tzinfo`` for an IANA name such as ``"Europe/Paris"``.

    :raises ValueError: for an unknown name.
    """
    if name.upper() == "UTC":
        return dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; use an IANA name such as 'Europe/Paris'") from None
