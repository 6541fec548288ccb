"""Service contracts: validity, items, renewal reminders, renewal and expiry by the job."""

from __future__ import annotations

import datetime as dt

import pytest
from crmcore import ValidationError
from crmcore.jobs import run_worker
from service_support import account, unit

from crm_service import contracts


@pytest.fixture
def crm(crm_factory):
    return crm_factory(plugins=["service"])


def _contract(crm, number="SC-1", **values):
    acme = values.pop("account_id", None) or account(crm)
    with crm.unit_of_work() as uow:
        fields = {"number": number, "account_id": acme, "starts_on": dt.date(2026, 1, 1),
                  "ends_on": dt.date(2026, 12, 31), "labour_pct": 100, **values}
        record = uow.create("service_contract", fields)
        uow.commit()
    return record


def test_a_contract_cannot_end_before_it_starts(crm) -> None:
    with pytest.raises(ValidationError, match="ends on 2025-12-31 before it starts"):
        _contract(crm, ends_on=dt.date(2025, 12, 31))


def test_an_item_names_a_unit_or_a_site_not_both(crm) -> None:
    contract = _contract(crm)
    pump = unit(crm)
    with crm.unit_of_work() as uow:
        site = uow.create("location", name="Plant")
        uow.create("contract_item", contract_id=contract.id, unit_id=pump.id)
        with pytest.raises(ValidationError, match="give one of them"):
            uow.create("contract_item", contract_id=contract.id, unit_id=pump.id,
                       location_id=site.id)


def test_renewal_numbers_count_up() -> None:
    assert contracts.renewal_number("SC-1") == "SC-1/2"
    assert contracts.renewal_number("SC-1/2") == "SC-1/3"
    assert contracts.renewal_number("2026/A") == "2026/A/2"


def test_the_owner_is_reminded_once_before_the_end(crm) -> None:
    contract = _contract(crm, remind_days=30)
    with crm.unit_of_work() as uow:
        assert contracts.contract_sweep(uow, dt.date(2026, 11, 30)).reminded == []
        assert contracts.contract_sweep(uow, dt.date(2026, 12, 1)).reminded == [contract.id]
        assert contracts.contract_sweep(uow, dt.date(2026, 12, 2)).reminded == []
        [task] = uow.query("activity").where(account_id=contract.account_id).all()
        assert task.subject == "Renew service contract SC-1 (ends 2026-12-31)"
        uow.commit()


def test_an_ended_contract_expires(crm) -> None:
    contract = _contract(crm)
    with crm.unit_of_work() as uow:
        assert contracts.contract_sweep(uow, dt.date(2026, 12, 31)).expired == []
        assert contracts.contract_sweep(uow, dt.date(2027, 1, 1)).expired == [contract.id]
        assert uow.get("service_contract", contract.id).status == "expired"
        uow.commit()


def test_an_auto_renewing_contract_renews_with_its_items(crm) -> None:
    contract = _contract(crm, auto_renew=True, renewal_months=12, parts_pct=50)
    pump = unit(crm)
    with crm.unit_of_work() as uow:
        uow.create("contract_item", contract_id=contract.id, unit_id=pump.id)
        result = contracts.contract_sweep(uow, dt.date(2027, 1, 2))
        assert result.renewed == [contract.id]
        assert uow.get("service_contract", contract.id).status == "renewed"
        new = uow.query("service_contract").where(renewed_from_id=contract.id).first()
        assert (new.number, new.starts_on, new.ends_on, new.status) == (
            "SC-1/2", dt.date(2027, 1, 1), dt.date(2027, 12, 31), "active")
        assert (new.labour_pct, new.parts_pct) == (100, 50)
        assert [i.unit_id for i in uow.query("contract_item").where(contract_id=new.id)] == [
            pump.id]
        uow.commit()


def test_the_daily_job_sweeps_and_queues_the_next_day(crm) -> None:
    contract = _contract(crm)
    run_worker(crm, once=True, now=dt.datetime(2027, 1, 1, 3, tzinfo=dt.UTC))
    with crm.unit_of_work() as uow:
        assert uow.get("service_contract", contract.id).status == "expired"
        [queued] = uow.query("job").where(kind="service.daily", status="queued").all()
        assert queued.run_at == dt.datetime(2027, 1, 2, 3, tzinfo=dt.UTC)


def test_with_the_help_desk_a_contract_names_an_existing_sla_policy(crm_factory) -> None:
    app = crm_factory(plugins=["service", "helpdesk"])
    with app.unit_of_work() as uow:
        policy = uow.query("sla_policy").first()
        assert policy is not None
        uow.commit()
    contract = _contract(app, sla_policy_id=policy.id)
    pump = unit(app)
    with app.unit_of_work() as uow:
        uow.create("contract_item", contract_id=contract.id, unit_id=pump.id)
        from crm_service.entitlement import entitlement

        decision = entitlement(uow, pump, dt.date(2026, 6, 1), "labour")
        uow.commit()
    assert (decision.source_id, decision.sla_policy_id) == (contract.id, policy.id)
    with pytest.raises(ValidationError, match="no SLA policy with id 9999"):
        _contract(app, "SC-2", sla_policy_id=9999)
