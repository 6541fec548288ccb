"""Service orders, work reports priced through the entitlement, invoicing and leakage."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from crmcore import (
    Money,
    PermissionDeniedError,
    PluginInfo,
    TransitionError,
    ValidationError,
    hookimpl,
)
from crmcore import security as admin

from crm_service import leakage, orders

D = dt.date
WINDOW = dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC)


class Billing:
    """A billing plugin of the test: keeps the lines it was handed."""

    PLUGIN = PluginInfo(name="test_billing")

    def __init__(self) -> None:
        self.invoiced: list[tuple[int, list[int]]] = []
        self.held: str | None = None

    @hookimpl
    def service_invoice_lines(self, order: Any, lines: list[Any]) -> str:
        self.invoiced.append((order.id, [line.id for line in lines]))
        return f"INV-{order.id}"

    @hookimpl
    def service_invoice_held(self, order: Any, lines: list[Any]) -> str | None:
        return self.held


class Catalog:
    PLUGIN = PluginInfo(name="test_catalog")

    @hookimpl
    def service_price_part(self, product_code: str) -> Money | None:
        return Money("42.00", "EUR") if product_code == "SEAL-1" else None


def _setup(crm) -> dict[str, Any]:
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
        order = uow.create("service_order", subject="Pump leaks", account_id=acme.id,
                           problem="Water under the pump", priority="high")
        uow.create("order_unit", order_id=order.id, unit_id=pump.id)
        uow.create("order_technician", order_id=order.id, user_id=tess.id)
        uow.commit()
    return {"account": acme.id, "tess": tess.id, "pump": pump.id, "contract": contract.id,
            "order": order.id}


def _report(crm, ids, **lines: Any) -> dict[str, Any]:
    with crm.unit_of_work() as uow:
        report = uow.create("work_report", order_id=ids["order"], work_date=D(2026, 6, 1),
                            notes="Seal replaced", signed_by="J. Customer",
                            signed_at=WINDOW + dt.timedelta(hours=3))
        made = uow.create_many("work_line", [
            {"report_id": report.id, "unit_id": ids["pump"], "line_type": "labour",
             "technician_id": ids["tess"], "quantity": "2.5", "description": "Repair"},
            {"report_id": report.id, "unit_id": ids["pump"], "line_type": "parts",
             "product_code": "SEAL-1", "quantity": "1", "unit_price": "42.00 EUR",
             "technician_id": ids["tess"], "description": "Seal"},
            {"report_id": report.id, "unit_id": ids["pump"], "line_type": "travel",
             "quantity": "30", "technician_id": ids["tess"], "description": "Travel"},
        ])
        uow.commit()
    return {"report": report.id, "labour": made[0], "part": made[1], "travel": made[2]}


@pytest.fixture
def billing() -> Billing:
    return Billing()


@pytest.fixture
def crm(crm_factory, billing):
    return crm_factory(plugins=["service", billing])


def test_the_pipeline_runs_from_new_to_invoiced(crm, billing) -> None:
    ids = _setup(crm)
    with crm.unit_of_work() as uow:
        order = uow.get("service_order", ids["order"])
        assert order.status == "new"
        with pytest.raises(TransitionError):
            uow.move(order, "in_progress")
        order = uow.move(order, "scheduled", window_start=WINDOW,
                         window_end=WINDOW + dt.timedelta(hours=4))
        order = uow.move(order, "in_progress")
        with pytest.raises(TransitionError, match="without a work report"):
            uow.move(order, "done")
        uow.commit()
    lines = _report(crm, ids)
    with crm.unit_of_work() as uow:
        order = uow.move("service_order", ids["order"], "done")
        uow.move(order, "invoiced")
        uow.commit()
    assert billing.invoiced == [(ids["order"], [lines["part"].id, lines["travel"].id])]
    with crm.unit_of_work() as uow:
        refs = [line.invoice_ref for line in uow.query("work_line").order_by("id")]
    assert refs == [None, f"INV-{ids['order']}", f"INV-{ids['order']}"]


def test_an_invoiced_order_goes_back_to_done_only_when_no_invoice_holds_it(crm, billing) -> None:
    ids = _setup(crm)
    with crm.unit_of_work() as uow:
        uow.move("service_order", ids["order"], "scheduled", window_start=WINDOW,
                 window_end=WINDOW + dt.timedelta(hours=4))
        uow.move("service_order", ids["order"], "in_progress")
        uow.commit()
    lines = _report(crm, ids)
    with crm.unit_of_work() as uow:
        uow.move(uow.move("service_order", ids["order"], "done"), "invoiced")
        uow.commit()
    billing.held = "invoice 7"
    with crm.unit_of_work() as uow:
        with pytest.raises(TransitionError, match="while invoice 7 holds its work"):
            uow.move("service_order", ids["order"], "done")
    billing.held = None
    with crm.unit_of_work() as uow:
        assert uow.move("service_order", ids["order"], "done").status == "done"
        uow.commit()
    with crm.unit_of_work() as uow:
        refs = [line.invoice_ref for line in uow.query("work_line").order_by("id")]
        assert refs == [None, None, None]
        uow.move("service_order", ids["order"], "invoiced")
        uow.commit()
    part, travel = lines["part"].id, lines["travel"].id
    assert billing.invoiced == [(ids["order"], [part, travel])] * 2


def test_each_line_is_priced_through_the_entitlement(crm) -> None:
    ids = _setup(crm)
    lines = _report(crm, ids)
    labour, part, travel = lines["labour"], lines["part"], lines["travel"]
    assert (labour.amount, labour.covered_percent, labour.charge) == (
        Money("200.00", "EUR"), 100, Money("0.00", "EUR"))
    assert labour.entitlement_source == f"service_contract {ids['contract']}"
    assert labour.order_id == ids["order"]
    assert (part.charge, part.covered_percent) == (Money("42.00", "EUR"), 0)
    assert part.entitlement_reason.startswith("standard warranty 'Pump 12 months' does not")
    assert (travel.unit_price, travel.charge) == (Money("0.50", "EUR"), Money("15.00", "EUR"))


def test_the_work_report_and_its_lines_show_on_the_accounts_timeline(crm) -> None:
    ids = _setup(crm)
    lines = _report(crm, ids)
    with crm.unit_of_work() as uow:
        entries = uow.timeline("account", ids["account"])
    shown = {(entry.entity, entry.record_id) for entry in entries}
    assert ("service_order", ids["order"]) in shown
    assert ("work_report", lines["report"]) in shown
    assert ("work_line", lines["labour"].id) in shown


def test_changing_a_line_prices_it_again(crm) -> None:
    ids = _setup(crm)
    lines = _report(crm, ids)
    with crm.unit_of_work() as uow:
        travel = uow.update("work_line", lines["travel"].id, {"quantity": "40"})
        uow.commit()
    assert (travel.amount, travel.charge) == (Money("20.00", "EUR"), Money("20.00", "EUR"))


def test_a_part_without_a_price_is_refused_unless_a_catalog_prices_it(crm_factory) -> None:
    crm = crm_factory(plugins=["service"])
    ids = _setup(crm)
    with crm.unit_of_work() as uow:
        report = uow.create("work_report", order_id=ids["order"], work_date=D(2026, 6, 1))
        with pytest.raises(ValidationError, match="part 'SEAL-1' has no price"):
            uow.create("work_line", report_id=report.id, line_type="parts",
                       product_code="SEAL-1", quantity="1")
    priced = crm_factory(plugins=["service", Catalog()])
    ids = _setup(priced)
    with priced.unit_of_work() as uow:
        report = uow.create("work_report", order_id=ids["order"], work_date=D(2026, 6, 1))
        line = uow.create("work_line", report_id=report.id, line_type="parts",
                          product_code="SEAL-1", quantity="2")
    assert line.amount == Money("84.00", "EUR")


SECURITY = {
    "profiles": {
        "technician": {"privileges": {"work_line": "all", "work_report": "all",
                                      "service_order": "all", "installed_unit": ["read"]}},
    },
    "roles": {"technician": {"profiles": ["technician"]}},
}


def test_a_charge_set_by_hand_needs_the_privilege_and_a_reason(crm_factory) -> None:
    crm = crm_factory(plugins=["service"], settings={"security": SECURITY})
    ids = _setup(crm)
    lines = _report(crm, ids)
    with crm.unit_of_work() as uow:
        admin.add_user(uow, "ted", roles=["technician"])
        uow.commit()
    with crm.unit_of_work(crm.actor("ted")) as uow, pytest.raises(PermissionDeniedError):
        uow.update("work_line", lines["labour"].id, {"charge": "200.00 EUR",
                                                     "charge_reason": "customer asked"})
    with crm.unit_of_work() as uow:
        with pytest.raises(ValidationError, match="departs from the entitlement"):
            uow.update("work_line", lines["labour"].id, {"charge": "200.00 EUR"})
        line = uow.update("work_line", lines["labour"].id,
                          {"charge": "200.00 EUR", "charge_reason": "contract not yet signed"})
        uow.commit()
    assert line.charge == Money("200.00", "EUR")


def test_an_order_comes_from_a_ticket_with_the_help_desk(crm_factory) -> None:
    crm = crm_factory(plugins=["service", "helpdesk"])
    with crm.unit_of_work() as uow:
        acme = uow.create("account", name="Acme")
        ticket = uow.create("ticket", subject="Pump leaks", description="Water everywhere",
                            account_id=acme.id, priority="high")
        order = orders.order_from_ticket(uow, ticket.id)
        uow.commit()
    assert (order.subject, order.problem, order.account_id, order.priority, order.ticket_id) == (
        "Pump leaks", "Water everywhere", acme.id, "high", ticket.id)


def test_without_the_help_desk_an_order_does_not_come_from_a_ticket(crm) -> None:
    with crm.unit_of_work() as uow, pytest.raises(Exception, match="help desk enabled"):
        orders.order_from_ticket(uow, 1)


def test_the_leakage_report_is_clean_then_finds_covered_work_billed(crm) -> None:
    ids = _setup(crm)
    lines = _report(crm, ids)
    with crm.unit_of_work() as uow:
        report = leakage.leakage(uow, D(2026, 6, 1), D(2026, 6, 30))
        assert report.clean and report.lines_checked == 3
        uow.update("work_line", lines["labour"].id,
                   {"charge": "200.00 EUR", "charge_reason": "billed by mistake"})
        uow.update("work_line", lines["part"].id,
                   {"charge": "0.00 EUR", "charge_reason": "goodwill"})
        report = leakage.leakage(uow, D(2026, 6, 1), D(2026, 6, 30))
        by_tech = report.totals("technician")
        only_acme = leakage.leakage(uow, D(2026, 6, 1), D(2026, 6, 30),
                                    account_id=ids["account"])
        other_month = leakage.leakage(uow, D(2026, 7, 1), D(2026, 7, 31))
    kinds = [(leak.kind, leak.line_id, leak.at_stake) for leak in report.leaks]
    assert kinds == [
        (leakage.BILLED_WHILE_COVERED, lines["labour"].id, Money("200.00", "EUR")),
        (leakage.FREE_WHILE_NOT_COVERED, lines["part"].id, Money("42.00", "EUR")),
    ]
    assert by_tech[("tess", leakage.BILLED_WHILE_COVERED, "EUR")] == Money("200.00", "EUR")
    assert len(only_acme.leaks) == 2 and other_month.lines_checked == 0
    assert "1 billed while covered, 1 free while not covered" in report.summary()


def test_a_warranty_registered_late_shows_work_billed_while_covered(crm) -> None:
    ids = _setup(crm)
    lines = _report(crm, ids)
    with crm.unit_of_work() as uow:
        term = uow.create("warranty_term", name="Seal care", product="PUMP-1", months=24,
                          kind="extended", labour_pct=0, parts_pct=100, travel_pct=0)
        pump = uow.get("installed_unit", ids["pump"])
        from crm_service import warranty

        warranty.register_warranty(uow, pump, term.id, D(2026, 1, 5))
        report = leakage.leakage(uow, D(2026, 6, 1), D(2026, 6, 1))
    [leak] = report.leaks
    assert (leak.kind, leak.line_id) == (leakage.BILLED_WHILE_COVERED, lines["part"].id)
