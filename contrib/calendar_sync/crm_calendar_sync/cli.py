"""``crm calendar ...``: iCalendar files in and out.

::

    crm calendar import FILE.ics [--user U]
    crm calendar export [--user U] [--from D --to D] [-o FILE.ics]
    crm calendar agenda [--user U] --from D --to D
    crm calendar account add NAME --url URL --login LOGIN [--user U]     (asks for the password)
    crm calendar account password ID                                     (asks for it)
    crm calendar account list [--user U]
    crm calendar sync [--user U]
    crm calendar conflicts [--user U]

Every command acts as ``--as USER`` (default: the system actor) in one unit of work, committed
only when the whole command succeeded.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from crmcore.cli import current_actor, current_app

from crm_calendar_sync import links
from crm_calendar_sync.carddav import CONTACT_GROUPS, sync_addressbook
from crm_calendar_sync.credentials import set_password
from crm_calendar_sync.exporter import export_calendar
from crm_calendar_sync.graph import sync_graph
from crm_calendar_sync.importer import import_calendar, resolve_user
from crm_calendar_sync.merge import GROUPS
from crm_calendar_sync.recurrence import occurrences
from crm_calendar_sync.sync import sync_account

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["calendar"]

_USER = click.option("--user", "username", default=None,
                     help="Whose calendar (a username); default the acting user (--as).")


@click.group(help="Calendars: iCalendar import and export of meetings, calls and tasks.")
def calendar() -> None:
    pass


@calendar.command("import", help="Import the events and tasks of an iCalendar (.ics) file.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_USER
def import_command(path: Path, username: str | None) -> None:
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        summary = import_calendar(uow, path, user=username)
        uow.commit()
    for line in summary.skipped:
        click.echo(line, err=True)
    click.echo(f"{path.name}: {summary.line()}")


def _window(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date] | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise click.UsageError("give both --from and --to (dates such as 2026-01-31), or neither")
    if end < start:
        raise click.UsageError(f"--to {end.isoformat()} is before --from {start.isoformat()}")
    return (start, end)


def _date(_: click.Context, __: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write it as YYYY-MM-DD") from None


_FROM = click.option("--from", "start", callback=_date, help="First day (YYYY-MM-DD).")
_TO = click.option("--to", "end", callback=_date, help="Last day (YYYY-MM-DD), included.")


@calendar.command("export", help="Write the calendar activities as an iCalendar file (stdout without -o).")
@_USER
@_FROM
@_TO
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
def export_command(username: str | None, start: dt.date | None, end: dt.date | None, output: Path | None) -> None:
    window = _window(start, end)
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        data = export_calendar(uow, user=resolve_user(uow, username), window=window)
        uow.commit()  # UIDs given to activities that had none
    if output is None:
        click.echo(data.decode(), nl=False)
    else:
        output.write_bytes(data)
        click.echo(f"{output}: {data.count(b'BEGIN:VEVENT') + data.count(b'BEGIN:VTODO')} events")


@calendar.command("agenda", help="List the occurrences of the calendar activities from --from to --to.")
@_USER
@_FROM
@_TO
def agenda_command(username: str | None, start: dt.date | None, end: dt.date | None) -> None:
    window = _window(start, end)
    if window is None:
        raise click.UsageError("give --from and --to (dates such as 2026-01-31)")
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        user = resolve_user(uow, username)
        where = {"owner_id": user.id} if user is not None else None
        found = occurrences(uow, window, where=where)
    zone = crm.registry.timezone or dt.UTC
    for item in found:
        if item.starts_at is not None:
            when = item.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        else:
            when = f"{item.start_date.isoformat()} all day" if item.start_date else "-"
        click.echo(f"{when}  {item.subject}  (activity {item.activity_id})")


@calendar.group(help="Calendar accounts: the CalDAV calendars of each user.")
def account() -> None:
    pass


@account.command("add", help="Add a CalDAV calendar account (or, with --carddav, a CardDAV address book); the "
                             "password is asked for and stored encrypted.")
@click.argument("name")
@click.option("--url", required=True, help="The calendar collection, e.g. https://dav.example.com/ann/work/.")
@click.option("--carddav", is_flag=True, help="The URL is a CardDAV address book, synchronised with the user's contacts.")
@click.option("--imap", is_flag=True, help="The URL is an IMAP mailbox (imap://host:port/INBOX) whose e-mails are archived.")
@click.option("--graph", is_flag=True, help="The URL is Microsoft Graph (https://graph.microsoft.com/v1.0); the password "
                                            "asked for is an access token.")
@click.option("--login", required=True, help="The login on the server.")
@click.option("--password", prompt=True, hide_input=True, help="The password (asked for when not given).")
@_USER
def account_add(name: str, url: str, carddav: bool, imap: bool, graph: bool, login: str, password: str,
                username: str | None) -> None:
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        user = resolve_user(uow, username)
        user_id = user.id if user is not None else None
        kind = "graph" if graph else "imap" if imap else "carddav" if carddav else "caldav"
        made = uow.create("calendar_account", name=name, kind=kind, url=url, username=login, user_id=user_id,
                          owner_id=user_id)
        set_password(uow, made, password)
        uow.commit()
    click.echo(f"calendar account {made.id} {name!r}: {url} as {login}")


@account.command("password", help="Change the password of a calendar account (asked for, stored encrypted).")
@click.argument("account_id", type=int)
@click.option("--password", prompt=True, hide_input=True, help="The password (asked for when not given).")
def account_password_command(account_id: int, password: str) -> None:
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        set_password(uow, account_id, password)
        uow.commit()
    click.echo(f"calendar account {account_id}: password changed")


@account.command("list", help="List the calendar accounts (never their passwords).")
@_USER
def account_list(username: str | None) -> None:
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        user = resolve_user(uow, username)
        query = uow.query("calendar_account").order_by("id")
        found = (query.where(user_id=user.id) if user is not None else query).all()
    for item in found:
        click.echo(f"{item.id}  {item.name}  {item.kind}  {item.get('url') or '-'}  {item.get('username') or '-'}")


def _accounts(uow: UnitOfWork, username: str | None) -> list[Record]:
    user = resolve_user(uow, username)
    query = uow.query("calendar_account").where(("kind", "in", ["caldav", "carddav", "graph"])).order_by("id")
    return (query.where(user_id=user.id) if user is not None else query).all()


@calendar.command("sync", help="Synchronise the CalDAV calendars and CardDAV address books (of --user, or every "
                               "one) both ways, and read the changes of Graph accounts.")
@_USER
def sync_command(username: str | None) -> None:
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        accounts = _accounts(uow, username)
    if not accounts:
        raise click.UsageError("no CalDAV or CardDAV account; add one with crm calendar account add")
    for item in accounts:
        with crm.unit_of_work(current_actor()) as uow:
            account = uow.get("calendar_account", item.id)
            kind = account.get("kind")
            summary: Any = (sync_graph(uow, account) if kind == "graph" else
                            sync_addressbook(uow, account) if kind == "carddav" else sync_account(uow, account))
            uow.commit()
        click.echo(f"{item.name}: {summary.line()}")


@calendar.command("conflicts", help="List the fields changed on both sides to different values.")
@_USER
def conflicts_command(username: str | None) -> None:
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        accounts = {a.id: a.name for a in _accounts(uow, username)}
        rows = [row for row in links.conflicts(uow.raw(links.PLUGIN_NAME)) if row["account_id"] in accounts]
    for row in rows:
        names = GROUPS.get(row["field"]) or CONTACT_GROUPS.get(row["field"]) or (row["field"],)
        here = ", ".join(f"{n}={(row['local'] or {}).get(n)!r}" for n in names)
        there = ", ".join(f"{n}={(row['remote'] or {}).get(n)!r}" for n in names)
        what = f"activity {row['activity_id']}" if row["activity_id"] is not None else f"card {row['uid']}"
        click.echo(f"{accounts[row['account_id']]}: {what} {row['field']}: kept {here}; "
                   f"the server has {there}")
