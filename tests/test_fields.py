"""Field types: canonical parsing, messages on bad values, and round trips through storage.

Pure parsing tests need no app; the round trips go through ``crm_factory`` so they run on
SQLite and on PostgreSQL (``CRM_TEST_DATABASE_URL``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import zoneinfo

import pytest
import sqlalchemy as sa

from crmcore import EntityType, Field, Money, PluginInfo, ValidationError, hookimpl
from crmcore.fields import (
    FIELD_TYPES,
    Boolean,
    Choice,
    Date,
    DateTime,
    Decimal,
    Email,
    FieldValueError,
    Integer,
    Json,
    MoneyType,
    MultiChoice,
    Phone,
    Reference,
    String,
    Text,
    Url,
    field_type_from_spec,
    timezone_named,
)

D = decimal.Decimal
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
UTC = dt.UTC

# -- parsing, without an app --------------------------------------------------------------------

EUR = MoneyType(currency="EUR")
IN_PARIS = DateTime(timezone=PARIS)
COLORS = MultiChoice("red", "green", "blue")

GOOD = [
    ("string-strips-space", String(10), "  Ada  ", "Ada"),
    ("string-takes-an-int", String(10), 42, "42"),
    ("text-keeps-inner-lines", Text(), " one\ntwo ", "one\ntwo"),
    ("integer-from-text", Integer(), " 17 ", 17),
    ("integer-from-whole-float", Integer(), 12.0, 12),
    ("integer-from-whole-decimal", Integer(), D("3"), 3),
    ("integer-negative", Integer(), "-5", -5),
    ("decimal-from-text", Decimal(2), "1.5", D("1.50")),
    ("decimal-from-float-is-exact", Decimal(2), 0.1, D("0.10")),
    ("decimal-trailing-zeros-allowed", Decimal(2), "2.500", D("2.50")),
    ("decimal-exponent", Decimal(2), "1e2", D("100.00")),
    ("money-bare-number-takes-currency", EUR, "12.5", Money(D("12.50"), "EUR")),
    ("money-amount-then-code", EUR, "12.50 usd", Money(D("12.50"), "USD")),
    ("money-code-then-amount", EUR, "GBP 3", Money(D("3.00"), "GBP")),
    ("money-negative", EUR, "-5 EUR", Money(D("-5.00"), "EUR")),
    ("money-from-mapping", EUR, {"amount": "5", "currency": "JPY"}, Money(D("5.00"), "JPY")),
    ("money-from-money", EUR, Money(D("7"), "CHF"), Money(D("7.00"), "CHF")),
    ("money-from-int", EUR, 12, Money(D("12.00"), "EUR")),
    ("boolean-yes", Boolean(), "Yes", True),
    ("boolean-zero", Boolean(), 0, False),
    ("boolean-false-text", Boolean(), "false", False),
    ("date-iso", Date(), "2026-02-28", dt.date(2026, 2, 28)),
    ("date-object", Date(), dt.date(2026, 1, 1), dt.date(2026, 1, 1)),
    ("datetime-offset-to-utc", IN_PARIS, "2026-03-31T14:30:00+02:00", dt.datetime(2026, 3, 31, 12, 30, tzinfo=UTC)),
    ("datetime-z-suffix", IN_PARIS, "2026-03-31T14:30Z", dt.datetime(2026, 3, 31, 14, 30, tzinfo=UTC)),
    ("datetime-naive-text-in-deployment-zone", IN_PARIS, "2026-01-15T09:00", dt.datetime(2026, 1, 15, 8, tzinfo=UTC)),
    ("datetime-naive-object-in-deployment-zone", IN_PARIS, dt.datetime(2026, 7, 1, 9), dt.datetime(2026, 7, 1, 7, tzinfo=UTC)),
    ("choice-case-insensitive", Choice("basic", "Gold"), "gold", "Gold"),
    ("multi-choice-text-in-declared-order", COLORS, "blue; red", ("red", "blue")),
    ("multi-choice-commas", COLORS, "green,,red", ("red", "green")),
    ("multi-choice-list", COLORS, ["Green"], ("green",)),
    ("multi-choice-duplicates-once", COLORS, ["red", "RED"], ("red",)),
    ("email-lowercases-domain", Email(), " Ada@Example.COM ", "Ada@example.com"),
    ("phone-international", Phone(), "+44 20  7946 0958", "+44 20 7946 0958"),
    ("phone-extension", Phone(), "+1 (555) 010-1234 ext. 5", "+1 (555) 010-1234 ext. 5"),
    ("url-adds-https", Url(), "example.com/path", "https://example.com/path"),
    ("url-keeps-http", Url(), "http://example.org", "http://example.org"),
    ("json-object-from-text", Json(), '{"a": [1, 2]}', {"a": [1, 2]}),
    ("json-list", Json(), [1, "a", None], [1, "a", None]),
    ("json-number", Json(), 5, 5),
    ("reference-int", Reference("account"), 7, 7),
    ("reference-text", Reference("account"), " 8 ", 8),
]


@pytest.mark.parametrize(("ftype", "value", "expected"), [c[1:] for c in GOOD], ids=[c[0] for c in GOOD])
def test_good_value_parses_to_canonical_value(ftype, value, expected):
    parsed = ftype.parse(value)
    assert parsed == expected
    assert type(parsed) is type(expected)


BAD = [
    ("string-too-long", String(5), "abcdefg", "expected text of at most 5 characters, got 'abcdefg' (7 characters)"),
    ("string-bool", String(5), True, "expected text of at most 5 characters, got True"),
    ("text-number", Text(), 5, "expected text, got 5"),
    ("integer-fraction", Integer(), 12.5, "expected a whole number, got 12.5"),
    ("integer-bool", Integer(), True, "expected a whole number, got True"),
    ("integer-word", Integer(), "many", "expected a whole number, got 'many'"),
    ("integer-infinity", Integer(), float("inf"), "expected a whole number, got inf"),
    ("integer-nan", Integer(), float("nan"), "expected a whole number, got nan"),
    ("integer-beyond-64-bits", Integer(), 2**63, f"expected a whole number, got {2**63}"),
    ("decimal-too-many-places", Decimal(2), "1.005", "expected a decimal number with at most 2 decimal places, got '1.005'"),
    ("decimal-nan", Decimal(2), "nan", "expected a decimal number with at most 2 decimal places, got 'nan'"),
    ("decimal-too-large-to-store", Decimal(2), "1e17", "expected a decimal number with at most 2 decimal places, got '1e17'"),
    ("money-word", EUR, "lots", "expected an amount with at most 2 decimal places and a currency, such as '1250.00 EUR', got 'lots'"),
    ("money-too-many-places", EUR, "1.234 EUR", "expected an amount with at most 2 decimal places and a currency, such as '1250.00 EUR', got '1.234 EUR'"),
    ("money-bool", EUR, True, "expected an amount with at most 2 decimal places and a currency, such as '1250.00 EUR', got True"),
    ("money-unknown-currency", EUR, "12 XYZ", "unknown currency 'XYZ' in '12 XYZ'; use an ISO 4217 code such as 'EUR'"),
    ("money-unknown-currency-in-mapping", EUR, {"amount": "1", "currency": "EURO"}, "unknown currency 'EURO' in {'amount': '1', 'currency': 'EURO'}; use an ISO 4217 code such as 'EUR'"),
    ("boolean-two", Boolean(), 2, "expected true or false, got 2"),
    ("boolean-maybe", Boolean(), "maybe", "expected true or false, got 'maybe'"),
    ("date-impossible", Date(), "2026-02-30", "expected a date such as '2026-03-31', got '2026-02-30'"),
    ("date-given-a-datetime", Date(), dt.datetime(2026, 1, 1), "expected a date such as '2026-03-31', got datetime.datetime(2026, 1, 1, 0, 0)"),
    ("datetime-word", IN_PARIS, "soon", "expected a date and time such as '2026-03-31T14:30:00+02:00', got 'soon'"),
    ("datetime-given-a-date", IN_PARIS, dt.date(2026, 1, 1), "expected a date and time such as '2026-03-31T14:30:00+02:00', got datetime.date(2026, 1, 1)"),
    ("choice-unknown", Choice("basic", "gold"), "platinum", "expected one of 'basic', 'gold', got 'platinum'"),
    ("choice-number", Choice("basic", "gold"), 1, "expected one of 'basic', 'gold', got 1"),
    ("multi-choice-unknown-item", COLORS, "red;pink", "expected values among 'red', 'green', 'blue', got 'pink'"),
    ("multi-choice-number", COLORS, 5, "expected values among 'red', 'green', 'blue', got 5"),
    ("multi-choice-number-item", COLORS, ["red", 3], "expected values among 'red', 'green', 'blue', got 3"),
    ("email-no-dot-in-domain", Email(), "ada@example", "expected an e-mail address such as 'ada@example.com', got 'ada@example'"),
    ("email-space", Email(), "a b@example.com", "expected an e-mail address such as 'ada@example.com', got 'a b@example.com'"),
    ("phone-too-short", Phone(), "12", "expected a phone number such as '+44 20 7946 0958', got '12'"),
    ("phone-letters", Phone(), "call me", "expected a phone number such as '+44 20 7946 0958', got 'call me'"),
    ("url-ftp", Url(), "ftp://example.com", "expected a web address such as 'https://example.com', got 'ftp://example.com'"),
    ("url-javascript", Url(), "javascript:alert(1)", "expected a web address such as 'https://example.com', got 'javascript:alert(1)'"),
    ("url-unbalanced-bracket", Url(), "[", "expected a web address such as 'https://example.com', got '['"),
    ("url-bracketed-host", Url(), "http://[example.com/", "expected a web address such as 'https://example.com', got 'http://[example.com/'"),
    ("url-space", Url(), "https://example.com/a b", "expected a web address such as 'https://example.com', got 'https://example.com/a b'"),
    ("json-malformed", Json(), "{not json", "expected a JSON value, got '{not json'"),
    ("json-set", Json(), {1, 2}, "expected a JSON value, got {1, 2}"),
    ("json-nan", Json(), float("nan"), "expected a JSON value, got nan"),
    ("json-nan-text", Json(), "NaN", "expected a JSON value, got 'NaN'"),
    ("reference-zero", Reference("account"), 0, "expected the id of an account, got 0"),
    ("reference-word", Reference("contact"), "ada", "expected the id of a contact, got 'ada'"),
    ("reference-bool", Reference("contact"), True, "expected the id of a contact, got True"),
    ("reference-beyond-id-range", Reference("contact"), 2**31, f"expected the id of a contact, got {2**31}"),
]


@pytest.mark.parametrize(("ftype", "value", "message"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_value_is_refused_naming_expected_form_and_value(ftype, value, message):
    with pytest.raises(FieldValueError) as info:
        ftype.parse(value)
    assert str(info.value) == message


def test_money_keeps_amounts_exact():
    total = EUR.parse("0.10") + EUR.parse("0.20")
    assert total == Money(D("0.30"), "EUR")
    assert isinstance(total.amount, decimal.Decimal)


def test_money_of_different_currencies_cannot_be_added():
    with pytest.raises(ValueError, match="cannot combine EUR with USD"):
        EUR.parse("1 EUR") + EUR.parse("1 USD")


def test_empty_text_and_none_parse_to_none():
    field = Field("size", Integer())
    assert field.parse("   ") is None
    assert field.parse(None) is None


def test_bound_datetime_type_keeps_an_explicit_zone():
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    bound = DateTime(timezone=tokyo).bind(currency="EUR", timezone=PARIS)
    assert bound.parse("2026-01-01T09:00") == dt.datetime(2026, 1, 1, 0, tzinfo=UTC)


def test_bound_money_type_keeps_an_explicit_currency():
    assert MoneyType(currency="CHF").bind(currency="EUR", timezone=UTC).parse("3") == Money(D("3"), "CHF")


FORMAT_CASES = [
    (String(20), "Ada"), (Text(), "line one\nline two"), (Integer(), -42), (Decimal(3), D("1.125")),
    (EUR, Money(D("1250.00"), "EUR")), (Boolean(), False), (Date(), dt.date(2026, 3, 31)),
    (IN_PARIS, dt.datetime(2026, 3, 31, 12, 30, tzinfo=UTC)), (Choice("a", "b"), "b"),
    (COLORS, ("red", "blue")), (Email(), "ada@example.com"), (Phone(), "+44 20 7946 0958"),
    (Url(), "https://example.com"), (Json(), {"a": [1, None]}), (Reference("account"), 12),
]


@pytest.mark.parametrize(("ftype", "value"), FORMAT_CASES, ids=[c[0].kind for c in FORMAT_CASES])
def test_formatted_value_parses_back_to_itself(ftype, value):
    assert ftype.parse(ftype.format(value)) == value


@pytest.mark.parametrize(("ftype", "value"), FORMAT_CASES, ids=[c[0].kind for c in FORMAT_CASES])
def test_dumped_value_is_json_and_parses_back(ftype, value):
    dumped = json.loads(json.dumps(ftype.dump(value)))
    assert ftype.parse(dumped) == value


def test_every_settings_type_name_builds_a_field_type():
    specs = {
        "choice": {"type": "choice", "choices": ["a"]},
        "multi_choice": {"type": "multi_choice", "choices": ["a"]},
        "reference": {"type": "reference", "entity": "account"},
    }
    for kind in FIELD_TYPES:
        ftype = field_type_from_spec(specs.get(kind, {"type": kind}), where=f"custom_fields.x.{kind}")
        assert ftype.kind == kind


def test_unknown_settings_type_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"custom_fields\.account\.x\.type: unknown field type 'strng'; use one of boolean, choice"):
        field_type_from_spec({"type": "strng"}, where="custom_fields.account.x")


def test_choice_spec_without_choices_is_refused():
    with pytest.raises(ValueError, match=r"custom_fields\.account\.x\.choices: a choice field needs a list of text choices, got None"):
        field_type_from_spec({"type": "choice"}, where="custom_fields.account.x")


def test_unknown_time_zone_name_is_refused():
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        timezone_named("Mars/Olympus")


def test_field_name_must_be_snake_case():
    with pytest.raises(ValueError, match="field name 'Size' must be lower-case snake case"):
        Field("Size", Integer())


# -- round trips through the database -----------------------------------------------------------


class Specimens:
    """A plugin declaring an entity with one field of every type."""

    PLUGIN = PluginInfo(name="lab")

    @hookimpl
    def crm_entity_types(self):
        return [
            EntityType(
                "specimen",
                fields=(
                    Field("label", String(40)),
                    Field("notes", Text()),
                    Field("count", Integer()),
                    Field("weight", Decimal(3)),
                    Field("price", MoneyType()),
                    Field("fragile", Boolean()),
                    Field("found_on", Date()),
                    Field("seen_at", DateTime()),
                    Field("grade", Choice("a", "b")),
                    Field("colors", MultiChoice("red", "green", "blue")),
                    Field("email", Email()),
                    Field("phone", Phone()),
                    Field("website", Url()),
                    Field("data", Json()),
                    Field("account_id", Reference("account")),
                ),
            )
        ]


@pytest.fixture
def lab(crm_factory):
    return crm_factory([Specimens()], {"crm": {"timezone": "Europe/Paris", "currency": "EUR"}})


ROUND_TRIPS = [
    ("label", "Ada", "Ada"),
    ("notes", "one\ntwo", "one\ntwo"),
    ("count", "9007199254740993", 9007199254740993),
    ("weight", "12345.678", D("12345.678")),
    ("price", "19.99", Money(D("19.99"), "EUR")),
    ("fragile", "no", False),
    ("found_on", "2026-02-28", dt.date(2026, 2, 28)),
    ("seen_at", "2026-07-01T09:00", dt.datetime(2026, 7, 1, 7, tzinfo=UTC)),
    ("grade", "B", "b"),
    ("colors", "blue;red", ("red", "blue")),
    ("email", "Ada@Example.com", "Ada@example.com"),
    ("phone", "+33 1 23 45 67 89", "+33 1 23 45 67 89"),
    ("website", "example.com", "https://example.com"),
    ("data", '{"k": [1, 2.5, "x"]}', {"k": [1, 2.5, "x"]}),
]


@pytest.mark.parametrize(("name", "value", "expected"), ROUND_TRIPS, ids=[c[0] for c in ROUND_TRIPS])
def test_value_round_trips_through_the_database(lab, name, value, expected):
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", {name: value})
        uow.commit()
    assert created[name] == expected
    with lab.unit_of_work() as uow:
        assert uow.get("specimen", created.id)[name] == expected


def test_reference_round_trips_through_the_database(lab, make_record):
    account = make_record(lab, "account", name="Acme")
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", account_id=account)
        uow.commit()
    with lab.unit_of_work() as uow:
        assert uow.get("specimen", created.id).account_id == account.id


@pytest.mark.parametrize("name", [c[0] for c in ROUND_TRIPS])
def test_empty_value_is_stored_as_null(lab, name):
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", {name: None})
        uow.commit()
    table = lab.registry.table("specimen")
    with lab.connect() as connection:
        row = connection.execute(sa.select(table).where(table.c.id == created.id)).mappings().one()
    assert row[lab.registry.entity("specimen").field(name).column] is None


def test_money_amount_round_trips_exactly(lab):
    amounts = ["0.10", "0.20", "99999999999.99", "-0.01"]
    with lab.unit_of_work() as uow:
        ids = [uow.create("specimen", price=f"{a} EUR").id for a in amounts]
        uow.commit()
    with lab.unit_of_work() as uow:
        stored = [uow.get("specimen", i).price for i in ids]
    assert stored == [Money(D(a), "EUR") for a in amounts]
    assert sum((m.amount for m in stored), D(0)) == D("99999999999.98") + D("0.30")


def test_money_bare_number_takes_the_deployment_currency(lab):
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", price=250)
        uow.commit()
    assert created.price == Money(D("250.00"), "EUR")


def test_money_keeps_the_currency_it_was_given(lab):
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", price="250 JPY")
        uow.commit()
    with lab.unit_of_work() as uow:
        assert uow.get("specimen", created.id).price == Money(D("250.00"), "JPY")


def test_money_with_unknown_currency_names_field_value_and_fix(lab):
    with lab.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("specimen", price="250 ABC")
    assert info.value.messages == {"price": ["unknown currency 'ABC' in '250 ABC'; use an ISO 4217 code such as 'EUR'"]}


def test_money_is_stored_as_a_scaled_integer_and_a_currency(lab):
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", price="12.34 CHF")
        uow.commit()
    table = lab.registry.table("specimen")
    with lab.connect() as connection:
        row = connection.exec_driver_sql(
            f"SELECT price, price_currency FROM {table.name} WHERE id = {created.id}"
        ).one()
    assert tuple(row) == (1234, "CHF")


def test_naive_datetime_is_read_in_the_deployment_time_zone(lab):
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", seen_at=dt.datetime(2026, 1, 15, 9, 0))
        uow.commit()
    assert created.seen_at == dt.datetime(2026, 1, 15, 9, 0, tzinfo=PARIS)


def test_datetime_is_stored_in_utc(lab):
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", seen_at="2026-07-01T09:00:00+02:00")
        uow.commit()
    table = lab.registry.table("specimen")
    with lab.connect() as connection:
        raw = connection.execute(
            sa.select(sa.cast(table.c.seen_at, sa.String)).where(table.c.id == created.id)
        ).scalar_one()
    assert raw.startswith("2026-07-01 07:00:00")


def test_datetime_reads_back_timezone_aware(lab):
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", seen_at="2026-03-29T03:30:00+02:00")
        uow.commit()
    with lab.unit_of_work() as uow:
        seen_at = uow.get("specimen", created.id).seen_at
    assert seen_at.utcoffset() == dt.timedelta(0)
    assert seen_at.astimezone(PARIS).isoformat() == "2026-03-29T03:30:00+02:00"


def test_system_times_are_timezone_aware(lab):
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", label="x")
        uow.commit()
    with lab.unit_of_work() as uow:
        record = uow.get("specimen", created.id)
    assert record.created_at.tzinfo is not None
    assert record.created_at == created.created_at


def test_empty_multi_choice_text_is_stored_as_null(lab):
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", colors="")
        uow.commit()
    assert created.colors is None


def test_wrong_type_names_field_value_and_expected_form(lab):
    with lab.unit_of_work() as uow, pytest.raises(ValidationError) as info:
        uow.create("specimen", count="twelve", found_on="yesterday")
    assert info.value.messages == {
        "count": ["expected a whole number, got 'twelve'"],
        "found_on": ["expected a date such as '2026-03-31', got 'yesterday'"],
    }
    assert "count: expected a whole number, got 'twelve'" in str(info.value)
    assert str(info.value).startswith("specimen: ")


def test_field_name_used_by_records_is_refused():
    with pytest.raises(ValueError, match=r"field name 'values' is reserved \(records use it: record\.values\)"):
        Field("values", Json())


def test_json_value_is_a_copy_in_stored_form():
    given = {"tags": ("a", "b"), 1: "one"}
    parsed = Json().parse(given)
    given["tags"] = ()
    assert parsed == {"tags": ["a", "b"], "1": "one"}


def test_changing_json_after_create_changes_neither_row_nor_audit(lab):
    data = {"steps": [1]}
    with lab.unit_of_work() as uow:
        created = uow.create("specimen", data=data)
        data["steps"].append(2)
        created.data["steps"].append(3)
        uow.commit()
    with lab.unit_of_work() as uow:
        assert uow.get("specimen", created.id).data == {"steps": [1]}
        assert uow.history("specimen", created.id)[0].changes["data"] == (None, {"steps": [1]})
