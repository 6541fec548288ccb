"""The SLA sweep, escalations and the help desk's jobs, through the worker at fixed times."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crmcore.jobs import run_worker
from helpdesk_support import MONDAY, account, get, open_ticket, queue, users

from crm_helpdesk import sla, tickets
from crm_helpdesk.businesstime import BusinessCalendar
from crm_helpdesk.sla import Targets, clock_fields

OFFICE = BusinessCalendar.from_hours(
    dt.UTC, {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
)


def _premium_high(crm: Any, **values: Any) -> Any:
    """Premium / high: first response in 60 business minutes (warning at 48), resolution in 480."""
    return open_ticket(
        crm,
        account_id=account(crm, f"Acme {values.get('subject', '')}", tier="premium"),
        priority="high",
        opened_at=MONDAY,
        **values,
    )


def _sweep(crm: Any, at: dt.datetime) -> sla.SweepResult:
    with crm.unit_of_work() as uow:
        result = sla.sla_sweep(uow, at)
        uow.commit()
    return result


# -- clocks, without a database -----------------------------------------------------------------


def test_clock_fields_put_due_and_warning_times_in_business_time() -> None:
    targets = Targets(1, OFFICE, 60, 480, 50)
    friday = dt.datetime(2026, 3, 6, 16, 40, tzinfo=dt.UTC)
    fields = clock_fields(targets, {"opened_at": friday}, friday)
    assert fields["response_warn_at"] == dt.datetime(2026, 3, 9, 9, 10, tzinfo=dt.UTC)
    assert fields["response_due"] == dt.datetime(2026, 3, 9, 9, 40, tzinfo=dt.UTC)
    assert fields["resolution_due"] == dt.datetime(2026, 3, 9, 16, 40, tzinfo=dt.UTC)
    assert fields["response_status"] == fields["resolution_status"] == "pending"


def test_paused_minutes_move_the_due_times() -> None:
    targets = Targets(1, OFFICE, 60, None, 0)
    fields = clock_fields(targets, {"opened_at": MONDAY, "sla_paused_minutes": 120}, MONDAY)
    assert fields["response_due"] == MONDAY + dt.timedelta(hours=3)
    assert fields["response_warn_at"] is None
    assert (fields["resolution_due"], fields["resolution_status"]) == (None, "none")


def test_a_breached_target_stays_breached_and_a_reached_one_is_settled() -> None:
    targets = Targets(1, OFFICE, 60, 480, 80)
    late = clock_fields(targets, {"opened_at": MONDAY, "response_status": "breached"}, MONDAY)
    assert late["response_status"] == "breached"
    answered = clock_fields(
        targets,
        {"opened_at": MONDAY, "first_response_at": MONDAY + dt.timedelta(minutes=59)},
        MONDAY,
    )
    assert answered["response_status"] == "met"


def test_without_a_policy_there_are_no_clocks() -> None:
    fields = clock_fields(None, {"opened_at": MONDAY}, MONDAY)
    assert fields["response_due"] is None and fields["response_status"] == "none"


# -- the sweep ----------------------------------------------------------------------------------


def test_the_sweep_warns_then_breaches_each_target_once(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket = _premium_high(crm)
    assert _sweep(crm, MONDAY + dt.timedelta(minutes=47)).changed == 0
    warned = _sweep(crm, MONDAY + dt.timedelta(minutes=48))
    assert (warned.response_warnings, warned.response_breaches) == ((ticket.id,), ())
    assert _sweep(crm, MONDAY + dt.timedelta(minutes=50)).changed == 0
    breached = _sweep(crm, MONDAY + dt.timedelta(minutes=60))
    assert breached.response_breaches == (ticket.id,)
    after = get(crm, "ticket", ticket.id)
    assert (after.response_status, after.resolution_status) == ("breached", "pending")
    assert after.version == ticket.version + 2
    with crm.unit_of_work() as uow:
        events = [(e.kind, e.target) for e in uow.query("sla_event").order_by("id")]
    assert events == [("warning", "response"), ("breach", "response")]


def test_a_target_past_its_due_time_is_breached_without_a_warning_first(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket = _premium_high(crm)
    result = _sweep(crm, dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC))
    assert (result.response_breaches, result.resolution_breaches) == ((ticket.id,), (ticket.id,))
    assert result.response_warnings == result.resolution_warnings == ()


def test_the_sweep_skips_paused_answered_and_resolved_tickets(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    waiting, answered, done = (
        _premium_high(crm, subject=s) for s in ("waiting", "answered", "done")
    )
    with crm.unit_of_work() as uow:
        uow.move("ticket", waiting.id, "pending_customer")
        tickets.reply(uow, answered, "Here you are", starts_at=MONDAY + dt.timedelta(minutes=5))
        tickets.resolve(uow, done)
        uow.commit()
    result = _sweep(
        crm, dt.datetime(2026, 3, 2, 16, 30, tzinfo=dt.UTC)
    )  # resolution warning at 16:24
    assert result.changed == 1 and result.resolution_warnings == (answered.id,)


def test_breaches_are_escalated_by_the_worker(crm_factory: Any, captured_signals: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ann, boss = users(crm, "ann", "boss")
    queue(crm, agents=(ann,), manager_id=boss.user_id)
    ticket = _premium_high(crm)
    assert ticket.assignee_id == ann.user_id
    at = MONDAY + dt.timedelta(minutes=61)
    assert _sweep(crm, at).jobs == 1
    with captured_signals("helpdesk.ticket-breached", crm) as sent:
        stats = run_worker(crm, once=True, now=at)
    assert stats.failed == 0
    after = get(crm, "ticket", ticket.id)
    assert (after.priority, after.assignee_id) == ("urgent", boss.user_id)
    with crm.unit_of_work() as uow:
        tasks = uow.query("activity").where(ticket_id=ticket.id, kind="task").all()
    assert [(t.subject, t.owner_id) for t in tasks] == [
        ("SLA breached: response of ticket 1", boss.user_id)
    ]
    assert [(e.record.id, e.target) for e in sent] == [(ticket.id, "response")]
    assert sent[0].actions == (
        "raised priority to urgent",
        "reassigned to the queue manager",
        "notified the manager",
    )


def test_a_breach_moves_the_ticket_to_the_escalation_queue(crm_factory: Any) -> None:
    crm = crm_factory(
        plugins=["helpdesk"],
        settings={"plugins": {"helpdesk": {"escalation_actions": ["reassign"]}}},
    )
    ann, expert = users(crm, "ann", "expert")
    second = queue(crm, "Second line", agents=(expert,))
    queue(crm, agents=(ann,), escalation_queue_id=second)
    ticket = _premium_high(crm)
    at = MONDAY + dt.timedelta(minutes=61)
    _sweep(crm, at)
    run_worker(crm, once=True, now=at)
    after = get(crm, "ticket", ticket.id)
    assert (after.queue_id, after.assignee_id, after.priority) == (second, expert.user_id, "high")


def test_a_warning_notifies_the_assignee(crm_factory: Any, captured_signals: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    (ann,) = users(crm, "ann")
    queue(crm, agents=(ann,))
    ticket = _premium_high(crm)
    at = MONDAY + dt.timedelta(minutes=50)
    _sweep(crm, at)
    with captured_signals("helpdesk.ticket-warned", crm) as sent:
        run_worker(crm, once=True, now=at)
    with crm.unit_of_work() as uow:
        tasks = uow.query("activity").where(ticket_id=ticket.id).all()
    assert [(t.subject, t.owner_id, t.due_at) for t in tasks] == [
        ("SLA warning: response due for ticket 1", ann.user_id, MONDAY + dt.timedelta(hours=1))
    ]
    assert len(sent) == 1 and get(crm, "ticket", ticket.id).priority == "high"


def test_an_escalation_of_a_ticket_resolved_meanwhile_does_nothing(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket = _premium_high(crm)
    at = MONDAY + dt.timedelta(minutes=61)
    _sweep(crm, at)
    with crm.unit_of_work() as uow:
        tickets.resolve(uow, ticket)
        uow.commit()
    run_worker(crm, once=True, now=at)
    assert get(crm, "ticket", ticket.id).priority == "high"


# -- jobs -----------------------------------------------------------------------------------------


def test_the_worker_sweeps_at_its_own_time_and_queues_the_next_sweep(crm_factory: Any) -> None:
    crm = crm_factory(
        plugins=["helpdesk"], settings={"plugins": {"helpdesk": {"sweep_interval_minutes": 10}}}
    )
    ticket = _premium_high(crm)
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
        days=1
    )  # the seed queued a sweep for now
    stats = run_worker(crm, once=True, now=at)
    assert stats.failed == 0
    assert get(crm, "ticket", ticket.id).response_status == "breached"
    with crm.unit_of_work() as uow:
        queued = uow.query("job").where(kind="helpdesk.sla_sweep", status="queued").all()
    assert [j.run_at for j in queued] == [at + dt.timedelta(minutes=10)]


def test_a_resolved_ticket_closes_when_its_reopen_window_ends(
    crm_factory: Any, captured_signals: Any
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket = open_ticket(crm)
    with crm.unit_of_work() as uow:
        resolved = tickets.resolve(uow, ticket)
        uow.commit()
    run_worker(crm, once=True, now=resolved.resolved_at + dt.timedelta(days=6))
    assert get(crm, "ticket", ticket.id).status == "resolved"
    with captured_signals("helpdesk.ticket-closed", crm) as sent:
        run_worker(crm, once=True, now=resolved.resolved_at + dt.timedelta(days=7, minutes=1))
    closed = get(crm, "ticket", ticket.id)
    assert closed.status == "closed" and closed.closed_at is not None
    assert [e.record.id for e in sent] == [ticket.id]


def test_sla_status_counts_per_queue(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    first, waiting, second = (_premium_high(crm, subject=s) for s in ("first", "waiting", "second"))
    with crm.unit_of_work() as uow:
        uow.move("ticket", waiting.id, "pending_customer")
        uow.commit()
    _sweep(crm, MONDAY + dt.timedelta(minutes=61))
    with crm.unit_of_work() as uow:
        (general,) = sla.sla_status(uow)
    assert (general.name, general.open, general.paused, general.warning, general.breached) == (
        "General",
        3,
        1,
        0,
        2,
    )
    assert general.next_due == dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC)
    assert {
        t.response_status for t in (get(crm, "ticket", first.id), get(crm, "ticket", second.id))
    } == {"breached"}


def _retire(uow: Any, priority: str, tier: str) -> None:
    """Switch off the seeded policy of *priority* and *tier*."""
    seeded = uow.query("sla_policy").where(priority=priority, support_tier=tier).first()
    uow.update(seeded, active=False)


def test_a_policy_on_its_own_calendar_counts_its_hours_holidays_and_time_zone(
    crm_factory: Any,
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    with crm.unit_of_work() as uow:
        _retire(uow, "urgent", "premium")
        berlin = uow.create("business_calendar", name="Berlin office", timezone="Europe/Berlin")
        for day in ("mon", "tue", "wed", "thu", "fri"):
            uow.create(
                "business_hours", calendar_id=berlin.id, weekday=day, opens="8:30", closes="12:00"
            )
            uow.create(
                "business_hours", calendar_id=berlin.id, weekday=day, opens="13:00", closes="17:00"
            )
        uow.create("business_holiday", calendar_id=berlin.id, day="2026-03-30", name="Closed")
        uow.create(
            "sla_policy",
            name="Berlin urgent",
            calendar_id=berlin.id,
            priority="urgent",
            support_tier="premium",
            first_response_minutes=120,
            resolution_minutes=None,
        )
        uow.commit()
    friday = dt.datetime(2026, 3, 27, 16, 0, tzinfo=dt.UTC)  # 17:00 in Berlin: closed
    ticket = open_ticket(
        crm, account_id=account(crm, tier="premium"), priority="urgent", opened_at=friday
    )
    # Monday the 30th is a holiday; Tuesday 08:30 CEST + 2 hours = 10:30 CEST = 08:30 UTC
    assert ticket.response_due == dt.datetime(2026, 3, 31, 8, 30, tzinfo=dt.UTC)
    assert (ticket.resolution_due, ticket.resolution_status) == (None, "none")


def test_hours_that_close_before_they_open_are_refused(crm_factory: Any) -> None:
    import pytest
    from crmcore import ValidationError

    crm = crm_factory(plugins=["helpdesk"])
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="closes at '09:00'"):
        calendar = uow.create("business_calendar", name="Night", timezone="UTC")
        uow.create(
            "business_hours", calendar_id=calendar.id, weekday="mon", opens="17:00", closes="09:00"
        )


def test_a_policy_whose_calendar_has_no_hours_opens_tickets_without_clocks(
    crm_factory: Any,
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    with crm.unit_of_work() as uow:
        _retire(uow, "low", "premium")
        empty = uow.create("business_calendar", name="Nothing", timezone="UTC")
        uow.create(
            "sla_policy",
            name="Odd",
            calendar_id=empty.id,
            priority="low",
            support_tier="premium",
            first_response_minutes=60,
            resolution_minutes=60,
        )
        uow.commit()
    ticket = open_ticket(crm, account_id=account(crm, tier="premium"), priority="low")
    assert (ticket.response_due, ticket.response_status, ticket.sla_policy_id) == (
        None,
        "none",
        None,
    )
