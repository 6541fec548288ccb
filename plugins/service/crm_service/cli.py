"""``crm service ...``: the installed base, warranties, contracts, entitlement, service orders,
planned service, the call center lookup and the leakage report.

::

    crm service units [--account 7] [--serial SN-1]
    crm service units import units.csv
    crm service unit SN-1                 (the unit, its components and its history)
    crm service contracts [--account 7] [--ending 30]
    crm service contracts sweep [--today 2026-03-02]
    crm service entitlement SN-1 [--date 2026-03-02] [--type labour]

Every command acts as ``--as USER`` (default: the system actor) in one unit of work; ``--json``
prints JSON instead of text.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click
from crmcore.cli import current_actor, current_app, dump_record, echo_json

from crm_service import contracts, entitlement, units, warranty

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["service"]

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _unit_line(uow: UnitOfWork, row: dict[str, Any]) -> str:
    parts = [f"{row['id']:>5}  {row['serial_number']:<20} {row['product_code']:<12}"]
    parts.append(row.get("product_name") or "")
    if row.get("account_id.name"):
        parts.append(f"@ {row['account_id.name']}")
    parts.append(f"[{row['status']}]")
    return " ".join(p for p in parts if p)


@click.group("service")
def service() -> None:
    """Field service: installed base, warranties, contracts, orders, planned service."""


@service.group("units", invoke_without_command=True)
@click.option("--account", "account_id", type=int, help="Only the units of this account id.")
@click.option("--product", help="Only the units of this product code.")
@click.option("--limit", type=int, default=100, show_default=True)
@_JSON
@click.pass_context
def units_group(
    ctx: click.Context, account_id: int | None, product: str | None, limit: int, as_json: bool
) -> None:
    """List units of the installed base (or import them: ``units import FILE``)."""
    if ctx.invoked_subcommand is not None:
        return
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        select = uow.select(
            "installed_unit",
            ("id", "serial_number", "product_code", "product_name", "status", "account_id.name"),
        )
        if account_id is not None:
            select = select.where(account_id=account_id)
        if product:
            select = select.where(product_code=product)
        rows = select.order_by("id").limit(limit).all()
        if as_json:
            echo_json(rows)
            return
        for row in rows:
            click.echo(_unit_line(uow, row))
        if not rows:
            click.echo("no units")


@units_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows, report the others.")
@click.option("--rejects", type=click.Path(dir_okay=False), help="Write refused rows here.")
def units_import(path: str, skip_invalid: bool, rejects: str | None) -> None:
    """Import units from a CSV file (a known serial number updates its unit)."""
    report = units.import_units(
        current_app(), path, actor=current_actor(), skip_invalid=skip_invalid, rejects=rejects
    )
    click.echo(report.summary())


@service.command("unit")
@click.argument("key")
@_JSON
def unit_show(key: str, as_json: bool) -> None:
    """Show one unit (by id or serial number): place, components and history."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        unit = units.find_unit(uow, key)
        parts = units.components(uow, unit.id)
        history = units.unit_history(uow, unit.id)
        if as_json:
            echo_json(
                {
                    "unit": dump_record(crm, unit),
                    "components": [dump_record(crm, c) for _, c in parts],
                    "history": [
                        {"at": e.at.isoformat(), "entity": e.entity, "id": e.record_id,
                         "action": e.action}
                        for e in history
                    ],
                }
            )
            return
        click.echo(
            f"unit {unit.id} {unit.serial_number}: {unit.product_code} "
            f"{unit.product_name or ''} [{unit.status}]".rstrip()
        )
        place = " / ".join(units.location_path(uow, unit.location_id))
        if place or unit.site_address:
            click.echo(f"  at {place or unit.site_address}")
        if unit.install_date:
            click.echo(f"  installed {unit.install_date.isoformat()}")
        for reg in warranty.warranties_of(uow, [unit.id])[unit.id]:
            click.echo(
                f"  {reg['kind']} warranty {reg['term_id.name']!r} "
                f"{reg['starts_on']} to {reg['ends_on']}: labour {reg['labour_pct']}%, "
                f"parts {reg['parts_pct']}%, travel {reg['travel_pct']}%"
            )
        for depth, child in parts:
            click.echo(f"  {'  ' * depth}component {child.serial_number} {child.product_code}")
        for entry in history:
            click.echo(
                f"  {entry.at:%Y-%m-%d %H:%M} {entry.action} {entry.entity} {entry.record_id}"
            )


@service.group("contracts", invoke_without_command=True)
@click.option("--account", "account_id", type=int, help="Only the contracts of this account id.")
@click.option("--ending", type=int, help="Only active contracts ending within this many days.")
@_JSON
@click.pass_context
def contracts_group(
    ctx: click.Context, account_id: int | None, ending: int | None, as_json: bool
) -> None:
    """List service contracts (or sweep them: ``contracts sweep``)."""
    if ctx.invoked_subcommand is not None:
        return
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        select = uow.select(
            "service_contract",
            ("id", "number", "account_id.name", "status", "starts_on", "ends_on", "labour_pct",
             "parts_pct", "travel_pct", "auto_renew"),
        )
        if account_id is not None:
            select = select.where(account_id=account_id)
        if ending is not None:
            limit = dt.date.today() + dt.timedelta(days=ending)
            select = select.where(("ends_on", "<=", limit), status="active")
        rows = select.order_by("ends_on", "id").all()
        if as_json:
            echo_json(rows)
            return
        for row in rows:
            click.echo(
                f"{row['id']:>5}  {row['number']:<14} {row['account_id.name'] or '-':<24} "
                f"{row['starts_on']} to {row['ends_on']} [{row['status']}] labour "
                f"{row['labour_pct']}% parts {row['parts_pct']}% travel {row['travel_pct']}%"
                + (" auto-renew" if row["auto_renew"] else "")
            )
        if not rows:
            click.echo("no contracts")


@contracts_group.command("sweep")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), help="The day to sweep as of.")
def contracts_sweep(today: dt.datetime | None) -> None:
    """Remind, renew and expire contracts now (the daily job does it by itself)."""
    crm = current_app()
    day = today.date() if today is not None else dt.date.today()
    with crm.unit_of_work(current_actor()) as uow:
        result = contracts.contract_sweep(uow, day)
        uow.commit()
    click.echo(f"contracts as of {day}: {result.summary()}")


@service.command("entitlement")
@click.argument("unit_key", metavar="UNIT")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Default: today.")
@click.option("--type", "line_types", type=click.Choice(entitlement.LINE_TYPES), multiple=True,
              help="Only this line type (repeatable); default: every type.")
@_JSON
def entitlement_command(
    unit_key: str, day: dt.datetime | None, line_types: tuple[str, ...], as_json: bool
) -> None:
    """Explain what UNIT's coverage pays on a day, per line type, and why."""
    crm = current_app()
    on = day.date() if day is not None else dt.date.today()
    with crm.unit_of_work(current_actor()) as uow:
        unit = units.find_unit(uow, unit_key)
        coverages = entitlement.coverages_of(uow, [unit.id])[unit.id]
        decisions = {t: entitlement.decide(coverages, on, t)
                     for t in line_types or entitlement.LINE_TYPES}
    if as_json:
        echo_json({
            "unit": unit.id, "date": on.isoformat(),
            "decisions": {t: {"status": d.status, "percent": d.percent, "source": d.source,
                              "source_id": d.source_id, "reason": d.reason}
                          for t, d in decisions.items()},
        })
        return
    click.echo(f"unit {unit.id} {unit.serial_number} on {on}:")
    for line_type, decision in decisions.items():
        click.echo(f"  {line_type}: {decision.status} {decision.percent}% - {decision.reason}")
    for coverage in coverages:
        if not coverage.counts:
            why = "does not count (draft or cancelled)"
        elif coverage.valid_on(on):
            why = "valid"
        else:
            why = "not valid on that day"
        until = coverage.ends_on or "open end"
        click.echo(f"  considered {coverage.label} ({coverage.source} {coverage.id}), "
                   f"{coverage.starts_on} to {until}: {why}")
