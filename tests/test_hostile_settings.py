"""Hostile settings and plugin declarations: numbers out of bounds or not finite, settings
reaching conditions as bound values, and hooks returning the wrong type."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from crmcore import ConfigError, PluginError, PluginInfo, hookimpl
from crmcore.plugins import Setting
from crmcore.workflow.conditions import ConditionError, parse


class Tuned:
    PLUGIN = PluginInfo(name="tuned", settings={
        "window_days": Setting(int, default=7),
        "ratio": Setting(float, default=0.5),
        "bounded_days": Setting(int, default=30, minimum=1, maximum=3650),
    })


@pytest.mark.parametrize(("key", "value", "message"), [
    ("window_days", 99_999_999_999_999_999, "must be from -1,000,000,000 to 1,000,000,000, got 99999999999999999"),
    ("ratio", float("nan"), "must be a finite number, got nan"),
    ("ratio", float("inf"), "must be a finite number, got inf"),
    ("ratio", float("-inf"), "must be a finite number, got -inf"),
    ("bounded_days", 0, "must be from 1 to 3650, got 0"),
    ("bounded_days", 3651, "must be from 1 to 3650, got 3651"),
])
def test_plugin_settings_out_of_bounds_stop_start_up_naming_the_key(crm_factory: Any, key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"plugins\.tuned\.{key} {message}") as caught:
        crm_factory(plugins=[Tuned()], settings={"plugins": {"tuned": {key: value}}})
    assert caught.value.key == f"plugins.tuned.{key}"


def test_plugin_settings_within_bounds_are_kept(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[Tuned()], settings={"plugins": {"tuned": {"window_days": 90, "ratio": 0.25, "bounded_days": 3650}}})
    assert crm.plugin_settings["tuned"] == {"window_days": 90, "ratio": 0.25, "bounded_days": 3650}


def test_a_setting_reaches_a_condition_as_a_bound_value_never_as_text() -> None:
    hostile = "x' or name != 'x"
    condition = parse("name = :wanted", params={"wanted": hostile})
    assert condition.evaluate({"name": hostile}).result
    assert not condition.evaluate({"name": "other"}).result

    window = parse("now - resolved_at <= :days", params={"days": 7.5})
    now = dt.datetime.now(dt.UTC)
    assert window.evaluate({"resolved_at": now - dt.timedelta(days=7)}).result
    assert not window.evaluate({"resolved_at": now - dt.timedelta(days=8)}).result


@pytest.mark.parametrize(("params", "message"), [
    ({}, "no value given for parameter :days; given: none"),
    ({"days": float("nan")}, "parameter :days: nan is not a number"),
    ({"days": 10**50}, "parameter :days: the number 1000000000000000000000000000000000000000000000000"),
    ({"days": [1, 2]}, "parameter :days must be text, a number, a date or an amount"),
])
def test_bad_bound_values_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConditionError, match=rf"^guard.*{message}"):
        parse("now - resolved_at <= :days", params=params, where="guard")


def test_a_bound_text_compared_with_a_number_stops_start_up(crm_factory: Any) -> None:
    when = parse("amount > :limit", params={"limit": "50000 or 1 = 1"}, where="rule 'bound' when")
    rule = {"name": "bound", "entity": "opportunity", "on": "created", "when": when, "then": [{"action": "add_tag", "tag": "x"}]}

    class Rules:
        PLUGIN = PluginInfo(name="bound_rules")

        @hookimpl
        def crm_rules(self) -> list[Any]:
            from crmcore.workflow.rules import Rule

            return [Rule(rule["name"], rule["entity"], on=rule["on"], when=rule["when"], then=rule["then"])]

    with pytest.raises(ConfigError, match=r"cannot compare amount \(money\) with '50000 or 1 = 1' \(text\)"):
        crm_factory(plugins=[Rules()])


@pytest.mark.parametrize(("hook", "returned", "expected"), [
    ("crm_entity_fields", "loyalty", "expected a list of crmcore.fields.Field objects"),
    ("crm_entity_fields", ["loyalty"], "a list holding 'loyalty'; expected a list of crmcore.fields.Field objects"),
    ("crm_entity_types", {"name": "thing"}, "expected a list of crmcore.registry.EntityType objects"),
    ("crm_rules", "rule", "expected a list of crmcore.workflow.rules.Rule objects"),
    ("crm_rule_actions", 42, "expected a list of crmcore.workflow.actions.Action objects"),
])
def test_a_hook_returning_the_wrong_type_is_a_plugin_error(crm_factory: Any, hook: str, returned: Any, expected: str) -> None:
    def implementation(*args: Any) -> Any:
        return returned

    plugin = type("Wrong", (), {"PLUGIN": PluginInfo(name="wrong"), hook: staticmethod(hookimpl(specname=hook)(implementation))})
    with pytest.raises(PluginError, match=rf"hook '{hook}' in plugin 'wrong' returned .*{expected}") as caught:
        crm_factory(plugins=[plugin()])
    assert (caught.value.plugin, caught.value.hook) == ("wrong", hook)
