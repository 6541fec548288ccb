"""The plugin manager: discovery, requirements and their order, misspelt hooks, and the hook
dispatcher that turns a plugin's stray exception into a PluginError naming plugin and hook."""

from __future__ import annotations

import types

import pytest

from crmcore import (
    ConflictError,
    EntityType,
    Field,
    PluginError,
    PluginInfo,
    ValidationError,
    create_app,
    hookimpl,
)
from crmcore.fields import Choice, String
from crmcore.plugins import installed_plugins


class FakeEntryPoint:
    """Stands in for an installed plugin's entry point."""

    def __init__(self, name, obj, version="1.2.3"):
        self.name = name
        self._obj = obj
        self.dist = types.SimpleNamespace(version=version)

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def plugin(name, *, requires=(), **hooks):
    """A plugin object named *name* whose hooks are the given functions (without ``self``)."""
    namespace = {"PLUGIN": PluginInfo(name=name, requires=requires)}
    for hook_name, function in hooks.items():
        namespace[hook_name] = hookimpl(staticmethod(function))
    return type(f"Plugin_{name}", (), namespace)()


@pytest.fixture
def installed(monkeypatch):
    """``installed(a=obj, b=obj)`` makes those the installed plugins."""

    def install(**objects):
        entry_points = {name: FakeEntryPoint(name, obj) for name, obj in objects.items()}
        monkeypatch.setattr("crmcore.plugins.installed_plugins", lambda: entry_points)

    return install


def enabled(app):
    return [name for name, loaded in app.plugins.plugins.items() if not loaded.builtin]


# -- discovery and requirements -------------------------------------------------------------------


def test_installed_plugins_are_read_from_the_entry_point_group():
    assert all(ep.group == "crmcore.plugins" for ep in installed_plugins().values())


def test_enabled_installed_plugin_is_registered_with_its_version(crm_factory, installed):
    installed(helpdesk=plugin("helpdesk"))
    app = crm_factory(["helpdesk"])
    assert enabled(app) == ["helpdesk"]
    assert app.plugins.plugins["helpdesk"].info.version == "1.2.3"


def test_installed_but_not_enabled_plugin_is_not_registered(crm_factory, installed):
    installed(helpdesk=plugin("helpdesk"), warranty=plugin("warranty"))
    app = crm_factory(["helpdesk"])
    assert enabled(app) == ["helpdesk"]


def test_unknown_plugin_lists_the_installed_ones(crm_factory, installed):
    installed(helpdesk=plugin("helpdesk"), warranty=plugin("warranty"))
    with pytest.raises(PluginError) as info:
        crm_factory(["helpdsk"])
    assert str(info.value) == "unknown plugin 'helpdsk' in [crm] plugins; installed plugins: helpdesk, warranty"
    assert info.value.plugin == "helpdsk"


def test_unknown_plugin_with_none_installed_says_none(crm_factory, installed):
    installed()
    with pytest.raises(PluginError, match=r"unknown plugin 'helpdesk' in \[crm\] plugins; installed plugins: none"):
        crm_factory(["helpdesk"])


def test_required_plugin_is_enabled_with_the_one_needing_it(crm_factory, installed):
    installed(helpdesk=plugin("helpdesk"), warranty=plugin("warranty", requires=("helpdesk",)))
    app = crm_factory(["warranty"])
    assert enabled(app) == ["helpdesk", "warranty"]


def test_plugins_are_ordered_by_their_requirements(crm_factory, installed):
    installed(
        a=plugin("a", requires=("b", "c")),
        b=plugin("b", requires=("c",)),
        c=plugin("c"),
    )
    app = crm_factory(["a", "b", "c"])
    assert enabled(app) == ["c", "b", "a"]


def test_missing_requirement_names_plugin_requirement_and_installed(crm_factory, installed):
    installed(warranty=plugin("warranty", requires=("helpdesk",)))
    with pytest.raises(PluginError) as info:
        crm_factory(["warranty"])
    assert str(info.value) == (
        "plugin 'warranty' requires 'helpdesk', which is not installed; installed plugins: warranty"
    )
    assert info.value.plugin == "warranty"


def test_requirement_cycle_is_named(crm_factory, installed):
    installed(
        a=plugin("a", requires=("b",)),
        b=plugin("b", requires=("c",)),
        c=plugin("c", requires=("a",)),
    )
    with pytest.raises(PluginError, match=r"plugins require each other in a cycle: a -> b -> c -> a"):
        crm_factory(["a"])


def test_plugin_requiring_itself_is_a_cycle(crm_factory, installed):
    installed(a=plugin("a", requires=("a",)))
    with pytest.raises(PluginError, match=r"cycle: a -> a"):
        crm_factory(["a"])


def test_plugin_may_require_a_builtin(crm_factory, installed):
    installed(helpdesk=plugin("helpdesk", requires=("core",)))
    assert enabled(crm_factory(["helpdesk"])) == ["helpdesk"]


def test_plugin_failing_to_import_is_named(crm_factory, installed):
    installed(broken=ModuleNotFoundError("No module named 'crm_broken'"))
    with pytest.raises(PluginError, match=r"plugin 'broken' failed to import: ModuleNotFoundError: No module named 'crm_broken'"):
        crm_factory(["broken"])


def test_plugin_whose_plugin_attribute_is_not_plugin_info_is_refused(crm_factory, installed):
    installed(odd=types.SimpleNamespace(PLUGIN={"name": "odd"}))
    with pytest.raises(PluginError, match=r"plugin 'odd': PLUGIN must be a crmcore.PluginInfo"):
        crm_factory(["odd"])


def test_entry_point_name_is_the_plugin_name(crm_factory, installed):
    installed(helpdesk=plugin("desk"))
    assert enabled(crm_factory(["helpdesk"])) == ["helpdesk"]


def test_misspelt_hook_is_named_with_the_plugin(crm_factory):
    typo = plugin("typo", crm_before_creat=lambda entity, items: None)
    with pytest.raises(PluginError) as info:
        crm_factory([typo])
    message = str(info.value)
    assert "'crm_before_creat'" in message
    assert "'typo'" in message
    assert "did you mean 'crm_before_create'" in message
    assert info.value.plugin == "typo"


def test_hook_asking_for_an_argument_the_spec_lacks_is_named(crm_factory):
    odd = plugin("odd", crm_before_create=lambda entity, lead: None)
    with pytest.raises(PluginError, match=r"plugin 'odd'.*crm_before_create.*lead"):
        crm_factory([odd])


def refused(crm_factory, hook: str, function: types.FunctionType) -> PluginError:
    """The error that stops an app with a plugin ``old`` implementing *hook* as *function*."""
    with pytest.raises(PluginError) as info:
        crm_factory([plugin("old", **{hook: function})])
    return info.value


@pytest.mark.parametrize(("hook", "function", "replacement"), [
    ("crm_before_update_many", lambda entity, items: None, "crm_before_update(uow, entity, items: list[tuple[Record, dict]])"),
    ("crm_after_update_many", lambda entity, items: None, "crm_after_update(uow, entity, items: list[tuple[Record, Record, dict]])"),
    ("crm_before_move_many", lambda entity, moves: None, "crm_before_move(uow, entity, moves: list[tuple[Record, Transition, Mapping]])"),
    ("crm_record_moved", lambda new, target: None, "crm_after_move(uow, entity, moves:"),
    ("crm_records_moved", lambda entity, moves: None, "crm_after_move(uow, entity, moves:"),
])
def test_a_retired_record_hook_is_refused_with_its_replacement(crm_factory, hook, function, replacement):
    error = refused(crm_factory, hook, function)
    message = str(error)
    assert f"plugin 'old' implements {hook!r}, which is gone" in message
    assert replacement in message
    assert "Migrating to batch-shaped record hooks" in message
    assert (error.plugin, error.hook) == ("old", hook)


@pytest.mark.parametrize(("hook", "function", "former"), [
    ("crm_before_create", lambda entity, values: None, "values"),
    ("crm_after_create", lambda uow, record: None, "record"),
    ("crm_before_update", lambda record, changes: None, "changes, record"),
    ("crm_after_update", lambda uow, old, new, changes: None, "changes, new, old"),
    ("crm_before_delete", lambda record: None, "record"),
    ("crm_after_delete", lambda uow, record: None, "record"),
    ("crm_before_move", lambda record, transition: None, "record, transition"),
])
def test_a_record_hook_with_its_former_per_record_signature_is_refused(crm_factory, hook, function, former):
    message = str(refused(crm_factory, hook, function))
    assert f"plugin 'old' implements {hook!r} with the former per-record argument(s) {former}" in message
    assert f"the hook is batch-shaped now: {hook}(uow, entity, " in message
    assert "docs/plugin-guide.md" in message


def test_hooks_offered_by_a_plugin_may_be_implemented_by_another(crm_factory):
    specs = types.ModuleType("helpdesk_specs")
    exec_spec = __import__("crmcore.hookspecs", fromlist=["hookspec"]).hookspec

    def helpdesk_escalate(ticket):
        """Escalate a ticket."""

    specs.helpdesk_escalate = exec_spec(helpdesk_escalate)
    offering = plugin("helpdesk", crm_add_hookspecs=lambda plugin_manager: plugin_manager.add_hookspecs(specs))
    calls = []
    implementing = plugin("sla", requires=("helpdesk",), helpdesk_escalate=lambda ticket: calls.append(ticket))
    app = crm_factory([offering, implementing])
    app.hook.helpdesk_escalate(ticket=42)
    assert calls == [42]


# -- the hook dispatcher --------------------------------------------------------------------------


def _failing(entity, items):
    if entity == "contact":
        raise KeyError("roles")


def test_plugin_raising_in_a_hook_is_named_with_plugin_and_hook(crm_factory):
    app = crm_factory([plugin("nosy", crm_before_create=_failing)])
    with app.unit_of_work() as uow, pytest.raises(PluginError) as info:
        uow.create("contact", last_name="Lovelace")
    assert str(info.value) == "hook 'crm_before_create' in plugin 'nosy' raised KeyError: 'roles'"
    assert (info.value.plugin, info.value.hook) == ("nosy", "crm_before_create")
    assert isinstance(info.value.__cause__, KeyError)


def test_plugin_raising_in_a_hook_rolls_the_whole_unit_back(crm_factory):
    app = crm_factory([plugin("nosy", crm_before_create=_failing)])
    with pytest.raises(PluginError), app.unit_of_work() as uow:
        uow.create("account", name="Acme")
        uow.create("contact", last_name="Lovelace")
        uow.commit()
    with app.unit_of_work() as uow:
        assert uow.all("account") == [] and uow.all("contact") == []


def test_plugin_raising_after_the_insert_rolls_the_whole_unit_back(crm_factory):
    def after(records):
        raise RuntimeError("disk full")

    app = crm_factory([plugin("nosy", crm_after_create=after)])
    with pytest.raises(PluginError, match=r"hook 'crm_after_create' in plugin 'nosy' raised RuntimeError: disk full"):
        with app.unit_of_work() as uow:
            uow.create("account", name="Acme")
            uow.commit()
    with app.unit_of_work() as uow:
        assert uow.all("account") == []


def test_plugin_raising_before_commit_rolls_back_and_sends_no_signal(crm_factory, captured_signals):
    def before_commit(uow):
        if any(change.entity == "account" for change in uow.changes):
            raise ValueError("nope")

    app = crm_factory([plugin("nosy", crm_before_commit=before_commit)])
    with captured_signals("record-created") as sent:
        with pytest.raises(PluginError, match="hook 'crm_before_commit' in plugin 'nosy'"):
            with app.unit_of_work() as uow:
                uow.create("account", name="Acme")
                uow.commit()
    assert sent == []
    with app.unit_of_work() as uow:
        assert uow.all("account") == []


def test_crm_error_raised_in_a_hook_passes_through_unchanged(crm_factory):
    veto = ValidationError({"name": ["the house account cannot be renamed"]}, entity="account")

    def before_update(items):
        raise veto

    app = crm_factory([plugin("guard", crm_before_update=before_update)])
    with app.unit_of_work() as uow:
        account = uow.create("account", name="House")
        with pytest.raises(ValidationError) as info:
            uow.update(account, name="Other")
    assert info.value is veto


def test_conflict_error_raised_in_a_hook_keeps_its_type(crm_factory):
    def before_delete(entity, records):
        raise ConflictError("busy", entity=entity, id=records[0].id)

    app = crm_factory([plugin("guard", crm_before_delete=before_delete)])
    with app.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        with pytest.raises(ConflictError, match="busy"):
            uow.delete(account)


def test_plugin_raising_while_declaring_entities_is_named(crm_factory):
    def entity_types():
        raise AttributeError("no fields")

    with pytest.raises(PluginError, match=r"hook 'crm_entity_types' in plugin 'broken' raised AttributeError: no fields"):
        crm_factory([plugin("broken", crm_entity_types=entity_types)])


def test_plugin_raising_while_configuring_is_named(crm_factory):
    def configure(crm):
        raise LookupError("missing key")

    with pytest.raises(PluginError, match=r"hook 'crm_configure' in plugin 'broken' raised LookupError"):
        crm_factory([plugin("broken", crm_configure=configure)])


# -- merging hook results -----------------------------------------------------------------------


def test_changes_returned_by_before_create_are_applied(crm_factory):
    def default_source(entity, items):
        if entity == "lead":
            return [None if values.get("source") else {"source": "web"} for values in items]
        return None

    app = crm_factory([plugin("intake", crm_before_create=default_source)])
    with app.unit_of_work() as uow:
        lead = uow.create("lead", last_name="Lovelace")
        uow.commit()
    with app.unit_of_work() as uow:
        assert uow.get("lead", lead.id).source == "web"
    assert lead.source == "web"


def test_changes_from_several_plugins_are_merged_and_the_dependent_one_wins(crm_factory):
    first = plugin("first", crm_before_create=lambda entity, items: [{"source": "web", "score": 1}] * len(items))
    second = plugin("second", requires=("first",), crm_before_create=lambda entity, items: [{"score": 2}] * len(items))
    app = crm_factory([second, first])
    with app.unit_of_work() as uow:
        lead = uow.create("lead", last_name="Lovelace")
    assert (lead.source, lead.score) == ("web", 2)


def test_changes_returned_by_a_hook_are_validated(crm_factory):
    bad = plugin("bad", crm_before_create=lambda entity, items: [{"score": "lots"}] * len(items) if entity == "lead" else None)
    app = crm_factory([bad])
    with app.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("lead", last_name="Lovelace")
    assert info.value.messages == {"score": ["expected a whole number, got 'lots'"]}


def test_changes_returned_by_before_update_are_applied_and_audited(crm_factory):
    def stamp(entity, items):
        if entity == "lead":
            return [{"description": f"title set to {changes['title']}"} if "title" in changes else None for _, changes in items]
        return None

    app = crm_factory([plugin("stamp", crm_before_update=stamp)])
    with app.unit_of_work() as uow:
        lead = uow.create("lead", last_name="Lovelace")
        lead = uow.update(lead, title="CTO")
        uow.commit()
    assert lead.description == "title set to CTO"
    with app.unit_of_work() as uow:
        assert uow.history("lead", lead.id)[-1].changes == {
            "title": (None, "CTO"), "description": (None, "title set to CTO"),
        }


def test_plugin_entity_and_field_extension_are_usable(crm_factory):
    kit = plugin(
        "kit",
        crm_entity_types=lambda: [EntityType("gadget", fields=(Field("name", String(40), required=True),))],
        crm_entity_fields=lambda entity_type: [Field("tier", Choice("basic", "gold"))] if entity_type == "account" else None,
    )
    app = crm_factory([kit])
    with app.unit_of_work() as uow:
        gadget = uow.create("gadget", name="Widget")
        account = uow.create("account", name="Acme", tier="gold")
        uow.commit()
    assert (gadget.name, account.tier) == ("Widget", "gold")


def test_every_app_registers_the_builtins_first(crm):
    builtins = [name for name, loaded in crm.plugins.plugins.items() if loaded.builtin]
    assert builtins[0] == "core"
    assert list(crm.plugins.plugins)[: len(builtins)] == builtins


def test_plugin_objects_need_no_installation(crm_factory, installed):
    installed()
    app = crm_factory([plugin("inline")])
    assert "inline" in app.plugins.plugins


def test_create_app_without_a_database_opens_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = create_app(plugins=[plugin("inline")])
    try:
        assert not (tmp_path / "crm.db").exists()
    finally:
        app.close()
