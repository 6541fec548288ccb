"""``crm mail ...``: the message archive.

::

    crm mail import FILE.eml|FILE.mbox [--user U]
    crm mail fetch [--user U]

E-mails are archived once per Message-ID, as activities on the timelines of the contacts and
accounts they involve; ``fetch`` reads the new messages of each IMAP account (added with
``crm calendar account add NAME --imap --url imap://host:port/INBOX --login L``).
"""

from __future__ import annotations

from pathlib import Path

import click
from crmcore.cli import current_actor, current_app

from crm_calendar_sync.archive import archive_messages, fetch_imap, read_messages
from crm_calendar_sync.importer import resolve_user

__all__ = ["mail"]


@click.group(help="The message archive: e-mails from .eml and .mbox files and IMAP mailboxes, on timelines.")
def mail() -> None:
    pass


@mail.command("import", help="Archive the e-mails of an .eml or .mbox file.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "username", default=None, help="Who owns the activities made (a username).")
def import_command(path: Path, username: str | None) -> None:
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        owner = resolve_user(uow, username)
        messages, skipped = read_messages(path)
        summary = archive_messages(uow, messages, owner=owner, skipped=skipped)
        uow.commit()
    for line in summary.skipped:
        click.echo(line, err=True)
    click.echo(f"{path.name}: {summary.line()}")


@mail.command("fetch", help="Archive the new e-mails of the IMAP accounts (of --user, or every one).")
@click.option("--user", "username", default=None, help="Whose accounts (a username).")
def fetch_command(username: str | None) -> None:
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        user = resolve_user(uow, username)
        query = uow.query("calendar_account").where(kind="imap").order_by("id")
        accounts = (query.where(user_id=user.id) if user is not None else query).all()
    if not accounts:
        raise click.UsageError("no IMAP account; add one with crm calendar account add NAME --imap --url imap://host/INBOX")
    for item in accounts:
        with crm.unit_of_work(current_actor()) as uow:
            summary = fetch_imap(uow, uow.get("calendar_account", item.id))
            uow.commit()
        click.echo(f"{item.name}: {summary.line()}")
