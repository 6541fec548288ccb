"""The plugin conformance check: a plugin that follows the rules passes, and each broken rule is
reported with a message naming the problem."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

import crmcore.conformance
import crmcore.plugins
from crmcore import testing
from crmcore.conformance import check_plugin, conformance_failures

INIT = """
from crmcore import PluginInfo

PLUGIN = PluginInfo(name={name!r}, title="Tickets", requires={requires!r})
"""

GOOD_PLUGIN = """
from crmcore import EntityType, Field, hookimpl
from crmcore.fields import (
    Boolean, Choice, Date, DateTime, Decimal, Email, Integer, Json, MoneyType, MultiChoice,
    Phone, Reference, String, Text, Url,
)


@hookimpl
def crm_entity_types():
    return [
        EntityType(
            "ticket",
            fields=(
                Field("subject", String(200), required=True),
                Field("body", Text()),
                Field("priority", Choice("low", "normal", "high"), default="normal"),
                Field("labels", MultiChoice("billing", "bug", "question")),
                Field("contact_id", Reference("contact", on_delete="set_null")),
                Field("budget", MoneyType()),
                Field("hours", Decimal(scale=1)),
                Field("reopened", Integer()),
                Field("urgent", Boolean()),
                Field("due_on", Date()),
                Field("answered_at", DateTime()),
                Field("reply_to", Email()),
                Field("callback", Phone()),
                Field("page", Url()),
                Field("payload", Json()),
            ),
            ownable=True,
        )
    ]


@hookimpl
def crm_entity_fields(entity_type):
    if entity_type == "account":
        return [Field("support_tier", Choice("basic", "premium"), default="basic")]


@hookimpl
def crm_before_create(entity, items):
    if entity == "ticket":
        return [None if values.get("body") else {"body": "(empty)"} for values in items]
"""


def write_plugin(
    root: Path,
    plugin_py: str,
    *,
    name: str = "tickets",
    requires: tuple[str, ...] = (),
    readme: bool = True,
    init: str | None = None,
) -> str:
    """Write a plugin package under *root* and return its unique package name."""
    package = f"crm_conf_{uuid.uuid4().hex[:8]}"
    folder = root / package
    folder.mkdir()
    (folder / "__init__.py").write_text(
        textwrap.dedent(init if init is not None else INIT.format(name=name, requires=requires))
    )
    (folder / "plugin.py").write_text(textwrap.dedent(plugin_py))
    if readme:
        (folder / "README.md").write_text("# Tickets\n\nAdds tickets.\n")
    return package


@pytest.fixture
def plugin_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for module in set(sys.modules) - before:
        if module.startswith("crm_conf_"):
            del sys.modules[module]


def load(package: str) -> Any:
    return importlib.import_module(f"{package}.plugin")


def failures(name: str, **kwargs: Any) -> list[str]:
    return conformance_failures(name, **kwargs).failures


@pytest.fixture
def database(crm_database_url: str) -> str:
    """The database under test, skipped (or failed in CI) when PostgreSQL is not reachable."""
    testing._check_reachable(crm_database_url)
    return crm_database_url


def test_a_plugin_that_follows_the_rules_passes(plugin_root, database):
    plugin = load(write_plugin(plugin_root, GOOD_PLUGIN))

    check_plugin("tickets", plugins=[plugin], database=database)


def test_the_testing_module_offers_the_same_check(plugin_root):
    plugin = load(write_plugin(plugin_root, GOOD_PLUGIN))

    testing.check_plugin("tickets", plugins=[plugin])


def test_an_installed_plugin_is_found_through_its_entry_point(plugin_root, monkeypatch):
    package = write_plugin(plugin_root, GOOD_PLUGIN)
    entry = importlib.metadata.EntryPoint(name="tickets", value=f"{package}.plugin", group="crmcore.plugins")
    monkeypatch.setattr(crmcore.conformance, "installed_plugins", lambda: {"tickets": entry})
    monkeypatch.setattr(crmcore.plugins, "installed_plugins", lambda: {"tickets": entry})

    check_plugin("tickets")


def test_an_entry_point_name_that_differs_from_the_plugin_info_name_fails(plugin_root, monkeypatch):
    package = write_plugin(plugin_root, GOOD_PLUGIN, name="ticketing")
    entry = importlib.metadata.EntryPoint(name="tickets", value=f"{package}.plugin", group="crmcore.plugins")
    monkeypatch.setattr(crmcore.conformance, "installed_plugins", lambda: {"tickets": entry})
    monkeypatch.setattr(crmcore.plugins, "installed_plugins", lambda: {"tickets": entry})

    found = failures("tickets")

    assert any("PluginInfo name 'ticketing' does not match the entry point 'tickets'" in f for f in found), found


def test_a_plugin_neither_installed_nor_given_fails():
    with pytest.raises(AssertionError, match="plugin 'no_such_plugin' is not installed"):
        check_plugin("no_such_plugin")


def test_a_plugin_without_plugin_info_fails(plugin_root):
    plugin = load(write_plugin(plugin_root, GOOD_PLUGIN, init='"""No PluginInfo here."""\n'))
    # without a PluginInfo the plugin is known by its module name
    found = failures(plugin.__name__, plugins=[plugin])

    assert any("declares no PluginInfo" in f for f in found), found


def test_a_table_without_the_plugin_prefix_fails(plugin_root):
    source = GOOD_PLUGIN.replace('"ticket",\n            fields=', '"ticket",\n            table="ticket",\n            fields=')
    plugin = load(write_plugin(plugin_root, source))

    with pytest.raises(AssertionError) as raised:
        check_plugin("tickets", plugins=[plugin])

    assert "table 'ticket' of entity type 'ticket' does not start with 'tickets_'" in str(raised.value)


def test_a_column_added_to_another_table_without_the_prefix_fails(plugin_root):
    source = GOOD_PLUGIN.replace(
        'Field("support_tier", Choice("basic", "premium"), default="basic")',
        'Field("support_tier", Choice("basic", "premium"), column="tier")',
    )
    plugin = load(write_plugin(plugin_root, source))

    found = failures("tickets", plugins=[plugin])

    assert any("column 'tier' that plugin 'tickets' adds to 'crm_account'" in f for f in found), found


def test_a_misspelt_hookimpl_fails_and_suggests_the_hook(plugin_root):
    source = GOOD_PLUGIN.replace("def crm_entity_types():", "def crm_entity_type():")
    plugin = load(write_plugin(plugin_root, source))

    with pytest.raises(AssertionError) as raised:
        check_plugin("tickets", plugins=[plugin])

    message = str(raised.value)
    assert "hookimpl crm_entity_type of plugin 'tickets' matches no hook specification" in message
    assert "did you mean 'crm_entity_types'?" in message


def test_a_hookimpl_asking_for_an_argument_the_spec_lacks_fails(plugin_root):
    source = GOOD_PLUGIN.replace("def crm_before_create(entity, items):", "def crm_before_create(entity, items, ticket):")
    plugin = load(write_plugin(plugin_root, source))

    found = failures("tickets", plugins=[plugin])

    assert any("crm_before_create of plugin 'tickets' asks for 'ticket'" in f for f in found), found


def test_a_missing_requirement_fails(plugin_root):
    plugin = load(write_plugin(plugin_root, GOOD_PLUGIN, requires=("helpdesk_missing",)))

    with pytest.raises(AssertionError) as raised:
        check_plugin("tickets", plugins=[plugin])

    assert "plugin 'tickets' requires 'helpdesk_missing', which is not installed" in str(raised.value)


def test_a_requirement_given_as_an_object_is_found(plugin_root):
    base = load(write_plugin(plugin_root, "", name="ticket_base"))
    plugin = load(write_plugin(plugin_root, GOOD_PLUGIN, requires=("ticket_base",)))

    check_plugin("tickets", plugins=[base, plugin])


def test_a_missing_readme_fails(plugin_root):
    plugin = load(write_plugin(plugin_root, GOOD_PLUGIN, readme=False))

    found = failures("tickets", plugins=[plugin])

    assert any("plugin 'tickets' has no README.md" in f for f in found), found


def test_a_declared_permission_without_the_plugin_prefix_fails(plugin_root):
    source = GOOD_PLUGIN + textwrap.dedent(
        """
        @hookimpl
        def crm_permissions():
            return ["tickets.ticket.close", "ticket.escalate"]
        """
    )
    plugin = load(write_plugin(plugin_root, source))

    found = failures("tickets", plugins=[plugin])

    assert found == ["permission 'ticket.escalate' of plugin 'tickets' does not start with 'tickets.'"]


def test_a_permission_of_a_hook_the_plugin_offers_is_checked_too(plugin_root):
    source = GOOD_PLUGIN + textwrap.dedent(
        """
        import pluggy

        spec = pluggy.HookspecMarker("crmcore")


        class Specs:
            @spec
            def tickets_permissions():
                '''Permissions the tickets plugin declares.'''


        @hookimpl
        def crm_add_hookspecs(plugin_manager):
            plugin_manager.add_hookspecs(Specs)


        @hookimpl
        def tickets_permissions():
            return ["tickets.ticket.close", "ticket.reopen"]
        """
    )
    plugin = load(write_plugin(plugin_root, source))

    found = failures("tickets", plugins=[plugin])

    assert found == ["permission 'ticket.reopen' of plugin 'tickets' does not start with 'tickets.'"]


def test_a_schema_that_does_not_round_trip_fails(plugin_root):
    source = GOOD_PLUGIN + textwrap.dedent(
        """
        import attrs


        @attrs.frozen
        class Shouting(String):
            def dump(self, value):
                return None if value is None else value.upper()


        @hookimpl
        def crm_entity_fields(entity_type):
            if entity_type == "contact":
                return [Field("nickname", Shouting(50))]
        """
    ).replace("def crm_entity_fields(entity_type):\n    if entity_type == \"account\"", "def _unused(entity_type):\n    if entity_type == \"account\"", 1)
    plugin = load(write_plugin(plugin_root, source))

    found = failures("tickets", plugins=[plugin])

    assert len(found) == 1, found
    assert "the schema of 'contact' does not round-trip field 'nickname'" in found[0]


def test_a_plugin_extending_an_entity_with_rules_on_its_optional_fields_passes(plugin_root):
    # the core's activity refuses a sample of its optional participants field; the check fills
    # only the fields the plugin adds to another's entity (and the required ones)
    source = GOOD_PLUGIN.replace('if entity_type == "account":', 'if entity_type == "activity":')
    plugin = load(write_plugin(plugin_root, source))

    assert failures("tickets", plugins=[plugin]) == []


def test_a_plugin_extending_an_entity_that_wants_some_optional_fields_passes(plugin_root):
    # the core's opportunity line wants a product text or a description, both optional fields:
    # the check then tries again with samples for the owner's optional fields too
    source = GOOD_PLUGIN.replace('if entity_type == "account":', 'if entity_type == "opportunity_line":')
    plugin = load(write_plugin(plugin_root, source))

    assert failures("tickets", plugins=[plugin]) == []


def test_a_field_type_gives_its_own_sample_values():
    import attrs

    from crmcore.fields import Decimal, Field

    @attrs.frozen
    class Small(Decimal):
        def sample(self, n):
            return n % 3

    values = {testing.sample_value(Field("level", Small())) for _ in range(10)}
    assert values == {0, 1, 2}


def test_every_problem_is_listed_at_once(plugin_root):
    source = GOOD_PLUGIN.replace("def crm_before_create(entity, items):", "def crm_before_creat(entity, items):")
    plugin = load(write_plugin(plugin_root, source, requires=("nowhere",), readme=False))

    with pytest.raises(AssertionError) as raised:
        check_plugin("tickets", plugins=[plugin])

    message = str(raised.value)
    assert message.startswith("plugin 'tickets' does not conform (4 problem(s)):")
    assert "requires 'nowhere'" in message
    assert "crm_before_creat" in message
    assert "the remaining checks need an app with the plugin" in message
    assert "has no README.md" in message


def test_integer_samples_stay_within_the_fields_bounds_however_many_were_made():
    from crmcore.fields import Field, Integer

    bounded = Field("early_days", Integer(minimum=0, maximum=60))
    above = Field("seats", Integer(minimum=5))
    for _ in range(200):
        assert 0 <= testing.sample_value(bounded) <= 60
        assert testing.sample_value(above) >= 5
