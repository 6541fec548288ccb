"""``crm list`` and ``crm report`` through click's ``CliRunner``, on the database under test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmcore import PluginInfo, hookimpl
from crmcore.cli import CliState, main
from crmcore.fields import Choice, Field

OPPORTUNITIES = [
    dict(name="Alpha", amount="100.00", stage="won", close_date="2026-01-10", probability=90, region="north", priority=1),
    dict(name="Beta", amount="250.50", stage="lost", close_date="2026-02-01", probability=10, region="south", priority=2),
    dict(name="Gamma", amount=None, stage="rfp_received", close_date=None, region=None),
    dict(name="Delta", amount="250.50 EUR", stage="won", close_date="2026-03-15", probability=50, region="north", priority=3),
    dict(name="Epsilon with a rather long name that will not fit in one cell", amount="60000", stage="won",
         close_date="2026-01-10", region="south", priority=5),
]

SETTINGS = """\
[custom_fields.opportunity]
priority = { type = "integer" }
"""


class SalesPlugin:
    PLUGIN = PluginInfo(name="sales")

    @hookimpl
    def crm_entity_fields(self, entity_type: str) -> list[Field] | None:
        if entity_type == "opportunity":
            return [Field("region", Choice("north", "south"))]
        return None


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_PLUGINS", raising=False)
    (tmp_path / "crm.toml").write_text(SETTINGS)


@pytest.fixture
def db(crm_factory: Any) -> str:
    """A database of the kind under test holding OPPORTUNITIES, created through the Python API."""
    url: str = crm_factory.database_url(file=True)
    app = crm_factory(plugins=[SalesPlugin()], settings={"custom_fields": {"opportunity": {"priority": {"type": "integer"}}}},
                      database=url)
    with app.unit_of_work() as uow:
        for values in OPPORTUNITIES:
            uow.create("opportunity", values)
        uow.commit()
    return url


def crm(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], obj=CliState(plugins=[SalesPlugin()]), catch_exceptions=False)


def ok(db: str, *args: str) -> str:
    result = crm(db, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(db: str, *args: str) -> str:
    result = crm(db, *args)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[-1]


# -- crm list ------------------------------------------------------------------------------------


def test_list_prints_an_aligned_table_of_id_title_and_first_fields(db: str) -> None:
    assert ok(db, "list", "opportunity").splitlines() == [
        "id  name                                            amount  close_date  stage         probability",
        " 1  Alpha                                       100.00 USD  2026-01-10  won                    90",
        " 2  Beta                                        250.50 USD  2026-02-01  lost                   10",
        " 3  Gamma                                                               rfp_received",
        " 4  Delta                                       250.50 EUR  2026-03-15  won                    50",
        " 5  Epsilon with a rather long name that wi…  60000.00 USD  2026-01-10  won",
    ]


def test_list_filters_sorts_limits_and_picks_fields(db: str) -> None:
    out = ok(db, "list", "opportunity", "--where", "amount>100", "--where", "stage=won", "--sort", "-amount",
             "--fields", "name,amount,priority,region")
    assert out.splitlines() == [
        "name                                            amount  priority  region",
        "Epsilon with a rather long name that wi…  60000.00 USD         5  south",
        "Delta                                       250.50 EUR         3  north",
    ]
    result = crm(db, "list", "opportunity", "--sort", "close_date", "--sort", "-id", "--limit", "2", "--fields", "id")
    assert result.stdout.split() == ["id", "5", "1"]
    assert "showing the first 2 opportunities; narrow with --where or raise --limit (0 for all)" in result.stderr


def test_list_filters_on_plugin_and_custom_fields_and_text(db: str) -> None:
    assert ok(db, "list", "opportunity", "--where", "region=north", "--where", "priority>1", "--fields", "name").split() == [
        "name", "Delta"]
    assert ok(db, "list", "opportunity", "--where", "name~ETA", "--fields", "name").split() == ["name", "Beta"]
    assert ok(db, "list", "opportunity", "--where", "name^al", "--fields", "name").split() == ["name", "Alpha"]
    assert ok(db, "list", "opportunity", "--where", "close_date is null", "--fields", "name").split() == ["name", "Gamma"]
    assert ok(db, "list", "opportunity", "--where", "stage in won,lost", "--where", "amount between 100..300",
              "--fields", "name").split() == ["name", "Alpha", "Beta", "Delta"]


def test_list_json_is_an_array_of_records_in_their_json_form(db: str) -> None:
    data = json.loads(ok(db, "list", "opportunity", "--where", "stage=won", "--sort", "-close_date", "--json"))
    assert [r["name"] for r in data] == ["Delta", "Alpha", OPPORTUNITIES[4]["name"]]  # ties by id
    assert data[0]["amount"] == {"amount": "250.50", "currency": "EUR"}
    assert data[0]["close_date"] == "2026-03-15" and data[0]["region"] == "north" and data[0]["priority"] == 3
    picked = json.loads(ok(db, "list", "opportunity", "--fields", "id,amount", "--limit", "1", "--json"))
    assert picked == [{"id": 1, "amount": {"amount": "100.00", "currency": "USD"}}]
    assert json.loads(ok(db, "list", "opportunity", "--where", "amount>1000000", "--json")) == []


def test_list_says_when_nothing_matches(db: str) -> None:
    assert ok(db, "list", "opportunity", "--where", "amount>1000000") == "no opportunities found\n"


@pytest.mark.parametrize(("args", "message"), [
    (("--where", "amout>5"), "amout: unknown field; the fields of opportunity are: id, version"),
    (("--where", "amount>>5"), "amount: cannot filter with '>' on '>5'"),
    (("--where", "amount"), "cannot read filter 'amount': expected FIELD OPERATOR VALUE"),
    (("--where", "probability~5"), "probability: operator 'contains' does not apply to a integer field"),
    (("--where", "stage=closed"), "stage: cannot filter with '=' on 'closed'"),
    (("--sort", "-nope"), "nope: unknown field"),
    (("--fields", "name,nope"), "opportunity has no field 'nope'; its fields are: name"),
])
def test_list_errors_are_one_line_naming_the_problem(db: str, args: tuple[str, ...], message: str) -> None:
    line = fails(db, "list", "opportunity", *args)
    assert line.startswith("error: ")
    assert message in line


def test_list_of_an_unknown_entity_lists_the_known_ones(db: str) -> None:
    assert "unknown entity type 'opportunities'; known: account" in fails(db, "list", "opportunities")


# -- crm report ----------------------------------------------------------------------------------


def test_report_counts_and_sums_per_group_split_by_currency(db: str) -> None:
    assert ok(db, "report", "opportunity", "--group-by", "stage", "--sum", "amount").splitlines() == [
        "stage         amount_currency  count    sum_amount",
        "lost          USD                  1    250.50 USD",
        "rfp_received  (none)               1",
        "won           EUR                  1    250.50 EUR",
        "won           USD                  2  60100.00 USD",
    ]


def test_report_with_two_groups_averages_and_a_filter(db: str) -> None:
    out = ok(db, "report", "opportunity", "--group-by", "region", "--group-by", "stage", "--avg", "priority",
             "--max", "close_date", "--where", "stage!=rfp_received")
    assert out.splitlines() == [
        "region  stage  count  avg_priority  max_close_date",
        "north   won        2          2.00  2026-03-15",
        "south   lost       1          2.00  2026-02-01",
        "south   won        1          5.00  2026-01-10",
    ]


def test_report_without_groups_gives_totals(db: str) -> None:
    assert ok(db, "report", "opportunity").splitlines() == ["count", "    5"]


def test_report_json_keeps_exact_values(db: str) -> None:
    rows = json.loads(ok(db, "report", "opportunity", "--group-by", "stage", "--sum", "amount", "--avg", "amount",
                         "--where", "stage=won", "--json"))
    assert rows == [
        {"stage": "won", "amount_currency": "EUR", "count": 1, "sum_amount": {"amount": "250.50", "currency": "EUR"},
         "avg_amount": {"amount": "250.50", "currency": "EUR"}},
        {"stage": "won", "amount_currency": "USD", "count": 2, "sum_amount": {"amount": "60100.00", "currency": "USD"},
         "avg_amount": {"amount": "30050.00", "currency": "USD"}},
    ]


def test_report_says_when_nothing_matches(db: str) -> None:
    assert ok(db, "report", "opportunity", "--group-by", "stage", "--where", "amount>1000000") == "no opportunities found\n"


@pytest.mark.parametrize(("args", "message"), [
    (("--group-by", "stag"), "stag: unknown field"),
    (("--sum", "stage"), "stage: cannot take the sum of a choice field"),
    (("--group-by", "amount"), "cannot group by a money field; group by amount_currency"),
    (("--where", "stage in"), "'in' takes values separated by commas"),
])
def test_report_errors_are_one_line_naming_the_problem(db: str, args: tuple[str, ...], message: str) -> None:
    assert message in fails(db, "report", "opportunity", *args)
