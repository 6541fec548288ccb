"""Duplicates during an import: inside the file, against the database, and unique values.

The :class:`DuplicateChecks` part of the :class:`~crmcore.transfer.importer.Importer` finds,
for each batch, the rows whose ``dedupe_on`` values repeat an earlier row of the file or match
existing records (one ``WHERE key IN (...)`` query per batch; the database already holds the
earlier batches), applies the duplicate policy, checks that the records an update would change
may be updated by the actor (one query per batch), and that the values of unique fields (and
kept ids) are not taken. Only records the actor may read count as duplicates (the system
actor: all), and a ``dedupe_on`` field hidden from the actor is refused, as a query refuses
to filter on it. A unique value is unique among all records, since the database refuses a
second one whoever reads it: its message names no record. Once an atomic import has stopped writing, the keys and values of the
valid rows are remembered so later duplicates of them are still found.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import PermissionDeniedError
from crmcore.records import Record
from crmcore.storage import internal
from crmcore.transfer.columns import ID

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork
    from crmcore.transfer.report import ImportReport
    from crmcore.transfer.writer import PendingRow

__all__ = ["DuplicateChecks"]


class DuplicateChecks:
    """Duplicate, unique-value and update-access checks of an import (a part of the importer)."""

    uow: UnitOfWork
    etype: EntityType
    table: sa.Table
    report: ImportReport
    dedupe: tuple[str, ...]
    unique: list[str]
    policy: str
    _explicit_ids: bool
    _unwritten: dict[str, dict[Any, int]]
    _reject: Callable[[PendingRow, Mapping[str, Sequence[str]]], None]  # the importer's

    def _dedupe_key(self, values: Sequence[Any]) -> tuple[Any, ...] | None:
        """The key of a row whose ``dedupe_on`` fields hold *values*, or ``None`` when one is
        empty: each value as its field type compares duplicates
        (:meth:`~crmcore.fields.FieldType.dedupe_key`: e-mail addresses whatever their case)."""
        if None in values:
            return None
        return tuple(v if name == ID else self.etype.field(name).type.dedupe_key(v)
                     for name, v in zip(self.dedupe, values, strict=True))

    def _describe_key(self, row: PendingRow) -> str:
        return ", ".join(f"{name} {row.raw.get(name, row.id if name == ID else None)!r}" for name in self.dedupe)

    def _dedupe_in_batch(self, rows: list[PendingRow]) -> tuple[list[PendingRow], list[PendingRow]]:
        seen: dict[tuple[Any, ...], PendingRow] = {}
        earlier = self._unwritten.get("\0key", {})
        kept: list[PendingRow] = []
        later: list[PendingRow] = []
        for row in rows:
            key = row.key
            if key is None:
                kept.append(row)
                continue
            first = seen.get(key)
            if first is None and key in earlier:
                first_row = earlier[key]
            elif first is not None:
                first_row = first.src.row
            else:
                seen[key] = row
                kept.append(row)
                continue
            if self.policy == "skip":
                self.report.skipped += 1
            elif self.policy == "error":
                self._reject(row, {self.dedupe[0]: [f"duplicate of row {first_row} ({self._describe_key(row)})"]})
            elif first is not None:
                later.append(row)  # updates the record of the first, once that is written
            else:
                kept.append(row)
        return kept, later

    def _key_columns(self) -> list[sa.ColumnElement[Any]]:
        hidden = self.uow.hidden_fields(self.etype.name)
        for name in self.dedupe:
            if name in hidden:
                raise PermissionDeniedError(
                    f"{self.etype.name}.{name} is hidden from {self.uow.actor.username}; it cannot be used to find duplicates",
                    field=name, reasons=[f"field access of {self.etype.name}.{name} is hidden"],
                )
        return [self.table.c.id if name == ID else self.etype.field(name).type.dedupe_column(
            self.table.c[self.etype.field(name).column]) for name in self.dedupe]

    def _match_existing(self, rows: list[PendingRow]) -> tuple[list[PendingRow], list[PendingRow]]:
        keys = {row.key for row in rows if row.key is not None}
        found: dict[tuple[Any, ...], list[Record]] = {}
        if keys:
            columns = self._key_columns()
            names = [f"dedupe_key_{i}" for i in range(len(columns))]
            ordered = list(keys)
            uow = self.uow
            for start in range(0, len(ordered), 1000):
                chunk = ordered[start:start + 1000]
                if len(columns) == 1:
                    condition = columns[0].in_([k[0] for k in chunk])
                else:
                    condition = sa.tuple_(*columns).in_(chunk)
                # only records the actor may read count as duplicates: an invisible record is
                # neither updated nor revealed (the row is imported as a new record)
                statement = sa.select(self.table, *(c.label(n) for c, n in zip(columns, names, strict=True))).where(condition, uow.read_filter(self.etype.name, self.table)).order_by(self.table.c.id)
                if self.policy == "update":
                    statement = statement.with_for_update()
                for mapping in internal.execute(uow, statement).mappings():
                    key = tuple(mapping[n] for n in names)
                    found.setdefault(key, []).append(internal.row_of(uow, self.etype, mapping, full=True))
        inserts: list[PendingRow] = []
        updates: list[PendingRow] = []
        for row in rows:
            matches = found.get(row.key) if row.key is not None else None
            if not matches:
                inserts.append(row)
                continue
            if len(matches) > 1:
                ids = ", ".join(str(r.id) for r in matches[:5])
                self._reject(row, {self.dedupe[0]: [
                    f"matches {len(matches)} existing {self.etype.plural.lower()} (ids {ids}); "
                    "dedupe on fields that identify one record"
                ]})
            elif self.policy == "skip":
                self.report.skipped += 1
            elif self.policy == "error":
                self._reject(row, {self.dedupe[0]: [
                    f"duplicate of {self.etype.name} {matches[0].id} ({self._describe_key(row)}); "
                    "use --on-duplicate skip or update to accept duplicates"
                ]})
            else:
                row.old = matches[0]
                row.errors = {}  # required fields may be absent from an update
                updates.append(row)
        return inserts, updates

    def _check_update_access(self, rows: list[PendingRow]) -> list[PendingRow]:
        """Keep the updates of records the actor may update (one query per batch)."""
        uow = self.uow
        if not rows or uow.actor.is_system:
            return rows
        ids = sorted({r.old.id for r in rows if r.old is not None})
        predicate = uow.predicate(self.etype.name, "update").sql(self.table)
        allowed: set[int] = set()
        for start in range(0, len(ids), 1000):
            statement = sa.select(self.table.c.id).where(self.table.c.id.in_(ids[start:start + 1000]), predicate)
            allowed.update(r[0] for r in internal.execute(uow, statement))
        kept = []
        for row in rows:
            assert row.old is not None
            if row.old.id in allowed:
                kept.append(row)
            else:
                self._reject(row, {self.dedupe[0]: [
                    f"matches {self.etype.name} {row.old.id}, which {uow.actor.username} may not update"
                ]})
        return kept

    def _check_unique(self, inserts: list[PendingRow], updates: list[PendingRow]) -> tuple[list[PendingRow], list[PendingRow]]:
        checks = list(self.unique)
        if self._explicit_ids and ID not in self.dedupe:
            checks.append(ID)
        if not checks or not (inserts or updates):
            return inserts, updates
        bad: set[PendingRow] = set()
        for name in checks:
            column = self.table.c.id if name == ID else self.table.c[self.etype.field(name).column]
            candidates = [r for r in inserts if _value(r, name) is not None]
            if name != ID:
                candidates += [r for r in updates if _value(r, name) is not None]
            values = {_value(r, name) for r in candidates}
            owners: dict[Any, int] = {}
            ordered = list(values)
            for start in range(0, len(ordered), 1000):
                statement = sa.select(self.table.c.id, column).where(column.in_(ordered[start:start + 1000]))
                owners.update({value: rid for rid, value in internal.execute(self.uow, statement)})
            earlier = self._unwritten.get(name, {})
            seen: dict[Any, int] = {}
            for row in candidates:
                value = _value(row, name)
                owner = owners.get(value)
                target = row.old.id if row.old is not None else None
                if owner is not None and owner != target:
                    message = (
                        f"id {value} is already used by another {self.etype.name}; leave the id out, "
                        "or find existing records with --dedupe-on id" if name == ID else
                        f"{value!r} is already used by another {self.etype.name}"
                    )
                elif value in seen or value in earlier:
                    message = f"{value!r} is also in row {seen.get(value) or earlier[value]}; it must be unique"
                else:
                    seen[value] = row.src.row
                    continue
                if row not in bad:
                    bad.add(row)
                    self._reject(row, {name: [message]})
        if not bad:
            return inserts, updates
        return [r for r in inserts if r not in bad], [r for r in updates if r not in bad]

    def _remember(self, rows: list[PendingRow]) -> None:
        """Once an atomic import stopped writing, keep the keys and unique values of the valid
        rows, so later duplicates of them are still found."""
        if not rows:
            return
        if self.dedupe:
            keys = self._unwritten.setdefault("\0key", {})
            for row in rows:
                if row.key is not None:
                    keys.setdefault(row.key, row.src.row)
        for name in self.unique:
            values = self._unwritten.setdefault(name, {})
            for row in rows:
                value = row.parsed.get(name)
                if value is not None:
                    values.setdefault(value, row.src.row)
        if self._explicit_ids:
            ids = self._unwritten.setdefault(ID, {})
            for row in rows:
                if row.id is not None:
                    ids.setdefault(row.id, row.src.row)


def _value(row: PendingRow, name: str) -> Any:
    return row.id if name == ID else row.parsed.get(name)
