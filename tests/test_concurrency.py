"""Optimistic concurrency with two connections: a write against a version someone else changed
raises ConflictError instead of silently overwriting, on SQLite (a database file) and on
PostgreSQL.

On PostgreSQL a second UPDATE of a row waits for the first writer's row lock; on SQLite a
second writer waits for the database lock. The tests never make the main thread wait on a
lock it holds: the waiting side runs in a thread, and the main thread commits."""

from __future__ import annotations

import threading

import pytest

from crmcore import ConflictError, NotFoundError


@pytest.fixture
def shared(crm_factory):
    """An app whose units of work each get their own connection to one database."""
    app = crm_factory(file=True)
    with app.unit_of_work() as uow:
        account = uow.create("account", name="Acme", employees=10)
        uow.commit()
    app.account = account
    return app


def read(app, record_id):
    with app.unit_of_work() as uow:
        return uow.get("account", record_id)


def test_two_open_units_updating_one_record_the_second_conflicts(shared):
    account = shared.account
    with shared.unit_of_work() as first, shared.unit_of_work() as second:
        mine = first.get("account", account.id)
        theirs = second.get("account", account.id)
        second.update(theirs, employees=20)
        second.commit()
        with pytest.raises(ConflictError) as info:
            first.update(mine, employees=30)
            first.commit()
    assert (info.value.entity, info.value.id) == ("account", account.id)
    assert str(info.value).startswith(f"account {account.id} ")
    final = read(shared, account.id)
    assert (final.employees, final.version) == (20, 2)


def test_update_blocked_by_another_writer_conflicts_once_that_one_commits(shared):
    account = shared.account
    outcome = {}
    ready = threading.Event()

    def second_writer():
        try:
            with shared.unit_of_work() as uow:
                theirs = uow.get("account", account.id)
                ready.set()
                uow.update(theirs, employees=30)  # waits for the first writer's lock
                uow.commit()
                outcome["result"] = "committed"
        except ConflictError as exc:
            outcome["result"] = exc
        except Exception as exc:  # reported below, with its type
            outcome["result"] = exc
        finally:
            ready.set()

    with shared.unit_of_work() as first:
        first.update(first.get("account", account.id), employees=20)
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert ready.wait(30)
        thread.join(0.5)  # let the second writer reach its UPDATE and wait
        first.commit()
    thread.join(60)
    assert not thread.is_alive()
    assert isinstance(outcome["result"], ConflictError), outcome["result"]
    final = read(shared, account.id)
    assert (final.employees, final.version) == (20, 2)


def test_update_by_id_in_two_open_units_does_not_lose_the_first_write(shared):
    account = shared.account
    with shared.unit_of_work() as first, shared.unit_of_work() as second:
        first.get("account", account.id)  # the first unit has read the row
        second.update("account", account.id, {"industry": "Tools"})
        second.commit()
        try:
            first.update("account", account.id, {"employees": 11})
            first.commit()
        except ConflictError:
            pass  # refused: fine, nothing was overwritten
    final = read(shared, account.id)
    assert final.industry == "Tools"
    assert final.employees in (10, 11)


def test_stale_record_from_an_earlier_unit_conflicts(shared):
    account = shared.account
    stale = read(shared, account.id)
    with shared.unit_of_work() as uow:
        uow.update(uow.get("account", account.id), name="Acme Inc")
        uow.commit()
    with shared.unit_of_work() as uow, pytest.raises(ConflictError) as info:
        uow.update(stale, employees=99)
    assert str(info.value) == (
        f"account {account.id} changed since version 1 was read (it is at version 2); "
        "read it again and reapply the change"
    )
    assert info.value.expected_version == 1
    assert read(shared, account.id).employees == 10


def test_update_of_a_record_deleted_before_the_unit_is_not_found(shared):
    account = shared.account
    stale = read(shared, account.id)
    with shared.unit_of_work() as uow:
        uow.delete("account", account.id)
        uow.commit()
    with shared.unit_of_work() as uow, pytest.raises(NotFoundError, match=f"^account {account.id} not found$"):
        uow.update(stale, name="Ghost")


def test_update_of_a_record_deleted_after_the_unit_read_it_conflicts(shared):
    account = shared.account
    with shared.unit_of_work() as uow:
        mine = uow.get("account", account.id)
        uow.delete("account", account.id)
        with pytest.raises(ConflictError, match=f"account {account.id} was deleted by someone else"):
            uow.update(mine, name="Ghost")


def test_delete_of_a_stale_record_conflicts_and_keeps_the_row(shared):
    account = shared.account
    stale = read(shared, account.id)
    with shared.unit_of_work() as uow:
        uow.update("account", account.id, {"name": "Acme Inc"})
        uow.commit()
    with shared.unit_of_work() as uow, pytest.raises(ConflictError):
        uow.delete(stale)
    assert read(shared, account.id).name == "Acme Inc"


def test_unit_stays_usable_after_a_conflict(shared):
    account = shared.account
    stale = read(shared, account.id)
    with shared.unit_of_work() as uow:
        uow.update("account", account.id, {"name": "Acme Inc"})
        uow.commit()
    with shared.unit_of_work() as uow:
        with pytest.raises(ConflictError):
            uow.update(stale, employees=99)
        fresh = uow.get("account", account.id)
        uow.update(fresh, employees=99)
        uow.commit()
    final = read(shared, account.id)
    assert (final.name, final.employees, final.version) == ("Acme Inc", 99, 3)


def test_sequential_updates_with_fresh_records_all_apply(shared):
    account = shared.account
    for n in range(3):
        with shared.unit_of_work() as uow:
            uow.update(uow.get("account", account.id), employees=100 + n)
            uow.commit()
    final = read(shared, account.id)
    assert (final.employees, final.version) == (102, 4)


def _race(app, writes):
    """Run one unit per (record id, employees) at once; return {record id: outcome}."""
    outcome = {}
    barrier = threading.Barrier(len(writes))

    def writer(record_id, value):
        try:
            with app.unit_of_work() as uow:
                record = uow.get("account", record_id)
                barrier.wait(30)  # every unit has read before any writes
                uow.update(record, employees=value)
                uow.commit()
            outcome[record_id] = "committed"
        except ConflictError as exc:
            outcome[record_id] = exc

    threads = [threading.Thread(target=writer, args=write) for write in writes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcome


@pytest.fixture
def two_accounts(shared):
    with shared.unit_of_work() as uow:
        other = uow.create("account", name="Other", employees=10)
        uow.commit()
    return shared, shared.account.id, other.id


def test_concurrent_writers_on_different_records_never_lose_a_write(two_accounts):
    app, first, second = two_accounts
    outcome = _race(app, [(first, 1), (second, 2)])
    assert set(outcome) == {first, second}
    for record_id, value in ((first, 1), (second, 2)):
        expected = value if outcome[record_id] == "committed" else 10
        assert read(app, record_id).employees == expected, outcome[record_id]
    assert "committed" in outcome.values()


def test_postgresql_writers_on_different_records_both_commit(two_accounts):
    app, first, second = two_accounts
    if app.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: a unit that read before another committed must retry")
    assert _race(app, [(first, 1), (second, 2)]) == {first: "committed", second: "committed"}


def test_conflict_between_racing_writers_names_the_record(two_accounts):
    app, first, second = two_accounts
    outcome = _race(app, [(first, 1), (second, 2)])
    for record_id, result in outcome.items():
        if isinstance(result, ConflictError):
            assert (result.entity, result.id) == ("account", record_id)
            assert str(result).startswith(f"account {record_id} could not be written: the database changed")
