"""Traps of pipelines: a transition declared twice, guards added to someone else's transition,
and records that enter a stage without moving there (created in it, imported into it, or
changing pipeline into it) must pass what entering the stage requires."""

from __future__ import annotations

from typing import Any

import pytest

from crmcore import ConfigError, PluginInfo, TransitionError, ValidationError, hookimpl
from crmcore.transfer import import_rows
from crmcore.workflow.pipelines import (
    PipelineBuilder,
    Stage,
    default_transitions,
    pipeline_from_settings,
)

STAGES = [Stage("open"), Stage("review"), Stage("won", kind="won"), Stage("lost", kind="lost")]


def builder() -> PipelineBuilder:
    return PipelineBuilder("deals", "opportunity", list(STAGES), default_transitions(STAGES))


class Extend:
    """A phase plugin calling *change* with the ``sales`` pipeline's builder."""

    def __init__(self, name: str, change: Any) -> None:
        self.PLUGIN = PluginInfo(name=name)
        self.change = change

    @hookimpl
    def crm_extend_pipeline(self, pipeline: PipelineBuilder) -> None:
        if pipeline.name == "sales":
            self.change(pipeline)


def won_needs_big_amount(pipeline: PipelineBuilder) -> None:
    pipeline.add_guard("final_stage", "won", "amount >= 1000")


# -- one transition per source and target ----------------------------------------------------------


def test_adding_a_transition_twice_is_an_error_naming_it_and_add_guard():
    pipeline = builder()

    with pytest.raises(ConfigError) as caught:
        pipeline.add_transition("open", "review", guards=["amount > 0"])

    message = str(caught.value)
    assert message.startswith("pipeline 'deals' transition open -> review exists already;")
    assert "add_guard('open', 'review', guard)" in message
    assert "remove_transition('open', 'review')" in message
    assert [str(t) for t in pipeline.transitions].count("open -> review") == 1


def test_the_duplicate_error_shows_the_guards_the_transition_has():
    pipeline = builder()
    pipeline.add_transition("open", "won", guards=["amount > 0"])

    with pytest.raises(ConfigError, match=r"transition open -> won exists already \(guards: 'amount > 0'\)"):
        pipeline.add_transition("open", "won")


def test_a_removed_transition_can_be_added_again_with_other_guards():
    pipeline = builder()
    pipeline.remove_transition("review", "won")
    pipeline.add_transition("review", "won", guards=["amount > 10"])

    [transition] = [t for t in pipeline.freeze().transitions if str(t) == "review -> won"]
    assert [str(g) for g in transition.guards] == ["amount > 10"]


def test_add_guard_adds_to_the_guards_the_transition_has():
    pipeline = builder()
    pipeline.remove_transition("review", "won")
    pipeline.add_transition("review", "won", guards=["amount > 10"])

    pipeline.add_guard("review", "won", "close_date is not null")

    [transition] = [t for t in pipeline.freeze().transitions if str(t) == "review -> won"]
    assert [str(g) for g in transition.guards] == ["amount > 10", "close_date is not null"]


def test_add_guard_without_the_transition_lists_the_transitions_into_the_target():
    pipeline = builder()

    with pytest.raises(ConfigError) as caught:
        pipeline.add_guard("open", "won", "amount > 0")

    assert str(caught.value) == (
        "pipeline 'deals' transition open -> won: no such transition to guard; transitions into 'won': "
        "review -> won; add it with add_transition('open', 'won', guards=[...])"
    )


def test_add_guard_names_a_wildcard_transition_by_its_star():
    pipeline = builder()
    pipeline.remove_transition("open", "lost")
    pipeline.remove_transition("review", "lost")
    pipeline.add_transition("*", "lost")

    with pytest.raises(ConfigError, match=r"transitions into 'lost': \* -> lost;"):
        pipeline.add_guard("open", "lost", "amount > 0")
    pipeline.add_guard("*", "lost", "amount > 0")
    [transition] = pipeline.freeze().transitions_into("lost")
    assert [str(g) for g in transition.guards] == ["amount > 0"]


def test_a_pipeline_of_the_settings_declaring_a_transition_twice_is_refused():
    table = {
        "entity": "opportunity",
        "stages": ["due", "renewed"],
        "transitions": [{"from": "due", "to": "renewed"}, {"from": "due", "to": "renewed", "guards": ["amount > 0"]}],
    }

    with pytest.raises(ConfigError, match=r"pipeline 'renewals' declares transition due -> renewed twice; declare it once"):
        pipeline_from_settings("renewals", table)


def test_two_plugins_adding_the_same_transition_stop_start_up(crm_factory):
    def shortcut(pipeline: PipelineBuilder) -> None:
        pipeline.add_transition("qualification", "final_stage")

    with pytest.raises(ConfigError, match=r"pipeline 'sales' transition qualification -> final_stage exists already"):
        crm_factory(plugins=[Extend("one", shortcut), Extend("two", shortcut)])


def test_a_plugin_guards_a_transition_the_core_declared(crm_factory):
    crm = crm_factory(plugins=[Extend("big_wins", won_needs_big_amount)])
    with crm.unit_of_work() as uow:
        deal = uow.create("opportunity", name="Deal", stage="final_stage", amount="10 EUR", close_date="2026-12-01")

        with pytest.raises(TransitionError, match=r"guard 'amount >= 1000' failed \(amount = 10.00 EUR\)"):
            uow.move(deal, "won")
        deal = uow.update(deal, amount="5000 EUR")
        assert uow.move(deal, "won").stage == "won"


# -- entering a stage without moving there -------------------------------------------------------


def test_a_new_record_in_a_later_stage_needs_the_stages_required_fields(crm):
    with crm.unit_of_work() as uow, pytest.raises(ValidationError) as caught:
        uow.create("opportunity", name="Deal", stage="won", amount="10 EUR")

    assert caught.value.messages == {"close_date": ["is required to enter stage 'won' (a new opportunity)"]}


def test_a_new_record_in_a_later_stage_passes_the_guards_of_a_transition_into_it(crm_factory):
    crm = crm_factory(plugins=[Extend("big_wins", won_needs_big_amount)])
    with crm.unit_of_work() as uow:
        with pytest.raises(ValidationError) as caught:
            uow.create("opportunity", name="Small", stage="won", amount="10 EUR", close_date="2026-12-01")
        assert uow.query("opportunity").count() == 0
        big = uow.create("opportunity", name="Big", stage="won", amount="5000 EUR", close_date="2026-12-01")

    assert caught.value.messages == {"stage": [
        "a new opportunity cannot start in stage 'won': no transition into it admits it "
        "(final_stage -> won: guard 'amount >= 1000' failed (amount = 10.00 EUR))"
    ]}
    assert (big.stage, big.probability) == ("won", 100)


def test_one_admitting_transition_into_the_stage_is_enough(crm_factory):
    pipelines = {"deals": {
        "entity": "opportunity",
        "stages": ["start", "small", "big", {"name": "done", "kind": "won"}],
        "transitions": [
            {"from": "start", "to": "small"}, {"from": "start", "to": "big"},
            {"from": "small", "to": "done", "guards": ["amount < 100"]},
            {"from": "big", "to": "done", "guards": ["amount >= 10000"]},
        ],
    }}
    crm = crm_factory(settings={"pipelines": pipelines})
    with crm.unit_of_work() as uow:
        assert uow.create("opportunity", name="A", pipeline="deals", stage="done", amount="50 EUR").stage == "done"
        assert uow.create("opportunity", name="B", pipeline="deals", stage="done", amount="20000 EUR").stage == "done"
        with pytest.raises(ValidationError) as caught:
            uow.create("opportunity", name="C", pipeline="deals", stage="done", amount="500 EUR")

    [message] = caught.value.messages["stage"]
    assert "small -> done: guard 'amount < 100' failed (amount = 500.00 EUR)" in message
    assert "big -> done: guard 'amount >= 10000' failed (amount = 500.00 EUR)" in message


def test_a_stage_no_transition_leads_into_cannot_be_started_in(crm_factory):
    pipelines = {"intake": {
        "entity": "opportunity",
        "stages": ["new", "parked", "open"],
        "transitions": [{"from": "new", "to": "open"}, {"from": "parked", "to": "open"}],
    }}
    crm = crm_factory(settings={"pipelines": pipelines})
    with crm.unit_of_work() as uow, pytest.raises(ValidationError) as caught:
        uow.create("opportunity", name="A", pipeline="intake", stage="parked")

    assert caught.value.messages == {"stage": [
        "a new opportunity cannot start in stage 'parked': no transition leads into it; start in 'new' and move the record"
    ]}


def test_the_first_stage_ignores_the_guards_of_moves_back_into_it(crm_factory):
    def guard_going_back(pipeline: PipelineBuilder) -> None:
        pipeline.add_guard("identification", "initiation", "amount is not null")

    crm = crm_factory(plugins=[Extend("back", guard_going_back)])
    with crm.unit_of_work() as uow:
        assert uow.create("opportunity", name="A", stage="initiation").stage == "initiation"


def test_a_guard_reading_a_referenced_record_holds_for_a_new_record(crm_factory):
    def banks_only(pipeline: PipelineBuilder) -> None:
        pipeline.add_guard("final_stage", "won", "account.industry = 'Banking'")

    crm = crm_factory(plugins=[Extend("banks", banks_only)])
    with crm.unit_of_work() as uow:
        bank = uow.create("account", name="Bank", industry="Banking")
        shop = uow.create("account", name="Shop", industry="Retail")
        won = {"stage": "won", "amount": "10 EUR", "close_date": "2026-12-01"}

        assert uow.create("opportunity", name="A", account_id=bank.id, **won).stage == "won"
        with pytest.raises(ValidationError, match=r"guard \"account.industry = 'Banking'\" failed \(account.industry = 'Retail'\)"):
            uow.create("opportunity", name="B", account_id=shop.id, **won)


def test_an_import_rejects_the_rows_no_transition_admits_into_their_stage(crm_factory):
    crm = crm_factory(plugins=[Extend("big_wins", won_needs_big_amount)])
    rows = [
        {"name": "Small", "stage": "won", "amount": "10 EUR", "close_date": "2026-12-01"},
        {"name": "Big", "stage": "won", "amount": "5000 EUR", "close_date": "2026-12-01"},
        {"name": "Early", "stage": "qualification", "amount": "10 EUR"},
    ]
    with crm.unit_of_work() as uow:
        report = import_rows(uow, "opportunity", rows, skip_invalid=True)
        uow.commit()

    assert (report.created, report.invalid) == (2, 1)
    [error] = report.errors
    assert (error.row, error.field) == (1, "stage")
    assert "guard 'amount >= 1000' failed (amount = 10.00 EUR)" in error.message
    with crm.unit_of_work() as uow:
        assert sorted(r.name for r in uow.query("opportunity")) == ["Big", "Early"]


def test_changing_pipeline_into_a_guarded_stage_passes_a_transition_into_it(crm_factory):
    pipelines = {"renewals": {
        "entity": "opportunity",
        "stages": ["due", "negotiation", {"name": "renewed", "kind": "won"}],
        "transitions": [
            {"from": "due", "to": "negotiation"},
            {"from": "negotiation", "to": "renewed", "guards": ["amount >= 1000"]},
        ],
    }}
    crm = crm_factory(settings={"pipelines": pipelines})
    with crm.unit_of_work() as uow:
        deal = uow.create("opportunity", name="Deal", amount="10 EUR")

        with pytest.raises(TransitionError) as caught:
            uow.update(deal, pipeline="renewals", stage="renewed")
        assert uow.update(deal, pipeline="renewals", stage="negotiation").stage == "negotiation"

    assert str(caught.value) == (
        f"opportunity {deal.id} cannot change pipeline to 'renewals' in stage 'renewed': no transition into it "
        "admits it (negotiation -> renewed: guard 'amount >= 1000' failed (amount = 10.00 EUR))"
    )
