"""Pipelines and moves: transitions, guards, permissions, required and locked fields, several
pipelines per entity, phase plugins, bulk moves and the move signal."""

from __future__ import annotations

import pytest

from crmcore import ConfigError, PluginInfo, TransitionError, ValidationError, hookimpl
from crmcore.security import admin
from crmcore.workflow.pipelines import Stage

RENEWALS = {
    "renewals": {
        "entity": "opportunity",
        "label": "Renewals",
        "stages": [
            {"name": "due", "probability": 40},
            {"name": "negotiation", "probability": 70, "required": ["amount"]},
            {"name": "renewed", "kind": "won", "probability": 100, "locked": ["amount"]},
            {"name": "churned", "kind": "lost"},
        ],
        "transitions": [
            {"from": "due", "to": "negotiation"},
            {"from": "negotiation", "to": "renewed", "guards": ["amount >= 1000"]},
            {"from": "*", "to": "churned"},
        ],
    }
}


@pytest.fixture
def deal(crm):
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        opportunity = uow.create("opportunity", name="Big", account_id=account.id, amount="60000 EUR")
        uow.commit()
    return opportunity


def _walk(uow, record, *stages):
    for stage in stages:
        record = uow.move(record, stage)
    return record


def test_a_new_opportunity_starts_at_the_first_stage_of_the_default_pipeline(crm, deal):
    assert (deal.pipeline, deal.stage, deal.probability) == ("sales", "initiation", 10)
    assert deal.stage_entered_at is not None


def test_a_move_sets_the_stage_its_time_and_probability(crm, deal):
    with crm.unit_of_work() as uow:
        moved = uow.move(deal, "identification")
        assert (moved.stage, moved.probability) == ("identification", 20)
        assert moved.stage_entered_at >= deal.stage_entered_at
        assert uow.history("opportunity", deal.id)[-1].changes["stage"] == ("initiation", "identification")


def test_an_explicit_probability_overrides_the_stages(crm, deal):
    with crm.unit_of_work() as uow:
        assert uow.move(deal, "identification", probability=35).probability == 35


def test_an_illegal_move_names_record_stage_target_and_allowed_targets(crm, deal):
    with crm.unit_of_work() as uow, pytest.raises(TransitionError) as info:
        uow.move(deal, "won")
    assert str(info.value) == (
        f"opportunity {deal.id} cannot move from 'initiation' to 'won'; allowed targets: 'identification', 'lost'"
    )


def test_changing_the_stage_through_update_is_a_move_too(crm, deal):
    with crm.unit_of_work() as uow, pytest.raises(TransitionError, match="cannot move from 'initiation' to 'final_stage'"):
        uow.update(deal, stage="final_stage")


def test_an_unknown_stage_lists_the_pipelines_stages(crm, deal):
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="unknown stage 'closing' of pipeline 'sales'"):
        uow.move(deal, "closing")


def test_entering_a_stage_requires_its_fields(crm, deal):
    with crm.unit_of_work() as uow:
        record = _walk(uow, deal, "identification", "qualification", "rfp_received", "quotation_sent", "final_stage")
        with pytest.raises(ValidationError, match="close_date: is required to enter stage 'won'"):
            uow.move(record, "won")
        won = uow.move(record, "won", close_date="2026-12-01")
        assert (won.stage, won.probability) == ("won", 100)


def test_fields_locked_in_a_stage_cannot_change(crm, deal):
    with crm.unit_of_work() as uow:
        record = _walk(uow, deal, "identification", "qualification", "rfp_received", "quotation_sent", "final_stage")
        won = uow.move(record, "won", close_date="2026-12-01")
        with pytest.raises(ValidationError, match="amount: is locked while opportunity .* is in stage 'won'"):
            uow.update(won, amount="1 EUR")
        assert uow.update(won, description="Signed").description == "Signed"


def test_a_final_stage_offers_no_targets(crm, deal):
    with crm.unit_of_work() as uow:
        lost = uow.move(deal, "lost")
        with pytest.raises(TransitionError, match="allowed targets: none"):
            uow.move(lost, "initiation")


def test_several_pipelines_per_entity_from_settings(crm_factory):
    crm = crm_factory(settings={"pipelines": RENEWALS})
    with crm.unit_of_work() as uow:
        renewal = uow.create("opportunity", name="Renewal", pipeline="renewals")
        assert (renewal.stage, renewal.probability) == ("due", 40)
        with pytest.raises(ValidationError, match="amount: is required to enter stage 'negotiation'"):
            uow.move(renewal, "negotiation")
        negotiating = uow.move(renewal, "negotiation", amount="500 EUR")
        with pytest.raises(TransitionError) as info:
            uow.move(negotiating, "renewed")
        assert str(info.value) == (
            f"opportunity {renewal.id} cannot move from 'negotiation' to 'renewed': "
            "guard 'amount >= 1000' failed (amount = 500.00 EUR)"
        )
        renewed = uow.move(uow.update(negotiating, amount="1500 EUR"), "renewed")
        assert renewed.stage == "renewed"
        other = uow.create("opportunity", name="Churn", pipeline="renewals")
        assert uow.move(other, "churned").stage == "churned"
        new_business = uow.create("opportunity", name="New")
        assert new_business.pipeline == "sales"
        with pytest.raises(ValidationError, match="unknown pipeline 'nope' for opportunity; known: sales, renewals"):
            uow.create("opportunity", name="X", pipeline="nope")


def test_moving_to_another_pipeline_needs_a_stage_of_it(crm_factory):
    crm = crm_factory(settings={"pipelines": RENEWALS})
    with crm.unit_of_work() as uow:
        deal = uow.create("opportunity", name="Big")
        with pytest.raises(TransitionError, match="give its stage too"):
            uow.update(deal, pipeline="renewals")
        assert uow.update(deal, pipeline="renewals", stage="due").stage == "due"


class LegalReview:
    PLUGIN = PluginInfo(name="legal")

    @hookimpl
    def crm_extend_pipeline(self, pipeline):
        if pipeline.name == "sales":
            pipeline.insert_stage(Stage("legal_review", probability=70), after="quotation_sent")
            pipeline.add_transition("quotation_sent", "final_stage", guards=["amount <= 100000"])


def test_a_phase_plugin_inserts_a_stage_and_guards_the_shortcut(crm_factory):
    crm = crm_factory(plugins=[LegalReview()])
    stages = crm.workflow.pipelines["sales"].stage_names
    assert stages[stages.index("quotation_sent") + 1] == "legal_review"
    with crm.unit_of_work() as uow:
        small = _walk(uow, uow.create("opportunity", name="Small", amount="5000 EUR"),
                      "identification", "qualification", "rfp_received", "quotation_sent")
        assert uow.move(small, "final_stage").stage == "final_stage"
        big = _walk(uow, uow.create("opportunity", name="Big", amount="500000 EUR"),
                    "identification", "qualification", "rfp_received", "quotation_sent")
        with pytest.raises(TransitionError, match=r"guard 'amount <= 100000' failed \(amount = 500000.00 EUR\)"):
            uow.move(big, "final_stage")
        assert _walk(uow, big, "legal_review", "final_stage").stage == "final_stage"


class Closing:
    """Winning a sales deal needs the permission ``closing.opportunity.win``."""

    PLUGIN = PluginInfo(name="closing")

    @hookimpl
    def crm_permissions(self):
        return ["closing.opportunity.win"]

    @hookimpl
    def crm_extend_pipeline(self, pipeline):
        if pipeline.name == "sales":
            pipeline.remove_transition("final_stage", "won")
            pipeline.add_transition("final_stage", "won", permission="closing.opportunity.win")


@pytest.fixture
def closing(crm_factory):
    """An app with :class:`Closing`, a boss who may win deals and a rep who may not."""
    security = {
        "profiles": {
            "rep": {"privileges": {"opportunity": "all"}},
            "boss": {"privileges": {"opportunity": ["all", "closing.opportunity.win"]}},
        },
        "roles": {"boss": {"profiles": ["boss"]}, "rep": {"parent": "boss", "profiles": ["rep"]}},
    }
    crm = crm_factory(plugins=[Closing()], security=security)
    with crm.unit_of_work() as uow:
        admin.add_user(uow, "rep", roles=["rep"])
        admin.add_user(uow, "boss", roles=["boss"])
        uow.commit()
    return crm


def test_a_transition_can_require_a_permission(closing):
    crm = closing
    with crm.unit_of_work("rep") as uow:
        deal = _walk(uow, uow.create("opportunity", name="Deal", amount="10 EUR", close_date="2026-12-01"),
                     "identification", "qualification", "rfp_received", "quotation_sent", "final_stage")
        uow.commit()
    with crm.unit_of_work("rep") as uow, pytest.raises(TransitionError, match="rep lacks permission 'closing.opportunity.win'"):
        uow.move("opportunity", deal.id, "won")
    with crm.unit_of_work("boss") as uow:
        assert uow.move("opportunity", deal.id, "won").stage == "won"


def test_a_new_record_in_a_stage_needs_the_permission_of_a_transition_into_it(closing):
    won = {"name": "Deal", "stage": "won", "amount": "10 EUR", "close_date": "2026-12-01"}

    with closing.unit_of_work("rep") as uow, pytest.raises(ValidationError) as caught:
        uow.create("opportunity", **won)
    with closing.unit_of_work("boss") as uow:
        assert uow.create("opportunity", **won).stage == "won"

    assert caught.value.messages["stage"] == [
        "a new opportunity cannot start in stage 'won': no transition into it admits it "
        "(final_stage -> won: rep lacks permission 'closing.opportunity.win')"
    ]


def test_a_plugin_can_veto_a_move_before_it_happens(crm_factory):
    class NeedsContact:
        PLUGIN = PluginInfo(name="needs_contact")

        @hookimpl
        def crm_before_move(self, moves):
            for record, transition, values in moves:
                if transition.target == "lost" and not values.get("description"):
                    raise TransitionError(f"opportunity {record.id} needs a reason (description) to be lost")

    crm = crm_factory(plugins=[NeedsContact()])
    with crm.unit_of_work() as uow:
        deal = uow.create("opportunity", name="Deal")
        with pytest.raises(TransitionError, match="needs a reason"):
            uow.move(deal, "lost")
        assert uow.move(deal, "lost", description="Budget cut").stage == "lost"


def test_moves_send_one_signal_each_after_commit(crm, deal, captured_signals):
    with captured_signals("record-moved") as sent:
        with crm.unit_of_work() as uow:
            _walk(uow, deal, "identification", "qualification")
            assert sent == []
            uow.commit()
    assert [(e.source, e.target, e.pipeline) for e in sent] == [
        ("initiation", "identification", "sales"), ("identification", "qualification", "sales"),
    ]


def test_move_many_moves_a_set_with_the_same_checks(crm):
    with crm.unit_of_work() as uow:
        deals = [uow.create("opportunity", name=f"Deal {i}") for i in range(30)]
        moved = uow.move_many(deals, "identification")
        assert [d.stage for d in moved] == ["identification"] * 30
        assert [d.version for d in moved] == [2] * 30
        assert all(d.probability == 20 for d in moved)
        with pytest.raises(TransitionError, match="cannot move from 'identification' to 'won'"):
            uow.move_many(moved, "won")
        uow.commit()
    with crm.unit_of_work() as uow:
        assert uow.query("opportunity").where(stage="identification").count() == 30
        assert uow.history("opportunity", deals[0].id)[-1].changes["stage"] == ("initiation", "identification")


def test_move_many_refuses_stale_records(crm):
    with crm.unit_of_work() as uow:
        deals = [uow.create("opportunity", name=f"Deal {i}") for i in range(3)]
        uow.update(deals[1], description="changed")
        from crmcore import ConflictError

        with pytest.raises(ConflictError, match="changed since version 1"):
            uow.move_many(deals, "identification")


def test_move_many_checks_update_access(crm_factory):
    security = {
        "profiles": {"rep": {"privileges": {"opportunity": "all"}}},
        "roles": {"rep": {"profiles": ["rep"]}},
        "entities": {"opportunity": {"sharing": "public_read"}},
    }
    crm = crm_factory(security=security)
    with crm.unit_of_work() as uow:
        ann = admin.add_user(uow, "ann", roles=["rep"])
        bob = admin.add_user(uow, "bob", roles=["rep"])
        mine = uow.create("opportunity", name="Mine", owner_id=ann.id)
        theirs = uow.create("opportunity", name="Theirs", owner_id=bob.id)
        uow.commit()
    from crmcore import PermissionDeniedError

    with crm.unit_of_work("ann") as uow:
        with pytest.raises(PermissionDeniedError, match=f"ann may not update opportunity {theirs.id}"):
            uow.move_many([mine, theirs], "identification")
        assert uow.move_many([mine], "identification")[0].stage == "identification"


@pytest.mark.parametrize(
    ("pipelines", "message"),
    [
        ({"p": {"entity": "widget", "stages": ["a"]}}, "unknown entity type 'widget'"),
        ({"p": {"entity": "opportunity", "stages": ["a", "b"], "transitions": [{"from": "a", "to": "c"}]}},
         "transition a -> c names unknown stage 'c'"),
        ({"p": {"entity": "opportunity", "stages": ["a", "b"], "transitions": [{"from": "a", "to": "b", "guards": ["amonut > 1"]}]}},
         "unknown field 'amonut'"),
        ({"p": {"entity": "opportunity", "stages": [{"name": "a", "required": ["budget"]}]}}, "unknown field 'budget'"),
        ({"p": {"entity": "opportunity", "stages": [{"name": "a", "kind": "closed"}]}}, "kind must be one of open, won, lost"),
        ({"p": {"entity": "opportunity", "stages": [{"name": "a", "probability": 120}]}}, "probability must be a whole number from 0 to 100"),
        ({"p": {"entity": "opportunity", "stages": ["a"], "colour": "red"}}, "unknown key pipelines.p.colour"),
        ({"p": {"entity": "opportunity", "field": "name", "stages": ["a"]}}, "keep their stage in different fields"),
    ],
)
def test_bad_pipelines_stop_start_up_naming_the_culprit(crm_factory, pipelines, message):
    with pytest.raises(ConfigError, match=message):
        crm_factory(settings={"pipelines": pipelines})


def test_leads_follow_the_lead_pipeline(crm):
    with crm.unit_of_work() as uow:
        lead = uow.create("lead", last_name="Lovelace")
        assert lead.status == "new"
        working = uow.move(lead, "working")
        assert working.status_entered_at is not None
        with pytest.raises(TransitionError, match="allowed targets: 'working'"):
            uow.move(uow.move(working, "disqualified"), "new")
