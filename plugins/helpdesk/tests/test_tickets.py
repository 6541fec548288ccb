"""Tickets through the unit of work: opening, clocks, responses, pauses, resolution, reopening."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from crmcore import ConfigError, PermissionDeniedError, TransitionError, ValidationError
from helpdesk_support import MONDAY, SECURITY, account, get, open_ticket, queue, users

from crm_helpdesk import tickets, workflow


def test_a_ticket_opens_new_in_the_default_queue_with_clocks_from_its_policy(
    crm_factory: Any,
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    premium = account(crm, tier="premium")
    ticket = open_ticket(crm, account_id=premium, priority="high", opened_at=MONDAY)
    assert ticket.status == "new"
    assert ticket.queue_id == queue(crm, "General")
    # premium / high: first response in 1 business hour, resolution in 1 business day
    assert ticket.response_due == MONDAY + dt.timedelta(hours=1)
    assert ticket.resolution_due == dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)
    assert ticket.response_warn_at == MONDAY + dt.timedelta(minutes=48)
    assert (ticket.response_status, ticket.resolution_status) == ("pending", "pending")


def test_the_policy_follows_the_support_tier_and_an_account_without_one_is_basic(
    crm_factory: Any,
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    basic = open_ticket(crm, account_id=account(crm, "Plain"), opened_at=MONDAY)
    standard = open_ticket(crm, account_id=account(crm, "Mid", tier="standard"), opened_at=MONDAY)
    assert basic.response_due == dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)  # 1 business day
    assert standard.response_due == MONDAY + dt.timedelta(hours=4)
    with crm.unit_of_work() as uow:
        assert uow.get("account", basic.account_id).support_tier == "basic"
    assert crm.registry.entity("account").field("support_tier").column == "helpdesk_support_tier"


def test_a_ticket_from_a_contact_gets_the_contacts_account(
    crm_factory: Any, make_record: Any
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    acme = account(crm)
    contact = make_record(crm, "contact", last_name="Lovelace", account_id=acme)
    assert open_ticket(crm, contact_id=contact.id).account_id == acme


def test_a_clock_started_on_friday_evening_runs_on_monday(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    friday = dt.datetime(2026, 3, 6, 16, 45, tzinfo=dt.UTC)
    ticket = open_ticket(
        crm, account_id=account(crm, tier="premium"), priority="urgent", opened_at=friday
    )
    # premium / urgent: 30 minutes, 15 of them on Friday
    assert ticket.response_due == dt.datetime(2026, 3, 9, 9, 15, tzinfo=dt.UTC)


def test_an_unknown_priority_or_channel_is_refused(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    with pytest.raises(ValidationError, match="priority"):
        open_ticket(crm, priority="whenever")
    with pytest.raises(ValidationError, match="channel"):
        open_ticket(crm, channel="pigeon")


def test_a_reply_is_the_first_response_and_opens_the_ticket(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket = open_ticket(
        crm, account_id=account(crm, tier="premium"), priority="high", opened_at=MONDAY
    )
    with crm.unit_of_work() as uow:
        activity = tickets.reply(
            uow, ticket, "We are on our way.", starts_at=MONDAY + dt.timedelta(minutes=20)
        )
        uow.commit()
    after = get(crm, "ticket", ticket.id)
    assert after.status == "open"
    assert after.first_response_at == MONDAY + dt.timedelta(minutes=20)
    assert after.response_status == "met"
    assert (activity.kind, activity.ticket_id, activity.account_id) == (
        "email",
        ticket.id,
        ticket.account_id,
    )


def test_a_late_first_response_is_a_breach(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket = open_ticket(
        crm, account_id=account(crm, tier="premium"), priority="high", opened_at=MONDAY
    )
    with crm.unit_of_work() as uow:
        tickets.reply(uow, ticket, "Sorry for the wait.", starts_at=MONDAY + dt.timedelta(hours=2))
        uow.commit()
    assert get(crm, "ticket", ticket.id).response_status == "breached"


def test_a_call_of_the_call_center_is_an_activity_on_the_ticket_and_in_the_timelines(
    crm_factory: Any,
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    acme = account(crm)
    ticket = open_ticket(crm, account_id=acme, channel="phone", opened_at=MONDAY)
    with crm.unit_of_work() as uow:
        call = tickets.log_call(
            uow,
            ticket,
            "Customer called back",
            starts_at=MONDAY + dt.timedelta(minutes=5),
            ends_at=MONDAY + dt.timedelta(minutes=15),
            notes="Walked through the driver update",
        )
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [a.id for a in uow.query("activity").where(ticket_id=ticket.id)] == [call.id]
        assert ("activity", call.id) in [
            (e.entity, e.record_id) for e in uow.timeline("ticket", ticket.id)
        ]
        assert ("activity", call.id) in [
            (e.entity, e.record_id) for e in uow.timeline("account", acme)
        ]
        assert uow.get("ticket", ticket.id).first_response_at == MONDAY + dt.timedelta(minutes=5)


def test_a_task_on_a_ticket_is_no_response(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket = open_ticket(crm, opened_at=MONDAY)
    with crm.unit_of_work() as uow:
        uow.create("activity", kind="task", subject="Order a spare part", ticket_id=ticket.id)
        uow.commit()
    after = get(crm, "ticket", ticket.id)
    assert (after.status, after.first_response_at) == ("new", None)


def test_waiting_on_the_customer_stops_the_clocks(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket = open_ticket(crm, opened_at=MONDAY)
    with crm.unit_of_work() as uow:
        paused = uow.move("ticket", ticket.id, "pending_customer")
        assert paused.sla_paused_at is not None
        uow.commit()
    with (
        crm.unit_of_work() as uow
    ):  # pretend the customer took two business days (Mon 10:00 to Wed 10:00)
        uow.update("ticket", ticket.id, sla_paused_at=MONDAY)
        uow.commit()
    now = dt.datetime.now(dt.UTC)
    with crm.unit_of_work() as uow:
        resumed = uow.move("ticket", ticket.id, "open")
        uow.commit()
    assert resumed.sla_paused_at is None
    expected = _office_minutes(MONDAY, now)
    assert abs(resumed.sla_paused_minutes - expected) <= 1
    assert resumed.resolution_due > ticket.resolution_due


def _office_minutes(start: dt.datetime, end: dt.datetime) -> float:
    from crm_helpdesk.businesstime import BusinessCalendar

    hours = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
    return BusinessCalendar.from_hours(dt.UTC, hours).between(start, end)


def test_raising_the_priority_shortens_the_clocks(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket = open_ticket(
        crm, account_id=account(crm, tier="premium"), priority="low", opened_at=MONDAY
    )
    with crm.unit_of_work() as uow:
        urgent = uow.update("ticket", ticket.id, priority="urgent")
        uow.commit()
    assert urgent.response_due == MONDAY + dt.timedelta(minutes=30)
    assert urgent.response_due < ticket.response_due


def test_resolving_stamps_the_time_settles_the_clocks_and_sends_a_survey(
    crm_factory: Any, captured_signals: Any
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket = open_ticket(crm)
    with captured_signals("helpdesk.ticket-resolved", crm) as sent, crm.unit_of_work() as uow:
        resolved = tickets.resolve(uow, ticket)
        uow.commit()
    assert resolved.status == "resolved" and resolved.resolved_at is not None
    assert resolved.first_response_at == resolved.resolved_at
    assert resolved.resolution_status == "met"
    assert [e.record.id for e in sent] == [ticket.id]
    with crm.unit_of_work() as uow:
        survey = uow.query("csat_survey").where(ticket_id=ticket.id).first()
        job = uow.query("job").where(kind="helpdesk.auto_close", status="queued").first()
    assert survey is not None and len(survey.token) >= 32 and survey.answered_at is None
    assert job is not None and job.payload == {"ticket_id": ticket.id}
    assert job.run_at - resolved.resolved_at == dt.timedelta(days=7)


def test_a_ticket_reopens_within_the_window(crm_factory: Any, captured_signals: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket = open_ticket(crm)
    with crm.unit_of_work() as uow:
        tickets.resolve(uow, ticket)
        uow.commit()
    with captured_signals("helpdesk.ticket-reopened", crm) as sent, crm.unit_of_work() as uow:
        again = tickets.reopen(uow, ticket.id)
        uow.commit()
    assert (again.status, again.reopen_count, again.resolved_at) == ("open", 1, None)
    assert again.resolution_status == "pending"
    assert len(sent) == 1
    with crm.unit_of_work() as uow:
        assert uow.query("job").where(kind="helpdesk.auto_close", status="queued").count() == 0


@pytest.mark.parametrize("stage", ["resolved", "closed"])
def test_a_ticket_does_not_reopen_after_the_window(crm_factory: Any, stage: str) -> None:
    crm = crm_factory(
        plugins=["helpdesk"], settings={"plugins": {"helpdesk": {"reopen_window_days": 3}}}
    )
    ticket = open_ticket(crm)
    with crm.unit_of_work() as uow:
        uow.move("ticket", ticket.id, stage)
        uow.commit()
    with crm.unit_of_work() as uow:
        uow.update("ticket", ticket.id, resolved_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=4))
        uow.commit()
    with crm.unit_of_work() as uow, pytest.raises(TransitionError, match="now - resolved_at <= 3"):
        tickets.reopen(uow, ticket.id)


def test_the_reopen_window_is_bound_into_its_guard_never_formatted_into_the_text() -> None:
    guard = workflow.reopen_guard(0.5)
    assert guard.source == workflow.REOPEN_GUARD == "now - resolved_at <= :days"
    assert str(guard) == "now - resolved_at <= 0.5"
    resolved = dt.datetime.now(dt.UTC)
    assert guard.evaluate({"resolved_at": resolved - dt.timedelta(hours=11)}).result
    assert not guard.evaluate({"resolved_at": resolved - dt.timedelta(hours=13)}).result


@pytest.mark.parametrize(
    ("key", "value"),
    [("reopen_window_days", 36501), ("survey_valid_days", 36501), ("survey_valid_days", 0),
     ("sweep_interval_minutes", 0)],
)
def test_day_and_minute_counts_out_of_their_bounds_stop_start_up(
    crm_factory: Any, key: str, value: int
) -> None:
    with pytest.raises(ConfigError, match=f"plugins.helpdesk.{key}.*{value}"):
        crm_factory(plugins=["helpdesk"], settings={"plugins": {"helpdesk": {key: value}}})


def test_closing_needs_its_permission_when_security_is_configured(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"], security=SECURITY)
    (agent,) = users(crm, "ann", roles=("support_agent",))
    (lead,) = users(crm, "lee", roles=("support_lead",))
    ticket = open_ticket(crm, actor=agent)
    with (
        crm.unit_of_work(agent) as uow,
        pytest.raises(TransitionError, match="helpdesk.ticket.close"),
    ):
        tickets.close(uow, ticket.id)
    with crm.unit_of_work() as uow:
        uow.update("ticket", ticket.id, owner_id=lead.user_id)
        uow.commit()
    with crm.unit_of_work(lead) as uow:
        assert tickets.close(uow, ticket.id).status == "closed"


def test_assigning_someone_else_needs_its_permission(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"], security=SECURITY)
    ann, bob = users(crm, "ann", "bob", roles=("support_agent",))
    ticket = open_ticket(crm, actor=ann)
    with (
        crm.unit_of_work(ann) as uow,
        pytest.raises(PermissionDeniedError, match="helpdesk.ticket.assign"),
    ):
        tickets.assign(uow, ticket.id, bob.user_id)
    with crm.unit_of_work(ann) as uow:
        mine = tickets.assign(uow, ticket.id, ann.user_id)
        uow.commit()
    assert (mine.assignee_id, mine.status) == (ann.user_id, "open")
    assert mine.assigned_at is not None


def test_sla_fields_are_read_only_for_users(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    (ann,) = users(crm, "ann")
    ticket = open_ticket(crm, actor=ann)
    with crm.unit_of_work(ann) as uow, pytest.raises(PermissionDeniedError, match="read-only"):
        uow.update("ticket", ticket.id, response_status="met")


def test_without_the_plugin_there_are_no_tickets_fields_or_hooks(crm_factory: Any) -> None:
    crm = crm_factory()
    assert not any(e.origin == "helpdesk" for e in crm.registry)
    assert not crm.registry.entity("account").has_field("support_tier")
    assert not crm.registry.entity("activity").has_field("ticket_id")
    assert "helpdesk" not in crm.plugins.plugins
    assert not [t for t in crm.metadata.tables if t.startswith("helpdesk_")]
    assert "helpdesk.ticket" not in crm.workflow.pipelines
    with crm.connect() as connection:
        import sqlalchemy as sa

        assert not [
            t for t in sa.inspect(connection).get_table_names() if t.startswith("helpdesk_")
        ]


def test_a_ticket_imported_as_waiting_or_done_has_settled_clocks(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    waiting = open_ticket(crm, "Waiting", status="pending_customer", opened_at=MONDAY)
    done = open_ticket(crm, "Done", status="closed", opened_at=MONDAY)
    assert waiting.sla_paused_at is not None and waiting.resolved_at is None
    assert (done.resolved_at, done.closed_at, done.first_response_at) == (MONDAY, MONDAY, MONDAY)
    assert (done.response_status, done.resolution_status) == ("met", "met")


def test_deleting_a_ticket_takes_its_activities_and_survey_and_the_close_job_ends_quietly(
    crm_factory: Any,
) -> None:
    from crmcore.jobs import run_worker

    crm = crm_factory(plugins=["helpdesk"])
    ticket = open_ticket(crm)
    with crm.unit_of_work() as uow:
        tickets.reply(uow, ticket, "On it")
        resolved = tickets.resolve(uow, ticket.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        uow.delete("ticket", ticket.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.query("activity").where(ticket_id=ticket.id).count() == 0
        assert uow.query("csat_survey").count() == 0
    stats = run_worker(crm, once=True, now=resolved.resolved_at + dt.timedelta(days=8))
    assert stats.failed == stats.retried == 0
