"""The core entity types (users, teams, accounts, contacts, leads, opportunities, activities,
notes, tags, documents) and tagging."""

from __future__ import annotations

import datetime as dt

import pytest

from crmcore import NotFoundError, ValidationError
from crmcore.builtin.entities import ACTIVITY_KINDS, CORE_ENTITIES

CORE_NAMES = ["user", "team", "account", "contact", "lead", "opportunity", "activity", "note", "tag", "document"]


def test_every_core_entity_type_is_registered_with_a_crm_table(crm):
    for name in CORE_NAMES:
        assert crm.registry.entity(name).table == f"crm_{name}"
    assert [e.name for e in CORE_ENTITIES] == CORE_NAMES


@pytest.mark.parametrize("name", CORE_NAMES)
def test_core_entity_accepts_a_sample_record(crm, make_record, name):
    record = make_record(crm, name)
    with crm.unit_of_work() as uow:
        assert uow.get(name, record.id) == record


def test_ownable_core_entities_are_the_business_records(crm):
    ownable = {e.name for e in crm.registry if e.ownable}
    assert {"account", "contact", "lead", "opportunity", "activity", "note", "document"} <= ownable
    assert not ({"user", "team", "tag"} & ownable)


def test_activity_kinds_are_meeting_call_email_and_task(crm):
    assert ACTIVITY_KINDS == ("meeting", "call", "email", "task")
    with crm.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("activity", kind="visit", subject="x")
    assert info.value.messages == {"kind": ["expected one of 'meeting', 'call', 'email', 'task', got 'visit'"]}


def test_activity_keeps_start_end_and_due_times_aware(crm):
    with crm.unit_of_work() as uow:
        meeting = uow.create(
            "activity", kind="meeting", subject="Kick-off",
            starts_at="2026-05-04T09:00:00+02:00", ends_at="2026-05-04T10:00:00+02:00", due_at="2026-05-03T17:00Z",
        )
        uow.commit()
    with crm.unit_of_work() as uow:
        stored = uow.get("activity", meeting.id)
    assert stored.ends_at - stored.starts_at == dt.timedelta(hours=1)
    assert stored.due_at == dt.datetime(2026, 5, 3, 17, tzinfo=dt.UTC)
    assert (stored.status, stored.all_day) == ("planned", False)


def test_activity_ending_before_it_starts_is_refused(crm):
    with crm.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("activity", kind="meeting", subject="Backwards",
                   starts_at="2026-05-04T10:00Z", ends_at="2026-05-04T09:00Z")
    assert info.value.messages == {"ends_at": ["ends before it starts (2026-05-04T09:00:00+00:00 < 2026-05-04T10:00:00+00:00)"]}


def test_activity_moved_to_end_before_its_start_is_refused(crm):
    with crm.unit_of_work() as uow:
        call = uow.create("activity", kind="call", subject="Intro", starts_at="2026-05-04T10:00Z")
        with pytest.raises(ValidationError, match="ends_at: ends before it starts"):
            uow.update(call, ends_at="2026-05-04T09:30Z")


def test_activity_participants_are_users_and_contacts(crm, make_user):
    ada = make_user(crm, "ada")
    with crm.unit_of_work() as uow:
        contact = uow.create("contact", last_name="Lovelace")
        meeting = uow.create("activity", kind="meeting", subject="Demo",
                             participants=[{"user_id": ada.user_id}, {"contact_id": contact.id}])
    assert meeting.participants == [{"user_id": ada.user_id}, {"contact_id": contact.id}]


def test_activity_participants_of_another_shape_are_refused(crm):
    with crm.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("activity", kind="meeting", subject="Demo", participants=[{"name": "Ada"}])
    assert info.value.messages["participants"][0].startswith('expected a list such as [{"user_id": 3}')


def test_activity_can_be_about_any_core_record(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        lead = uow.create("lead", last_name="Byron")
        deal = uow.create("opportunity", name="Deal", account_id=account.id)
        task = uow.create("activity", kind="task", subject="Follow up", lead_id=lead.id, opportunity_id=deal.id)
    assert (task.lead_id, task.opportunity_id) == (lead.id, deal.id)


def test_lead_source_is_one_of_the_known_sources(crm):
    with crm.unit_of_work() as uow:
        assert uow.create("lead", last_name="Byron", source="Referral").source == "referral"
        with pytest.raises(ValidationError, match="source: expected one of 'web', 'referral'"):
            uow.create("lead", last_name="Byron", source="rumour")


def test_opportunity_amount_is_money(crm):
    with crm.unit_of_work() as uow:
        deal = uow.create("opportunity", name="Deal", amount="50000 EUR")
    assert (str(deal.amount), deal.amount.currency) == ("50000.00 EUR", "EUR")


def test_user_name_must_be_unique(crm, make_user):
    make_user(crm, "ada")
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="username: 'ada' is already used by another user"):
        uow.create("user", username="ada")


def test_user_gets_default_time_zone_and_is_active(crm, make_user):
    make_user(crm, "ada")
    with crm.unit_of_work() as uow:
        (user,) = [u for u in uow.all("user") if u.username == "ada"]
    assert (user.timezone, user.active) == ("UTC", True)


def test_document_keeps_metadata_and_a_link_to_the_file(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        document = uow.create("document", title="Contract", filename="contract.pdf", content_type="application/pdf",
                              size=12345, uri="s3://docs/contract.pdf", checksum="sha256:abc", account_id=account.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        stored = uow.get("document", document.id)
    assert (stored.filename, stored.size, stored.uri, stored.account_id) == (
        "contract.pdf", 12345, "s3://docs/contract.pdf", account.id)


def test_note_needs_a_body(crm):
    with crm.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("note", title="Empty")
    assert info.value.messages == {"body": ["is required"]}


def test_contact_of_a_deleted_account_blocks_the_delete(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        contact = uow.create("contact", last_name="Lovelace", account_id=account.id)
        with pytest.raises(ValidationError, match=f"referenced by contact {contact.id} \\(field account_id\\)"):
            uow.delete(account)


def test_deleting_a_team_clears_its_members_team(crm):
    with crm.unit_of_work() as uow:
        team = uow.create("team", name="North")
        user = uow.create("user", username="ada", team_id=team.id)
        uow.delete(team)
        assert uow.get("user", user.id).team_id is None


# -- tags ---------------------------------------------------------------------------------------


@pytest.fixture
def tagged_world(crm):
    with crm.unit_of_work() as uow:
        acme = uow.create("account", name="Acme")
        globex = uow.create("account", name="Globex")
        ada = uow.create("contact", last_name="Lovelace")
        uow.tag(acme, "vip", "partner")
        uow.tag(globex, "vip")
        uow.tag(ada, "vip", "speaker")
        uow.commit()
    return crm, acme, globex, ada


def test_tagged_record_lists_its_tags_sorted(tagged_world):
    crm, acme, _, _ = tagged_world
    with crm.unit_of_work() as uow:
        assert uow.tags(acme) == ["partner", "vip"]


def test_tag_counts_feed_a_tag_cloud_most_used_first(tagged_world):
    crm, *_ = tagged_world
    with crm.unit_of_work() as uow:
        assert uow.tag_counts() == [("vip", 3), ("partner", 1), ("speaker", 1)]


def test_tag_counts_of_one_entity_type(tagged_world):
    crm, *_ = tagged_world
    with crm.unit_of_work() as uow:
        assert uow.tag_counts("account") == [("vip", 2), ("partner", 1)]


def test_tagged_lists_the_records_carrying_a_tag(tagged_world):
    crm, acme, globex, _ = tagged_world
    with crm.unit_of_work() as uow:
        assert [r.id for r in uow.tagged("account", "vip")] == [acme.id, globex.id]


def test_untag_removes_the_tag_from_one_record_only(tagged_world):
    crm, acme, globex, _ = tagged_world
    with crm.unit_of_work() as uow:
        uow.untag(acme, "vip")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.tags(acme) == ["partner"]
        assert uow.tags(globex) == ["vip"]
        assert ("vip", 2) in uow.tag_counts()


def test_tagging_twice_keeps_one_tag(tagged_world):
    crm, acme, _, _ = tagged_world
    with crm.unit_of_work() as uow:
        uow.tag(acme, "vip", "vip")
        assert uow.tags(acme) == ["partner", "vip"]
        assert len([t for t in uow.all("tag") if t.name == "vip"]) == 1


def test_tag_names_are_trimmed_like_the_tag_name_field(tagged_world):
    crm, acme, _, _ = tagged_world
    with crm.unit_of_work() as uow:
        uow.tag(acme, "  vip ", " new ")
        assert uow.tags(acme) == ["new", "partner", "vip"]


def test_empty_tag_name_is_refused(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        with pytest.raises(ValidationError, match="tags: expected a tag name, got '  '"):
            uow.tag(account, "  ")


def test_too_long_tag_name_is_refused(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        with pytest.raises(ValidationError, match="tags: expected text of at most 64 characters"):
            uow.tag(account, "x" * 65)
        assert uow.tags(account) == []


def test_records_that_are_not_ownable_cannot_be_tagged(crm):
    with crm.unit_of_work() as uow:
        team = uow.create("team", name="North")
        with pytest.raises(ValidationError, match="team records cannot be tagged; only ownable entity types can"):
            uow.tag(team, "vip")


def test_deleting_a_record_drops_its_tags_from_the_counts(tagged_world):
    crm, acme, _, _ = tagged_world
    with crm.unit_of_work() as uow:
        uow.delete(acme)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.tag_counts("account") == [("vip", 1)]


def test_tags_roll_back_with_the_unit(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.commit()
    with crm.unit_of_work() as uow:
        uow.tag(account, "vip")
    with crm.unit_of_work() as uow:
        assert uow.tags(account) == [] and uow.tag_counts() == []


def test_deleted_record_cannot_be_tagged(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.delete(account)
        with pytest.raises(NotFoundError, match=f"account {account.id} not found"):
            uow.tag(account, "vip")
        assert uow.tag_counts() == []
