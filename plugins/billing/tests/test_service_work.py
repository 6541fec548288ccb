"""Billable service work becomes invoice lines (the service plugin's ``service_invoice_lines``):
a draft per service order, or collected per account; exact charges; never invoiced twice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from billing_support import settings
from crmcore import security as admin
from crmcore.errors import PermissionDeniedError, TransitionError, ValidationError
from crmcore.money import Money

from crm_billing.invoices import cancel_invoice, credit_invoice, post_invoices

D = dt.date
WINDOW = dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC)


def _setup(crm: Any, orders: int = 1) -> dict[str, Any]:
    """A pump under a standard warranty covering nothing, a contract covering labour fully
    and travel at 40 %, a taxed seal in the catalog and *orders* service orders."""
    with crm.unit_of_work() as uow:
        vat = uow.create("tax_category", code="VAT19", name="Standard VAT", rate="19.00")
        uow.create("tax_category", code="VAT7", name="Reduced VAT", rate="7.00")
        seal = uow.create("product", code="SEAL-1", name="Shaft seal", list_price="42.00 EUR", tax_category_id=vat.id)
        acme = uow.create("account", name="Acme")
        uow.create("warranty_term", name="Pump 12 months", product="PUMP-1", months=12,
                   labour_pct=0, parts_pct=0, travel_pct=0)
        pump = uow.create("installed_unit", serial_number="SN-1", product_code="PUMP-1",
                          account_id=acme.id, install_date=D(2026, 1, 5))
        contract = uow.create("service_contract", number="SC-1", account_id=acme.id,
                              starts_on=D(2026, 1, 1), ends_on=D(2026, 12, 31), labour_pct=100, travel_pct=40)
        uow.create("contract_item", contract_id=contract.id, unit_id=pump.id)
        made = [uow.create("service_order", subject=f"Pump leaks ({n})", account_id=acme.id) for n in range(orders)]
        uow.commit()
    return {"account": acme.id, "pump": pump.id, "contract": contract.id, "seal": seal.id,
            "orders": [o.id for o in made]}


def _invoice_order(uow: Any, order: int) -> Any:
    """Move the order through its pipeline to ``invoiced``."""
    moved = uow.move("service_order", order, "scheduled", window_start=WINDOW, window_end=WINDOW + dt.timedelta(hours=4))
    for stage in ("in_progress", "done", "invoiced"):
        moved = uow.move(moved, stage)
    return moved


def _work(crm: Any, ids: dict[str, Any], order: int, *, uow: Any = None) -> list[Any]:
    """A work report of labour (covered), a seal (billable) and travel (40 % covered), then
    the order done and invoiced."""
    def write(uow: Any) -> list[Any]:
        report = uow.create("work_report", order_id=order, work_date=D(2026, 6, 1), signed_by="J. Customer",
                            signed_at=WINDOW + dt.timedelta(hours=3))
        lines = uow.create_many("work_line", [
            {"report_id": report.id, "unit_id": ids["pump"], "line_type": "labour", "quantity": "2.5",
             "unit_price": "80.00 EUR", "description": "Repair"},
            {"report_id": report.id, "unit_id": ids["pump"], "line_type": "parts", "product_code": "SEAL-1",
             "quantity": "1", "unit_price": "42.00 EUR", "description": "Seal"},
            {"report_id": report.id, "unit_id": ids["pump"], "line_type": "travel", "quantity": "33",
             "unit_price": "0.55 EUR", "description": "Travel (km)"},
        ])
        _invoice_order(uow, order)
        return lines

    if uow is not None:
        return write(uow)
    with crm.unit_of_work() as unit:
        lines = write(unit)
        unit.commit()
    return lines


@pytest.fixture
def crm(crm_factory, tmp_path):
    return crm_factory(plugins=["billing", "service"], settings=settings(tmp_path))


def test_billable_lines_of_a_service_order_become_a_draft_invoice_of_their_charges(crm) -> None:
    ids = _setup(crm)
    labour, seal, travel = _work(crm, ids, ids["orders"][0])
    # travel: 33 km x 0.55 = 18.15, 40 % covered (7.26): the customer pays 10.89
    assert travel.charge == Money("10.89", "EUR") and labour.charge == Money("0.00", "EUR")
    with crm.unit_of_work() as uow:
        [invoice] = uow.query("invoice").all()
        lines = uow.query("invoice_line").where(invoice_id=invoice.id).order_by("position").all()
        refs = {line.id: line.invoice_ref for line in uow.query("work_line").all()}
    assert invoice.state == "draft" and invoice.kind == "invoice" and invoice.account_id == ids["account"]
    assert invoice.source_ref == f"service_order {ids['orders'][0]}"
    assert invoice.title == f"Service order {ids['orders'][0]}: Pump leaks (0)"
    assert [line.source_ref for line in lines] == [f"work_line {seal.id}", f"work_line {travel.id}"]
    assert lines[0].product_id == ids["seal"] and (lines[0].tax_code, lines[0].tax_rate) == ("VAT19", Decimal("19"))
    assert lines[1].discounts == ["40"] and lines[1].tax_code is None
    assert "40% covered by service_contract" in lines[1].description and "work report" in lines[1].description
    assert invoice.net_total == Money(Decimal("52.89"), "EUR") == seal.charge + travel.charge
    assert invoice.tax_total == Money(Decimal("7.98"), "EUR")
    assert refs == {labour.id: None, seal.id: f"invoice {invoice.id}", travel.id: f"invoice {invoice.id}"}


def test_a_charge_set_by_hand_is_invoiced_to_the_cent(crm) -> None:
    ids = _setup(crm)
    with crm.unit_of_work() as uow:
        report = uow.create("work_report", order_id=ids["orders"][0], work_date=D(2026, 6, 1))
        line = uow.create("work_line", report_id=report.id, line_type="labour", quantity="3", unit_price="80.00 EUR",
                          charge="99.99 EUR", charge_reason="goodwill after a late visit", description="Inspection")
        _invoice_order(uow, ids["orders"][0])
        uow.commit()
    with crm.unit_of_work() as uow:
        [invoice_line] = uow.query("invoice_line").all()
        invoice = uow.get("invoice", invoice_line.invoice_id)
    assert line.charge == Money("99.99", "EUR")
    assert (invoice_line.quantity, invoice_line.unit_price) == (Decimal(1), Money("99.99", "EUR"))
    assert "goodwill after a late visit" in invoice_line.description
    assert invoice.net_total == Money("99.99", "EUR")


def test_work_is_never_invoiced_twice(crm) -> None:
    ids = _setup(crm)
    lines = _work(crm, ids, ids["orders"][0])
    billable = [line for line in lines if line.charge.amount > 0]
    with crm.unit_of_work() as uow:
        order = uow.get("service_order", ids["orders"][0])
        with pytest.raises(ValidationError, match=f"work_line {billable[0].id} is already on invoice"):
            uow.crm.hook.service_invoice_lines(uow=uow, order=order, lines=billable)
    with crm.unit_of_work() as uow:
        assert uow.query("invoice").count() == 1 and uow.query("invoice_line").count() == 2


def test_lines_of_another_order_or_without_a_charge_are_left_out(crm) -> None:
    ids = _setup(crm, orders=2)
    first = _work(crm, ids, ids["orders"][0])
    with crm.unit_of_work() as uow:
        second = uow.get("service_order", ids["orders"][1])
        with pytest.raises(ValidationError, match="is not invoiced"):
            uow.crm.hook.service_invoice_lines(uow=uow, order=second, lines=first)
        report = uow.create("work_report", order_id=second.id, work_date=D(2026, 6, 1))
        _invoice_order(uow, second.id)
        # the lines handed in belong to the first order: nothing of the second is billable
        assert uow.crm.hook.service_invoice_lines(uow=uow, order=uow.get("service_order", second.id), lines=first) is None
        assert report.id
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.query("invoice").count() == 1


def test_a_cancelled_draft_sends_its_order_back_to_done_to_be_invoiced_again(crm) -> None:
    ids = _setup(crm)
    order = ids["orders"][0]
    lines = _work(crm, ids, order)
    billable = [line for line in lines if line.charge.amount > 0]
    with crm.unit_of_work() as uow:
        [draft] = uow.query("invoice").all()
        # while the draft holds the work, the order stays invoiced: no move back, no second invoice
        with pytest.raises(TransitionError, match=f"while invoice {draft.id} holds its work"):
            uow.move("service_order", order, "done")
    with crm.unit_of_work() as uow:
        cancel_invoice(uow, draft.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("service_order", order).status == "done"
        assert [line.invoice_ref for line in uow.query("work_line").order_by("id")] == [None, None, None]
        moved = uow.move("service_order", order, "invoiced")
        [again] = uow.query("invoice").where(state="draft").all()
        with pytest.raises(ValidationError, match=f"work_line {billable[0].id} is already on invoice"):
            uow.crm.hook.service_invoice_lines(uow=uow, order=moved, lines=billable)
        [posted] = post_invoices(uow, [again.id], today=D(2026, 6, 2))
        uow.commit()
    assert again.id != draft.id and again.source_ref == f"service_order {order}"
    assert posted.number == "INV-2026-00001" and posted.grand_total == Money("60.87", "EUR")
    with crm.unit_of_work() as uow:
        live = uow.select("invoice_line", ("source_ref",)).where(("invoice_id.state", "!=", "cancelled")).all()
        assert sorted(row["source_ref"] for row in live) == sorted(f"work_line {line.id}" for line in billable)
        assert {line.invoice_ref for line in uow.query("work_line").all() if line.charge.amount > 0} == {
            f"invoice {posted.id}"}
        kinds = {entry.entity for entry in uow.timeline("account", ids["account"])}
        note = credit_invoice(uow, posted.id)
        post_invoices(uow, [note.id], today=D(2026, 6, 3))
        uow.commit()
    assert {"invoice", "work_report", "service_order"} <= kinds
    with crm.unit_of_work() as uow:  # a posted invoice is credited, not cancelled: the order stays invoiced
        assert uow.get("service_order", order).status == "invoiced"


def test_cancelling_a_collected_draft_sends_back_every_order_on_it(crm_factory, tmp_path) -> None:
    crm = crm_factory(plugins=["billing", "service"], settings=settings(tmp_path, service_invoicing="account"))
    ids = _setup(crm, orders=2)
    _work(crm, ids, ids["orders"][0])
    _work(crm, ids, ids["orders"][1])
    with crm.unit_of_work() as uow:
        [draft] = uow.query("invoice").all()
        cancel_invoice(uow, draft.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [uow.get("service_order", o).status for o in ids["orders"]] == ["done", "done"]
        for o in ids["orders"]:
            uow.move("service_order", o, "invoiced")
        uow.commit()
    with crm.unit_of_work() as uow:
        [again] = uow.query("invoice").where(state="draft").all()
        assert uow.query("invoice_line").where(invoice_id=again.id).count() == 4
        assert again.net_total == Money(Decimal("105.78"), "EUR")


def test_service_work_of_an_account_is_collected_on_one_draft(crm_factory, tmp_path) -> None:
    crm = crm_factory(plugins=["billing", "service"], settings=settings(tmp_path, service_invoicing="account"))
    ids = _setup(crm, orders=2)
    _work(crm, ids, ids["orders"][0])
    _work(crm, ids, ids["orders"][1])
    with crm.unit_of_work() as uow:
        [invoice] = uow.query("invoice").all()
        lines = uow.query("invoice_line").where(invoice_id=invoice.id).order_by("position").all()
    assert invoice.source_ref == "service" and invoice.title == "Service work"
    assert [line.position for line in lines] == [1, 2, 3, 4]
    assert invoice.net_total == Money(Decimal("105.78"), "EUR")


def test_labour_and_travel_take_the_service_tax_category(crm_factory, tmp_path) -> None:
    crm = crm_factory(plugins=["billing", "service"], settings=settings(tmp_path, service_tax_code="VAT7"))
    ids = _setup(crm)
    _work(crm, ids, ids["orders"][0])
    with crm.unit_of_work() as uow:
        lines = uow.query("invoice_line").order_by("position").all()
    assert [(line.tax_code, line.tax_rate) for line in lines] == [("VAT19", Decimal("19")), ("VAT7", Decimal("7"))]


SECURITY = {
    "profiles": {
        "technician": {"privileges": {"work_line": "all", "work_report": "all", "service_order": "all",
                                      "installed_unit": ["read"], "invoice": ["read"], "invoice_line": ["read"]}},
    },
    "roles": {"technician": {"profiles": ["technician"]}},
}


def test_invoicing_service_work_needs_the_right_to_create_invoices(crm_factory, tmp_path) -> None:
    crm = crm_factory(plugins=["billing", "service"], settings={**settings(tmp_path), "security": SECURITY})
    ids = _setup(crm)
    with crm.unit_of_work() as uow:
        admin.add_user(uow, "ted", roles=["technician"])
        uow.commit()
    with crm.unit_of_work(crm.actor("ted")) as uow, pytest.raises(PermissionDeniedError):
        _work(crm, ids, ids["orders"][0], uow=uow)
    with crm.unit_of_work() as uow:
        assert uow.query("invoice").count() == 0
        assert uow.get("service_order", ids["orders"][0]).status == "new"


def test_contract_fees_become_invoice_lines_once_per_period(crm) -> None:
    from crm_service import contracts

    from crm_billing.service_work import fee_ref

    with crm.unit_of_work() as uow:
        acme = uow.create("account", name="Acme")
        contract = uow.create("service_contract", number="SC-7", account_id=acme.id, starts_on=D(2026, 1, 1),
                              ends_on=D(2026, 12, 31), fee="300.00 EUR", billing_period="quarterly")
        assert contracts.bill_fees(uow, D(2026, 4, 1)) == 2
        uow.commit()
    with crm.unit_of_work() as uow:
        invoices = uow.query("invoice").order_by("id").all()
        lines = uow.query("invoice_line").order_by("id").all()
        assert uow.get("service_contract", contract.id).billed_until == D(2026, 6, 30)
        # the period billed before is not billed again, whoever asks
        again = uow.crm.hook.service_contract_fee(uow=uow, contract=contract, first=D(2026, 1, 1), last=D(2026, 3, 31),
                                                 amount=Money("1.00", "EUR"))
        assert again == f"invoice_line {lines[0].id}" and uow.query("invoice_line").count() == 2
    assert [i.title for i in invoices] == ["Service contract SC-7, 2026-01-01 to 2026-03-31",
                                           "Service contract SC-7, 2026-04-01 to 2026-06-30"]
    assert [i.net_total for i in invoices] == [Money("300.00", "EUR")] * 2
    assert [line.source_ref for line in lines] == [fee_ref(contract.id, D(2026, 1, 1)), fee_ref(contract.id, D(2026, 4, 1))]


def test_service_contracts_are_the_recurring_part_of_the_revenue_estimate(crm) -> None:
    from crm_billing.estimate import estimate

    with crm.unit_of_work() as uow:
        acme = uow.create("account", name="Acme")
        monthly = uow.create("service_contract", number="SC-8", account_id=acme.id, starts_on=D(2025, 11, 15),
                             ends_on=D(2026, 10, 14), fee="100.00 EUR", billing_period="monthly")
        yearly = uow.create("service_contract", number="SC-9", account_id=acme.id, starts_on=D(2026, 3, 1),
                            ends_on=D(2029, 2, 28), fee="1200.00 EUR", billing_period="yearly")
        uow.create("service_contract", number="SC-10", account_id=acme.id, starts_on=D(2026, 1, 1),
                   ends_on=D(2026, 12, 31))  # no fee
        uow.commit()
    with crm.unit_of_work() as uow:
        (found,) = estimate(uow, D(2026, 7, 1), account_ids=[acme.id], horizon=12)
    # SC-8: periods from 2026-07-15 to 2026-09-15 (3); SC-9: the period from 2027-03-01 (1)
    assert found.recurring == Money("1500.00", "EUR")
    assert sorted(found.recurring_sources) == [
        f"service_contract:{monthly.id}", f"service_contract:{yearly.id}"]


CLERK = {
    "profiles": {"clerk": {"privileges": {"invoice": "all", "invoice_line": "all", "service_order": ["read"],
                                          "work_line": ["read"]}}},
    "roles": {"clerk": {"profiles": ["clerk"]}},
}


def test_cancelling_a_draft_of_service_work_needs_the_right_to_move_its_orders(crm_factory, tmp_path) -> None:
    crm = crm_factory(plugins=["billing", "service"], settings={**settings(tmp_path), "security": CLERK})
    ids = _setup(crm)
    _work(crm, ids, ids["orders"][0])
    with crm.unit_of_work() as uow:
        admin.add_user(uow, "cora", roles=["clerk"])
        [draft] = uow.query("invoice").all()
        uow.commit()
    with crm.unit_of_work(crm.actor("cora")) as uow, pytest.raises(PermissionDeniedError):
        cancel_invoice(uow, draft.id)
    with crm.unit_of_work() as uow:  # all or nothing: the draft stays, the order stays invoiced
        assert uow.get("invoice", draft.id).state == "draft"
        assert uow.get("service_order", ids["orders"][0]).status == "invoiced"
