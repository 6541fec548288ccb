"""Bulk import and export of records: CSV, JSON arrays and JSON lines.

Import a file in one unit of work::

    from crmcore.transfer import import_file

    report = import_file(crm, "lead", "leads.csv", actor="ada",
                         dedupe_on=["email"], on_duplicate="update")
    print(report.summary())

and export the records an actor may read::

    from crmcore.transfer import export

    export(crm, "opportunity", "big.csv", where=["amount>50000"], actor="ada")

An import validates every cell with the registry's field types, finds duplicates inside the
file and against the database, checks references, runs the same hooks and writes the same
audit entries as single creates, and sends the same ``record-created`` signals after the
commit, while inserting in batches (see :mod:`crmcore.transfer.importer`). It is atomic unless
``skip_invalid=True``. An export writes ``id`` and every declared field and imports back to
identical records (see :mod:`crmcore.transfer.exporter`). ``crm import`` and ``crm export``
are the command-line faces of these two functions.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any

from crmcore.actors import Actor
from crmcore.errors import ValidationError
from crmcore.transfer.exporter import ExportReport, export_to
from crmcore.transfer.importer import DUPLICATE_POLICIES, Importer, ImportOptions, require_keep_ids
from crmcore.transfer.report import MAX_LISTED_ROWS, ImportFailedError, ImportReport, RowError
from crmcore.transfer.sources import FORMATS, format_of, iter_objects, open_source

if TYPE_CHECKING:
    from crmcore.app import Crm
    from crmcore.storage.uow import UnitOfWork

__all__ = [
    "DUPLICATE_POLICIES",
    "FORMATS",
    "MAX_LISTED_ROWS",
    "ExportReport",
    "ImportFailedError",
    "ImportOptions",
    "ImportReport",
    "Importer",
    "RowError",
    "export",
    "import_file",
    "import_rows",
    "require_keep_ids",
]


def import_file(
    crm: Crm,
    entity: str,
    path: str | os.PathLike[str],
    *,
    actor: Actor | str | None = None,
    format: str | None = None,
    encoding: str | None = None,
    delimiter: str = ",",
    mapping: Mapping[str, str | None] | None = None,
    skip_invalid: bool = False,
    rejects: str | os.PathLike[str] | None = None,
    dedupe_on: str | Sequence[str] | None = None,
    on_duplicate: str | None = None,
    keep_ids: bool = False,
    batch_size: int = 5000,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import the rows of a file into *entity*, in one unit of work that this call commits.

    :param actor: who imports (an :class:`Actor`, a username, or ``None`` for the system).
    :param format: ``csv``, ``json`` (an array of objects) or ``jsonl``; default: from the
        file's extension, else CSV.
    :param encoding: the file's encoding; default UTF-8, with or without a byte order mark.
    :param delimiter: the CSV separator.
    :param mapping: ``{column: field}`` for columns whose names match no field's name or label;
        ``{column: ""}`` leaves a column out.
    :param skip_invalid: write the valid rows even when others are invalid.
    :param rejects: write the invalid rows, with an ``error`` column, to this file.
    :param dedupe_on: the fields that identify a record (``"email"`` or ``["first_name",
        "last_name"]``; ``"id"`` for record ids).
    :param on_duplicate: ``"error"`` (default), ``"skip"`` or ``"update"``.
    :param keep_ids: new records take the ids of the file's ``id`` column.
    :param batch_size: rows per batch.
    :param progress: called with (bytes read, total bytes) after each batch.
    :returns: the :class:`ImportReport` (``committed`` is ``True``).
    :raises ImportFailedError: when a row is invalid and *skip_invalid* is false; nothing was
        written and ``error.report`` lists the bad rows.
    :raises ValidationError: for a file that cannot be read (encoding, unknown or missing
        columns, malformed JSON), naming the file and where.
    """
    options = ImportOptions(
        mapping=dict(mapping or {}), skip_invalid=skip_invalid, rejects=rejects,
        dedupe_on=dedupe_on, on_duplicate=on_duplicate, keep_ids=keep_ids,  # type: ignore[arg-type]
        batch_size=batch_size, progress=progress,
    )
    name = os.fspath(path)
    with open_source(name, format, encoding=encoding, delimiter=delimiter) as source, crm.unit_of_work(actor) as uow:
        importer = Importer(uow, entity, options, source=name)
        importer.open_rejects(source.columns)
        report = importer.run(source, columns=source.columns, position=source.position, total=source.total_bytes)
        uow.commit()
    report.committed = True
    return report


def import_rows(
    uow: UnitOfWork,
    entity: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    source: str = "rows",
    **options: Any,
) -> ImportReport:
    """Import Python mappings (``{field or label: value}``) into *entity* within *uow*.

    The caller commits *uow* (or rolls it back after an :class:`ImportFailedError`). The
    keyword options are those of :class:`ImportOptions`.
    """
    importer = Importer(uow, entity, ImportOptions(**options), source=source)
    importer.open_rejects(None)
    return importer.run(iter_objects(rows))


def export(
    crm: Crm,
    entity: str,
    destination: str | os.PathLike[str] | IO[str] | None = None,
    *,
    actor: Actor | str | None = None,
    format: str | None = None,
    where: Iterable[Any] = (),
    keep_formulas: bool = False,
) -> ExportReport:
    """Export the records of *entity* that *actor* may read.

    :param destination: a path, an open text stream, or ``None``/``"-"`` for standard output.
    :param format: ``csv``, ``json`` or ``jsonl``; default: from the path's extension, else CSV.
    :param where: filters as for :meth:`crmcore.query.Query.where`; text filters such as
        ``"amount>50000"`` are read with :func:`crmcore.query.parse_where`.
    :param keep_formulas: write CSV text cells that start like a spreadsheet formula (``=``,
        ``+``, ``-``, ``@``, tab, carriage return) as they are; by default they get a leading
        ``'`` that the import takes off again.
    :returns: the :class:`ExportReport` (how many records were written).
    """
    path = None if destination is None or destination == "-" or hasattr(destination, "write") else os.fspath(destination)  # type: ignore[arg-type]
    fmt = format_of(path or "", format)
    with crm.unit_of_work(actor) as uow, _open_out(destination, path) as out:
        return export_to(uow, entity, out, fmt=fmt, where=where, destination=path or "standard output",
                         keep_formulas=keep_formulas)


@contextlib.contextmanager
def _open_out(destination: Any, path: str | None) -> Iterator[IO[str]]:
    if path is not None:
        try:
            handle = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ValidationError(f"cannot write {path!r}: {exc.strerror}; check that its folder exists and "
                                  "that you may write there") from None
        with handle:
            yield handle
    elif destination is None or destination == "-":
        yield sys.stdout
    else:
        yield destination
