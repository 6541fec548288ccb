"""The bulk import engine: rows in, validated, deduplicated, audited records out.

An :class:`Importer` runs inside one unit of work and takes the rows of a file in batches
(5,000 by default), so memory stays flat however long the file is. Each batch goes through the
steps of :meth:`UnitOfWork.create <crmcore.storage.uow.UnitOfWork.create>`, with the SQL done
once per batch instead of once per row:

1. every cell is parsed by its field's :meth:`~crmcore.fields.Field.parse` through
   :func:`crmcore.validation.check_values` (the same code a single create runs);
2. duplicates on the ``dedupe_on`` fields are found inside the batch and, with one
   ``WHERE key IN (...)`` query, in the database (which also holds the earlier batches), and
   follow the policy: ``error`` (the row is invalid), ``skip`` or ``update`` (the existing
   record is updated: versioned, audited, ``record-updated`` sent); values of unique fields are
   checked the same way;
3. the owner defaults to the acting user, and the ``crm_before_create`` hooks run once per
   batch (``crm_before_update`` for updates) and may change or veto rows (when they refuse a
   batch, each row is asked about alone, so that only the rows at fault are rejected);
4. references are checked with one query per reference field;
5. the new rows are inserted at once (ids reserved first, then ``executemany`` on SQLite or
   ``COPY`` on PostgreSQL), the changes and audit entries are recorded (audit rows are written
   in bulk) and the ``crm_after_create`` hooks run once per batch; ``record-created`` goes
   out for every record after the commit.

By default an import is atomic: when any row is invalid, nothing is written and
:class:`~crmcore.transfer.report.ImportFailedError` lists the bad rows. With ``skip_invalid``
the valid rows are written and the others set aside (in the rejects file, if one is given).

The ``id`` column: by default it is read but not used, and new records get new ids. With
``keep_ids`` the new records take the file's ids (so an export of several entity types imports
back with every reference intact); with ``dedupe_on=("id",)`` it finds the existing record to
skip or update. Keeping ids is for the system actor and administrators (the
``security.keep_ids`` privilege on the entity): anyone else is refused by
:func:`require_keep_ids` before a row is read or written, whatever ids the file holds.
"""

from __future__ import annotations

import gc
import json
import operator
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.errors import PermissionDeniedError, ValidationError
from crmcore.fields import REQUIRED_MESSAGE, FieldValueError, Json
from crmcore.records import Record
from crmcore.registry import SYSTEM_FIELDS
from crmcore.security.model import KEEP_IDS_ACTION
from crmcore.storage import internal, record_hooks
from crmcore.storage.bulk import sync_sequence
from crmcore.transfer.columns import ID, ColumnPlan, FieldMatcher
from crmcore.transfer.duplicates import DuplicateChecks
from crmcore.transfer.rejects import RejectsFile
from crmcore.transfer.report import ImportFailedError, ImportReport, RowError
from crmcore.transfer.sources import SourceRow
from crmcore.transfer.writer import PendingRow, RecordWriter
from crmcore.validation import check_values

if TYPE_CHECKING:
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = ["DUPLICATE_POLICIES", "ImportOptions", "Importer", "require_keep_ids"]

DUPLICATE_POLICIES = ("error", "skip", "update")
_ID_FIELD = SYSTEM_FIELDS[0]


def _policy(value: str | None) -> str | None:
    if value is not None and value not in DUPLICATE_POLICIES:
        raise ValidationError(f"on_duplicate must be one of {', '.join(DUPLICATE_POLICIES)}, got {value!r}")
    return value


@attrs.frozen
class ImportOptions:
    """How to import.

    :param mapping: ``{column: field}``; a field of ``""`` or ``None`` leaves the column out.
    :param skip_invalid: write the valid rows and set the invalid ones aside, instead of
        writing nothing when any row is invalid.
    :param rejects: a file to write the invalid rows to: a CSV source's columns plus ``error``
        (a JSON source gives JSON lines with an ``error`` key).
    :param dedupe_on: fields whose values identify a record (``("email",)``), inside the file
        and against the database; ``"id"`` matches record ids.
    :param on_duplicate: ``"error"`` (the default: the row is invalid), ``"skip"`` or
        ``"update"`` (the existing record takes the row's values).
    :param keep_ids: new records take the ids of the file's ``id`` column.
    :param batch_size: rows per batch.
    :param progress: called after each batch with (bytes read, total bytes) of the file.
    """

    mapping: Mapping[str, str | None] = attrs.field(factory=dict)
    skip_invalid: bool = False
    rejects: str | os.PathLike[str] | None = None
    dedupe_on: tuple[str, ...] = attrs.field(default=(), converter=lambda v: tuple(_split(v)))
    on_duplicate: str | None = attrs.field(default=None, converter=_policy)
    keep_ids: bool = False
    batch_size: int = 5000
    progress: Callable[[int, int], None] | None = None


def require_keep_ids(uow: UnitOfWork, entity: str) -> None:
    """Raise :class:`PermissionDeniedError` unless the actor of *uow* may import *entity* records
    keeping the file's ids: the system actor, or a profile granting ``security.keep_ids`` on
    *entity* (an administrator's). Nothing is read from the records, so the answer is the same
    whichever ids the file holds.

    :raises NotFoundError: for an unknown entity type.
    """
    uow.registry.entity(entity)
    if uow.actor.is_system or uow.can(entity, KEEP_IDS_ACTION):
        return
    name = uow.actor.username
    raise PermissionDeniedError(
        f"{name} may not keep ids when importing {entity} records: that is for the system actor and "
        f"administrators (the {KEEP_IDS_ACTION} privilege); import without --keep-ids (keep_ids=) and "
        "the records get new ids",
        reasons=[f"no profile of {name} grants {KEEP_IDS_ACTION} on {entity}"],
    )


def _split(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


class Importer(DuplicateChecks):
    """Imports rows into *entity* within *uow* (which the caller commits or rolls back).

    :param uow: the unit of work; its actor is who imports.
    :param entity: the entity type's name.
    :param options: :class:`ImportOptions`.
    :param source: a name for the rows, used in messages (the file name).
    :raises ValidationError: for options that do not fit the entity type.
    """

    def __init__(self, uow: UnitOfWork, entity: str, options: ImportOptions | None = None, *, source: str = "rows") -> None:
        self.uow = uow
        self.options = options = options or ImportOptions()
        self.etype: EntityType = uow.registry.entity(entity)
        self.table = uow.registry.table(entity)
        self.source = source
        self.report = ImportReport(entity, source)
        self.matcher = FieldMatcher(self.etype)
        self.dedupe = self._check_dedupe(options.dedupe_on)
        if options.on_duplicate is not None and not self.dedupe:
            raise ValidationError(
                f"on_duplicate={options.on_duplicate!r} needs the fields that identify a duplicate; "
                "name them with --dedupe-on FIELD,... (dedupe_on=)"
            )
        self.policy = options.on_duplicate or "error"
        self._id_key = ID in self.dedupe
        uow.require(entity, "import")
        uow.require(entity, "create")
        if options.keep_ids:
            require_keep_ids(uow, entity)
        if self.policy == "update":
            uow.require(entity, "update")
        if options.batch_size < 1:
            raise ValidationError(f"batch_size must be at least 1, got {options.batch_size!r}")
        self.unique = [f.name for f in self.etype.fields if f.unique and (f.name,) != self.dedupe]
        self._plan: ColumnPlan | None = None
        self._plans: dict[tuple[str, ...], ColumnPlan | ValidationError] = {}
        self._json_fields = frozenset(f.name for f in self.etype.fields if isinstance(f.type, Json))
        self._writing = True
        self._unwritten: dict[str, dict[Any, int]] = {}  # values seen once writes stopped
        self._explicit_ids = False
        self._rejects: RejectsFile | None = None
        self.writer = RecordWriter(uow, self.etype)

    # -- set-up --------------------------------------------------------------------------------
    def _check_dedupe(self, names: Sequence[str]) -> tuple[str, ...]:
        fields = []
        for name in names:
            field = self.matcher.match(name)
            if field is None:
                raise ValidationError(
                    f"dedupe_on: {self.etype.name} has no field {name!r}; its fields are: id, "
                    f"{', '.join(self.etype.field_names)}"
                )
            if field != ID and (len(self.etype.field(field).type.columns("c")) != 1 or field in self._json_like()):
                raise ValidationError(
                    f"dedupe_on: {self.etype.name}.{field} is a {self.etype.field(field).type.kind} field, "
                    "which cannot identify records; use text, number, date or choice fields such as email"
                )
            fields.append(field)
        return tuple(dict.fromkeys(fields))

    def _json_like(self) -> set[str]:
        return {f.name for f in self.etype.fields if f.type.kind in ("json", "multi_choice")}

    def plan_columns(self, columns: Sequence[str], mapping: Mapping[str, str | None] | None = None) -> ColumnPlan:
        """Match the columns of a CSV header to fields (done by :meth:`run` for CSV files).

        :raises ValidationError: for unknown, ambiguous or doubled columns, for read-only fields
            the actor may not write, and for missing required fields (unless updating).
        """
        plan = ColumnPlan.build(self.matcher, columns, mapping if mapping is not None else self.options.mapping, source=self.source)
        self._use_plan(plan, check_required=True)
        return plan

    def _use_plan(self, plan: ColumnPlan, *, check_required: bool) -> None:
        internal.check_writable(self.uow, self.etype, plan.fields)
        if check_required and self.policy != "update":
            missing = [f.name for f in self.etype.fields if f.required and f.default is None and f.name not in plan.fields]
            if missing:
                raise ValidationError(
                    f"no column for the required field{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} of {self.etype.name}; add {'them' if len(missing) > 1 else 'it'} "
                    "or map a column with --map 'COLUMN=FIELD'",
                    source=self.source,
                )
        if check_required:
            for name in self.dedupe:
                if name not in plan.targets.values():
                    raise ValidationError(f"dedupe_on {name!r}: the file has no column for it", source=self.source)
        if ID in plan.targets.values() and self.options.keep_ids:
            self._explicit_ids = True
        if self.options.keep_ids and ID not in plan.targets.values() and check_required:
            raise ValidationError("keep_ids: the file has no id column", source=self.source)
        self.report.ignored_columns = list(dict.fromkeys([*self.report.ignored_columns, *plan.ignored]))
        self.report.columns.update(plan.targets)
        self.report.aliased_columns.update(plan.aliased)
        if ID in plan.targets.values() and not self.options.keep_ids and ID not in self.dedupe:
            column = next(c for c, f in plan.targets.items() if f == ID)
            if column not in self.report.ignored_columns:
                self.report.ignored_columns.append(column)

    # -- running -------------------------------------------------------------------------------
    def run(self, rows: Iterable[SourceRow], *, columns: Sequence[str] | None = None,
            position: Callable[[], int] | None = None, total: int = 0) -> ImportReport:
        """Import *rows* (cells of a CSV file whose header is *columns*, or objects).

        :param position: returns the bytes read so far, for the progress callback.
        :param total: the size of the file, for the progress callback.
        :returns: the report; ``committed`` is left ``False`` for the caller to set.
        :raises ImportFailedError: when the import is atomic and a row is invalid (the caller
            rolls the unit of work back).
        """
        started = time.perf_counter()
        if columns is not None:
            self._plan = plan = self.plan_columns(columns)
            index = {column: i for i, column in enumerate(columns)}
            self._cell_fields = list(plan.targets.values())
            # the cells of the imported columns, as a tuple even for one column (the extra 0 is
            # dropped by zip)
            self._cells = operator.itemgetter(*(index[c] for c in plan.targets), 0)
            self._width = len(columns)
        progress = self.options.progress
        # An import makes millions of short-lived objects without cycles, which reference
        # counting frees; the cyclic collector's scans of them would cost about a fifth of the
        # time, so it is paused for the import and restored afterwards. Between batches it
        # collects the young generations (the few cycles a batch leaves, such as its SQL
        # statements, and what they hold), so memory stays flat.
        collecting = gc.isenabled()
        gc.disable()
        try:
            batch: list[SourceRow] = []
            size = self.options.batch_size
            for src in rows:
                batch.append(src)
                if len(batch) >= size:
                    self._batch(batch)
                    batch = []
                    if collecting:
                        gc.collect(1)
                    if progress is not None and position is not None:
                        progress(position(), total)
            if batch:
                self._batch(batch)
            if progress is not None and position is not None:
                progress(total, total)
            if self._explicit_ids and self._writing:
                sync_sequence(self.uow.connection, self.table)
            self.uow.flush()
        finally:
            if collecting:
                gc.enable()
            if self._rejects is not None:
                self._rejects.close()
            self.report.seconds = time.perf_counter() - started
        if self.report.invalid and not self.options.skip_invalid:
            self.report.created = self.report.updated = 0
            raise ImportFailedError(self.report)
        return self.report

    def open_rejects(self, columns: Sequence[str] | None) -> None:
        """Start the rejects file (a CSV with *columns* and ``error``, or JSON lines)."""
        if self.options.rejects is not None:
            self._rejects = RejectsFile(str(self.options.rejects), columns)
            self.report.rejects = str(self.options.rejects)

    # -- one batch -----------------------------------------------------------------------------
    def _batch(self, sources: list[SourceRow]) -> None:
        self.report.rows += len(sources)
        if self._plan is not None and ID not in self._cell_fields:
            rows = self._parse_cells(sources)
        else:
            parse = self._parse
            rows = [row for src in sources if (row := parse(src)) is not None]
        while rows:
            rows = self._process(rows)  # returns duplicates left for another round (updates)

    def _parse_cells(self, sources: list[SourceRow]) -> list[PendingRow]:
        """:meth:`_parse` for the rows of a CSV file without an id column, the common case in
        one loop; a row with a problem goes through :meth:`_parse` for its report."""
        etype, width, fields, cells, dedupe = self.etype, self._width, self._cell_fields, self._cells, self.dedupe
        parse = self._parse
        out: list[PendingRow] = []
        append = out.append
        for src in sources:
            values = src[2]
            if len(values) != width or src[3] is not None:
                row = parse(src)
            else:
                raw = dict(zip(fields, cells(values), strict=False))
                parsed, errors = check_values(etype, raw, partial=False)
                if errors:
                    row = parse(src)
                else:
                    row = PendingRow(src, raw)
                    row.parsed = parsed
                    if dedupe:
                        row.key = self._dedupe_key(tuple(map(parsed.get, dedupe)))
            if row is not None:
                append(row)
        return out

    def _parse(self, src: SourceRow) -> PendingRow | None:
        """Parse one row; record and drop it if it is invalid."""
        etype = self.etype
        if src.problem is not None:
            row = PendingRow(src, {})
            self._reject(row, {"_row": [src.problem]})
            return None
        plan = self._plan
        values = src.values
        if plan is not None:  # CSV: cells in header order
            if len(values) != self._width:
                row = PendingRow(src, {})
                self._reject(row, {"_row": [f"has {len(values)} cells, but the header has {self._width} columns"]})
                return None
            raw = dict(zip(self._cell_fields, self._cells(values), strict=False))
        else:
            plan, raw = self._object_values(src)
            if plan is None:
                return None
        row = PendingRow(src, raw)
        given = raw
        if ID in raw:
            given = dict(raw)
            try:
                row.id = _ID_FIELD.parse(given.pop(ID))
            except FieldValueError as exc:
                row.errors[ID] = [str(exc)]
        if self._json_fields and plan is not self._plan:
            for name in self._json_fields & given.keys():
                if isinstance(given[name], str):
                    given = {**given, name: json.dumps(given[name])}
        parsed, errors = check_values(etype, given, partial=False)
        if errors:
            row.errors.update(errors)
        if row.errors:
            # Required fields the file has no column for: an update does not need them, so the
            # row waits until duplicates are known (an insert is refused then).
            if self.policy != "update" or _has_present_errors(row.errors, plan):
                self._reject(row, row.errors)
                return None
        row.parsed = parsed
        if self.dedupe:
            if self._id_key:
                key = tuple(row.id if name == ID else parsed.get(name) for name in self.dedupe)
            else:
                key = tuple(map(parsed.get, self.dedupe))
            row.key = self._dedupe_key(key)
        return row

    def _object_values(self, src: SourceRow) -> tuple[ColumnPlan | None, dict[str, Any]]:
        keys = tuple(src.values)
        plan = self._plans.get(keys)
        if plan is None:
            try:
                plan = ColumnPlan.build(self.matcher, keys, self.options.mapping, source=self.source, every_map_key=False)
                self._use_plan(plan, check_required=False)
            except ValidationError as exc:
                plan = exc
            self._plans[keys] = plan
        if isinstance(plan, ValidationError):
            self._reject(PendingRow(src, {}), {"_row": [str(plan)]})
            return None, {}
        values = src.values
        return plan, {field: values[key] for key, field in plan.targets.items()}

    # -- duplicates, hooks, references, writes ---------------------------------------------------
    def _process(self, rows: list[PendingRow]) -> list[PendingRow]:
        later: list[PendingRow] = []
        if self.dedupe:
            rows, later = self._dedupe_in_batch(rows)
            inserts, updates = self._match_existing(rows)
        else:
            inserts, updates = rows, []
        for row in inserts:  # rows kept for a possible update lack required fields
            if row.errors:
                self._reject(row, row.errors)
        inserts = [row for row in inserts if not row.errors]
        updates = self._check_update_access(updates)
        inserts, updates = self._check_unique(inserts, updates)
        inserts = self._before_create(inserts)
        updates = self._before_update_rows(updates)
        inserts, updates = self._check_references(inserts, updates)
        if self._writing and self.report.invalid and not self.options.skip_invalid:
            self._writing = False  # atomic and failed: only find the remaining bad rows
        if self._writing:
            self.writer.insert(inserts, explicit_ids=self._explicit_ids)
            self.writer.update(updates)
            self.report.created += len(inserts)
            self.report.updated += len(updates)
        else:
            self._remember(inserts)
        return later

    def _before_create(self, rows: list[PendingRow]) -> list[PendingRow]:
        """The rows the ``crm_before_create`` hooks (called once for the batch) accept, their
        changes merged. When the hooks refuse the batch, the rows are asked about in file order,
        each with the rows accepted before it (a rule between the rows of a batch, such as two
        rows that may not both exist, still holds), so that only the rows at fault are rejected."""
        if not rows:
            return rows
        try:
            internal.prepare_create(self.uow, self.etype, [row.parsed for row in rows])
        except ValidationError:
            if len(rows) == 1:
                raise
        else:
            return rows
        kept: list[PendingRow] = []
        for row in rows:
            try:
                internal.prepare_create(self.uow, self.etype, [*(k.parsed for k in kept), row.parsed])
            except ValidationError as exc:
                self._reject(row, exc.messages)
                continue
            kept.append(row)
        return kept

    def _before_update_rows(self, rows: list[PendingRow]) -> list[PendingRow]:
        """The rows left with changes once the ``crm_before_update`` hooks (called once for the
        batch) merged theirs; as for creates, a refused batch is asked about row by row."""
        fields = self._given_fields
        plan = []
        for row in rows:
            old = row.old
            assert old is not None
            diff = {k: v for k, v in row.parsed.items() if k in fields(row) and old.values.get(k) != v}
            if diff:
                plan.append((row, diff))
            else:
                self.report.unchanged += 1
        if not plan:
            return []
        try:
            merged = self._before_update(plan)
        except ValidationError:
            accepted: list[tuple[PendingRow, dict[str, Any]]] = []
            merged = []
            for item in plan:  # the rows at fault, each asked about with those accepted before it
                try:
                    merged = self._before_update([*accepted, item])
                except ValidationError as exc:
                    self._reject(item[0], exc.messages)
                    continue
                accepted.append(item)
        kept = []
        for row, diff in merged:
            if not diff:
                self.report.unchanged += 1
                continue
            row.parsed = diff
            kept.append(row)
        return kept

    def _before_update(self, plan: list[tuple[PendingRow, dict[str, Any]]]) -> list[tuple[PendingRow, dict[str, Any]]]:
        """``(row, changes)`` of *plan* once the ``crm_before_update`` hooks merged theirs."""
        items: list[tuple[Record, dict[str, Any]]] = []
        for row, diff in plan:
            assert row.old is not None  # a duplicate's existing record
            items.append((row.old, dict(diff)))
        merged = record_hooks.before_update(self.uow, self.etype, items)
        return [(row, diff) for (row, _), (_, diff) in zip(plan, merged, strict=True)]

    def _given_fields(self, row: PendingRow) -> Iterable[str]:
        return row.raw.keys()

    def _check_references(self, inserts: list[PendingRow], updates: list[PendingRow]) -> tuple[list[PendingRow], list[PendingRow]]:
        rows = inserts + updates
        if not rows or not any(f.is_reference for f in self.etype.fields):
            return inserts, updates
        pending = {self.etype.name: [r.id for r in inserts if r.id is not None]} if self._explicit_ids else None
        problems = self.uow.reference_errors(self.etype, [r.parsed for r in rows], pending=pending)
        if not problems:
            return inserts, updates
        for index, messages in problems.items():
            self._reject(rows[index], messages)
        bad = {rows[i] for i in problems}
        return [r for r in inserts if r not in bad], [r for r in updates if r not in bad]

    # -- invalid rows --------------------------------------------------------------------------
    def _reject(self, row: PendingRow, messages: Mapping[str, Sequence[str]]) -> None:
        column_of = self._column_of(row)
        first = True
        texts = []
        for field, items in messages.items():
            whole = field in ("_row", "_schema")
            column = None if whole else column_of.get(field)
            value = row.raw.get(field) if column is not None else None
            for message in items:
                text = message if whole or column is not None else f"{field}: {message}"
                self.report.add_error(
                    RowError(row.src.row, row.src.line, column, None if whole else field, value, text), new_row=first,
                )
                first = False
                texts.append(text if column is None else f"{column}: {message}")
        if first:  # no message at all: still a bad row
            self.report.add_error(RowError(row.src.row, row.src.line, None, None, None, "invalid row"), new_row=True)
        if self._rejects is not None:
            self._rejects.write(row.src, "; ".join(texts))

    def _column_of(self, row: PendingRow) -> dict[str, str]:
        plan = self._plan
        if plan is None and isinstance(row.src.values, dict):
            cached = self._plans.get(tuple(row.src.values))
            plan = cached if isinstance(cached, ColumnPlan) else None
        return plan.column_of() if plan is not None else {}


def _has_present_errors(errors: Mapping[str, Sequence[str]], plan: ColumnPlan) -> bool:
    fields = plan.fields
    return any(k in fields or k == ID or v != [REQUIRED_MESSAGE] for k, v in errors.items())
