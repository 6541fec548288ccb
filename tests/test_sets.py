"""The set-based record API a plugin uses (``crmcore.storage.sets``): find_many,
check_access_many, create_many, update_many, delete_many, field_history and atomic apply the
actor's read predicate, hidden fields, privileges, versions, hooks, audit and signals like the
single-record methods, with a few statements per batch."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import (
    Actor,
    ConflictError,
    Money,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from crmcore.security import admin
from crmcore.storage.sets import _Reader

SECURITY = {
    "profiles": {
        "rep": {"privileges": {"account": "all", "contact": "all", "lead": ["read", "create", "update"]}},
        "viewer": {"privileges": {"account": "all", "lead": ["read"]},
                   "fields": {"account": {"website": "hidden"}}},
    },
    "roles": {"rep": {"profiles": ["rep"]}, "viewer": {"profiles": ["viewer"]}},
    "entities": {"account": {"sharing": "private"}, "lead": {"sharing": "public_read_write"}},
}


@pytest.fixture
def office(crm_factory: Any) -> tuple[Any, dict[str, Actor]]:
    """Two reps whose accounts are private, and a viewer who may not see websites."""
    crm = crm_factory(security=SECURITY)
    with crm.unit_of_work() as uow:
        users = {name: admin.add_user(uow, name, roles=[role]) for name, role in (("ann", "rep"), ("bob", "rep"), ("vic", "viewer"))}
        uow.commit()
    return crm, {name: Actor(user.id, name) for name, user in users.items()}


def test_find_many_reads_what_the_actor_may_read_without_hidden_fields(office: Any) -> None:
    crm, actors = office
    with crm.unit_of_work(actors["ann"]) as uow:
        mine = uow.create("account", name="Acme", website="acme.example")
        uow.commit()
    with crm.unit_of_work(actors["bob"]) as uow:
        uow.create("account", name="ACME")
        assert [r.values["name"] for r in uow.find_many("account", "name", ["acme"], ignore_case=True)] == ["ACME"]
        assert uow.find_many("account", "id", [mine.id]) == []  # ann's is private: not found
        uow.commit()
    with crm.unit_of_work(actors["vic"]) as uow:
        with pytest.raises(PermissionDeniedError, match="account.website is hidden from vic"):
            uow.find_many("account", "website", ["acme.example"])
    with crm.unit_of_work() as uow:
        found = uow.find_many("account", "name", ["Acme", "acme"], ignore_case=True)
        assert [r.values["name"] for r in found] == ["Acme", "ACME"]
        with pytest.raises(ValidationError, match="account has no field 'nickname'"):
            uow.find_many("account", "nickname", ["x"])


def test_find_many_compares_text_without_the_characters_given(crm: Any) -> None:
    with crm.unit_of_work() as uow:
        contact = uow.create("contact", last_name="Lovelace", phone="+44 (20) 7946-0000")
        assert [r.id for r in uow.find_many("contact", "phone", ["+442079460000"], ignore_chars=" -()")] == [contact.id]
        assert uow.find_many("contact", "phone", ["+442079460000"]) == []


def test_create_many_runs_the_checks_hooks_audit_and_signals_of_create(office: Any, captured_signals: Any) -> None:
    crm, actors = office
    with captured_signals("record-created", crm) as created, crm.unit_of_work(actors["ann"]) as uow:
        records = uow.create_many("account", [{"name": "Acme"}, {"name": "Initech", "website": "initech.example"}])
        assert [r.values["owner_id"] for r in records] == [actors["ann"].user_id] * 2
        assert [e.action for e in uow.history("account", records[1].id)] == ["created"]
        uow.commit()
    assert sorted(e.record.id for e in created) == sorted(r.id for r in records)
    with crm.unit_of_work(actors["vic"]) as uow, pytest.raises(PermissionDeniedError):
        uow.create_many("lead", [{"last_name": "Hopper"}])
    with crm.unit_of_work(actors["ann"]) as uow:
        with pytest.raises(ValidationError, match="employees"):
            uow.create_many("account", [{"name": "Ok"}, {"name": "Bad", "employees": "many"}])
        assert uow.query("account").count() == 2  # all or nothing


def test_update_many_reads_the_rows_again_and_checks_versions_and_access(office: Any) -> None:
    crm, actors = office
    with crm.unit_of_work(actors["ann"]) as uow:
        accounts = uow.create_many("account", [{"name": "Acme"}, {"name": "Initech"}])
        uow.commit()
    forged = accounts[0].merged({"name": "Forged"})
    with crm.unit_of_work(actors["ann"]) as uow:
        updated = uow.update_many("account", [(type(accounts[0])("account", forged), {"industry": "Energy"}),
                                              (accounts[1], {"industry": "Energy"})])
        assert [(r.values["name"], r.values["industry"], r.version) for r in updated] == [
            ("Acme", "Energy", 2), ("Initech", "Energy", 2)]  # the stored name, not the caller's
        uow.commit()
    with crm.unit_of_work(actors["ann"]) as uow, pytest.raises(ConflictError, match=f"account {accounts[0].id} changed since version 1"):
        uow.update_many("account", [(accounts[0], {"industry": "Retail"})])
    with crm.unit_of_work(actors["bob"]) as uow, pytest.raises(NotFoundError, match=f"account {accounts[0].id} not found"):
        uow.update_many("account", [(updated[0], {"industry": "Retail"})])


def test_delete_many_needs_the_privilege_asked_for_and_audits_each_snapshot(office: Any) -> None:
    crm, actors = office
    with crm.unit_of_work(actors["ann"]) as uow:
        leads = uow.create_many("lead", [{"last_name": "Hopper"}, {"last_name": "Lovelace"}])
        uow.commit()
    with crm.unit_of_work(actors["ann"]) as uow:
        with pytest.raises(PermissionDeniedError):
            uow.delete_many("lead", leads)  # reps may not delete leads
        assert uow.delete_many("lead", leads, privilege="update") == 2
        assert uow.query("lead").count() == 0
        uow.commit()
    with crm.unit_of_work() as uow:  # the trail of a deleted record is the system's
        deleted = uow.history("lead", leads[0].id)[-1]
        assert deleted.action == "deleted" and list(deleted.changes["last_name"]) == ["Hopper", None]
    with crm.unit_of_work(actors["ann"]) as uow, pytest.raises(ValidationError, match="privilege 'delete' or 'update'"):
        uow.delete_many("lead", leads, privilege="read")


def test_check_access_many_names_the_first_record_refused(office: Any) -> None:
    crm, actors = office
    with crm.unit_of_work(actors["ann"]) as uow:
        lead = uow.create("lead", last_name="Hopper")
        uow.commit()
    with crm.unit_of_work(actors["vic"]) as uow:
        uow.check_access_many([lead], "read")
        with pytest.raises(PermissionDeniedError, match="update"):
            uow.check_access_many([lead], "update")


def test_field_history_gives_the_changes_of_one_field_of_readable_records(office: Any) -> None:
    crm, actors = office
    with crm.unit_of_work(actors["ann"]) as uow:
        account = uow.create("account", name="Acme", website="a.example")
        uow.update(account, website="b.example")
        uow.commit()
    with crm.unit_of_work(actors["ann"]) as uow:
        history = uow.field_history("account", [account.id], "website")
        assert [(old, new) for _, old, new in history[account.id]] == [
            (None, "https://a.example"), ("https://a.example", "https://b.example")]
    with crm.unit_of_work(actors["bob"]) as uow:
        assert uow.field_history("account", [account.id], "website") == {}  # private: left out
    with crm.unit_of_work(actors["vic"]) as uow, pytest.raises(PermissionDeniedError):
        uow.field_history("account", [account.id], "website")


def test_atomic_undoes_the_writes_of_a_call_that_raises(crm: Any) -> None:
    def two_writes(uow: Any) -> None:
        uow.create("account", name="Kept only if all goes well")
        raise ValidationError("refused", entity="account")

    with crm.unit_of_work() as uow:
        uow.create("account", name="Before")
        with pytest.raises(ValidationError):
            uow.atomic(two_writes, uow)
        assert [r.values["name"] for r in uow.query("account").all()] == ["Before"]
        assert uow.atomic(lambda: 42) == 42


def test_rows_are_read_into_the_records_the_unit_of_work_makes(crm: Any) -> None:
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme", website="acme.org", annual_revenue="5000000 USD")
        contact = uow.create("contact", last_name="Lovelace", email="ada@acme.org", account_id=account.id, birthdate="1815-12-10")
        deal = uow.create("opportunity", name="Engines", amount="12000.50 EUR", close_date="2026-09-30", contact_id=contact.id)
        lead = uow.create("lead", last_name="Hopper", company="Acme", score=40)
        for record in (account, contact, deal, lead):
            table = uow.registry.table(record.entity)
            row = uow._execute(sa.select(table).where(table.c.id == record.id)).one()
            read = _Reader(uow.registry.entity(record.entity), table)(row)
            expected = uow._row_to_record(uow.registry.entity(record.entity), row._mapping, full=True)
            assert read == expected and list(read) == list(expected)
        assert read.values["status_entered_at"].tzinfo is not None
        table = uow.registry.table("opportunity")
        assert _Reader(uow.registry.entity("opportunity"), table)(uow._execute(sa.select(table)).one()).amount == Money("12000.50", "EUR")


def test_find_many_reads_projections_and_refuses_hidden_fields_in_them(office: Any) -> None:
    crm, actors = office
    with crm.unit_of_work(actors["ann"]) as uow:
        account = uow.create("account", name="Acme", website="acme.example", industry="Energy")
        uow.commit()
    with crm.unit_of_work(actors["ann"]) as uow:
        [key] = uow.find_many("account", "name", ["ACME"], ignore_case=True, fields=("version", "industry"))
        assert key.values == {"id": account.id, "version": 1, "industry": "Energy"}
    with crm.unit_of_work(actors["vic"]) as uow, pytest.raises(PermissionDeniedError, match="website"):
        uow.find_many("account", "name", ["Acme"], fields=("website",))


def test_a_row_read_locked_then_changed_in_the_unit_is_a_conflict_for_the_old_record(crm: Any) -> None:
    with crm.unit_of_work() as uow:
        lead = uow.create("lead", last_name="Hopper")
        [locked] = uow.find_many("lead", "id", [lead.id], lock=True)
        uow.update(locked, title="Touched")  # version 2 now
        with pytest.raises(ConflictError, match=f"lead {lead.id} changed since version 1 was read"):
            uow.delete_many("lead", [locked])
        assert uow.get("lead", lead.id).title == "Touched"
