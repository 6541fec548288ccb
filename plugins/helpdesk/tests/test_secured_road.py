"""The help desk on the one secured road: its hooks act with the actor's rights, a record the
actor cannot read behaves as a missing one, knowledge base search matches only visible fields,
and the monthly report counts what the actor's aggregate queries count."""

from __future__ import annotations

import copy
import datetime as dt
import logging
from typing import Any

import pytest
from crmcore import PermissionDeniedError, ReferenceError
from helpdesk_support import MONDAY, SECURITY, account, get, open_ticket, queue, users

from crm_helpdesk import kb, reports, tickets
from crm_helpdesk.surveys import answer_survey

MISSING = 987654


def _secured(hidden: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """SECURITY with surveys readable to agents and leads, and *hidden* fields for agents."""
    security = copy.deepcopy(SECURITY)
    for profile in security["profiles"].values():
        profile["privileges"]["csat_survey"] = ["read"]
    if hidden:
        security["profiles"]["agent"]["fields"] = hidden
    return security


def _desk(crm_factory: Any, hidden: dict[str, dict[str, str]] | None = None) -> Any:
    """ann works First line, cid works Billing, lee manages both; one ticket in each queue."""
    crm = crm_factory(plugins=["helpdesk"], security=_secured(hidden))
    ann, cid = users(crm, "ann", "cid", roles=("support_agent",))
    (lee,) = users(crm, "lee", roles=("support_lead",))
    first = queue(crm, "First line", agents=(ann,), manager_id=lee.user_id, assignment="manual")
    billing = queue(crm, "Billing", agents=(cid,), manager_id=lee.user_id, assignment="manual")
    acme, globex = account(crm, "Acme"), account(crm, "Globex")
    mine = open_ticket(crm, "Printer", queue_id=first, account_id=acme, opened_at=MONDAY)
    hidden_ticket = open_ticket(
        crm, "Invoice", queue_id=billing, account_id=globex, opened_at=MONDAY
    )
    return crm, (ann, cid, lee), (mine, hidden_ticket), (first, billing)


def _same_as_missing(hidden: Exception, missing: Exception, hidden_id: int) -> None:
    assert type(hidden) is type(missing)
    assert str(hidden).replace(str(hidden_id), "<id>") == str(missing).replace(str(MISSING), "<id>")


def _refusal(crm: Any, actor: Any, write: Any) -> Exception:
    with crm.unit_of_work(actor) as uow, pytest.raises(ReferenceError) as raised:
        write(uow)
    return raised.value


# -- hooks act with the actor's rights ----------------------------------------------------------


def test_an_activity_on_a_ticket_the_actor_cannot_read_is_refused_as_a_missing_ticket(
    crm_factory: Any,
) -> None:
    crm, (ann, _, _), (_, hidden), _ = _desk(crm_factory)

    def reply_on(ticket_id: int) -> Any:
        return lambda uow: uow.create(
            "activity", kind="email", subject="Hi", ticket_id=ticket_id, status="done"
        )

    refused = _refusal(crm, ann, reply_on(hidden.id))
    _same_as_missing(refused, _refusal(crm, ann, reply_on(MISSING)), hidden.id)
    untouched = get(crm, "ticket", hidden.id)  # neither opened nor stamped
    assert (untouched.status, untouched.first_response_at) == ("new", None)
    with crm.unit_of_work() as uow:
        assert uow.query("activity").count() == 0


def test_an_activity_moved_to_a_ticket_the_actor_cannot_read_is_refused(crm_factory: Any) -> None:
    crm, (ann, _, _), (mine, hidden), _ = _desk(crm_factory)
    with crm.unit_of_work(ann) as uow:
        task = uow.create("activity", kind="task", subject="Call back", ticket_id=mine.id)
        uow.commit()

    def move_to(ticket_id: int) -> Any:
        return lambda uow: uow.update("activity", task.id, ticket_id=ticket_id)

    _same_as_missing(
        _refusal(crm, ann, move_to(hidden.id)), _refusal(crm, ann, move_to(MISSING)), hidden.id
    )
    assert get(crm, "activity", task.id).ticket_id == mine.id


def test_a_response_on_a_readable_ticket_copies_its_account_and_opens_it_in_the_system_scope(
    crm_factory: Any, caplog: Any
) -> None:
    crm, (ann, _, _), (mine, _), _ = _desk(crm_factory)
    with caplog.at_level(logging.INFO, logger="crm_helpdesk.scope"):
        with crm.unit_of_work(ann) as uow:  # ann may read the ticket, not change it
            activity = tickets.reply(uow, mine, "On our way")
            uow.commit()
    assert activity.account_id == mine.account_id
    ticket = get(crm, "ticket", mine.id)
    assert ticket.status == "open" and ticket.first_response_at is not None
    assert any(
        "ann" in r.getMessage() and "stamps its first response" in r.getMessage()
        for r in caplog.records
    )


def test_a_ticket_takes_no_account_from_a_contact_the_actor_cannot_read(crm_factory: Any) -> None:
    crm, (ann, _, _), _, (first, _) = _desk(crm_factory)
    initech = account(crm, "Initech")
    with crm.unit_of_work() as uow:
        contact = uow.create("contact", last_name="Hidden", account_id=initech)
        uow.commit()

    def ticket_for(contact_id: int) -> Any:
        return lambda uow: tickets.open_ticket(uow, "Help", queue_id=first, contact_id=contact_id)

    _same_as_missing(
        _refusal(crm, ann, ticket_for(contact.id)),
        _refusal(crm, ann, ticket_for(MISSING)),
        contact.id,
    )
    with crm.unit_of_work() as uow:
        assert uow.query("ticket").where(subject="Help").count() == 0


# -- knowledge base search on visible fields ------------------------------------------------------


def _articles(crm: Any) -> tuple[int, int]:
    """Two published articles with the same title and bodies of as many words; only the second
    body says 'printer' (three times)."""
    with crm.unit_of_work() as uow:
        plain = uow.create("kb_article", title="Printer labels", body="Check the size now.")
        loud = uow.create(
            "kb_article", title="Printer labels", body="Zanzibar printer printer printer."
        )
        for article in (plain, loud):
            uow.move(article, "published")
        uow.commit()
    return plain.id, loud.id


@pytest.mark.parametrize("hidden", ["body", "title"])
def test_search_matches_only_the_fields_the_searcher_sees(crm_factory: Any, hidden: str) -> None:
    crm = crm_factory(plugins=["helpdesk"], security=_secured({"kb_article": {hidden: "hidden"}}))
    (ann,) = users(crm, "ann", roles=("support_agent",))
    plain, loud = _articles(crm)
    with crm.unit_of_work() as uow:  # the system sees every field
        assert [h.article.id for h in kb.search(uow, "zanzibar")] == [loud]
        assert {h.article.id for h in kb.search(uow, "label")} == {plain, loud}
    with crm.unit_of_work(ann) as uow:
        in_body = [h.article.id for h in kb.search(uow, "zanzibar")]
        in_body_prefix = [h.article.id for h in kb.search(uow, "zanzi")]
        in_title = [h.article.id for h in kb.search(uow, "labels")]
        both = kb.search(uow, "printer", limit=5)
    if hidden == "body":
        assert in_body == [] and in_body_prefix == []
        assert sorted(in_title) == [plain, loud]
        # the words of the hidden body neither match nor rank: both titles rank alike
        assert [h.article.id for h in both] == [plain, loud]
        assert both[0].rank == pytest.approx(both[1].rank)
        assert all("body" not in h.article.values for h in both)
    else:
        assert in_body == [loud] and in_body_prefix == [loud] and in_title == []
        assert [h.article.id for h in both] == [loud]


@pytest.mark.parametrize("hidden", ["body", "title"])
def test_the_length_of_a_hidden_field_does_not_weigh_in_the_rank(
    crm_factory: Any, hidden: str
) -> None:
    crm = crm_factory(plugins=["helpdesk"], security=_secured({"kb_article": {hidden: "hidden"}}))
    (ann,) = users(crm, "ann", roles=("support_agent",))
    shown = "body" if hidden == "title" else "title"
    filler = " ".join(f"w{n}" for n in range(40))
    with crm.unit_of_work() as uow:  # alike in the shown field; the first is long in the hidden one
        long, short = (
            uow.move(uow.create("kb_article", **{shown: "Printer labels", hidden: t}), "published")
            for t in (f"Zanzibar {filler}", "Zanzibar")
        )
        uow.commit()
    with crm.unit_of_work() as uow:  # the system sees both fields
        seen = [h.article.id for h in kb.search(uow, "printer labels")]
    # SQLite's bm25 ranks the shorter article first; PostgreSQL's ts_rank leaves length aside
    postgres = crm.engine.dialect.name == "postgresql"
    assert seen == ([long.id, short.id] if postgres else [short.id, long.id])
    with crm.unit_of_work(ann) as uow:
        hits = kb.search(uow, "printer labels")
    assert [h.article.id for h in hits] == [long.id, short.id]  # a tie, broken by id
    assert hits[0].rank == hits[1].rank


def test_no_visible_searched_field_finds_nothing(crm_factory: Any) -> None:
    hidden = {"kb_article": {"title": "hidden", "body": "hidden"}}
    crm = crm_factory(plugins=["helpdesk"], security=_secured(hidden))
    (ann,) = users(crm, "ann", roles=("support_agent",))
    _articles(crm)
    with crm.unit_of_work(ann) as uow:
        assert kb.search(uow, "printer") == []


def test_helped_counts_only_tickets_the_actor_may_read(crm_factory: Any) -> None:
    crm, (ann, cid, _), (_, billing_ticket), _ = _desk(crm_factory)
    plain, _ = _articles(crm)
    with crm.unit_of_work() as uow:
        tickets.resolve(uow, billing_ticket.id, articles=[plain])
        uow.commit()
    with crm.unit_of_work() as uow:
        assert kb.helped_counts(uow) == {plain: 1}
    with crm.unit_of_work(cid) as uow:  # works Billing
        assert kb.helped_counts(uow) == {plain: 1}
        assert {h.article.id: h.helped for h in kb.search(uow, "size")} == {plain: 1}
    with crm.unit_of_work(ann) as uow:  # works First line only
        assert kb.helped_counts(uow) == {}
        assert {h.article.id: h.helped for h in kb.search(uow, "size")} == {plain: 0}


# -- reports count as the actor's aggregate queries do -----------------------------------------


def _month_of_work(crm: Any, done: tuple[Any, ...], agents: dict[int, Any]) -> None:
    """Assign, answer, resolve each ticket of *done* (by queue agent) and answer its survey."""
    for ticket in done:
        with crm.unit_of_work() as uow:
            tickets.assign(uow, ticket.id, agents[ticket.queue_id].user_id)
            tickets.reply(uow, ticket.id, "Done", starts_at=MONDAY + dt.timedelta(minutes=30))
            tickets.resolve(uow, ticket.id)
            uow.commit()
        with crm.unit_of_work() as uow:
            survey = uow.query("csat_survey").where(ticket_id=ticket.id).first()
        answer_survey(crm, survey.token, 5, now=dt.datetime(2026, 3, 20, tzinfo=dt.UTC))


def _aggregated(uow: Any, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
    opened = uow.query("ticket").where(("opened_at", ">=", start), ("opened_at", "<", end))
    answered = uow.query("csat_survey").where(
        ("answered_at", ">=", start), ("answered_at", "<", end)
    )
    return {
        "opened": {r["queue_id"]: r["count"] for r in opened.aggregate(group_by=["queue_id"])},
        "surveys": {r["agent_id"]: r["count"] for r in answered.aggregate(group_by=["agent_id"])},
        "total": opened.count(),
    }


def test_the_report_counts_what_the_actors_aggregates_count(crm_factory: Any) -> None:
    crm, (ann, cid, lee), pair, (first, billing) = _desk(crm_factory)
    _month_of_work(crm, pair, {first: ann, billing: cid})
    start, end = reports.month_bounds("2026-03", dt.UTC)
    seen: dict[str, Any] = {}
    for actor in (ann, lee, None):  # an agent of one queue, their manager, the system
        with crm.unit_of_work(actor) as uow:
            report = reports.monthly_report(uow, "2026-03")
            expected = _aggregated(uow, start, end)
        name = actor.username if actor else "system"
        seen[name] = {q.name: q.opened for q in report.queues if q.opened}
        assert {q.key: q.opened for q in report.queues if q.opened} == expected["opened"]
        assert {a.key: a.surveys for a in report.agents if a.surveys} == expected["surveys"]
        assert report.total.opened == expected["total"]
    assert seen == {
        "ann": {"First line": 1},
        "lee": {"Billing": 1, "First line": 1},
        "system": {"Billing": 1, "First line": 1},
    }


def test_a_field_hidden_from_the_actor_refuses_the_report_as_an_aggregate_would(
    crm_factory: Any,
) -> None:
    crm, (ann, _, lee), _, _ = _desk(crm_factory, {"ticket": {"response_status": "hidden"}})
    with crm.unit_of_work(ann) as uow:
        with pytest.raises(PermissionDeniedError) as direct:
            uow.query("ticket").aggregate(group_by=["response_status"])
        with pytest.raises(PermissionDeniedError) as report:
            reports.monthly_report(uow, "2026-03")
    assert str(report.value) == str(direct.value)
    assert report.value.field == "response_status"
    with crm.unit_of_work(lee) as uow:  # the lead's profile hides nothing
        assert reports.monthly_report(uow, "2026-03").total.opened == 2


def test_sla_status_counts_the_actors_tickets_and_honours_hidden_fields(crm_factory: Any) -> None:
    from crm_helpdesk import sla

    crm, (ann, _, lee), _, _ = _desk(crm_factory, {"ticket": {"sla_paused_at": "hidden"}})
    with crm.unit_of_work(lee) as uow:
        assert {(s.name, s.open) for s in sla.sla_status(uow)} == {
            ("First line", 1),
            ("Billing", 1),
        }
    with crm.unit_of_work(ann) as uow, pytest.raises(PermissionDeniedError) as refused:
        sla.sla_status(uow)
    assert refused.value.field == "sla_paused_at"
    with crm.unit_of_work() as uow:
        assert sum(s.open for s in sla.sla_status(uow)) == 2
