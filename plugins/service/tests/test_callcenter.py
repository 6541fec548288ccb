"""Call center lookup: a caller by any phone format, and the view of their account."""

from __future__ import annotations

import datetime as dt

import pytest
from crmcore import ValidationError

from crm_service import callcenter

D = dt.date


def test_variants_cover_international_and_national_spellings() -> None:
    found = callcenter.number_variants("+55 47 99638-1719")
    assert {"+5547996381719", "5547996381719", "005547996381719", "47996381719",
            "047996381719"} <= set(found)
    assert "47996381719" in callcenter.number_variants("(47) 99638-1719", "BR")
    assert "+5547996381719" in callcenter.number_variants("(47) 99638-1719", "BR")


def test_a_number_without_digits_is_refused() -> None:
    with pytest.raises(ValidationError, match="'call me' is not a phone number"):
        callcenter.number_variants("call me")


@pytest.fixture
def crm(crm_factory):
    app = crm_factory(plugins=["service", "helpdesk"],
                      settings={"plugins": {"service": {"phone_region": "BR"}}})
    with app.unit_of_work() as uow:
        acme = uow.create("account", name="Acme")
        other = uow.create("account", name="Other", phone="+55 47 3333-0000")
        uow.create("contact", last_name="Silva", account_id=acme.id, mobile="(47) 99638-1719")
        uow.create("contact", last_name="Souza", account_id=other.id, phone="+1 555 0100")
        uow.create("warranty_term", name="Pump 12 months", product="PUMP-1", months=12)
        uow.create("installed_unit", serial_number="SN-1", product_code="PUMP-1",
                   account_id=acme.id, install_date=D(2026, 1, 5))
        uow.create("installed_unit", serial_number="SN-OLD", product_code="PUMP-1",
                   account_id=acme.id, install_date=D(2024, 1, 5))
        uow.create("service_contract", number="SC-1", account_id=acme.id,
                   starts_on=D(2026, 1, 1), ends_on=D(2026, 12, 31), labour_pct=100)
        uow.create("service_order", subject="Pump leaks", account_id=acme.id)
        done = uow.create("service_order", subject="Old visit", account_id=acme.id)
        uow.move(done, "cancelled")
        uow.create("ticket", subject="Pump noise", account_id=acme.id)
        uow.commit()
    return app


@pytest.mark.parametrize("number", ["+55 47 99638-1719", "(47) 99638-1719", "047996381719",
                                    "0055 47 99638 1719", "+55 (47) 996381719"])
def test_a_caller_is_found_by_any_format(crm, number: str) -> None:
    with crm.unit_of_work() as uow:
        view = callcenter.caller(uow, number, today=D(2026, 6, 1))
    assert [c.last_name for c in view.contacts] == ["Silva"]
    assert [a.name for a in view.accounts] == ["Acme"]
    assert [t.subject for t in view.tickets] == ["Pump noise"]
    assert [o.subject for o in view.orders] == ["Pump leaks"]
    assert [u["unit_id.serial_number"] for u in view.units] == ["SN-1"]
    assert [c.number for c in view.contracts] == ["SC-1"]


def test_an_account_number_finds_the_account(crm) -> None:
    with crm.unit_of_work() as uow:
        view = callcenter.caller(uow, "4733330000", today=D(2026, 6, 1))
    assert [a.name for a in view.accounts] == ["Other"] and view.contacts == ()


def test_a_call_is_logged_on_the_service_order(crm) -> None:
    with crm.unit_of_work() as uow:
        view = callcenter.caller(uow, "+55 47 99638-1719", today=D(2026, 6, 1))
        order = view.orders[0]
        call = callcenter.log_call(uow, view, "Asks when the technician comes",
                                   order_id=order.id)
        uow.commit()
    assert (call.kind, call.contact_id, call.service_order_id) == (
        "call", view.contacts[0].id, order.id)
    with crm.unit_of_work() as uow:
        assert "activity" in {e.entity for e in uow.timeline("service_order", order.id)}


def test_an_unknown_caller_has_an_empty_view_and_no_call(crm) -> None:
    with crm.unit_of_work() as uow:
        view = callcenter.caller(uow, "+49 30 1234567")
        assert not view.found
        with pytest.raises(ValidationError, match="no contact or account"):
            callcenter.log_call(uow, view, "Wrong number")


def test_the_phone_index_follows_changes_and_deletes(crm) -> None:
    with crm.unit_of_work() as uow:
        silva = uow.query("contact").where(last_name="Silva").first()
        uow.update(silva, mobile="+55 47 98888-0000")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert callcenter.caller(uow, "+55 47 99638-1719").contacts == ()
        assert [c.id for c in callcenter.caller(uow, "(47) 98888-0000").contacts] == [silva.id]
        uow.delete(uow.query("contact").where(last_name="Souza").first())
        uow.commit()
    with crm.unit_of_work() as uow:
        assert callcenter.caller(uow, "+1 555 0100").contacts == ()


def test_contacts_written_before_the_plugin_are_indexed_by_the_seed(crm_factory,
                                                                   tmp_path) -> None:
    from crmcore import create_app

    core = crm_factory(file=True)
    with core.unit_of_work() as uow:
        uow.create("contact", last_name="Early", phone="+55 47 3333-1234")
        uow.commit()
    settings = tmp_path / "crm.toml"
    settings.write_text(f'[crm]\ndatabase = "{core.settings.database}"\n'
                        'plugins = ["service"]\n', encoding="utf-8")
    with create_app(settings) as app:
        done = app.upgrade()
        assert "call center phone index filled (1 numbers)" in done
        with app.unit_of_work() as uow:
            assert [c.last_name for c in callcenter.caller(uow, "+55 (47) 33331234").contacts] == [
                "Early"]
