"""Reminders: scheduled with a job, due through the worker, in the user's due list; snooze,
dismiss, deletes; only the reminded user sees them; ``crm reminders`` on the command line. On
SQLite and PostgreSQL, with time frozen by passing ``now=``."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from crmcore import NotFoundError, PermissionDeniedError, ValidationError
from crmcore.actors import Actor
from crmcore.cli import main
from crmcore.jobs import (
    CANCELLED,
    DONE,
    QUEUED,
    Job,
    dismiss,
    due_reminders,
    run_worker,
    schedule_reminder,
    snooze,
)
from crmcore.jobs.reminders import job_key

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def world(crm_factory, make_user):
    """An app (on a database the command line can open), users ann and bob, an activity."""
    app = crm_factory(database=crm_factory.database_url(file=True))
    app.ann = make_user(app, "ann", timezone="Europe/Paris")
    app.bob = make_user(app, "bob")
    with app.unit_of_work() as uow:
        app.meeting = uow.create("activity", kind="meeting", subject="Review with senior manager")
        uow.commit()
    return app


def remind(app, user: Actor, at: dt.datetime = T0, message: str | None = None, actor: Actor | None = None):
    with app.unit_of_work(actor) as uow:
        reminder = schedule_reminder(uow, app.meeting, user.user_id, at, message)
        uow.commit()
    return reminder


def jobs(app) -> list[Job]:
    table = app.registry.table("job")
    with app.connect() as connection:
        return [Job.from_row(r) for r in connection.execute(sa.select(table).order_by(table.c.id)).mappings()]


def queued(app) -> list[Job]:
    return [j for j in jobs(app) if j.status == QUEUED]


def reminder(app, reminder_id: int):
    with app.unit_of_work() as uow:
        return uow.get("reminder", reminder_id)


def due_for(app, user: Actor) -> list[int]:
    with app.unit_of_work(user) as uow:
        return [r.id for r in due_reminders(uow)]


# -- scheduling -----------------------------------------------------------------------------------


def test_scheduling_a_reminder_queues_its_job_at_the_reminder_time(world):
    r = remind(world, world.ann, T0, "Bring the figures")

    assert (r.status, r.remind_at, r.user_id, r.activity_id, r.message) == (
        "scheduled", T0, world.ann.user_id, world.meeting.id, "Bring the figures",
    )
    [job] = jobs(world)
    assert (job.kind, job.run_at, job.key, job.status) == ("reminder.due", T0, f"reminder:{r.id}", QUEUED)
    assert job.payload == {"reminder_id": r.id, "remind_at": T0.isoformat()}


def test_a_reminder_scheduled_in_a_rolled_back_unit_leaves_no_job(world):
    with world.unit_of_work() as uow:
        schedule_reminder(uow, world.meeting, world.ann.user_id, T0)

    assert jobs(world) == []


def test_scheduling_the_same_reminder_twice_is_one_reminder_and_one_job(world):
    first = remind(world, world.ann, T0)
    second = remind(world, world.ann, T0, "Now with a message")
    other_time = remind(world, world.ann, T0 + MINUTE)

    assert second.id == first.id and second.message == "Now with a message"
    assert other_time.id != first.id
    assert [j.key for j in queued(world)] == [job_key(first.id), job_key(other_time.id)]


def test_schedule_reads_text_in_the_deployment_time_zone_and_defaults_to_the_acting_user(crm_factory, make_user):
    app = crm_factory(settings={"crm": {"timezone": "Europe/Paris"}})
    ann = make_user(app, "ann")
    with app.unit_of_work(ann) as uow:
        meeting = uow.create("activity", kind="call", subject="Call back")
        r = schedule_reminder(uow, meeting.id, None, "2026-03-02 10:00")
        uow.commit()

    assert (r.user_id, r.remind_at) == (ann.user_id, T0)


def test_schedule_refuses_a_bad_time_an_unknown_activity_and_a_missing_user(world):
    with world.unit_of_work() as uow:
        with pytest.raises(ValidationError, match="remind_at"):
            schedule_reminder(uow, world.meeting, world.ann.user_id, "tomorrow-ish")
        with pytest.raises(NotFoundError, match="activity 999 not found"):
            schedule_reminder(uow, 999, world.ann.user_id, T0)
        with pytest.raises(ValidationError, match="no user with id 999"):
            schedule_reminder(uow, world.meeting, 999, T0)
        with pytest.raises(ValidationError, match="name the user to remind"):
            schedule_reminder(uow, world.meeting, None, T0)


def test_a_reminder_created_like_any_record_gets_its_job_too(world):
    with world.unit_of_work() as uow:
        r = uow.create("reminder", activity_id=world.meeting.id, user_id=world.bob.user_id, remind_at=T0)
        uow.commit()

    assert [j.key for j in queued(world)] == [job_key(r.id)]


# -- due ------------------------------------------------------------------------------------------


def test_the_worker_makes_a_reminder_due_at_its_time_and_it_shows_in_the_due_list(world):
    r = remind(world, world.ann, T0)

    early = run_worker(world, once=True, now=T0 - MINUTE)
    assert (early.ran, reminder(world, r.id).status, due_for(world, world.ann)) == (0, "scheduled", [])

    on_time = run_worker(world, once=True, now=T0)
    assert on_time.done == 1
    assert reminder(world, r.id).status == "due"
    assert due_for(world, world.ann) == [r.id]
    assert [j.status for j in jobs(world)] == [DONE]


def test_the_due_list_is_oldest_first_and_per_user(world):
    late = remind(world, world.ann, T0 + MINUTE)
    early = remind(world, world.ann, T0)
    bobs = remind(world, world.bob, T0)

    run_worker(world, once=True, now=T0 + MINUTE)

    assert due_for(world, world.ann) == [early.id, late.id]
    assert due_for(world, world.bob) == [bobs.id]
    with world.unit_of_work() as uow:
        assert [r.id for r in due_reminders(uow)] == [early.id, bobs.id, late.id]  # the system: everyone's
        assert [r.id for r in due_reminders(uow, world.bob)] == [bobs.id]


def test_a_reminder_becoming_due_is_audited_and_announced(world, captured_signals):
    r = remind(world, world.ann, T0)

    with captured_signals("record-updated", world) as sent:
        run_worker(world, once=True, now=T0)

    assert [(e.entity, e.record.id, e.changes) for e in sent] == [("reminder", r.id, {"status": ("scheduled", "due")})]
    with world.unit_of_work() as uow:
        history = uow.history("reminder", r.id)
    assert [(h.action, h.changes.get("status")) for h in history] == [("created", (None, "scheduled")), ("updated", ("scheduled", "due"))]


# -- snooze and dismiss ---------------------------------------------------------------------------


def test_snooze_puts_a_due_reminder_off_and_it_is_due_again_later(world):
    r = remind(world, world.ann, T0)
    run_worker(world, once=True, now=T0)

    with world.unit_of_work(world.ann) as uow:
        snoozed = snooze(uow, r.id, 15, now=T0 + MINUTE)
        uow.commit()

    assert (snoozed.status, snoozed.remind_at) == ("snoozed", T0 + 16 * MINUTE)
    assert due_for(world, world.ann) == []
    [job] = queued(world)
    assert (job.run_at, job.key) == (T0 + 16 * MINUTE, job_key(r.id))
    assert run_worker(world, once=True, now=T0 + 15 * MINUTE).ran == 0
    assert run_worker(world, once=True, now=T0 + 16 * MINUTE).done == 1
    assert reminder(world, r.id).status == "due"
    assert due_for(world, world.ann) == [r.id]


def test_snoozing_a_scheduled_reminder_moves_its_one_job(world):
    r = remind(world, world.ann, T0)

    with world.unit_of_work(world.ann) as uow:
        snooze(uow, r.id, 30, now=T0 - 10 * MINUTE)
        snooze(uow, r.id, 60, now=T0 - 10 * MINUTE)
        uow.commit()

    [job] = jobs(world)
    assert (job.status, job.run_at) == (QUEUED, T0 + 50 * MINUTE)
    assert run_worker(world, once=True, now=T0).ran == 0
    assert reminder(world, r.id).status == "snoozed"


def test_a_job_left_over_from_an_earlier_time_does_nothing(world):
    r = remind(world, world.ann, T0)
    stale_payload = queued(world)[0].payload
    with world.unit_of_work(world.ann) as uow:
        snooze(uow, r.id, 60, now=T0)
        uow.commit()

    from crmcore.jobs.reminders import make_due

    with world.unit_of_work() as uow:
        make_due(uow, stale_payload)
        make_due(uow, {"reminder_id": 999, "remind_at": T0.isoformat()})
        uow.commit()

    assert reminder(world, r.id).status == "snoozed"


@pytest.mark.parametrize("minutes", [0, -5, 7 * 24 * 60 + 1, 1.5, True])
def test_snooze_takes_whole_minutes_up_to_a_week(world, minutes):
    r = remind(world, world.ann, T0)

    with world.unit_of_work(world.ann) as uow, pytest.raises(ValidationError, match="minutes from 1 to 10080"):
        snooze(uow, r.id, minutes)


def test_dismiss_takes_a_reminder_off_the_due_list_and_cancels_its_job(world):
    due = remind(world, world.ann, T0)
    waiting = remind(world, world.ann, T0 + dt.timedelta(hours=1))
    run_worker(world, once=True, now=T0)

    with world.unit_of_work(world.ann) as uow:
        dismiss(uow, due.id)
        dismiss(uow, waiting.id)
        again = dismiss(uow, waiting.id)
        uow.commit()

    assert again.status == "dismissed"
    assert due_for(world, world.ann) == []
    assert [(j.key, j.status) for j in jobs(world)] == [(job_key(due.id), DONE), (job_key(waiting.id), CANCELLED)]
    assert run_worker(world, once=True, now=T0 + dt.timedelta(days=1)).ran == 0
    with world.unit_of_work(world.ann) as uow, pytest.raises(ValidationError, match=f"reminder {due.id} is dismissed"):
        snooze(uow, due.id, 5)


def test_deleting_the_activity_deletes_its_reminders_and_cancels_their_jobs(world):
    r = remind(world, world.ann, T0)

    with world.unit_of_work() as uow:
        uow.delete("activity", world.meeting.id)
        uow.commit()

    with world.unit_of_work() as uow:
        assert uow.get_many("reminder", [r.id]) == []
    assert [j.status for j in jobs(world)] == [CANCELLED]


def test_only_the_worker_makes_a_reminder_due(world):
    r = remind(world, world.ann, T0)

    with world.unit_of_work(world.ann) as uow:
        with pytest.raises(ValidationError, match="becomes due when its time comes"):
            uow.update("reminder", r.id, status="due")
        with pytest.raises(ValidationError, match="a new reminder is scheduled"):
            uow.create("reminder", activity_id=world.meeting.id, user_id=world.ann.user_id, remind_at=T0, status="due")


def test_changing_the_time_of_a_reminder_like_any_field_moves_its_job(world):
    r = remind(world, world.ann, T0)

    with world.unit_of_work(world.ann) as uow:
        uow.update("reminder", r.id, remind_at=T0 + dt.timedelta(hours=2))
        uow.commit()

    [job] = queued(world)
    assert job.run_at == T0 + dt.timedelta(hours=2)


# -- whose reminders ------------------------------------------------------------------------------


def test_a_user_sees_snoozes_and_dismisses_only_their_own_reminders(world):
    anns = remind(world, world.ann, T0)
    run_worker(world, once=True, now=T0)

    with world.unit_of_work(world.bob) as uow:
        assert due_reminders(uow) == []
        assert due_reminders(uow, world.ann) == []
        assert uow.query("reminder").count() == 0
        with pytest.raises(NotFoundError, match=f"reminder {anns.id} not found"):
            snooze(uow, anns.id, 5)
        with pytest.raises(NotFoundError, match=f"reminder {anns.id} not found"):
            dismiss(uow, anns.id)
    assert reminder(world, anns.id).status == "due"


def test_a_manager_does_not_see_the_reminders_of_their_reports(crm_factory, make_user):
    security = {"security": {
        "profiles": {"rep": {"privileges": {"*": "all"}}},
        "roles": {"boss": {"profiles": ["rep"]}, "rep": {"parent": "boss", "profiles": ["rep"]}},
    }}
    app = crm_factory(settings=security)
    boss, rep = make_user(app, "boss"), make_user(app, "rep")
    with app.unit_of_work() as uow:
        roles = {r.name: r.id for r in uow.all("role")}
        uow.create("role_assignment", user_id=boss.user_id, role_id=roles["boss"])
        uow.create("role_assignment", user_id=rep.user_id, role_id=roles["rep"])
        uow.commit()
    with app.unit_of_work(rep) as uow:
        call = uow.create("activity", kind="call", subject="Call")
        mine = schedule_reminder(uow, call, None, T0)
        uow.commit()
    run_worker(app, once=True, now=T0)

    assert due_for(app, rep) == [mine.id]
    assert due_for(app, boss) == []
    with app.unit_of_work(boss) as uow:
        assert uow.query("activity").ids() == [call.id]  # the hierarchy shows the activity, not the reminder


def test_snoozing_needs_the_update_privilege_on_reminders(crm_factory, make_user):
    app = crm_factory(settings={"security": {"profiles": {"reader": {"privileges": {"*": ["read"]}}},
                                             "no_role_profile": "reader"}})
    ann = make_user(app, "ann")
    with app.unit_of_work() as uow:
        call = uow.create("activity", kind="call", subject="Call")
        r = schedule_reminder(uow, call, ann.user_id, T0)
        uow.commit()

    with app.unit_of_work(ann) as uow:
        assert [x.id for x in uow.query("reminder").all()] == [r.id]
        with pytest.raises(PermissionDeniedError, match="may not update reminder"):
            snooze(uow, r.id, 5)


# -- crm reminders --------------------------------------------------------------------------------


def crm(app, *args: str):
    return CliRunner().invoke(main, ["--db", app.settings.database, *args], catch_exceptions=False)


def test_crm_reminders_lists_the_acting_users_due_reminders_in_their_time_zone(world):
    r = remind(world, world.ann, T0, "Bring the figures")
    remind(world, world.bob, T0)
    run_worker(world, once=True, now=T0)

    result = crm(world, "--as", "ann", "reminders")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "id  due                     activity                      user  message",
        f"{r.id}   2026-03-02 10:00 +0100  {world.meeting.id} Review with senior manager  ann   Bring the figures",
    ]


def test_crm_reminders_takes_as_after_the_command_and_lists_everyones_for_the_system(world):
    anns = remind(world, world.ann, T0)
    bobs = remind(world, world.bob, T0)
    run_worker(world, once=True, now=T0)

    as_bob = crm(world, "reminders", "--as", "bob", "--json")
    everyone = crm(world, "reminders", "--json")

    assert [row["id"] for row in json.loads(as_bob.stdout)] == [bobs.id]
    rows = json.loads(everyone.stdout)
    assert [row["id"] for row in rows] == [anns.id, bobs.id]
    assert rows[1] == {
        "id": bobs.id, "status": "due", "remind_at": T0.isoformat(), "due": "2026-03-02 09:00 UTC",
        "activity_id": world.meeting.id, "activity": "Review with senior manager", "user_id": world.bob.user_id,
        "user": "bob", "message": None,
    }


def test_crm_reminders_says_when_nothing_is_due(world):
    remind(world, world.ann, T0 + dt.timedelta(days=365 * 50))

    assert crm(world, "--as", "ann", "reminders").stdout == "no due reminders for ann\n"
    assert crm(world, "reminders").stdout == "no due reminders for anyone\n"
    assert crm(world, "reminders", "--json").stdout == "[]\n"


def test_crm_reminders_snooze_and_dismiss(world):
    first = remind(world, world.ann, T0)
    second = remind(world, world.ann, T0 + MINUTE)
    run_worker(world, once=True, now=T0 + MINUTE)

    snoozed = crm(world, "--as", "ann", "reminders", "snooze", str(first.id), "--minutes", "15")
    dismissed = crm(world, "reminders", "dismiss", str(second.id), "--as", "ann")

    assert snoozed.exit_code == 0, snoozed.output
    assert re.fullmatch(rf"reminder {first.id} snoozed until \d{{4}}-\d\d-\d\d \d\d:\d\d \+0[12]00\n", snoozed.stdout)
    assert dismissed.stdout == f"reminder {second.id} dismissed\n"
    assert (reminder(world, first.id).status, reminder(world, second.id).status) == ("snoozed", "dismissed")
    assert crm(world, "--as", "ann", "reminders").stdout == "no due reminders for ann\n"


def test_crm_reminders_refuses_another_users_reminder_and_bad_input_in_one_line(world):
    anns = remind(world, world.ann, T0)

    other = crm(world, "reminders", "--as", "bob", "dismiss", str(anns.id))
    text = crm(world, "--as", "ann", "reminders", "snooze", "first")
    minutes = crm(world, "--as", "ann", "reminders", "snooze", str(anns.id), "--minutes", "0")
    nobody = crm(world, "reminders", "--as", "carol")

    assert (other.exit_code, other.stderr) == (1, f"error: reminder {anns.id} not found\n")
    assert (text.exit_code, text.stderr) == (1, "error: reminder id must be a whole number, got 'first'\n")
    assert minutes.exit_code == 2 and "--minutes" in minutes.stderr
    assert nobody.exit_code == 1 and nobody.stderr.startswith("error: no user named 'carol'")
    assert reminder(world, anns.id).status == "scheduled"
