"""The audit trail and timelines: every change is an entry (actor, time, entity, id, field old ->
new), trails are chronological, deletes keep a snapshot, and an account's timeline is the
360-degree view of the records around it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import Actor, EntityType, Field, PluginError, PluginInfo, hookimpl
from crmcore.fields import String
from crmcore.security import admin


def test_create_writes_an_entry_with_every_given_field(crm, make_user):
    ada = make_user(crm, "ada")
    with crm.unit_of_work(ada) as uow:
        account = uow.create("account", name="Acme", employees=12, annual_revenue="1000.50 EUR")
        uow.commit()
    with crm.unit_of_work() as uow:
        (entry,) = uow.history("account", account.id)
    assert (entry.action, entry.entity, entry.record_id, entry.actor_id) == ("created", "account", account.id, ada.user_id)
    assert entry.changes == {
        "name": (None, "Acme"),
        "employees": (None, 12),
        "annual_revenue": (None, {"amount": "1000.50", "currency": "EUR"}),
        "owner_id": (None, ada.user_id),
    }


def test_update_writes_old_and_new_of_each_changed_field(crm):
    with crm.unit_of_work() as uow:
        contact = uow.create("contact", last_name="Lovelace", birthdate="1815-12-10")
        uow.update(contact, first_name="Ada", birthdate="1815-12-11", last_name="Lovelace")
        uow.commit()
    with crm.unit_of_work() as uow:
        entry = uow.history("contact", contact.id)[-1]
    assert entry.action == "updated"
    assert entry.changes == {"first_name": (None, "Ada"), "birthdate": ("1815-12-10", "1815-12-11")}


def test_delete_keeps_a_snapshot_of_the_record(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme", industry="Tools", website="acme.example")
        uow.delete(account)
        uow.commit()
    with crm.unit_of_work() as uow:
        entry = uow.history("account", account.id)[-1]
    assert entry.action == "deleted"
    assert {"name": ("Acme", None), "industry": ("Tools", None), "website": ("https://acme.example", None)}.items() <= entry.changes.items()
    assert all(new is None for _, new in entry.changes.values())


def test_entry_records_the_acting_user(crm, make_user):
    ada, bob = make_user(crm, "ada"), make_user(crm, "bob")
    with crm.unit_of_work(ada) as uow:
        account = uow.create("account", name="Acme")
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        uow.update("account", account.id, {"name": "Acme Inc"})
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [e.actor_id for e in uow.history("account", account.id)] == [ada.user_id, bob.user_id]


def test_system_actor_is_recorded_as_no_user(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        assert uow.history("account", account.id)[0].actor_id is None


def test_entry_time_is_timezone_aware_and_current(crm):
    before = dt.datetime.now(dt.UTC)
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.commit()
    with crm.unit_of_work() as uow:
        (entry,) = uow.history("account", account.id)
    assert entry.at.tzinfo is not None
    assert before - dt.timedelta(seconds=1) <= entry.at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)


def test_history_is_chronological(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="A")
        uow.commit()
    for name in ("B", "C", "D"):
        with crm.unit_of_work() as uow:
            uow.update("account", account.id, {"name": name})
            uow.commit()
    with crm.unit_of_work() as uow:
        entries = uow.history("account", account.id)
    assert [e.changes["name"][1] for e in entries] == ["A", "B", "C", "D"]
    assert [e.at for e in entries] == sorted(e.at for e in entries)


def test_history_shows_entries_not_yet_committed_in_the_same_unit(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        assert [e.action for e in uow.history("account", account.id)] == ["created"]


def test_rolled_back_work_leaves_no_entry(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.history("account", account.id)  # written to the table, inside the transaction
    with crm.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(crm.core_tables["audit"]).where(
            crm.core_tables["audit"].c.entity == "account")).scalar_one() == 0


def test_update_without_change_writes_no_entry(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.update(account, name="Acme")
        assert len(uow.history("account", account.id)) == 1


def test_cascaded_delete_is_audited_for_each_record(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        note = uow.create("note", body="hello", account_id=account.id)
        uow.delete(account)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.history("note", note.id)[-1].changes == {"body": ("hello", None), "account_id": (account.id, None)}


class Quiet:
    PLUGIN = PluginInfo(name="quiet")

    @hookimpl
    def crm_entity_types(self):
        return [EntityType("ping", fields=(Field("label", String(20)),), auditable=False)]


def test_entity_declared_not_auditable_writes_no_entry(crm_factory):
    app = crm_factory([Quiet()])
    with app.unit_of_work() as uow:
        ping = uow.create("ping", label="x")
        uow.update(ping, label="y")
        uow.commit()
    with app.unit_of_work() as uow:
        assert uow.history("ping", ping.id) == []


def test_many_changes_in_one_unit_are_all_audited(crm):
    with crm.unit_of_work() as uow:
        for n in range(120):
            uow.create("tag", name=f"t{n}")
        uow.commit()
    with crm.connect() as connection:
        audit = crm.core_tables["audit"]
        count = connection.execute(sa.select(sa.func.count()).select_from(audit).where(audit.c.entity == "tag")).scalar_one()
    assert count == 120


# -- timelines ----------------------------------------------------------------------------------


@pytest.fixture
def account_world(crm):
    """An account with a contact, lead, opportunity, activity, note and document, an activity
    and a note about the contact, and an unrelated account with a note."""
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        contact = uow.create("contact", last_name="Lovelace", account_id=account.id)
        lead = uow.create("lead", last_name="Byron", account_id=account.id)
        deal = uow.create("opportunity", name="Deal", account_id=account.id)
        meeting = uow.create("activity", kind="meeting", subject="Kick-off", account_id=account.id)
        note = uow.create("note", body="account note", account_id=account.id)
        document = uow.create("document", title="Contract", account_id=account.id)
        call = uow.create("activity", kind="call", subject="Call Ada", contact_id=contact.id)
        contact_note = uow.create("note", body="contact note", contact_id=contact.id)
        other = uow.create("account", name="Other")
        stray = uow.create("note", body="other note", account_id=other.id)
        uow.commit()
    return crm, locals()


def test_account_timeline_is_the_360_degree_view(account_world):
    crm, r = account_world
    with crm.unit_of_work() as uow:
        entries = uow.timeline("account", r["account"].id)
    seen = {(e.entity, e.record_id) for e in entries}
    expected = {
        ("account", r["account"].id), ("contact", r["contact"].id), ("lead", r["lead"].id),
        ("opportunity", r["deal"].id), ("activity", r["meeting"].id), ("note", r["note"].id),
        ("document", r["document"].id), ("activity", r["call"].id), ("note", r["contact_note"].id),
    }
    assert seen == expected


def test_account_timeline_leaves_out_other_accounts(account_world):
    crm, r = account_world
    with crm.unit_of_work() as uow:
        seen = {(e.entity, e.record_id) for e in uow.timeline("account", r["account"].id)}
    assert ("note", r["stray"].id) not in seen and ("account", r["other"].id) not in seen


def test_timeline_is_chronological(account_world):
    crm, r = account_world
    with crm.unit_of_work() as uow:
        uow.update("contact", r["contact"].id, {"title": "CTO"})
        uow.commit()
    with crm.unit_of_work() as uow:
        entries = uow.timeline("account", r["account"].id)
    assert [(e.at, e.id) for e in entries] == sorted((e.at, e.id) for e in entries)
    assert (entries[0].entity, entries[-1].entity, entries[-1].action) == ("account", "contact", "updated")


def test_contact_timeline_has_its_activities_and_notes(account_world):
    crm, r = account_world
    with crm.unit_of_work() as uow:
        seen = {(e.entity, e.record_id) for e in uow.timeline("contact", r["contact"].id)}
    assert seen == {("contact", r["contact"].id), ("activity", r["call"].id), ("note", r["contact_note"].id)}


def test_timeline_of_a_record_nobody_refers_to_is_its_history(crm):
    with crm.unit_of_work() as uow:
        tag = uow.create("tag", name="vip")
        uow.update(tag, color="red")
        assert uow.timeline("tag", tag.id) == uow.history("tag", tag.id)


def test_timeline_of_a_deleted_record_keeps_its_entries(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.delete(account)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [e.action for e in uow.timeline("account", account.id)] == ["created", "deleted"]


# -- tags in the trail --------------------------------------------------------------------------


def test_tagging_is_audited_with_the_tags_added(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.tag(account, "vip")
        uow.tag(account, "vip", "hot")
        uow.untag(account, "hot", "never-there")
        entries = uow.history("account", account.id)
    assert [(e.action, e.changes) for e in entries[1:]] == [
        ("tagged", {"tags": (None, "vip")}),
        ("tagged", {"tags": (None, "hot")}),
        ("untagged", {"tags": ("hot", None)}),
    ]


def test_tagging_nothing_new_writes_no_entry(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.tag(account, "vip")
        uow.tag(account, "vip")
        uow.untag(account, "other")
        assert [e.action for e in uow.history("account", account.id)] == ["created", "tagged"]


class PinnedNotes:
    """Puts the notes named in ``pinned`` on the timeline of every account."""

    def __init__(self) -> None:
        self.pinned: list[int] = []
        self.answer: Any = None

    @hookimpl
    def crm_timeline_records(self, uow: Any, entity: str, record_id: int) -> Any:
        if self.answer is not None:
            return self.answer
        return {"note": self.pinned} if entity == "account" else None


def test_plugins_add_records_to_a_timeline_the_actor_may_read(crm_factory):
    plugin = PinnedNotes()
    crm = crm_factory(plugins=[plugin], security={
        "profiles": {"rep": {"privileges": {"account": "all", "note": "all"}}},
        "roles": {"rep": {"profiles": ["rep"]}},
        "entities": {"note": {"sharing": "private"}},
    })
    with crm.unit_of_work() as uow:
        rep = admin.add_user(uow, "rep", roles=["rep"])
        account = uow.create("account", name="Acme")
        elsewhere = uow.create("note", body="about another thing")  # owned by nobody: private
        uow.commit()
    with crm.unit_of_work(Actor(rep.id, "rep")) as uow:
        mine = uow.create("note", body="mine")
        uow.commit()
    plugin.pinned = [mine.id, elsewhere.id, 987_654]
    with crm.unit_of_work() as uow:
        seen = {(e.entity, e.record_id) for e in uow.timeline("account", account.id)}
        assert {("note", mine.id), ("note", elsewhere.id)} <= seen
    with crm.unit_of_work(Actor(rep.id, "rep")) as uow:
        seen = {(e.entity, e.record_id) for e in uow.timeline("account", account.id)}
        assert ("note", mine.id) in seen and ("note", elsewhere.id) not in seen
        plugin.answer = {"gizmo": [1]}
        with pytest.raises(PluginError, match="unknown entity type 'gizmo'"):
            uow.timeline("account", account.id)
