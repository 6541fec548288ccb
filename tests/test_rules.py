"""Rules: events, conditions and actions, start-up checks, time-based rules through the worker,
the guided-selling default rule and simulations that write nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import ConfigError, CrmError, PluginInfo, ValidationError, hookimpl
from crmcore.jobs import run_worker
from crmcore.security.admin import add_group_members, add_user
from crmcore.workflow.actions import Action, Param
from crmcore.workflow.rules import Event, Rule, RuleError, parse_event, rules_from_settings

EVERYTHING = {"privileges": {"*": "all"}}
#: vp > director > manager > rep; tests leave "manager" without users to check the manager lookup
SECURITY = {
    "profiles": {"everything": EVERYTHING},
    "roles": {
        "vp": {"profiles": ["everything"]},
        "director": {"parent": "vp", "profiles": ["everything"]},
        "manager": {"parent": "director", "profiles": ["everything"]},
        "rep": {"parent": "manager", "profiles": ["everything"]},
    },
    "groups": {"legal": {"description": "Legal team"}},
}
NOW = dt.datetime.now(dt.UTC)


def app_with(crm_factory: Any, rules: list[dict[str, Any]] | None = None, plugins: list[Any] | None = None,
             **settings: Any) -> Any:
    data: dict[str, Any] = {"security": SECURITY, **settings}
    if rules is not None:
        data["rules"] = rules
    crm = crm_factory(plugins=plugins or [], settings=data)
    with crm.unit_of_work() as uow:
        add_user(uow, "chief", roles=["vp"])
        add_user(uow, "boss", roles=["director"])
        add_user(uow, "rep1", roles=["rep"])
        add_user(uow, "lawyer")
        uow.commit()
    return crm


def ids(crm: Any) -> dict[str, int]:
    with crm.unit_of_work() as uow:
        return {u.username: u.id for u in uow.all("user")}


def opportunity(crm: Any, actor: str = "rep1", **values: Any) -> Any:
    with crm.unit_of_work(actor) as uow:
        record = uow.create("opportunity", {"name": "Deal", **values})
        uow.commit()
    return record


def move(crm: Any, record: Any, *stages: str, actor: str = "rep1") -> Any:
    with crm.unit_of_work(actor) as uow:
        record = uow.get("opportunity", record.id)
        for stage in stages:
            record = uow.move(record, stage)
        uow.commit()
    return record


def rows(crm: Any, entity: str, **where: Any) -> list[Any]:
    with crm.unit_of_work() as uow:
        query = uow.query(entity)
        if where:
            query = query.where(**where)
        return query.order_by("id").all()


def tags(crm: Any, record: Any) -> list[str]:
    with crm.unit_of_work() as uow:
        return uow.tags(record)


# -- parsing (no app) ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "event"), [
    ("created", Event("created")),
    ("updated", Event("updated")),
    ("field_changed:amount", Event("field_changed", "amount")),
    ("stage_entered:rfp_received", Event("stage_entered", "rfp_received")),
    ("stage_left:qualification", Event("stage_left", "qualification")),
    ("days_in_stage:qualification:14", Event("days_in_stage", "qualification", 14)),
    ("date_reached:close_date", Event("date_reached", "close_date", 0)),
    ("date_reached:close_date:-7", Event("date_reached", "close_date", -7)),
])
def test_events_parse(text: str, event: Event) -> None:
    assert parse_event(text) == event
    assert str(parse_event(text)) == text.replace(":0", "")


@pytest.mark.parametrize(("text", "message"), [
    ("creatd", "unknown event 'creatd'"),
    ("created:x", "takes no argument"),
    ("stage_entered", "needs a stage"),
    ("field_changed", "needs a field"),
    ("days_in_stage:qualification", "whole number of days"),
    ("days_in_stage:qualification:0", "whole number of days"),
    ("date_reached:close_date:soon", "optional offset"),
])
def test_bad_events_are_named(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_event(text, where="rule 'x' on")


def test_a_rule_parses_its_condition_and_actions() -> None:
    rule = Rule("big", "opportunity", on="stage_entered:won", when="amount > 10", then=[{"action": "add_tag", "tag": "big"}])

    assert rule.on == Event("stage_entered", "won")
    assert str(rule.when) == "amount > 10"
    assert rule.then[0].action == "add_tag" and rule.then[0].params == {"tag": "big"}


def test_a_rule_without_actions_is_refused() -> None:
    with pytest.raises(RuleError, match="rule 'idle': 'then' lists no action"):
        Rule("idle", "opportunity", on="created", then=[])


def test_a_malformed_condition_names_the_rule() -> None:
    with pytest.raises(ConfigError, match=r"rule 'bad' when: .*amount >"):
        Rule("bad", "opportunity", on="created", when="amount >", then=[{"action": "add_tag", "tag": "x"}])


def test_settings_change_only_the_keys_they_give_of_a_declared_rule() -> None:
    declared = {"big": Rule("big", "opportunity", on="created", when="amount > 10", then=[{"action": "add_tag", "tag": "b"}],
                            origin="plugin")}

    added, changed = rules_from_settings([{"name": "big", "when": "amount > 20"}, {"name": "off", "entity": "lead",
                                          "on": "created", "then": [{"action": "add_tag", "tag": "new"}], "enabled": False}],
                                         declared)

    assert str(changed["big"].when) == "amount > 20" and changed["big"].then == declared["big"].then
    assert [r.name for r in added] == ["off"] and not added[0].enabled


@pytest.mark.parametrize(("tables", "message"), [
    ({"name": "x"}, "rules must be a list"),
    ([{"entity": "lead"}], "every rule needs a name"),
    ([{"name": "x", "entity": "lead", "on": "created"}], "rule 'x': missing then"),
    ([{"name": "x", "entity": "lead", "on": "created", "then": [], "colour": 1}], "unknown key 'colour'"),
    ([{"name": "x", "entity": "lead", "on": "created", "then": [{"tag": "a"}]}], r"rule 'x' then\[0\]: an action is a table"),
])
def test_bad_rule_tables_are_named(tables: Any, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        rules_from_settings(tables, {})


# -- start-up checks -----------------------------------------------------------------------------

TAG = [{"action": "add_tag", "tag": "x"}]


@pytest.mark.parametrize(("rule", "message"), [
    ({"entity": "opportunity", "on": "created", "when": "amout > 5", "then": TAG}, "rule 'r' when: unknown field 'amout'"),
    ({"entity": "gizmo", "on": "created", "then": TAG}, "rule 'r': unknown entity type 'gizmo'"),
    ({"entity": "opportunity", "on": "stage_entered:rfp", "then": TAG}, "rule 'r' on 'stage_entered:rfp': unknown stage 'rfp'"),
    ({"entity": "opportunity", "on": "field_changed:amout", "then": TAG}, "unknown field 'amout' of opportunity"),
    ({"entity": "opportunity", "on": "date_reached:name", "then": TAG}, "field 'name' of opportunity is not a date"),
    ({"entity": "account", "on": "stage_entered:won", "then": TAG}, "account records have no pipeline"),
    ({"entity": "opportunity", "on": "created", "then": [{"action": "send_fax"}]}, r"then\[0\] \(send_fax\): unknown action 'send_fax'"),
    ({"entity": "opportunity", "on": "created", "then": [{"action": "add_tag", "tga": "x"}]}, "unknown parameter 'tga'"),
    ({"entity": "opportunity", "on": "created", "then": [{"action": "notify"}]}, "missing parameter 'message'"),
    ({"entity": "opportunity", "on": "created", "then": [{"action": "set_field", "field": "amout", "value": 1}]},
     "unknown field 'amout' of opportunity in parameter 'field'"),
    ({"entity": "opportunity", "on": "created", "then": [{"action": "set_field", "field": "probability", "value": "lots"}]},
     "value 'lots' does not fit field 'probability'"),
    ({"entity": "opportunity", "on": "created", "then": [{"action": "create_activity", "kind": "fax", "subject": "s"}]},
     "unknown activity kind 'fax'"),
    ({"entity": "opportunity", "on": "created", "then": [{"action": "create_activity", "kind": "call", "subject": "{nmae}"}]},
     r"placeholder \{nmae\} in 'subject'"),
    ({"entity": "opportunity", "on": "created", "then": [{"action": "notify", "message": "m", "to": ["boss"]}]},
     "unknown assignee 'boss'"),
    ({"entity": "opportunity", "on": "created", "then": [{"action": "schedule_reminder", "in_days": 1}]},
     "put a create_activity action before it"),
    ({"entity": "opportunity", "on": "created", "then": [{"action": "create_activity", "kind": "call", "subject": "s",
                                                          "due_in_days": "two"}]}, "parameter 'due_in_days' must be a number"),
    ({"entity": "account", "on": "created", "then": [{"action": "require_approval", "role": "vp"}]},
     "account records have no pipeline, so there is no move to hold"),
])
def test_a_rule_that_does_not_fit_stops_start_up_naming_rule_and_culprit(crm_factory: Any, rule: dict[str, Any],
                                                                         message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        crm_factory(settings={"rules": [{"name": "r", **rule}]}, create_schema=False)

    assert "'r'" in str(info.value)


def test_two_rules_of_one_name_in_settings_are_refused(crm_factory: Any) -> None:
    rule = {"name": "twice", "entity": "lead", "on": "created", "then": TAG}
    with pytest.raises(ConfigError, match=r"rules\[1\] 'twice': a rule of that name is already given"):
        crm_factory(settings={"rules": [rule, rule]}, create_schema=False)


# -- events --------------------------------------------------------------------------------------


def test_a_created_rule_runs_in_the_unit_of_work(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "mark", "entity": "opportunity", "on": "created", "when": "amount >= 1000",
                                  "then": [{"action": "add_tag", "tags": ["sizeable", "{stage}"]}]}])

    big, small = opportunity(crm, amount="1000"), opportunity(crm, amount="999")

    assert tags(crm, big) == ["initiation", "sizeable"]
    assert tags(crm, small) == []


def test_a_rolled_back_unit_keeps_nothing_a_rule_did(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "mark", "entity": "opportunity", "on": "created", "then": TAG}])
    with crm.unit_of_work("rep1") as uow:
        uow.create("opportunity", name="Gone")

    assert rows(crm, "tag") == []


def test_an_updated_rule_runs_on_every_update(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "ping", "entity": "opportunity", "on": "updated",
                                  "then": [{"action": "notify", "message": "{name} changed"}]}])
    record = opportunity(crm)
    with crm.unit_of_work("rep1") as uow:
        uow.update("opportunity", record.id, next_step="call")
        uow.update("opportunity", record.id, description="x")
        uow.commit()

    assert [n.message for n in rows(crm, "notification")] == ["Deal changed", "Deal changed"]


def test_a_field_changed_rule_runs_only_when_that_field_changes(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "repriced", "entity": "opportunity", "on": "field_changed:amount",
                                  "when": "amount > 100", "then": [{"action": "add_tag", "tag": "repriced"}]}])
    record = opportunity(crm, amount="50")
    with crm.unit_of_work("rep1") as uow:
        uow.update("opportunity", record.id, next_step="call")
    assert tags(crm, record) == []

    with crm.unit_of_work("rep1") as uow:
        uow.update("opportunity", record.id, amount="500")
        uow.commit()
    assert tags(crm, record) == ["repriced"]


def test_stage_entered_and_stage_left_rules(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [
        {"name": "in", "entity": "opportunity", "on": "stage_entered:qualification", "then": [{"action": "add_tag", "tag": "q-in"}]},
        {"name": "out", "entity": "opportunity", "on": "stage_left:qualification", "then": [{"action": "add_tag", "tag": "q-out"}]},
    ])
    record = opportunity(crm)
    move(crm, record, "identification", "qualification")
    assert tags(crm, record) == ["q-in"]

    move(crm, record, "rfp_received")
    assert tags(crm, record) == ["q-in", "q-out"]


def test_a_rule_on_a_moved_record_fires_in_bulk_moves_too(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "in", "entity": "opportunity", "on": "stage_entered:identification",
                                  "then": [{"action": "add_tag", "tag": "moved"}]}])
    records = [opportunity(crm, name=f"D{i}") for i in range(3)]
    with crm.unit_of_work("rep1") as uow:
        uow.move_many(uow.get_many("opportunity", [r.id for r in records]), "identification")
        uow.commit()

    assert all(tags(crm, r) == ["moved"] for r in records)


def test_a_condition_reads_the_owner_and_the_account(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "banking", "entity": "opportunity", "on": "created",
                                  "when": "account.industry = 'Banking' and owner.username = 'rep1'",
                                  "then": [{"action": "add_tag", "tag": "bank"}]}])
    with crm.unit_of_work("rep1") as uow:
        bank = uow.create("account", name="Bank", industry="Banking")
        shop = uow.create("account", name="Shop", industry="Retail")
        uow.commit()

    assert tags(crm, opportunity(crm, account_id=bank.id)) == ["bank"]
    assert tags(crm, opportunity(crm, account_id=shop.id)) == []


def test_rules_that_wake_each_other_stop_with_an_error_naming_them(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [
        {"name": "up", "entity": "opportunity", "on": "field_changed:probability", "when": "probability = 5",
         "then": [{"action": "set_field", "field": "probability", "value": 6}]},
        {"name": "down", "entity": "opportunity", "on": "field_changed:probability", "when": "probability = 6",
         "then": [{"action": "set_field", "field": "probability", "value": 5}]},
    ])
    record = opportunity(crm)
    with crm.unit_of_work("rep1") as uow, pytest.raises(CrmError, match=r"rules woke each other .*up -> down -> up"):
        uow.update("opportunity", record.id, probability=5)


# -- actions -------------------------------------------------------------------------------------


def test_set_field_sets_a_value_parsed_like_input(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "step", "entity": "opportunity", "on": "stage_entered:identification",
                                  "then": [{"action": "set_field", "field": "next_step", "value": "Find the decision maker"}]}])
    record = move(crm, opportunity(crm), "identification")

    assert rows(crm, "opportunity")[0].next_step == "Find the decision maker"
    assert record.stage == "identification"


def test_create_activity_assigns_to_a_role_with_group_participants_and_links_the_account(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "legal", "entity": "opportunity", "on": "created", "then": [{
        "action": "create_activity", "kind": "task", "subject": "Check {name}", "due_in_hours": 4,
        "assign_to": "role:director", "participants": ["group:legal", "owner"]}]}])
    users = ids(crm)
    with crm.unit_of_work() as uow:
        add_group_members(uow, "legal", ["user:lawyer"])
        account = uow.create("account", name="Acme")
        uow.commit()
    before = dt.datetime.now(dt.UTC)
    record = opportunity(crm, name="Acme deal", account_id=account.id)

    [activity] = rows(crm, "activity")
    assert (activity.kind, activity.subject, activity.owner_id) == ("task", "Check Acme deal", users["boss"])
    assert activity.participants == [{"user_id": users["lawyer"]}, {"user_id": users["rep1"]}]
    assert (activity.opportunity_id, activity.account_id) == (record.id, account.id)
    assert before + dt.timedelta(hours=4) <= activity.due_at <= dt.datetime.now(dt.UTC) + dt.timedelta(hours=4)


def test_create_activity_assigned_to_a_group_is_owned_by_the_group(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "legal", "entity": "opportunity", "on": "created", "then": [{
        "action": "create_activity", "kind": "task", "subject": "Contract", "assign_to": "group:legal"}]}])
    opportunity(crm)

    [activity] = rows(crm, "activity")
    with crm.unit_of_work() as uow:
        legal = uow.query("group").where(name="legal").first()
    assert activity.owner_group_id == legal.id


def test_notify_leaves_a_notification_only_its_user_sees(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "tell", "entity": "opportunity", "on": "stage_entered:identification",
                                  "then": [{"action": "notify", "to": ["owner_manager"], "message": "{owner.username} moved {name}"}]}])
    record = move(crm, opportunity(crm), "identification")

    with crm.unit_of_work("boss") as uow:
        [note] = uow.all("notification")
    with crm.unit_of_work("rep1") as uow:
        assert uow.all("notification") == []
    assert (note.message, note.record_entity, note.record_id, note.rule, note.read) == (
        "rep1 moved Deal", "opportunity", record.id, "tell", False)


def test_schedule_reminder_in_days_reminds_the_activity_owner(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "call", "entity": "opportunity", "on": "created", "then": [
        {"action": "create_activity", "kind": "call", "subject": "Call back"},
        {"action": "schedule_reminder", "in_days": 3, "to": ["owner", "role:vp"], "message": "Call {name}"},
    ]}])
    users = ids(crm)
    opportunity(crm)

    reminders = rows(crm, "reminder")
    assert sorted(r.user_id for r in reminders) == sorted([users["rep1"], users["chief"]])
    assert {r.message for r in reminders} == {"Call Deal"}
    assert all(dt.timedelta(days=2, hours=23) < r.remind_at - NOW < dt.timedelta(days=3, hours=1) for r in reminders)


@pytest.mark.parametrize(("assignee", "message"), [
    ("role:auditor", "no role named 'auditor' (assignee 'role:auditor'); create the role or change the rule"),
    ("user:ghost", "no user named 'ghost' (assignee 'user:ghost'); add the user or change the rule"),
    ("group:audit", "no group named 'audit' (assignee 'group:audit'); create the group or change the rule"),
])
def test_a_missing_assignee_at_run_time_names_the_rule(crm_factory: Any, assignee: str, message: str) -> None:
    crm = app_with(crm_factory, [{"name": "ask", "entity": "opportunity", "on": "created",
                                  "then": [{"action": "notify", "to": [assignee], "message": "m"}]}])
    with crm.unit_of_work("rep1") as uow, pytest.raises(CrmError) as raised:
        uow.create("opportunity", name="X")
    assert f"rule 'ask': {message}" in str(raised.value)


class Stamp:
    """A plugin offering an action and a rule that uses it."""

    PLUGIN = PluginInfo(name="stamp")

    @hookimpl
    def crm_rule_actions(self) -> list[Action]:
        def run(ctx: Any, params: Any) -> None:
            ctx.uow.create("note", body=ctx.render(params["text"]), opportunity_id=ctx.record.id)

        return [Action("stamp", run, {"text": Param("text", required=True, template=True)},
                       describe=lambda ctx, params: f"note {ctx.render(params['text'])!r}")]

    @hookimpl
    def crm_rules(self) -> list[Rule]:
        return [Rule("stamp_new", "opportunity", on="created", then=[{"action": "stamp", "text": "new: {name}"}])]


def test_a_plugin_adds_actions_and_rules(crm_factory: Any) -> None:
    crm = app_with(crm_factory, plugins=[Stamp()])
    opportunity(crm, name="Big")

    assert [n.body for n in rows(crm, "note")] == ["new: Big"]
    assert crm.rules.rules["stamp_new"].origin == "stamp"
    [firing] = crm.rules.simulate("opportunity", {"name": "Small"})
    assert [str(a) for a in firing.actions] == ["stamp: note 'new: Small'"]


def test_a_plugin_rule_with_an_unknown_parameter_stops_start_up(crm_factory: Any) -> None:
    class Broken:
        PLUGIN = PluginInfo(name="broken")

        @hookimpl
        def crm_rules(self) -> list[Rule]:
            return [Rule("oops", "opportunity", on="created", then=[{"action": "add_tag", "colour": "red"}])]

    with pytest.raises(ConfigError, match=r"rule 'oops' then\[0\] \(add_tag\): unknown parameter 'colour'"):
        crm_factory(plugins=[Broken()], create_schema=False)


# -- time-based rules ----------------------------------------------------------------------------


def test_days_in_stage_runs_through_the_worker_and_rechecks_its_condition(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "stale", "entity": "opportunity", "on": "days_in_stage:qualification:14",
                                  "when": "probability < 50", "then": [{"action": "add_tag", "tag": "stale"}]}])
    stuck = move(crm, opportunity(crm, name="Stuck"), "identification", "qualification")
    edited = move(crm, opportunity(crm, name="Edited"), "identification", "qualification")
    with crm.unit_of_work("rep1") as uow:
        uow.update("opportunity", edited.id, probability=60)
        uow.commit()
    [job] = [j for j in rows(crm, "job", kind="rules.timed") if j.key.endswith(f":{stuck.id}")]
    assert dt.timedelta(days=13, hours=23) < job.run_at - NOW < dt.timedelta(days=14, hours=1)

    assert run_worker(crm, once=True, now=NOW + dt.timedelta(days=10)).done == 0
    stats = run_worker(crm, once=True, now=NOW + dt.timedelta(days=15))

    assert stats.done == 2
    assert tags(crm, stuck) == ["stale"]
    assert tags(crm, edited) == []  # its condition no longer held when the job ran


def test_leaving_the_stage_cancels_the_days_in_stage_job(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "stale", "entity": "opportunity", "on": "days_in_stage:identification:3",
                                  "then": [{"action": "add_tag", "tag": "stale"}]}])
    record = move(crm, opportunity(crm), "identification", "qualification")

    assert [j.status for j in rows(crm, "job", kind="rules.timed")] == ["cancelled"]
    run_worker(crm, once=True, now=NOW + dt.timedelta(days=5))
    assert tags(crm, record) == []


def test_a_record_created_in_the_stage_gets_its_job(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "fresh", "entity": "opportunity", "on": "days_in_stage:initiation:2",
                                  "then": [{"action": "add_tag", "tag": "cold"}]}])
    record = opportunity(crm)

    run_worker(crm, once=True, now=NOW + dt.timedelta(days=3))
    assert tags(crm, record) == ["cold"]


def test_date_reached_with_an_offset_follows_the_date_and_clears_with_it(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "closing", "entity": "opportunity", "on": "date_reached:close_date:-7",
                                  "when": "stage != 'won'", "then": [{"action": "add_tag", "tag": "closing soon"}]}])
    close = (NOW + dt.timedelta(days=30)).date()
    record = opportunity(crm, close_date=close.isoformat())
    cleared = opportunity(crm, name="Cleared", close_date=close.isoformat())
    [job] = [j for j in rows(crm, "job", kind="rules.timed", status="queued") if j.key.endswith(f":{record.id}")]
    assert job.run_at.date() == close - dt.timedelta(days=7)

    later = close + dt.timedelta(days=10)
    with crm.unit_of_work("rep1") as uow:
        uow.update("opportunity", record.id, close_date=later.isoformat())
        uow.update("opportunity", cleared.id, close_date=None)
        uow.commit()
    run_worker(crm, once=True, now=NOW + dt.timedelta(days=25))
    assert tags(crm, record) == []  # moved: not due yet

    run_worker(crm, once=True, now=NOW + dt.timedelta(days=40))
    assert tags(crm, record) == ["closing soon"]
    assert tags(crm, cleared) == []


# -- the guided-selling default rule -------------------------------------------------------------


def test_guided_selling_plans_a_review_with_the_manager_and_a_reminder_the_day_before(crm_factory: Any) -> None:
    crm = app_with(crm_factory)
    users = ids(crm)
    before = dt.datetime.now(dt.UTC)
    record = move(crm, opportunity(crm, amount="60000"), "identification", "qualification", "rfp_received")

    [meeting] = rows(crm, "activity")
    assert (meeting.kind, meeting.subject, meeting.status) == ("meeting", "Review with senior manager", "planned")
    assert meeting.owner_id == users["rep1"]
    assert meeting.participants == [{"user_id": users["boss"]}]  # 'manager' has no user: the director is next up
    assert meeting.opportunity_id == record.id
    assert before + dt.timedelta(days=2) <= meeting.due_at <= dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    [reminder] = rows(crm, "reminder")
    assert (reminder.activity_id, reminder.user_id) == (meeting.id, users["rep1"])
    assert reminder.remind_at == meeting.due_at - dt.timedelta(days=1)


def test_guided_selling_prefers_the_nearest_manager_with_a_user(crm_factory: Any) -> None:
    crm = app_with(crm_factory)
    with crm.unit_of_work() as uow:
        add_user(uow, "manny", roles=["manager"])
        uow.commit()
    move(crm, opportunity(crm, amount="60000"), "identification", "qualification", "rfp_received")

    [meeting] = rows(crm, "activity")
    assert meeting.participants == [{"user_id": ids(crm)["manny"]}]


def test_guided_selling_leaves_small_deals_alone(crm_factory: Any) -> None:
    crm = app_with(crm_factory)
    move(crm, opportunity(crm, amount="50000"), "identification", "qualification", "rfp_received")

    assert rows(crm, "activity") == [] and rows(crm, "reminder") == []


def test_settings_switch_the_default_rule_off_or_change_it(crm_factory: Any) -> None:
    off = app_with(crm_factory, [{"name": "guided_selling_review", "enabled": False}])
    move(off, opportunity(off, amount="60000"), "identification", "qualification", "rfp_received")
    assert rows(off, "activity") == []

    higher = app_with(crm_factory, [{"name": "guided_selling_review", "when": "amount > 100000"}])
    move(higher, opportunity(higher, amount="60000"), "identification", "qualification", "rfp_received")
    move(higher, opportunity(higher, amount="150000"), "identification", "qualification", "rfp_received")
    assert len(rows(higher, "activity")) == 1


# -- simulation ----------------------------------------------------------------------------------


def counts(crm: Any) -> dict[str, int]:
    with crm.connect() as connection:
        return {t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in crm.metadata.sorted_tables}


def test_simulate_says_what_fires_and_what_it_would_do(crm_factory: Any) -> None:
    crm = app_with(crm_factory)

    [firing] = crm.rules.simulate("opportunity", {"name": "Big", "amount": "60000"}, stage="rfp_received", actor="rep1")

    assert (firing.rule, firing.event, firing.fired) == ("guided_selling_review", "stage_entered:rfp_received", True)
    assert "amount = 60000" in str(firing)
    create, remind = firing.actions
    assert create.action == "create_activity"
    assert "meeting 'Review with senior manager', due in 2 day(s)" in create.summary
    assert "assigned to rep1 (owner), participants: boss (owner_manager)" in create.summary
    assert remind.summary.startswith("remind rep1 (owner) at ") and "1 day(s) before" in remind.summary


def test_simulate_writes_nothing(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [
        {"name": "all", "entity": "opportunity", "on": "stage_entered:rfp_received", "then": [
            {"action": "set_field", "field": "next_step", "value": "x"}, {"action": "add_tag", "tag": "t"},
            {"action": "notify", "message": "m"}, {"action": "require_approval", "role": "vp"},
            {"action": "create_activity", "kind": "task", "subject": "s", "due_in_days": 1},
            {"action": "schedule_reminder", "days_before": 0}]},
        {"name": "later", "entity": "opportunity", "on": "days_in_stage:rfp_received:3", "then": TAG},
    ])
    before = counts(crm)

    firings = crm.rules.simulate("opportunity", {"name": "Big", "amount": "60000"}, stage="rfp_received", actor="rep1")

    assert [f.rule for f in firings] == ["guided_selling_review", "all"]
    assert len(firings[1].actions) == 6
    assert counts(crm) == before


def test_simulate_lists_the_rules_that_do_not_fire_on_request(crm_factory: Any) -> None:
    crm = app_with(crm_factory)

    assert crm.rules.simulate("opportunity", {"amount": "100"}, stage="rfp_received") == []
    [skipped] = crm.rules.simulate("opportunity", {"amount": "100"}, stage="rfp_received", include_skipped=True)
    assert not skipped.fired and "does not fire" in str(skipped) and "amount = 100" in str(skipped)


def test_simulate_of_a_time_based_event(crm_factory: Any) -> None:
    crm = app_with(crm_factory, [{"name": "stale", "entity": "opportunity", "on": "days_in_stage:qualification:14",
                                  "then": TAG}])

    [firing] = crm.rules.simulate("opportunity", {}, event="days_in_stage:qualification", stage="qualification")
    assert firing.rule == "stale" and str(firing.actions[0]) == "add_tag: tag with 'x'"


def test_simulate_refuses_bad_values_and_stages(crm_factory: Any) -> None:
    crm = app_with(crm_factory)

    with pytest.raises(ValidationError, match="amount"):
        crm.rules.simulate("opportunity", {"amount": "lots"})
    with pytest.raises(ValidationError, match="unknown stage 'rfp'"):
        crm.rules.simulate("opportunity", {}, stage="rfp")
    with pytest.raises(ConfigError, match="unknown event 'entered'"):
        crm.rules.simulate("opportunity", {}, event="entered")


def test_simulate_many_evaluates_many_records_in_one_unit(crm_factory: Any) -> None:
    crm = app_with(crm_factory)

    results = crm.rules.simulate_many("opportunity", [{"amount": str(a)} for a in (10, 60000, 70000)],
                                      stage="rfp_received", actor="rep1")

    assert [len(r) for r in results] == [0, 1, 1]
