"""``crm list`` and ``crm report``: the query API on the command line.

Both take text filters (``--where "amount>50000"``, see :func:`crmcore.query.parse_where`),
repeatable and AND-ed, and run as :func:`crmcore.cli.current_actor`, so they see what that
actor may read. They are contributed through ``crm_cli_commands`` like a plugin's commands.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

from crmcore.cli import current_actor, current_app, dump_record, echo_json
from crmcore.errors import ValidationError
from crmcore.fields import Decimal, Integer, Json, MoneyType, MultiChoice, Reference, Text
from crmcore.hookspecs import hookimpl
from crmcore.money import Money
from crmcore.plugins import PluginInfo
from crmcore.query import parse_where

if TYPE_CHECKING:
    from crmcore import EntityType
    from crmcore.query import Query
    from crmcore.records import Record

PLUGIN = PluginInfo(name="core.query", title="Query commands", description="crm list and crm report.")

#: Records ``crm list`` prints when ``--limit`` is not given.
DEFAULT_LIMIT = 100
_COLUMNS = 6  # id and this many fields minus one, when --fields is not given
_CELL = 40  # longest cell text in a table
_NUMERIC = (Integer, Decimal, MoneyType)


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    return [list_records, report]


_WHERE = click.option(
    "--where", "where", multiple=True, metavar="EXPR",
    help="A filter such as 'amount>50000', 'stage=won', 'email~acme.test', 'stage in won,lost', "
         "'owner_id is null', 'amount between 10..20' (repeatable; all must hold).",
)


@click.command("list")
@click.argument("entity")
@_WHERE
@click.option("--sort", "sort", multiple=True, metavar="FIELD|-FIELD",
              help="Sort by FIELD, descending with a leading '-' (repeatable; id breaks ties).")
@click.option("--limit", type=click.IntRange(min=0), default=DEFAULT_LIMIT, show_default=True,
              help="Print at most N records; 0 prints all.")
@click.option("--fields", "fields", metavar="A,B,...",
              help="The fields to show, in order [default: id, the title and the first few filled fields].")
@click.option("--tag", "tags", multiple=True, metavar="NAME",
              help="Only records carrying tag NAME, shared or your own (repeatable; all must hold).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of records.")
def list_records(
    entity: str, where: tuple[str, ...], sort: tuple[str, ...], limit: int, fields: str | None, tags: tuple[str, ...],
    as_json: bool,
) -> None:
    """List the records of ENTITY that match every --where and --tag, as a table or JSON."""
    crm = current_app()
    etype = crm.registry.entity(entity)
    names = _field_names(etype, fields) if fields else None
    with crm.unit_of_work(current_actor()) as uow:
        query = _filtered(uow.query(entity), where).where(*(("tags", "=", tag) for tag in tags)).order_by(*sort)
        if as_json:
            _echo_json_records(crm, query.limit(limit or None), names)
            return
        records = query.limit(limit + 1 if limit else None).all()
    more = bool(limit) and len(records) > limit
    records = records[:limit] if limit else records
    if not records:
        click.echo(f"no {etype.plural.lower()} found")
        return
    shown = [etype.field(n) for n in names or _default_columns(etype, records)]
    rows = [[_cell(f.type.format(r.values.get(f.name)) if r.values.get(f.name) is not None else "") for f in shown] for r in records]
    _echo_table([f.name for f in shown], rows, [isinstance(f.type, _NUMERIC) for f in shown])
    if more:
        click.echo(
            f"showing the first {limit} {etype.plural.lower()}; narrow with --where or raise --limit (0 for all)",
            err=True,
        )


@click.command()
@click.argument("entity")
@click.option("--group-by", "group_by", multiple=True, metavar="FIELD", help="Group by FIELD (repeatable).")
@click.option("--sum", "sums", multiple=True, metavar="FIELD", help="Add up FIELD per group (repeatable).")
@click.option("--avg", "avgs", multiple=True, metavar="FIELD", help="Average of FIELD per group (repeatable).")
@click.option("--min", "mins", multiple=True, metavar="FIELD", help="Least FIELD per group (repeatable).")
@click.option("--max", "maxs", multiple=True, metavar="FIELD", help="Greatest FIELD per group (repeatable).")
@_WHERE
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of rows.")
def report(
    entity: str, group_by: tuple[str, ...], sums: tuple[str, ...], avgs: tuple[str, ...], mins: tuple[str, ...],
    maxs: tuple[str, ...], where: tuple[str, ...], as_json: bool,
) -> None:
    """Count the records of ENTITY per group, with sums, averages, minimums and maximums.

    Money is never added across currencies: a group holding several currencies gets one row
    per currency, and records without an amount get a row of their own.
    """
    crm = current_app()
    etype = crm.registry.entity(entity)
    with crm.unit_of_work(current_actor()) as uow:
        rows = _filtered(uow.query(entity), where).aggregate(
            group_by=list(group_by), sum=list(sums), avg=list(avgs), min=list(mins), max=list(maxs),
        )
    measures = [f"{fn}_{name}" for fn, names in (("sum", sums), ("avg", avgs), ("min", mins), ("max", maxs))
                for name in names]
    currencies = [key for key in (rows[0] if rows else {}) if key.endswith("_currency") and key not in group_by]
    columns = list(dict.fromkeys([*group_by, *currencies, "count", *measures]))
    if as_json:
        echo_json([{key: _dump(etype, key, value) for key, value in row.items()} for row in rows])
        return
    if not rows:
        click.echo(f"no {etype.plural.lower()} found")
        return
    groups = {*group_by, *currencies}
    table = [[_cell(_text(etype, key, row.get(key), group=key in groups)) for key in columns] for row in rows]
    numeric = [key == "count" or key not in groups and _is_numeric(etype, key) for key in columns]
    _echo_table(columns, table, numeric)


# -- helpers ------------------------------------------------------------------------------------


def _filtered(query: Query, where: Iterable[str]) -> Query:
    return query.where(*(parse_where(text) for text in where))


def _field_names(etype: EntityType, text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValidationError(f"--fields takes field names separated by commas, such as 'id,name', got {text!r}")
    for name in names:
        etype.field(name)  # an unknown name raises NotFoundError listing the fields
    return names


def _default_columns(etype: EntityType, records: Sequence[Record]) -> list[str]:
    """``id``, the title field, then the first declared fields that read well in one line and
    that some of the listed records fill."""
    names = ["id"]
    if etype.title_field != "id":
        names.append(etype.title_field)
    for field in etype.fields:
        if len(names) >= _COLUMNS:
            break
        if field.name in names or isinstance(field.type, (Text, Json, MultiChoice, Reference)):
            continue
        if any(record.values.get(field.name) is not None for record in records):
            names.append(field.name)
    return names


def _cell(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def _echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> None:
    widths = [max(len(c) for c in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        cells = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(row, widths, right, strict=True)]
        click.echo("  ".join(cells).rstrip())


def _echo_json_records(crm: Any, records: Iterable[Record], names: list[str] | None) -> None:
    """A JSON array written record by record, so any number of records fits in memory."""
    click.echo("[", nl=False)
    first = True
    for record in records:
        data = dump_record(crm, record)
        if names is not None:
            data = {name: data.get(name) for name in names}
        click.echo(("\n  " if first else ",\n  ") + json.dumps(data, ensure_ascii=False, default=str), nl=False)
        first = False
    click.echo("\n]" if not first else "]")


def _base_field(etype: EntityType, key: str) -> Any:
    """The field behind a report column (``sum_amount`` → amount), or ``None``."""
    if etype.has_field(key):
        return etype.field(key)
    prefix, _, name = key.partition("_")
    if prefix in ("sum", "avg", "min", "max") and etype.has_field(name):
        return etype.field(name)
    return None


def _is_numeric(etype: EntityType, key: str) -> bool:
    field = _base_field(etype, key)
    return field is not None and (isinstance(field.type, _NUMERIC) or key.startswith("avg_"))


def _text(etype: EntityType, key: str, value: Any, *, group: bool) -> str:
    if value is None:
        return "(none)" if group else ""
    if isinstance(value, Money):
        return f"{value.amount} {value.currency}"
    field = _base_field(etype, key)
    if field is None or key.startswith("avg_"):
        return str(value)
    return field.type.format(value)


def _dump(etype: EntityType, key: str, value: Any) -> Any:
    if value is None or isinstance(value, (int, str)) and not isinstance(value, bool):
        return value
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    field = _base_field(etype, key)
    if field is None or key.startswith("avg_"):
        return str(value)
    return field.type.dump(value)
