"""The phase plugin of examples/crm-legal-review, installed as a package: found through its entry
point, it changes the core's sales pipeline with a threshold from its settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmcore import TransitionError
from crmcore.cli import main
from crmcore.plugins import installed_plugins

pytestmark = pytest.mark.skipif("legal_review" not in installed_plugins(),
                                reason="examples/crm-legal-review is not installed (scripts/test installs it)")

PATH = ("identification", "qualification", "rfp_received", "quotation_sent")


def test_the_plugin_is_found_through_its_entry_point() -> None:
    assert installed_plugins()["legal_review"].value == "crm_legal_review.plugin"


def test_large_deals_pass_legal_review_and_rules_still_fire(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["legal_review"], settings={"plugins": {"legal_review": {"threshold": 200000}}})
    with crm.unit_of_work() as uow:
        record = uow.create("opportunity", name="Big", amount="250000")
        for stage in PATH:
            record = uow.move(record, stage)
        with pytest.raises(TransitionError, match=r"guard 'amount is null or amount <= 200000' failed \(amount = 250000"):
            uow.move(record, "final_stage")
        record = uow.move(uow.move(record, "legal_review"), "final_stage")
        uow.commit()

    assert record.stage == "final_stage"
    with crm.unit_of_work() as uow:
        assert [a.subject for a in uow.all("activity")] == ["Review with senior manager"]


def test_rules_may_wait_for_the_stage_the_plugin_adds(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["legal_review"], settings={"rules": [{
        "name": "tell_legal", "entity": "opportunity", "on": "stage_entered:legal_review",
        "then": [{"action": "add_tag", "tag": "legal"}]}]})

    [firing] = crm.rules.simulate("opportunity", {"amount": "300000"}, stage="legal_review")
    assert firing.rule == "tell_legal"


def test_without_the_plugin_a_rule_on_its_stage_stops_start_up(crm_factory: Any) -> None:
    from crmcore import ConfigError

    with pytest.raises(ConfigError, match="rule 'tell_legal' on 'stage_entered:legal_review': unknown stage 'legal_review'"):
        crm_factory(settings={"rules": [{"name": "tell_legal", "entity": "opportunity", "on": "stage_entered:legal_review",
                                         "then": [{"action": "add_tag", "tag": "legal"}]}]}, create_schema=False)


def test_crm_rules_check_sees_the_extended_pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crm.toml").write_text('[crm]\ndatabase = "sqlite://"\nplugins = ["legal_review"]\n')

    result = CliRunner().invoke(main, ["rules", "check", "--no-database"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert "2 pipeline(s) checked: lead, sales" in result.stdout
