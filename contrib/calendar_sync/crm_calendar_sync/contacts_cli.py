"""``crm contacts ...``: people in and out as vCard files and contact CSV exports.

::

    crm contacts import FILE.vcf|FILE.csv [--user U]
    crm contacts export [-o FILE.vcf] [--version 2.1|3.0|4.0]

A vCard file is keyed on UID; CSV exports of Outlook and Google need no column mapping. People
are matched by UID, then e-mail, then phone, and never duplicated.
"""

from __future__ import annotations

from pathlib import Path

import click
from crmcore.cli import current_actor, current_app

from crm_calendar_sync.contacts import (
    apply_cards,
    contact_columns,
    export_vcards,
    read_contact_csv,
    read_vcards,
)
from crm_calendar_sync.importer import resolve_user

__all__ = ["contacts"]


@click.group(help="Contacts: vCard files (2.1, 3.0 and 4.0) and the contact CSV exports of Outlook and Google.")
def contacts() -> None:
    pass


@contacts.command("import", help="Import a vCard (.vcf) file or an Outlook or Google contact export (.csv).")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "username", default=None, help="Who owns the contacts made (a username).")
def import_command(path: Path, username: str | None) -> None:
    crm = current_app()
    data = path.read_bytes()
    with crm.unit_of_work(current_actor()) as uow:
        owner = resolve_user(uow, username)
        if path.suffix.lower() == ".csv":
            cards, skipped = read_contact_csv(data, contact_columns(uow), name=path.name)
        else:
            cards, skipped = read_vcards(data, name=path.name)
        summary = apply_cards(uow, cards, owner_id=owner.id if owner is not None else None, skipped=skipped)
        uow.commit()
    for line in summary.skipped:
        click.echo(line, err=True)
    click.echo(f"{path.name}: {summary.line()}")


@contacts.command("export", help="Write the contacts as a vCard file (stdout without -o).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@click.option("--version", "version", type=click.Choice(["2.1", "3.0", "4.0"]), default="3.0", show_default=True)
def export_command(output: Path | None, version: str) -> None:
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        text = export_vcards(uow, version=version)
        uow.commit()  # UIDs given to contacts that had none
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8", newline="")
        click.echo(f"{output}: {text.count('BEGIN:VCARD')} contacts")
