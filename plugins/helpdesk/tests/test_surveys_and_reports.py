"""Satisfaction surveys answered by token, and the monthly report of attainment and CSAT."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from crmcore import NotFoundError, ValidationError
from helpdesk_support import MONDAY, account, get, open_ticket, queue, users

from crm_helpdesk import reports, tickets
from crm_helpdesk.surveys import answer_survey


def _resolved(crm: Any, **values: Any) -> tuple[Any, str]:
    ticket = open_ticket(crm, **values)
    with crm.unit_of_work() as uow:
        tickets.resolve(uow, ticket)
        uow.commit()
    with crm.unit_of_work() as uow:
        survey = uow.query("csat_survey").where(ticket_id=ticket.id).first()
    return ticket, survey.token


# -- surveys ------------------------------------------------------------------------------------


def test_a_survey_is_answered_with_its_token_no_login(
    crm_factory: Any, captured_signals: Any
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    (ann,) = users(crm, "ann")
    queue(crm, agents=(ann,))
    ticket, token = _resolved(crm)
    with captured_signals("helpdesk.survey-answered", crm) as sent:
        survey = answer_survey(crm, token, "4", "  Quick and friendly  ")
    assert (survey.score, survey.comment, survey.agent_id, survey.ticket_id) == (
        4,
        "Quick and friendly",
        ann.user_id,
        ticket.id,
    )
    assert survey.answered_at is not None
    assert [e.record.id for e in sent] == [survey.id]


def test_a_survey_is_answered_once(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    _, token = _resolved(crm)
    answer_survey(crm, token, 5)
    with pytest.raises(ValidationError, match="already answered"):
        answer_survey(crm, token, 1)


@pytest.mark.parametrize("score", [0, 6, "five", None, 4.5])
def test_a_score_outside_one_to_five_is_refused(crm_factory: Any, score: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    _, token = _resolved(crm)
    with pytest.raises(ValidationError, match="score"):
        answer_survey(crm, token, score)


def test_an_unknown_token_is_not_found_and_not_repeated(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    _resolved(crm)
    with pytest.raises(NotFoundError) as raised:
        answer_survey(crm, "guessed-token", 5)
    assert "guessed-token" not in str(raised.value)


def test_an_expired_survey_cannot_be_answered(crm_factory: Any) -> None:
    crm = crm_factory(
        plugins=["helpdesk"], settings={"plugins": {"helpdesk": {"survey_valid_days": 2}}}
    )
    _, token = _resolved(crm)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    with pytest.raises(ValidationError, match="expired"):
        answer_survey(crm, token, 5, now=later)


def test_resolving_again_after_a_reopen_keeps_the_unanswered_survey(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ticket, token = _resolved(crm)
    with crm.unit_of_work() as uow:
        tickets.reopen(uow, ticket.id)
        tickets.resolve(uow, ticket.id)
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [s.token for s in uow.query("csat_survey").where(ticket_id=ticket.id)] == [token]


def test_users_cannot_write_a_score(crm_factory: Any) -> None:
    from crmcore import PermissionDeniedError

    crm = crm_factory(plugins=["helpdesk"])
    (ann,) = users(crm, "ann")
    ticket, _ = _resolved(crm)
    with crm.unit_of_work(ann) as uow, pytest.raises(PermissionDeniedError, match="read-only"):
        survey = uow.query("csat_survey").where(ticket_id=ticket.id).first()
        uow.update(survey, score=5)


# -- the monthly report -------------------------------------------------------------------------


def _march(crm: Any) -> tuple[Any, Any]:
    ann, bob = users(crm, "ann", "bob")
    billing = queue(crm, "Billing", agents=(bob,))
    queue(crm, agents=(ann,))
    premium = account(crm, tier="premium")  # high: response 60 min, resolution 480 min
    day = dt.timedelta(days=1)
    plan = [  # (queue, minutes to the first response, minutes to the resolution, score)
        (None, 30, 300, 5),
        (None, 90, 400, 4),
        (None, 20, 2000, 2),
        (billing, 10, 100, 5),
        (billing, None, None, None),
    ]
    with crm.unit_of_work() as uow:
        for index, (queue_id, response, resolution, _) in enumerate(plan):
            values = {"queue_id": queue_id} if queue_id else {}
            ticket = tickets.open_ticket(
                uow,
                f"T{index}",
                account_id=premium,
                priority="high",
                opened_at=MONDAY + index * day,
                **values,
            )
            if response is not None:
                tickets.reply(
                    uow,
                    ticket,
                    "On it",
                    starts_at=ticket.opened_at + dt.timedelta(minutes=response),
                )
            if resolution is not None:
                uow.move(
                    "ticket",
                    ticket.id,
                    "resolved",
                    resolved_at=ticket.opened_at + dt.timedelta(minutes=resolution),
                )
        uow.commit()
    with crm.unit_of_work() as uow:
        surveys = uow.query("csat_survey").order_by("id").all()
    for survey, (_, _, _, score) in zip(
        surveys, [p for p in plan if p[3] is not None], strict=True
    ):
        answer_survey(crm, survey.token, score, now=dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC))
    return ann, bob


def test_the_report_gives_attainment_and_csat_per_agent_queue_and_in_total(
    crm_factory: Any,
) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    ann, bob = _march(crm)
    with crm.unit_of_work() as uow:
        report = reports.monthly_report(uow, "2026-03")
    by_agent = {line.name: line for line in report.agents}
    assert set(by_agent) == {"ann", "bob"}
    a, b = by_agent["ann"], by_agent["bob"]
    assert (a.opened, a.responses_met, a.responses_breached) == (3, 2, 1)
    assert (a.resolved, a.resolutions_met, a.resolutions_breached) == (3, 2, 1)
    assert (a.surveys, a.satisfied, a.average_score) == (3, 2, 3.67)
    assert (a.response_attainment, a.resolution_attainment, a.csat) == (66.7, 66.7, 66.7)
    assert (b.opened, b.responses_met, b.resolved, b.surveys, b.csat) == (2, 1, 1, 1, 100.0)
    assert [q.name for q in report.queues] == ["Billing", "General"]
    total = report.total
    assert (total.opened, total.resolved, total.surveys, total.satisfied) == (5, 4, 4, 3)
    assert total.response_attainment == 75.0
    assert report.to_dict()["total"]["csat"] == 75.0
    assert a.key == ann.user_id and b.key == bob.user_id


def test_another_month_is_empty(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    _march(crm)
    with crm.unit_of_work() as uow:
        report = reports.monthly_report(uow, "2026-04")
    assert report.agents == () and report.queues == ()
    assert report.total.opened == 0 and report.total.csat is None


@pytest.mark.parametrize("month", ["2026-13", "March", "2026-3", ""])
def test_a_month_that_is_not_one_is_refused(crm_factory: Any, month: str) -> None:
    crm = crm_factory(plugins=["helpdesk"])
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="expected a month"):
        reports.monthly_report(uow, month)


def test_month_bounds_follow_the_deployment_time_zone() -> None:
    from zoneinfo import ZoneInfo

    start, end = reports.month_bounds("2026-03", ZoneInfo("Europe/Berlin"))
    assert start == dt.datetime(2026, 2, 28, 23, 0, tzinfo=dt.UTC)
    assert end == dt.datetime(2026, 3, 31, 22, 0, tzinfo=dt.UTC)
    assert reports.month_bounds("2026-12", dt.UTC)[1] == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)


def test_the_report_counts_only_tickets_the_actor_may_read(crm_factory: Any) -> None:
    from helpdesk_support import SECURITY

    crm = crm_factory(plugins=["helpdesk"], security=SECURITY)
    (ann,) = users(crm, "ann", roles=("support_agent",))
    open_ticket(crm, opened_at=MONDAY)
    with crm.unit_of_work(ann) as uow:
        assert reports.monthly_report(uow, "2026-03").total.opened == 0
    assert get(crm, "ticket", 1).opened_at == MONDAY
