"""``crm import`` and ``crm export``: bulk import and export on the command line.

Both are thin faces of :mod:`crmcore.transfer` and act as :func:`crmcore.cli.current_actor`.
``crm import`` shows a progress bar on stderr when it is a terminal (nothing when piped), prints
a summary line, and on an atomic failure lists the bad rows on stderr and exits with status 1
without writing anything. ``crm export`` writes to standard output unless ``-o FILE`` is given.
"""

from __future__ import annotations

import os

import click

from crmcore.cli import current_actor, current_app, progress
from crmcore.errors import ValidationError
from crmcore.hookspecs import hookimpl
from crmcore.plugins import PluginInfo
from crmcore.transfer import (
    DUPLICATE_POLICIES,
    FORMATS,
    ImportFailedError,
    export,
    import_file,
    require_keep_ids,
)

PLUGIN = PluginInfo(name="core.transfer", title="Import and export", description="crm import and crm export.")


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    return [import_command, export_command]


def _mapping(entries: tuple[str, ...]) -> dict[str, str | None]:
    mapping: dict[str, str | None] = {}
    for entry in entries:
        column, sep, field = entry.partition("=")
        if not sep:
            raise ValidationError(
                f"--map {entry!r}: expected COLUMN=FIELD, such as 'E-mail Address=email' (or 'COLUMN=' to ignore it)"
            )
        mapping[column.strip()] = field.strip() or None
    return mapping


@click.command("import")
@click.argument("entity")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False),
              help="csv, json (an array of objects) or jsonl [default: from the extension, else csv].")
@click.option("--map", "maps", multiple=True, metavar="COLUMN=FIELD",
              help="Feed COLUMN to FIELD; 'COLUMN=' ignores the column (repeatable).")
@click.option("--skip-invalid", is_flag=True,
              help="Write the valid rows and set the invalid ones aside [default: write nothing if any row is invalid].")
@click.option("--rejects", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the invalid rows here, with an 'error' column.")
@click.option("--dedupe-on", "dedupe_on", metavar="FIELD,...",
              help="Fields that identify a record, inside the file and in the database (e.g. email; id for record ids).")
@click.option("--on-duplicate", type=click.Choice(DUPLICATE_POLICIES),
              help="What a duplicate does: error (the row is invalid), skip, or update the existing record [default: error].")
@click.option("--encoding", metavar="ENC", help="The file's encoding, e.g. cp1252 or latin-1 [default: UTF-8, with or without BOM].")
@click.option("--delimiter", default=",", show_default=True, help="The CSV separator.")
@click.option("--keep-ids", is_flag=True,
              help="New records take the ids of the file's id column (the system actor and administrators only).")
@click.option("--batch-size", type=click.IntRange(min=1), default=5000, show_default=True, help="Rows per batch.")
@click.pass_context
def import_command(
    ctx: click.Context, entity: str, file: str, fmt: str | None, maps: tuple[str, ...], skip_invalid: bool,
    rejects: str | None, dedupe_on: str | None, on_duplicate: str | None, encoding: str | None,
    delimiter: str, keep_ids: bool, batch_size: int,
) -> None:
    """Import the rows of FILE as ENTITY records."""
    crm = current_app()
    actor = current_actor()
    mapping = _mapping(maps)
    if keep_ids:  # refused before the file is opened
        with crm.unit_of_work(actor) as uow:
            require_keep_ids(uow, entity)
    try:
        size = os.path.getsize(file)
    except OSError:
        size = 0
    failure: ImportFailedError | None = None
    with progress(length=size or 1, label=f"importing {entity}") as bar:
        done = 0

        def advance(position: int, total: int) -> None:
            nonlocal done
            if position > done:
                bar.update(position - done)
                done = position

        try:
            report = import_file(
                crm, entity, file, actor=actor, format=fmt, encoding=encoding, delimiter=delimiter,
                mapping=mapping, skip_invalid=skip_invalid, rejects=rejects, dedupe_on=dedupe_on,
                on_duplicate=on_duplicate, keep_ids=keep_ids, batch_size=batch_size, progress=advance,
            )
        except ImportFailedError as exc:
            failure = exc
    if failure is not None:
        report = failure.report
        for line in report.error_lines():
            click.echo(line, err=True)
        if report.rejects:
            click.echo(f"invalid rows written to {report.rejects}", err=True)
        click.echo(
            f"error: {report.invalid} invalid row{'s' if report.invalid != 1 else ''} of {report.rows} in {file}; "
            "nothing was imported. Correct the file, or use --skip-invalid to import the valid rows",
            err=True,
        )
        ctx.exit(1)
    for line in report.error_lines():
        click.echo(line, err=True)
    matched = report.matched_columns()
    if matched:
        click.echo(matched, err=True)
    if report.ignored_columns:
        ignored = report.ignored_columns
        more = f" and {len(ignored) - 10} more" if len(ignored) > 10 else ""
        click.echo(f"columns not imported: {', '.join(ignored[:10])}{more}", err=True)
    click.echo(report.summary())


@click.command("export")
@click.argument("entity")
@click.option("--format", "fmt", type=click.Choice(FORMATS, case_sensitive=False),
              help="csv, json (an array of objects) or jsonl [default: from the -o extension, else csv].")
@click.option("--where", "where", multiple=True, metavar="EXPR",
              help="A filter such as 'amount>50000' or 'stage=won', as for crm list (repeatable; all must hold).")
@click.option("-o", "--output", default="-", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True),
              help="Write to FILE [default: standard output].")
@click.option("--keep-formulas", is_flag=True,
              help="Write CSV text cells starting with =, +, -, @, tab or carriage return as they are "
                   "[default: with a leading ' so that a spreadsheet does not run them; import takes it off].")
def export_command(entity: str, fmt: str | None, where: tuple[str, ...], output: str, keep_formulas: bool) -> None:
    """Export the ENTITY records you may read: id and every field, in a file that imports back."""
    report = export(current_app(), entity, output, actor=current_actor(), format=fmt, where=where,
                    keep_formulas=keep_formulas)
    click.echo(report.summary(), err=output == "-")
