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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.errors import ValidationError
from crmcore.fields import Reference
from crmcore.query.aggregate import _Aggregate
from crmcore.query.base import _SortKey, base_where, checked_limit, order_clauses, sort_keys
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


@attrs.frozen(repr=False)
class Select(Conditions):
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

        :raises ValidationError: for anything but a whole number of at least 0 or ``None``.
        """
        return attrs.evolve(self, max_rows=checked_limit(n, self.entity.name))

    # -- running -------------------------------------------------------------------------------
    def statement(self) -> sa.Select[Any]:
        """The ``SELECT`` :meth:`all` runs (for inspection and ``EXPLAIN``)."""
        columns = []
        for i, target in enumerate(self.targets):
            columns.append(target.column.label(f"c{i}"))
            if target.currency is not None:
                columns.append(target.currency.label(f"c{i}_currency"))
        id_key = _SortKey(resolve(self.uow, self.entity, self.table, "id", "sort"), False)
        statement = self._select(*columns).select_from(self.source).order_by(*order_clauses([*self.sort, id_key]))
        return statement if self.max_rows is None else statement.limit(self.max_rows)

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
        readers = [(t.name, t.field.type.from_db, f"c{i}") for i, t in enumerate(self.targets)]
        rows: Iterable[Mapping[str, Any]] = internal.execute(self.uow, self.statement()).mappings()  # type: ignore[assignment]
        return [{name: read(row, label) for name, read, label in readers} for row in rows]

    def first(self) -> dict[str, Any] | None:
        """The first row :meth:`all` would give, or ``None``."""
        rows = self.limit(1).all()
        return rows[0] if rows else None

    def count(self) -> int:
        """The number of matching records (order, limit and grouping do not apply)."""
        statement = self._select(sa.func.count()).select_from(self.source)
        return int(internal.execute(self.uow, statement).scalar_one())

    def exists(self) -> bool:
        """Whether any record matches (one row is read at most)."""
        statement = self._select(sa.literal(1)).select_from(self.source).limit(1)
        return internal.execute(self.uow, statement).first() is not None

    def aggregate(
        self,
        *,
        count: bool = True,
        sum: Sequence[str] = (),  # noqa: A002 - the aggregate's name
        avg: Sequence[str] = (),
        min: Sequence[str] = (),  # noqa: A002
        max: Sequence[str] = (),  # noqa: A002
    ) -> list[dict[str, Any]]:
        """Counts, sums, averages, minimums and maximums of the matching records per group of
        :meth:`group_by`, exactly as :meth:`crmcore.query.Query.aggregate` computes them
        (money summed per currency, exact decimals), over fields and dotted paths.

        Each row is a dict: the group fields, ``<money field>_currency`` for each money field
        aggregated, ``count``, then ``sum_<field>``, ``avg_<field>``, ``min_<field>``,
        ``max_<field>`` (the field as named, ``sum_account_id.annual_revenue`` say). Rows
        are ordered by the group values (empty last); order and limit do not apply.

        :param count: include ``count``, the number of records in the group.
        :param sum: integer, decimal or money fields to add up.
        :param avg: integer, decimal or money fields to average.
        :param min: fields with an order to take the least of.
        :param max: the same, for the greatest.
        :raises ValidationError: for an unknown field or one that cannot be aggregated so.
        :raises PermissionDeniedError: for a field hidden from the actor.
        """
        spec = {"sum": list(sum), "avg": list(avg), "min": list(min), "max": list(max)}
        return _Aggregate(self._copy(), list(self.groups), count, spec).run()

    # -- internals -----------------------------------------------------------------------------
    def _copy(self) -> Select:
        """This select with a copy of its joins, which resolving new paths may extend."""
        return attrs.evolve(self, joins=dict(self.joins))

    def _select(self, *columns: Any) -> sa.Select[Any]:
        parts = [c for c in (base_where(self.uow, self.entity), *self.conditions) if not isinstance(c, sa.sql.elements.True_)]
        return sa.select(*columns).where(*parts) if parts else sa.select(*columns)

    def _target(self, name: str, purpose: str) -> _Target:
        """Resolve a field or a dotted path along references to its column, joining the
        referenced tables the path crosses (once per path prefix).

        :raises ValidationError: for an unknown field, or a path through a field that is not
            a reference.
        :raises PermissionDeniedError: for a hidden field, the reference fields crossed included.
        """
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
