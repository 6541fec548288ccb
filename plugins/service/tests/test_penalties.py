"""SLA penalties under contracts, contract fees through the billing hook, contract documents."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from crmcore import Money, PluginInfo, hookimpl
from service_support import account

from crm_service import contracts, penalties

D = dt.date
NOON = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def _contract(crm, acme, **values):
    with crm.unit_of_work() as uow:
        record = uow.create("service_contract", {
            "number": "SC-1", "account_id": acme, "starts_on": D(2026, 1, 1),
            "ends_on": D(2026, 12, 31), **values})
        uow.commit()
    return record


def _order(uow, acme, contract, end, **values):
    return uow.create("service_order", subject="Visit", account_id=acme, contract_id=contract,
                      window_start=end - dt.timedelta(hours=4), window_end=end, **values)


def test_a_missed_window_costs_the_contracts_penalty_once(crm_factory) -> None:
    crm = crm_factory(plugins=["service"])
    acme = account(crm)
    contract = _contract(crm, acme, penalty_amount="250.00 EUR")
    with crm.unit_of_work() as uow:
        late = _order(uow, acme, contract.id, NOON - dt.timedelta(days=1))
        _order(uow, acme, contract.id, NOON + dt.timedelta(days=1))  # not due yet
        in_time = _order(uow, acme, contract.id, NOON - dt.timedelta(days=2))
        cancelled = _order(uow, acme, contract.id, NOON - dt.timedelta(days=2))
        uow.move(cancelled, "cancelled")
        uow.create("work_report", order_id=in_time.id, work_date=D(2026, 5, 30))
        in_time = uow.move(in_time, "scheduled")
        in_time = uow.move(in_time, "in_progress")
        uow.commit()
    # the in-time order was done before its window ended
    with crm.unit_of_work() as uow:
        order = uow.move("service_order", in_time.id, "done")
        with uow.system_scope("test: done in time"):
            uow.update(order, done_at=NOON - dt.timedelta(days=2, hours=1))
        assert penalties.record_breaches(uow, NOON) == 1
        assert penalties.record_breaches(uow, NOON) == 0
        [penalty] = uow.query("sla_penalty").all()
        assert (penalty.order_id, penalty.kind, penalty.amount, penalty.key) == (
            late.id, "order_window", Money("250.00", "EUR"), f"order:{late.id}")
        [row] = penalties.penalty_report(uow, D(2026, 5, 1), D(2026, 5, 31))
        assert (row["number"], row["count"], row["sum"]) == ("SC-1", 1, Money("250.00", "EUR"))
        assert penalties.penalty_report(uow, D(2026, 6, 1), D(2026, 6, 30)) == []


def test_a_contract_without_a_penalty_records_none(crm_factory) -> None:
    crm = crm_factory(plugins=["service"])
    acme = account(crm)
    contract = _contract(crm, acme)
    with crm.unit_of_work() as uow:
        _order(uow, acme, contract.id, NOON - dt.timedelta(days=1))
        assert penalties.record_breaches(uow, NOON) == 0


def test_a_ticket_breach_under_a_contract_costs_its_penalty(crm_factory) -> None:
    crm = crm_factory(plugins=["service", "helpdesk"])
    acme = account(crm)
    contract = _contract(crm, acme, penalty_amount="100.00 EUR")
    with crm.unit_of_work() as uow:
        ticket = uow.create("ticket", subject="Down", account_id=acme)
        uow.create("sla_event", ticket_id=ticket.id, kind="breach", target="response",
                   at=NOON - dt.timedelta(hours=2))
        uow.create("sla_event", ticket_id=ticket.id, kind="warning", target="resolution",
                   at=NOON - dt.timedelta(hours=1))
        assert penalties.record_breaches(uow, NOON) == 1
        [penalty] = uow.query("sla_penalty").all()
    assert (penalty.contract_id, penalty.ticket_id, penalty.kind) == (
        contract.id, ticket.id, "ticket_response")


class Billing:
    PLUGIN = PluginInfo(name="test_fees")

    def __init__(self) -> None:
        self.periods: list[tuple[Any, Any, Any]] = []

    @hookimpl
    def service_contract_fee(self, contract: Any, first: Any, last: Any, amount: Any) -> str:
        self.periods.append((first, last, amount))
        return f"FEE-{len(self.periods)}"


def test_contract_fees_go_to_billing_period_by_period(crm_factory) -> None:
    billing = Billing()
    crm = crm_factory(plugins=["service", billing])
    acme = account(crm)
    contract = _contract(crm, acme, fee="300.00 EUR", billing_period="quarterly")
    with crm.unit_of_work() as uow:
        assert contracts.bill_fees(uow, D(2026, 4, 1)) == 2
        assert contracts.bill_fees(uow, D(2026, 4, 2)) == 0
        assert uow.get("service_contract", contract.id).billed_until == D(2026, 6, 30)
        uow.commit()
    assert billing.periods == [(D(2026, 1, 1), D(2026, 3, 31), Money("300.00", "EUR")),
                               (D(2026, 4, 1), D(2026, 6, 30), Money("300.00", "EUR"))]


def test_without_billing_fees_stay_unbilled(crm_factory) -> None:
    crm = crm_factory(plugins=["service"])
    acme = account(crm)
    contract = _contract(crm, acme, fee="300.00 EUR")
    with crm.unit_of_work() as uow:
        assert contracts.bill_fees(uow, D(2026, 4, 1)) == 0
        assert uow.get("service_contract", contract.id).billed_until is None


@pytest.fixture
def crm(crm_factory):
    return crm_factory(plugins=["service"])


def test_contract_documents_attach_to_the_contract(crm) -> None:
    acme = account(crm)
    contract = _contract(crm, acme)
    with crm.unit_of_work() as uow:
        uow.create("document", title="Signed contract", uri="file:///contracts/sc-1.pdf",
                   service_contract_id=contract.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        [doc] = uow.query("document").where(service_contract_id=contract.id).all()
        assert doc.title == "Signed contract"
        assert "document" in {e.entity for e in uow.timeline("service_contract", contract.id)}
