"""The jobs table: enqueue inside the caller's unit of work, dedupe keys, cancel, retry, the
handler registry, and the job entity type, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest

from crmcore import PermissionDeniedError, PluginError, PluginInfo, ValidationError, hookimpl
from crmcore.actors import Actor
from crmcore.jobs import (
    CANCELLED,
    FAILED,
    QUEUED,
    RUNNING,
    Job,
    cancel,
    cancel_many,
    claim,
    enqueue,
    enqueue_many,
    get_job,
    job_handlers,
    retry,
    retry_delay,
)

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def nothing(uow, payload):
    """A handler that does nothing."""


class Handlers:
    """A throwaway plugin handling ``test.ping`` and ``test.pong``."""

    PLUGIN = PluginInfo(name="jobtest")

    @hookimpl
    def crm_job_handlers(self):
        return {"test.ping": nothing, "test.pong": nothing}


@pytest.fixture
def app(crm_factory):
    return crm_factory(plugins=[Handlers()])


def jobs(app, **equals):
    with app.unit_of_work() as uow:
        return [Job.from_row(r.values) for r in uow.query("job").where(**equals).order_by("id").all()]


def queue(app, *args, **kwargs) -> int:
    with app.unit_of_work() as uow:
        job_id = enqueue(uow, *args, **kwargs)
        uow.commit()
    return job_id


# -- enqueue ------------------------------------------------------------------------------------


def test_a_job_enqueued_in_a_rolled_back_unit_does_not_exist(app):
    with app.unit_of_work() as uow:
        enqueue(uow, "test.ping", {"n": 1})
        uow.rollback()
    with app.unit_of_work() as uow:
        enqueue(uow, "test.ping", {"n": 2})  # left without commit

    assert jobs(app) == []


def test_enqueue_writes_a_queued_job_due_at_its_time(app, make_user):
    ann = make_user(app, "ann")
    with app.unit_of_work(ann) as uow:
        job_id = enqueue(uow, "test.ping", {"ticket_id": 7, "why": ["late"]}, run_at=T0, max_attempts=3)
        uow.commit()

    [job] = jobs(app)
    assert job.id == job_id
    assert (job.kind, job.payload, job.run_at, job.status) == ("test.ping", {"ticket_id": 7, "why": ["late"]}, T0, QUEUED)
    assert (job.attempts, job.max_attempts, job.key, job.last_error, job.locked_by) == (0, 3, None, None, None)
    with app.unit_of_work() as uow:
        assert uow.get("job", job_id).created_by == ann.user_id


def test_enqueue_reads_text_and_naive_times_in_the_deployment_time_zone(crm_factory):
    app = crm_factory(plugins=[Handlers()], settings={"crm": {"timezone": "Europe/Paris"}})

    first = queue(app, "test.ping", None, run_at="2026-03-02T10:00:00")
    second = queue(app, "test.ping", None, run_at=dt.datetime(2026, 3, 2, 10, 0))

    assert [j.run_at for j in jobs(app)] == [T0, T0]
    assert first != second


def test_enqueue_takes_a_delay_from_now(app):
    before = dt.datetime.now(dt.UTC)
    queue(app, "test.ping", run_at=dt.timedelta(hours=2))

    [job] = jobs(app)
    assert before + dt.timedelta(hours=2) <= job.run_at <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)


def test_enqueue_without_a_time_is_due_now(app):
    before = dt.datetime.now(dt.UTC)
    queue(app, "test.ping")

    [job] = jobs(app)
    assert before <= job.run_at <= dt.datetime.now(dt.UTC)
    assert job.payload is None


def test_enqueue_refuses_a_kind_no_plugin_handles(app):
    with app.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        enqueue(uow, "test.pnig", {})

    message = str(info.value)
    assert "no handler for job kind 'test.pnig'" in message
    assert "'reminder.due', " in message and "'test.ping', 'test.pong'" in message
    assert info.value.messages.keys() == {"kind"}


@pytest.mark.parametrize(
    ("kwargs", "field", "text"),
    [
        ({"payload": {"when": dt.date(2026, 1, 1)}}, "payload", "must be a JSON value"),
        ({"payload": float("nan")}, "payload", "must be a JSON value"),
        ({"max_attempts": 0}, "max_attempts", "at least 1, got 0"),
        ({"max_attempts": True}, "max_attempts", "got True"),
        ({"run_at": "next tuesday"}, "run_at", "'next tuesday'"),
        ({"run_at": ""}, "run_at", "got ''"),
        ({"key": ""}, "key", "1 to 200 characters, got ''"),
        ({"key": "k" * 201}, "key", "1 to 200 characters"),
    ],
)
def test_enqueue_refuses_bad_input_naming_the_field(app, kwargs, field, text):
    with app.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        enqueue(uow, "test.ping", **kwargs)

    assert list(info.value.messages) == [field]
    assert text in str(info.value)


# -- dedupe keys ----------------------------------------------------------------------------------


def test_enqueueing_a_queued_key_again_updates_that_job(app):
    first = queue(app, "test.ping", {"v": 1}, run_at=T0, key="remind:5")
    second = queue(app, "test.pong", {"v": 2}, run_at=T0 + dt.timedelta(hours=1), max_attempts=2, key="remind:5")

    [job] = jobs(app)
    assert first == second == job.id
    assert (job.kind, job.payload, job.run_at, job.max_attempts, job.key) == (
        "test.pong", {"v": 2}, T0 + dt.timedelta(hours=1), 2, "remind:5",
    )


def test_enqueueing_a_key_twice_in_one_unit_is_one_job(app):
    with app.unit_of_work() as uow:
        ids = {enqueue(uow, "test.ping", {"v": n}, key="once") for n in range(3)}
        uow.commit()

    assert len(ids) == 1
    assert [j.payload for j in jobs(app)] == [{"v": 2}]


def test_different_keys_and_no_key_make_separate_jobs(app):
    queue(app, "test.ping", key="a")
    queue(app, "test.ping", key="b")
    queue(app, "test.ping")
    queue(app, "test.ping")

    assert len(jobs(app)) == 4


def test_a_key_can_be_queued_again_while_its_job_runs(app):
    first = queue(app, "test.ping", {"v": 1}, run_at=T0, key="k")
    [claimed] = claim(app, "w1", now=T0)

    second = queue(app, "test.ping", {"v": 2}, run_at=T0, key="k")

    assert claimed.id == first != second
    assert [(j.status, j.key) for j in jobs(app)] == [(RUNNING, "k"), (QUEUED, "k")]


def _state(app):
    return [(j.kind, j.payload, j.run_at, j.status, j.attempts, j.max_attempts, j.key) for j in jobs(app)]


def test_enqueue_many_leaves_what_enqueueing_each_in_turn_leaves(crm_factory):
    batch = [({"v": n}, T0 + dt.timedelta(minutes=n), key) for n, key in enumerate(["a", None, "held", "b", "a", None, "held"])]
    one, many = crm_factory(plugins=[Handlers()]), crm_factory(plugins=[Handlers()])
    for app in (one, many):
        queue(app, "test.pong", {"old": True}, run_at=T0, max_attempts=9, key="held")
    with one.unit_of_work() as uow:
        for payload, run_at, key in batch:
            enqueue(uow, "test.ping", payload, run_at=run_at, max_attempts=3, key=key)
        uow.commit()
    with many.unit_of_work() as uow:
        assert enqueue_many(uow, "test.ping", batch, max_attempts=3) == 5  # a, b, held and two without a key
        uow.commit()

    assert sorted(_state(many), key=repr) == sorted(_state(one), key=repr)
    assert {(j.key, j.payload["v"]) for j in jobs(many)} == {("a", 4), ("b", 3), ("held", 6), (None, 1), (None, 5)}


def test_enqueue_many_queues_none_when_one_is_bad(app):
    with app.unit_of_work() as uow, pytest.raises(ValidationError, match="payload must be a JSON value"):
        enqueue_many(uow, "test.ping", [({"v": 1}, T0, "fine"), ({"v": object()}, T0, "bad")])
    assert jobs(app) == []


def test_cancel_many_cancels_the_queued_jobs_of_the_keys(app):
    for key in ("a", "b", "c"):
        queue(app, "test.ping", key=key)
    with app.unit_of_work() as uow:
        assert cancel_many(uow, ["a", "c", "never", *[f"k{n}" for n in range(600)]]) == 2
        assert cancel_many(uow, []) == 0
        uow.commit()

    assert [(j.key, j.status) for j in jobs(app)] == [("a", CANCELLED), ("b", QUEUED), ("c", CANCELLED)]
    with app.unit_of_work() as uow, pytest.raises(ValidationError, match="a dedupe key is text of 1 to 200 characters, got ''"):
        cancel_many(uow, ["b", ""])


# -- cancel and retry -----------------------------------------------------------------------------


def test_cancel_cancels_the_queued_job_of_a_key(app):
    queue(app, "test.ping", key="k")
    queue(app, "test.ping", key="other")

    with app.unit_of_work() as uow:
        assert cancel(uow, "k") == 1
        assert cancel(uow, "k") == 0
        assert cancel(uow, "never") == 0
        uow.commit()

    cancelled, other = jobs(app)
    assert (cancelled.status, cancelled.key, other.status) == (CANCELLED, "k", QUEUED)
    assert cancelled.finished_at is not None
    queue(app, "test.ping", key="k")  # the key is free again
    assert [j.status for j in jobs(app)] == [CANCELLED, QUEUED, QUEUED]


def test_cancel_in_a_rolled_back_unit_keeps_the_job(app):
    queue(app, "test.ping", key="k")
    with app.unit_of_work() as uow:
        cancel(uow, "k")

    assert [j.status for j in jobs(app)] == [QUEUED]


def test_cancel_needs_a_key(app):
    with app.unit_of_work() as uow, pytest.raises(ValidationError, match="cancel needs the dedupe key"):
        cancel(uow, None)  # type: ignore[arg-type]


def test_retry_queues_a_failed_job_again_from_its_first_attempt(app):
    job_id = queue(app, "test.ping", run_at=T0, max_attempts=1)
    table = app.registry.table("job")
    with app.engine.begin() as connection:
        connection.execute(table.update().values(status=FAILED, attempts=1, last_error="boom"))

    with app.unit_of_work() as uow:
        job = retry(uow, job_id, run_at=T0 + dt.timedelta(minutes=5))
        uow.commit()

    assert (job.status, job.attempts, job.run_at) == (QUEUED, 0, T0 + dt.timedelta(minutes=5))
    [stored] = jobs(app)
    assert (stored.status, stored.attempts, stored.last_error) == (QUEUED, 0, "boom")


def test_retry_refuses_a_queued_job_and_a_key_queued_by_another(app):
    first = queue(app, "test.ping", key="k")
    with app.unit_of_work() as uow:
        with pytest.raises(ValidationError, match=f"job {first} is queued; only failed or cancelled"):
            retry(uow, first)
        cancel(uow, "k")
        uow.commit()
    second = queue(app, "test.ping", key="k")

    with app.unit_of_work() as uow, pytest.raises(ValidationError, match=f"job {second} with the same key 'k' is queued"):
        retry(uow, first)


def test_retry_needs_the_update_privilege_on_jobs(crm_factory, make_user):
    security = {"security": {"profiles": {"clerk": {"privileges": {"job": ["read"]}}}, "no_role_profile": "clerk"}}
    app = crm_factory(plugins=[Handlers()], settings=security)
    clerk = make_user(app, "clerk")
    job_id = queue(app, "test.ping")

    with app.unit_of_work(clerk) as uow, pytest.raises(PermissionDeniedError, match="may not update job"):
        retry(uow, job_id)


def test_get_job_reads_through_the_actors_read_path(app):
    job_id = queue(app, "test.ping", {"n": 1}, run_at=T0)

    with app.unit_of_work() as uow:
        job = get_job(uow, job_id)

    assert repr(job) == f"<Job id={job_id} kind=test.ping status=queued attempts=0/5>"


# -- handlers -------------------------------------------------------------------------------------


def test_job_handlers_joins_every_plugins_kinds(app):
    assert {"reminder.due", "test.ping", "test.pong"} <= set(job_handlers(app))
    assert job_handlers(app) is job_handlers(app)  # collected once


def test_two_plugins_handling_one_kind_is_an_error_naming_both(crm_factory):
    class Other:
        PLUGIN = PluginInfo(name="other")

        @hookimpl
        def crm_job_handlers(self):
            return {"test.ping": nothing}

    app = crm_factory(plugins=[Handlers(), Other()])

    with pytest.raises(PluginError, match="plugins 'jobtest' and 'other' both handle job kind 'test.ping'"):
        job_handlers(app)


@pytest.mark.parametrize("returned", [["test.ping"], {"test.ping": "not callable"}, {"": nothing}])
def test_a_plugin_returning_something_else_than_kinds_and_functions_is_named(crm_factory, returned):
    class Broken:
        PLUGIN = PluginInfo(name="broken")

        @hookimpl
        def crm_job_handlers(self):
            return returned

    app = crm_factory(plugins=[Broken()])

    with pytest.raises(PluginError, match="plugin 'broken' returned .* from crm_job_handlers"):
        job_handlers(app)


# -- the job entity type --------------------------------------------------------------------------


def test_jobs_are_records_users_can_list_but_not_write(app, make_user):
    ann = make_user(app, "ann")
    job_id = queue(app, "test.ping", run_at=T0)

    with app.unit_of_work(ann) as uow:
        assert uow.query("job").where(status="queued").ids() == [job_id]
        with pytest.raises(PermissionDeniedError, match="job.status is read-only"):
            uow.update("job", job_id, status="done")
        with pytest.raises(PermissionDeniedError, match="read-only"):
            uow.create("job", kind="test.ping", run_at=T0)


def test_jobs_are_not_audited(app):
    job_id = queue(app, "test.ping", run_at=T0)
    claim(app, "w1", now=T0)

    with app.unit_of_work() as uow:
        assert uow.history("job", job_id) == []


def test_the_job_table_is_crm_job_with_a_unique_queued_key(app):
    table = app.registry.table("job")

    assert table.name == "crm_job"
    assert table.c.queued_key.unique
    assert app.registry.entity("job").auditable is False
    assert app.registry.table("reminder").name == "crm_reminder"


# -- retry delays (pure) --------------------------------------------------------------------------


def test_retry_delay_doubles_from_30_seconds_up_to_an_hour():
    delays = [retry_delay(n).total_seconds() for n in range(1, 10)]

    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert retry_delay(0).total_seconds() == 30
    assert retry_delay(500).total_seconds() == 3600
    assert retry_delay(3, base=10, cap=25).total_seconds() == 25


def test_actor_system_enqueues_without_a_creator(app):
    with app.unit_of_work(Actor.system()) as uow:
        job_id = enqueue(uow, "test.ping")
        uow.commit()
    with app.unit_of_work() as uow:
        assert uow.get("job", job_id).created_by is None
