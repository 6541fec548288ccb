"""``crm documents ...``: documents from the terminal.

::

    crm --as ada documents add opportunity 42 "Service contract" contract.pdf \\
        --kind contract --valid-from 2026-01-01 --valid-until 2026-12-31 --notice-days 90
    crm --as ada documents add-version 7 contract-signed.pdf [--comment "signed"]
    crm --as ada documents list [--title TEXT] [--kind contract] [--record opportunity:42]
        [--account 3] [--ending-before 2026-12-31] [--notice-before 2026-10-31] [--valid-on DAY]
    crm --as ada documents search "maintenance printers" [--kind contract]
    crm --as ada documents get 7 [--version 2] [--output FILE]
    crm --as ada documents versions 7

Every command acts as ``--as USER`` in one unit of work; ``--json`` prints JSON.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click
from crmcore.cli import current_actor, current_app, dump_record, echo_json
from crmcore.errors import ValidationError

from crm_documents import documents as docs
from crm_documents import search as searching
from crm_documents.entities import KINDS

__all__ = ["documents"]

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
_DAY = click.DateTime(formats=["%Y-%m-%d"])


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


def _record(text: str) -> tuple[str, int]:
    entity, _, record_id = text.partition(":")
    if not record_id.isdigit():
        raise ValidationError(
            {"record": [f"give a record as ENTITY:ID (opportunity:42), got {text!r}"]},
            entity="document",
        )
    return entity, int(record_id)


def _line(row: dict[str, Any], *, versions: bool = True) -> str:
    until = row.get("valid_until")
    dates = f"  until {until}" if until else ""
    if row.get("notice_date"):
        dates += f" (notice by {row['notice_date']})"
    return (
        f"{row['id']:>5}  {row['title']:<32} {row.get('kind') or '-':<11} "
        f"{row.get('record_entity') or '-'}:{row.get('record_id') or '-'}"
        + (f"  v{row.get('version_count') or 0}" if versions else "")
        + dates
    )


@click.group("documents")
def documents() -> None:
    """Documents attached to records: contracts, offers, work reports."""


@documents.command("add")
@click.argument("entity")
@click.argument("record_id", type=int)
@click.argument("title")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(KINDS), default="other", show_default=True)
@click.option("--valid-from", type=_DAY, help="A contract's first day (YYYY-MM-DD).")
@click.option("--valid-until", type=_DAY, help="A contract's last day.")
@click.option("--notice-days", type=click.IntRange(0, 36500), help="The notice period in days.")
@_JSON
def add_command(
    entity: str,
    record_id: int,
    title: str,
    file: Path | None,
    kind: str,
    valid_from: dt.datetime | None,
    valid_until: dt.datetime | None,
    notice_days: int | None,
    as_json: bool,
) -> None:
    """Attach a document TITLE (with FILE as its first version) to record ENTITY RECORD_ID."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        document = docs.attach(
            uow,
            (entity, record_id),
            title,
            file,
            kind=kind,
            valid_from=_day(valid_from),
            valid_until=_day(valid_until),
            notice_days=notice_days,
        )
        shown = dump_record(crm, document)
        uow.commit()
    if as_json:
        echo_json(shown)
    else:
        click.echo(f"document {document.id} {title!r} attached to {entity} {record_id}")


@documents.command("add-version")
@click.argument("document_id", type=int)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--comment", help="What changed.")
def add_version_command(document_id: int, file: Path, comment: str | None) -> None:
    """Add FILE as the next version of document DOCUMENT_ID."""
    with current_app().unit_of_work(current_actor()) as uow:
        version = docs.add_version(uow, document_id, file, comment=comment)
        uow.commit()
    click.echo(
        f"document {document_id} version {version.values['number']} "
        f"({version.values['size']} bytes, {version.values['media_type']})"
    )


@documents.command("list")
@click.option("--title", help="Titles containing this text.")
@click.option("--kind", type=click.Choice(KINDS))
@click.option("--record", help="Documents of one record: ENTITY:ID.")
@click.option("--account", type=int, help="Documents linked to this account.")
@click.option("--ending-before", type=_DAY)
@click.option("--ending-after", type=_DAY)
@click.option("--notice-before", type=_DAY)
@click.option("--valid-on", type=_DAY)
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@_JSON
def list_command(
    title: str | None,
    kind: str | None,
    record: str | None,
    account: int | None,
    ending_before: dt.datetime | None,
    ending_after: dt.datetime | None,
    notice_before: dt.datetime | None,
    valid_on: dt.datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """The documents you may read, by end date then title."""
    with current_app().unit_of_work(current_actor()) as uow:
        rows = docs.find(
            uow,
            title=title,
            kind=kind,
            record=_record(record) if record else None,
            account_id=account,
            ending_before=_day(ending_before),
            ending_after=_day(ending_after),
            notice_before=_day(notice_before),
            valid_on=_day(valid_on),
            limit=limit,
        )
    if as_json:
        echo_json(
            [
                {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in r.items()}
                for r in rows
            ]
        )
        return
    for row in rows:
        click.echo(_line(row))


@documents.command("search")
@click.argument("text")
@click.option("--kind", type=click.Choice(KINDS))
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
def search_command(text: str, kind: str | None, limit: int) -> None:
    """Documents whose title or text (PDF and text files) holds every word of TEXT."""
    where = {"kind": kind} if kind else {}
    with current_app().unit_of_work(current_actor()) as uow:
        hits = searching.search(uow, text, limit, **where)
    for hit in hits:
        click.echo(_line(hit.document.values, versions=False))


@documents.command("get")
@click.argument("document_id", type=int)
@click.option("--version", "number", type=int, help="A version number (default: the latest).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the content to this file (default: print the document).",
)
@_JSON
def get_command(document_id: int, number: int | None, output: Path | None, as_json: bool) -> None:
    """Show document DOCUMENT_ID, or write a version's content with --output."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        document = uow.get("document", document_id)
        shown = dump_record(crm, document)
        shown.pop("content_text", None)
        content = docs.content(uow, document, number) if output or number else None
    if output is not None and content is not None:
        output.write_bytes(content[1])
        click.echo(
            f"wrote version {content[0].values['number']} of document {document_id} "
            f"to {output} ({len(content[1])} bytes)"
        )
        return
    if as_json:
        echo_json(shown)
        return
    for key, value in shown.items():
        if value not in (None, ""):
            click.echo(f"{key}: {value}")


@documents.command("versions")
@click.argument("document_id", type=int)
@_JSON
def versions_command(document_id: int, as_json: bool) -> None:
    """The versions of document DOCUMENT_ID."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        found = docs.versions(uow, document_id)
        shown = [dump_record(crm, v) for v in found]
    if as_json:
        echo_json(shown)
        return
    for v in shown:
        click.echo(
            f"v{v['number']}  {v['created_at']}  {v['size']:>9} bytes  {v['media_type']:<24} "
            f"{v.get('filename') or '-'}  sha256:{v['content_hash'][:12]}"
        )
