"""Batch moves (``uow.move_many``): the batch hooks get the batch, plugins with per-record hooks
only are still called once per record, and a batch gives what the same moves one by one give:
records, audit, tags, activities, reminders, jobs, signals, and the same refusals."""

from __future__ import annotations

from typing import Any

import pytest

from crmcore import (
    ConflictError,
    NotFoundError,
    PluginError,
    PluginInfo,
    TransitionError,
    ValidationError,
    hookimpl,
)
from crmcore.security.admin import add_user
from crmcore.workflow.approvals import approvals

TIMES = frozenset({"created_at", "updated_at", "stage_entered_at", "due_at", "remind_at", "run_at"})

#: Rules of every kind a move wakes: on the stage entered and left, on a field changed by a rule's
#: own set_field, on update, time-based; with templates, references and batched actions.
RULES: list[dict[str, Any]] = [
    {"name": "big", "entity": "opportunity", "on": "stage_entered:identification", "when": "amount >= 50000",
     "then": [{"action": "add_tag", "tags": ["big", "owner-{owner.username}"]}]},
    {"name": "review", "entity": "opportunity", "on": "stage_entered:identification", "when": "amount >= 100000",
     "then": [{"action": "create_activity", "kind": "task", "subject": "Review {name} for {account.name}", "due_in_days": 2,
               "assign_to": "owner"},
              {"action": "schedule_reminder", "days_before": 1, "message": "Review {name} tomorrow"}]},
    {"name": "fast", "entity": "opportunity", "on": "stage_left:initiation", "when": "amount < 10000",
     "then": [{"action": "set_field", "field": "next_step", "value": "qualify fast"}]},
    {"name": "fast_tag", "entity": "opportunity", "on": "field_changed:next_step", "when": "next_step = 'qualify fast'",
     "then": [{"action": "add_tag", "tag": "fast"}]},
    {"name": "bank", "entity": "opportunity", "on": "stage_entered:identification", "when": "account.industry = 'Banking'",
     "then": [{"action": "add_tag", "tag": "bank"}]},
    {"name": "huge", "entity": "opportunity", "on": "updated", "when": "amount > 1000000",
     "then": [{"action": "add_tag", "tag": "huge"}]},
    {"name": "stale", "entity": "opportunity", "on": "days_in_stage:identification:3",
     "then": [{"action": "notify", "message": "{name} waits in identification"}]},
]
AMOUNTS = ["5000", "60000", "120000", "2000000", "9000", "75000", "150000", "40000", "1000", "99999", "500000", "80000"]


def seeded(crm_factory: Any, *, plugins: list[Any] | None = None, rules: list[dict[str, Any]] | None = None) -> tuple[Any, list[Any]]:
    """An app with *rules* and twelve opportunities in initiation (one already in
    identification), owned by two users, on two accounts."""
    crm = crm_factory(plugins=plugins or [], settings={"rules": RULES if rules is None else rules})
    with crm.unit_of_work() as uow:
        owners = [add_user(uow, "ann").id, add_user(uow, "bob").id]
        accounts = [uow.create("account", name="Bank", industry="Banking").id, uow.create("account", name="Shop", industry="Retail").id]
        deals = [uow.create("opportunity", name=f"Deal {n}", amount=f"{amount} EUR", owner_id=owners[n % 2],
                            account_id=accounts[n // 2 % 2]) for n, amount in enumerate(AMOUNTS)]
        deals[3] = uow.move(deals[3], "identification")
        uow.commit()
    return crm, deals


def _plain(values: Any) -> dict[str, Any]:
    return {k: ("<time>" if k in TIMES and v is not None else v) for k, v in dict(values).items()}


def snapshot(crm: Any) -> dict[str, Any]:
    """Everything a move leaves behind, without the times (two runs happen at different times)."""
    with crm.unit_of_work() as uow:
        deals = uow.all("opportunity")
        return {
            "deals": [_plain(d.values) for d in deals],
            "history": {d.id: [(e.action, _plain({k: tuple(v) for k, v in e.changes.items()})) for e in uow.history("opportunity", d.id)]
                        for d in deals},
            "tags": {d.id: uow.tags(d) for d in deals},
            "activities": [_plain(a.values) for a in uow.all("activity")],
            "reminders": [_plain(r.values) for r in uow.all("reminder")],
            "jobs": sorted((j.kind, j.key, j.status, tuple(sorted((k, v) for k, v in j.payload.items() if k not in ("since", "remind_at"))))
                           for j in uow.all("job")),
            "notifications": [_plain(n.values) for n in uow.all("notification")],
        }


def test_move_many_leaves_what_the_same_moves_one_by_one_leave(crm_factory: Any, captured_signals: Any) -> None:
    one, deals = seeded(crm_factory)
    many, _ = seeded(crm_factory)

    with captured_signals("record-moved", one) as moved_one, captured_signals("record-updated", one) as updated_one:
        with one.unit_of_work() as uow:
            singles = [uow.move(uow.get("opportunity", d.id), "identification") for d in deals]
            uow.commit()
    with captured_signals("record-moved", many) as moved_many, captured_signals("record-updated", many) as updated_many:
        with many.unit_of_work() as uow:
            batch = uow.move_many(uow.get_many("opportunity", [d.id for d in deals]), "identification")
            uow.commit()

    assert [_plain(r.values) for r in batch] == [_plain(r.values) for r in singles]
    expected = snapshot(one)
    assert snapshot(many) == expected
    assert expected["tags"][deals[1].id] == ["bank", "big", "owner-bob"]  # the rules did fire
    assert expected["tags"][deals[0].id] == ["bank", "fast"]
    assert len(expected["activities"]) == 4 and len(expected["reminders"]) == 4
    assert [j[0] for j in expected["jobs"]].count("rules.timed") == len(deals)
    moves = sorted((e.record.id, e.pipeline, e.source, e.target) for e in moved_one)
    assert sorted((e.record.id, e.pipeline, e.source, e.target) for e in moved_many) == moves
    assert moves == [(d.id, "sales", "initiation", "identification") for d in deals if d.id != deals[3].id]
    assert sorted((e.record.id, tuple(e.changes)) for e in updated_many) == sorted((e.record.id, tuple(e.changes)) for e in updated_one)


def test_a_record_already_in_the_stage_is_returned_unchanged(crm_factory: Any) -> None:
    crm, deals = seeded(crm_factory, rules=[])
    with crm.unit_of_work() as uow:
        [first, already] = uow.move_many([deals[0], deals[3]], "identification")
        uow.commit()
    assert (first.version, already.version, already) == (2, deals[3].version, deals[3])


class Recorder:
    """A plugin noting each call of the record hooks it implements."""

    def __init__(self, name: str) -> None:
        self.PLUGIN = PluginInfo(name=name)
        self.calls: list[tuple[str, Any]] = []


class Batch(Recorder):
    @hookimpl
    def crm_before_update(self, entity: str, items: Any) -> None:
        self.calls.append(("before_update", entity, [record.id for record, _ in items]))

    @hookimpl
    def crm_after_update(self, entity: str, items: Any) -> None:
        self.calls.append(("after_update", entity, [new.id for _, new, _ in items]))

    @hookimpl
    def crm_before_move(self, entity: str, moves: Any) -> None:
        self.calls.append(("before_move", entity, [record.id for record, _, _ in moves]))

    @hookimpl
    def crm_after_move(self, entity: str, moves: Any) -> None:
        self.calls.append(("after_move", entity, [(new.id, source, target) for _, new, source, target in moves]))


def move_all(crm_factory: Any, plugin: Any) -> list[int]:
    """Move every seeded deal to identification in one batch with *plugin* enabled (its calls
    from the seeding forgotten); the ids of the deals that moved (deal 4 is there already)."""
    crm, deals = seeded(crm_factory, plugins=[plugin], rules=[])
    plugin.calls.clear()
    with crm.unit_of_work() as uow:
        uow.move_many(deals, "identification")
        uow.commit()
    return [d.id for d in deals if d.id != deals[3].id]


def test_the_record_hooks_receive_the_batch_once(crm_factory: Any) -> None:
    plugin = Batch("batch")
    ids = move_all(crm_factory, plugin)

    assert plugin.calls == [
        ("before_update", "opportunity", ids),
        ("before_move", "opportunity", ids),
        ("after_update", "opportunity", ids),
        ("after_move", "opportunity", [(i, "initiation", "identification") for i in ids]),
    ]


def test_a_single_move_is_a_batch_of_one(crm_factory: Any) -> None:
    plugin = Batch("batch")
    crm, deals = seeded(crm_factory, plugins=[plugin], rules=[])
    plugin.calls.clear()

    with crm.unit_of_work() as uow:
        uow.move(deals[0], "identification")
        uow.commit()

    assert [(c[0], c[2]) for c in plugin.calls] == [
        ("before_update", [deals[0].id]), ("before_move", [deals[0].id]), ("after_update", [deals[0].id]),
        ("after_move", [(deals[0].id, "initiation", "identification")]),
    ]


class NextStep:
    """Once on, sets the next step of every opportunity a batch moves (or returns *result*)."""

    PLUGIN = PluginInfo(name="next_step")

    def __init__(self, result: Any = None) -> None:
        self.result = result
        self.on = False

    @hookimpl
    def crm_before_update(self, entity: str, items: Any) -> Any:
        if not self.on:
            return None
        if self.result is not None:
            return self.result
        shared = {"next_step": "call"}
        return [shared if record.name != "Deal 2" else {"next_step": "visit"} for record, _ in items]


def test_changes_a_batch_hook_returns_are_validated_and_written(crm_factory: Any) -> None:
    plugin = NextStep()
    crm, deals = seeded(crm_factory, plugins=[plugin], rules=[])
    plugin.on = True
    with crm.unit_of_work() as uow:
        moved = uow.move_many(deals[:3], "identification")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [d.next_step for d in uow.get_many("opportunity", [d.id for d in deals[:3]])] == ["call", "call", "visit"]
        assert uow.history("opportunity", deals[2].id)[-1].changes["next_step"] == (None, "visit")
    assert [d.next_step for d in moved] == ["call", "call", "visit"]


@pytest.mark.parametrize(("result", "error", "message"), [
    ([{"probability": "many"}], ValidationError, "probability"),
    ([None, None], PluginError, r"one entry \(None or changes\) for each of the 1 items"),
])
def test_a_batch_hook_returning_bad_changes_is_refused(crm_factory: Any, result: Any, error: Any, message: str) -> None:
    plugin = NextStep(result)
    crm, deals = seeded(crm_factory, plugins=[plugin], rules=[])
    plugin.on = True
    with crm.unit_of_work() as uow, pytest.raises(error, match=message):
        uow.move_many(deals[:1], "identification")


def _refusal(crm: Any, record: Any, stage: str, actor: str | None = None) -> str:
    with crm.unit_of_work(actor) as uow, pytest.raises(TransitionError) as info:
        uow.move(uow.get("opportunity", record.id), stage)
    return str(info.value)


def _unchanged(crm: Any, deals: list[Any]) -> None:
    with crm.unit_of_work() as uow:
        now = uow.get_many("opportunity", [d.id for d in deals])
        assert [(d.stage, d.version) for d in now] == [(d.stage, d.version) for d in sorted(deals, key=lambda d: d.id)]


def test_an_illegal_move_rolls_the_whole_batch_back_with_the_single_moves_message(crm_factory: Any) -> None:
    crm, deals = seeded(crm_factory)
    batch = [deals[3], deals[4], deals[0]]  # identification -> qualification is allowed, initiation -> qualification not
    expected = _refusal(crm, deals[4], "qualification")
    before = snapshot(crm)

    with crm.unit_of_work() as uow:
        with pytest.raises(TransitionError) as info:
            uow.move_many([uow.get("opportunity", d.id) for d in batch], "qualification")
        assert str(info.value) == expected == (
            f"opportunity {deals[4].id} cannot move from 'initiation' to 'qualification'; allowed targets: 'identification', 'lost'")
        uow.commit()  # the unit goes on, without anything of the batch
    assert snapshot(crm) == before


class Refuses:
    """Refuses, after the UPDATE, the move of the opportunity named 'Deal 6'."""

    PLUGIN = PluginInfo(name="refuses")

    @hookimpl
    def crm_after_move(self, moves: Any) -> None:
        for _, new, _, _ in moves:
            if new.name == "Deal 6":
                raise TransitionError(f"opportunity {new.id} may not move today")


def test_an_error_after_the_update_rolls_the_whole_batch_back(crm_factory: Any) -> None:
    crm, deals = seeded(crm_factory, plugins=[Refuses()])
    before = snapshot(crm)
    with crm.unit_of_work() as uow:
        with pytest.raises(TransitionError, match=f"opportunity {deals[6].id} may not move today"):
            uow.move_many(deals, "identification")
        uow.commit()
    assert snapshot(crm) == before


def test_a_failing_guard_and_missing_required_fields_refuse_the_batch_as_a_single_move_would(crm_factory: Any) -> None:
    pipelines = {"deals": {"entity": "opportunity", "stages": ["open", {"name": "signed", "kind": "won", "required": ["close_date"]}],
                           "transitions": [{"from": "open", "to": "signed", "guards": ["amount >= 1000"]}]}}
    crm = crm_factory(settings={"pipelines": pipelines})
    with crm.unit_of_work() as uow:
        deals = [uow.create("opportunity", name=f"D{n}", amount=f"{amount} EUR", close_date="2030-01-01", pipeline="deals")
                 for n, amount in enumerate(["5000", "6000", "10", "7000"])]
        undated = uow.create("opportunity", name="Undated", amount="9000 EUR", pipeline="deals")
        uow.commit()

    guard = _refusal(crm, deals[2], "signed")
    assert "guard 'amount >= 1000' failed (amount = 10.00 EUR)" in guard
    with crm.unit_of_work() as uow, pytest.raises(TransitionError) as info:
        uow.move_many(deals, "signed")
    assert str(info.value) == guard

    with crm.unit_of_work() as uow, pytest.raises(ValidationError) as single:
        uow.move(undated, "signed")
    with crm.unit_of_work() as uow, pytest.raises(ValidationError) as batch:
        uow.move_many([deals[0], undated, deals[1]], "signed")
    assert str(batch.value) == str(single.value) == f"opportunity: close_date: is required to enter stage 'signed' (opportunity {undated.id})"
    _unchanged(crm, deals)


def test_a_transition_permission_refuses_the_batch_as_a_single_move_would(crm_factory: Any) -> None:
    class Closing:
        PLUGIN = PluginInfo(name="closing")

        @hookimpl
        def crm_permissions(self) -> list[str]:
            return ["closing.opportunity.win"]

        @hookimpl
        def crm_extend_pipeline(self, pipeline: Any) -> None:
            if pipeline.name == "sales":
                pipeline.remove_transition("final_stage", "won")
                pipeline.add_transition("final_stage", "won", permission="closing.opportunity.win")

    security = {"profiles": {"rep": {"privileges": {"opportunity": "all"}}}, "roles": {"rep": {"profiles": ["rep"]}}}
    crm = crm_factory(plugins=[Closing()], settings={"security": security})
    with crm.unit_of_work() as uow:
        add_user(uow, "rep", roles=["rep"])
        uow.commit()
    with crm.unit_of_work("rep") as uow:
        deals = [uow.create("opportunity", name=f"D{n}", amount="10 EUR", close_date="2030-01-01") for n in range(3)]
        for stage in ("identification", "qualification", "rfp_received", "quotation_sent", "final_stage"):
            deals = uow.move_many(deals, stage)
        uow.commit()

    expected = _refusal(crm, deals[0], "won", "rep")
    assert "rep lacks permission 'closing.opportunity.win'" in expected
    with crm.unit_of_work("rep") as uow, pytest.raises(TransitionError) as info:
        uow.move_many(deals, "won")
    assert str(info.value) == expected


def test_a_pending_approval_holds_its_record_in_a_batch(crm_factory: Any) -> None:
    rule = {"name": "sign_off", "entity": "opportunity", "on": "stage_entered:identification", "when": "amount > 100000",
            "then": [{"action": "require_approval", "role": "director"}]}
    crm = crm_factory(settings={"rules": [rule], "security": {"roles": {"director": {}}}})
    with crm.unit_of_work() as uow:
        deals = [uow.create("opportunity", name=f"D{n}", amount=f"{amount} EUR") for n, amount in enumerate(["10", "200000", "20"])]
        deals = uow.move_many(deals, "identification")
        [approval] = approvals(uow)
        assert approval.record_id == deals[1].id
        uow.commit()

    expected = _refusal(crm, deals[1], "qualification")
    assert f"approval {approval.id} by role 'director' is pending" in expected
    with crm.unit_of_work() as uow, pytest.raises(TransitionError) as info:
        uow.move_many(deals, "qualification")
    assert str(info.value) == expected
    with crm.unit_of_work() as uow:
        assert [d.stage for d in uow.move_many([deals[0], deals[2]], "qualification")] == ["qualification"] * 2


def test_a_record_changed_since_it_was_read_is_a_conflict_and_one_deleted_is_not_found(crm_factory: Any) -> None:
    crm, deals = seeded(crm_factory, rules=[])
    with crm.unit_of_work() as uow:
        uow.update(deals[5], description="changed")
        uow.delete(deals[7])
        uow.commit()
    with crm.unit_of_work() as uow, pytest.raises(ConflictError, match=f"opportunity {deals[5].id} changed since version 1"):
        uow.move_many(deals[:7], "identification")
    with crm.unit_of_work() as uow, pytest.raises(NotFoundError, match=f"^opportunity {deals[7].id} not found$"):
        uow.move_many(deals[6:9], "identification")
    _unchanged(crm, deals[:5])


def test_tag_many_adds_the_missing_tags_and_audits_what_it_added(crm_factory: Any) -> None:
    crm, deals = seeded(crm_factory, rules=[])
    with crm.unit_of_work() as uow:
        uow.tag(deals[1], "gold")
        uow.tag_many(deals[:3], " gold ", "new", "gold")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [uow.tags(d) for d in deals[:4]] == [["gold", "new"], ["gold", "new"], ["gold", "new"], []]
        assert [e.changes for e in uow.history("opportunity", deals[1].id) if e.action == "tagged"] == [
            {"tags": (None, "gold")}, {"tags": (None, "new")}]
        assert [e.changes for e in uow.history("opportunity", deals[0].id) if e.action == "tagged"] == [{"tags": (None, "gold, new")}]
        assert uow.tag_counts("opportunity") == [("gold", 3), ("new", 3)]


def test_tag_many_refuses_a_missing_record_and_leaves_the_others_untagged(crm_factory: Any) -> None:
    crm, deals = seeded(crm_factory, rules=[])
    with crm.unit_of_work() as uow:
        uow.delete(deals[1])
        with pytest.raises(Exception, match=f"opportunity {deals[1].id} not found"):
            uow.tag_many(deals[:3], "gold")
        assert uow.tags(deals[0]) == []
        with pytest.raises(ValidationError, match="only ownable entity types"):
            uow.tag_many([uow.create("tag", name="x")], "gold")


CONDITIONS = [
    "amount > 60000", "amount <= 9000", "amount >= 75000 and amount < 150000", "amount < 5000 or amount > 150000",
    "not (amount > 60000)", "amount >= 1000 and amount <= 5000", "probability >= 20", "next_step = 'call'", "next_step != 'call'",
    "stage in ('identification', 'won')", "stage not in ('lost')", "next_step in ('call', 'visit')", "next_step not in ('call')", "account.industry = 'Banking'", "owner.username = 'ann'",
    "amount > 0 and description is null", "amount * 2 > 100000", "amount is null", "account.industry = 'Retail' or amount < 2000",
]


def test_each_condition_fires_for_the_same_records_in_a_batch_as_one_by_one(crm_factory: Any) -> None:
    rules = [{"name": f"c{n}", "entity": "opportunity", "on": "stage_entered:identification", "when": text,
              "then": [{"action": "add_tag", "tag": f"c{n}"}]} for n, text in enumerate(CONDITIONS)]
    apps = [seeded(crm_factory, rules=rules) for _ in range(2)]
    for crm, deals in apps:
        with crm.unit_of_work() as uow:
            uow.update(deals[2], next_step="call")
            uow.update(deals[5], description="shortlisted")
            uow.update(deals[7], amount=None)
            uow.commit()
    (one, deals), (many, _) = apps
    with one.unit_of_work() as uow:
        for deal in deals:
            uow.move(uow.get("opportunity", deal.id), "identification")
        uow.commit()
    with many.unit_of_work() as uow:
        uow.move_many(uow.get_many("opportunity", [d.id for d in deals]), "identification")
        uow.commit()

    expected = snapshot(one)["tags"]
    assert snapshot(many)["tags"] == expected
    fired = {tag for tags in expected.values() for tag in tags}
    assert len(fired) >= len(CONDITIONS) - 1  # nearly every condition holds for some deal (and not for all)
    assert all(len(tags) < len(CONDITIONS) for tags in expected.values())


def test_an_approved_approval_is_closed_by_the_batch_move_as_by_a_single_one(crm_factory: Any) -> None:
    from crmcore.workflow.approvals import approve

    rule = {"name": "sign_off", "entity": "opportunity", "on": "stage_entered:identification", "when": "amount > 100000",
            "then": [{"action": "require_approval", "role": "director"}]}
    crm = crm_factory(settings={"rules": [rule], "security": {"profiles": {"all": {"privileges": {"*": "all"}}},
                                                              "roles": {"director": {"profiles": ["all"]}}}})
    with crm.unit_of_work() as uow:
        add_user(uow, "boss", roles=["director"])
        deals = uow.move_many([uow.create("opportunity", name=f"D{n}", amount="200000 EUR") for n in range(3)], "identification")
        uow.commit()
    with crm.unit_of_work("boss") as uow:
        decided = [approve(uow, a.id) for a in approvals(uow)]
        uow.commit()

    with crm.unit_of_work() as uow:
        moved = uow.move_many(deals, "qualification")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [d.stage for d in moved] == ["qualification"] * 3
        assert all(uow.get("approval", a.id).closed_at is not None for a in decided)
        assert approvals(uow, status=None) == [uow.get("approval", a.id) for a in decided]


def test_field_access_holds_in_a_batch_as_in_a_single_move(crm_factory: Any) -> None:
    security = {
        "profiles": {
            "rep": {"privileges": {"opportunity": "all"}, "fields": {"opportunity": {"amount": "hidden"}}},
            "trainee": {"privileges": {"opportunity": "all"}, "fields": {"opportunity": {"stage": "read_only"}}},
        },
        "roles": {"rep": {"profiles": ["rep"]}, "trainee": {"profiles": ["trainee"]}},
        "entities": {"opportunity": {"sharing": "public_read_write"}},
    }
    crm = crm_factory(settings={"security": security})
    with crm.unit_of_work() as uow:
        add_user(uow, "rep", roles=["rep"])
        add_user(uow, "trainee", roles=["trainee"])
        deals = [uow.create("opportunity", name=f"D{n}", amount="500 EUR") for n in range(3)]
        uow.commit()

    with crm.unit_of_work("rep") as uow:
        mine = uow.get_many("opportunity", [d.id for d in deals])
        moved = uow.move_many(mine, "identification")
        assert [(d.stage, "amount" in d.values) for d in moved] == [("identification", False)] * 3
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [d.amount.amount for d in uow.get_many("opportunity", [d.id for d in deals])] == [500] * 3

    with crm.unit_of_work("trainee") as uow, pytest.raises(Exception) as single:
        uow.move("opportunity", deals[0].id, "qualification")
    with crm.unit_of_work("trainee") as uow, pytest.raises(type(single.value)) as batch:
        uow.move_many(uow.get_many("opportunity", [d.id for d in deals]), "qualification")
    assert str(batch.value) == str(single.value) and "stage" in str(single.value)


def test_a_stale_record_among_records_at_different_versions_is_named(crm_factory: Any) -> None:
    crm, deals = seeded(crm_factory, rules=[])
    with crm.unit_of_work() as uow:
        uow.update(deals[1], description="one")
        uow.update(uow.update(deals[2], description="one"), description="two")
        read = uow.get_many("opportunity", [d.id for d in deals[:3]])  # at versions 1, 2 and 3
        uow.commit()
    with crm.unit_of_work() as uow:
        uow.update(read[2], next_step="call")
        uow.commit()
    before = snapshot(crm)

    with crm.unit_of_work() as uow, pytest.raises(ConflictError, match=f"opportunity {deals[2].id} changed since version 3 was read "
                                                                       r"\(it is at version 4\)"):
        uow.move_many(read, "identification")
    assert snapshot(crm) == before
    with crm.unit_of_work() as uow:
        assert [d.version for d in uow.move_many(uow.get_many("opportunity", [d.id for d in read]), "identification")] == [2, 3, 5]


class Retyped:
    """Changes fields of several types on every opportunity a move changes, for one record or
    for a batch: money, a date, text beyond ASCII, a value cleared."""

    PLUGIN = PluginInfo(name="retyped")
    CHANGES = {"amount": "123.45 USD", "close_date": "2027-01-31", "next_step": "Café “Zürich” ☕\n\t\\ end", "account_id": None}

    @hookimpl
    def crm_before_update(self, entity: str, items: Any) -> Any:
        return [dict(self.CHANGES) if "stage" in changes else None for _, changes in items]


def test_a_batch_audits_every_kind_of_value_as_single_updates_do(crm_factory: Any) -> None:
    one, deals = seeded(crm_factory, plugins=[Retyped()], rules=[])
    many, _ = seeded(crm_factory, plugins=[Retyped()], rules=[])
    ids = [d.id for d in deals if d.id != deals[3].id]
    with one.unit_of_work() as uow:
        for record_id in ids:
            uow.move(uow.get("opportunity", record_id), "identification")
        uow.commit()
    with many.unit_of_work() as uow:
        before = {d.id: d for d in uow.get_many("opportunity", ids)}
        after = {d.id: d for d in uow.move_many(list(before.values()), "identification")}
        uow.commit()

    def entries(crm: Any) -> list[Any]:
        with crm.unit_of_work() as uow:
            return [uow.history("opportunity", record_id)[-1].changes for record_id in ids]

    batch = entries(many)
    assert [{k: v for k, v in e.items() if k != "stage_entered_at"} for e in batch] == [
        {k: v for k, v in e.items() if k != "stage_entered_at"} for e in entries(one)]
    first = batch[0]
    assert first["amount"][1] == {"amount": "123.45", "currency": "USD"}
    assert first["close_date"][1] == "2027-01-31"
    assert first["next_step"] == (None, Retyped.CHANGES["next_step"])
    assert first["account_id"][1] is None and first["account_id"][0] is not None
    assert [e["stage_entered_at"] for e in batch] == [
        (before[i].stage_entered_at.isoformat(), after[i].stage_entered_at.isoformat()) for i in ids]


def test_leaving_a_stage_in_a_batch_cancels_its_timed_jobs_as_single_moves_do(crm_factory: Any) -> None:
    one, deals = seeded(crm_factory)
    many, _ = seeded(crm_factory)
    ids = [d.id for d in deals]
    for crm in (one, many):
        with crm.unit_of_work() as uow:
            uow.move_many(uow.get_many("opportunity", ids), "identification")
            uow.commit()
    with one.unit_of_work() as uow:
        for record_id in ids[:6]:
            uow.move(uow.get("opportunity", record_id), "qualification")
        uow.commit()
    with many.unit_of_work() as uow:
        uow.move_many(uow.get_many("opportunity", ids[:6]), "qualification")
        uow.commit()

    expected = snapshot(one)["jobs"]
    assert snapshot(many)["jobs"] == expected
    timed = [(key, status) for kind, key, status, _ in expected if kind == "rules.timed"]
    assert sorted(status for _, status in timed) == ["cancelled"] * 6 + ["queued"] * (len(ids) - 6)
