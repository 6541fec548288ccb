"""Leads: sanity and authenticity checks, duplicates, scoring, and the [sales] settings that
drive them, on the database under test. No test reaches the network: deliverability lookups
are off by default and, where tested, go to a stub resolver."""

from __future__ import annotations

import datetime as dt
from typing import Any

import dns.resolver
import pytest
from crmcore import Actor, ConfigError, NotFoundError, PermissionDeniedError, ValidationError
from crmcore.security import add_user
from crmcore.transfer import import_rows

from crm_sales import ScoringRules, check_lead, check_leads, score_leads
from crm_sales.settings import bundled_disposable_domains

SECURITY = {
    "profiles": {"sales": {"privileges": {"lead": "all", "contact": "all", "account": "all", "activity": "all"}}},
    "roles": {"manager": {"profiles": ["sales"]}, "rep": {"parent": "manager", "profiles": ["sales"]}},
    "entities": {"lead": {"sharing": "private"}},
}


def codes(check: Any) -> list[str]:
    return list(check.codes)


def lead(crm: Any, **values: Any) -> Any:
    with crm.unit_of_work() as uow:
        record = uow.create("lead", {"last_name": "Lovelace", **values})
        uow.commit()
    return record


def check(crm: Any, values: dict[str, Any], **options: Any) -> Any:
    with crm.unit_of_work() as uow:
        return check_lead(uow, {"last_name": "Lovelace", **values}, **options)


# -- sanity ----------------------------------------------------------------------------------------


def test_a_lead_with_a_business_address_and_a_valid_number_has_no_issue(crm_factory):
    crm = crm_factory()
    result = check(crm, {"email": "ada@analytical.org", "phone": "+44 20 7946 0958"})
    assert result.ok and result.issues == ()
    assert (result.email, result.phone) == ("ada@analytical.org", "+442079460958")


def test_a_lead_without_email_or_phone_has_no_contact_information(crm_factory):
    result = check(crm_factory(), {"company": "Acme"})
    assert codes(result) == ["no_contact"]
    assert "e-mail address or a phone number" in result.issues[0].message


@pytest.mark.parametrize("address", ["ada..lovelace@example.org", ".ada@example.org", "ada.@example.org"])
def test_email_syntax_is_checked_by_email_validator(crm_factory, address):
    result = check(crm_factory(), {"email": address})
    assert codes(result) == ["invalid_email"]
    assert result.issues[0].field == "email" and repr(address) in result.issues[0].message
    assert result.email is None


@pytest.mark.parametrize("address", ["ada@acme.invalid", "ada@printer.local", "ada@host.localhost"])
def test_reserved_domains_cannot_receive_mail(crm_factory, address):
    result = check(crm_factory(), {"email": address})
    assert codes(result) == ["undeliverable_email"]
    assert "reserved name" in result.issues[0].message


def test_the_address_is_normalised(crm_factory):
    result = check(crm_factory(), {"email": "Ada@Analytical.ORG"})
    assert result.ok and result.email == "Ada@analytical.org"


@pytest.mark.parametrize("address", ["ada@mailinator.com", "ada@eu.mailinator.com", "ada@YOPMAIL.com"])
def test_disposable_domains_and_their_subdomains_are_flagged(crm_factory, address):
    result = check(crm_factory(), {"email": address})
    assert codes(result) == ["disposable_email"]


def test_the_bundled_disposable_list_is_read_and_extended_by_settings(crm_factory):
    assert {"mailinator.com", "guerrillamail.com", "yopmail.com"} <= bundled_disposable_domains()
    crm = crm_factory(sales={"disposable_domains": ["throwaway.example"]})
    assert codes(check(crm, {"email": "a@throwaway.example"})) == ["disposable_email"]
    assert check(crm_factory(), {"email": "a@throwaway.example"}).ok


def test_phone_numbers_become_e164_in_the_default_region(crm_factory):
    crm = crm_factory(sales={"default_region": "gb"})
    result = check(crm, {"phone": "020 7946 0958"})
    assert result.ok and result.phone == "+442079460958"
    assert check(crm, {"phone": "+1 (212) 555-0100 x 42"}).phone == "+12125550100 ext. 42"


def test_a_national_number_without_a_default_region_is_invalid_and_says_why(crm_factory):
    result = check(crm_factory(), {"phone": "020 7946 0958"})
    assert codes(result) == ["invalid_phone"]
    assert "+CC or set [sales] default_region" in result.issues[0].message


def test_a_number_outside_the_numbering_plan_is_flagged_but_normalised(crm_factory):
    result = check(crm_factory(), {"phone": "+1 555 010 1234"})
    assert codes(result) == ["invalid_phone"] and result.phone == "+15550101234"
    too_short = check(crm_factory(), {"phone": "+44 20"})
    assert codes(too_short) == ["invalid_phone"] and too_short.phone is None


def test_values_not_saved_yet_are_parsed_like_a_create(crm_factory):
    with pytest.raises(ValidationError, match="email"):
        check(crm_factory(), {"email": "not an address"})


# -- deliverability --------------------------------------------------------------------------------


class _MX:
    def __init__(self, preference: int, exchange: str) -> None:
        self.preference, self.exchange = preference, exchange


class StubResolver:
    """Answers MX lookups from a table; unknown domains do not exist."""

    def __init__(self, mx: dict[str, list[tuple[int, str]]]) -> None:
        self.mx = mx
        self.asked: list[tuple[str, str]] = []

    def resolve(self, domain: str, kind: str) -> list[_MX]:
        self.asked.append((domain, kind))
        if domain not in self.mx:
            raise dns.resolver.NXDOMAIN()
        return [_MX(p, e + ".") for p, e in self.mx[domain]]


def test_deliverability_is_not_looked_up_unless_configured(crm_factory):
    resolver = StubResolver({})
    assert check(crm_factory(), {"email": "ada@nowhere.example"}, resolver=resolver).ok
    assert resolver.asked == []


def test_deliverability_looks_up_each_domain_once(crm_factory):
    crm = crm_factory(sales={"check_deliverability": True})
    for address in ("ada@analytical.org", "grace@analytical.org", "alan@nowhere.example"):
        lead(crm, email=address)
    resolver = StubResolver({"analytical.org": [(10, "mx.analytical.org")]})
    with crm.unit_of_work() as uow:
        results = check_leads(uow, resolver=resolver, store=False)
    assert [codes(r) for r in results] == [[], [], ["undeliverable_email"]]
    assert "does not exist" in results[2].issues[0].message
    assert resolver.asked == [("analytical.org", "MX"), ("nowhere.example", "MX")]


def test_a_null_mx_record_is_undeliverable(crm_factory):
    crm = crm_factory(sales={"check_deliverability": True})
    result = check(crm, {"email": "ada@example.com"}, resolver=StubResolver({"example.com": [(0, "")]}))
    assert codes(result) == ["undeliverable_email"] and "does not accept email" in result.issues[0].message


# -- duplicates ------------------------------------------------------------------------------------


def test_duplicates_are_found_by_email_whatever_the_case(crm_factory):
    crm = crm_factory()
    first = lead(crm, email="ada@analytical.org")
    second = lead(crm, email="ADA@analytical.org")
    with crm.unit_of_work() as uow:
        results = {r.lead_id: r for r in check_leads(uow, store=False)}
    assert codes(results[first.id]) == ["duplicate_lead"] and results[first.id].duplicates == (("lead", second.id),)
    assert results[second.id].duplicates == (("lead", first.id),)
    assert f"lead {second.id}" in results[first.id].issues[0].message


def test_duplicates_are_found_by_phone_whatever_its_form(crm_factory):
    crm = crm_factory(sales={"default_region": "GB"})
    first = lead(crm, phone="+44 (20) 7946-0958")
    with crm.unit_of_work() as uow:
        contact = uow.create("contact", last_name="Hopper", mobile="020 7946 0958")
        uow.commit()
    result = check(crm, {"phone": "0044 20 7946 0958"})
    assert codes(result) == ["duplicate_lead", "duplicate_contact"]
    assert result.duplicates == (("contact", contact.id), ("lead", first.id))


def test_a_lead_does_not_duplicate_itself(crm_factory):
    crm = crm_factory()
    only = lead(crm, email="ada@analytical.org", phone="+44 20 7946 0958")
    with crm.unit_of_work() as uow:
        assert check_lead(uow, only.id).ok


# -- storing ---------------------------------------------------------------------------------------


def test_checking_stores_normalised_values_issues_and_the_time_audited(crm_factory):
    crm = crm_factory(sales={"default_region": "GB"})
    record = lead(crm, email="Ada@Mailinator.COM", phone="020 7946 0958")
    before = dt.datetime.now(dt.UTC)
    with crm.unit_of_work() as uow:
        results = check_leads(uow, [record.id])
        uow.commit()
    with crm.unit_of_work() as uow:
        stored = uow.get("lead", record.id)
        history = uow.history("lead", record.id)
    assert codes(results[0]) == ["disposable_email"]
    assert (stored.email, stored.phone, stored.quality_issues) == ("Ada@mailinator.com", "+442079460958", ("disposable_email",))
    assert stored.checked_at >= before and stored.version == 2
    assert history[-1].action == "updated" and history[-1].changes["phone"] == ("020 7946 0958", "+442079460958")


def test_a_clean_check_clears_earlier_issues(crm_factory):
    crm = crm_factory()
    record = lead(crm, email="ada@mailinator.com")
    with crm.unit_of_work() as uow:
        check_leads(uow)
        uow.update("lead", record.id, email="ada@analytical.org")
        check_leads(uow)
        assert uow.get("lead", record.id).quality_issues is None


def test_unchecked_leads_only(crm_factory):
    crm = crm_factory()
    first = lead(crm, email="a@analytical.org")
    with crm.unit_of_work() as uow:
        check_leads(uow)
        uow.commit()
    second = lead(crm, email="b@analytical.org")
    with crm.unit_of_work() as uow:
        assert [r.lead_id for r in check_leads(uow, unchecked=True)] == [second.id]
        assert [r.lead_id for r in check_leads(uow, uow.query("lead").where(email="a@analytical.org"), store=False)] == [first.id]


def test_a_dry_run_writes_nothing(crm_factory):
    crm = crm_factory()
    record = lead(crm, email="ada@mailinator.com")
    with crm.unit_of_work() as uow:
        assert codes(check_leads(uow, store=False)[0]) == ["disposable_email"]
        assert uow.get("lead", record.id).version == 1


def test_checks_are_set_based(crm_factory):
    crm = crm_factory(sales={"default_region": "GB"})
    with crm.unit_of_work() as uow:
        for n in range(60):
            uow.create("lead", last_name=f"L{n}", email=f"l{n}@analytical.org", phone=f"020 7946 {n:04d}")
        uow.commit()
    statements: list[str] = []
    import sqlalchemy as sa

    sa.event.listen(crm.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with crm.unit_of_work() as uow:
        check_leads(uow)
        uow.commit()
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) < 15, selects


# -- permissions -----------------------------------------------------------------------------------


@pytest.fixture
def reps(crm_factory):
    crm = crm_factory(security=SECURITY)
    with crm.unit_of_work() as uow:
        users = {name: add_user(uow, name, roles=[role]) for name, role in
                 (("boss", "manager"), ("rep1", "rep"), ("rep2", "rep"))}
        uow.commit()
    actors = {name: Actor(user.id, name) for name, user in users.items()}
    leads = {}
    for name in ("rep1", "rep2"):
        with crm.unit_of_work(actors[name]) as uow:
            leads[name] = uow.create("lead", last_name=name, email=f"{name}@mailinator.com")
            uow.commit()
    return crm, actors, leads


@pytest.mark.parametrize("work", [check_leads, score_leads], ids=["check", "score"])
def test_a_rep_checks_and_scores_only_the_leads_they_may_update(reps, work):
    crm, actors, leads = reps
    for rep, other in (("rep1", "rep2"), ("rep2", "rep1")):
        with crm.unit_of_work(actors[rep]) as uow:
            assert [r.lead_id for r in work(uow)] == [leads[rep].id]
            with pytest.raises(NotFoundError):
                work(uow, [leads[other].id])
    with crm.unit_of_work(actors["boss"]) as uow:
        assert sorted(r.lead_id for r in work(uow)) == sorted(r.id for r in leads.values())


def test_a_reader_who_may_not_update_cannot_store_a_check(crm_factory):
    security = {**SECURITY, "profiles": {**SECURITY["profiles"], "reader": {"privileges": {"lead": ["read"]}}},
                "roles": {**SECURITY["roles"], "reader": {"profiles": ["reader"]}}, "entities": {}}
    crm = crm_factory(security=security)
    with crm.unit_of_work() as uow:
        user = add_user(uow, "viewer", roles=["reader"])
        target = uow.create("lead", last_name="Lovelace", email="ada@mailinator.com")
        uow.commit()
    with crm.unit_of_work(Actor(user.id, "viewer")) as uow:
        assert codes(check_leads(uow, [target.id], store=False)[0]) == ["disposable_email"]
        with pytest.raises(PermissionDeniedError):
            check_leads(uow, [target.id])


# -- capture ---------------------------------------------------------------------------------------


def test_leads_need_no_contact_information_by_default(crm_factory):
    assert lead(crm_factory()).email is None


def test_require_contact_refuses_a_lead_without_email_or_phone(crm_factory):
    crm = crm_factory(sales={"require_contact": True})
    with pytest.raises(ValidationError, match="e-mail address or a phone number"):
        lead(crm)
    assert lead(crm, phone="+44 20 7946 0958").phone == "+44 20 7946 0958"


def test_require_contact_rejects_import_rows(crm_factory):
    crm = crm_factory(sales={"require_contact": True})
    with crm.unit_of_work() as uow:
        report = import_rows(uow, "lead", [{"last_name": "A", "email": "a@analytical.org"}, {"last_name": "B"}], skip_invalid=True)
        uow.commit()
    assert (report.created, report.invalid) == (1, 1)
    assert "e-mail address or a phone number" in report.error_lines()[0]


def test_leads_are_not_checked_on_commit_by_default(crm_factory):
    record = lead(crm_factory(), email="ada@mailinator.com", phone="+44 20 7946 0958")
    assert (record.version, record.checked_at, record.phone) == (1, None, "+44 20 7946 0958")


def test_check_on_commit_checks_and_scores_a_few_leads(crm_factory):
    crm = crm_factory(sales={"check_on_commit": 5, "default_region": "GB"})
    record = lead(crm, email="ada@mailinator.com", phone="020 7946 0958", company="Acme", source="referral")
    with crm.unit_of_work() as uow:
        stored = uow.get("lead", record.id)
    assert stored.phone == "+442079460958" and stored.quality_issues == ("disposable_email",)
    assert stored.checked_at is not None
    assert (stored.score, stored.temperature) == (10 + 10 + 10 + 25 - 40, "cold")


def test_check_on_commit_rescores_a_lead_when_an_activity_is_added(crm_factory):
    crm = crm_factory(sales={"check_on_commit": 5, "scoring": {"fields": {}, "sources": {}, "activities": {"meeting": 40}}})
    record = lead(crm, email="ada@analytical.org")
    with crm.unit_of_work() as uow:
        uow.create("activity", kind="meeting", subject="Demo", lead_id=record.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("lead", record.id).score == 30  # the engagement cap


def test_check_on_commit_leaves_bulk_loads_to_crm_leads_check(crm_factory):
    crm = crm_factory(sales={"check_on_commit": 3})
    with crm.unit_of_work() as uow:
        import_rows(uow, "lead", [{"last_name": f"L{n}", "email": f"l{n}@mailinator.com"} for n in range(4)])
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [r.checked_at for r in uow.all("lead")] == [None] * 4


# -- scoring ---------------------------------------------------------------------------------------


def test_score_rules_add_fields_source_engagement_and_issues():
    rules = ScoringRules(fields={"email": 10, "company": 5}, sources={"referral": 20}, activities={"call": 4, "meeting": 10},
                         engagement_cap=15, issues={"disposable_email": -30}, hot=40, warm=20)
    values = {"email": "a@b.org", "company": "", "source": "referral"}
    assert rules.score(values) == 30
    assert rules.score(values, {"call": 2, "meeting": 3}) == 45
    assert rules.score({**values, "quality_issues": ("disposable_email",)}) == 0
    assert [rules.temperature(s) for s in (40, 39, 20, 19)] == ["hot", "warm", "warm", "cold"]
    assert rules.score({"email": "x", "source": "referral", "company": "Acme"}, {"meeting": 50}) == 50


def test_score_leads_stores_score_and_temperature_that_changed(crm_factory):
    crm = crm_factory(sales={"scoring": {"hot": 50, "warm": 25}})
    hot = lead(crm, email="a@analytical.org", phone="+44 20 7946 0958", company="Acme", title="CTO", source="referral")
    cold = lead(crm)
    with crm.unit_of_work() as uow:
        uow.create("activity", kind="call", subject="Intro", lead_id=hot.id)
        results = score_leads(uow)
        uow.commit()
    assert [(r.lead_id, r.score, r.temperature) for r in results] == [(hot.id, 10 + 10 + 10 + 5 + 25 + 5, "hot"), (cold.id, 0, "cold")]
    with crm.unit_of_work() as uow:
        assert (uow.get("lead", hot.id).temperature, uow.get("lead", cold.id).version) == ("hot", 2)
        again = score_leads(uow)
        uow.commit()
    assert not any(r.changed for r in again)
    with crm.unit_of_work() as uow:
        assert uow.get("lead", hot.id).version == 2


def test_scoring_penalises_the_issues_of_the_last_check(crm_factory):
    crm = crm_factory()
    record = lead(crm, email="ada@mailinator.com", source="referral")
    with crm.unit_of_work() as uow:
        assert score_leads(uow, [record.id], store=False)[0].score == 35
        check_leads(uow)
        assert score_leads(uow, [record.id])[0].score == 0


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sales", "message"), [
    ({"colour": "red"}, "unknown key sales.colour"),
    ({"default_region": "Narnia"}, "sales.default_region must be a two-letter region code"),
    ({"check_deliverability": "yes"}, "sales.check_deliverability must be true or false"),
    ({"check_on_commit": -1}, "sales.check_on_commit must be a whole number of at least 0"),
    ({"scoring": {"fields": {"shoe_size": 5}}}, "sales.scoring.fields: lead has no field 'shoe_size'"),
    ({"scoring": {"sources": {"rumour": 5}}}, "sales.scoring.sources: 'rumour' is not a lead source"),
    ({"scoring": {"activities": {"visit": 5}}}, "unknown activity kind 'visit'"),
    ({"scoring": {"issues": {"ugly": -5}}}, "unknown quality issue 'ugly'"),
    ({"scoring": {"hot": 20, "warm": 30}}, "warm (30) must not be above hot (20)"),
    ({"scoring": {"fields": {"email": "ten"}}}, "sales.scoring.fields.email must be a whole number of points"),
    ({"forecast": {"min_history": 0}}, "sales.forecast.min_history must be a whole number of at least 1"),
])
def test_bad_sales_settings_stop_start_up_naming_the_key(crm_factory, sales, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        crm_factory(sales=sales)
    assert caught.value.key is not None and caught.value.key.startswith("sales")


def test_scoring_may_count_custom_and_plugin_fields(crm_factory):
    crm = crm_factory(custom_fields={"lead": {"budget_band": {"type": "choice", "choices": ["s", "m", "l"]}}},
                      sales={"scoring": {"fields": {"budget_band": 40}, "sources": {}}})
    record = lead(crm, budget_band="l")
    with crm.unit_of_work() as uow:
        assert score_leads(uow, [record.id])[0].score == 40
