"""The issue's story end to end, on the database under test: a unit sold with a 12-month
warranty, a contract covering labour, a ticket that becomes a service order, a work report with
covered labour, a billable part and billable travel, an invoice of the billable lines only, a
clean leakage report, then covered work billed by hand showing in it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore import Money, PluginInfo, hookimpl

from crm_service import leakage, orders

D = dt.date
WINDOW = dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC)


class Billing:
    """A billing plugin of the test: keeps the lines it is handed, answers an invoice number."""

    PLUGIN = PluginInfo(name="story_billing")

    def __init__(self) -> None:
        self.invoiced: list[tuple[int, list[str]]] = []

    @hookimpl
    def service_invoice_lines(self, order: Any, lines: list[Any]) -> str:
        self.invoiced.append((order.id, [line.line_type for line in lines]))
        return "INV-1"


def test_from_a_ticket_to_an_invoice_of_the_billable_lines(crm_factory) -> None:
    billing = Billing()
    crm = crm_factory(plugins=["service", "helpdesk", billing])
    with crm.unit_of_work() as uow:
        acme = uow.create("account", name="Acme")
        tess = uow.create("user", username="tess")
        uow.create("warranty_term", name="Pump 12 months", product="PUMP-1", months=12,
                   labour_pct=0, parts_pct=0, travel_pct=0)
        pump = uow.create("installed_unit", serial_number="SN-1", product_code="PUMP-1",
                          account_id=acme.id, install_date=D(2026, 1, 5))
        contract = uow.create("service_contract", number="SC-1", account_id=acme.id,
                              starts_on=D(2026, 1, 1), ends_on=D(2026, 12, 31), labour_pct=100)
        uow.create("contract_item", contract_id=contract.id, unit_id=pump.id)
        ticket = uow.create("ticket", subject="Pump leaks", description="Water under the pump",
                            account_id=acme.id, priority="high")
        order = orders.order_from_ticket(uow, ticket.id)
        uow.create("order_unit", order_id=order.id, unit_id=pump.id)
        uow.create("order_technician", order_id=order.id, user_id=tess.id)
        order = uow.move(order, "scheduled", window_start=WINDOW,
                         window_end=WINDOW + dt.timedelta(hours=4))
        order = uow.move(order, "in_progress")
        uow.commit()
    with crm.unit_of_work() as uow:
        [registration] = uow.query("warranty_registration").where(unit_id=pump.id).all()
        report = uow.create("work_report", order_id=order.id, work_date=D(2026, 6, 1),
                            notes="Seal replaced", signed_by="J. Customer",
                            signed_at=WINDOW + dt.timedelta(hours=3))
        labour, part, travel = uow.create_many("work_line", [
            {"report_id": report.id, "unit_id": pump.id, "line_type": "labour",
             "technician_id": tess.id, "quantity": "2.5"},
            {"report_id": report.id, "unit_id": pump.id, "line_type": "parts",
             "product_code": "SEAL-1", "quantity": "1", "unit_price": "42.00 EUR",
             "technician_id": tess.id},
            {"report_id": report.id, "unit_id": pump.id, "line_type": "travel",
             "quantity": "30", "technician_id": tess.id},
        ])
        order = uow.move(order, "done")
        uow.move(order, "invoiced")
        uow.commit()
    assert (registration.starts_on, registration.ends_on) == (D(2026, 1, 5), D(2027, 1, 4))
    assert (order.ticket_id, order.subject) == (ticket.id, "Pump leaks")
    assert labour.charge == Money("0.00", "EUR")
    assert labour.entitlement_source == f"service_contract {contract.id}"
    assert (part.charge, travel.charge) == (Money("42.00", "EUR"), Money("15.00", "EUR"))
    assert billing.invoiced == [(order.id, ["parts", "travel"])]
    with crm.unit_of_work() as uow:
        assert [line.invoice_ref for line in uow.query("work_line").order_by("id")] == [
            None, "INV-1", "INV-1"]
        assert leakage.leakage(uow, D(2026, 6, 1), D(2026, 6, 30)).clean
        uow.update("work_line", labour.id, {"charge": "200.00 EUR",
                                            "charge_reason": "billed by mistake"})
        [leak] = leakage.leakage(uow, D(2026, 6, 1), D(2026, 6, 30)).leaks
    assert (leak.kind, leak.line_id, leak.at_stake) == (
        leakage.BILLED_WHILE_COVERED, labour.id, Money("200.00", "EUR"))
