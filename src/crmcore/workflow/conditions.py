"""Conditions: the small declarative language of guards and rules, and its safe interpreter.

A condition is data, never code. It is written either as nested lists and tables::

    {"all": [["stage", "=", "rfp_received"], ["amount", ">", 50000]]}
    {"any": [...]}   {"not": [...]}   ["owner.team_id", "in", [1, 2]]

or as a short expression::

    stage = 'rfp_received' and amount > 50000
    not (stage in ('won', 'lost')) and close_date - today <= 30
    amount * probability / 100 >= 10000 or account.industry = 'Banking'
    description is null     email contains 'acme'

Names are fields of the record, ``<reference>.<field>`` for a field of a referenced record
(``owner.username``, ``account.industry``: the reference field without ``_id``), and ``today``
and ``now``. Arithmetic works on numbers, on money amounts (a bare number compares with an
amount), and on dates (``date - date`` is a number of days, ``date + 3`` is three days later).

A value from elsewhere (a plugin's setting) is bound, never formatted into the text: the text
names a parameter, ``now - resolved_at <= :days``, and ``parse(..., params={"days": 7})`` gives
its value. Conditions nest at most :data:`MAX_NESTING` levels (``and``/``or`` chains and
all/any lists do not nest) and their numbers have at most 38 digits and are finite; date
arithmetic past year 9999 stays comparable (:mod:`crmcore.workflow.operations`).

:func:`parse` turns either form into a tree; :meth:`Condition.check` type-checks it against an
entity type of the registry when the app starts (an unknown field stops start-up naming it);
:meth:`Condition.evaluate` runs it against one record with a tiny interpreter that knows only
the operations above. Nothing is ever handed to ``eval``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.fields import (
    Boolean,
    Date,
    DateTime,
    Decimal,
    Integer,
    MoneyType,
    MultiChoice,
    Reference,
)
from crmcore.money import Money
from crmcore.workflow.condition_tree import (
    Arithmetic,
    Compare,
    ListOf,
    Literal,
    Logical,
    Name,
    Negation,
    Negative,
    Node,
)
from crmcore.workflow.operations import (
    MAX_DIGITS,
    MAX_NESTING,
    ConditionError,
    _arith,
    _compare,
    _negate,
    _Unknown,
    check_number,
)

if TYPE_CHECKING:
    from crmcore.registry import EntityType, Registry

__all__ = ["MAX_NESTING", "Condition", "ConditionError", "Evaluation", "parse"]

COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
OPERATORS = (*COMPARISONS, "in", "not in", "contains", "is null", "is not null")


# -- parsing the data form -----------------------------------------------------------------------


def _from_data(spec: Any, where: str, depth: int = 0, params: Mapping[str, Any] | None = None) -> Node:
    if depth > MAX_NESTING:
        raise _too_deep(where)
    if isinstance(spec, Mapping):
        if len(spec) != 1:
            raise ConditionError(f"{where}: a condition table has one key, all, any or not; got {sorted(spec)}")
        key, value = next(iter(spec.items()))
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise ConditionError(f"{where}: {key} takes a non-empty list of conditions, got {_excerpt(value)}")
            return Logical("and" if key == "all" else "or",
                           tuple(_from_data(v, f"{where}.{key}[{i}]", depth + 1, params) for i, v in enumerate(value)))
        if key == "not":
            return Negation(_from_data(value, f"{where}.not", depth + 1, params))
        raise ConditionError(f"{where}: unknown key {key!r}; use all, any or not")
    if isinstance(spec, str):
        return _Parser(spec, where, depth, params).parse()
    if isinstance(spec, (list, tuple)):
        if len(spec) == 2 and spec[1] in ("is null", "is not null"):
            return Compare(spec[1], _operand(spec[0], where))
        if len(spec) != 3:
            raise ConditionError(f"{where}: a comparison is [name, operator, value], got {_excerpt(spec)}")
        left, op, right = spec
        if op == "==":
            op = "="
        if op not in OPERATORS:
            raise ConditionError(f"{where}: unknown operator {_excerpt(op)}; use one of {', '.join(OPERATORS)}")
        if op in ("is null", "is not null"):
            return Compare(op, _operand(left, where))
        if op in ("in", "not in"):
            if not isinstance(right, (list, tuple)):
                raise ConditionError(f"{where}: {op} takes a list, got {_excerpt(right)}")
            return Compare(op, _operand(left, where), ListOf(tuple(_literal(v, where) for v in right)))
        return Compare(op, _operand(left, where), _literal(right, where))
    raise ConditionError(f"{where}: expected a condition (a list, a table or an expression), got {_excerpt(spec)}")


def _literal(value: Any, where: str) -> Literal:
    items = value if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if isinstance(item, (list, tuple, Mapping)):
            raise ConditionError(f"{where}: expected a value or a list of values to compare with, got {_excerpt(value)}")
        check_number(item, where)
    return Literal(value)


def _too_deep(where: str) -> ConditionError:
    if len(where) > 120:
        where = f"{where[:100]}..."
    return ConditionError(f"{where}: the condition nests more than {MAX_NESTING} levels deep; "
                          "write it flatter (all/any lists and 'and'/'or' chains do not nest)")


def _excerpt(value: Any) -> str:
    """``repr(value)``, cut short for a message."""
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:160]}... ({len(text)} characters)"


def _operand(value: Any, where: str) -> Node:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*", value):
        raise ConditionError(f"{where}: expected a field name such as 'amount' or 'owner.team_id', got {_excerpt(value)}")
    return Name(tuple(value.split(".")))


# -- parsing the text form -----------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<string>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")|(?P<param>:[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)|(?P<op><=|>=|!=|==|[=<>+\-*/(),]))"
)
_KEYWORDS = {"and", "or", "not", "in", "is", "null", "true", "false", "contains"}
_END = re.compile(r"\s*\Z")


class _Parser:
    def __init__(self, text: str, where: str, depth: int = 0, params: Mapping[str, Any] | None = None) -> None:
        self.text = text
        self.where = where
        self.params = params or {}
        self.tokens: list[tuple[str, str, int]] = []
        self.depth = depth  # how deep the tree is at the token being parsed
        position, end, token = 0, len(text), _TOKEN.match
        while position < end:
            match = token(text, position)
            if match is None or match.end() == position:
                if _END.match(text, position):
                    break
                raise self._error(f"unexpected character {text[position:].strip()[0]!r}", position)
            kind = match.lastgroup or ""
            value, start = match.group(kind), match.start(kind)
            if kind == "name" and value.lower() in _KEYWORDS:
                kind, value = "keyword", value.lower()
            self.tokens.append((kind, value, start))
            position = match.end()
        self.index = 0

    def _error(self, message: str, position: int | None = None) -> ConditionError:
        at = f" at column {position + 1}" if position is not None else ""
        return ConditionError(f"{self.where}: {message}{at} in {_excerpt(self.text)}")

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _too_deep(self.where)

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def accept(self, kind: str, value: str | None = None) -> bool:
        token = self.peek()
        if token and token[0] == kind and (value is None or token[1] == value):
            self.index += 1
            return True
        return False

    def expect(self, kind: str, value: str) -> None:
        if not self.accept(kind, value):
            token = self.peek()
            raise self._error(f"expected {value!r}, got {token[1]!r}" if token else f"expected {value!r} at the end", token[2] if token else None)

    def parse(self) -> Node:
        if not self.tokens:
            raise self._error("empty condition")
        node = self.parse_or()
        token = self.peek()
        if token is not None:
            raise self._error(f"unexpected {token[1]!r}", token[2])
        return node

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.accept("keyword", "or"):
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else Logical("or", tuple(parts))

    def parse_and(self) -> Node:
        parts = [self.parse_not()]
        while self.accept("keyword", "and"):
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else Logical("and", tuple(parts))

    def parse_not(self) -> Node:
        if self.accept("keyword", "not"):
            self._deeper()
            node = Negation(self.parse_not())
            self.depth -= 1
            return node
        return self.parse_comparison()

    def parse_comparison(self) -> Node:
        left = self.parse_sum()
        token = self.peek()
        if token is None:
            return left
        kind, value, _ = token
        if kind == "op" and value in ("=", "==", "!=", "<", "<=", ">", ">="):
            self.index += 1
            return Compare("=" if value == "==" else value, left, self.parse_sum())
        if kind == "keyword" and value == "is":
            self.index += 1
            negated = self.accept("keyword", "not")
            self.expect("keyword", "null")
            return Compare("is not null" if negated else "is null", left)
        if kind == "keyword" and value == "contains":
            self.index += 1
            return Compare("contains", left, self.parse_sum())
        if kind == "keyword" and value in ("in", "not"):
            if value == "not":
                following = self.tokens[self.index + 1] if self.index + 1 < len(self.tokens) else None
                if not following or following[1] != "in":
                    return left
                self.index += 1
            self.index += 1
            self.expect("op", "(")
            items = [self.parse_sum()]
            while self.accept("op", ","):
                items.append(self.parse_sum())
            self.expect("op", ")")
            return Compare("not in" if value == "not" else "in", left, ListOf(tuple(items)))
        return left

    def parse_sum(self) -> Node:
        return self._chain("+-", self.parse_term)

    def parse_term(self) -> Node:
        return self._chain("*/", self.parse_unary)

    def _chain(self, ops: str, operand: Callable[[], Node]) -> Node:
        """``a + b - c``: each operator nests the tree one level deeper (to the left)."""
        node, start = operand(), self.depth
        while True:
            token = self.peek()
            if token and token[0] == "op" and token[1] in ops:
                self.index += 1
                self._deeper()
                node = Arithmetic(token[1], node, operand())
            else:
                self.depth = start
                return node

    def parse_unary(self) -> Node:
        if self.accept("op", "-"):
            self._deeper()
            node = Negative(self.parse_unary())
            self.depth -= 1
            return node
        return self.parse_atom()

    def bound(self, name: str, position: int) -> Literal:
        """The value given for the parameter ``:name`` (never text put into the condition)."""
        if name not in self.params:
            raise self._error(f"no value given for parameter :{name}; given: {', '.join(sorted(self.params)) or 'none'}", position)
        value = self.params[name]
        if isinstance(value, float):
            check_number(value, f"{self.where} parameter :{name}")
            value = decimal.Decimal(repr(value))
        if not isinstance(value, (str, int, decimal.Decimal, dt.date, Money)) and value is not None:
            raise self._error(f"parameter :{name} must be text, a number, a date or an amount, got {_excerpt(value)}", position)
        check_number(value, f"{self.where} parameter :{name}")
        return Literal(value)

    def parse_atom(self) -> Node:
        token = self.peek()
        if token is None:
            raise self._error("the condition ends too early")
        kind, value, position = token
        self.index += 1
        if kind == "number":
            if len(value) > 2 * MAX_DIGITS + 1:
                check_number(decimal.Decimal(value), self.where)  # refuses it, naming the number
            number = decimal.Decimal(value) if "." in value else int(value)
            check_number(number, self.where)
            return Literal(number)
        if kind == "string":
            return Literal(re.sub(r"\\(.)", r"\1", value[1:-1]))
        if kind == "param":
            return self.bound(value[1:], position)
        if kind == "keyword" and value in ("true", "false"):
            return Literal(value == "true")
        if kind == "keyword" and value == "null":
            return Literal(None)
        if kind == "name":
            return Name(tuple(value.split(".")))
        if kind == "op" and value == "(":
            self._deeper()
            node = self.parse_or()
            self.expect("op", ")")
            self.depth -= 1
            return node
        raise self._error(f"unexpected {value!r}", position)


# -- types ---------------------------------------------------------------------------------------

NUMBER, MONEY, TEXT, BOOL, DATE, DATETIME, LIST, ANY, NULL = (
    "number", "money", "text", "boolean", "date", "datetime", "list", "any", "null",
)


def _kind_of_field(field: Any) -> str:
    ftype = field.type
    if isinstance(ftype, (Integer, Decimal, Reference)):
        return NUMBER
    if isinstance(ftype, MoneyType):
        return MONEY
    if isinstance(ftype, Boolean):
        return BOOL
    if isinstance(ftype, DateTime):
        return DATETIME
    if isinstance(ftype, Date):
        return DATE
    if isinstance(ftype, MultiChoice):
        return LIST
    if ftype.kind == "json":
        return ANY
    return TEXT


def _kind_of_value(value: Any) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, (int, decimal.Decimal, float)):
        return NUMBER
    if isinstance(value, Money):
        return MONEY
    if isinstance(value, dt.datetime):
        return DATETIME
    if isinstance(value, dt.date):
        return DATE
    if isinstance(value, (list, tuple)):
        return LIST
    return TEXT


_NUMERIC = {NUMBER, MONEY}
_COMPATIBLE = [
    _NUMERIC, {TEXT}, {BOOL}, {DATE, DATETIME}, {LIST, TEXT},
]


def _comparable(a: str, b: str) -> bool:
    if ANY in (a, b) or NULL in (a, b):
        return True
    return any(a in group and b in group for group in _COMPATIBLE)


# -- evaluation ----------------------------------------------------------------------------------


@attrs.define
class Evaluation:
    """One evaluation's result and the values it looked at (for messages)."""

    result: bool
    seen: dict[str, Any]

    def describe(self) -> str:
        if not self.seen:
            return "no field values"
        return ", ".join(f"{name} = {_show(value)}" for name, value in self.seen.items())


def _show(value: Any) -> str:
    if isinstance(value, Money):
        return f"{value.amount} {value.currency}"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return repr(value)


Lookup = Callable[[tuple[str, ...]], Any]


@attrs.frozen
class Condition:
    """A parsed condition. Build it with :func:`parse`."""

    root: Node
    source: Any = attrs.field(eq=False)

    def __str__(self) -> str:
        return str(self.root)

    @property
    def names(self) -> list[str]:
        """Every name the condition reads, in order, without repeats."""
        return list(dict.fromkeys(self.root.names()))

    def check(self, registry: Registry, entity: EntityType, *, where: str) -> None:
        """Type-check against *entity*: every name resolves to a field, operands fit.

        :raises ConditionError: naming *where*, the name or the operation at fault.
        """
        _Checker(registry, entity, where).truthy(self.root)

    def evaluate(self, lookup: Lookup | Mapping[str, Any]) -> Evaluation:
        """Run the condition. *lookup* gives the value of a name (a path tuple), or is a
        mapping of record values (then only plain names resolve)."""
        if isinstance(lookup, Mapping):
            values = lookup

            def lookup(path: tuple[str, ...]) -> Any:
                return values.get(".".join(path))

        seen: dict[str, Any] = {}
        result = bool(_Interpreter(lookup, seen).truth(self.root))
        return Evaluation(result, seen)


def parse(spec: Any, *, where: str = "condition", params: Mapping[str, Any] | None = None) -> Condition:
    """Parse a condition from its data or text form.

    :param params: values of the parameters the text names as ``:name``
        (``parse("now - resolved_at <= :days", params={"days": 7})``): a setting reaches a
        condition as a bound value this way, never formatted into its text.
    :raises ConditionError: naming *where* and what is wrong, for malformed input.
    """
    if isinstance(spec, Condition):
        return spec
    return Condition(_from_data(spec, where, 0, params), spec)



class _Checker:
    def __init__(self, registry: Registry, entity: EntityType, where: str) -> None:
        self.registry = registry
        self.entity = entity
        self.where = where

    def fail(self, message: str) -> ConditionError:
        return ConditionError(f"{self.where}: {message}")

    def name_kind(self, path: tuple[str, ...]) -> str:
        if path in (("today",),):
            return DATE
        if path == ("now",):
            return DATETIME
        entity = self.entity
        for index, part in enumerate(path):
            last = index == len(path) - 1
            if last:
                if not entity.has_field(part):
                    raise self.fail(f"unknown field {'.'.join(path)!r}: {entity.name} has no field {part!r}; "
                                    f"its fields are {', '.join(f.name for f in entity.all_fields)}")
                return _kind_of_field(entity.field(part))
            reference = f"{part}_id" if entity.has_field(f"{part}_id") else part
            if not entity.has_field(reference) or not isinstance(entity.field(reference).type, Reference):
                raise self.fail(f"unknown reference {part!r} in {'.'.join(path)!r}: {entity.name} has no reference field {part}_id")
            entity = self.registry.entity(entity.field(reference).type.entity)  # type: ignore[attr-defined]
        return ANY

    def kind(self, node: Node) -> str:
        if isinstance(node, Literal):
            return _kind_of_value(node.value)
        if isinstance(node, Name):
            return self.name_kind(node.path)
        if isinstance(node, ListOf):
            for item in node.items:
                self.kind(item)
            return LIST
        if isinstance(node, Negative):
            kind = self.kind(node.operand)
            if kind not in (*_NUMERIC, ANY):
                raise self.fail(f"cannot negate {node.operand} ({kind})")
            return kind
        if isinstance(node, Arithmetic):
            left, right = self.kind(node.left), self.kind(node.right)
            if ANY in (left, right):
                return ANY
            if left in (DATE, DATETIME) and right in (DATE, DATETIME) and node.op == "-":
                return NUMBER
            if left in (DATE, DATETIME) and right == NUMBER and node.op in "+-":
                return left
            if left in _NUMERIC and right in _NUMERIC:
                return NUMBER
            raise self.fail(f"cannot compute {node}: {left} {node.op} {right}")
        if isinstance(node, Compare):
            left = self.kind(node.left)
            if node.right is None:
                return BOOL
            right = self.kind(node.right)
            if node.op in ("in", "not in"):
                assert isinstance(node.right, ListOf)
                for item in node.right.items:
                    if not _comparable(left, self.kind(item)):
                        raise self.fail(f"cannot compare {node.left} ({left}) with {item} ({self.kind(item)})")
                return BOOL
            if node.op == "contains":
                if left not in (TEXT, LIST, ANY):
                    raise self.fail(f"contains needs text or a list, but {node.left} is {left}")
                return BOOL
            if not _comparable(left, right):
                raise self.fail(f"cannot compare {node.left} ({left}) with {node.right} ({right})")
            return BOOL
        if isinstance(node, Logical):
            for part in node.parts:
                self.truthy(part)
            return BOOL
        if isinstance(node, Negation):
            self.truthy(node.operand)
            return BOOL
        raise self.fail(f"unsupported part {node!r}")

    def truthy(self, node: Node) -> None:
        kind = self.kind(node)
        if kind not in (BOOL, ANY):
            raise self.fail(f"{node} is {kind}, not a condition; compare it, e.g. '{node} = ...'")


class _Interpreter:
    def __init__(self, lookup: Lookup, seen: dict[str, Any]) -> None:
        self.lookup = lookup
        self.seen = seen

    def value(self, node: Node) -> Any:
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Name):
            if node.path == ("today",):
                value: Any = dt.date.today()
            elif node.path == ("now",):
                value = dt.datetime.now(dt.UTC)
            else:
                value = self.lookup(node.path)
            self.seen[".".join(node.path)] = value
            return value
        if isinstance(node, ListOf):
            return [self.value(item) for item in node.items]
        if isinstance(node, Negative):
            return _negate(self.value(node.operand))
        if isinstance(node, Arithmetic):
            return _arith(node.op, self.value(node.left), self.value(node.right))
        return self.truth(node)

    def truth(self, node: Node) -> bool:
        if isinstance(node, Logical):
            if node.op == "and":
                return all(self.truth(part) for part in node.parts)
            return any(self.truth(part) for part in node.parts)
        if isinstance(node, Negation):
            return not self.truth(node.operand)
        if isinstance(node, Compare):
            try:
                left = self.value(node.left)
                right = self.value(node.right) if node.right is not None else None
            except _Unknown:
                return False
            return _compare(node.op, left, right)
        try:
            return bool(self.value(node))
        except _Unknown:
            return False


def condition_list(specs: Sequence[Any], *, where: str) -> list[Condition]:
    """Parse a list of conditions (guards), naming each one's position on error."""
    return [parse(spec, where=f"{where}[{index}]") for index, spec in enumerate(specs)]
