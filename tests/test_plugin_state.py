"""Plugins keep typed state on the app and are called through pluggy in plugin order: each
plugin's own settings reach its hooks as ``settings``, requirements are configured first, and
no module dispatches a hook implementation by hand."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from crmcore import CrmError, PluginError, PluginInfo, Setting, create_app, hookimpl

ROOT = Path(__file__).resolve().parents[1]


@attrs.frozen
class Limits:
    hours: int


def plugin(name, *, requires=(), settings=None, **hooks):
    namespace = {"PLUGIN": PluginInfo(name=name, requires=requires, settings=settings or {})}
    for hook_name, function in hooks.items():
        namespace[hook_name] = hookimpl(staticmethod(function))
    return type(f"Plugin_{name}", (), namespace)()


def test_a_plugin_keeps_its_state_by_type_and_finds_it_again():
    keeper = plugin("keeper", settings={"hours": Setting(int, default=8)},
                    crm_configure=lambda crm, settings: crm.set_state(Limits(settings["hours"])))
    crm = create_app({"crm": {"database": "sqlite://"}, "plugins": {"keeper": {"hours": 3}}}, plugins=[keeper])

    assert crm.state(Limits) == Limits(3)
    assert crm.find_state(Limits) == Limits(3)


def test_state_of_a_type_nobody_set_is_a_clear_error():
    crm = create_app({"crm": {"database": "sqlite://"}})

    assert crm.find_state(Limits) is None
    with pytest.raises(CrmError, match=r"holds no Limits: the plugin that keeps it is not enabled"):
        crm.state(Limits)


def test_a_state_type_is_set_once():
    first = plugin("first", crm_configure=lambda crm: crm.set_state(Limits(1)))
    second = plugin("second", crm_configure=lambda crm: crm.set_state(Limits(2)))

    with pytest.raises(PluginError, match=r"a .*Limits is already kept in this app"):
        create_app({"crm": {"database": "sqlite://"}}, plugins=[first, second])


def test_cached_state_is_made_once():
    crm = create_app({"crm": {"database": "sqlite://"}})
    made = []

    def make():
        made.append(1)
        return Limits(len(made))

    assert crm.cached_state(Limits, make) is crm.cached_state(Limits, make)
    assert made == [1]


def test_plugins_are_configured_after_the_plugins_they_require():
    order = []
    base = plugin("base", crm_configure=lambda crm: order.append("base"))
    addon = plugin("addon", requires=("base",), crm_configure=lambda crm: order.append("addon"))

    create_app({"crm": {"database": "sqlite://"}}, plugins=[addon, base])

    assert order == ["base", "addon"]


def test_each_plugin_gets_its_own_settings_in_every_hook_that_takes_them():
    seen = {}

    def rules_of(name):
        def crm_rules(settings):
            seen[("rules", name)] = dict(settings)
        return crm_rules

    def extend_of(name):
        def crm_extend_pipeline(pipeline, settings):
            seen[("extend", name)] = dict(settings)
        return crm_extend_pipeline

    one = plugin("one", settings={"level": Setting(int, default=1)}, crm_rules=rules_of("one"),
                 crm_extend_pipeline=extend_of("one"))
    two = plugin("two", settings={"flavour": Setting(str, default="plain")}, crm_rules=rules_of("two"),
                 crm_extend_pipeline=extend_of("two"))

    create_app({"crm": {"database": "sqlite://"}, "plugins": {"one": {"level": 5}}}, plugins=[one, two])

    assert seen[("rules", "one")] == seen[("extend", "one")] == {"level": 5}
    assert seen[("rules", "two")] == seen[("extend", "two")] == {"flavour": "plain"}


def test_results_are_attributed_to_the_plugin_that_returned_them():
    crm = create_app({"crm": {"database": "sqlite://"}}, plugins=[
        plugin("alpha", crm_permissions=lambda: ["alpha.thing.poke"]),
    ])

    parts = crm.plugins.call_each("crm_permissions")

    assert [(p.plugin, p.result) for p in parts if p.plugin == "alpha"] == [("alpha", ["alpha.thing.poke"])]


def test_shutdown_calls_every_plugin_and_reports_the_first_failure():
    called = []

    def broken(crm):
        called.append("broken")
        raise RuntimeError("disk gone")

    crm = create_app({"crm": {"database": "sqlite://"}}, plugins=[
        plugin("broken", crm_shutdown=broken),
        plugin("fine", crm_shutdown=lambda crm: called.append("fine")),
    ])

    with pytest.raises(PluginError, match=r"hook 'crm_shutdown' in plugin 'broken' raised RuntimeError: disk gone"):
        crm.close()
    assert called == ["broken", "fine"]


def test_no_module_dispatches_a_hook_implementation_by_hand():
    """Hooks are called through pluggy; only the plugin manager touches implementations."""
    allowed = {
        ROOT / "src/crmcore/plugins.py",  # the dispatcher: wraps every implementation once
    }
    offenders = []
    for folder in ("src", "plugins", "contrib", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path in allowed or "/tests/" in str(path):
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"\.function\b", line):  # calling an implementation past pluggy
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
