"""Statements compiled once per unit of work and run straight on the driver's cursor: the
UPDATE a move repeats for every record, the tag inserts a rule repeats. SQLAlchemy compiles them
and supplies each type's bind processor; the driver runs them without SQLAlchemy's per-call
work."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from crmcore.storage.uow import UnitOfWork

__all__: list[str] = []


class _Prepared:
    """A statement compiled for one dialect, run on the driver's cursor with its parameters
    passed through the bind processors of their types (as SQLAlchemy would pass them); driver
    errors come out as SQLAlchemy's exceptions."""

    __slots__ = ("names", "positional", "processors", "sql")

    def __init__(self, sql: str, names: tuple[str, ...], positional: bool, processors: dict[str, Callable[[Any], Any]]) -> None:
        self.sql = sql
        self.names = names  # the parameters (in their order, when positional)
        self.positional = positional
        self.processors = processors

    @classmethod
    def of(cls, statement: Any, dialect: sa.Dialect) -> _Prepared:
        compiled = statement.compile(dialect=dialect)
        processors = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        positions = compiled.positiontup
        if positions is not None:
            return cls(compiled.string, tuple(positions), True, processors)
        return cls(compiled.string, tuple(compiled.binds), False, processors)

    def __repr__(self) -> str:
        return f"<_Prepared {self.sql[:60]!r}>"

    def _params(self, params: Mapping[str, Any]) -> Any:
        processors = self.processors
        if self.positional:
            return [(processors[k](params[k]) if k in processors else params[k]) for k in self.names]
        return {k: (processors[k](params[k]) if k in processors else params[k]) for k in self.names}

    def run(self, uow: UnitOfWork, params: Mapping[str, Any], *, entity: str | None = None, id: int | None = None) -> int:
        """Run it once; the number of rows it changed (errors as :meth:`UnitOfWork._plain`'s)."""
        return uow._plain(self.sql, self._params(params), entity=entity, id=id)  # type: ignore[no-any-return]

    def run_many(self, uow: UnitOfWork, params: Sequence[Mapping[str, Any]], *, entity: str | None = None) -> int:
        """Run it for each of *params* in one ``executemany``; the number of rows changed."""
        return uow._plain(self.sql, [self._params(p) for p in params], many=True, entity=entity)  # type: ignore[no-any-return]
