"""Export: the records of an entity type streamed to CSV, a JSON array or JSON lines.

The columns are ``id`` and every declared field of the entity type (core, plugin and custom
fields alike) that the reading actor may see, named by field name, so the file imports back as
it is. CSV cells hold each
type's text form (:meth:`~crmcore.fields.FieldType.format`: money as ``1234.50 EUR``, times in
ISO 8601 with their offset, several choices joined by ``;``); JSON holds its JSON form
(:meth:`~crmcore.fields.FieldType.dump`). Rows are read through the query API, so the reading
actor's permissions apply and ``--where`` filters are the same as ``crm list``'s, and streamed in
batches (a server-side cursor on PostgreSQL): memory stays flat for any number of records.

A CSV export is safe to open in a spreadsheet: a text cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return (which a spreadsheet would run as a formula) is written with
a leading ``'``, as is one that already starts with ``'`` followed by one of those, and the
import takes that ``'`` off again, so the file still imports back to identical records.
Numbers, amounts, dates and times are written as they are. ``keep_formulas=True``
(``crm export --keep-formulas``) writes text cells unchanged. A NUL character, which no
field accepts but older data may hold, is written to CSV as U+FFFD (�); JSON escapes it
(``\\u0000``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

import attrs

from crmcore.errors import ValidationError
from crmcore.storage import internal

if TYPE_CHECKING:
    from crmcore.fields import Field
    from crmcore.storage.uow import UnitOfWork

__all__ = ["FORMULA_STARTS", "ExportReport", "export_to", "neutralise", "restore"]

_BATCH = 2000
#: The first characters that make a spreadsheet read a cell as a formula.
FORMULA_STARTS = frozenset("=+-@\t\r")
#: Field kinds whose text form never starts a formula: their cells are written as they are.
_PLAIN_KINDS = frozenset({"integer", "decimal", "money", "date", "datetime", "boolean", "reference"})


def neutralise(text: str) -> str:
    """*text* for a CSV cell: without NUL, and with a ``'`` in front when a spreadsheet would
    run it as a formula (or when it starts with ``'`` before such a character)."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    first = text[:1]
    if first in FORMULA_STARTS or (first == "'" and text.lstrip("'")[:1] in FORMULA_STARTS):
        return "'" + text
    return text


def restore(text: str) -> str:
    """The inverse of :func:`neutralise` for a cell read back (the NUL aside)."""
    if text[:1] == "'" and text.lstrip("'")[:1] in FORMULA_STARTS:
        return text[1:]
    return text


@attrs.define
class ExportReport:
    """The outcome of an export: how many records went to which destination."""

    entity: str
    destination: str
    format: str
    records: int = 0
    columns: list[str] = attrs.field(factory=list)

    def summary(self) -> str:
        return f"exported {self.records} {self.entity} record{'s' if self.records != 1 else ''} to {self.destination} ({self.format})"


def export_to(
    uow: UnitOfWork, entity: str, out: IO[str], *, fmt: str = "csv", where: Iterable[Any] = (),
    destination: str = "stream", keep_formulas: bool = False,
) -> ExportReport:
    """Write the records of *entity* that ``uow.actor`` may read, and match *where*, to *out*.

    :param fmt: ``csv``, ``json`` (an array of objects) or ``jsonl`` (one object per line).
    :param where: conditions for :meth:`crmcore.query.Query.where`; text such as
        ``"amount>50000"`` is read with :func:`crmcore.query.parse_where`.
    :param keep_formulas: write CSV text cells that a spreadsheet would run as formulas as they
        are, instead of with a leading ``'`` (see the module).
    :raises ValidationError: for an unknown format, field or operator.
    """
    from crmcore.query import parse_where

    if fmt not in ("csv", "json", "jsonl"):
        raise ValidationError(f"unknown export format {fmt!r}; use csv, json or jsonl")
    uow.require(entity, "export")
    query = uow.query(entity)
    for condition in where:
        query = query.where(parse_where(condition) if isinstance(condition, str) else condition)
    statement = query.statement()
    selected = {c.name for c in statement.selected_columns}
    etype = uow.registry.entity(entity)
    hidden = uow.hidden_fields(entity)
    fields: list[Field] = [
        f for f in etype.fields
        if f.name not in hidden and all(c.name in selected for c in f.type.columns(f.column))
    ]
    report = ExportReport(entity, destination, fmt, columns=["id", *(f.name for f in fields)])
    result = internal.execute(uow, statement.execution_options(yield_per=_BATCH))
    try:
        if fmt == "csv":
            _write_csv(out, report, fields, result, keep_formulas=keep_formulas)
        else:
            _write_json(out, report, fields, result, lines=fmt == "jsonl")
    finally:
        result.close()
    return report


def _write_csv(out: IO[str], report: ExportReport, fields: list[Field], result: Any, *, keep_formulas: bool) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(report.columns)
    plan = [(f.type.from_db, _cell_writer(f, keep_formulas), f.column) for f in fields]
    count = 0
    for rows in result.mappings().partitions():
        block = []
        for row in rows:
            cells: list[Any] = [row["id"]]
            for read, text, column in plan:
                value = read(row, column)
                cells.append("" if value is None else text(value))
            block.append(cells)
        writer.writerows(block)
        count += len(block)
    report.records = count


def _cell_writer(field: Field, keep_formulas: bool) -> Callable[[Any], str]:
    text = field.type.format
    if field.type.kind in _PLAIN_KINDS:
        return text
    if keep_formulas:
        return lambda value: text(value).replace("\x00", "\ufffd")
    return lambda value: neutralise(text(value))


def _write_json(out: IO[str], report: ExportReport, fields: list[Field], result: Any, *, lines: bool) -> None:
    plan = [(f.name, f.type.from_db, f.type.dump, f.column) for f in fields]
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    count = 0
    if not lines:
        out.write("[")
    for rows in result.mappings().partitions():
        parts = []
        for row in rows:
            data: dict[str, Any] = {"id": row["id"]}
            for name, read, dump, column in plan:
                value = read(row, column)
                data[name] = None if value is None else dump(value)
            parts.append(encode(data))
        if lines:
            out.write("\n".join(parts) + "\n")
        else:
            out.write(("," if count else "") + "\n" + ",\n".join(parts))
        count += len(parts)
    if not lines:
        out.write("\n]\n" if count else "]\n")
    report.records = count
