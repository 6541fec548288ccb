"""``crm import`` and ``crm export``: exit codes, messages, options and the progress bar, on the
database under test (an SQLite file, or an isolated PostgreSQL schema)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import click.testing
import pytest
import sqlalchemy as sa

from crmcore.testing import run_crm

pytestmark = pytest.mark.usefixtures("crm_workdir")


@pytest.fixture
def db(crm_factory: Any) -> str:
    url: str = crm_factory.database_url(file=True)
    crm_factory(database=url)
    return url


def lead_names(db: str) -> list[str]:
    engine = sa.create_engine(db)
    try:
        with engine.connect() as connection:
            return [r[0] for r in connection.execute(sa.text("SELECT last_name FROM crm_lead ORDER BY id"))]
    finally:
        engine.dispose()


def write(path: str, text: str, encoding: str = "utf-8") -> str:
    Path(path).write_bytes(text.encode(encoding))
    return path


def test_import_prints_a_summary_and_exits_0(db: str) -> None:
    write("leads.csv", "First Name,Last Name,Email\nAda,Lovelace,ada@example.com\nGrace,Hopper,\n")
    result = run_crm("--db", db, "import", "lead", "leads.csv")
    assert result.exit_code == 0, result.output
    assert result.stdout == "lead import from leads.csv: 2 rows read, 2 created\n"
    assert result.stderr == ""
    assert lead_names(db) == ["Lovelace", "Hopper"]


def test_an_invalid_row_lists_the_errors_writes_nothing_and_exits_1(db: str) -> None:
    write("leads.csv", "last_name,email,score\nLovelace,ada@example.com,1\nHopper,grace@,x\n")
    result = run_crm("--db", db, "import", "lead", "leads.csv")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "row 2 (line 3), column 'email', value 'grace@': expected an e-mail address such as 'ada@example.com', got 'grace@'",
        "row 2 (line 3), column 'score', value 'x': expected a whole number, got 'x'",
        "error: 1 invalid row of 2 in leads.csv; nothing was imported. Correct the file, or use --skip-invalid to import the valid rows",
    ]
    assert lead_names(db) == []


def test_skip_invalid_writes_the_rest_and_the_rejects_file(db: str) -> None:
    write("leads.csv", "last_name,email\nLovelace,ada@example.com\n,nobody@example.com\n")
    result = run_crm("--db", db, "import", "lead", "leads.csv", "--skip-invalid", "--rejects", "bad.csv")
    assert result.exit_code == 0
    assert result.stdout == "lead import from leads.csv: 2 rows read, 1 created, 1 invalid; invalid rows written to bad.csv\n"
    assert result.stderr == "row 2 (line 3), column 'last_name', value '': is required\n"
    assert Path("bad.csv").read_text(encoding="utf-8").splitlines() == [
        "last_name,email,error", ",nobody@example.com,last_name: is required",
    ]
    assert lead_names(db) == ["Lovelace"]


def test_map_and_ignored_columns(db: str) -> None:
    write("leads.csv", "Family,Notes,Shoe\nLovelace,hello,38\n")
    result = run_crm("--db", db, "import", "lead", "leads.csv", "--map", "Family=last_name", "--map", "Notes=description", "--map", "Shoe=")
    assert result.exit_code == 0, result.output
    assert result.stderr == "columns not imported: Shoe\n"
    bad = run_crm("--db", db, "import", "lead", "leads.csv", "--map", "Family")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: --map 'Family': expected COLUMN=FIELD")


def test_unknown_columns_are_one_clear_error(db: str) -> None:
    write("leads.csv", "last_name,Shoe size\nLovelace,38\n")
    result = run_crm("--db", db, "import", "lead", "leads.csv")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: leads.csv: unknown column 'Shoe size' for lead")


def test_encoding_error_and_encoding_option(db: str) -> None:
    write("latin.csv", "last_name\nMüller\n", encoding="latin-1")
    result = run_crm("--db", db, "import", "lead", "latin.csv")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: latin.csv: not valid UTF-8: byte 11 (line 2) is b'\\xfc'")
    assert "--encoding" in line
    assert run_crm("--db", db, "import", "lead", "latin.csv", "--encoding", "latin-1").exit_code == 0
    assert lead_names(db) == ["Müller"]


def test_duplicate_options(db: str) -> None:
    write("a.csv", "last_name,email\nLovelace,ada@example.com\n")
    write("b.csv", "last_name,email\nByron,ada@example.com\nHopper,grace@example.com\n")
    assert run_crm("--db", db, "import", "lead", "a.csv").exit_code == 0
    refused = run_crm("--db", db, "import", "lead", "b.csv", "--dedupe-on", "email")
    assert refused.exit_code == 1 and "duplicate of lead 1 (email 'ada@example.com')" in refused.stderr
    skipped = run_crm("--db", db, "import", "lead", "b.csv", "--dedupe-on", "email", "--on-duplicate", "skip")
    assert skipped.stdout == "lead import from b.csv: 2 rows read, 1 created, 1 duplicate skipped\n"
    updated = run_crm("--db", db, "import", "lead", "b.csv", "--dedupe-on", "email", "--on-duplicate", "update")
    assert updated.stdout == "lead import from b.csv: 2 rows read, 0 created, 1 updated, 1 unchanged\n"
    assert lead_names(db) == ["Byron", "Hopper"]
    alone = run_crm("--db", db, "import", "lead", "b.csv", "--on-duplicate", "skip")
    assert alone.exit_code == 1 and "--dedupe-on" in alone.stderr


def test_json_import_from_the_extension(db: str) -> None:
    write("leads.json", json.dumps([{"last_name": "Lovelace"}, {"Last name": "Hopper"}]))
    assert run_crm("--db", db, "import", "lead", "leads.json").exit_code == 0
    write("leads.txt", '{"last_name": "Byron"}\n')
    assert run_crm("--db", db, "import", "lead", "leads.txt", "--format", "jsonl").exit_code == 0
    assert lead_names(db) == ["Lovelace", "Hopper", "Byron"]


def test_a_missing_file_is_one_clear_error(db: str) -> None:
    result = run_crm("--db", db, "import", "lead", "nowhere.csv")
    assert result.exit_code == 1
    assert result.stderr == "error: cannot read 'nowhere.csv': No such file or directory; check the path\n"


def test_progress_is_quiet_when_piped(db: str) -> None:
    write("leads.csv", "last_name\n" + "".join(f"L{n}\n" for n in range(50)))
    result = run_crm("--db", db, "import", "lead", "leads.csv", "--batch-size", "10")
    assert result.exit_code == 0
    assert result.stderr == ""


def test_progress_shows_on_a_terminal(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True, raising=False)
    write("leads.csv", "last_name\n" + "".join(f"L{n}\n" for n in range(50)))
    result = run_crm("--db", db, "import", "lead", "leads.csv", "--batch-size", "10")
    assert result.exit_code == 0
    assert "importing lead" in result.stderr and "100%" in result.stderr
    assert result.stdout == "lead import from leads.csv: 50 rows read, 50 created\n"


def test_export_to_standard_output_and_to_a_file(db: str) -> None:
    write("leads.csv", "last_name,score,email\nLovelace,5,ada@example.com\nHopper,90,\n")
    run_crm("--db", db, "import", "lead", "leads.csv")
    result = run_crm("--db", db, "export", "lead")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["id"], r["last_name"], r["score"]) for r in rows] == [("1", "Lovelace", "5"), ("2", "Hopper", "90")]
    assert result.stderr == "exported 2 lead records to standard output (csv)\n"
    filtered = run_crm("--db", db, "export", "lead", "--where", "score>10", "-o", "big.json")
    assert filtered.exit_code == 0
    assert filtered.stdout == "exported 1 lead record to big.json (json)\n"
    assert [r["last_name"] for r in json.loads(Path("big.json").read_text(encoding="utf-8"))] == ["Hopper"]
    bad = run_crm("--db", db, "export", "lead", "--where", "shoe=38")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: ") and "shoe" in bad.stderr


def test_exported_csv_imports_back(db: str, crm_factory: Any) -> None:
    write("leads.csv", "last_name,score,description\nLovelace,5,\"two\nlines\"\n")
    run_crm("--db", db, "import", "lead", "leads.csv")
    assert run_crm("--db", db, "export", "lead", "-o", "out.csv").exit_code == 0
    other: str = crm_factory.database_url(file=True)
    crm_factory(database=other)
    result = run_crm("--db", other, "import", "lead", "out.csv")
    assert result.exit_code == 0, result.output
    assert result.stderr == "columns not imported: id\n"
    # the workflow stamps a re-created lead with the time it entered its status
    drop = {"status_entered_at"}
    again = [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(io.StringIO(run_crm("--db", other, "export", "lead").stdout))]
    first = [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(io.StringIO(run_crm("--db", db, "export", "lead").stdout))]
    assert again == first and first[0]["description"] == "two\nlines"
