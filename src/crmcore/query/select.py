"""Selects: set-based reads across the records of one entity type and those it references.

``uow.select("opportunity", fields=("id", "name", "account_id.name"))`` returns an immutable,
chainable :class:`Select`. A field is a field of the entity or a dotted path along reference
fields (``account_id.name``, ``contact_id.account_id.industry``); each path is read through a
``LEFT JOIN`` of the referenced table::

    rows = (
        uow.select("opportunity", fields=("name", "amount", "account_id.name"))
        .where(("account_id.industry", "=", "retail"), stage="won")
        .order_by("account_id.name", "-amount")
        .limit(20)
        .all()
    )                       # [{"name": ..., "amount": Money(...), "account_id.name": ...}, ...]
    uow.select("opportunity").group_by("account_id.name").aggregate(sum=["amount"])

Security, for every entity a select touches:

- the rows of the entity selected carry the actor's read predicate, as a query's do;
- a joined record carries the read predicate of its own entity in the join's ``ON``, so a
  referenced record the actor may not read behaves exactly as a missing one: its fields are
  empty (``None``) and conditions on them see empty values;
- fields hidden from the actor (the reference fields a path follows included) are refused with
  :class:`~crmcore.errors.PermissionDeniedError`, wherever they are named (fields, filters,
  sorts, groups, aggregates): the choice :meth:`crmcore.query.Query.aggregate` makes, so no
  read can tell a hidden value from an empty one;
- the system actor reads everything.

Conditions are those of :meth:`crmcore.query.Query.where` (the same compiler), with dotted
paths allowed wherever a field name is.

A plugin adds SQL of its own with :meth:`Select.extend`: a join to one of its own non-record
tables (a search index) and conditions and computed columns over that table and the fields of
the entity the actor sees, each expression checked before it runs (see :meth:`Select.extend`).
:meth:`Select.params` binds the values of the bound parameters such SQL names, so a select
built once runs many times. :meth:`Select.update` updates the matching records as
:meth:`~crmcore.storage.uow.UnitOfWork.update_where` does and gives their ids.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
import sqlalchemy as sa

from crmcore.errors import PluginError, ValidationError
from crmcore.fields import ORDERED, Field, FieldType, Reference
from crmcore.query.aggregate import Aggregates
from crmcore.query.base import (
    _SortKey,
    checked_limit,
    order_clauses,
    select_matching,
    sort_keys,
)
from crmcore.query.conditions import Conditions, _Target, resolve
from crmcore.storage import internal

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["Select"]


@attrs.frozen
class _Join:
    """A referenced table joined along a path: its entity, its alias, the join condition."""

    entity: EntityType
    alias: sa.FromClause
    on: sa.ColumnElement[bool]


#: The columns every record has besides its fields; :meth:`Select.extend` offers them too.
SYSTEM_COLUMNS = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")
#: Literal SQL an extension may hold: a quoted string or a number (nothing naming a column).
_LITERAL = re.compile(r"^(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?)$")


@attrs.frozen
class _Computed(FieldType):
    """The type of a column :meth:`Select.extend` computes: read as the database gives it."""

    kind: ClassVar[str] = "computed"
    operators: ClassVar[frozenset[str]] = ORDERED

    def parse(self, value: Any) -> Any:
        return value

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.Float()


_COMPUTED = _Computed()
#: The annotation of the subqueries :meth:`Select.count_per` makes, secured as they are built.
_SECURED = "crm_secured_select"


def _walk(element: Any) -> Iterable[Any]:
    """*element* and everything in it, except what is inside a :meth:`Select.count_per`."""
    todo = [element]
    while todo:
        current = todo.pop()
        yield current
        if not getattr(current, "_annotations", {}).get(_SECURED):
            todo.extend(current.get_children())


@attrs.frozen(repr=False)
class Select(Conditions, Aggregates):
    """An immutable set-based read; every method returns a new select or a result.

    Build it with :meth:`crmcore.storage.uow.UnitOfWork.select`; it runs in that unit of
    work's transaction, on behalf of its actor.
    """

    uow: UnitOfWork
    entity: EntityType
    table: sa.Table
    joins: dict[str, _Join] = attrs.field(factory=dict)  # by path; each select owns its copy
    targets: tuple[_Target, ...] = ()
    conditions: tuple[sa.ColumnElement[bool], ...] = ()
    sort: tuple[_SortKey, ...] = ()
    groups: tuple[str, ...] = ()
    max_rows: int | None = None
    own: tuple[tuple[sa.FromClause, sa.ColumnElement[bool]], ...] = ()  # joined own tables, ON
    computed: tuple[tuple[str, sa.ColumnElement[Any]], ...] = ()  # extend(columns=...)
    bound: tuple[tuple[str, Any], ...] = ()  # params()
    _built: dict[str, Any] = attrs.field(factory=dict, init=False, eq=False)  # statement(), once

    @classmethod
    def for_entity(cls, uow: UnitOfWork, entity: str, fields: Sequence[str] = ()) -> Select:
        """A select of *fields* (default: ``id`` and every field the actor may see) of the
        records of *entity* the actor may read.

        :raises NotFoundError: for an unknown entity type.
        :raises ValidationError: for an unknown field or path.
        :raises PermissionDeniedError: for a hidden field.
        """
        etype = uow.registry.entity(entity)
        select = cls(uow, etype, uow.registry.table(entity))
        if isinstance(fields, str):
            fields = (fields,)
        if not fields:
            hidden = uow.hidden_fields(entity)
            fields = ("id", *(f.name for f in etype.fields if f.name not in hidden))
        targets = [select._target(name, "select") for name in dict.fromkeys(fields)]
        return attrs.evolve(select, targets=tuple(targets))

    @property
    def source(self) -> sa.FromClause:
        """What the select reads from: the entity's table, ``LEFT JOIN`` ed to each
        referenced table its paths name."""
        source: sa.FromClause = self.table
        for table, on in self.own:
            source = source.join(table, on)
        for join in self.joins.values():
            source = source.outerjoin(join.alias, join.on)
        return source

    # -- building ------------------------------------------------------------------------------
    def where(self, *conditions: Any, **equals: Any) -> Select:
        """Narrow the select: every condition given here and before must hold.

        :param conditions: conditions as :meth:`crmcore.query.Query.where` takes them, whose
            field names may be dotted paths (``("account_id.name", "=", "Acme")``,
            ``"account_id.name^Ac"``).
        :param equals: ``field=value`` equality conditions on the entity's own fields.
        :raises ValidationError: for an unknown field or path, an operator the field does not
            support, or a value that does not fit the field.
        :raises PermissionDeniedError: for a field hidden from the actor.
        """
        select = self._copy()
        compiled = [select._compile(c, negate=False) for c in conditions]
        compiled += [select._leaf(name, "=", value, negate=False) for name, value in equals.items()]
        return attrs.evolve(select, conditions=(*self.conditions, *compiled))

    def order_by(self, *fields: str) -> Select:
        """Sort the rows of :meth:`all` by *fields* (``"-amount"``, ``"account_id.name"``),
        replacing any earlier order; ``id`` of the entity is always the last key. Empty
        values sort last ascending, first descending.

        :raises ValidationError: for an unknown field or one that cannot be sorted.
        """
        select = self._copy()
        return attrs.evolve(select, sort=sort_keys(select, fields))

    def group_by(self, *fields: str) -> Select:
        """Group the rows for :meth:`aggregate` by *fields* (dotted paths allowed), replacing
        any earlier grouping.

        :raises ValidationError: for an unknown field (checked when :meth:`aggregate` runs, as
            is a field that cannot be grouped by).
        """
        return attrs.evolve(self, groups=tuple(fields))

    def limit(self, n: int | None) -> Select:
        """Return at most *n* rows from :meth:`all` (``None`` for no limit).

        :raises ValidationError: for anything but a whole number from 0 to 2**63 - 1 or ``None``.
        """
        return attrs.evolve(self, max_rows=checked_limit(n, self.entity.name))

    def extend(
        self,
        plugin: str,
        *,
        join: tuple[sa.FromClause, str] | None = None,
        where: Callable[[Mapping[str, sa.ColumnElement[Any]]], sa.ColumnElement[bool]] | None = None,
        columns: Mapping[str, Callable[[Mapping[str, sa.ColumnElement[Any]]], sa.ColumnElement[Any]]] | None = None,
    ) -> Select:
        """Add SQL of *plugin* to the select: the way to a plugin's own index (a full-text
        table, a database function over the fields the actor sees) without leaving the road.

        Each builder is called with ``{name: column}`` of the entity's fields the actor sees
        and its system columns (``id``, ``version``, ``created_at``, ...) and returns a
        SQLAlchemy expression over those columns, the plugin's own tables, functions, bound
        parameters (:meth:`params`) and literal strings or numbers; anything else (another
        entity's or the core's table, a hidden field, SQL text naming a column) is refused.

        :param plugin: the enabled plugin whose SQL it is; its own tables are those
            ``uow.raw(plugin)`` accepts.
        :param join: ``(table, column)``: keep only the records with a row in the plugin's own
            *table* whose *column* is their id (an inner join).
        :param where: builds a condition every record must meet.
        :param columns: ``{name: builder}``: computed columns, read by :meth:`all` under their
            names, and usable by :meth:`order_by` (``"-search_rank"``) and :meth:`where`.
        :raises PluginError: for a plugin that is not enabled, or an expression or table that
            is not the plugin's own or the actor's.
        :raises ValidationError: for a computed column named like a field.
        """
        raw = self.uow.raw(plugin)
        select = self._copy()
        own = list(self.own)
        if join is not None:
            table, column = join
            raw.check(sa.select(table))
            own.append((table, table.c[column] == self.table.c.id))
        hidden = self.uow.hidden_fields(self.entity.name)
        visible = {name: self.table.c[name] for name in SYSTEM_COLUMNS}
        visible.update((f.name, self.table.c[f.column]) for f in self.entity.fields if f.name not in hidden)
        allowed = {id(column) for column in visible.values()}

        def checked(expression: Any, what: str) -> sa.ColumnElement[Any]:
            for element in _walk(expression):
                if isinstance(element, sa.TextClause) or (
                    isinstance(element, sa.ColumnClause) and element.is_literal and not _LITERAL.match(element.name)
                ):
                    raise PluginError(f"plugin {plugin!r}: {what} of a select of {self.entity.name} may hold literal "
                                      f"strings and numbers, not SQL text such as {str(element)[:60]!r}", plugin=plugin)
                table = getattr(element, "table", None)
                if isinstance(element, sa.ColumnClause) and table is not None and id(element) not in allowed:
                    if table is self.table:
                        raise PluginError(f"plugin {plugin!r}: {what} of a select of {self.entity.name} may not use "
                                          f"{element.name!r}, hidden from the actor", plugin=plugin)
                    raw.check(sa.select(table))  # the plugin's own table, or refused
            return expression  # type: ignore[no-any-return]

        conditions = list(self.conditions)
        if where is not None:
            conditions.append(checked(where(visible), "a condition"))
        computed = list(self.computed)
        for name, build in (columns or {}).items():
            if self.entity.has_field(name) or name in SYSTEM_COLUMNS:
                raise ValidationError({name: [f"a computed column cannot be named like a field of {self.entity.name}"]},
                                      entity=self.entity.name)
            computed.append((name, checked(build(visible), f"column {name!r}").label(f"x{len(computed)}")))
        return attrs.evolve(select, own=tuple(own), conditions=tuple(conditions), computed=tuple(computed))

    def count_per(self, field: str, outer: sa.ColumnElement[Any], *, distinct: str | None = None) -> Any:
        """A correlated scalar subquery counting the records this select matches whose *field*
        equals *outer*, a column a builder of :meth:`extend` gets (the tickets each article
        helped, say): ``COUNT(DISTINCT distinct)`` when *distinct* names a field. It carries
        this select's read predicates and conditions, so :meth:`extend` accepts it.

        :raises ValidationError: for an unknown field or path.
        :raises PermissionDeniedError: for a hidden field.
        """
        select = self._copy()
        key = select._target(field, "filter").column
        counted = sa.func.count() if distinct is None else sa.func.count(sa.distinct(select._target(distinct, "select").column))
        statement = select._select(counted).select_from(select.source).where(key == outer)
        return statement.scalar_subquery()._annotate({_SECURED: True})

    def params(self, **values: Any) -> Select:
        """The select with values for the bound parameters (``sa.bindparam("kb_match")``) its
        extensions name; the statement built once is kept, so a select made once per unit of
        work runs with new values at the cost of the query alone."""
        select = attrs.evolve(self, bound=tuple({**dict(self.bound), **values}.items()))
        object.__setattr__(select, "_built", self._built)
        return select

    def update(self, *, set: Mapping[str, Any]) -> list[int]:  # noqa: A002 - SQL's word
        """Update the matching records as :meth:`~crmcore.storage.uow.UnitOfWork.update_where`
        does (access checks, hooks, versions, audit, signals; all or nothing). With
        :meth:`limit`, only the first that many matches in the select's order are updated
        (``order_by("priority").limit(100).update(...)`` takes a batch off a queue).

        :returns: the ids of the records changed, in id order (those already holding the
            values left out).
        :raises PermissionDeniedError: as ``update_where``.
        """
        from crmcore.storage.writes_where import update_selected

        return update_selected(self.uow, self, set)

    def _written(self) -> sa.Select[Any]:
        """The full rows :meth:`update` changes: every match in id order, or with
        :meth:`limit` the first matches in the select's order (its sort, then id)."""
        statement = self._select(self.table).select_from(self.source)
        if self.max_rows is None:
            return statement.order_by(self.table.c.id)
        id_key = _SortKey(resolve(self.uow, self.entity, self.table, "id", "sort"), False)
        return statement.order_by(*order_clauses([*self.sort, id_key])).limit(self.max_rows)

    # -- running -------------------------------------------------------------------------------
    def statement(self) -> sa.Select[Any]:
        """The ``SELECT`` :meth:`all` runs (for inspection and ``EXPLAIN``)."""
        built = self._built.get("all")
        if built is not None:
            return built  # type: ignore[no-any-return]
        columns: list[Any] = []
        for i, target in enumerate(self.targets):
            columns.append(target.column.label(f"c{i}"))
            if target.currency is not None:
                columns.append(target.currency.label(f"c{i}_currency"))
        id_key = _SortKey(resolve(self.uow, self.entity, self.table, "id", "sort"), False)
        keys = [*self.sort, id_key]
        if self.max_rows is not None and self.computed:
            built = self._ranked_first(columns, keys)
        else:
            columns += [expression for _, expression in self.computed]  # labelled x0, x1, ... by extend
            built = self._select(*columns).select_from(self.source).order_by(*order_clauses(keys))
            built = built if self.max_rows is None else built.limit(self.max_rows)
        self._built["all"] = built
        return built

    def _ranked_first(self, columns: list[Any], keys: list[_SortKey]) -> sa.Select[Any]:
        """A limited select with computed columns, in two steps: the ids, sort values and
        own-table columns of the best rows first (a search index ranking its matches), then
        the fields and the other computed columns of those rows only."""
        own = {id(table) for table, _ in self.own}

        def needs_own(expression: Any) -> bool:
            return any(id(getattr(e, "table", None)) in own for e in _walk(expression))

        sorted_by = {id(key.target.column) for key in keys}
        first = [(name, e) for name, e in self.computed if id(e) in sorted_by or needs_own(e)]
        ranks = {id(e) for _, e in first}  # sort keys already among the selected columns
        later = [e for _, e in self.computed if id(e) not in ranks]
        picked = [self.table.c.id.label("k0")]
        names = []
        for i, key in enumerate(keys[:-1]):
            column = key.target.column
            if id(column) not in ranks:
                column = column.label(f"k{i + 1}")
                picked.append(column)
            names.append(column.name)
        best = (self._select(*picked, *(e for _, e in first)).select_from(self.source)
                .order_by(*order_clauses(keys)).limit(self.max_rows).subquery("best"))
        source: sa.FromClause = self.table.join(best, best.c.k0 == self.table.c.id)
        for join in self.joins.values():
            source = source.outerjoin(join.alias, join.on)
        order = [(best.c[name], k.descending) for name, k in zip(names, keys[:-1], strict=True)]
        clauses = [c.desc().nulls_first() if down else c.asc().nulls_last() for c, down in order]
        outputs = [best.c[e.name] for _, e in first]
        return sa.select(*columns, *outputs, *later).select_from(source).order_by(*clauses, best.c.k0)

    def all(self) -> list[dict[str, Any]]:
        """The selected fields of every matching record, in order: one dict per record, keyed
        by the names the select was given (``"account_id.name"`` included). Money fields read
        as :class:`~crmcore.money.Money`; fields of a missing or unreadable referenced record
        as ``None``.

        :raises ValidationError: when the select is grouped (use :meth:`aggregate`).
        """
        if self.groups:
            raise ValidationError(
                f"this select is grouped by {', '.join(self.groups)}; read it with aggregate(), or drop group_by()",
                entity=self.entity.name,
            )
        readers = [(t.name, t.field.type, f"c{i}") for i, t in enumerate(self.targets)]
        readers += [(name, _COMPUTED, f"x{i}") for i, (name, _) in enumerate(self.computed)]
        result = self._run(self.statement())
        position = {key: index for index, key in enumerate(result.keys())}
        # values read as the row holds them are taken by position, one C call per row; the
        # fields stored otherwise (money: amount and currency) are read from the row's mapping
        names = [name for name, _, _ in readers]
        plain = [type(kind).from_db is FieldType.from_db for _, kind, _ in readers]
        special = [(name, kind.from_db, label) for (name, kind, label), simple in zip(readers, plain, strict=True) if not simple]
        if len(readers) != len(set(names)) or not readers:
            return [{name: kind.from_db(row, label) for name, kind, label in readers} for row in result.mappings()]
        picks = [position[label] if simple else 0 for (_, _, label), simple in zip(readers, plain, strict=True)]
        pick = operator.itemgetter(*picks) if len(picks) > 1 else (lambda row: (row[picks[0]],))
        out = []
        append = out.append
        for row in result.fetchall():  # one fetch: a driver call per row costs on psycopg
            values = dict(zip(names, pick(row), strict=True))
            if special:
                mapping = row._mapping
                for name, from_db, label in special:
                    values[name] = from_db(mapping, label)  # in place: the order of the names stays
            append(values)
        return out

    def first(self) -> dict[str, Any] | None:
        """The first row :meth:`all` would give, or ``None``."""
        rows = self.limit(1).all()
        return rows[0] if rows else None

    def count(self) -> int:
        """The number of matching records (order, limit and grouping do not apply)."""
        statement = self._select(sa.func.count()).select_from(self.source)
        return int(self._run(statement).scalar_one())

    def exists(self) -> bool:
        """Whether any record matches (one row is read at most)."""
        statement = self._select(sa.literal(1)).select_from(self.source).limit(1)
        return self._run(statement).first() is not None

    # -- internals -----------------------------------------------------------------------------
    def _copy(self) -> Select:
        """This select with a copy of its joins, which resolving new paths may extend."""
        return attrs.evolve(self, joins=dict(self.joins))

    def _run(self, statement: Any) -> Any:
        return internal.execute(self.uow, statement, dict(self.bound) if self.bound else None)

    def _select(self, *columns: Any) -> sa.Select[Any]:
        return select_matching(self, *columns)

    def _aggregated(self, group_by: list[str]) -> tuple[Select, list[str]]:
        return self._copy(), [*self.groups, *group_by]

    def _target(self, name: str, purpose: str) -> _Target:
        """Resolve a field or a dotted path along references to its column, joining the
        referenced tables the path crosses (once per path prefix).

        :raises ValidationError: for an unknown field, or a path through a field that is not
            a reference.
        :raises PermissionDeniedError: for a hidden field, the reference fields crossed included.
        """
        for computed, expression in self.computed:
            if name == computed:
                return _Target(Field(name, _COMPUTED), expression)
        if name in SYSTEM_COLUMNS[1:]:  # never hidden
            return _Target(Field(name, _COMPUTED), self.table.c[name])
        if not isinstance(name, str) or "." not in name:
            return resolve(self.uow, self.entity, self.table, name, purpose)
        steps = name.split(".")
        etype: EntityType = self.entity
        source: sa.FromClause = self.table
        for depth, step in enumerate(steps[:-1]):
            reference = resolve(self.uow, etype, source, step, "join")
            ftype = reference.field.type
            if not isinstance(ftype, Reference):
                raise ValidationError(
                    {name: [f"{step!r} is not a reference field of {etype.name}, so the path cannot follow it; "
                            f"references of {etype.name}: {', '.join(f.name for f in etype.references) or 'none'}"]},
                    entity=self.entity.name,
                )
            path = ".".join(steps[: depth + 1])
            join = self.joins.get(path)
            if join is None:
                target = self.uow.registry.entity(ftype.entity)
                alias = self.uow.registry.table(target.name).alias(f"j{len(self.joins) + 1}")
                visible = self.uow.read_filter(target.name, alias)  # type: ignore[arg-type]
                join = self.joins[path] = _Join(target, alias, sa.and_(alias.c.id == reference.column, visible))
            etype, source = join.entity, join.alias
        return attrs.evolve(resolve(self.uow, etype, source, steps[-1], purpose), path=name)

    def __repr__(self) -> str:
        names = ",".join(t.name for t in self.targets)
        return f"<Select {self.entity.name} fields={names} conditions={len(self.conditions)} joins={len(self.joins)}>"
