"""Lead conversion: what a qualified lead becomes, what is matched, what is moved, what the
audit keeps, what is refused, who may convert, and the field mapping of [sales.conversion]."""

from __future__ import annotations

from typing import Any

import pytest
from crmcore import (
    Actor,
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    PluginInfo,
    ValidationError,
    hookimpl,
)
from crmcore.errors import CrmError
from crmcore.fields import Choice, Field
from crmcore.money import Money
from crmcore.security import add_user

from crm_sales import LEAD_CONVERTED, ConversionError, convert_lead, convert_leads
from crm_sales.conversion import domain_of

SECURITY = {
    "profiles": {
        "sales": {"privileges": {"lead": "all", "contact": "all", "account": "all", "opportunity": "all", "activity": "all"}},
        "no_contacts": {"privileges": {"lead": "all", "account": "all", "contact": ["read"]}},
    },
    "roles": {
        "manager": {"profiles": ["sales"]},
        "rep": {"parent": "manager", "profiles": ["sales"]},
        "junior": {"parent": "manager", "profiles": ["no_contacts"]},
    },
    "entities": {"lead": {"sharing": "private"}, "account": {"sharing": "private"}, "contact": {"sharing": "private"}},
}


def qualified(uow: Any, **values: Any) -> Any:
    return uow.create("lead", {"last_name": "Lovelace", "first_name": "Ada", "status": "qualified", **values})


@pytest.fixture
def crm(crm_factory):
    return crm_factory()


# -- what a lead becomes -----------------------------------------------------------------------


def test_a_qualified_lead_becomes_an_account_a_contact_and_an_opportunity(crm):
    with crm.unit_of_work() as uow:
        owner = uow.create("user", username="ada")
        lead = qualified(uow, company="Analytical Engines", title="CTO", email="ada@analytical.org",
                         phone="+44 20 7946 0958", website="www.analytical.org", description="Met at the fair", owner_id=owner.id)
        done = convert_lead(uow, lead, opportunity={"amount": "12000 EUR", "close_date": "2026-09-30"})
        uow.commit()
    account, contact, deal = done.account, done.contact, done.opportunity
    assert done.account_created and done.contact_created and done.lead_id == lead.id
    assert (account.name, account.website, account.domain, account.owner_id) == (
        "Analytical Engines", "https://www.analytical.org", "analytical.org", owner.id)
    assert (contact.first_name, contact.last_name, contact.title, contact.email, contact.phone, contact.description) == (
        "Ada", "Lovelace", "CTO", "ada@analytical.org", "+44 20 7946 0958", "Met at the fair")
    assert (contact.account_id, contact.owner_id) == (account.id, owner.id)
    assert (deal.name, deal.account_id, deal.contact_id, deal.amount, deal.stage, deal.probability, deal.owner_id) == (
        "Analytical Engines", account.id, contact.id, Money("12000.00", "EUR"), "initiation", 10, owner.id)


def test_the_lead_leaves_the_lead_list_and_the_audit_keeps_its_snapshot(crm):
    with crm.unit_of_work() as uow:
        lead = qualified(uow, company="Acme", email="ada@acme.org")
        done = convert_lead(uow, lead.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.query("lead").count() == 0
        with pytest.raises(NotFoundError):
            uow.get("lead", lead.id)
        trail = uow.history("lead", lead.id)
    assert [e.action for e in trail] == ["created", "converted", "deleted"]
    assert trail[1].changes == {"account_id": (None, done.account.id), "contact_id": (None, done.contact.id), "opportunity_id": (None, None)}
    assert trail[2].changes["company"] == ("Acme", None) and trail[2].changes["email"] == ("ada@acme.org", None)
    assert done.opportunity is None


def test_the_account_timeline_shows_the_conversion(crm):
    with crm.unit_of_work() as uow:
        lead = qualified(uow, company="Acme")
        done = convert_lead(uow, lead, opportunity={})
        uow.commit()
    with crm.unit_of_work() as uow:
        entries = uow.timeline("account", done.account.id)
    converted = [e for e in entries if e.action == "converted"]
    assert [(e.entity, e.record_id) for e in converted] == [("account", done.account.id)]
    assert converted[0].changes == {"lead_id": (None, lead.id), "contact_id": (None, done.contact.id),
                                    "opportunity_id": (None, done.opportunity.id)}
    assert {("contact", "created"), ("opportunity", "created")} <= {(e.entity, e.action) for e in entries}


def test_an_opportunity_without_a_company_is_named_after_the_person(crm):
    with crm.unit_of_work() as uow:
        done = convert_lead(uow, qualified(uow, email="ada@gmail.com"), opportunity=True)
        assert done.account is None and done.contact.account_id is None
        assert (done.opportunity.name, done.opportunity.account_id) == ("Ada Lovelace", None)


def test_what_was_about_the_lead_moves_to_the_new_records(crm):
    with crm.unit_of_work() as uow:
        lead = qualified(uow, company="Acme")
        call = uow.create("activity", kind="call", subject="Intro", lead_id=lead.id)
        note = uow.create("note", body="Likes engines", lead_id=lead.id)
        uow.tag(lead, "vip", "fair")
        done = convert_lead(uow, lead, opportunity={})
        call, note = uow.get("activity", call.id), uow.get("note", note.id)
        assert (call.lead_id, call.contact_id, call.account_id, call.opportunity_id) == (
            None, done.contact.id, done.account.id, done.opportunity.id)
        assert (note.lead_id, note.contact_id) == (None, done.contact.id)
        assert uow.tags(done.contact) == ["fair", "vip"]
        assert uow.history("activity", call.id)[-1].changes["lead_id"] == (lead.id, None)


# -- matching ----------------------------------------------------------------------------------


def test_an_account_is_matched_by_name_whatever_the_case(crm):
    with crm.unit_of_work() as uow:
        acme = uow.create("account", name="Acme Ltd")
        done = convert_lead(uow, qualified(uow, company="ACME LTD"))
        assert (done.account.id, done.account_created) == (acme.id, False)
        assert uow.query("account").count() == 1


def test_an_account_is_matched_by_website_or_business_email_domain(crm):
    with crm.unit_of_work() as uow:
        acme = uow.create("account", name="Acme Holding", website="https://www.acme.org")
        assert acme.domain == "acme.org"
        by_site = convert_lead(uow, qualified(uow, company="Acme UK", website="acme.org/uk"))
        by_mail = convert_lead(uow, qualified(uow, last_name="Hopper", company="Acme US", email="grace@acme.org"))
        assert by_site.account.id == by_mail.account.id == acme.id


def test_free_mail_domains_match_no_account(crm):
    with crm.unit_of_work() as uow:
        uow.create("account", name="Gmail fans", email="fans@gmail.com")
        done = convert_lead(uow, qualified(uow, company="Solo", email="ada@gmail.com"))
        assert done.account_created and done.account.name == "Solo" and done.account.domain is None


def test_the_leads_own_account_and_a_given_account_come_first(crm):
    with crm.unit_of_work() as uow:
        linked = uow.create("account", name="Linked")
        given = uow.create("account", name="Given")
        uow.create("account", name="Acme")
        assert convert_lead(uow, qualified(uow, company="Acme", account_id=linked.id)).account.id == linked.id
        assert convert_lead(uow, qualified(uow, company="Acme", last_name="B"), account_id=given.id).account.id == given.id


def test_a_contact_is_matched_by_email(crm):
    with crm.unit_of_work() as uow:
        known = uow.create("contact", last_name="Lovelace", email="Ada@Acme.org")
        done = convert_lead(uow, qualified(uow, company="Acme", email="ada@acme.org"), opportunity={})
        assert (done.contact.id, done.contact_created, done.opportunity.contact_id) == (known.id, False, known.id)


def test_matching_can_be_turned_off(crm_factory):
    crm = crm_factory(sales={"conversion": {"match_account_by": [], "match_contact_by": []}})
    with crm.unit_of_work() as uow:
        uow.create("account", name="Acme")
        uow.create("contact", last_name="Lovelace", email="ada@acme.org")
        done = convert_lead(uow, qualified(uow, company="Acme", email="ada@acme.org"))
        assert done.account_created and done.contact_created


@pytest.mark.parametrize(("website", "email", "expected"), [
    ("https://www.acme.org/about", None, "acme.org"),
    ("shop.acme.org", "x@other.org", "shop.acme.org"),
    ("www.org", None, "www.org"),
    (None, "Ada@ACME.org", "acme.org"),
    (None, "ada@gmail.com", None),
    (None, None, None),
])
def test_domain_of(website, email, expected):
    assert domain_of(website, email, free=frozenset({"gmail.com"})) == expected


# -- refusals ----------------------------------------------------------------------------------


def test_a_lead_that_is_not_qualified_is_refused(crm):
    with crm.unit_of_work() as uow:
        lead = uow.create("lead", last_name="Lovelace")
        with pytest.raises(ConversionError, match=r"lead \d+ is in status 'new'; only leads in status 'qualified' convert") as caught:
            convert_lead(uow, lead)
        assert caught.value.reason == "status" and caught.value.id == lead.id
        assert uow.get("lead", lead.id).version == 1


def test_converting_twice_is_refused_naming_the_first_conversion(crm):
    with crm.unit_of_work() as uow:
        lead = qualified(uow, company="Acme")
        done = convert_lead(uow, lead, opportunity={})
        with pytest.raises(ConversionError, match="converting twice is refused") as again:
            convert_lead(uow, lead)
        uow.commit()
    assert again.value.reason == "converted"
    assert again.value.previous["contact_id"] == done.contact.id
    with crm.unit_of_work() as uow:
        with pytest.raises(ConversionError, match=f"into account {done.account.id}, contact {done.contact.id}, "
                                                  f"opportunity {done.opportunity.id}"):
            convert_lead(uow, lead.id)
        assert uow.query("account").count() == 1  # the refused conversion wrote nothing
        assert [e.action for e in uow.history("account", done.account.id)] == ["created", "converted"]


def test_an_unknown_lead_is_not_found(crm):
    with crm.unit_of_work() as uow, pytest.raises(NotFoundError, match="lead 99 not found"):
        convert_lead(uow, 99)


def test_a_stale_lead_record_is_a_conflict(crm):
    with crm.unit_of_work() as uow:
        lead = qualified(uow)
        uow.update(lead, title="CEO")
        with pytest.raises(CrmError, match="changed since version 1"):
            convert_lead(uow, lead)


def test_converting_many_is_all_or_nothing(crm):
    with crm.unit_of_work() as uow:
        good = qualified(uow, company="Acme")
        bad = uow.create("lead", last_name="Hopper", company="Navy")
        uow.commit()
    with crm.unit_of_work() as uow:
        with pytest.raises(ConversionError):
            convert_leads(uow, [good, bad])
        assert uow.query("account").count() == 0 and uow.query("lead").count() == 2
        with pytest.raises(ValidationError, match="given twice"):
            convert_leads(uow, [good.id, good.id])


def test_a_failing_write_after_a_flush_keeps_the_audit_queued_before_it(crm_factory):
    class Veto:
        PLUGIN = PluginInfo(name="veto")

        @hookimpl
        def crm_before_create(self, uow, entity, items):
            if entity == "note":
                uow.history("account", items[0]["account_id"])  # flushes the audit queued so far
                raise ValidationError("notes are refused", entity="note")

    crm = crm_factory([Veto()])
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        with pytest.raises(ValidationError):
            uow.create("note", body="x", account_id=account.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [e.action for e in uow.history("account", account.id)] == ["created"]


# -- bulk ----------------------------------------------------------------------------------------


def test_many_leads_convert_at_once_sharing_new_accounts_and_contacts(crm):
    with crm.unit_of_work() as uow:
        leads = [qualified(uow, last_name=f"L{n}", company=["Acme", "Navy", "acme"][n % 3], email=f"p{n % 4}@mail.example")
                 for n in range(12)]
        done = convert_leads(uow, leads, opportunity=lambda lead: {"amount": "100 EUR"} if lead.last_name != "L0" else None)
        uow.commit()
    assert [c.lead_id for c in done] == [lead.id for lead in leads]
    assert len({c.account.id for c in done}) == 2
    assert len({c.contact.id for c in done}) == 4
    assert done[0].opportunity is None and all(c.opportunity.amount == Money("100.00", "EUR") for c in done[1:])
    with crm.unit_of_work() as uow:
        assert (uow.query("lead").count(), uow.query("account").count(), uow.query("opportunity").count()) == (0, 2, 11)


def test_conversions_are_announced_after_the_commit(crm, captured_signals):
    with captured_signals(LEAD_CONVERTED) as sent, crm.unit_of_work() as uow:
        lead = qualified(uow, company="Acme")
        done = convert_lead(uow, lead)
        assert sent == []
        uow.commit()
    assert [(e.lead.id, e.lead.company, e.conversion.contact.id) for e in sent] == [(lead.id, "Acme", done.contact.id)]


# -- mapping -------------------------------------------------------------------------------------


class Regions:
    PLUGIN = PluginInfo(name="regions")

    @hookimpl
    def crm_entity_fields(self, entity_type):
        if entity_type in ("lead", "account"):
            return [Field("region", Choice("emea", "amer"))]
        return None


def test_the_mapping_carries_plugin_and_custom_fields(crm_factory):
    crm = crm_factory([Regions()], custom_fields={"lead": {"employees_hint": {"type": "integer"}, "note": {"type": "text"}},
                                                  "contact": {"lead_note": {"type": "text"}}},
                      sales={"conversion": {
                          "account": {"name": "company", "region": "region", "employees": "employees_hint", "industry": "source"},
                          "contact": {"last_name": "last_name", "lead_note": "note"},
                      }})
    with crm.unit_of_work() as uow:
        done = convert_lead(uow, qualified(uow, company="Acme", region="emea", employees_hint=40, source="referral",
                                           note="Call after 5", email="ada@acme.org"))
        assert (done.account.region, done.account.employees, done.account.industry) == ("emea", 40, "referral")
        assert (done.contact.lead_note, done.contact.first_name, done.contact.email) == ("Call after 5", None, None)


@pytest.mark.parametrize(("conversion", "message"), [
    ({"statuses": ["won"]}, "sales.conversion.statuses: 'won' is not a lead status"),
    ({"match_account_by": ["phone"]}, "unknown way 'phone'"),
    ({"account": {"name": "shoe"}}, "sales.conversion.account.name: lead has no field 'shoe'"),
    ({"contact": {"shoe": "email"}}, "sales.conversion.contact.shoe: contact has no field 'shoe'"),
    ({"account": {"employees": "company"}}, r"cannot carry lead.company \(string\) into account.employees \(integer\)"),
    ({"opportunity": {"stage_entered_at": "status_entered_at"}}, "is read-only"),
    ({"contact": {"email": 5}}, "must name a lead field"),
])
def test_a_bad_mapping_stops_start_up_naming_the_key(crm_factory, conversion, message):
    with pytest.raises(ConfigError, match=message):
        crm_factory(sales={"conversion": conversion})


def test_other_statuses_may_convert_when_configured(crm_factory):
    crm = crm_factory(sales={"conversion": {"statuses": ["working", "qualified"]}})
    with crm.unit_of_work() as uow:
        lead = uow.move(uow.create("lead", last_name="Lovelace"), "working")
        assert convert_lead(uow, lead).contact.last_name == "Lovelace"


# -- permissions ---------------------------------------------------------------------------------


@pytest.fixture
def team(crm_factory):
    crm = crm_factory(security=SECURITY)
    with crm.unit_of_work() as uow:
        users = {name: add_user(uow, name, roles=[role]) for name, role in
                 (("boss", "manager"), ("rep1", "rep"), ("rep2", "rep"), ("junior", "junior"))}
        uow.commit()
    actors = {name: Actor(user.id, name) for name, user in users.items()}
    leads = {}
    for name in ("rep1", "rep2", "junior"):
        with crm.unit_of_work(actors[name]) as uow:
            leads[name] = qualified(uow, last_name=name, company=f"{name} Ltd")
            uow.commit()
    return crm, actors, leads


def test_a_rep_converts_their_own_lead_into_records_they_own(team):
    crm, actors, leads = team
    with crm.unit_of_work(actors["rep1"]) as uow:
        done = convert_lead(uow, leads["rep1"].id, opportunity={})
        uow.commit()
    assert {done.account.owner_id, done.contact.owner_id, done.opportunity.owner_id} == {actors["rep1"].user_id}


def test_a_rep_may_not_convert_a_lead_they_may_not_update(team):
    crm, actors, leads = team
    with crm.unit_of_work(actors["rep1"]) as uow, pytest.raises(NotFoundError):
        convert_lead(uow, leads["rep2"].id)
    with crm.unit_of_work(actors["boss"]) as uow:
        assert convert_lead(uow, leads["rep2"].id).contact.owner_id == actors["rep2"].user_id


def test_a_user_who_may_not_create_contacts_cannot_convert(team):
    crm, actors, leads = team
    with crm.unit_of_work(actors["junior"]) as uow, pytest.raises(PermissionDeniedError, match="may not create contact"):
        convert_lead(uow, leads["junior"].id)


def test_accounts_the_actor_may_not_read_are_not_matched(team):
    crm, actors, leads = team
    with crm.unit_of_work(actors["rep2"]) as uow:
        uow.create("account", name="Shared Name Ltd")
        uow.commit()
    hidden = _account_of(crm, "rep2")
    with crm.unit_of_work(actors["rep1"]) as uow:
        lead = qualified(uow, company="Shared Name Ltd")
        done = convert_lead(uow, lead)
        assert done.account_created and done.account.id != hidden
        with pytest.raises(NotFoundError):
            convert_lead(uow, qualified(uow, last_name="X"), account_id=hidden)


def _account_of(crm: Any, owner: str) -> int:
    with crm.unit_of_work() as uow:
        user = uow.query("user").where(username=owner).first()
        return uow.query("account").where(owner_id=user.id).first().id


# -- batches -------------------------------------------------------------------------------------

_TIMES = {"created_at", "updated_at", "stage_entered_at", "status_entered_at"}


def _leads_for_batches(uow: Any) -> list[Any]:
    """Leads of which some share a company or an e-mail address, some match records made
    beforehand, and one has no company."""
    uow.create("account", name="Known Ltd")
    uow.create("contact", last_name="Known", email="known@mail.example")
    spec = [("Acme", "a1@acme.example"), ("Navy", "n1@navy.example"), ("acme", "a2@acme.example"),
            ("Known Ltd", "k1@known.example"), ("Navy", "n1@navy.example"), ("Solo", "known@mail.example"),
            (None, "x@gmail.com"), ("Acme", "a3@acme.example")]
    leads = [qualified(uow, last_name=f"L{n}", company=company, email=email) for n, (company, email) in enumerate(spec)]
    uow.tag(leads[0], "vip")
    uow.create("note", body="Likes engines", lead_id=leads[2].id)
    return leads


def _state(crm: Any) -> dict[str, Any]:
    """Every record and audit entry, without the times of day."""
    with crm.unit_of_work() as uow:
        records = {entity: sorted(({k: v for k, v in r.to_dict().items() if k not in _TIMES}
                                   for r in uow.query(entity).all()), key=lambda v: v["id"])
                   for entity in ("account", "contact", "opportunity", "note", "lead")}
        trails = {}
        for entity, rows in records.items():
            for row in rows:
                trails[entity, row["id"]] = [(e.action, {k: v for k, v in e.changes.items() if k not in _TIMES})
                                             for e in uow.history(entity, row["id"])]
        timelines = {row["id"]: sorted((e.entity, e.record_id, e.action) for e in uow.timeline("account", row["id"]))
                     for row in records["account"]}
        tags = {contact.id: uow.tags(contact) for contact in uow.query("contact").all()}
    return {"records": records, "trails": trails, "timelines": timelines, "tags": tags}


def test_batches_mixing_new_and_matched_records_convert_as_one_by_one(crm_factory, monkeypatch, captured_signals):
    from crm_sales import conversion

    monkeypatch.setattr(conversion, "_BATCH", 3)  # later batches match the accounts earlier ones created
    results, sent = [], []
    for together in (True, False):
        crm = crm_factory()
        with captured_signals("record-created", crm) as created, captured_signals(LEAD_CONVERTED, crm) as converted, \
                crm.unit_of_work() as uow:
            leads = _leads_for_batches(uow)
            uow.commit()
        with captured_signals("record-created", crm) as created, captured_signals(LEAD_CONVERTED, crm) as converted, \
                captured_signals("record-deleted", crm) as deleted, crm.unit_of_work() as uow:
            spec = {"amount": "500 EUR", "close_date": "2026-09-30"}
            if together:
                done = convert_leads(uow, leads, opportunity=spec)
            else:
                done = [convert_lead(uow, lead.id, opportunity=spec) for lead in leads]
            uow.commit()
        results.append(_state(crm))
        sent.append({
            "created": sorted((e.entity, e.record.id) for e in created),
            "deleted": sorted((e.entity, e.record.id) for e in deleted),
            "converted": [(e.lead.id, e.conversion.account and e.conversion.account.id, e.conversion.contact.id,
                           e.conversion.opportunity.id, e.conversion.contact_created) for e in converted],
            "account_created": [e.conversion.account_created for e in converted],
            "returned": [(c.lead_id, c.account and c.account.to_dict(), c.contact.to_dict(), c.opportunity.id) for c in done],
        })
    batch, single = results
    assert batch["records"] == single["records"]
    assert batch["trails"] == single["trails"]
    assert batch["timelines"] == single["timelines"]
    assert batch["tags"] == single["tags"]
    assert sent[0]["created"] == sent[1]["created"] and sent[0]["deleted"] == sent[1]["deleted"]
    assert sent[0]["converted"] == sent[1]["converted"]
    returned = [[(lead, {k: v for k, v in (a or {}).items() if k not in _TIMES}, {k: v for k, v in c.items() if k not in _TIMES}, o)
                 for lead, a, c, o in run["returned"]] for run in sent]
    assert returned[0] == returned[1]
    # what was checked: 4 accounts (Known Ltd matched, Acme and Navy matched again by later
    # batches), a contact matched, one shared across batches, every lead gone
    assert len(batch["records"]["account"]) == 4 and batch["records"]["lead"] == []
    assert [c[4] for c in sent[0]["converted"]] == [True, True, True, True, False, False, True, True]
    # leads of one batch that share a new account all report it created
    assert sent[0]["account_created"] == [True, True, True, False, False, True, False, False]
    assert sent[1]["account_created"] == [True, True, False, False, False, True, False, False]


def test_a_failing_lead_in_a_later_batch_rolls_every_batch_back(crm_factory, monkeypatch, captured_signals):
    from crm_sales import conversion

    class Veto:
        PLUGIN = PluginInfo(name="veto")

        @hookimpl
        def crm_before_create(self, uow, entity, items):
            if entity == "opportunity" and any(values.get("name") == "Navy" for values in items):
                raise ValidationError("no deals with the navy", entity="opportunity")

    monkeypatch.setattr(conversion, "_BATCH", 2)
    crm = crm_factory([Veto()])
    with crm.unit_of_work() as uow:
        leads = [qualified(uow, last_name=f"L{n}", company=company, email=f"p{n}@x.example")
                 for n, company in enumerate(["Acme", "Babbage", "Curie", "Navy", "Euler"])]
        uow.commit()
    with captured_signals("record-created", crm) as created, captured_signals(LEAD_CONVERTED, crm) as converted, \
            crm.unit_of_work() as uow:
        with pytest.raises(ValidationError, match="no deals with the navy"):
            convert_leads(uow, leads, opportunity={})
        assert [uow.query(entity).count() for entity in ("account", "contact", "opportunity", "lead")] == [0, 0, 0, 5]
        uow.commit()
    assert created == [] and converted == []
    with crm.unit_of_work() as uow:
        assert [e.action for e in uow.history("lead", leads[0].id)] == ["created"]
        assert uow.query("lead").count() == 5


def test_a_lead_changed_during_its_conversion_is_a_conflict(crm_factory):
    class Touch:
        PLUGIN = PluginInfo(name="touch")

        @hookimpl
        def crm_after_create(self, uow, entity, records):
            if entity == "contact":
                lead = uow.query("lead").where(email=records[0].email).first()
                uow.update(lead, title="Touched")

    crm = crm_factory([Touch()])
    with crm.unit_of_work() as uow:
        lead = qualified(uow, company="Acme", email="ada@acme.org")
        with pytest.raises(CrmError, match=f"lead {lead.id} changed since version 1 was read"):
            convert_lead(uow, lead)
        assert uow.get("lead", lead.id).title is None and uow.query("account").count() == 0


def test_an_account_changed_since_an_earlier_batch_is_matched_as_it_is_now(crm_factory, monkeypatch):
    from crm_sales import conversion

    class Stamp:
        PLUGIN = PluginInfo(name="stamp")

        @hookimpl
        def crm_after_create(self, uow, entity, records):
            if entity == "account":
                for record in records:
                    uow.update(record, description="Stamped")

    monkeypatch.setattr(conversion, "_BATCH", 1)
    crm = crm_factory([Stamp()])
    with crm.unit_of_work() as uow:
        first = qualified(uow, company="Acme", email="a@acme.example")
        second = qualified(uow, last_name="Hopper", company="ACME", email="g@acme.example")
        done = convert_leads(uow, [first, second])
        assert done[0].account_created and not done[1].account_created
        assert done[1].account == uow.get("account", done[0].account.id)
        assert (done[1].account.version, done[1].account.description) == (2, "Stamped")


