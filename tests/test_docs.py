"""The documentation is checked against the code: the hook reference has one section per
hookspec, every hookspec docstring is complete, the entity reference is what the registry
generates, and the signal and settings references name what the code defines."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from crmcore import PluginInfo, Setting, create_app, docgen, hookimpl, hookspecs, signals
from crmcore.fields import FIELD_SPEC_KEYS, FIELD_TYPES
from crmcore.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def hookspec_functions() -> dict[str, Any]:
    """Every function of :mod:`crmcore.hookspecs` marked as a hook specification."""
    marker = f"{hookspecs.PROJECT}_spec"
    return {
        name: value
        for name, value in vars(hookspecs).items()
        if inspect.isfunction(value) and hasattr(value, marker)
    }


def hook_sections() -> dict[str, str]:
    """``{heading: body}`` of every ``## `` section of docs/hooks.md."""
    text = (DOCS / "hooks.md").read_text()
    sections: dict[str, str] = {}
    for chunk in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        heading, _, body = chunk.partition("\n")
        sections[heading.strip()] = body
    return sections


HOOKS = sorted(hookspec_functions())


def test_the_hookspecs_module_declares_hooks():
    assert "crm_entity_types" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_has_a_section_in_the_hook_reference(hook):
    sections = hook_sections()

    assert hook in sections, f"docs/hooks.md has no '## {hook}' section; add one (purpose, when called, arguments, returns, example)"


def test_every_section_of_the_hook_reference_names_a_hookspec():
    unknown = sorted(set(hook_sections()) - set(HOOKS))

    assert not unknown, f"docs/hooks.md has sections for hooks that do not exist: {unknown}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_section_documents_arguments_returns_and_an_example(hook):
    body = hook_sections().get(hook)
    if body is None:
        pytest.fail(f"docs/hooks.md has no '## {hook}' section")
    for label in ("**Purpose.**", "**When called.**", "**Arguments.**", "**Returns.**", "**Example.**"):
        assert label in body, f"section {hook} of docs/hooks.md lacks {label}"
    for argument in inspect.signature(hookspec_functions()[hook]).parameters:
        assert f"`{argument}`" in body, f"section {hook} of docs/hooks.md does not describe argument {argument!r}"
    assert f"def {hook}(" in body, f"section {hook} of docs/hooks.md has no example implementing the hook"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hookspec_docstring_is_complete(hook):
    function = hookspec_functions()[hook]
    doc = inspect.getdoc(function) or ""
    missing = [
        f":param {name}:" for name in inspect.signature(function).parameters if f":param {name}:" not in doc
    ]
    missing += [part for part in (":returns:", "Example::", ".. versionadded::") if part not in doc]

    assert doc, f"hookspec {hook} has no docstring"
    assert not missing, f"the docstring of hookspec {hook} lacks {', '.join(missing)}"


def test_the_entity_reference_is_what_docgen_generates():
    expected = docgen.entity_reference(docgen.core_registry())
    written = (DOCS / "entities.md").read_text()

    assert written == expected, f"docs/entities.md is out of date; regenerate it with `{docgen.COMMAND}`"


def test_docgen_prints_the_reference(capsys):
    assert docgen.main([]) == 0

    assert capsys.readouterr().out == (DOCS / "entities.md").read_text()


def test_docgen_documents_a_deployment_with_its_custom_fields(tmp_path, capsys):
    config = tmp_path / "crm.toml"
    config.write_text('[custom_fields.account]\nloyalty = { type = "choice", choices = ["bronze", "gold"], help = "Tier." }\n')

    assert docgen.main(["--config", str(config)]) == 0

    out = capsys.readouterr().out
    assert f"# Entity reference of {config}" in out
    assert "| `loyalty` | choice: one of 'bronze', 'gold' | no |  | Tier. (column `custom_loyalty`; from `settings`) |" in out


def test_docgen_reports_a_bad_config_in_one_line(tmp_path, capsys):
    assert docgen.main(["--config", str(tmp_path / "missing.toml")]) == 1

    err = capsys.readouterr().err
    assert err.startswith("error: settings file") and err.count("\n") == 1


def test_the_signal_reference_names_every_core_signal():
    text = (DOCS / "signals.md").read_text()
    names = [signals.CREATED, signals.UPDATED, signals.DELETED]

    for name in names:
        assert f"`{name}`" in text, f"docs/signals.md does not document signal {name!r}"
    for field in signals.RecordEvent.__attrs_attrs__:  # type: ignore[attr-defined]
        assert f"`{field.name}`" in text, f"docs/signals.md does not document RecordEvent.{field.name}"


def test_the_settings_reference_names_every_key():
    from crmcore.settings import _CRM_KEYS

    text = (DOCS / "settings.md").read_text()
    missing = [f"crm.{key}" for key in _CRM_KEYS if f"`{key}`" not in text]
    missing += [f"field key {key}" for key in FIELD_SPEC_KEYS if f"`{key}`" not in text]
    missing += [f"field type {kind}" for kind in FIELD_TYPES if f"`{kind}`" not in text]

    assert not missing, f"docs/settings.md does not document: {', '.join(missing)}"


@pytest.mark.parametrize("page", ["index.md", "plugin-guide.md", "hooks.md", "signals.md", "settings.md", "entities.md"])
def test_links_between_docs_pages_resolve(page):
    text = (DOCS / page).read_text()
    for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text):
        assert (DOCS / target).is_file(), f"docs/{page} links to {target}, which does not exist"


def test_crm_configure_receives_the_plugins_own_settings_table():
    seen: dict[str, Any] = {}

    @attrs.frozen
    class SlaHours:
        hours: int

    class Helpdesk:
        PLUGIN = PluginInfo(name="helpdesk", settings={"sla_hours": Setting(int, default=8)})

        @hookimpl
        def crm_configure(self, crm, settings):
            seen["settings"] = settings
            crm.set_state(SlaHours(settings["sla_hours"]))

    crm = create_app(Settings(database="sqlite://", plugin_settings={"helpdesk": {"sla_hours": 4}}), plugins=[Helpdesk()])

    assert seen["settings"] == {"sla_hours": 4}
    assert crm.state(SlaHours).hours == 4


def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README.read_text(), flags=re.MULTILINE | re.DOTALL)


def test_the_readme_gives_the_two_set_up_commands():
    commands = [block.strip() for block in readme_blocks("bash")]

    assert "python3 -m venv .venv && .venv/bin/pip install -e . -e plugins/sales && .venv/bin/crm demo" in commands
    assert "bash scripts/test" in commands
    assert (ROOT / "scripts" / "test").is_file()


def test_the_readme_embedding_example_runs(tmp_path):
    blocks = readme_blocks("python")
    assert len(blocks) == 1, "the README has one Python example"
    script = tmp_path / "example.py"
    script.write_text(blocks[0])

    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    assert "created account 1" in done.stdout
    assert "opportunity 1 updated ['next_step', 'probability']" in done.stdout
    assert (tmp_path / "example.db").is_file()


def test_the_readme_links_resolve():
    for target in re.findall(r"\]\((docs/[^)#]+)\)", README.read_text()):
        assert (ROOT / target).is_file(), f"README.md links to {target}, which does not exist"


def test_the_plugin_guide_has_the_migration_note_the_start_up_error_points_to():
    from crmcore.plugins import MIGRATION_NOTE, RECORD_HOOKS, RETIRED_HOOKS

    guide = (DOCS / "plugin-guide.md").read_text()
    note = guide.partition("### Migrating to batch-shaped record hooks\n")[2].partition("\n## ")[0]

    assert "Migrating to batch-shaped record hooks" in MIGRATION_NOTE and "docs/plugin-guide.md" in MIGRATION_NOTE
    assert note, "docs/plugin-guide.md lacks the section '### Migrating to batch-shaped record hooks'"
    missing = [hook for hook in [*RETIRED_HOOKS, *RECORD_HOOKS] if hook not in note]
    assert missing == [], f"the migration note does not name {missing}"
