"""The field service chapter of ``crm demo`` (``crm_demo``).

On the company the core's chapters built: a pump sold to the first account and installed two
months ago, which stamps its 12-month warranty; a service contract covering labour; a service
order (from a help desk ticket when the help desk is enabled) with a work report of labour
(covered), a part (billable) and travel (billable); the order invoiced with only its billable
lines; the leakage report clean; then a covered line billed by hand shows in the report. A
quarterly maintenance plan generates its visits, and a caller is found by a phone number
written another way.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore.demo import money_text
from crmcore.money import Money

from crm_service import callcenter, leakage, planned

if TYPE_CHECKING:
    from crmcore import Crm
    from crmcore.demo import Story

__all__ = ["tell"]


def tell(crm: Crm, echo: Any, story: Story) -> None:
    """Tell the field service chapter."""
    today = story.today
    currency = story.currency
    if not story.accounts or not story.users:
        echo("Field service: skipped (the demo company has no accounts or users)")
        return
    account = next(iter(story.accounts.values()))
    technician = next(iter(story.users.values()))
    installed = today - dt.timedelta(days=60)
    echo("")
    echo("Field service")
    with crm.unit_of_work() as uow:
        uow.create("warranty_term", name="Pump P-200: 12 months", product="P-200", months=12,
                   labour_pct=50, parts_pct=0, travel_pct=0)
        pump = uow.create("installed_unit", serial_number="P200-0001", product_code="P-200",
                          product_name="Circulation pump P-200", account_id=account.id,
                          site_address=f"{account.name}, plant 1", install_date=installed)
        [registration] = uow.query("warranty_registration").where(unit_id=pump.id).all()
        contract = uow.create("service_contract", number="SC-2001", name="Pump care",
                              account_id=account.id, starts_on=installed,
                              ends_on=installed + dt.timedelta(days=729), labour_pct=100,
                              auto_renew=True)
        uow.create("contract_item", contract_id=contract.id, unit_id=pump.id)
        echo(f"  unit {pump.serial_number} at {account.name}, installed {installed}: "
             f"{registration.kind} warranty until {registration.ends_on}")
        echo(f"  contract {contract.number} covers labour until {contract.ends_on}")
        order, source = _order(uow, account, pump, technician)
        echo(f"  service order {order.id} {source}, technician {technician.username}")
        report = uow.create("work_report", order_id=order.id, work_date=today,
                            notes="Seal worn: replaced, pump tested under load.",
                            signed_by="Plant manager",
                            signed_at=dt.datetime.combine(today, dt.time(15), tzinfo=dt.UTC))
        lines = uow.create_many("work_line", [
            {"report_id": report.id, "unit_id": pump.id, "line_type": "labour",
             "technician_id": technician.id, "quantity": "2.5", "description": "Repair",
             "unit_price": Money("80.00", currency)},
            {"report_id": report.id, "unit_id": pump.id, "line_type": "parts",
             "product_code": "SEAL-200", "quantity": "1", "description": "Shaft seal",
             "unit_price": Money("42.00", currency), "technician_id": technician.id},
            {"report_id": report.id, "unit_id": pump.id, "line_type": "travel",
             "quantity": "30", "description": "Travel (km)",
             "unit_price": Money("0.50", currency), "technician_id": technician.id},
        ])
        for line in lines:
            echo(f"  {line.line_type}: {money_text(line.amount)}, {line.covered_percent}% "
                 f"covered, customer pays {money_text(line.charge)} ({line.entitlement_reason})")
        order = uow.move(order, "done")
        uow.move(order, "invoiced")
        billable = [line for line in lines if line.charge.amount > 0]
        total = sum((line.charge.amount for line in billable), Money(0, currency).amount)
        kinds = ", ".join(line.line_type for line in billable)
        echo(f"  order {order.id} invoiced: {len(billable)} billable lines ({kinds}), "
             f"{money_text(Money(total, currency))}")
        clean = leakage.leakage(uow, today, today)
        echo(f"  leakage: {clean.summary()}")
        uow.update(lines[0], charge=lines[0].amount,
                   charge_reason="billed on the old price list")
        found = leakage.leakage(uow, today, today)
        for leak in found.leaks:
            echo(f"  leakage: {leak.kind.replace('_', ' ')} - line {leak.line_id} "
                 f"({leak.line_type}), {money_text(leak.at_stake)} at stake")
        plan = uow.create("service_plan", name="Quarterly pump check", account_id=account.id,
                          contract_id=contract.id, unit_id=pump.id,
                          rule="FREQ=MONTHLY;INTERVAL=3", starts_on=today, horizon_days=365,
                          early_days=3, late_days=3)
        made = planned.generate(uow, today, plan_ids=[plan.id])
        echo(f"  plan {plan.name!r}: {made.occurrences} visits in the coming year, "
             f"{made.orders} service orders scheduled")
        _caller(uow, echo, account, today)
        uow.commit()


def _order(uow: Any, account: Any, pump: Any, technician: Any) -> tuple[Any, str]:
    from crm_service import orders

    if "ticket" in uow.registry:
        ticket = uow.create("ticket", subject="Pump P-200 leaks", account_id=account.id,
                            description="Water under the pump since this morning.",
                            priority="high")
        order = orders.order_from_ticket(uow, ticket.id)
        source = f"from ticket {ticket.id}"
    else:
        order = uow.create("service_order", subject="Pump P-200 leaks", account_id=account.id,
                           problem="Water under the pump since this morning.", priority="high")
        source = "opened directly"
    uow.create("order_unit", order_id=order.id, unit_id=pump.id)
    uow.create("order_technician", order_id=order.id, user_id=technician.id)
    start = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    order = uow.move(order, "scheduled", window_start=start,
                     window_end=start + dt.timedelta(hours=4))
    order = uow.move(order, "in_progress")
    return order, source


def _caller(uow: Any, echo: Any, account: Any, today: dt.date) -> None:
    contact = uow.query("contact").where(account_id=account.id).first()
    if contact is None:
        return
    if not (contact.phone or contact.mobile):
        contact = uow.update(contact, phone="+1 (555) 010-4477")
    number = contact.phone or contact.mobile
    dialled = "".join(c for c in number if c.isdigit() or c == "+")
    view = callcenter.caller(uow, dialled, today=today)
    echo(f"  caller {dialled}: {len(view.contacts)} contact, account "
         f"{', '.join(a.name for a in view.accounts)}, {len(view.orders)} open service orders, "
         f"{len(view.units)} units under warranty, {len(view.contracts)} contracts")
