"""Hostile queries: tampered page cursors, ids, limits and numbers beyond a column's range, NUL
and lone surrogates in filter values, and deeply nested filters, each refused with a clear
error, identically on both databases."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from crmcore import NotFoundError, ValidationError
from crmcore.query.conditions import MAX_NESTING


def cursor(payload: Any) -> str:
    text = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


@pytest.fixture
def crm(crm_factory: Any) -> Any:
    app = crm_factory()
    with app.unit_of_work() as uow:
        for name in ("Acme", "Globex", "Initech"):
            uow.create("account", name=name, employees=10)
        uow.commit()
    return app


def nested(kind: str, depth: int) -> Any:
    condition: Any = ("name", "=", "Acme")
    for _ in range(depth):
        condition = {"not": condition} if kind == "not" else {kind: [condition]}
    return condition


# -- page cursors ---------------------------------------------------------------------------------


def test_a_cursor_of_a_previous_page_still_reads_the_next(crm: Any) -> None:
    with crm.unit_of_work() as uow:
        query = uow.query("account").order_by("name")
        first = query.page(2)
        second = query.page(2, after=first.next_cursor)
    assert [r.name for r in (*first, *second)] == ["Acme", "Globex", "Initech"]


@pytest.mark.parametrize(("order", "payload", "message"), [
    (("id",), {"k": ["id"], "v": [10**30]}, r"id: the page cursor holds a value this field cannot hold"),
    (("id",), {"k": ["id"], "v": ["abc"]}, r"id: the page cursor holds a value"),
    (("id",), {"k": ["id"], "v": [None]}, r"id: the page cursor holds a value .*empty"),
    (("name",), {"k": ["name", "id"], "v": ["Acme\u0000", 1]}, r"name: the page cursor .*NUL"),
    (("name",), {"k": ["name", "id"], "v": ["Acme\ud800", 1]}, r"name: the page cursor .*surrogate"),
    (("name",), {"k": ["name", "id"], "v": [{"D": "2026-99-99"}, 1]}, r"cannot read page cursor"),
    (("employees",), {"k": ["employees", "id"], "v": [2**64, 1]}, r"employees: the page cursor"),
    (("employees",), {"k": ["employees", "id"], "v": [1.5, 1]}, r"cannot read page cursor"),
    (("id",), {"k": ["name", "id"], "v": ["Acme", 1]}, r"belongs to a query sorted by"),
    (("id",), [1, 2], r"cannot read page cursor"),
    (("id",), b'{"k":["id"],"v":[NaN]}', r"cannot read page cursor"),
    (("id",), b'{"k":["id"],"v":' + b"[" * 100_000 + b"]" * 100_000 + b"}", r"cannot read page cursor"),
    (("id",), b"\xff\xfe", r"cannot read page cursor"),
])
def test_a_tampered_cursor_is_a_clear_error(crm: Any, order: tuple[str, ...], payload: Any, message: str) -> None:
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match=message):
        uow.query("account").order_by(*order).page(1, after=cursor(payload))


@pytest.mark.parametrize("value", [5, None, "x" * 200_000, "not base64 !"])
def test_a_cursor_that_is_no_cursor_is_a_clear_error(crm: Any, value: Any) -> None:
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="cannot read page cursor"):
        uow.query("account").page(1, after=value if value is not None else "")


# -- ids, limits and numbers beyond a column's range ------------------------------------------------


@pytest.mark.parametrize("record_id", [99999999999999999999999, 2**31, 2**63, "99999999999999999999999", -(2**40)])
def test_an_id_beyond_the_column_is_not_found(crm: Any, record_id: Any) -> None:
    with crm.unit_of_work() as uow:
        with pytest.raises(NotFoundError, match="ids are whole numbers from 1 to 2147483647"):
            uow.get("account", record_id)
        assert uow.query("account").count() == 3


@pytest.mark.parametrize("condition", [
    ("id", "=", 10**20), ("id", "=", 2**31), "id>99999999999999999999999", ("id", "in", [1, 2**40]),
    ("version", ">", 2**33), ("employees", ">", 2**63), ("employees", "between", (0, 10**30)),
    ("annual_revenue", ">", "9" * 30), ("annual_revenue", ">", "1e30 EUR"),
])
def test_a_filter_value_beyond_the_column_is_a_field_error(crm: Any, condition: Any) -> None:
    field = condition[0] if isinstance(condition, tuple) else "id"
    with crm.unit_of_work() as uow:
        with pytest.raises(ValidationError, match=rf"{field}: cannot filter with"):
            uow.query("account").where(condition).all()
        assert uow.query("account").where(("id", "<=", 2**31 - 1)).count() == 3  # the transaction is intact


@pytest.mark.parametrize("limit", [10**20, 2**63, -1, True, 1.5])
def test_a_limit_beyond_the_range_is_refused_on_queries_and_selects(crm: Any, limit: Any) -> None:
    with crm.unit_of_work() as uow:
        with pytest.raises(ValidationError, match=r"limit must be a whole number from 0 to 9223372036854775807"):
            uow.query("account").limit(limit)
        with pytest.raises(ValidationError, match=r"limit must be a whole number"):
            uow.select("account", fields=("id", "name")).limit(limit)
        assert len(uow.query("account").limit(2**63 - 1).all()) == 3


def test_crm_show_of_an_id_beyond_the_column_says_not_found(cli: Any) -> None:
    result = cli("show", "account", "99999999999999999999999")
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines() == [
        "error: account 99999999999999999999999 not found: ids are whole numbers from 1 to 2147483647"]


def test_crm_list_with_a_huge_limit_is_one_clear_line(cli: Any) -> None:
    result = cli("list", "account", "--limit", str(10**20))
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert "limit must be a whole number from 0 to" in result.stderr


# -- NUL and lone surrogates ----------------------------------------------------------------------------


@pytest.mark.parametrize("condition", [
    ("name", "=", "Ac\x00me"), ("name", "=", "Ac\ud800me"), ("name", "contains", "\x00"),
    ("name", "contains", "A\udfff"), ("name", "startswith", "\ud800"), "name^\ud800", "name~\x00x",
    ("name", "in", ["Acme", "\udc80"]), ("email", "=", "a\ud800@example.com"), ("description", "contains", "x\x00"),
    ("website", "startswith", "\x00"), ("phone", "=", "\ud800 555 1234"),
])
def test_nul_and_lone_surrogates_in_filter_values_are_refused(crm: Any, condition: Any) -> None:
    field = condition[0] if isinstance(condition, tuple) else "name"
    with crm.unit_of_work() as uow:
        for run in (lambda: uow.query("account").where(condition).all(),
                    lambda: uow.select("account", fields=("id", "name")).where(condition).all(),
                    lambda: uow.query("account").where(condition).aggregate(group_by=["name"])):
            with pytest.raises(ValidationError, match=rf"{field}: .*(NUL|surrogate|expected)"):
                run()
        assert uow.query("account").where(name="Acme").count() == 1


def test_a_lone_surrogate_is_refused_in_stored_text_too(crm: Any) -> None:
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match=r"name: .*lone surrogate .*position 3"):
        uow.create("account", name="Ac\ud800me")
    with crm.unit_of_work() as uow:
        assert uow.query("account").count() == 3


# -- nesting --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["not", "all", "any"])
def test_filter_groups_nest_to_a_limit(crm: Any, kind: str) -> None:
    with crm.unit_of_work() as uow:
        matching = 2 if kind == "not" and MAX_NESTING % 2 else 1  # an even number of nots cancels out
        assert uow.query("account").where(nested(kind, MAX_NESTING)).count() == matching
        for depth in (MAX_NESTING + 1, 50_000):
            with pytest.raises(ValidationError, match=f"nest more than {MAX_NESTING} levels deep"):
                uow.query("account").where(nested(kind, depth))
            with pytest.raises(ValidationError, match=f"nest more than {MAX_NESTING} levels deep"):
                uow.select("account", fields=("id",)).where(nested(kind, depth))


def test_a_deep_value_in_a_filter_is_shown_short(crm: Any) -> None:
    deep: Any = []
    for _ in range(50_000):
        deep = [deep]
    with crm.unit_of_work() as uow:
        with pytest.raises(ValidationError, match="nested too deep to show"):
            uow.query("account").where(("name", "=", deep))
        with pytest.raises(ValidationError, match="nested too deep to show"):
            uow.query("account").where({"bad": deep})
        with pytest.raises(ValidationError, match="nested too deep to show"):
            uow.query("account").where((deep, "=", 1))
