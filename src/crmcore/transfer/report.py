"""What an import did: the :class:`ImportReport`, its :class:`RowError` entries, and the
:class:`ImportFailedError` raised when an atomic import finds bad rows.

Row numbers count data rows from 1 (the header of a CSV file is not a row; in JSON the first
object is row 1). Each error also carries the file line the row starts on, which differs from
the row number when a CSV file has a header or values spanning several lines.
"""

from __future__ import annotations

from typing import Any

import attrs

from crmcore.errors import ValidationError

__all__ = ["MAX_LISTED_ROWS", "ImportFailedError", "ImportReport", "RowError"]

#: How many bad rows a report lists in full; the others are only counted.
MAX_LISTED_ROWS = 100


@attrs.frozen
class RowError:
    """One problem with one row.

    :ivar row: the data row, counted from 1.
    :ivar line: the line of the file the row starts on (``None`` when unknown).
    :ivar column: the column (CSV header or JSON key) at fault; ``None`` for the whole row.
    :ivar field: the field the column feeds, when known.
    :ivar value: the value as read from the file.
    :ivar message: what is wrong and, where it helps, what to do.
    """

    row: int
    line: int | None
    column: str | None
    field: str | None
    value: Any
    message: str

    def describe(self) -> str:
        """One line: ``row 3 (line 4), column 'Email', value 'ada@': expected ...``."""
        where = f"row {self.row}" + (f" (line {self.line})" if self.line is not None else "")
        if self.column is not None:
            where += f", column {self.column!r}"
            where += f", value {_short(self.value)!r}"
        return f"{where}: {self.message}"


@attrs.define(eq=False)
class ImportReport:
    """The outcome of one import.

    :ivar entity: the entity type imported.
    :ivar source: the file (or a description of the rows) imported.
    :ivar rows: data rows read.
    :ivar created: records created.
    :ivar updated: existing records updated (``on_duplicate="update"``).
    :ivar unchanged: duplicates whose values already matched the existing record.
    :ivar skipped: duplicates left alone (``on_duplicate="skip"``).
    :ivar invalid: rows refused (bad values, duplicates under ``"error"``, missing references,
        vetoes of hooks).
    :ivar errors: the problems of the first :data:`MAX_LISTED_ROWS` invalid rows.
    :ivar committed: whether the records were written (``False`` after an atomic failure, or
        when the caller's unit of work has yet to commit).
    :ivar rejects: the file the invalid rows were written to, if any.
    :ivar ignored_columns: columns of the file that were not imported.
    :ivar columns: ``{column: field}``: which field each imported column of the file fed
        (``{"E-mail Address": "email"}``), ``"id"`` for the id column.
    :ivar aliased_columns: those of :attr:`columns` matched by an alias of their field.
    :ivar seconds: wall time of the import.
    """

    entity: str
    source: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    invalid: int = 0
    errors: list[RowError] = attrs.field(factory=list)
    committed: bool = False
    rejects: str | None = None
    ignored_columns: list[str] = attrs.field(factory=list)
    columns: dict[str, str] = attrs.field(factory=dict)
    aliased_columns: dict[str, str] = attrs.field(factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No row was refused."""
        return self.invalid == 0

    @property
    def unlisted(self) -> int:
        """Invalid rows beyond those listed in :attr:`errors`."""
        listed = len({e.row for e in self.errors})
        return max(self.invalid - listed, 0)

    def add_error(self, error: RowError, *, new_row: bool) -> None:
        """Count an error; keep it if its row is among the first :data:`MAX_LISTED_ROWS`."""
        if new_row:
            self.invalid += 1
        if self.invalid <= MAX_LISTED_ROWS:
            self.errors.append(error)

    def summary(self) -> str:
        """One line: what was read and what happened to it."""
        parts = [f"{self.rows} row{'s' if self.rows != 1 else ''} read"]
        verb = "" if self.committed else " (not written)"
        parts.append(f"{self.created} created{verb if self.created else ''}")
        if self.updated:
            parts.append(f"{self.updated} updated{verb}")
        if self.unchanged:
            parts.append(f"{self.unchanged} unchanged")
        if self.skipped:
            parts.append(f"{self.skipped} duplicate{'s' if self.skipped != 1 else ''} skipped")
        if self.invalid:
            parts.append(f"{self.invalid} invalid")
        text = f"{self.entity} import from {self.source}: " + ", ".join(parts)
        if self.rejects and self.invalid:
            text += f"; invalid rows written to {self.rejects}"
        return text

    def matched_columns(self) -> str | None:
        """One line naming the columns matched by an alias of their field (``'E-mail Address'
        → email``), or ``None`` when there are none."""
        renamed = [f"{column!r} → {field}" for column, field in self.aliased_columns.items()]
        return f"columns matched: {', '.join(renamed)}" if renamed else None

    def error_lines(self) -> list[str]:
        """One line per listed error, then how many invalid rows were not listed."""
        lines = [e.describe() for e in self.errors]
        if self.unlisted:
            lines.append(f"... and {self.unlisted} more invalid row{'s' if self.unlisted != 1 else ''}")
        return lines

    def __repr__(self) -> str:
        return (
            f"<ImportReport {self.entity} rows={self.rows} created={self.created} updated={self.updated} "
            f"skipped={self.skipped} invalid={self.invalid} committed={self.committed}>"
        )


class ImportFailedError(ValidationError):
    """An atomic import found invalid rows, so it wrote nothing.

    :ivar report: the :class:`ImportReport`, listing the bad rows.
    """

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        first = report.errors[0].describe() if report.errors else "see the report"
        message = (
            f"{report.entity} import from {report.source} failed: {report.invalid} invalid "
            f"row{'s' if report.invalid != 1 else ''} of {report.rows}; nothing was written. "
            f"First: {first}. Correct the file, or pass --skip-invalid (skip_invalid=True) to "
            "import the valid rows and set the others aside"
        )
        super().__init__(message)
        self.entity = report.entity


def _short(value: Any, limit: int = 60) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value
