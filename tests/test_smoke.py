"""The smallest end-to-end path through the kernel, on the database under test."""

from __future__ import annotations


def test_create_read_update_delete_round_trip(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        account = uow.update(account, name="Acme Inc")
        assert uow.get("account", account.id).name == "Acme Inc"
        uow.delete(account)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.all("account") == []
        assert [e.action for e in uow.history("account", account.id)] == ["created", "updated", "deleted"]


def test_signals_go_out_after_commit_only(crm, captured_signals):
    with captured_signals("record-created") as sent:
        with crm.unit_of_work() as uow:
            uow.create("account", name="Dropped")
        assert sent == []
        with crm.unit_of_work() as uow:
            kept = uow.create("account", name="Kept")
            assert sent == []
            uow.commit()
    assert [event.record.id for event in sent] == [kept.id]
