"""``crm list`` and ``crm report`` through click's ``CliRunner``, on the database under test.

The records are accounts with a core money field, fields a throwaway plugin adds (region,
signed_on) and custom fields from ``crm.toml`` (status, priority).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from crmcore import PluginInfo, hookimpl
from crmcore.cli import CliState
from crmcore.fields import Choice, Date, Field
from crmcore.testing import crm_fails, crm_ok, run_crm

ACCOUNTS = [
    dict(name="Alpha", industry="Retail", annual_revenue="100.00", status="won", signed_on="2026-01-10", employees=90, region="north", priority=1),
    dict(name="Beta", industry="Energy", annual_revenue="250.50", status="lost", signed_on="2026-02-01", employees=10, region="south", priority=2),
    dict(name="Gamma", annual_revenue=None, status="rfp_received", signed_on=None, region=None),
    dict(name="Delta", annual_revenue="250.50 EUR", status="won", signed_on="2026-03-15", employees=50, region="north", priority=3),
    dict(name="Epsilon with a rather long name that will not fit in one cell", annual_revenue="60000", status="won",
         signed_on="2026-01-10", region="south", priority=5),
]

SETTINGS = """\
[custom_fields.account]
status = { type = "choice", choices = ["initiation", "rfp_received", "won", "lost"] }
priority = { type = "integer" }
"""


CUSTOM = {"custom_fields": {"account": {
    "status": {"type": "choice", "choices": ["initiation", "rfp_received", "won", "lost"]},
    "priority": {"type": "integer"},
}}}


class SalesPlugin:
    PLUGIN = PluginInfo(name="sales")

    @hookimpl
    def crm_entity_fields(self, entity_type: str) -> list[Field] | None:
        if entity_type == "account":
            return [Field("region", Choice("north", "south")), Field("signed_on", Date())]
        return None


@pytest.fixture(autouse=True)
def _in_tmp(crm_workdir: Path) -> None:
    (crm_workdir / "crm.toml").write_text(SETTINGS)


@pytest.fixture
def db(crm_factory: Any) -> str:
    """A database of the kind under test holding ACCOUNTS, created through the Python API."""
    url: str = crm_factory.database_url(file=True)
    app = crm_factory(plugins=[SalesPlugin()], settings=CUSTOM, database=url)
    with app.unit_of_work() as uow:
        for values in ACCOUNTS:
            uow.create("account", values)
        uow.commit()
    return url


def crm(db: str, *args: str) -> Result:
    return run_crm("--db", db, *args, obj=CliState(plugins=[SalesPlugin()]))


def ok(db: str, *args: str) -> str:
    return crm_ok("--db", db, *args, obj=CliState(plugins=[SalesPlugin()]))


def fails(db: str, *args: str) -> str:
    return crm_fails("--db", db, *args, obj=CliState(plugins=[SalesPlugin()]))


# -- crm list ------------------------------------------------------------------------------------


def test_list_prints_an_aligned_table_of_id_title_and_first_filled_fields(db: str) -> None:
    assert ok(db, "list", "account").splitlines() == [
        "id  name                                      industry  employees  annual_revenue  region",
        " 1  Alpha                                     Retail           90      100.00 USD  north",
        " 2  Beta                                      Energy           10      250.50 USD  south",
        " 3  Gamma",
        " 4  Delta                                                      50      250.50 EUR  north",
        " 5  Epsilon with a rather long name that wi…                         60000.00 USD  south",
    ]


def test_list_filters_sorts_limits_and_picks_fields(db: str) -> None:
    out = ok(db, "list", "account", "--where", "annual_revenue>100", "--where", "status=won", "--sort", "-annual_revenue",
             "--fields", "name,annual_revenue,priority,region")
    assert out.splitlines() == [
        "name                                      annual_revenue  priority  region",
        "Epsilon with a rather long name that wi…    60000.00 USD         5  south",
        "Delta                                         250.50 EUR         3  north",
    ]
    result = crm(db, "list", "account", "--sort", "signed_on", "--sort", "-id", "--limit", "2", "--fields", "id")
    assert result.stdout.split() == ["id", "5", "1"]
    assert "showing the first 2 accounts; narrow with --where or raise --limit (0 for all)" in result.stderr


def test_list_filters_on_plugin_and_custom_fields_and_text(db: str) -> None:
    assert ok(db, "list", "account", "--where", "region=north", "--where", "priority>1", "--fields", "name").split() == [
        "name", "Delta"]
    assert ok(db, "list", "account", "--where", "name~ETA", "--fields", "name").split() == ["name", "Beta"]
    assert ok(db, "list", "account", "--where", "name^al", "--fields", "name").split() == ["name", "Alpha"]
    assert ok(db, "list", "account", "--where", "signed_on is null", "--fields", "name").split() == ["name", "Gamma"]
    assert ok(db, "list", "account", "--where", "status in won,lost", "--where", "annual_revenue between 100..300",
              "--fields", "name").split() == ["name", "Alpha", "Beta", "Delta"]


def test_list_json_is_an_array_of_records_in_their_json_form(db: str) -> None:
    data = json.loads(ok(db, "list", "account", "--where", "status=won", "--sort", "-signed_on", "--json"))
    assert [r["name"] for r in data] == ["Delta", "Alpha", ACCOUNTS[4]["name"]]  # ties by id
    assert data[0]["annual_revenue"] == {"amount": "250.50", "currency": "EUR"}
    assert data[0]["signed_on"] == "2026-03-15" and data[0]["region"] == "north" and data[0]["priority"] == 3
    picked = json.loads(ok(db, "list", "account", "--fields", "id,annual_revenue", "--limit", "1", "--json"))
    assert picked == [{"id": 1, "annual_revenue": {"amount": "100.00", "currency": "USD"}}]
    assert json.loads(ok(db, "list", "account", "--where", "annual_revenue>1000000", "--json")) == []


def test_list_says_when_nothing_matches(db: str) -> None:
    assert ok(db, "list", "account", "--where", "annual_revenue>1000000") == "no accounts found\n"


@pytest.mark.parametrize(("args", "message"), [
    (("--where", "amout>5"), "amout: unknown field; the fields of account are: id, version"),
    (("--where", "annual_revenue>>5"), "annual_revenue: cannot filter with '>' on '>5'"),
    (("--where", "annual_revenue"), "cannot read filter 'annual_revenue': expected FIELD OPERATOR VALUE"),
    (("--where", "employees~5"), "employees: operator 'contains' does not apply to a integer field"),
    (("--where", "status=closed"), "status: cannot filter with '=' on 'closed'"),
    (("--sort", "-nope"), "nope: unknown field"),
    (("--fields", "name,nope"), "account has no field 'nope'; its fields are: name"),
])
def test_list_errors_are_one_line_naming_the_problem(db: str, args: tuple[str, ...], message: str) -> None:
    line = fails(db, "list", "account", *args)
    assert line.startswith("error: ")
    assert message in line


def test_list_of_an_unknown_entity_lists_the_known_ones(db: str) -> None:
    assert "unknown entity type 'accounts'; known: account" in fails(db, "list", "accounts")


# -- crm report ----------------------------------------------------------------------------------


def test_report_counts_and_sums_per_group_split_by_currency(db: str) -> None:
    assert ok(db, "report", "account", "--group-by", "status", "--sum", "annual_revenue").splitlines() == [
        "status        annual_revenue_currency  count  sum_annual_revenue",
        "lost          USD                          1          250.50 USD",
        "rfp_received  (none)                       1",
        "won           EUR                          1          250.50 EUR",
        "won           USD                          2        60100.00 USD",
    ]


def test_report_with_two_groups_averages_and_a_filter(db: str) -> None:
    out = ok(db, "report", "account", "--group-by", "region", "--group-by", "status", "--avg", "priority",
             "--max", "signed_on", "--where", "status!=rfp_received")
    assert out.splitlines() == [
        "region  status  count  avg_priority  max_signed_on",
        "north   won         2          2.00  2026-03-15",
        "south   lost        1          2.00  2026-02-01",
        "south   won         1          5.00  2026-01-10",
    ]


def test_report_without_groups_gives_totals(db: str) -> None:
    assert ok(db, "report", "account").splitlines() == ["count", "    5"]


def test_report_json_keeps_exact_values(db: str) -> None:
    rows = json.loads(ok(db, "report", "account", "--group-by", "status", "--sum", "annual_revenue", "--avg", "annual_revenue",
                         "--where", "status=won", "--json"))
    assert rows == [
        {"status": "won", "annual_revenue_currency": "EUR", "count": 1, "sum_annual_revenue": {"amount": "250.50", "currency": "EUR"},
         "avg_annual_revenue": {"amount": "250.50", "currency": "EUR"}},
        {"status": "won", "annual_revenue_currency": "USD", "count": 2, "sum_annual_revenue": {"amount": "60100.00", "currency": "USD"},
         "avg_annual_revenue": {"amount": "30050.00", "currency": "USD"}},
    ]


def test_report_says_when_nothing_matches(db: str) -> None:
    assert ok(db, "report", "account", "--group-by", "status", "--where", "annual_revenue>1000000") == "no accounts found\n"


@pytest.mark.parametrize(("args", "message"), [
    (("--group-by", "stag"), "stag: unknown field"),
    (("--sum", "status"), "status: cannot take the sum of a choice field"),
    (("--group-by", "annual_revenue"), "cannot group by a money field; group by annual_revenue_currency"),
    (("--where", "status in"), "'in' takes values separated by commas"),
])
def test_report_errors_are_one_line_naming_the_problem(db: str, args: tuple[str, ...], message: str) -> None:
    assert message in fails(db, "report", "account", *args)
