"""Two apps with different plugins live side by side in one process without seeing each other's
entity types, fields, hooks, signals or settings."""

from __future__ import annotations

import decimal

import pytest

from crmcore import EntityType, Field, Money, NotFoundError, PluginInfo, ValidationError, hookimpl
from crmcore.fields import Choice, String


class Kit:
    """Owns ``gadget``, adds ``tier`` to accounts, and counts the creates it sees."""

    PLUGIN = PluginInfo(name="kit")

    def __init__(self):
        self.created = []

    @hookimpl
    def crm_entity_types(self):
        return [EntityType("gadget", fields=(Field("name", String(40), required=True),))]

    @hookimpl
    def crm_entity_fields(self, entity_type):
        return [Field("tier", Choice("basic", "gold"))] if entity_type == "account" else None

    @hookimpl
    def crm_after_create(self, entity, records):
        self.created.extend((entity, record.id) for record in records)


@pytest.fixture
def two_apps(crm_factory):
    kit = Kit()
    with_kit = crm_factory([kit], {"crm": {"currency": "EUR"}})
    plain = crm_factory(settings={"crm": {"currency": "JPY"}, "custom_fields": {"account": {"seats": {"type": "integer"}}}})
    return with_kit, plain, kit


def test_plugin_entity_exists_only_in_the_app_enabling_the_plugin(two_apps):
    with_kit, plain, _ = two_apps
    assert "gadget" in with_kit.registry
    assert "gadget" not in plain.registry
    with plain.unit_of_work() as uow, pytest.raises(NotFoundError, match="unknown entity type 'gadget'"):
        uow.create("gadget", name="x")


def test_field_extension_exists_only_in_its_app(two_apps):
    with_kit, plain, _ = two_apps
    with plain.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("account", name="Acme", tier="gold")
    assert info.value.messages == {"tier": ["unknown field"]}
    with with_kit.unit_of_work() as uow:
        assert uow.create("account", name="Acme", tier="gold").tier == "gold"


def test_custom_field_exists_only_in_its_app(two_apps):
    with_kit, plain, _ = two_apps
    assert plain.registry.entity("account").has_field("seats")
    assert not with_kit.registry.entity("account").has_field("seats")


def test_tables_are_built_on_each_app_own_metadata(two_apps):
    with_kit, plain, _ = two_apps
    assert with_kit.metadata is not plain.metadata
    assert "kit_gadget" in with_kit.metadata.tables and "kit_gadget" not in plain.metadata.tables
    assert "kit_tier" in with_kit.registry.table("account").c
    assert "kit_tier" not in plain.registry.table("account").c


def test_hooks_run_only_in_the_app_that_registered_them(two_apps):
    with_kit, plain, kit = two_apps
    with plain.unit_of_work() as uow:
        uow.create("account", name="Plain")
        uow.commit()
    with with_kit.unit_of_work() as uow:
        account = uow.create("account", name="Kit")
        uow.commit()
    assert kit.created == [("account", account.id)]


def test_signals_reach_only_receivers_of_their_app(two_apps, captured_signals):
    with_kit, plain, _ = two_apps
    with captured_signals("record-created", crm=plain) as plain_heard, \
            captured_signals("record-created", crm=with_kit) as kit_heard:
        with with_kit.unit_of_work() as uow:
            uow.create("gadget", name="Widget")
            uow.commit()
        with plain.unit_of_work() as uow:
            uow.create("contact", last_name="Lovelace")
            uow.commit()
    assert [e.entity for e in kit_heard] == ["gadget"]
    assert [e.entity for e in plain_heard] == ["contact"]


def test_signal_namespaces_are_distinct_objects(two_apps):
    with_kit, plain, _ = two_apps
    assert with_kit.signals.created is not plain.signals.created


def test_each_app_uses_its_own_currency(two_apps):
    with_kit, plain, _ = two_apps
    with with_kit.unit_of_work() as uow:
        kit_account = uow.create("account", name="A", annual_revenue="100")
    with plain.unit_of_work() as uow:
        plain_account = uow.create("account", name="B", annual_revenue="100")
    assert kit_account.annual_revenue == Money(decimal.Decimal("100"), "EUR")
    assert plain_account.annual_revenue == Money(decimal.Decimal("100"), "JPY")


def test_each_app_has_its_own_plugin_manager(two_apps):
    with_kit, plain, _ = two_apps
    assert with_kit.plugins.pm is not plain.plugins.pm
    assert "kit" in with_kit.plugins.plugins and "kit" not in plain.plugins.plugins


def test_two_instances_of_one_plugin_keep_their_own_state(crm_factory):
    first, second = Kit(), Kit()
    app_one, app_two = crm_factory([first]), crm_factory([second])
    with app_one.unit_of_work() as uow:
        uow.create("gadget", name="one")
        uow.commit()
    with app_two.unit_of_work() as uow:
        uow.create("gadget", name="two")
        uow.create("gadget", name="three")
        uow.commit()
    assert (len(first.created), len(second.created)) == (1, 2)


def test_data_of_one_app_is_invisible_to_the_other(two_apps):
    with_kit, plain, _ = two_apps
    with with_kit.unit_of_work() as uow:
        uow.create("account", name="Only here")
        uow.commit()
    with plain.unit_of_work() as uow:
        assert uow.all("account") == []


def test_closing_one_app_leaves_the_other_working(two_apps):
    with_kit, plain, _ = two_apps
    with_kit.close()
    with plain.unit_of_work() as uow:
        uow.create("account", name="Still here")
        uow.commit()
    with plain.unit_of_work() as uow:
        assert [a.name for a in uow.all("account")] == ["Still here"]
