"""``crm service ...``: the installed base, warranties, contracts, entitlement, service orders,
planned service, the call center lookup and the leakage report.

::

    crm service units [--account 7] [--serial SN-1]
    crm service units import units.csv
    crm service unit SN-1                 (the unit, its components and its history)
    crm service contracts [--account 7] [--ending 30]
    crm service contracts sweep [--today 2026-03-02]
    crm service entitlement SN-1 [--date 2026-03-02] [--type labour]
    crm service orders [--status new] [--account 7]
    crm service orders show 12            (units, technicians, reports, priced lines)
    crm service orders from-ticket 42     (with the help desk)
    crm service orders print 5 report.pdf (the work report for the customer)
    crm service plans [--account 7]
    crm service plans preview 3 --from 2026-03-01 --to 2026-06-30
    crm service plans generate [--today 2026-03-02]
    crm service plans skip 3 2026-04-06 [--reason ...]
    crm service plans move 3 2026-04-06 2026-04-08 [--reason ...]
    crm service caller "+55 47 99638-1719" [--log "Asks for a visit" --order 12]
    crm service penalties --from 2026-03-01 --to 2026-03-31 [--record]
    crm service leakage --from 2026-03-01 --to 2026-03-31 [--account 7] [--technician ann]

Every command acts as ``--as USER`` (default: the system actor) in one unit of work; ``--json``
prints JSON instead of text.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click
from crmcore.cli import current_actor, current_app, dump_record, echo_json

from crm_service import (
    callcenter,
    contracts,
    entitlement,
    leakage,
    orders,
    penalties,
    planned,
    printing,
    units,
    warranty,
)
from crm_service.entities import ORDER_STAGES

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
                              "source_id": d.source_id, "reason": d.reason,
                              "sla_policy_id": d.sla_policy_id}
                          for t, d in decisions.items()},
        })
        return
    click.echo(f"unit {unit.id} {unit.serial_number} on {on}:")
    for line_type, decision in decisions.items():
        sla = (f" (SLA policy {decision.sla_policy_id})"
               if decision.sla_policy_id is not None else "")
        click.echo(f"  {line_type}: {decision.status} {decision.percent}% - {decision.reason}"
                   f"{sla}")
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


@service.group("orders", invoke_without_command=True)
@click.option("--status", type=click.Choice(ORDER_STAGES), help="Only this stage.")
@click.option("--account", "account_id", type=int, help="Only the orders of this account id.")
@_JSON
@click.pass_context
def orders_group(
    ctx: click.Context, status: str | None, account_id: int | None, as_json: bool
) -> None:
    """List service orders (``orders show ID``, ``orders from-ticket TICKET``)."""
    if ctx.invoked_subcommand is not None:
        return
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        select = uow.select("service_order", ("id", "subject", "status", "priority",
                                              "account_id.name", "window_start"))
        if status:
            select = select.where(status=status)
        if account_id is not None:
            select = select.where(account_id=account_id)
        rows = select.order_by("id").all()
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        when = f" {row['window_start']:%Y-%m-%d %H:%M}" if row["window_start"] else ""
        click.echo(f"{row['id']:>5}  [{row['status']}] {row['priority']:<6} "
                   f"{row['account_id.name'] or '-'}: {row['subject']}{when}")
    if not rows:
        click.echo("no service orders")


@orders_group.command("show")
@click.argument("order_id", type=int)
def orders_show(order_id: int) -> None:
    """Show a service order: units, technicians, work reports and their priced lines."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        order = uow.get("service_order", order_id)
        click.echo(f"service order {order.id} [{order.status}] {order.priority}: {order.subject}")
        for row in uow.select("order_unit", ("unit_id.serial_number", "unit_id.product_code")
                              ).where(order_id=order.id).all():
            click.echo(f"  unit {row['unit_id.serial_number']} {row['unit_id.product_code']}")
        for row in uow.select("order_technician", ("user_id.username",)).where(
                order_id=order.id).all():
            click.echo(f"  technician {row['user_id.username']}")
        for report in uow.query("work_report").where(order_id=order.id).order_by("id"):
            signed = f", signed by {report.signed_by}" if report.signed_by else ""
            click.echo(f"  work report {report.id} of {report.work_date}{signed}")
            for line in uow.query("work_line").where(report_id=report.id).order_by("id"):
                click.echo(
                    f"    {line.line_type:<7} {line.quantity} x {line.unit_price} = "
                    f"{line.amount}; covered {line.covered_percent}%, charge {line.charge}"
                    f" ({line.entitlement_reason})"
                )


@orders_group.command("from-ticket")
@click.argument("ticket_id", type=int)
def orders_from_ticket(ticket_id: int) -> None:
    """Open a service order for a help desk ticket."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        order = orders.order_from_ticket(uow, ticket_id)
        uow.commit()
    click.echo(f"service order {order.id} opened for ticket {ticket_id}")


@orders_group.command("print")
@click.argument("report_id", type=int)
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
def orders_print(report_id: int, path: str) -> None:
    """Write work report REPORT_ID as a PDF for the customer."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        data = printing.work_report_pdf(uow, report_id)
    with open(path, "wb") as handle:
        handle.write(data)
    click.echo(f"work report {report_id} written to {path} ({len(data):,} bytes)")


@service.command("leakage")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--account", "account_id", type=int, help="Only this account id.")
@click.option("--technician", help="Only this technician (username).")
@_JSON
def leakage_command(
    first: dt.datetime, last: dt.datetime, account_id: int | None, technician: str | None,
    as_json: bool,
) -> None:
    """Work billed while covered, and work given free while not covered, in a period."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        technician_id = crm.actor(technician).user_id if technician else None
        report = leakage.leakage(uow, first.date(), last.date(), account_id=account_id,
                                 technician_id=technician_id)
    if as_json:
        echo_json({"first": report.first.isoformat(), "last": report.last.isoformat(),
                   "lines_checked": report.lines_checked,
                   "leaks": [{"kind": k.kind, "line": k.line_id, "order": k.order_id,
                              "account": k.account, "technician": k.technician,
                              "date": k.work_date.isoformat(), "line_type": k.line_type,
                              "charged": str(k.charged), "expected": str(k.expected),
                              "at_stake": str(k.at_stake), "reason": k.reason}
                             for k in report.leaks]})
        return
    click.echo(report.summary())
    for leak in report.leaks:
        click.echo(
            f"  {leak.kind.replace('_', ' ')}: line {leak.line_id} of order {leak.order_id} "
            f"({leak.account}, {leak.technician or 'no technician'}, {leak.work_date}, "
            f"{leak.line_type}): charged {leak.charged}, entitled {leak.expected}, "
            f"at stake {leak.at_stake} - {leak.reason}"
            + (f"; charge reason: {leak.charge_reason}" if leak.charge_reason else "")
        )
    for by in ("account", "technician"):
        for (who, kind, _), amount in report.totals(by).items():
            click.echo(f"  total {by} {who or '-'}: {kind.replace('_', ' ')} {amount}")


_DAY = click.DateTime(["%Y-%m-%d"])


@service.group("plans", invoke_without_command=True)
@click.option("--account", "account_id", type=int, help="Only the plans of this account id.")
@_JSON
@click.pass_context
def plans_group(ctx: click.Context, account_id: int | None, as_json: bool) -> None:
    """List service plans (``plans preview|generate|skip|move``)."""
    if ctx.invoked_subcommand is not None:
        return
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        select = uow.select("service_plan", ("id", "name", "account_id.name", "rule",
                                             "time_of_day", "timezone", "active"))
        if account_id is not None:
            select = select.where(account_id=account_id)
        rows = select.order_by("id").all()
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        rule = row["rule"].replace("\n", "; ")
        click.echo(f"{row['id']:>5}  {row['name']} ({row['account_id.name'] or '-'}): {rule} at "
                   f"{row['time_of_day']} {row['timezone']}"
                   + ("" if row["active"] else " [inactive]"))
    if not rows:
        click.echo("no plans")


@plans_group.command("preview")
@click.argument("plan_id", type=int)
@click.option("--from", "first", type=_DAY, required=True)
@click.option("--to", "last", type=_DAY, required=True)
def plans_preview(plan_id: int, first: dt.datetime, last: dt.datetime) -> None:
    """Show the visits a plan would have from a day to a day, writing nothing."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        found = planned.preview(uow, plan_id, first.date(), last.date())
    for occ in found:
        note = f" ({occ.note})" if occ.note else ""
        click.echo(f"  {occ.rule_date} -> {occ.starts_at:%Y-%m-%d %H:%M %Z} [{occ.status}]"
                   f" window {occ.window_start:%Y-%m-%d %H:%M} to {occ.window_end:%Y-%m-%d %H:%M}"
                   f"{note}")
    if not found:
        click.echo("no visits in that span")


@plans_group.command("generate")
@click.option("--today", type=_DAY, help="The day to generate from (default: today).")
def plans_generate(today: dt.datetime | None) -> None:
    """Generate the visits of every active plan over its horizon (the daily job does it), a
    page of plans at a time, each committed as it is done."""
    result = planned.generate_in_batches(current_app(), today.date() if today else
                                         dt.date.today(), actor=current_actor())
    click.echo(result.summary())


@plans_group.command("skip")
@click.argument("plan_id", type=int)
@click.argument("day", type=_DAY)
@click.option("--reason", default="")
def plans_skip(plan_id: int, day: dt.datetime, reason: str) -> None:
    """Skip the visit a plan's rule gives on DAY."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        planned.skip_occurrence(uow, plan_id, day.date(), reason)
        uow.commit()
    click.echo(f"plan {plan_id}: the visit of {day:%Y-%m-%d} is skipped")


@plans_group.command("move")
@click.argument("plan_id", type=int)
@click.argument("day", type=_DAY)
@click.argument("to", type=_DAY)
@click.option("--reason", default="")
def plans_move(plan_id: int, day: dt.datetime, to: dt.datetime, reason: str) -> None:
    """Move the visit a plan's rule gives on DAY to TO."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        planned.move_occurrence(uow, plan_id, day.date(), to.date(), reason)
        uow.commit()
    click.echo(f"plan {plan_id}: the visit of {day:%Y-%m-%d} moves to {to:%Y-%m-%d}")


@service.command("caller")
@click.argument("number", nargs=-1, required=True)
@click.option("--region", help="ISO country for numbers without a country code.")
@click.option("--log", "subject", help="Log the call as an activity with this subject.")
@click.option("--order", "order_id", type=int, help="Log the call on this service order.")
@click.option("--ticket", "ticket_id", type=int, help="Log the call on this ticket.")
def caller_command(number: tuple[str, ...], region: str | None, subject: str | None,
                   order_id: int | None, ticket_id: int | None) -> None:
    """Who calls from NUMBER (any format): contact, account, open tickets and service
    orders, units under warranty, contracts."""
    crm = current_app()
    text = " ".join(number)
    with crm.unit_of_work(current_actor()) as uow:
        view = callcenter.caller(uow, text, region=region)
        if not view.found:
            click.echo(f"nobody has the number {text}")
            return
        for contact in view.contacts:
            name = " ".join(p for p in (contact.first_name, contact.last_name) if p)
            click.echo(f"contact {contact.id} {name}")
        for account in view.accounts:
            click.echo(f"account {account.id} {account.name}")
        for ticket in view.tickets:
            click.echo(f"  open ticket {ticket.id} [{ticket.status}] {ticket.subject}")
        for order in view.orders:
            click.echo(f"  service order {order.id} [{order.status}] {order.subject}")
        for unit in view.units:
            click.echo(f"  unit {unit['unit_id.serial_number']} {unit['unit_id.product_code']}"
                       f" under {unit['kind']} warranty until {unit['ends_on']}")
        for contract in view.contracts:
            click.echo(f"  contract {contract.number} until {contract.ends_on}")
        if subject:
            call = callcenter.log_call(uow, view, subject, ticket_id=ticket_id,
                                       order_id=order_id)
            uow.commit()
            click.echo(f"call logged as activity {call.id}")


@service.command("penalties")
@click.option("--from", "first", type=_DAY, required=True)
@click.option("--to", "last", type=_DAY, required=True)
@click.option("--record", is_flag=True, help="Record the breaches found now first (the daily "
              "job does it by itself).")
def penalties_command(first: dt.datetime, last: dt.datetime, record: bool) -> None:
    """SLA penalties per contract in a period."""
    crm = current_app()
    if record:
        with crm.unit_of_work(current_actor()) as uow:
            made = penalties.record_breaches(uow, dt.datetime.now(dt.UTC))
            uow.commit()
        click.echo(f"{made} new breaches recorded")
    with crm.unit_of_work(current_actor()) as uow:
        rows = penalties.penalty_report(uow, first.date(), last.date())
    for row in rows:
        click.echo(f"  contract {row['number']}: {row['count']} breaches, {row['sum']}")
    if not rows:
        click.echo("no penalties in that period")
