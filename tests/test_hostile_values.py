"""Hostile values: times out of range once in UTC, NUL in text, deep and huge JSON, the
probability's bounds and loops of parent accounts, each refused with a clear error."""

from __future__ import annotations

from typing import Any

import pytest

from crmcore import ConfigError, ValidationError
from crmcore.fields import Field, FieldValueError, Integer, Json, String
from crmcore.storage.batch import update_many

NUL = "Acme\x00Corp"


def create(crm: Any, entity: str, **values: Any) -> Any:
    with crm.unit_of_work() as uow:
        record = uow.create(entity, values)
        uow.commit()
    return record


@pytest.mark.parametrize(("entity", "field", "value"), [
    ("account", "name", NUL),                       # string
    ("account", "description", "line\x00"),          # text
    ("account", "email", "ana\x00@example.com"),     # e-mail
    ("account", "website", "https://exa\x00mple.com"),  # url
    ("account", "phone", "+351\x00 21 000 0000"),    # phone
    ("activity", "participants", [{"user_id": 1, "note\x00": 1}]),  # json key
])
def test_nul_in_text_is_refused_on_every_database(crm: Any, entity: str, field: str, value: Any) -> None:
    values = {"name": "Acme"} if entity == "account" else {"subject": "Call", "kind": "call"}
    with pytest.raises(ValidationError) as caught:
        create(crm, entity, **{**values, field: value})
    assert field in str(caught.value)
    assert "NUL" in str(caught.value) or "expected" in str(caught.value)
    with crm.unit_of_work() as uow:
        assert uow.query(entity).count() == 0


def test_nul_in_a_tag_name_is_refused(crm: Any) -> None:
    account = create(crm, "account", name="Acme")
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="NUL"):
        uow.tag(account, "vip\x00")
    with crm.unit_of_work() as uow:
        assert uow.tags(account) == []


def test_a_time_valid_in_its_zone_but_past_9999_in_utc_is_a_field_error(crm: Any) -> None:
    with pytest.raises(ValidationError, match=r"due_at.*outside the years 1 to 9999 once in UTC"):
        create(crm, "activity", subject="Call", kind="call", due_at="9999-12-31T23:59:59-14:00")
    record = create(crm, "activity", subject="Call", kind="call", due_at="9999-12-31T09:00:00-14:00")
    assert record.due_at.year == 9999


@pytest.mark.parametrize("text", [
    "[" * 5000 + "]" * 5000,
    '{"a": ' + "[" * 70 + "]" * 70 + "}",
    "1" * 5000,
    "[" + "9" * 1000 + "]",
    "[1e999]",
])
def test_deep_or_huge_json_is_a_clear_error(text: str) -> None:
    with pytest.raises(FieldValueError, match="expected a JSON value") as caught:
        Json().parse(text)
    assert len(str(caught.value)) < 200


def test_deep_json_given_as_python_values_is_a_field_error(crm: Any) -> None:
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValidationError, match="nested at most 64 levels"):
        create(crm, "activity", subject="Call", kind="call", participants=deep)


@pytest.mark.parametrize("probability", [-1, 101, 10**30])
def test_probability_stays_within_0_and_100(crm: Any, probability: int) -> None:
    with pytest.raises(ValidationError, match="probability.*from 0 to 100"):
        create(crm, "opportunity", name="Deal", probability=probability)
    record = create(crm, "opportunity", name="Deal", probability=100)
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="probability"):
        uow.update("opportunity", record.id, probability=probability)


def test_an_account_cannot_be_its_own_parent_or_ancestor(crm: Any) -> None:
    top = create(crm, "account", name="Top")
    middle = create(crm, "account", name="Middle", parent_id=top.id)
    bottom = create(crm, "account", name="Bottom", parent_id=middle.id)
    for child, parent in [(top, top), (top, bottom), (middle, bottom)]:
        with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="own parent or ancestor"):
            uow.update("account", child.id, parent_id=parent.id)
    with crm.unit_of_work() as uow:
        uow.update("account", bottom.id, parent_id=top.id)  # another place in the tree is fine
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [a.parent_id for a in uow.query("account").order_by("id").all()] == [None, top.id, top.id]


def test_a_batch_cannot_close_a_loop_of_accounts(crm: Any) -> None:
    first, second = create(crm, "account", name="First"), create(crm, "account", name="Second")
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="own parent or ancestor"):
        update_many(uow, "account", [(first, {"parent_id": second.id}), (second, {"parent_id": first.id})])
    with crm.unit_of_work() as uow:
        update_many(uow, "account", [(first, {"parent_id": second.id})])
        uow.commit()
    with crm.unit_of_work() as uow:
        assert [a.parent_id for a in uow.query("account").order_by("id").all()] == [second.id, None]


@pytest.mark.parametrize(("ftype", "message"), [
    (String(0), "max_length must be a whole number from 1"),
    (String(-5), "max_length must be a whole number from 1"),
    (Integer(minimum=10, maximum=1), "minimum 10 is above maximum 1"),
])
def test_field_declarations_are_checked_at_start_up(crm_factory: Any, ftype: Any, message: str) -> None:
    from crmcore import PluginInfo, hookimpl

    class Plugin:
        PLUGIN = PluginInfo(name="odd")

        @hookimpl
        def crm_entity_fields(self, entity_type: str) -> list[Field]:
            return [Field("odd", ftype)] if entity_type == "account" else []

    with pytest.raises(ConfigError, match=rf"field account\.odd \(from odd\): {message}"):
        crm_factory(plugins=[Plugin()])


@pytest.mark.parametrize(("spec", "message"), [
    ({"type": "decimal", "scale": 40}, "scale must be a whole number of decimal places from 0 to 12"),
    ({"type": "money", "scale": -1}, "scale must be"),
    ({"type": "string", "max_length": 0}, "max_length must be"),
])
def test_custom_field_declarations_are_checked(crm_factory: Any, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=rf"custom_fields\.account\.extra: {message}"):
        crm_factory(settings={"custom_fields": {"account": {"extra": spec}}})
