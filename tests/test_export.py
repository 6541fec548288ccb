"""Export: columns, value forms, filters, streaming, and the round trip export -> import into an
empty database, on the database under test (SQLite, or PostgreSQL with
``CRM_TEST_DATABASE_URL``)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from pathlib import Path
from typing import Any

import pytest

from crmcore import Money, PluginInfo, ValidationError, hookimpl
from crmcore.app import Crm
from crmcore.fields import Choice, DateTime, Decimal, Field
from crmcore.registry import SYSTEM_FIELD_NAMES
from crmcore.transfer import export, import_file


class Extra:
    """A plugin adding fields to the core's opportunity."""

    PLUGIN = PluginInfo(name="extra")

    @hookimpl
    def crm_entity_fields(self, entity_type: str) -> list[Field] | None:
        if entity_type == "opportunity":
            return [
                Field("region", Choice("emea", "amer", "apac")),
                Field("signed_at", DateTime()),
                Field("discount", Decimal(scale=3)),
            ]
        return None


SETTINGS = {
    "crm": {"currency": "USD", "timezone": "Europe/Paris"},
    "custom_fields": {
        "opportunity": {
            "budget": {"type": "money", "currency": "EUR"},
            "channels": {"type": "multi_choice", "choices": ["web", "phone", "mail"]},
            "meta": {"type": "json"},
            "vip": {"type": "boolean"},
            "kickoff": {"type": "date"},
            "notes2": {"type": "text", "label": "Long notes"},
        },
    },
}


def make_app(crm_factory: Any) -> Crm:
    return crm_factory(plugins=[Extra()], settings=SETTINGS)  # type: ignore[no-any-return]


def populate(crm: Crm) -> None:
    with crm.unit_of_work() as uow:
        ada = uow.create("user", username="ada", full_name="Ada Lovelace", email="ada@example.com")
        bob = uow.create("user", username="bob", active=False)
        uow.delete(uow.create("user", username="gone"))  # a gap in the ids
        parent = uow.create("account", name="Acme Holding", owner_id=bob.id, annual_revenue="1000000 USD")
        acme = uow.create("account", name="Acme, Inc.", parent_id=parent.id, owner_id=ada.id, website="acme.test",
                          description="Line one\nLine two, with \"quotes\"")
        uow.create("opportunity", name="Big deal", account_id=acme.id, owner_id=ada.id, amount="1234.5 EUR",
                   close_date="2026-06-30", stage="rfp_received", probability=40, region="emea",
                   signed_at="2026-03-31T14:30:00+02:00", discount="0.125", budget="99.99", channels="mail;web",
                   meta={"tier": [1, 2], "note": "é"}, vip=True, kickoff="2026-04-01", notes2="  kept  ")
        uow.create("opportunity", name="Small deal", account_id=parent.id, amount="10 USD", stage="won", vip=False, close_date="2026-01-15",
                   meta=json.dumps("just text"))
        uow.create("opportunity", name="Empty deal", account_id=acme.id)
        uow.commit()


#: Set by the workflow when a record is created (the time it entered its first stage), so a
#: re-created record carries the time of the import.
WORKFLOW_TIMES = frozenset({"status_entered_at", "stage_entered_at"})


def declared(crm: Crm, entity: str) -> list[dict[str, Any]]:
    """id and every declared field of every record of *entity*."""
    with crm.unit_of_work() as uow:
        return [
            {k: v for k, v in r.values.items() if (k not in SYSTEM_FIELD_NAMES or k == "id") and k not in WORKFLOW_TIMES}
            for r in uow.all(entity)
        ]


def exported(crm: Crm, entity: str, fmt: str = "csv", **options: Any) -> str:
    out = io.StringIO()
    export(crm, entity, out, format=fmt, **options)
    return out.getvalue()


def test_columns_are_id_and_every_declared_field(crm_factory: Any) -> None:
    crm = make_app(crm_factory)
    header = exported(crm, "opportunity").splitlines()[0].split(",")
    fields = crm.registry.entity("opportunity").field_names
    assert header == ["id", *fields]
    assert {"region", "signed_at", "discount", "budget", "channels", "meta", "vip", "kickoff"} <= set(header)


def test_csv_cells_use_each_type_text_form(crm_factory: Any) -> None:
    crm = make_app(crm_factory)
    populate(crm)
    rows = list(csv.DictReader(io.StringIO(exported(crm, "opportunity"))))
    big = rows[0]
    assert big["amount"] == "1234.50 EUR"
    assert big["budget"] == "99.99 EUR"
    assert big["signed_at"] == "2026-03-31T12:30:00+00:00"
    assert (big["discount"], big["channels"], big["vip"], big["kickoff"]) == ("0.125", "web;mail", "true", "2026-04-01")
    assert json.loads(big["meta"]) == {"tier": [1, 2], "note": "é"}
    assert (big["close_date"], big["stage"], big["probability"], big["region"]) == ("2026-06-30", "rfp_received", "40", "emea")
    assert rows[1]["vip"] == "false" and rows[1]["meta"] == '"just text"'
    assert all(rows[2][k] == "" for k in ("amount", "signed_at", "meta", "vip", "channels"))


def test_json_holds_each_type_json_form(crm_factory: Any) -> None:
    crm = make_app(crm_factory)
    populate(crm)
    big, small, empty = json.loads(exported(crm, "opportunity", "json"))
    assert big["amount"] == {"amount": "1234.50", "currency": "EUR"}
    assert (big["signed_at"], big["discount"], big["channels"], big["vip"]) == ("2026-03-31T12:30:00+00:00", "0.125", ["web", "mail"], True)
    assert big["meta"] == {"tier": [1, 2], "note": "é"} and small["meta"] == "just text"
    assert isinstance(big["id"], int) and isinstance(big["probability"], int)
    assert empty["amount"] is None and empty["meta"] is None
    lines = exported(crm, "opportunity", "jsonl").splitlines()
    assert [json.loads(line) for line in lines] == [big, small, empty]


def test_an_empty_export_is_a_header_or_an_empty_array(crm: Crm) -> None:
    assert exported(crm, "tag") == "id,name,color\n"
    assert json.loads(exported(crm, "tag", "json")) == []
    assert exported(crm, "tag", "jsonl") == ""


def test_where_filters_as_the_query_api_does(crm_factory: Any) -> None:
    crm = make_app(crm_factory)
    populate(crm)
    names = [r["name"] for r in csv.DictReader(io.StringIO(exported(crm, "opportunity", where=["amount>100"])))]
    assert names == ["Big deal"]
    names = [r["name"] for r in csv.DictReader(io.StringIO(exported(crm, "opportunity", where=["vip is not null", "name~deal"])))]
    assert names == ["Big deal", "Small deal"]
    with pytest.raises(ValidationError, match="colour"):
        exported(crm, "opportunity", where=["colour=red"])


def test_an_export_streams_past_one_batch(crm: Crm, tmp_path: Path) -> None:
    source = tmp_path / "many.csv"
    source.write_text("last_name,score\n" + "".join(f"L{n},{n}\n" for n in range(4500)), encoding="utf-8")
    import_file(crm, "lead", source)
    target = tmp_path / "out.jsonl"
    report = export(crm, "lead", target)
    assert report.records == 4500
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["score"] for line in lines] == list(range(4500))


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_then_import_into_an_empty_database_gives_identical_records(crm_factory: Any, tmp_path: Path, fmt: str) -> None:
    source = make_app(crm_factory)
    populate(source)
    target = make_app(crm_factory)
    for entity in ("user", "account", "opportunity"):
        path = tmp_path / f"{entity}.{fmt}"
        export(source, entity, path)
        import_file(target, entity, path, keep_ids=True)
    for entity in ("user", "account", "opportunity"):
        assert declared(target, entity) == declared(source, entity), entity
    big = declared(target, "opportunity")[0]
    assert big["amount"] == Money(decimal.Decimal("1234.50"), "EUR")
    assert big["signed_at"] == dt.datetime(2026, 3, 31, 12, 30, tzinfo=dt.UTC)
    assert big["discount"] == decimal.Decimal("0.125") and big["channels"] == ("web", "mail")
    with target.unit_of_work() as uow:  # new records continue after the imported ids
        assert uow.create("user", username="carol").id > 2


def test_without_keep_ids_records_get_new_ids_and_the_same_values(crm: Crm, crm_factory: Any, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("last_name,score\nA,1\nB,2\nC,3\n", encoding="utf-8")
    import_file(crm, "lead", path)
    with crm.unit_of_work() as uow:
        uow.delete("lead", 1)
        uow.commit()
    export(crm, "lead", tmp_path / "out.csv")
    other = crm_factory()
    import_file(other, "lead", tmp_path / "out.csv")
    strip = [{k: v for k, v in r.items() if k != "id"} for r in declared(crm, "lead")]
    assert [{k: v for k, v in r.items() if k != "id"} for r in declared(other, "lead")] == strip
    assert [r["id"] for r in declared(other, "lead")] == [1, 2]
