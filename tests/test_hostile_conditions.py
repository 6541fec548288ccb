"""Hostile conditions and rules: deep nesting, huge and non-finite numbers, very long
conditions, date arithmetic past year 9999, and rules that cannot be evaluated."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

from crmcore import ConfigError, CrmError, PluginError, PluginInfo, hookimpl
from crmcore.fields import Field, String
from crmcore.jobs import run_worker
from crmcore.workflow.conditions import MAX_NESTING, ConditionError, parse
from crmcore.workflow.rules import Event, schedule_time

TAG = [{"action": "add_tag", "tag": "late"}]
DEEP = 5000


def rule(when: Any, on: str = "created", name: str = "hostile") -> dict[str, Any]:
    return {"name": name, "entity": "opportunity", "on": on, "when": when, "then": TAG}


def nested_not(depth: int) -> Any:
    spec: Any = "amount > 1"
    for _ in range(depth):
        spec = {"not": spec}
    return spec


@pytest.mark.parametrize("when", [
    "(" * DEEP + "amount > 1" + ")" * DEEP,
    "not " * DEEP + "amount > 1",
    "-" * DEEP + "amount > 1",
    " + ".join(["amount"] * DEEP) + " > 1",
    nested_not(DEEP),
    {"all": [nested_not(DEEP)]},
])
def test_deep_nesting_stops_start_up_naming_the_rule(crm_factory: Any, when: Any) -> None:
    with pytest.raises(ConfigError, match=rf"rule 'hostile' when.*nests more than {MAX_NESTING} levels deep"):
        crm_factory(settings={"rules": [rule(when)]})


def test_nesting_within_the_limit_still_parses_and_evaluates() -> None:
    depth = MAX_NESTING - 2
    condition = parse("(" * depth + "amount > 1" + ")" * depth)
    assert condition.evaluate({"amount": 2}).result
    assert not parse(nested_not(MAX_NESTING - 1)).evaluate({"amount": 2}).result  # an odd count of nots


@pytest.mark.parametrize(("when", "shown"), [
    ("amount > " + "9" * 60, "9" * 40),
    ("amount > 0." + "1" * 60, "0.1111"),
    (["amount", ">", float("nan")], "nan"),
    (["amount", ">", float("inf")], "inf"),
    (["amount", "in", [1, float("-inf")]], "-inf"),
    (["amount", ">", 10**40], "1" + "0" * 39),
])
def test_huge_and_non_finite_numbers_stop_start_up_naming_the_rule_and_value(crm_factory: Any, when: Any, shown: str) -> None:
    with pytest.raises(ConfigError, match="rule 'hostile' when") as caught:
        crm_factory(settings={"rules": [rule(when)]})
    assert shown in str(caught.value)


def test_a_condition_of_100000_clauses_parses() -> None:
    condition = parse(" and ".join(["amount > 1"] * 100_000))
    assert condition.evaluate({"amount": 2}).result
    assert len(condition.root.parts) == 100_000  # type: ignore[attr-defined]


def test_a_long_bad_condition_gives_a_short_message() -> None:
    with pytest.raises(ConditionError) as caught:
        parse(" and ".join(["amount > 1"] * 10_000) + " and %")
    assert "unexpected character '%'" in str(caught.value)
    assert len(str(caught.value)) < 500


@pytest.mark.parametrize(("text", "values", "expected"), [
    ("close_date + 30 > today", {"close_date": dt.date(9999, 12, 20)}, True),
    ("close_date + 30 < today", {"close_date": dt.date(9999, 12, 20)}, False),
    ("close_date + 30 - close_date = 30", {"close_date": dt.date(9999, 12, 20)}, True),
    ("close_date - 30 < today", {"close_date": dt.date(1, 1, 5)}, True),
    ("close_date + 1000000000000 > close_date + 999999999999", {"close_date": dt.date(2020, 1, 1)}, True),
    ("close_date - now < 0", {"close_date": dt.date(2000, 1, 1)}, True),
    ("-description < 0", {"description": "text"}, False),
])
def test_date_arithmetic_is_total(text: str, values: dict[str, Any], expected: bool) -> None:
    assert parse(text).evaluate(values).result is expected


def test_a_rule_on_a_date_near_9999_leaves_the_record_writable(crm_factory: Any) -> None:
    crm = crm_factory(settings={"rules": [
        rule("close_date + 30 > today", on="updated", name="far"),
        rule("stage != 'won'", on="date_reached:close_date:30", name="timed"),
    ]})
    with crm.unit_of_work() as uow:
        record = uow.create("opportunity", name="Deal", close_date="9999-12-20")
        record = uow.update("opportunity", record.id, description="still writable")
        uow.commit()
    assert record.close_date == dt.date(9999, 12, 20)
    with crm.unit_of_work() as uow:
        assert uow.tags(record) == ["late"]
        assert uow.query("job").where(kind="rules.timed").count() == 0  # due after the end of the calendar: never
    run_worker(crm, once=True)


def test_schedule_time_before_year_one_is_due_at_once() -> None:
    due = schedule_time(Event("date_reached", "close_date", -30), dt.date(1, 1, 5), dt.UTC)
    assert due == dt.datetime.min.replace(tzinfo=dt.UTC)
    assert schedule_time(Event("date_reached", "close_date", 30), dt.date(9999, 12, 20), dt.UTC) is None


class _Version:
    """A plugin's value that refuses to be compared with anything but another version."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __gt__(self, other: Any) -> bool:
        if not isinstance(other, _Version):
            raise ValueError(f"cannot compare version {self.text} with {other!r}")
        return self.text > other.text


class Versioned:
    PLUGIN = PluginInfo(name="versioned")

    @hookimpl
    def crm_entity_fields(self, entity_type: str) -> list[Field]:
        return [Field("release", _VersionType())] if entity_type == "opportunity" else []


@attrs.frozen
class _VersionType(String):
    def parse(self, value: Any) -> Any:
        return _Version(super().parse(value))

    def to_db(self, value: Any, column: str) -> dict[str, Any]:
        return {column: None if value is None else value.text}

    def from_db(self, row: Any, column: str) -> Any:
        return None if row[column] is None else _Version(row[column])


def test_a_rule_that_cannot_be_evaluated_names_the_rule_and_its_fields(crm_factory: Any) -> None:
    crm = crm_factory(plugins=[Versioned()], settings={"rules": [rule("release > '1.0'", name="new_release")]})
    with crm.unit_of_work() as uow, pytest.raises(CrmError) as caught:
        uow.create("opportunity", name="Deal", release="2.0")
    message = str(caught.value)
    assert message.startswith("rule 'new_release' cannot be evaluated for opportunity")
    assert "ValueError: cannot compare version 2.0 with '1.0'" in message
    assert "reads the fields 'release'" in message
    assert not isinstance(caught.value, PluginError)
    with crm.unit_of_work() as uow:
        assert uow.query("opportunity").count() == 0
