"""The example plugin's behaviour, through the crmcore.testing fixtures."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from crmcore import ValidationError


def test_a_site_visit_belongs_to_an_account(crm_factory: Any, make_record: Any) -> None:
    crm = crm_factory(plugins=["example"])
    account = make_record(crm, "account", name="Acme")
    visit = make_record(
        crm, "site_visit", account_id=account.id, visited_on="2026-03-02", rating="Good"
    )
    assert (visit.account_id, visit.visited_on, visit.rating) == (
        account.id,
        dt.date(2026, 3, 2),
        "good",
    )
    assert crm.registry.table("site_visit").name == "example_site_visit"


def test_accounts_carry_the_customer_since_date(crm_factory: Any, make_record: Any) -> None:
    crm = crm_factory(plugins=["example"])
    account = make_record(crm, "account", name="Acme", customer_since="2019-05-01")
    assert account.customer_since == dt.date(2019, 5, 1)
    assert crm.registry.entity("account").field("customer_since").column == "example_customer_since"


def test_an_unknown_rating_is_refused(crm_factory: Any, make_record: Any) -> None:
    crm = crm_factory(plugins=["example"])
    account = make_record(crm, "account", name="Acme")
    with pytest.raises(ValidationError, match="rating"):
        make_record(
            crm, "site_visit", account_id=account.id, visited_on="2026-03-02", rating="superb"
        )


def test_creating_a_visit_sends_one_signal(
    crm_factory: Any, make_record: Any, captured_signals: Any
) -> None:
    crm = crm_factory(plugins=["example"])
    account = make_record(crm, "account", name="Acme")
    with captured_signals("record-created", crm) as sent:
        visit = make_record(crm, "site_visit", account_id=account.id, visited_on="2026-03-02")
    assert [(e.record.entity, e.record.id) for e in sent] == [("site_visit", visit.id)]


def test_visits_show_in_the_accounts_timeline(crm_factory: Any, make_record: Any) -> None:
    crm = crm_factory(plugins=["example"])
    account = make_record(crm, "account", name="Acme")
    visit = make_record(crm, "site_visit", account_id=account.id, visited_on="2026-03-02")
    with crm.unit_of_work() as uow:
        entries = uow.timeline("account", account.id)
    assert ("site_visit", visit.id) in [(e.entity, e.record_id) for e in entries]


def test_without_the_plugin_there_are_no_visits(crm_factory: Any) -> None:
    crm = crm_factory()
    assert "site_visit" not in crm.registry
    assert not crm.registry.entity("account").has_field("customer_since")
