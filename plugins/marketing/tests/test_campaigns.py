"""Campaigns: the segment snapshotted per run, e-mail through a real SMTP server with opt-outs
honoured and each send made once, signed unsubscribe links, calls and visits planned for the
owners over the schedule."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from crmcore import ValidationError
from marketing_support import office

from crm_marketing.campaigns import run_campaign, schedule, unsubscribe
from crm_marketing.errors import CampaignError
from crm_marketing.mailing import make_token, read_token

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
SECRET = "s3cret"


def _settings(smtp: Any) -> dict[str, Any]:
    return {"plugins": {"marketing": {"smtp_host": smtp.host, "smtp_port": smtp.port, "secret": SECRET,
                                      "sender": "news@example.com", "batch_size": 2}}}


def _contacts(crm: Any, actors: dict[str, Any], channel: str = "email") -> dict[str, Any]:
    with crm.unit_of_work() as uow:
        acme = uow.create("account", name="Acme", owner_id=actors["rep1"].user_id)
        globex = uow.create("account", name="Globex", owner_id=actors["rep2"].user_id)
        made = {"acme": acme, "globex": globex}
        for name, email, account, extra in (
            ("Ada", "ada@acme.test", acme, {}), ("Bob", "bob@acme.test", acme, {"email_opt_out": True}),
            ("Cy", None, globex, {}), ("Dee", "dee@globex.test", globex, {}),
        ):
            made[name] = uow.create("contact", first_name=name, last_name=name + "son", email=email,
                                    account_id=account.id, owner_id=account.owner_id, **extra)
        segment = uow.create("segment", name="Customers", member_entity="contact", conditions=["last_name~son"])
        made["campaign"] = uow.create(
            "campaign", name="Spring news", code="SPRING", channel=channel, segment_id=segment.id,
            subject="News for {{ first_name }}", product_group="PUMPS",
            message="Hello {{ first_name }}, new {{ campaign.product_group }}.\nLeave: {{ unsubscribe_url }}\n",
            starts_on=dt.date(2026, 3, 2), ends_on=dt.date(2026, 3, 13), budget="1000 EUR",
        )
        uow.commit()
    return made


def test_schedule_spreads_over_working_days() -> None:
    times = schedule(dt.date(2026, 3, 6), dt.date(2026, 3, 10), 6)  # Fri, (Sat, Sun), Mon, Tue
    assert [t.date().isoformat() for t in times] == ["2026-03-06"] * 2 + ["2026-03-09"] * 2 + ["2026-03-10"] * 2
    assert [t.hour for t in times] == [9, 10] * 3
    assert all(t.tzinfo is not None for t in times)


def test_tokens_are_signed() -> None:
    token = make_token(SECRET, 3, "contact", 42)
    assert read_token(SECRET, token) == (3, "contact", 42)
    forged = make_token("guess", 3, "contact", 43)
    payload_of_other = forged.split(".")[0]
    with pytest.raises(ValidationError, match="not valid"):
        read_token(SECRET, payload_of_other + "." + token.split(".")[1])
    with pytest.raises(ValidationError, match="not valid"):
        read_token(SECRET, forged)
    with pytest.raises(ValidationError, match="not valid"):
        read_token(SECRET, "garbage")


def test_email_campaign_sends_once_through_smtp_and_honours_opt_out(crm_factory: Any, smtp_server: Any) -> None:
    crm, actors = office(crm_factory, **_settings(smtp_server))
    made = _contacts(crm, actors)
    with crm.unit_of_work(actors["boss"]) as uow:
        result = run_campaign(uow, "SPRING", now=NOW)
        uow.commit()
    assert result.members == 4
    assert result.counts == {"sent": 2, "opted_out": 1, "no_address": 1}
    assert sorted(r[0] for r in smtp_server.recipients) == ["ada@acme.test", "dee@globex.test"]
    message = next(m for m in smtp_server.messages if m["To"] == "ada@acme.test")
    assert message["Subject"] == "News for Ada"
    assert message["From"] == "news@example.com"
    body = message.get_content()
    assert "Hello Ada, new PUMPS." in body
    link = re.search(r"Leave: (\S+)", body).group(1)
    assert message["List-Unsubscribe"] == f"<{link}>"
    with crm.unit_of_work() as uow:
        assert uow.get("campaign", made["campaign"].id).status == "active"
        members = uow.query("campaign_member").where(run_id=result.run_id).all()
        assert {m.member_id: m.status for m in members} == {
            made["Ada"].id: "sent", made["Bob"].id: "opted_out", made["Cy"].id: "no_address", made["Dee"].id: "sent"}
        assert uow.query("campaign_touch").where(kind="sent").count() == 2
        uow.create("contact", first_name="Eve", last_name="Evson", email="eve@acme.test",
                   account_id=made["acme"].id, owner_id=actors["rep1"].user_id)
        uow.commit()
    with crm.unit_of_work(actors["boss"]) as uow:  # a second run reaches only the newcomer
        again = run_campaign(uow, made["campaign"].id, now=NOW + dt.timedelta(days=1))
        uow.commit()
    assert again.counts == {"already_sent": 2, "opted_out": 1, "no_address": 1, "sent": 1}
    assert [r[0] for r in smtp_server.recipients[2:]] == ["eve@acme.test"]
    with crm.unit_of_work() as uow:  # each run keeps its own snapshot
        assert uow.query("campaign_member").where(run_id=result.run_id).count() == 4
        assert uow.query("campaign_member").where(run_id=again.run_id).count() == 5
        assert uow.query("campaign_touch").where(kind="sent").count() == 3


def test_unsubscribe_link_opts_out_and_later_runs_skip(crm_factory: Any, smtp_server: Any) -> None:
    crm, actors = office(crm_factory, **_settings(smtp_server))
    made = _contacts(crm, actors)
    with crm.unit_of_work(actors["boss"]) as uow:
        run_campaign(uow, "SPRING", now=NOW)
        uow.commit()
    message = next(m for m in smtp_server.messages if m["To"] == "dee@globex.test")
    token = re.search(r"token=(\S+)", message.get_content()).group(1)
    with crm.unit_of_work() as uow:
        assert unsubscribe(uow, token, now=NOW).email_opt_out is True
        unsubscribe(uow, token, now=NOW)  # clicking twice records one opt-out
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.get("contact", made["Dee"].id).email_opt_out is True
        assert uow.query("campaign_touch").where(kind="opt_out").count() == 1
        with pytest.raises(ValidationError, match="not valid"):
            unsubscribe(uow, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))


def test_an_unreachable_server_records_failures_and_a_later_run_sends_them(crm_factory: Any, smtp_server: Any) -> None:
    settings = _settings(smtp_server)
    settings["plugins"]["marketing"]["smtp_port"] = 1  # nothing listens there
    crm, actors = office(crm_factory, **settings)
    _contacts(crm, actors)
    with crm.unit_of_work(actors["boss"]) as uow:
        result = run_campaign(uow, "SPRING", now=NOW)
        uow.commit()
    assert result.counts["failed"] == 2 and "sent" not in result.counts
    with crm.unit_of_work() as uow:
        assert uow.query("campaign_touch").count() == 0


def test_visits_are_planned_for_account_owners_over_the_schedule(crm_factory: Any) -> None:
    crm, actors = office(crm_factory)
    made = _contacts(crm, actors, channel="visit")
    with crm.unit_of_work(actors["boss"]) as uow:
        result = run_campaign(uow, "SPRING", now=NOW)
        again = run_campaign(uow, "SPRING", now=NOW)
        uow.commit()
    assert result.counts == {"planned": 4} and again.counts == {"already_sent": 4}
    with crm.unit_of_work() as uow:
        visits = uow.query("activity").order_by("due_at").all()
    assert len(visits) == 4 and {v.kind for v in visits} == {"meeting"}
    by_owner = {}
    for visit in visits:
        by_owner.setdefault(visit.owner_id, []).append(visit)
    assert {o: len(v) for o, v in by_owner.items()} == {actors["rep1"].user_id: 2, actors["rep2"].user_id: 2}
    rep1 = [v.due_at.date() for v in by_owner[actors["rep1"].user_id]]
    assert rep1 == [dt.date(2026, 3, 2), dt.date(2026, 3, 9)]  # spread over the two weeks
    assert by_owner[actors["rep1"].user_id][0].contact_id == made["Ada"].id


def test_a_cancelled_campaign_does_not_run(crm_factory: Any) -> None:
    crm, actors = office(crm_factory)
    made = _contacts(crm, actors, channel="call")
    with crm.unit_of_work() as uow:
        uow.update(made["campaign"], status="cancelled")
        with pytest.raises(CampaignError, match="is cancelled"):
            run_campaign(uow, "SPRING")


def test_an_email_campaign_needs_a_secret(crm_factory: Any) -> None:
    crm, actors = office(crm_factory)
    _contacts(crm, actors)
    with crm.unit_of_work() as uow, pytest.raises(CampaignError, match="secret"):
        run_campaign(uow, "SPRING")


def test_a_rendered_subject_cannot_add_headers_and_may_be_non_ascii() -> None:
    import email
    import email.policy

    from crm_marketing.mailing import build

    data = build("news@example.com", "ada@acme.test", "Grüße\nBcc: eve@evil.test", "Hallo Ada\n", "https://x.test/u?t=1")
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message["Subject"] == "Grüße Bcc: eve@evil.test"
    assert message["Bcc"] is None
    assert message.get_content() == "Hallo Ada\n"


def test_periodic_calls_plan_one_round_at_a_time_through_the_worker(crm_factory: Any) -> None:
    from crmcore.jobs import run_worker

    crm, actors = office(crm_factory)
    made = _contacts(crm, actors, channel="call")
    with crm.unit_of_work() as uow:  # every week for three weeks
        uow.update(made["campaign"], repeat_days=7, ends_on=dt.date(2026, 3, 20))
        uow.commit()
    with crm.unit_of_work(actors["boss"]) as uow:
        first = run_campaign(uow, "SPRING", now=NOW)
        again = run_campaign(uow, "SPRING", now=NOW)  # the same round again reaches nobody
        uow.commit()
    assert first.counts == {"planned": 4} and again.counts == {"already_sent": 4}
    for day in (9, 16, 23):
        run_worker(crm, once=True, now=dt.datetime(2026, 3, day, 10, tzinfo=dt.UTC))
    with crm.unit_of_work() as uow:
        calls = uow.query("activity").where(kind="call").order_by("due_at").all()
        rounds = sorted({c.due_at.date().isocalendar().week for c in calls})
        assert len(calls) == 12 and rounds == [10, 11, 12]  # three rounds of four calls, none after the end
        assert all(dt.date(2026, 3, 2) <= c.due_at.date() <= dt.date(2026, 3, 20) for c in calls)
        assert uow.query("campaign_run").count() == 4


def test_clicks_are_tracked_once_from_the_signed_token_and_touches_show_on_the_timeline(
    crm_factory: Any, smtp_server: Any,
) -> None:
    from crm_marketing.attribution import campaign_results
    from crm_marketing.campaigns import track

    crm, actors = office(crm_factory, **_settings(smtp_server))
    made = _contacts(crm, actors)
    with crm.unit_of_work(actors["boss"]) as uow:
        run_campaign(uow, "SPRING", now=NOW)
        uow.commit()
    token = make_token(SECRET, made["campaign"].id, "contact", made["Ada"].id)
    with crm.unit_of_work() as uow:
        first = track(uow, token, "clicked", now=NOW)
        assert track(uow, token, "clicked", now=NOW).id == first.id
        track(uow, token, "opened", now=NOW)
        with pytest.raises(ValidationError, match="cannot track 'bounced'"):
            track(uow, token, "bounced")
        with pytest.raises(ValidationError, match="not valid"):
            track(uow, make_token("guess", made["campaign"].id, "contact", made["Dee"].id), "clicked")
        uow.commit()
    with crm.unit_of_work() as uow:
        (result,) = campaign_results(uow)
        assert (result.reached, result.responses) == (2, 1)
        kinds = [e.entity for e in uow.timeline("contact", made["Ada"].id)]
        assert kinds.count("campaign_touch") == 3  # sent, clicked, opened


def test_batches_go_out_over_several_connections_each_message_once(crm_factory: Any, smtp_server: Any) -> None:
    settings = _settings(smtp_server)
    settings["plugins"]["marketing"].update(batch_size=2, connections=3)
    crm, _ = office(crm_factory, **settings)
    with crm.unit_of_work() as uow:
        for n in range(9):
            uow.create("contact", first_name=f"C{n}", last_name="Many", email=f"c{n}@many.test")
        segment = uow.create("segment", name="Many", member_entity="contact", conditions=["last_name=Many"])
        uow.create("campaign", name="Many", code="MANY", channel="email", segment_id=segment.id, subject="Hi",
                   message="Hello {{ first_name }}\n{{ unsubscribe_url }}\n")
        uow.commit()
    with crm.unit_of_work() as uow:
        result = run_campaign(uow, "MANY", now=NOW)
        uow.commit()
    assert result.counts == {"sent": 9}
    assert sorted(r[0] for r in smtp_server.recipients) == sorted(f"c{n}@many.test" for n in range(9))
    bodies = {m["To"]: m.get_payload(decode=True).decode() for m in smtp_server.messages}
    assert bodies["c4@many.test"].startswith("Hello C4\nhttps://example.com/unsubscribe?token=")


def test_a_campaign_through_several_channels_has_a_status_per_channel(crm_factory: Any, smtp_server: Any) -> None:
    crm, actors = office(crm_factory, **_settings(smtp_server))
    made = _contacts(crm, actors)
    with crm.unit_of_work() as uow:
        uow.update("campaign", made["campaign"].id, channels=["call", "email"])
        uow.commit()
    with crm.unit_of_work(actors["boss"]) as uow:
        result = run_campaign(uow, "SPRING", now=NOW)
        again = run_campaign(uow, "SPRING", now=NOW)
        uow.commit()
    assert result.members == 4
    assert result.counts == {"sent": 2, "opted_out": 1, "no_address": 1, "planned": 4}
    assert again.counts == {"already_sent": 6, "opted_out": 1, "no_address": 1}
    assert len(smtp_server.messages) == 2
    with crm.unit_of_work() as uow:
        statuses = {(m.channel, m.contact_id): m.status
                    for m in uow.query("campaign_member").where(run_id=result.run_id).all()}
        calls = uow.query("activity").where(kind="call").all()
    assert statuses[("email", made["Bob"].id)] == "opted_out" and statuses[("call", made["Bob"].id)] == "planned"
    assert len(statuses) == 8 and len(calls) == 4
    with crm.unit_of_work() as uow:
        uow.update("campaign", made["campaign"].id, channels=["fax"])
        with pytest.raises(CampaignError, match="unknown channel 'fax'"):
            run_campaign(uow, "SPRING", now=NOW)


def test_a_campaign_to_several_segments_reaches_a_member_of_both_once(crm_factory: Any, smtp_server: Any) -> None:
    crm, actors = office(crm_factory, **_settings(smtp_server))
    made = _contacts(crm, actors)
    with crm.unit_of_work() as uow:
        acme = uow.create("segment", name="Acme people", member_entity="contact", conditions=["account_id.name=Acme"])
        leads = uow.create("segment", name="Leads", member_entity="lead", conditions=["last_name=Lovelace"])
        uow.create("lead", last_name="Lovelace", email="ada@lovelace.test", owner_id=actors["rep1"].user_id)
        uow.update("campaign", made["campaign"].id, segments=[acme.id, leads.id])
        uow.commit()
    with crm.unit_of_work(actors["boss"]) as uow:
        result = run_campaign(uow, "SPRING", now=NOW)
        uow.commit()
    assert result.members == 5  # four contacts (Ada and Bob are in both contact segments) and the lead
    assert result.counts == {"sent": 3, "opted_out": 1, "no_address": 1}
    assert sorted(m["To"] for m in smtp_server.messages) == ["ada@acme.test", "ada@lovelace.test", "dee@globex.test"]
    with crm.unit_of_work() as uow:
        uow.update("campaign", made["campaign"].id, segments=["Acme people"])
        with pytest.raises(CampaignError, match="give a list of segment ids"):
            run_campaign(uow, "SPRING", now=NOW)
