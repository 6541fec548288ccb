"""Statements compiled once per unit of work and run straight on the driver's cursor: the
UPDATE a move repeats for every record, the read of one row by its key that every single write
makes. SQLAlchemy compiles them and supplies each type's bind and result processors; the driver
runs them without SQLAlchemy's per-call work."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from crmcore.storage.uow_driver import UnitState

__all__: list[str] = []


class _Prepared:
    """A statement compiled for one dialect, run on the driver's cursor with its parameters
    passed through the bind processors of their types (as SQLAlchemy would pass them); driver
    errors come out as SQLAlchemy's exceptions."""

    __slots__ = ("columns", "defaults", "dialect", "names", "positional", "processors", "readers", "sql", "types")

    def __init__(self, sql: str, names: tuple[str, ...], positional: bool, processors: dict[str, Callable[[Any], Any]]) -> None:
        self.sql = sql
        self.names = names  # the parameters (in their order, when positional)
        self.positional = positional
        self.processors = processors
        self.defaults: dict[str, Any] = {}  # values the statement carries (an access filter's ids, say)
        self.columns: tuple[str, ...] = ()  # the names of a SELECT's result columns
        self.dialect: sa.Dialect | None = None
        self.types: list[Any] = []  # their SQL types
        self.readers: list[tuple[int, Callable[[Any], Any]]] | None = None  # see rows

    @classmethod
    def of(cls, statement: Any, dialect: sa.Dialect) -> _Prepared:
        compiled = statement.compile(dialect=dialect)
        if compiled.post_compile_params:
            # IN lists rendered as one parameter per value, so the values a statement carries
            # (the ids of an access filter) are plain parameters too; its other parameters
            # are then bound with ``required=False``
            compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        processors = {}
        for bind in compiled.binds.values():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[compiled.bind_names[bind]] = processor
        params = compiled.params  # by the names the SQL uses, an IN list's values as name_1, name_2...
        named = set(compiled.bind_names.values())
        for name in params:
            base = name.rpartition("_")[0]
            if name not in named and base in processors:  # a value of IN list *base*
                processors[name] = processors[base]
        positions = compiled.positiontup
        if positions is not None:
            prepared = cls(compiled.string, tuple(positions), True, processors)
        else:
            prepared = cls(compiled.string, tuple(params), False, processors)
        prepared.defaults = {k: v for k, v in params.items() if v is not None}
        prepared.columns = tuple(c.keyname for c in compiled._result_columns)
        prepared.dialect = dialect
        prepared.types = [c.type for c in compiled._result_columns]
        return prepared

    def __repr__(self) -> str:
        return f"<_Prepared {self.sql[:60]!r}>"

    def _params(self, params: Mapping[str, Any]) -> Any:
        processors = self.processors
        if self.defaults:
            params = {**self.defaults, **params}
        if self.positional:
            return [(processors[k](params[k]) if k in processors else params[k]) for k in self.names]
        return {k: (processors[k](params[k]) if k in processors else params[k]) for k in self.names}

    def run(self, uow: UnitState, params: Mapping[str, Any], *, entity: str | None = None, id: int | None = None) -> int:
        """Run it once; the number of rows it changed (errors as :meth:`UnitOfWork._plain`'s)."""
        return uow._plain(self.sql, self._params(params), entity=entity, id=id)  # type: ignore[no-any-return]

    def run_many(self, uow: UnitState, params: Sequence[Mapping[str, Any]], *, entity: str | None = None) -> int:
        """Run it for each of *params* in one ``executemany``; the number of rows changed."""
        return uow._plain(self.sql, [self._params(p) for p in params], many=True, entity=entity)  # type: ignore[no-any-return]

    def rows(self, uow: UnitState, params: Mapping[str, Any], *, entity: str | None = None, id: int | None = None) -> list[dict[str, Any]]:
        """Run a SELECT once; its rows as ``{column: value}``, each value through its type's
        result processor (as SQLAlchemy would give it)."""
        found = uow._plain(self.sql, self._params(params), fetch=True, entity=entity, id=id, described=True)
        described, fetched = found
        readers = self.readers
        if readers is None:  # the processors depend on the types the driver reports
            assert self.dialect is not None
            readers = []
            for index, (kind, column) in enumerate(zip(self.types, described, strict=True)):
                processor = kind.dialect_impl(self.dialect).result_processor(self.dialect, column[1])
                if processor is not None:
                    readers.append((index, processor))
            self.readers = readers
        names = self.columns
        out = []
        for row in fetched:
            values = list(row)
            for index, processor in readers:
                values[index] = processor(values[index])
            out.append(dict(zip(names, values, strict=True)))
        return out
