"""The legal review phase, through the fixtures crmcore offers to plugin authors."""

from __future__ import annotations

from typing import Any

import pytest
from crmcore import ConfigError, TransitionError
from crmcore.testing import check_plugin

TO_QUOTATION = ("identification", "qualification", "rfp_received", "quotation_sent")


def quoted(crm: Any, amount: str | None) -> Any:
    with crm.unit_of_work() as uow:
        record = uow.create("opportunity", name="Deal", amount=amount)
        for stage in TO_QUOTATION:
            record = uow.move(record, stage)
        uow.commit()
    return record


def move(crm: Any, record: Any, stage: str) -> Any:
    with crm.unit_of_work() as uow:
        moved = uow.move("opportunity", record.id, stage)
        uow.commit()
    return moved


def test_plugin_conforms() -> None:
    check_plugin("legal_review")


def test_legal_review_sits_between_quotation_and_final_stage(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["legal_review"])
    sales = crm.workflow.pipelines["sales"]

    names = sales.stage_names
    assert names[names.index("quotation_sent") + 1] == "legal_review"
    assert names[names.index("legal_review") + 1] == "final_stage"
    assert sales.stage("legal_review").probability == 70
    assert set(sales.targets("legal_review")) == {"quotation_sent", "final_stage", "lost"}


def test_a_small_deal_may_skip_the_review(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["legal_review"])

    assert move(crm, quoted(crm, "100000"), "final_stage").stage == "final_stage"
    assert move(crm, quoted(crm, None), "final_stage").stage == "final_stage"


def test_a_large_deal_must_pass_the_review(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["legal_review"])
    record = quoted(crm, "100001")

    with pytest.raises(TransitionError) as info:
        move(crm, record, "final_stage")
    assert str(info.value) == (
        f"opportunity {record.id} cannot move from 'quotation_sent' to 'final_stage': guard "
        "'amount is null or amount <= 100000' failed (amount = 100001.00 USD)"
    )
    move(crm, record, "legal_review")
    assert move(crm, record, "final_stage").probability == 80


def test_the_threshold_comes_from_the_settings(crm_factory: Any) -> None:
    settings = {"plugins": {"legal_review": {"threshold": 500000}}}
    crm = crm_factory(plugins=["legal_review"], settings=settings)

    assert move(crm, quoted(crm, "400000"), "final_stage").stage == "final_stage"
    with pytest.raises(TransitionError, match="amount <= 500000"):
        move(crm, quoted(crm, "600000"), "final_stage")


def test_a_negative_threshold_stops_start_up(crm_factory: Any) -> None:
    with pytest.raises(ConfigError, match="threshold must be zero or more, got -1"):
        settings = {"plugins": {"legal_review": {"threshold": -1}}}
        crm_factory(plugins=["legal_review"], settings=settings, create_schema=False)


def test_without_the_plugin_the_pipeline_is_the_cores(crm_factory: Any) -> None:
    crm = crm_factory()

    assert "legal_review" not in crm.workflow.pipelines["sales"].stage_names
    assert move(crm, quoted(crm, "900000"), "final_stage").stage == "final_stage"
