"""The unit of work: immutable records, create/get/update/delete, owners, read-only fields,
references and what deleting does to them, rollback, and signals after commit."""

from __future__ import annotations

import decimal

import attrs
import pytest
import sqlalchemy as sa

from crmcore import (
    Actor,
    ConflictError,
    CrmError,
    DatabaseError,
    EntityType,
    Field,
    Money,
    NotFoundError,
    PermissionDeniedError,
    PluginError,
    PluginInfo,
    ReferenceError,
    ValidationError,
    hookimpl,
)
from crmcore.errors import missing_reference
from crmcore.fields import DateTime, MoneyType, MultiChoice, Reference, String

D = decimal.Decimal


class Kit:
    """A plugin with a read-only field, a multi-choice field and a cascading reference."""

    PLUGIN = PluginInfo(name="kit")

    @hookimpl
    def crm_entity_types(self):
        return [
            EntityType(
                "gadget",
                fields=(
                    Field("name", String(50), required=True),
                    Field("serial", String(20), read_only=True),
                    Field("colors", MultiChoice("red", "green", "blue")),
                    Field("price", MoneyType()),
                    Field("checked_at", DateTime()),
                    Field("account_id", Reference("account", on_delete="cascade")),
                ),
                ownable=True,
            )
        ]


@pytest.fixture
def kit(crm_factory):
    return crm_factory([Kit()], {"crm": {"currency": "EUR"}})


# -- records are values -------------------------------------------------------------------------


def test_record_attributes_cannot_be_assigned(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        account.name = "Other"


def test_record_values_cannot_be_changed(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
    with pytest.raises(TypeError):
        account.values["name"] = "Other"


def test_record_copy_from_to_dict_does_not_change_the_record(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
    copy = account.to_dict()
    copy["name"] = "Other"
    assert account.name == "Acme"


def test_reading_an_unknown_record_attribute_says_so(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
    with pytest.raises(AttributeError, match="account record has no field 'nam'"):
        account.nam  # noqa: B018


# -- create, get, update, delete ----------------------------------------------------------------


def test_create_returns_the_stored_record(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", {"name": "Acme"}, industry="Tools")
        uow.commit()
    assert (account.version, account.name, account.industry) == (1, "Acme", "Tools")
    with crm.unit_of_work() as uow:
        assert uow.get("account", account.id) == account


def test_get_of_a_missing_record_names_entity_and_id(crm):
    with crm.unit_of_work() as uow, pytest.raises(NotFoundError, match="account 999 not found"):
        uow.get("account", 999)


def test_get_with_an_id_that_is_not_a_number_names_it(crm):
    with crm.unit_of_work() as uow, pytest.raises(NotFoundError, match="account id must be a whole number, got 'abc'"):
        uow.get("account", "abc")


def test_update_returns_the_next_version(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        updated = uow.update(account, name="Acme Inc")
        uow.commit()
    assert (updated.version, updated.name) == (2, "Acme Inc")
    with crm.unit_of_work() as uow:
        assert uow.get("account", account.id) == updated


def test_update_by_entity_and_id(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        updated = uow.update("account", account.id, {"industry": "Tools"})
    assert updated.industry == "Tools"


def test_update_by_record_with_a_mapping(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        updated = uow.update(account, {"industry": "Tools"})
    assert updated.industry == "Tools"


def test_update_without_a_change_keeps_the_version_and_writes_no_audit(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme", annual_revenue="10 EUR")
        same = uow.update(account, name=" Acme ", annual_revenue=Money(D("10.00"), "EUR"))
        assert same is account or same == account
        assert [e.action for e in uow.history("account", account.id)] == ["created"]


def test_update_of_only_the_currency_is_a_change(kit):
    with kit.unit_of_work() as uow:
        gadget = uow.create("gadget", name="g", price="10")
        updated = uow.update(gadget, price="10 USD")
        uow.commit()
    assert updated.price == Money(D("10.00"), "USD")
    with kit.unit_of_work() as uow:
        assert uow.get("gadget", gadget.id).price == Money(D("10.00"), "USD")


def test_update_of_a_money_field_to_empty_clears_amount_and_currency(kit):
    with kit.unit_of_work() as uow:
        gadget = uow.create("gadget", name="g", price="10")
        uow.update(gadget, price=None)
        uow.commit()
    with kit.unit_of_work() as uow:
        assert uow.get("gadget", gadget.id).price is None


def test_update_of_a_multi_choice_field_round_trips(kit):
    with kit.unit_of_work() as uow:
        gadget = uow.create("gadget", name="g", colors="red")
        uow.update(gadget, colors=["blue", "green"])
        uow.commit()
    with kit.unit_of_work() as uow:
        assert uow.get("gadget", gadget.id).colors == ("green", "blue")


def test_multi_choice_given_in_another_order_is_no_change(kit):
    with kit.unit_of_work() as uow:
        gadget = uow.create("gadget", name="g", colors="red;blue")
        same = uow.update(gadget, colors="blue,red")
    assert same.version == 1


def test_delete_removes_the_record(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.delete(account)
        uow.commit()
    with crm.unit_of_work() as uow, pytest.raises(NotFoundError):
        uow.get("account", account.id)


def test_delete_by_entity_and_id(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.delete("account", account.id)
        assert uow.all("account") == []


def test_delete_of_a_missing_record_names_it(crm):
    with crm.unit_of_work() as uow, pytest.raises(NotFoundError, match="account 42 not found"):
        uow.delete("account", 42)


def test_changes_lists_what_the_unit_did(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.update(account, name="B")
        uow.delete("account", account.id)
        assert [(c.action, c.entity, c.id) for c in uow.changes] == [
            ("created", "account", account.id), ("updated", "account", account.id), ("deleted", "account", account.id),
        ]


# -- owners and read-only fields ----------------------------------------------------------------


def test_owner_defaults_to_the_acting_user(crm, make_user):
    ada = make_user(crm, "ada")
    with crm.unit_of_work(ada) as uow:
        account = uow.create("account", name="Acme")
    assert account.owner_id == ada.user_id


def test_owner_given_explicitly_is_kept(crm, make_user):
    ada, bob = make_user(crm, "ada"), make_user(crm, "bob")
    with crm.unit_of_work(ada) as uow:
        account = uow.create("account", name="Acme", owner_id=bob.user_id)
    assert account.owner_id == bob.user_id


def test_system_actor_creates_records_without_an_owner(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
    assert account.owner_id is None and account.created_by is None


def test_records_remember_who_created_and_updated_them(crm, make_user):
    ada, bob = make_user(crm, "ada"), make_user(crm, "bob")
    with crm.unit_of_work(ada) as uow:
        account = uow.create("account", name="Acme")
        uow.commit()
    with crm.unit_of_work("bob") as uow:
        updated = uow.update("account", account.id, {"name": "B"})
        uow.commit()
    assert (updated.created_by, updated.updated_by) == (ada.user_id, bob.user_id)


def test_read_only_field_written_by_a_user_is_refused_naming_the_field(kit, make_user):
    ada = make_user(kit, "ada")
    with kit.unit_of_work(ada) as uow, pytest.raises(PermissionDeniedError) as info:
        uow.create("gadget", name="g", serial="S-1")
    assert str(info.value) == "gadget.serial is read-only; it is set by crmcore or its workflow"
    assert info.value.field == "serial"


def test_read_only_field_updated_by_a_user_is_refused(kit, make_user):
    ada = make_user(kit, "ada")
    with kit.unit_of_work() as uow:
        gadget = uow.create("gadget", name="g", serial="S-1")
        uow.commit()
    with kit.unit_of_work(ada) as uow, pytest.raises(PermissionDeniedError, match=r"gadget\.serial is read-only"):
        uow.update("gadget", gadget.id, {"serial": "S-2"})


def test_read_only_field_is_written_by_the_system_actor(kit):
    with kit.unit_of_work() as uow:
        gadget = uow.create("gadget", name="g", serial="S-1")
    assert gadget.serial == "S-1"


def test_system_field_cannot_be_written(crm):
    with crm.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("account", name="Acme", version=7)
    assert info.value.messages == {"version": ["is set by crmcore and cannot be written"]}


def test_unknown_field_is_a_validation_error_for_every_actor(crm, make_user):
    ada = make_user(crm, "ada")
    for actor in (None, ada):
        with crm.unit_of_work(actor) as uow, pytest.raises(ValidationError) as info:
            uow.create("account", name="Acme", colour="red")
        assert info.value.messages == {"colour": ["unknown field"]}


def test_required_field_missing_on_create_is_named(crm):
    with crm.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("contact", first_name="Ada")
    assert info.value.messages == {"last_name": ["is required"]}
    assert str(info.value) == "contact: last_name: is required"


def test_required_field_cannot_be_cleared(crm):
    with crm.unit_of_work() as uow:
        contact = uow.create("contact", last_name="Lovelace")
        with pytest.raises(ValidationError, match="last_name: is required"):
            uow.update(contact, last_name="  ")


def test_unique_field_clash_names_field_and_value(crm, make_user):
    make_user(crm, "ada")
    with crm.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("user", username="ada")
    assert info.value.messages == {"username": ["'ada' is already used by another user"]}


# -- references ---------------------------------------------------------------------------------


def test_reference_to_a_missing_record_is_a_clear_error(crm):
    with crm.unit_of_work() as uow, pytest.raises(ReferenceError) as info:
        uow.create("contact", last_name="Lovelace", account_id=999)
    assert info.value.messages == {"account_id": ["no account with id 999; create it first or correct the id"]}
    assert str(info.value) == "contact: account_id: no account with id 999; create it first or correct the id"
    assert missing_reference("account", 999) == info.value.messages["account_id"][0]  # for plugins' own checks


def test_update_to_a_missing_reference_is_refused(crm):
    with crm.unit_of_work() as uow:
        contact = uow.create("contact", last_name="Lovelace")
        with pytest.raises(ReferenceError, match="no account with id 5"):
            uow.update(contact, account_id=5)


def test_reference_accepts_a_record(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        contact = uow.create("contact", last_name="Lovelace", account_id=account)
    assert contact.account_id == account.id


def test_reference_given_a_record_of_another_entity_is_refused(crm):
    with crm.unit_of_work() as uow:
        lead = uow.create("lead", last_name="Lovelace")
        with pytest.raises(ValidationError, match=r"account_id: expected the id of an account, got <Lead id="):
            uow.create("contact", last_name="Lovelace", account_id=lead)


def test_delete_of_a_referenced_record_is_refused_naming_the_records(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        first = uow.create("contact", last_name="Lovelace", account_id=account.id)
        second = uow.create("contact", last_name="Byron", account_id=account.id)
        deal = uow.create("opportunity", name="Deal", account_id=account.id)
        with pytest.raises(ReferenceError) as info:
            uow.delete(account)
    assert str(info.value) == (
        f"cannot delete account {account.id}: referenced by contact {first.id}, {second.id} (field account_id); "
        f"opportunity {deal.id} (field account_id); delete or reassign those first"
    )


def test_refused_delete_changes_nothing_even_when_the_error_is_caught(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        child = uow.create("account", name="Acme UK", parent_id=account.id)
        note = uow.create("note", body="met at the fair", account_id=account.id)
        lead = uow.create("lead", last_name="Byron", account_id=account.id)
        uow.create("contact", last_name="Lovelace", account_id=account.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        with pytest.raises(ReferenceError):
            uow.delete("account", account.id)
        uow.create("account", name="Unrelated")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("note", note.id) == note
        assert uow.get("account", child.id).parent_id == account.id
        assert uow.get("lead", lead.id) == lead
        assert [e.action for e in uow.history("note", note.id)] == ["created"]


def test_delete_cascades_to_records_declaring_cascade(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        note = uow.create("note", body="hello", account_id=account.id)
        call = uow.create("activity", kind="call", subject="Intro", account_id=account.id)
        uow.delete(account)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.all("note") == [] and uow.all("activity") == []
        assert [e.action for e in uow.history("note", note.id)] == ["created", "deleted"]
        assert [e.action for e in uow.history("activity", call.id)] == ["created", "deleted"]


def test_delete_cascades_through_plugin_references(kit):
    with kit.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.create("gadget", name="g", account_id=account.id)
        uow.delete(account)
        assert uow.all("gadget") == []


def test_delete_clears_set_null_references(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        lead = uow.create("lead", last_name="Byron", account_id=account.id)
        uow.delete(account)
        uow.commit()
    with crm.unit_of_work() as uow:
        cleared = uow.get("lead", lead.id)
        assert (cleared.account_id, cleared.version) == (None, 2)
        assert uow.history("lead", lead.id)[-1].changes == {"account_id": (account.id, None)}


def test_set_null_record_remembers_who_cleared_it(crm, make_user):
    ada = make_user(crm, "ada")
    with crm.unit_of_work(ada) as uow:
        team = uow.create("team", name="North")
        user = uow.create("user", username="bob", team_id=team.id)
        uow.delete(team)
        uow.commit()
    with crm.unit_of_work() as uow:
        cleared = uow.get("user", user.id)
    assert (cleared.team_id, cleared.updated_by) == (None, ada.user_id)


def test_record_referencing_itself_can_be_deleted(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.commit()
    with crm.engine.begin() as connection:  # stored before accounts were refused as their own parent
        connection.execute(sa.update(crm.registry.table("account")).values(parent_id=account.id))
    with crm.unit_of_work() as uow:
        account = uow.get("account", account.id)
        assert account.parent_id == account.id
        uow.delete(account)
        assert uow.all("account") == []


def test_delete_of_a_stale_record_is_a_conflict(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.update(account, name="B")
        with pytest.raises(ConflictError, match=f"account {account.id} changed since version 1 was read"):
            uow.delete(account)


# -- rollback -----------------------------------------------------------------------------------


def test_leaving_without_commit_rolls_back(crm):
    with crm.unit_of_work() as uow:
        uow.create("account", name="Acme")
    with crm.unit_of_work() as uow:
        assert uow.all("account") == []


def test_any_exception_in_the_block_rolls_back_everything(crm):
    with pytest.raises(RuntimeError), crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.update(account, name="B")
        uow.create("contact", last_name="Lovelace", account_id=account.id)
        raise RuntimeError("boom")
    with crm.unit_of_work() as uow:
        assert uow.all("account") == [] and uow.all("contact") == []
        assert uow.history("account", account.id) == []


def test_failed_write_leaves_the_unit_usable_on_every_database(crm, make_user):
    make_user(crm, "ada")
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        with pytest.raises(ValidationError, match="already used"):
            uow.create("user", username="ada")
        uow.update(account, name="Acme Inc")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("account", account.id).name == "Acme Inc"
        assert [u.username for u in uow.all("user")] == ["ada"]


def test_explicit_rollback_undoes_the_work(crm):
    with crm.unit_of_work() as uow:
        uow.create("account", name="Acme")
        uow.rollback()
    with crm.unit_of_work() as uow:
        assert uow.all("account") == []


def test_unit_cannot_be_used_after_commit(crm):
    with crm.unit_of_work() as uow:
        uow.commit()
        with pytest.raises(CrmError, match=r"this unit of work is closed; open a new one with crm.unit_of_work\(\)"):
            uow.create("account", name="Acme")


# -- signals ------------------------------------------------------------------------------------


def test_signals_are_sent_only_after_commit(crm, captured_signals):
    with captured_signals("record-created") as sent, crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        assert sent == []
        uow.commit()
        assert [event.record.id for event in sent] == [account.id]


def test_leaving_without_commit_drops_the_signals(crm, captured_signals):
    with captured_signals("record-created") as sent:
        with crm.unit_of_work() as uow:
            uow.create("account", name="Acme")
        with pytest.raises(RuntimeError), crm.unit_of_work() as uow:
            uow.create("account", name="Acme")
            raise RuntimeError("boom")
    assert sent == []


def test_update_signal_carries_old_and_new_values(crm, captured_signals):
    with captured_signals("record-updated") as sent, crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.update(account, name="B")
        uow.commit()
    (event,) = sent
    assert (event.action, event.entity, event.changes) == ("updated", "account", {"name": ("Acme", "B")})
    assert event.actor.is_system


def test_delete_signal_carries_the_record_as_it_was(crm, captured_signals):
    with captured_signals("record-deleted") as sent, crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        uow.delete(account)
        uow.commit()
    assert [event.record for event in sent] == [account]


def test_signals_go_out_in_the_order_of_the_changes(crm):
    seen = []
    for name in ("record-created", "record-updated", "record-deleted"):
        crm.signals.signal(name).connect(lambda sender, event: seen.append((event.action, sender)), weak=False)
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        account = uow.update(account, name="B")
        uow.create("contact", last_name="Lovelace")
        uow.delete(account)
        uow.commit()
    assert seen == [("created", "account"), ("updated", "account"), ("created", "contact"), ("deleted", "account")]


def test_receiver_failing_after_commit_is_named_and_the_data_stay(crm):
    calls = []

    def audit_copy(sender, event):
        raise OSError("disk full")

    def other(sender, event):
        calls.append(event.record.id)

    crm.signals.created.connect(audit_copy)
    crm.signals.created.connect(other)
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        with pytest.raises(PluginError) as info:
            uow.commit()
    assert "receiver" in str(info.value) and "audit_copy" in str(info.value)
    assert "raised OSError: disk full; the unit of work was already committed" in str(info.value)
    assert calls == [account.id]
    with crm.unit_of_work() as uow:
        assert uow.get("account", account.id).name == "Acme"


def test_receiver_for_one_entity_hears_only_that_entity(crm):
    heard = []
    crm.signals.created.connect(lambda sender, event: heard.append(sender), sender="contact", weak=False)
    with crm.unit_of_work() as uow:
        uow.create("account", name="Acme")
        uow.create("contact", last_name="Lovelace")
        uow.commit()
    assert heard == ["contact"]


# -- hooks take part in the transaction ---------------------------------------------------------


class FollowUp:
    PLUGIN = PluginInfo(name="follow_up")

    @hookimpl
    def crm_after_create(self, uow, entity, records):
        if entity == "lead":
            for record in records:
                uow.create("note", lead_id=record.id, body="Captured")


def test_after_create_hook_writes_in_the_same_unit(crm_factory):
    app = crm_factory([FollowUp()])
    with app.unit_of_work() as uow:
        lead = uow.create("lead", last_name="Lovelace")
        uow.commit()
    with app.unit_of_work() as uow:
        assert [n.lead_id for n in uow.all("note")] == [lead.id]


def test_work_of_an_after_create_hook_rolls_back_with_the_unit(crm_factory):
    app = crm_factory([FollowUp()])
    with app.unit_of_work() as uow:
        uow.create("lead", last_name="Lovelace")
    with app.unit_of_work() as uow:
        assert uow.all("note") == [] and uow.all("lead") == []


def test_second_unit_opened_meanwhile_never_ends_the_open_one(crm):
    """In-memory SQLite has one connection: the second unit is refused with a clear error; a
    database with real connections opens it. Either way the first unit keeps its work."""
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        try:
            with crm.unit_of_work() as other:
                assert other.all("account") == []  # not committed yet: invisible elsewhere
        except DatabaseError as exc:
            assert "the in-memory SQLite database has a single connection" in str(exc)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("account", account.id).name == "Acme"


def test_acting_as_the_system_writes_read_only_fields_then_acts_as_before(crm, make_user):
    ann = make_user(crm, "ann")
    with crm.unit_of_work(ann) as uow:
        lead = uow.create("lead", last_name="Lovelace")
        with pytest.raises(PermissionDeniedError):
            uow.update(lead, status_entered_at="2026-01-01T00:00:00+00:00")
        with uow.acting_as(Actor.system()) as system:
            assert system is uow and uow.actor.is_system
            lead = uow.update(lead, status_entered_at="2026-01-01T00:00:00+00:00")
        assert uow.actor == ann
        with pytest.raises(RuntimeError), uow.acting_as(Actor.system()):
            raise RuntimeError("inside")
        assert uow.actor == ann
        uow.commit()
    assert lead.updated_by is None and lead.created_by == ann.user_id
