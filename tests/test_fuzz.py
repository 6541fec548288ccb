"""Fuzzing the edges: random and hostile values through every field type, the condition parser,
the filter parser, the page-cursor decoder and the CSV reader, on the database under test.

Each call either succeeds or raises a crmcore error (:class:`~crmcore.errors.CrmError`), never
another exception, and a refused write leaves nothing behind. The examples are derandomised, so
a run is reproducible, and few enough to keep each database's run to a few seconds.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import CrmError
from crmcore.fields import FIELD_TYPES
from crmcore.query import OPERATORS
from crmcore.transfer import import_file
from crmcore.workflow.conditions import parse

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

#: One custom field of each type the settings can declare, so every field type is fuzzed.
CUSTOM = {
    f"fuzz_{kind}": {"type": kind, **({"choices": ["a", "B"]} if "choice" in kind else {}),
           **({"entity": "account"} if kind == "reference" else {})}
    for kind in FIELD_TYPES
}

#: Values that broke something once, or could: NUL, lone surrogates, huge and odd numbers, far dates.
HOSTILE = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "9" * 400, "-" + "9" * 40, "1e999999", "1e-999999", "nan",
    "inf", "-inf", "-0", "0x10", "1_000", "²", "١٢٣", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
    "9999-12-31", "0000-00-00", "2026-02-30", "=HYPERLINK(\"x\")", "'; DROP TABLE crm_account; --", "%_\\",
    "a" * 300, "[" * 3000, "{\"a\":" * 500, "EUR 1e30", "1.005 EUR", "12.345", "true", "yes", "a;B;c", "B",
    2**63, -(2**63) - 1, 2**31, 10**30, float("nan"), float("inf"), -0.0, 1.5, decimal.Decimal("NaN"),
    decimal.Decimal("1e-30"), True, None, b"bytes", [], {}, [[[[[]]]]], {"amount": "1", "currency": "XXX"},
    dt.date.max, dt.datetime.min, dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=-14))),
])
#: Text of any code point, lone surrogates and NUL included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
SCALARS = st.one_of(HOSTILE, ANY_TEXT, st.integers(), st.floats(), st.decimals(), st.booleans(), st.none(),
                    st.dates(), st.datetimes(timezones=st.timezones()))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4), st.dictionaries(ANY_TEXT, SCALARS, max_size=3))


@pytest.fixture
def crm(crm_factory: Any) -> Any:
    app = crm_factory(settings={"custom_fields": {"account": CUSTOM}})
    with app.unit_of_work() as uow:
        uow.create("account", name="Acme", employees=10)
        uow.commit()
    return app


def state(crm: Any) -> tuple[int, int]:
    """The number of accounts and the version of the first."""
    with crm.unit_of_work() as uow:
        return uow.query("account").count(), uow.get("account", 1).version


def survives(call: Callable[[], Any]) -> bool:
    """Run *call*: ``True`` when it succeeds, ``False`` when it raises a crmcore error; any
    other exception fails the test."""
    try:
        call()
    except CrmError:
        return False
    return True


# -- every field type ------------------------------------------------------------------------------


@settings(FUZZ, max_examples=150)
@given(field=st.sampled_from(sorted(CUSTOM)), value=VALUES)
def test_every_field_type_takes_or_refuses_any_value_whole(crm: Any, field: str, value: Any) -> None:
    accounts, version = state(crm)

    def create() -> None:
        with crm.unit_of_work() as uow:
            record = uow.create("account", {"name": "Fuzz", field: value})
            uow.commit()
        with crm.unit_of_work() as uow:
            assert uow.get("account", record.id).get(field) == record.get(field)  # read back as written

    created = survives(create)
    assert state(crm) == (accounts + created, version)  # written whole or not at all

    def update() -> None:
        with crm.unit_of_work() as uow:
            uow.update("account", 1, **{field: value})
            uow.commit()

    updated = survives(update)
    after = state(crm)
    assert after[0] == accounts + created
    assert after[1] == version or (updated and after[1] == version + 1)  # a refused update changes nothing


# -- the condition parser -----------------------------------------------------------------------------


CONDITION_TEXT = st.one_of(
    ANY_TEXT, HOSTILE.filter(lambda v: isinstance(v, str)),
    st.lists(st.sampled_from(["amount", ">", "1e999", "(", ")", "not", "and", "or", "-", "+", "today", "'x'",
                              "in", "[", "]", ",", "null", "9" * 50, "stage", "=", "\x00", "\ud800", "..", "*"]),
             max_size=30).map(" ".join),
)


@FUZZ
@given(spec=st.one_of(CONDITION_TEXT, VALUES, st.lists(CONDITION_TEXT, max_size=3)))
def test_the_condition_parser_reads_or_refuses_anything(spec: Any) -> None:
    survives(lambda: str(parse(spec, where="fuzz")))


# -- the filter parser --------------------------------------------------------------------------------


FIELDS = st.sampled_from(["name", "employees", "annual_revenue", "annual_revenue_currency", "id", "created_at",
                          *CUSTOM, "nope", "parent_id.name"])


@FUZZ
@given(condition=st.one_of(
    CONDITION_TEXT,
    st.tuples(FIELDS, st.sampled_from([*OPERATORS, "~", "like", ""]), VALUES),
    st.tuples(FIELDS, st.sampled_from(["is null", "is not null"])),
    st.builds(lambda c: {"not": {"any": [c, {"all": [c]}]}}, st.tuples(FIELDS, st.just("="), SCALARS)),
    VALUES,
))
def test_the_filter_parser_filters_or_refuses_anything(crm: Any, condition: Any) -> None:
    with crm.unit_of_work() as uow:
        survives(lambda: uow.query("account").where(condition).count())
        survives(lambda: uow.select("account", fields=("id", "name")).where(condition).all())
        assert uow.query("account").count() == 1  # the unit of work still works


# -- the cursor decoder ----------------------------------------------------------------------------------


def encoded(payload: Any) -> str:
    try:
        text = json.dumps(payload, default=str)
    except (ValueError, TypeError, RecursionError):
        text = "{"
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


@FUZZ
@given(order=st.sampled_from([(), ("name",), ("-employees",), ("annual_revenue",), ("created_at",)]),
       cursor=st.one_of(ANY_TEXT, HOSTILE, st.builds(lambda k, v: encoded({"k": k, "v": v}),
                                                      st.lists(ANY_TEXT, max_size=3), st.lists(VALUES, max_size=3)),
                        st.builds(lambda v: encoded({"k": ["id"], "v": [v]}), VALUES),
                        st.builds(lambda v: encoded({"k": ["name", "id"], "v": [v, 1]}), VALUES)))
def test_the_cursor_decoder_pages_or_refuses_anything(crm: Any, order: tuple[str, ...], cursor: Any) -> None:
    with crm.unit_of_work() as uow:
        survives(lambda: uow.query("account").order_by(*order).page(2, after=cursor))
        assert uow.query("account").count() == 1


# -- the CSV reader -----------------------------------------------------------------------------------------


ROWS = st.lists(st.lists(st.one_of(ANY_TEXT, HOSTILE.filter(lambda v: isinstance(v, str))), min_size=1, max_size=4),
                max_size=4)


@FUZZ
@given(header=st.lists(st.sampled_from(["name", "Company", "E-mail Address", "employees", "annual_revenue",
                                        "fuzz_json", "fuzz_date", "id", "Pager", "", "\x00", "name"]),
                       min_size=1, max_size=4),
       rows=ROWS, raw=st.binary(max_size=64), delimiter=st.sampled_from([",", ";", "\t"]),
       encoding=st.sampled_from([None, "utf-8", "latin-1", "utf-16"]))
def test_the_csv_reader_imports_or_refuses_any_file_whole(crm: Any, tmp_path_factory: pytest.TempPathFactory,
                                                           header: list[str], rows: list[list[str]], raw: bytes,
                                                           delimiter: str, encoding: str | None) -> None:
    path = Path(tmp_path_factory.mktemp("fuzz")) / "in.csv"
    lines = [delimiter.join(header), *(delimiter.join(cells) for cells in rows)]
    text = "\n".join(lines).encode("utf-8", "surrogatepass") + raw
    path.write_bytes(text)
    accounts, version = state(crm)
    reports: list[Any] = []
    survives(lambda: reports.append(import_file(crm, "account", path, encoding=encoding, delimiter=delimiter)))
    created = reports[0].created if reports else 0  # an import that fails writes nothing
    assert state(crm) == (accounts + created, version)
