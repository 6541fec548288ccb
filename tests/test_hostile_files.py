"""Hostile files: spreadsheet formulas in CSV exports, NUL, bad --encoding and --delimiter,
unwritable output paths and files with thousands of bad columns."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmcore import ValidationError
from crmcore.cli import main
from crmcore.transfer import export, import_file
from crmcore.transfer.exporter import neutralise, restore

NAMES = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1 555", "-2+3", "@SUM(A1)", "'=quoted", "O'Hara", "plain"]


def accounts(crm: Any, names: list[str] = NAMES) -> None:
    with crm.unit_of_work() as uow:
        for name in names:
            uow.create("account", name=name, employees=-5)
        uow.commit()


def csv_rows(crm: Any, **options: Any) -> list[dict[str, str]]:
    out = io.StringIO()
    export(crm, "account", out, format="csv", **options)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def cli(db: str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", db, *args], catch_exceptions=False)


@pytest.fixture
def db(crm_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    url: str = crm_factory.database_url(file=True)
    crm_factory(database=url)
    return url


@pytest.mark.parametrize(("text", "written"), [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("'=1", "''=1"), ("''+1", "'''+1"), ("'plain", "'plain"), ("plain", "plain"), ("", ""), ("a\x00b", "a\ufffdb"),
])
def test_neutralise_and_restore_are_inverse(text: str, written: str) -> None:
    assert neutralise(text) == written
    assert restore(written) == text.replace("\x00", "\ufffd")


def test_csv_export_neutralises_formulas_in_text_cells_only(crm: Any) -> None:
    accounts(crm)
    rows = csv_rows(crm)
    assert [r["name"] for r in rows] == ["'" + NAMES[0], "'+1 555", "'-2+3", "'@SUM(A1)", "''=quoted", "O'Hara", "plain"]
    assert {r["employees"] for r in rows} == {"-5"}  # numbers are written as they are


def test_keep_formulas_writes_cells_as_they_are(crm: Any) -> None:
    accounts(crm)
    assert [r["name"] for r in csv_rows(crm, keep_formulas=True)] == NAMES


def test_a_neutralised_export_imports_back_unchanged(crm: Any, crm_factory: Any, tmp_path: Path) -> None:
    accounts(crm)
    path = tmp_path / "accounts.csv"
    export(crm, "account", path)
    target = crm_factory()
    import_file(target, "account", path)
    with target.unit_of_work() as uow:
        assert [a.name for a in uow.query("account").order_by("id").all()] == NAMES


def test_the_cli_neutralises_by_default_and_keeps_formulas_on_request(db: str) -> None:
    Path("in.csv").write_text("Name\n=1+1\n", encoding="utf-8")
    assert cli(db, "import", "account", "in.csv").exit_code == 0
    assert cli(db, "export", "account", "-o", "safe.csv").exit_code == 0
    assert cli(db, "export", "account", "-o", "raw.csv", "--keep-formulas").exit_code == 0
    for path, name in (("safe.csv", "'=1+1"), ("raw.csv", "=1+1")):
        with open(path, encoding="utf-8", newline="") as handle:
            assert [row["name"] for row in csv.DictReader(handle)] == [name]


def test_nul_stored_by_older_versions_is_never_written_raw(crm: Any) -> None:
    if crm.engine.dialect.name == "postgresql":
        pytest.skip("PostgreSQL never stores NUL in text; on it the field refusal is the whole story")
    accounts(crm, ["Acme"])
    with crm.engine.begin() as connection:
        connection.execute(sa.update(crm.registry.table("account")).values(name="Ac\x00me", description="=x\x00"))
    for options in ({}, {"keep_formulas": True}):
        out = io.StringIO()
        export(crm, "account", out, **options)
        assert "\x00" not in out.getvalue()
        assert "Ac\ufffdme" in out.getvalue()
    for fmt in ("json", "jsonl"):
        out = io.StringIO()
        export(crm, "account", out, format=fmt)
        assert "\x00" not in out.getvalue() and "\\u0000" in out.getvalue()


@pytest.mark.parametrize(("args", "message"), [
    (("import", "lead", "leads.csv", "--encoding", "nope"), "error: unknown encoding 'nope'"),
    (("import", "lead", "leads.csv", "--delimiter="), "error: the CSV delimiter must be one character"),
    (("import", "lead", "leads.csv", "--delimiter", ";;"), "error: the CSV delimiter must be one character"),
    (("export", "lead", "-o", "missing/folder/out.csv"), "error: cannot write 'missing/folder/out.csv': No such file"),
])
def test_bad_file_options_give_one_clear_line(db: str, args: tuple[str, ...], message: str) -> None:
    Path("leads.csv").write_text("Last Name\nLovelace\n", encoding="utf-8")
    result = cli(db, *args)
    assert result.exit_code != 0
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_the_python_api_refuses_a_bad_delimiter(crm: Any, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text("Last Name\nLovelace\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="delimiter must be one character.*got ''"):
        import_file(crm, "lead", path, delimiter="")


@pytest.mark.parametrize("header", [
    ",".join(["Last Name", *(f"bad{i}" for i in range(10_000))]),
    ",".join(["Last Name", *([""] * 10_000)]),
    ",".join(["Last Name"] * 10_000),
])
def test_a_file_with_10000_bad_columns_gives_a_short_report(db: str, header: str) -> None:
    Path("wide.csv").write_text(header + "\n" + ",".join(["x"] * header.count(",")) + ",x\n", encoding="utf-8")
    result = cli(db, "import", "lead", "wide.csv")
    assert result.exit_code != 0
    assert len(result.stderr) < 1500, result.stderr[:300]
    assert result.stderr.startswith("error: wide.csv:")
