"""Conditions: the filter language of queries and selects, compiled to SQLAlchemy Core.

:class:`Conditions` turns conditions (tuples, groups, text filters, keyword equality) into SQL
boolean expressions; the class using it resolves field names to columns with ``_target``, so a
:class:`~crmcore.query.Query` (one table) and a :class:`~crmcore.query.Select` (a table and the
records it joins along references) share one compiler and one set of semantics, described in
:mod:`crmcore.query`. :func:`resolve` is the one place a name becomes a column of one entity's
table, with the field access of the reading actor applied.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import sqlalchemy as sa

from crmcore.errors import PermissionDeniedError, ValidationError
from crmcore.fields import EQUALITY, Field, FieldType, FieldValueError, MoneyType, MultiChoice
from crmcore.fields.base import check_text, shown
from crmcore.money import CURRENCIES, Money

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["MAX_NESTING", "OPERATORS", "Conditions", "parse_where", "resolve"]

#: How deep condition groups (``{"all": [...]}``, ``{"any": [...]}``, ``{"not": ...}``) may nest.
MAX_NESTING = 32


#: Every operator a condition may use.
OPERATORS = (
    "=", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "startswith",
    "is null", "is not null", "between",
)
_NULL_OPERATORS = frozenset({"is null", "is not null"})
_TEXT_OPERATORS = frozenset({"contains", "startswith"})
_NEGATED = {"!=": "=", "not in": "in", "is not null": "is null"}
#: The pseudo field of an ownable entity's tags in conditions, and its operators.
TAGS = "tags"
_TAG_OPERATORS = ("=", "!=", "in", "not in", "is null", "is not null")


# -- the companion currency field of money fields ------------------------------------------------


@attrs.frozen
class _Currency(FieldType):
    """The currency code of a money field, filterable and groupable as ``<field>_currency``."""

    kind: ClassVar[str] = "currency"
    operators: ClassVar[frozenset[str]] = EQUALITY

    def parse(self, value: Any) -> str:
        if isinstance(value, str) and value.strip().upper() in CURRENCIES:
            return value.strip().upper()
        raise self._fail(value)

    def describe(self) -> str:
        return "an ISO 4217 currency code such as 'EUR'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(3)



@attrs.frozen
class _Target:
    """A field a query names, with the column that stores it.

    :ivar path: the name the caller used when it differs from the field's (a dotted path
        such as ``account_id.name`` in a select).
    """

    field: Field
    column: sa.ColumnElement[Any]
    currency: sa.ColumnElement[Any] | None = None  # money fields: the currency column
    path: str | None = None

    @property
    def name(self) -> str:
        return self.path or self.field.name

    @property
    def kind(self) -> str:
        return self.field.type.kind


def resolve(uow: UnitOfWork, etype: EntityType, table: sa.FromClause, name: str, purpose: str) -> _Target:
    """Resolve a field of *etype* named by a filter, sort, projection or aggregate (*purpose*)
    to its column in *table* (the entity's table or an alias of it).

    The one place a query or select turns a name into a column, so field-level access rules
    apply to every use of a field.

    :raises ValidationError: for an unknown field, listing the fields.
    :raises PermissionDeniedError: for a field hidden from the actor.
    """
    if isinstance(name, str):
        base = name[: -len("_currency")] if name.endswith("_currency") and not etype.has_field(name) else name
        if base in uow.hidden_fields(etype.name):
            raise PermissionDeniedError(
                f"{etype.name}.{base} is hidden from {uow.actor.username}; it cannot be used to {purpose}",
                field=base, reasons=[f"field access of {etype.name}.{base} is hidden"],
            )
    if isinstance(name, str) and etype.has_field(name):
        field = etype.field(name)
        column = table.c[field.column]
        if isinstance(field.type, MoneyType):
            return _Target(field, column, table.c[f"{field.column}_currency"])
        return _Target(field, column)
    if isinstance(name, str) and name.endswith("_currency") and etype.has_field(name[: -len("_currency")]):
        money = etype.field(name[: -len("_currency")])
        if isinstance(money.type, MoneyType):
            field = Field(name, _Currency(), label=f"{money.label} currency", origin=money.origin,
                          column=f"{money.column}_currency")
            return _Target(field, table.c[field.column])
    known = [f.name for f in etype.all_fields]
    known += [f"{f.name}_currency" for f in etype.all_fields if isinstance(f.type, MoneyType)]
    raise ValidationError(
        {name if isinstance(name, str) else shown(name): [f"unknown field; the fields of {etype.name} are: {', '.join(known)}"]},
        entity=etype.name,
    )


class Conditions:
    """The condition compiler, mixed into :class:`~crmcore.query.Query` and
    :class:`~crmcore.query.Select`: they provide ``entity`` (named in errors) and
    ``_target(name, purpose)``, which resolves a name to a :class:`_Target`."""

    __slots__ = ()
    entity: EntityType
    uow: UnitOfWork
    table: sa.Table

    if TYPE_CHECKING:  # provided by the class the compiler is mixed into

        def _target(self, name: str, purpose: str) -> _Target: ...

    def _compile(self, condition: Any, *, negate: bool, depth: int = 0) -> sa.ColumnElement[bool]:
        if isinstance(condition, str):
            return self._compile(parse_where(condition), negate=negate, depth=depth)
        if isinstance(condition, Mapping):
            if depth >= MAX_NESTING:
                raise ValidationError(
                    f"the condition groups nest more than {MAX_NESTING} levels deep; write them flatter "
                    "(one 'all' or 'any' list takes any number of conditions)", entity=self.entity.name,
                )
            if len(condition) != 1 or next(iter(condition)) not in ("all", "any", "not"):
                raise ValidationError(
                    f"a condition group is {{'all': [...]}}, {{'any': [...]}} or {{'not': condition}}, "
                    f"got {shown(condition)}", entity=self.entity.name,
                )
            kind, inner = next(iter(condition.items()))
            if kind == "not":
                return self._compile(inner, negate=not negate, depth=depth + 1)
            if isinstance(inner, (str, Mapping)) or not isinstance(inner, Iterable):
                raise ValidationError(f"{kind!r} takes a list of conditions, got {shown(inner)}", entity=self.entity.name)
            parts = [self._compile(c, negate=negate, depth=depth + 1) for c in inner]
            conjunction = (kind == "all") != negate  # De Morgan: not(all) is any(not)
            if conjunction:
                return sa.and_(sa.true(), *parts)
            return sa.or_(sa.false(), *parts)
        if isinstance(condition, Sequence) and condition and isinstance(condition[0], str):
            if len(condition) == 2 and isinstance(condition[1], str) and condition[1].lower() in _NULL_OPERATORS:
                return self._leaf(condition[0], condition[1], None, negate=negate)
            if len(condition) == 3 and isinstance(condition[1], str):
                return self._leaf(condition[0], condition[1], condition[2], negate=negate)
        raise ValidationError(
            f"cannot read condition {shown(condition)}; write (field, operator, value), (field, 'is null'), "
            "a group such as {'all': [...]}, or a text filter such as 'amount>50000'",
            entity=self.entity.name,
        )

    def _leaf(self, name: str, op: str, value: Any, *, negate: bool) -> sa.ColumnElement[bool]:
        if name == TAGS and self.entity.ownable and not self.entity.has_field(TAGS):
            return self._tags(op, value, negate=negate)
        target = self._target(name, "filter")
        op = " ".join(op.lower().split()) if isinstance(op, str) else op
        if op not in OPERATORS:
            raise ValidationError(
                {target.name: [f"unknown operator {shown(op)}; operators are: {', '.join(OPERATORS)}"]},
                entity=self.entity.name,
            )
        allowed = target.field.type.operators
        if op not in allowed:
            listed = ", ".join(o for o in OPERATORS if o in allowed)
            raise ValidationError(
                {target.name: [f"operator {op!r} does not apply to a {target.kind} field; use one of: {listed}"]},
                entity=self.entity.name,
            )
        if op in ("=", "!=") and _is_empty(value):
            op = "is null" if op == "=" else "is not null"
        if op in _NEGATED:
            op, negate = _NEGATED[op], not negate
        column = target.column
        if op == "is null":
            return column.is_not(None) if negate else column.is_(None)
        expression = self._expression(target, op, value)
        # *expression* is NULL exactly when the column is; a negated leaf matches empty values
        if negate:
            return sa.or_(sa.not_(expression), column.is_(None))
        return expression

    def _tags(self, op: str, value: Any, *, negate: bool) -> sa.ColumnElement[bool]:
        """The pseudo field ``tags`` of an ownable entity: ``("tags", "=", "vip")`` holds for
        the records carrying tag ``vip`` (shared, or the actor's own private one); ``in``
        takes several (any of them), ``!=`` and ``not in`` the others, ``is null`` the records
        without a tag the actor sees."""
        from crmcore.storage.tagging import tagged_condition

        op = " ".join(op.lower().split()) if isinstance(op, str) else op
        if op not in _TAG_OPERATORS:
            raise ValidationError(
                {TAGS: [f"operator {shown(op)} does not apply to tags; use one of: {', '.join(_TAG_OPERATORS)}"]},
                entity=self.entity.name,
            )
        if op in _NEGATED:
            op, negate = _NEGATED[op], not negate
        entity = self.entity.name
        if op == "is null":
            names: list[Any] | None = None
        elif op == "in":
            names = [str(item).strip() for item in (value.split(",") if isinstance(value, str) else value)] \
                if isinstance(value, (str, Sequence)) else [value]
        else:
            names = [value]
        if names is not None and (not names or any(not isinstance(n, str) or not n.strip() for n in names)):
            raise ValidationError({TAGS: [f"expected tag names, got {shown(value)}"]}, entity=entity)
        carried = tagged_condition(self.uow, entity, self.table, None if names is None else [n.strip() for n in names])
        if op == "is null":
            carried = sa.not_(carried)
        return sa.not_(carried) if negate else carried

    def _expression(self, target: _Target, op: str, value: Any) -> sa.ColumnElement[bool]:
        column = target.column
        if op in _TEXT_OPERATORS:
            if isinstance(target.field.type, MultiChoice):
                chosen = self._parse(target, op, value)
                text = sa.type_coerce(column, sa.Text())
                likes = [text.like(f"%{_like_escape(json.dumps(c))}%", escape="\\") for c in chosen]
                return sa.and_(*likes)
            fragment = _fragment(target, op, value, self.entity.name)
            pattern = _like_escape(fragment) + "%"
            if op == "contains":
                pattern = "%" + pattern
            return column.ilike(pattern, escape="\\")
        if op == "in":
            items = _items(target, value, self.entity.name)
            parsed = [self._parse(target, op, item) for item in items]
            if target.currency is not None and any(_names_currency(i) for i in items):
                return sa.or_(sa.false(), *(self._money(target, "=", p, True) for p in parsed))
            if isinstance(target.field.type, MoneyType):
                parsed = [p.amount for p in parsed]
            return column.in_(parsed)
        if op == "between":
            if isinstance(value, str) and ".." in value:
                value = value.split("..", 1)
            if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) or len(value) != 2:
                raise ValidationError(
                    {target.name: [f"'between' takes two values (low, high) or text 'low..high', got {shown(value)}"]},
                    entity=self.entity.name,
                )
            low, high = (self._parse(target, op, v) for v in value)
            if target.currency is not None:
                explicit = _names_currency(value[0]) or _names_currency(value[1])
                if explicit and low.currency != high.currency:
                    raise ValidationError(
                        {target.name: [f"'between' bounds are in different currencies: {low} and {high}"]},
                        entity=self.entity.name,
                    )
                expression = column.between(low.amount, high.amount)
                return sa.and_(expression, target.currency == low.currency) if explicit else expression
            return column.between(low, high)
        parsed = self._parse(target, op, value)
        if target.currency is not None:
            return self._money(target, op, parsed, _names_currency(value))
        return _compare(column, op, parsed)

    def _money(self, target: _Target, op: str, money: Money, explicit: bool) -> sa.ColumnElement[bool]:
        expression = _compare(target.column, op, money.amount)
        if explicit:
            assert target.currency is not None
            return sa.and_(expression, target.currency == money.currency)
        return expression

    def _parse(self, target: _Target, op: str, value: Any) -> Any:
        try:
            parsed = target.field.parse(value)
        except FieldValueError as exc:
            raise ValidationError(
                {target.name: [f"cannot filter with {op!r} on {shown(value)}: {exc}"]}, entity=self.entity.name
            ) from None
        if parsed is None:
            raise ValidationError(
                {target.name: [f"{op!r} needs a value; to find empty fields use 'is null'"]}, entity=self.entity.name
            )
        return parsed


# -- helpers ----------------------------------------------------------------------------------


def _nullable(column: sa.ColumnElement[Any]) -> bool:
    return bool(getattr(column, "nullable", True)) and not getattr(column, "primary_key", False)


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _compare(column: sa.ColumnElement[Any], op: str, value: Any) -> sa.ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    return column >= value  # ">="


def _names_currency(value: Any) -> bool:
    """Whether a money filter value states its currency (then the currency must match too)."""
    if isinstance(value, Money):
        return True
    if isinstance(value, Mapping):
        return bool(value.get("currency"))
    return isinstance(value, str) and re.search(r"[A-Za-z]", value) is not None


def _items(target: _Target, value: Any, entity: str) -> list[Any]:
    if isinstance(value, str):
        return [v for v in value.split(",") if v.strip()]
    if isinstance(value, Mapping) or not isinstance(value, Iterable):
        raise ValidationError(
            {target.name: [f"'in' takes a list of values or text 'a,b,c', got {shown(value)}"]}, entity=entity
        )
    return list(value)


def _fragment(target: _Target, op: str, value: Any, entity: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError({target.name: [f"{op!r} needs some text, got {shown(value)}"]}, entity=entity)
    try:
        return check_text(value).strip()
    except FieldValueError as exc:
        raise ValidationError({target.name: [f"cannot filter with {op!r}: {exc}"]}, entity=entity) from None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")



# -- the text filter syntax ---------------------------------------------------------------------

_FIELD = r"(?P<field>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"  # dotted: a select's path
_SYMBOLIC = re.compile(rf"^\s*{_FIELD}\s*(?P<op>>=|<=|!=|=|>|<|~|\^)(?P<value>.*)$", re.DOTALL)
_WORDS = re.compile(
    rf"^\s*{_FIELD}\s+(?P<op>is\s+not\s+null|is\s+null|not\s+in|in|between|contains|startswith)\b(?P<value>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_SYMBOLS = {"~": "contains", "^": "startswith"}


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_where(text: str) -> tuple[Any, ...]:
    """Read one text filter into a condition for :meth:`Query.where`.

    Grammar (spaces around operators are optional; keywords are case-insensitive)::

        filter   = field op value
                 | field "in" list | field "not in" list
                 | field "between" value ".." value
                 | field "is null" | field "is not null"
        op       = "=" | "!=" | "<" | "<=" | ">" | ">=" | "~" (contains) | "^" (startswith)
                 | "contains" | "startswith"
        list     = value { "," value }, optionally in parentheses or brackets
        field    = a field name such as amount, stage, custom_region, amount_currency;
                   in a select, a dotted path such as account_id.name
        value    = the rest of the text, trimmed; quote it ('...' or "...") to keep
                   surrounding spaces

    Examples: ``amount>50000``, ``amount >= 50000 EUR``, ``stage=rfp_received``,
    ``stage!=won``, ``email~acme.test``, ``name^Ac``, ``close_date>=2026-01-01``,
    ``stage in won,lost``, ``owner_id is null``, ``amount between 10..20``.

    The result is ``(field, operator, value)`` (``(field, operator)`` for the null tests; a
    list for ``in``; a ``(low, high)`` pair for ``between``), values still text: the query
    parses them with the field's type and reports unknown fields.

    :raises ValidationError: for text that does not follow the grammar, saying what is wrong.
    """
    if not isinstance(text, str):
        raise ValidationError(f"a text filter is a string such as 'amount>50000', got {shown(text)}")
    match = _WORDS.match(text) or _SYMBOLIC.match(text)
    if match is None:
        raise ValidationError(
            f"cannot read filter {shown(text)}: expected FIELD OPERATOR VALUE such as 'amount>50000', "
            "'stage=won', 'email~acme.test', 'stage in won,lost', 'owner_id is null' or "
            "'amount between 10..20'; operators: = != < <= > >= ~ ^ in, not in, between, "
            "contains, startswith, is null, is not null"
        )
    field = match.group("field")
    op = " ".join(match.group("op").lower().split())
    op = _SYMBOLS.get(op, op)
    rest = match.group("value")
    if op in _NULL_OPERATORS:
        if rest.strip():
            raise ValidationError(f"cannot read filter {shown(text)}: nothing may follow {op!r}, got {rest.strip()!r}")
        return (field, op)
    if op in ("in", "not in"):
        inner = rest.strip()
        if len(inner) >= 2 and (inner[0], inner[-1]) in (("(", ")"), ("[", "]")):
            rest = inner[1:-1]
        items = [_unquote(part) for part in rest.split(",")]
        if not rest.strip() or any(not item for item in items):
            raise ValidationError(f"cannot read filter {shown(text)}: {op!r} takes values separated by commas, such as 'won,lost'")
        return (field, op, items)
    if op == "between":
        low, sep, high = rest.partition("..")
        if not sep or not low.strip() or not high.strip():
            raise ValidationError(f"cannot read filter {shown(text)}: 'between' takes LOW..HIGH, such as 'amount between 10..20'")
        return (field, op, (_unquote(low), _unquote(high)))
    value = _unquote(rest)
    if not value and op not in ("=", "!="):
        raise ValidationError(f"cannot read filter {shown(text)}: {op!r} needs a value after it")
    if not rest.strip() and op in ("=", "!="):
        hint = "is null" if op == "=" else "is not null"
        raise ValidationError(f"cannot read filter {shown(text)}: no value after {op!r}; to test for empty values write '{field} {hint}'")
    return (field, op, value)
