"""``crm pipelines`` and ``crm pipelines show``, and the references they mirror: docs/pipelines.md
is what docgen makes of the core's pipelines, and the examples of docs/conditions.md parse."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from crmcore import create_app, docgen
from crmcore.settings import Settings
from crmcore.testing import run_crm
from crmcore.workflow.conditions import OPERATORS, parse

DOCS = Path(__file__).resolve().parent.parent / "docs"

RENEWALS = docgen.PIPELINE_EXAMPLE  # the example of docs/pipelines.md


@pytest.fixture
def workdir(crm_workdir: Path, crm_factory: Any) -> Path:
    """A folder holding a crm.toml with a second opportunity pipeline (nothing is read from
    the database: the pipelines come from the settings and plugins)."""
    url = crm_factory.database_url(file=True)
    (crm_workdir / "crm.toml").write_text(f'[crm]\ndatabase = "{url}"\n\n{RENEWALS}')
    return crm_workdir


def test_pipelines_lists_name_entity_stage_count_and_default(workdir: Path) -> None:
    result = run_crm("pipelines")

    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["NAME", "ENTITY", "STAGES", "DEFAULT", "LABEL", "ORIGIN"]
    assert rows[1:] == [
        ["lead", "lead", "4", "yes", "Leads", "core.workflow"],
        ["renewals", "opportunity", "4", "no", "Renewals", "settings"],
        ["sales", "opportunity", "8", "yes", "New", "business", "core.workflow"],
    ]


def test_pipelines_json_lists_the_same(workdir: Path) -> None:
    result = run_crm("pipelines", "--json")

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["name"], r["entity"], r["stages"], r["default"]) for r in rows] == [
        ("lead", "lead", 4, True), ("renewals", "opportunity", 4, False), ("sales", "opportunity", 8, True),
    ]


def test_pipelines_show_prints_stages_transitions_guards_and_fields(workdir: Path) -> None:
    result = run_crm("pipelines", "show", "renewals")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "renewals: Renewals (opportunity, stage in field 'stage', not the default, from settings)"
    assert [line.split() for line in lines[2:7]] == [
        ["STAGE", "PROBABILITY", "KIND", "REQUIRED", "LOCKED"],
        ["due", "40%", "open", "-", "-"],
        ["negotiation", "70%", "open", "amount", "-"],
        ["renewed", "100%", "won", "-", "amount"],
        ["churned", "0%", "lost", "-", "-"],
    ]
    assert lines[8:] == [
        "transitions:",
        "  due -> negotiation",
        "  negotiation -> renewed  [guard: amount >= 1000; guard: close_date is not null]",
        "  * -> churned  [permission: delete]",
    ]


def test_pipelines_show_json_gives_the_whole_pipeline(workdir: Path) -> None:
    result = run_crm("pipelines", "show", "renewals", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["name"], data["entity"], data["field"], data["default"]) == ("renewals", "opportunity", "stage", False)
    assert data["stages"][2] == {"name": "renewed", "label": "Renewed", "probability": 100, "kind": "won",
                                 "required": [], "locked": ["amount"], "on_enter": {}}
    assert data["transitions"][1:] == [
        {"from": "negotiation", "to": "renewed", "guards": ["amount >= 1000", "close_date is not null"], "permission": None},
        {"from": "*", "to": "churned", "guards": [], "permission": "delete"},
    ]


@pytest.mark.parametrize("args", [("show", "renewal"), ("show", "renewal", "--json")])
def test_an_unknown_pipeline_is_one_line_naming_the_known_ones(workdir: Path, args: tuple[str, ...]) -> None:
    result = run_crm("pipelines", *args)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "error: no pipeline 'renewal'; known pipelines: lead, renewals, sales\n"


# -- the references -------------------------------------------------------------------------------


def test_the_pipeline_reference_is_what_docgen_generates() -> None:
    expected = docgen.pipeline_reference(docgen.core_pipelines())
    written = (DOCS / "pipelines.md").read_text()

    assert written == expected, f"docs/pipelines.md is out of date; regenerate it with `{docgen.PIPELINES_COMMAND}`"


def test_the_pipeline_reference_shows_every_stage_and_transition_of_the_core() -> None:
    text = (DOCS / "pipelines.md").read_text()

    for pipeline in docgen.core_pipelines():
        assert f"### {pipeline.name}\n" in text
        for stage in pipeline.stages:
            assert f"| `{stage.name}` | {stage.label} | {stage.probability}% | {stage.kind} |" in text
        for transition in pipeline.transitions:
            assert f"| `{transition.source}` | `{transition.target}` |" in text


def test_docgen_prints_the_pipelines_of_a_deployment(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert docgen.main(["--pipelines", "--config", "crm.toml"]) == 0

    out = capsys.readouterr().out
    assert out.startswith("# Pipelines of crm.toml\n")
    assert "Renewals: a pipeline of `opportunity`, stage in field `stage`." in out
    assert "| `negotiation` | `renewed` | `amount >= 1000`; `close_date is not null` |  |" in out
    assert "| `*` | `churned` |  | `delete` |" in out


def _condition_examples() -> list[str]:
    text = (DOCS / "conditions.md").read_text()
    blocks = re.findall(r"^```condition\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_condition_reference_has_examples() -> None:
    assert len(_condition_examples()) >= 10


@pytest.mark.parametrize("example", _condition_examples())
def test_every_example_of_the_condition_reference_parses_and_checks(example: str) -> None:
    registry = create_app(Settings(database="sqlite://")).registry

    parse(example, where="docs/conditions.md").check(registry, registry.entity("opportunity"), where="docs/conditions.md")


def test_the_condition_reference_names_every_operator_and_form() -> None:
    text = (DOCS / "conditions.md").read_text()
    names = [*OPERATORS, "all", "any", "not", "and", "or", "today", "now", "true", "false", "null"]

    missing = [name for name in names if f"`{name}`" not in text and f"`x {name}" not in text]
    assert not missing, f"docs/conditions.md does not document {missing}"


@pytest.mark.parametrize("page", ["pipelines.md", "conditions.md", "index.md"])
def test_the_workflow_references_link_to_pages_that_exist(page: str) -> None:
    text = (DOCS / page).read_text()
    targets = re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text)

    assert targets
    for target in targets:
        assert (DOCS / target).is_file(), f"docs/{page} links to {target}, which does not exist"
    if page == "index.md":
        assert {"pipelines.md", "conditions.md"} <= set(targets)
