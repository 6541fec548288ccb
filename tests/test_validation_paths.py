"""The two validation paths agree: a corpus of good and bad rows for several entity types
(core fields, fields a plugin adds, custom fields from settings) goes through the fast path
(:func:`crmcore.validation.check_values` / :func:`~crmcore.validation.validate`, used by the unit
of work and the bulk import) and through the marshmallow schemas (``crm.schemas.load``, used at
the edges); both must give identical parsed values and identical error messages."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from crmcore import EntityType, Field, Money, PluginInfo, ValidationError, hookimpl
from crmcore.fields import (
    Boolean,
    Choice,
    Date,
    DateTime,
    Decimal,
    Email,
    Integer,
    Json,
    MoneyType,
    MultiChoice,
    Phone,
    Reference,
    String,
    Text,
    Url,
)
from crmcore.validation import check_values, validate

D = decimal.Decimal


class Kit:
    """A plugin entity with every field type, and fields added to ``account`` and ``lead``."""

    PLUGIN = PluginInfo(name="kit")

    @hookimpl
    def crm_entity_types(self):
        return [
            EntityType(
                "gadget",
                fields=(
                    Field("name", String(20), required=True),
                    Field("notes", Text()),
                    Field("count", Integer(), default=1),
                    Field("weight", Decimal(3)),
                    Field("price", MoneyType(), default="9.99"),
                    Field("fragile", Boolean(), default=False),
                    Field("made_on", Date()),
                    Field("seen_at", DateTime()),
                    Field("grade", Choice("a", "b"), required=True, default="a"),
                    Field("colors", MultiChoice("red", "green", "blue")),
                    Field("email", Email()),
                    Field("phone", Phone()),
                    Field("website", Url()),
                    Field("data", Json()),
                    Field("account_id", Reference("account")),
                ),
            )
        ]

    @hookimpl
    def crm_entity_fields(self, entity_type):
        if entity_type == "account":
            return [Field("tier", Choice("basic", "gold"), default="basic"), Field("budget", MoneyType())]
        if entity_type == "lead":
            return [Field("rating", Integer(), required=True)]
        return None


CUSTOM = {
    "account": {
        "seats": {"type": "integer", "required": True, "default": 5},
        "renewal": {"type": "date"},
        "spend": {"type": "money", "default": "100"},
        "regions": {"type": "multi_choice", "choices": ["emea", "apac", "amer"]},
    },
    "lead": {
        "budget": {"type": "decimal", "scale": 2},
        "interests": {"type": "multi_choice", "choices": ["crm", "erp"], "default": ["crm"]},
    },
}


@pytest.fixture(scope="module")
def app():
    """One app for the corpus (no database is touched: validation only)."""
    from crmcore import create_app

    crm = create_app(database="sqlite://", plugins=[Kit()], custom_fields=CUSTOM,
                     timezone="Europe/Paris", currency="EUR")
    yield crm
    crm.close()


CORPUS = [
    # (id, entity, partial, row)
    ("gadget-minimal", "gadget", False, {"name": "Widget"}),
    ("gadget-every-type", "gadget", False, {
        "name": " Widget ", "notes": "a\nb", "count": "3", "weight": "1.125", "price": "12.50 USD",
        "fragile": "yes", "made_on": "2026-02-28", "seen_at": "2026-03-01T10:00", "grade": "B",
        "colors": "blue;red", "email": "Ada@Example.COM", "phone": "+44 20 7946 0958",
        "website": "example.com", "data": '{"k": [1]}', "account_id": "7",
    }),
    ("gadget-python-values", "gadget", False, {
        "name": "W", "count": 4, "weight": D("2.5"), "price": Money(D("3"), "GBP"), "fragile": True,
        "made_on": dt.date(2026, 1, 2), "seen_at": dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC),
        "colors": ["green"], "data": [1, None], "account_id": 3,
    }),
    ("gadget-empty-text-is-none", "gadget", False, {"name": "W", "notes": "  ", "count": "", "colors": ""}),
    ("gadget-explicit-none-skips-default", "gadget", False, {"name": "W", "price": None, "count": None}),
    ("gadget-every-type-wrong", "gadget", False, {
        "name": "x" * 21, "count": "three", "weight": "1.0005", "price": "12 ABC", "fragile": "maybe",
        "made_on": "2026-02-30", "seen_at": "later", "grade": "c", "colors": "red;pink",
        "email": "ada@", "phone": "12", "website": "ftp://x.org", "data": "{bad", "account_id": "zero",
    }),
    ("gadget-missing-required", "gadget", False, {"notes": "no name"}),
    ("gadget-required-given-none", "gadget", False, {"name": None}),
    ("gadget-required-with-default-cleared", "gadget", False, {"name": "W", "grade": ""}),
    ("gadget-unknown-field", "gadget", False, {"name": "W", "colour": "red"}),
    ("gadget-system-field", "gadget", False, {"name": "W", "id": 5, "version": 2}),
    ("gadget-errors-in-mixed-order", "gadget", False, {"website": "x", "zzz": 1, "count": "y", "name": None}),
    ("gadget-update-one-field", "gadget", True, {"count": "8"}),
    ("gadget-update-clears-required", "gadget", True, {"name": ""}),
    ("gadget-update-wrong-type", "gadget", True, {"seen_at": 5, "fragile": 2}),
    ("gadget-update-empty", "gadget", True, {}),
    ("account-core-plugin-custom", "account", False, {
        "name": "Acme", "employees": "12", "tier": "GOLD", "budget": "5", "seats": "7", "renewal": "2027-01-01",
        "regions": "apac,emea",
    }),
    ("account-defaults-of-each-kind", "account", False, {"name": "Acme"}),
    ("account-bad-value-of-each-kind", "account", False, {
        "name": "Acme", "employees": "many", "tier": "platinum", "budget": "x", "seats": "lots", "renewal": "soon",
        "regions": ["emea", "mars"],
    }),
    ("account-custom-required-cleared", "account", False, {"name": "Acme", "seats": None}),
    ("account-update-custom-field", "account", True, {"seats": 9, "spend": "1 JPY"}),
    ("lead-plugin-required-missing", "lead", False, {"last_name": "Byron"}),
    ("lead-good", "lead", False, {"last_name": "Byron", "rating": "3", "budget": "1000", "interests": "erp;crm",
                                  "source": "Web", "email": "b@example.org"}),
    ("lead-bad", "lead", False, {"last_name": "", "rating": 2.5, "budget": "1.001", "interests": 5, "source": "rumour"}),
    ("activity-good", "activity", False, {"kind": "Call", "subject": "Intro", "starts_at": "2026-05-04T09:00",
                                          "participants": [{"user_id": 1}], "all_day": "no"}),
    ("activity-bad", "activity", False, {"kind": "visit", "subject": None, "due_at": "2026-13-01"}),
]


def _fast(app, entity, partial, row):
    etype = app.registry.entity(entity)
    parsed, errors = check_values(etype, row, partial=partial)
    try:
        validate(etype, row, partial=partial)
        message = None
    except ValidationError as exc:
        message = str(exc)
    return parsed, errors, message


def _schema(app, entity, partial, row):
    try:
        return app.schemas.load(entity, dict(row), partial=partial), {}, None
    except ValidationError as exc:
        return None, exc.messages, str(exc)


@pytest.mark.parametrize(("entity", "partial", "row"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_both_paths_report_the_same_errors(app, entity, partial, row):
    _, fast_errors, fast_message = _fast(app, entity, partial, row)
    _, schema_errors, schema_message = _schema(app, entity, partial, row)
    assert schema_errors == fast_errors
    assert schema_message == fast_message


@pytest.mark.parametrize(("entity", "partial", "row"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_both_paths_give_the_same_parsed_values(app, entity, partial, row):
    fast_parsed, fast_errors, _ = _fast(app, entity, partial, row)
    schema_parsed, _, _ = _schema(app, entity, partial, row)
    if fast_errors:
        assert schema_parsed is None
    else:
        assert schema_parsed == fast_parsed
        assert {k: type(v) for k, v in schema_parsed.items()} == {k: type(v) for k, v in fast_parsed.items()}


def test_corpus_has_good_and_bad_rows_for_each_kind_of_field(app):
    outcomes = {(entity, bool(_fast(app, entity, partial, row)[1])) for _, entity, partial, row in CORPUS}
    assert {("gadget", True), ("gadget", False), ("account", True), ("account", False),
            ("lead", True), ("lead", False)} <= outcomes


def test_defaults_are_parsed_to_canonical_values_on_both_paths(app):
    loaded = app.schemas.load("account", {"name": "Acme"})
    assert (loaded["spend"], loaded["seats"], loaded["tier"]) == (Money(D("100.00"), "EUR"), 5, "basic")
    assert app.schemas.load("lead", {"last_name": "B", "rating": 1})["interests"] == ("crm",)


def test_error_messages_name_field_value_and_expected_form(app):
    _, errors, message = _fast(app, "account", False, {"name": "Acme", "seats": "lots"})
    assert errors == {"seats": ["expected a whole number, got 'lots'"]}
    assert message == "account: seats: expected a whole number, got 'lots'"


def test_errors_are_listed_in_declaration_order_then_unknown_fields(app):
    _, _, message = _fast(app, "gadget", False, {"website": "x", "zzz": 1, "count": "y", "name": None})
    assert message == (
        "gadget: name: is required; count: expected a whole number, got 'y'; "
        "website: expected a web address such as 'https://example.com', got 'x'; zzz: unknown field"
    )


def test_import_row_number_is_kept_in_both_paths(app):
    etype = app.registry.entity("gadget")
    with pytest.raises(ValidationError) as fast:
        validate(etype, {"name": None}, row=7)
    with pytest.raises(ValidationError) as schema:
        app.schemas.load("gadget", {"name": None}, row=7)
    assert str(fast.value) == str(schema.value) == "row 7, gadget: name: is required"


def test_schema_dump_renders_json_compatible_values(app):
    loaded = app.schemas.load("gadget", {"name": "W", "price": "3 GBP", "made_on": "2026-01-02", "colors": "red"})
    dumped = app.schemas.for_entity("gadget").dump(loaded)
    assert (dumped["price"], dumped["made_on"], dumped["colors"]) == (
        {"amount": "3.00", "currency": "GBP"}, "2026-01-02", ["red"])


GOOD_CREATES = [c for c in CORPUS if c[0] in (
    "gadget-minimal", "gadget-empty-text-is-none", "gadget-explicit-none-skips-default",
    "account-core-plugin-custom", "account-defaults-of-each-kind",
)]


@pytest.mark.parametrize(("entity", "row"), [(c[1], c[3]) for c in GOOD_CREATES], ids=[c[0] for c in GOOD_CREATES])
def test_unit_of_work_stores_what_the_schema_loads(app, crm_factory, entity, row):
    assert not _fast(app, entity, False, row)[1]
    db = crm_factory([Kit()], {"custom_fields": CUSTOM, "crm": {"timezone": "Europe/Paris", "currency": "EUR"}})
    with db.unit_of_work() as uow:
        created = uow.create(entity, dict(row))
        uow.commit()
    with db.unit_of_work() as uow:
        stored = uow.get(entity, created.id)
    loaded = app.schemas.load(entity, dict(row))
    assert {name: stored[name] for name in loaded} == loaded
