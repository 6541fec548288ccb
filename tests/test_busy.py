"""A write that waits for another transaction's lock longer than ``[crm] busy_timeout`` fails
with a BusyError saying the database is busy and what to do, not with the message of a real
conflict; a real conflict still says the database changed. Both databases."""

from __future__ import annotations

import math
import time

import pytest

from crmcore import ConfigError, ConflictError, create_app
from crmcore.errors import BusyError


@pytest.fixture
def hurried(crm_factory):
    """An app on a database of its own (a file on SQLite) that gives up after 0.3 s."""
    app = crm_factory(settings={"crm": {"busy_timeout": 0.3}}, file=True)
    with app.unit_of_work() as uow:
        app.account = uow.create("account", name="Acme", employees=10)
        uow.commit()
    return app


def test_a_write_waiting_too_long_for_a_lock_says_the_database_is_busy(hurried):
    account = hurried.account
    with hurried.unit_of_work() as first:
        first.update("account", account.id, {"employees": 20})  # holds the lock until the end
        started = time.monotonic()
        with hurried.unit_of_work() as second, pytest.raises(BusyError) as info:
            if hurried.engine.dialect.name == "sqlite":  # one writer at a time: any write waits
                second.create("account", name="Globex")
            else:  # PostgreSQL locks rows: a write of the same row waits
                second.update("account", account.id, {"industry": "Tools"})
            second.commit()
        waited = time.monotonic() - started
        first.commit()
    message = str(info.value)
    assert "the database is busy" in message
    assert "waits at most 0.3 s" in message and "raise [crm] busy_timeout" in message
    assert "changed under this unit of work" not in message
    assert info.value.timeout == 0.3
    assert isinstance(info.value, ConflictError)  # retried like a conflict
    assert 0.2 <= waited < 10
    with hurried.unit_of_work() as uow:
        final = uow.get("account", account.id)
        names = [a.name for a in uow.all("account")]
    assert (final.employees, final.industry, final.version) == (20, None, 2)
    assert names == ["Acme"]


def test_a_read_unit_that_writes_while_another_writes_conflicts_on_sqlite_and_waits_on_postgresql(hurried):
    """SQLite: a unit that has read cannot wait for the write lock (that could deadlock), so
    it is told at once that the database changed under it, naming the record, and to read
    again; PostgreSQL waits for the row lock, then says it is busy."""
    account = hurried.account
    with hurried.unit_of_work() as first:
        first.update("account", account.id, {"employees": 20})
        with hurried.unit_of_work() as second, pytest.raises(ConflictError) as info:
            second.update(second.get("account", account.id), industry="Tools")
            second.commit()
        first.commit()
    message = str(info.value)
    if hurried.engine.dialect.name == "sqlite":
        assert not isinstance(info.value, BusyError)
        assert message.startswith(f"account {account.id} could not be written: the database changed under this unit")
        assert "cannot wait for it on SQLite" in message and "read the records again and retry" in message
    else:
        assert isinstance(info.value, BusyError) and "the database is busy" in message


def test_a_real_conflict_still_says_the_database_changed(hurried):
    account = hurried.account
    with hurried.unit_of_work() as first, hurried.unit_of_work() as second:
        mine = first.get("account", account.id)
        second.update(second.get("account", account.id), employees=20)
        second.commit()
        with pytest.raises(ConflictError) as info:
            first.update(mine, employees=30)
            first.commit()
    assert not isinstance(info.value, BusyError)
    assert "busy" not in str(info.value)


@pytest.mark.parametrize("value", [-1, math.nan, math.inf, 10**12, "soon"])
def test_the_busy_timeout_is_a_checked_setting(value):
    with pytest.raises(ConfigError, match=r"crm\.busy_timeout") as info:
        create_app({"crm": {"database": "sqlite://", "busy_timeout": value}})
    assert info.value.key == "crm.busy_timeout"


def test_the_busy_timeout_defaults_to_thirty_seconds():
    assert create_app({"crm": {"database": "sqlite://"}}).settings.busy_timeout == 30.0
