"""Full records out of the rows of ``SELECT`` of an entity's table: the positions of the
columns worked out once per statement, each row read with one C call (a set-based read of
thousands of rows), the records issued by the unit of work that read them."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from crmcore.fields import FieldType
from crmcore.storage.operations import _Issued

if TYPE_CHECKING:
    import sqlalchemy as sa

    from crmcore.registry import EntityType

__all__ = ["FullReader"]

SYSTEM_COLUMNS = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")


class FullReader:
    """Makes the full records of *etype* (every field) out of rows whose columns are named
    *keys*, issued by the unit whose token is *origin*: a write of them by that unit matches
    their version without reading the rows again, as for a record ``uow.get`` read."""

    def __init__(self, etype: EntityType, keys: Iterable[str], origin: object) -> None:
        position = {name: index for index, name in enumerate(keys)}
        self.entity = etype.name
        self.origin = origin
        self.names = [*SYSTEM_COLUMNS, *(f.name for f in etype.fields)]
        self.pick = operator.itemgetter(*[position[n] for n in SYSTEM_COLUMNS], *[position[f.column] for f in etype.fields])
        # fields stored otherwise than as their own column (money: amount and currency)
        self.special = [(f.name, f.type.from_db, f.column) for f in etype.fields if type(f.type).from_db is not FieldType.from_db]

    def __call__(self, row: sa.Row[Any]) -> _Issued:
        values = dict(zip(self.names, self.pick(row), strict=True))
        if self.special:
            mapping: Mapping[str, Any] = row._mapping  # type: ignore[assignment]
            for name, from_db, column in self.special:
                values[name] = from_db(mapping, column)  # in place: the order of the fields stays
        return _Issued.of(self.entity, values, self.origin)
