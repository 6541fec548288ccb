"""The entity registry: table and column names, clashes, unknown names, and the three kinds of
fields (declared by the entity, added by a plugin, added in settings) behaving alike."""

from __future__ import annotations

import decimal

import pytest
import sqlalchemy as sa

from crmcore import (
    ConfigError,
    EntityType,
    Field,
    Money,
    NotFoundError,
    PluginInfo,
    ValidationError,
    hookimpl,
)
from crmcore.fields import Choice, Integer, MoneyType, Reference, String
from crmcore.registry import Registry

D = decimal.Decimal


class Kit:
    """A plugin owning ``gadget`` and adding two fields to ``account``."""

    PLUGIN = PluginInfo(name="kit")

    @hookimpl
    def crm_entity_types(self):
        return [
            EntityType(
                "gadget",
                fields=(
                    Field("name", String(50), required=True),
                    Field("account_id", Reference("account"), label="Account"),
                ),
                ownable=True,
            )
        ]

    @hookimpl
    def crm_entity_fields(self, entity_type):
        if entity_type == "account":
            return [
                Field("headcount", Integer()),
                Field("budget", MoneyType()),
                Field("tier", Choice("basic", "gold"), default="basic"),
            ]
        return None


CUSTOM_FIELDS = {
    "account": {
        "seats": {"type": "integer", "label": "Seats"},
        "spend": {"type": "money"},
        "level": {"type": "choice", "choices": ["basic", "gold"], "default": "basic"},
    }
}


@pytest.fixture
def kit(crm_factory):
    return crm_factory([Kit()], {"custom_fields": CUSTOM_FIELDS, "crm": {"currency": "EUR"}})


def _plugin(name, *, entities=(), fields=None):
    """A throwaway plugin object named *name*."""

    class Throwaway:
        PLUGIN = PluginInfo(name=name)

        @hookimpl
        def crm_entity_types(self):
            return list(entities)

        @hookimpl
        def crm_entity_fields(self, entity_type):
            return (fields or {}).get(entity_type)

    return Throwaway()


# -- names --------------------------------------------------------------------------------------


def test_core_entity_table_is_crm_prefixed(crm):
    assert crm.registry.entity("contact").table == "crm_contact"
    assert crm.registry.table("contact").name == "crm_contact"


def test_plugin_entity_table_carries_the_plugin_prefix(kit):
    assert kit.registry.entity("gadget").table == "kit_gadget"
    assert kit.registry.entity("gadget").origin == "kit"


def test_plugin_field_extension_column_carries_the_plugin_prefix(kit):
    field = kit.registry.entity("account").field("headcount")
    assert (field.column, field.origin) == ("kit_headcount", "kit")
    assert "kit_headcount" in kit.registry.table("account").c


def test_custom_field_column_carries_the_custom_prefix(kit):
    field = kit.registry.entity("account").field("seats")
    assert (field.column, field.origin, field.label) == ("custom_seats", "settings", "Seats")
    assert "custom_seats" in kit.registry.table("account").c


def test_plugin_entity_own_fields_keep_their_names_as_columns(kit):
    assert kit.registry.entity("gadget").field("name").column == "name"


def test_money_field_gets_an_amount_and_a_currency_column(kit):
    columns = kit.registry.table("account").c
    assert {"kit_budget", "kit_budget_currency", "custom_spend", "custom_spend_currency"} <= set(columns.keys())


def test_created_schema_has_every_table_and_column(kit):
    inspector = sa.inspect(kit.engine)
    assert {"crm_account", "kit_gadget", "crm_audit", "crm_tagging"} <= set(inspector.get_table_names())
    columns = {c["name"] for c in inspector.get_columns("crm_account")}
    assert {"kit_headcount", "custom_seats", "owner_id", "version"} <= columns


def test_reference_column_has_a_foreign_key_to_the_target_table(kit):
    (fk,) = kit.registry.table("gadget").c.account_id.foreign_keys
    assert fk.target_fullname == "crm_account.id"


def test_ownable_entity_gets_an_owner_field(kit):
    assert kit.registry.entity("gadget").field("owner_id").type == Reference("user")


def test_non_ownable_entity_has_no_owner_field(crm):
    assert not crm.registry.entity("tag").has_field("owner_id")


def test_entity_defaults_its_label_plural_and_title_field(kit):
    gadget = kit.registry.entity("gadget")
    assert (gadget.label, gadget.plural, gadget.title_field) == ("Gadget", "Gadgets", "name")


# -- unknown names ------------------------------------------------------------------------------


def test_unknown_entity_type_lists_the_known_ones(crm):
    with pytest.raises(NotFoundError, match=r"unknown entity type 'gizmo'; known: ") as info:
        crm.registry.entity("gizmo")
    known = str(info.value).partition("known: ")[2].split(", ")
    assert {"account", "contact", "lead"} <= set(known) and known == sorted(known)


def test_unknown_field_lists_the_entity_fields(crm):
    with pytest.raises(NotFoundError, match=r"tag has no field 'colour'; its fields are: name, color"):
        crm.registry.entity("tag").field("colour")


def test_unknown_entity_in_a_unit_of_work_is_a_clear_error(crm):
    with crm.unit_of_work() as uow, pytest.raises(NotFoundError, match="unknown entity type 'gizmo'"):
        uow.create("gizmo", name="x")


# -- clashes and bad declarations name the culprit ------------------------------------------------


def test_entity_declared_by_two_plugins_names_both(crm_factory):
    twin = EntityType("gadget", fields=(Field("name", String(20)),))
    with pytest.raises(ConfigError, match=r"entity type 'gadget' is declared by both 'kit' and 'copycat'"):
        crm_factory([Kit(), _plugin("copycat", entities=[twin])])


def test_plugin_entity_clashing_with_a_core_entity_names_the_plugin(crm_factory):
    with pytest.raises(ConfigError, match=r"entity type 'contact' is declared by both 'core' and 'rogue'"):
        crm_factory([_plugin("rogue", entities=[EntityType("contact", fields=())])])


def test_plugin_field_clashing_with_an_entity_field_names_plugin_field_and_entity(crm_factory):
    clash = _plugin("rogue", fields={"account": [Field("industry", String(20))]})
    with pytest.raises(ConfigError, match=r"rogue adds field 'industry' to 'account', which already has one"):
        crm_factory([clash])


def test_two_plugins_adding_the_same_field_is_a_clash(crm_factory):
    clash = _plugin("rogue", fields={"account": [Field("headcount", Integer())]})
    with pytest.raises(ConfigError, match=r"adds field 'headcount' to 'account', which already has one"):
        crm_factory([Kit(), clash])


def test_custom_field_clashing_with_a_plugin_field_names_the_settings_key(crm_factory):
    with pytest.raises(ConfigError, match=r"settings: settings adds field 'headcount' to 'account'") as info:
        crm_factory([Kit()], {"custom_fields": {"account": {"headcount": {"type": "integer"}}}})
    assert info.value.key == "custom_fields.account.headcount"


def test_custom_field_clashing_with_a_core_field_names_the_settings_key(crm_factory):
    with pytest.raises(ConfigError) as info:
        crm_factory(settings={"custom_fields": {"contact": {"email": {"type": "email"}}}})
    assert info.value.key == "custom_fields.contact.email"
    assert "adds field 'email' to 'contact', which already has one" in str(info.value)


def test_extension_of_an_unknown_entity_names_origin_and_entity():
    registry = Registry()
    registry.add_entity(EntityType("account", fields=()), origin="core")
    registry.extend_entity("ticket", [Field("sla", Integer())], origin="stray")
    with pytest.raises(ConfigError, match=r"stray adds fields to unknown entity type 'ticket'; known entity types: account"):
        registry.freeze()


def test_custom_fields_for_an_unknown_entity_name_the_settings_key(crm_factory):
    with pytest.raises(ConfigError, match=r"settings adds fields to unknown entity type 'acount'") as info:
        crm_factory(settings={"custom_fields": {"acount": {"seats": {"type": "integer"}}}})
    assert info.value.key == "custom_fields.acount"


def test_reference_to_an_unknown_entity_names_field_plugin_and_target(crm_factory):
    dangling = EntityType("widget", fields=(Field("ticket_id", Reference("ticket")),))
    with pytest.raises(ConfigError, match=r"field widget\.ticket_id \(from rogue\) refers to unknown entity type 'ticket'"):
        crm_factory([_plugin("rogue", entities=[dangling])])


def test_custom_reference_to_an_unknown_entity_names_the_settings_key(crm_factory):
    spec = {"custom_fields": {"account": {"ticket_id": {"type": "reference", "entity": "ticket"}}}}
    with pytest.raises(ConfigError, match=r"refers to unknown entity type 'ticket'") as info:
        crm_factory(settings=spec)
    assert info.value.key == "custom_fields.account.ticket_id"


def test_custom_field_with_an_unknown_type_names_the_key(crm_factory):
    with pytest.raises(ConfigError, match=r"custom_fields\.account\.seats\.type: unknown field type 'int'") as info:
        crm_factory(settings={"custom_fields": {"account": {"seats": {"type": "int"}}}})
    assert info.value.key == "custom_fields.account.seats"


def test_custom_field_with_an_invalid_default_is_refused_at_start(crm_factory):
    spec = {"custom_fields": {"account": {"level": {"type": "choice", "choices": ["a", "b"], "default": "c"}}}}
    with pytest.raises(ConfigError, match=r"custom_fields\.account\.level: default 'c' is invalid: expected one of 'a', 'b', got 'c'"):
        crm_factory(settings=spec)


def test_plugin_field_with_an_invalid_default_names_the_plugin(crm_factory):
    bad = _plugin("rogue", fields={"account": [Field("rank", Integer(), default="high")]})
    with pytest.raises(ConfigError, match=r"field account\.rank \(from rogue\): default 'high' is invalid: expected a whole number"):
        crm_factory([bad])


def test_entity_declaring_a_system_field_is_refused():
    with pytest.raises(ValueError, match=r"entity 'gizmo' declares field 'version' twice \(or a system field\)"):
        EntityType("gizmo", fields=(Field("version", Integer()),))


def test_frozen_registry_refuses_new_declarations(crm):
    with pytest.raises(ConfigError, match="the registry is frozen"):
        crm.registry.add_entity(EntityType("late", fields=()), origin="late")


# -- the three kinds of fields behave alike -----------------------------------------------------

KINDS = {
    # kind: (integer field, money field, choice field with default, its column prefix)
    "core": ("employees", "annual_revenue", "", ""),
    "plugin": ("headcount", "budget", "tier", "kit_"),
    "custom": ("seats", "spend", "level", "custom_"),
}


@pytest.fixture(params=list(KINDS))
def kind(request):
    return KINDS[request.param]


def test_each_kind_refuses_a_wrong_value_naming_field_value_and_expected(kit, kind):
    number, money, _, _ = kind
    with kit.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("account", {"name": "Acme", number: "many"})
    assert info.value.messages == {number: ["expected a whole number, got 'many'"]}


def test_each_kind_persists_in_its_column(kit, kind):
    number, money, _, prefix = kind
    with kit.unit_of_work() as uow:
        account = uow.create("account", {"name": "Acme", number: "42"})
        uow.commit()
    table = kit.registry.table("account")
    with kit.connect() as connection:
        stored = connection.execute(sa.select(table.c[prefix + number]).where(table.c.id == account.id)).scalar_one()
    assert stored == 42


def test_each_kind_round_trips_through_records(kit, kind):
    number, money, _, _ = kind
    with kit.unit_of_work() as uow:
        account = uow.create("account", {"name": "Acme", number: 7, money: "10.5"})
        uow.commit()
    with kit.unit_of_work() as uow:
        read = uow.get("account", account.id)
        updated = uow.update(read, {number: 8, money: "11 USD"})
        uow.commit()
    with kit.unit_of_work() as uow:
        again = uow.get("account", account.id)
    assert (read[number], read[money]) == (7, Money(D("10.50"), "EUR"))
    assert (again[number], again[money]) == (8, Money(D("11.00"), "USD")) == (updated[number], updated[money])


def test_each_kind_is_audited_old_to_new(kit, kind):
    number, money, _, _ = kind
    with kit.unit_of_work() as uow:
        account = uow.create("account", {"name": "Acme", number: 7, money: "10"})
        uow.update(account, {number: 9, money: "12.5"})
        uow.commit()
    with kit.unit_of_work() as uow:
        created, updated = uow.history("account", account.id)
    assert created.changes[number] == (None, 7)
    assert updated.changes == {
        number: (7, 9),
        money: ({"amount": "10.00", "currency": "EUR"}, {"amount": "12.50", "currency": "EUR"}),
    }


@pytest.mark.parametrize(("entity", "name"), [("user", "timezone"), ("account", "tier"), ("account", "level")],
                         ids=["core", "plugin", "custom"])
def test_each_kind_applies_its_default_on_create(kit, make_record, entity, name):
    record = make_record(kit, entity)
    assert record[name] == kit.registry.entity(entity).field(name).default


def test_each_kind_appears_in_filterable_sortable_and_import_columns(kit, kind):
    number, money, _, _ = kind
    account = kit.registry.entity("account")
    assert number in account.filterable and money in account.filterable
    assert number in account.sortable
    assert number in account.columns and money in account.columns


def test_each_kind_is_in_the_marshmallow_schema(kit, kind):
    number, money, _, _ = kind
    loaded = kit.schemas.load("account", {"name": "Acme", number: "3", money: "4 GBP"})
    assert (loaded[number], loaded[money]) == (3, Money(D("4.00"), "GBP"))


def test_custom_field_with_a_reserved_name_names_the_settings_key(crm_factory):
    with pytest.raises(ConfigError, match=r"field name 'entity' is reserved") as info:
        crm_factory(settings={"custom_fields": {"account": {"entity": {"type": "string"}}}})
    assert info.value.key == "custom_fields.account.entity"


def test_fields_storing_the_same_column_name_both_fields(crm_factory):
    clash = EntityType("gizmo", fields=(Field("price", MoneyType()), Field("price_currency", String(3))))
    with pytest.raises(ConfigError, match=(
        r"field gizmo\.price_currency \(from rogue\) would store column 'price_currency' of table 'rogue_gizmo', "
        r"which field gizmo\.price \(from rogue\) already uses"
    )):
        crm_factory([_plugin("rogue", entities=[clash])])


def test_plugin_field_columns_that_collide_name_both_plugins(crm_factory):
    first = _plugin("kit", fields={"account": [Field("a_b", Integer())]})
    second = _plugin("kit_a", fields={"account": [Field("b", Integer())]})
    with pytest.raises(ConfigError, match=r"field account\.b \(from kit_a\) would store column 'kit_a_b' .* field account\.a_b \(from kit\)"):
        crm_factory([first, second])


def test_entity_tables_that_collide_name_both_entities(crm_factory):
    first = _plugin("kit", entities=[EntityType("x_y", fields=())])
    second = _plugin("kit_x", entities=[EntityType("y", fields=())])
    with pytest.raises(ConfigError, match=r"entity type 'y' \(from kit_x\) would use table 'kit_x_y', which entity type 'x_y' \(from kit\)"):
        crm_factory([first, second])
