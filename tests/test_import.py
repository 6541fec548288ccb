"""Bulk import: parsing, atomicity, rejects, duplicates, references, encodings, headers, hooks,
audit and signals, on the database under test (SQLite, or PostgreSQL with
``CRM_TEST_DATABASE_URL``)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmcore import Actor, ValidationError, hookimpl
from crmcore.app import Crm
from crmcore.transfer import ImportFailedError, import_file, import_rows

LEADS = "First Name,Last Name,Email,Company,Score\n"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def leads_csv(tmp_path: Path, rows: list[str], header: str = LEADS, name: str = "leads.csv") -> Path:
    return write(tmp_path / name, header + "".join(r + "\n" for r in rows))


def count(crm: Crm, table: str, where: str = "") -> int:
    with crm.connect() as connection:
        return int(connection.execute(sa.text(f"SELECT count(*) FROM {table} {where}")).scalar_one())


def all_leads(crm: Crm) -> list[Any]:
    with crm.unit_of_work() as uow:
        return uow.all("lead")


@pytest.fixture
def statements(crm: Crm) -> Iterator[list[str]]:
    """The SQL statements *crm* runs while the test body runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(crm.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(crm.engine, "before_cursor_execute", record)


# -- the happy path ------------------------------------------------------------------------------


def test_rows_become_records_owned_by_the_importer(crm: Crm, make_user: Any, tmp_path: Path) -> None:
    ada = make_user(crm, "ada")
    path = leads_csv(tmp_path, ["Grace,Hopper,grace@navy.test,Navy,90", "Alan,Turing,alan@bletchley.test,GCHQ,"])
    report = import_file(crm, "lead", path, actor=ada)
    assert (report.rows, report.created, report.invalid, report.committed) == (2, 2, 0, True)
    leads = all_leads(crm)
    assert [(r.first_name, r.last_name, r.email, r.company, r.score) for r in leads] == [
        ("Grace", "Hopper", "grace@navy.test", "Navy", 90), ("Alan", "Turing", "alan@bletchley.test", "GCHQ", None),
    ]
    assert {r.owner_id for r in leads} == {ada.user_id}
    assert {(r.created_by, r.version, r.status) for r in leads} == {(ada.user_id, 1, "new")}


def test_an_imported_record_is_audited_like_a_single_create(crm: Crm, make_user: Any, tmp_path: Path) -> None:
    ada = make_user(crm, "ada")
    with crm.unit_of_work(ada) as uow:
        single = uow.create("lead", first_name="Grace", last_name="Hopper", email="grace@navy.test", company="Navy", score="90")
        uow.commit()
    import_file(crm, "lead", leads_csv(tmp_path, ["Grace,Hopper,grace@navy.test,Navy,90"]), actor=ada)
    imported = all_leads(crm)[-1]
    with crm.unit_of_work() as uow:
        (one,) = uow.history("lead", single.id)
        (two,) = uow.history("lead", imported.id)
    assert (two.action, two.actor_id, two.entity) == (one.action, one.actor_id, one.entity) == ("created", ada.user_id, "lead")
    assert two.changes.keys() == one.changes.keys()  # defaults included (time stamps differ)
    given = ("first_name", "last_name", "email", "company", "score", "owner_id", "status")
    assert {k: two.changes[k] for k in given} == {k: one.changes[k] for k in given}
    assert two.at == imported.created_at


def test_audit_rows_and_signals_equal_the_rows_imported(crm: Crm, captured_signals: Any, tmp_path: Path) -> None:
    rows = [f"F{n},L{n},p{n}@example.com,Co,{n}" for n in range(25)]
    with captured_signals("record-created", crm) as sent:
        report = import_file(crm, "lead", leads_csv(tmp_path, rows), batch_size=10)
    assert report.created == 25
    assert count(crm, "crm_audit", "WHERE entity = 'lead' AND action = 'created'") == 25
    leads = all_leads(crm)
    assert [e.record for e in sent] == leads
    assert all((e.action, e.entity, e.changes) == ("created", "lead", {}) for e in sent)


def test_each_audit_entry_describes_its_own_record(crm: Crm, tmp_path: Path) -> None:
    rows = [f"F{n},L{n},p{n}@example.com,Co {n % 7},{n}" for n in range(120)]
    import_file(crm, "lead", leads_csv(tmp_path, rows), batch_size=50)
    with crm.unit_of_work() as uow:
        for lead in uow.all("lead"):
            (entry,) = uow.history("lead", lead.id)
            assert entry.changes["last_name"] == (None, lead.last_name)
            assert entry.changes["score"] == (None, lead.score)
            assert lead.email == f"p{lead.score}@example.com"


def test_signals_are_not_sent_before_the_commit(crm: Crm, captured_signals: Any, tmp_path: Path) -> None:
    path = leads_csv(tmp_path, ["A,B,a@example.com,,"])
    with captured_signals("record-created", crm) as sent, crm.unit_of_work() as uow:
        import_rows(uow, "lead", [{"last_name": "Lovelace"}])
        assert sent == []
        uow.rollback()
    assert sent == [] and count(crm, "crm_lead") == 0
    import_file(crm, "lead", path)
    assert count(crm, "crm_lead") == 1


class Hooks:
    """Counts hook calls; sets a default source; vetoes leads named 'Veto'."""

    def __init__(self) -> None:
        self.before: list[list[str]] = []
        self.after: list[list[int]] = []

    @hookimpl
    def crm_before_create(self, entity: str, items: list[dict[str, Any]]) -> list[dict[str, Any] | None] | None:
        if entity != "lead":
            return None
        self.before.append([values["last_name"] for values in items])
        if any(values["last_name"] == "Veto" for values in items):
            raise ValidationError({"last_name": ["vetoed by the test plugin"]}, entity="lead")
        return [{"source": "import"}] * len(items)

    @hookimpl
    def crm_after_create(self, entity: str, records: list[Any]) -> None:
        if entity == "lead":
            self.after.append([record.id for record in records])


def test_hooks_run_per_batch_and_may_change_or_veto_rows(crm_factory: Any, tmp_path: Path) -> None:
    hooks = Hooks()
    crm = crm_factory(plugins=[hooks])
    path = leads_csv(tmp_path, ["A,One,,,", "B,Veto,,,", "C,Three,,,"])
    report = import_file(crm, "lead", path, skip_invalid=True)
    # refused: then row by row, each with the rows accepted before it
    assert hooks.before == [["One", "Veto", "Three"], ["One"], ["One", "Veto"], ["One", "Three"]]
    leads = all_leads(crm)
    assert hooks.after == [[r.id for r in leads]]
    assert [(r.last_name, r.source) for r in leads] == [("One", "import"), ("Three", "import")]
    (error,) = report.errors
    assert (error.row, error.column, error.value, error.message) == (2, "Last Name", "Veto", "vetoed by the test plugin")


class OneOfEachName:
    """Refuses a batch of leads in which two share a last name (a rule between rows)."""

    @hookimpl
    def crm_before_create(self, entity: str, items: list[dict[str, Any]]) -> None:
        names = [values["last_name"] for values in items] if entity == "lead" else []
        if len(set(names)) != len(names):
            raise ValidationError({"last_name": ["another row of the batch has this last name"]}, entity="lead")


def test_a_rule_between_the_rows_of_a_batch_rejects_the_later_row(crm_factory: Any, tmp_path: Path) -> None:
    crm = crm_factory(plugins=[OneOfEachName()])
    path = leads_csv(tmp_path, ["A,Same,,,", "B,Other,,,", "C,Same,,,"])
    with pytest.raises(ImportFailedError) as caught:
        import_file(crm, "lead", path)
    (error,) = caught.value.report.errors
    assert (error.row, error.value) == (3, "Same")
    assert count(crm, "crm_lead") == 0
    report = import_file(crm, "lead", path, skip_invalid=True)
    assert [r.last_name for r in all_leads(crm)] == ["Same", "Other"] and report.invalid == 1


# -- atomicity, the report and rejects -----------------------------------------------------------


def test_one_bad_row_writes_nothing_and_names_row_column_value(crm: Crm, captured_signals: Any, tmp_path: Path) -> None:
    path = leads_csv(tmp_path, ["A,One,a@example.com,,1", "B,Two,not-an-email,,2", "C,Three,c@example.com,,3"])
    with captured_signals("record-created", crm) as sent, pytest.raises(ImportFailedError) as caught:
        import_file(crm, "lead", path, batch_size=1)
    report = caught.value.report
    assert (report.rows, report.invalid, report.created, report.committed) == (3, 1, 0, False)
    (error,) = report.errors
    assert (error.row, error.line, error.column, error.field, error.value) == (2, 3, "Email", "email", "not-an-email")
    assert "e-mail address" in error.message
    assert "row 2 (line 3), column 'Email', value 'not-an-email'" in str(caught.value)
    assert "nothing was written" in str(caught.value)
    assert count(crm, "crm_lead") == 0 and count(crm, "crm_audit") == 0 and sent == []


def test_the_report_lists_the_first_100_bad_rows_then_counts(crm: Crm, tmp_path: Path) -> None:
    rows = [f"F{n},L{n},bad{n},,x" for n in range(150)]
    with pytest.raises(ImportFailedError) as caught:
        import_file(crm, "lead", leads_csv(tmp_path, rows))
    report = caught.value.report
    assert report.invalid == 150
    assert sorted({e.row for e in report.errors}) == list(range(1, 101))
    assert {e.column for e in report.errors} == {"Email", "Score"}
    assert report.unlisted == 50
    assert report.error_lines()[-1] == "... and 50 more invalid rows"


def test_skip_invalid_writes_the_valid_rows_and_the_rejects_file(crm: Crm, tmp_path: Path) -> None:
    path = leads_csv(tmp_path, ["A,One,a@example.com,,1", "B,,b@example.com,,2", 'C,"Three, Jr.",c@,,x'])
    rejects = tmp_path / "rejects.csv"
    report = import_file(crm, "lead", path, skip_invalid=True, rejects=rejects)
    assert (report.created, report.invalid, report.committed, report.rejects) == (1, 2, True, str(rejects))
    assert [r.last_name for r in all_leads(crm)] == ["One"]
    with open(rejects, encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle))
    assert lines[0] == ["First Name", "Last Name", "Email", "Company", "Score", "error"]
    assert lines[1] == ["B", "", "b@example.com", "", "2", "Last Name: is required"]
    assert lines[2][:5] == ["C", "Three, Jr.", "c@", "", "x"]
    assert lines[2][5].startswith("Email: expected an e-mail address") and "; Score: expected a whole number" in lines[2][5]


def test_an_atomic_failure_still_writes_the_rejects_file(crm: Crm, tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.csv"
    with pytest.raises(ImportFailedError):
        import_file(crm, "lead", leads_csv(tmp_path, ["A,One,,,1", "B,,,,2"]), rejects=rejects)
    assert rejects.read_text(encoding="utf-8").splitlines()[1] == "B,,,,2,Last Name: is required"
    assert count(crm, "crm_lead") == 0


def test_rows_with_a_wrong_number_of_cells_are_invalid(crm: Crm, tmp_path: Path) -> None:
    with pytest.raises(ImportFailedError) as caught:
        import_file(crm, "lead", leads_csv(tmp_path, ["A,One,,,1", "B,Two,,", "C,Three,,,3,extra"]))
    assert [(e.row, e.message) for e in caught.value.report.errors] == [
        (2, "has 4 cells, but the header has 5 columns"), (3, "has 6 cells, but the header has 5 columns"),
    ]


# -- duplicates ----------------------------------------------------------------------------------


def existing(crm: Crm, **values: Any) -> Any:
    with crm.unit_of_work() as uow:
        record = uow.create("lead", **values)
        uow.commit()
    return record


def test_duplicates_are_errors_inside_the_file_and_against_the_database(crm: Crm, tmp_path: Path) -> None:
    old = existing(crm, last_name="Old", email="old@example.com")
    path = leads_csv(tmp_path, ["A,One,new@example.com,,", "B,Two,new@example.com,,", "C,Three,old@example.com,,"])
    with pytest.raises(ImportFailedError) as caught:
        import_file(crm, "lead", path, dedupe_on="email")
    errors = [(e.row, e.column, e.value, e.message) for e in caught.value.report.errors]
    assert errors == [
        (2, "Email", "new@example.com", "duplicate of row 1 (email 'new@example.com')"),
        (3, "Email", "old@example.com",
         f"duplicate of lead {old.id} (email 'old@example.com'); use --on-duplicate skip or update to accept duplicates"),
    ]
    assert count(crm, "crm_lead") == 1


def test_duplicates_in_separate_batches_are_found(crm: Crm, tmp_path: Path) -> None:
    rows = [f"F{n},L{n},p{n}@example.com,," for n in range(10)] + ["X,Again,p3@example.com,,"]
    report = import_file(crm, "lead", leads_csv(tmp_path, rows), dedupe_on="email", on_duplicate="skip", batch_size=4)
    assert (report.created, report.skipped) == (10, 1)


def test_after_an_atomic_failure_later_duplicates_are_still_found(crm: Crm, tmp_path: Path) -> None:
    existing(crm, last_name="Old", email="p0@example.com")
    rows = ["Bad,,,,", "A,One,p0@example.com,,", "X,Two,p11@example.com,,", "Y,Three,p11@example.com,,"]
    with pytest.raises(ImportFailedError) as caught:
        import_file(crm, "lead", leads_csv(tmp_path, rows), dedupe_on="email", batch_size=3)
    errors = [(e.row, e.message.split(";")[0]) for e in caught.value.report.errors]
    assert errors == [
        (1, "is required"), (2, "duplicate of lead 1 (email 'p0@example.com')"),
        (4, "duplicate of row 3 (email 'p11@example.com')"),
    ]


def test_skip_leaves_duplicates_alone(crm: Crm, tmp_path: Path) -> None:
    old = existing(crm, last_name="Old", email="old@example.com", company="Before")
    path = leads_csv(tmp_path, ["A,One,new@example.com,,", "B,Two,new@example.com,,", "C,Three,old@example.com,After,"])
    report = import_file(crm, "lead", path, dedupe_on="email", on_duplicate="skip")
    assert (report.created, report.skipped, report.invalid) == (1, 2, 0)
    leads = all_leads(crm)
    assert [(r.last_name, r.company) for r in leads] == [("Old", "Before"), ("One", None)]
    assert leads[0].version == old.version


def test_update_changes_the_existing_record_versioned_and_audited(crm: Crm, captured_signals: Any, tmp_path: Path) -> None:
    old = existing(crm, last_name="Old", email="old@example.com", company="Before", score=1)
    path = write(tmp_path / "update.csv", "email,company,score\nold@example.com,After,1\nnew@example.com,New,2\n")
    with captured_signals("record-updated", crm) as updated:
        with pytest.raises(ImportFailedError) as caught:
            import_file(crm, "lead", path, dedupe_on="email", on_duplicate="update")
        # the new row lacks the required last name: an update needs none, a create does
        (error,) = caught.value.report.errors
        assert (error.row, error.column, error.message) == (2, None, "last_name: is required")
        report = import_file(crm, "lead", path, dedupe_on="email", on_duplicate="update", skip_invalid=True)
    assert (report.updated, report.created, report.invalid) == (1, 0, 1)
    with crm.unit_of_work() as uow:
        record = uow.get("lead", old.id)
        history = uow.history("lead", old.id)
    assert (record.company, record.score, record.last_name, record.version) == ("After", 1, "Old", 2)
    assert [(h.action, h.changes) for h in history][-1] == ("updated", {"company": ("Before", "After")})
    assert [(e.record.id, e.changes) for e in updated] == [(old.id, {"company": ("Before", "After")})]


def test_update_inside_the_file_applies_rows_in_order(crm: Crm, tmp_path: Path) -> None:
    path = leads_csv(tmp_path, ["A,One,dup@example.com,First,", "B,Two,dup@example.com,Second,", "C,Three,dup@example.com,Third,"])
    report = import_file(crm, "lead", path, dedupe_on="email", on_duplicate="update")
    assert (report.created, report.updated) == (1, 2)
    (lead,) = all_leads(crm)
    assert (lead.first_name, lead.last_name, lead.company, lead.version) == ("C", "Three", "Third", 3)


def test_unchanged_duplicates_are_counted_not_written(crm: Crm, tmp_path: Path) -> None:
    existing(crm, last_name="Same", email="same@example.com")
    report = import_file(crm, "lead", leads_csv(tmp_path, [",Same,same@example.com,,"]), dedupe_on="email", on_duplicate="update")
    assert (report.updated, report.unchanged) == (0, 1)
    assert all_leads(crm)[0].version == 1


def test_dedupe_on_several_fields(crm: Crm, tmp_path: Path) -> None:
    existing(crm, first_name="Ada", last_name="Lovelace")
    path = leads_csv(tmp_path, ["Ada,Lovelace,,,", "Ada,Byron,,,", "Ada,Byron,,,"])
    report = import_file(crm, "lead", path, dedupe_on="first_name, last_name", on_duplicate="skip")
    assert (report.created, report.skipped) == (1, 2)


def test_duplicates_are_found_with_one_query_per_batch(crm: Crm, statements: list[str], tmp_path: Path) -> None:
    rows = [f"F{n},L{n},p{n}@example.com,," for n in range(200)]
    import_file(crm, "lead", leads_csv(tmp_path, rows), dedupe_on="email", on_duplicate="skip", batch_size=50)
    lookups = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "lower(crm_lead.email) IN" in s]
    assert len(lookups) == 4


def test_unique_fields_are_checked_in_the_file_and_the_database(crm: Crm, make_user: Any, tmp_path: Path) -> None:
    make_user(crm, "ada")
    path = write(tmp_path / "users.csv", "username,full_name\nada,Ada\ngrace,Grace\ngrace,Grace again\n")
    with pytest.raises(ImportFailedError) as caught:
        import_file(crm, "user", path)
    assert [(e.row, e.message) for e in caught.value.report.errors] == [
        (1, "'ada' is already used by another user"), (3, "'grace' is also in row 2; it must be unique"),
    ]


# -- references ----------------------------------------------------------------------------------


def test_references_are_checked_in_bulk(crm: Crm, make_record: Any, statements: list[str], tmp_path: Path) -> None:
    account = make_record(crm, "account", name="Acme")
    rows = [f"Deal {n},{account.id if n % 3 else 999}" for n in range(30)]
    path = write(tmp_path / "deals.csv", "name,account\n" + "\n".join(rows) + "\n")
    report = import_file(crm, "opportunity", path, skip_invalid=True, batch_size=10)
    assert (report.created, report.invalid) == (20, 10)
    assert {e.message for e in report.errors} == {"no account with id 999; create it first or correct the id"}
    assert {e.column for e in report.errors} == {"account"}
    account_lookups = [s for s in statements if "FROM crm_account" in s and " IN " in s]
    assert len(account_lookups) == 3


# -- headers ---------------------------------------------------------------------------------------


def test_headers_match_names_and_labels_ignoring_case_and_spaces(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path / "h.csv", " FIRST  NAME ,last_name,E-Mail,Account\nAda,Lovelace,ada@example.com,\n")
    import_file(crm, "lead", path)
    (lead,) = all_leads(crm)
    assert (lead.first_name, lead.last_name, lead.email) == ("Ada", "Lovelace", "ada@example.com")


def test_map_feeds_columns_to_fields_and_ignores_columns(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path / "m.csv", "Given,Family,Notes,Mail\nAda,Lovelace,ignore me,ada@example.com\n")
    report = import_file(crm, "lead", path, mapping={"Given": "first_name", "family": "Last name", "Notes": "", "Mail": "email"})
    (lead,) = all_leads(crm)
    assert (lead.first_name, lead.last_name, lead.email, lead.description) == ("Ada", "Lovelace", "ada@example.com", None)
    assert report.ignored_columns == ["Notes"]


def test_unknown_columns_are_an_error_naming_them(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path / "u.csv", "last_name,Shoe size,Favourite colour\nLovelace,38,green\n")
    with pytest.raises(ValidationError) as caught:
        import_file(crm, "lead", path)
    message = str(caught.value)
    assert "unknown columns 'Shoe size', 'Favourite colour' for lead" in message
    assert "--map 'COLUMN='" in message


def test_map_errors_name_the_column_and_field(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path / "u.csv", "last_name,Size\nLovelace,38\n")
    with pytest.raises(ValidationError, match="the file has no column 'Colour'"):
        import_file(crm, "lead", path, mapping={"Colour": "email", "Size": ""})
    with pytest.raises(ValidationError, match="lead has no field 'shoe_size'"):
        import_file(crm, "lead", path, mapping={"Size": "shoe_size"})


def test_system_columns_and_missing_required_columns_are_errors(crm: Crm, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="column 'Created at' is lead.created_at, which crmcore sets itself"):
        import_file(crm, "lead", write(tmp_path / "s.csv", "last_name,Created at\nA,2026-01-01\n"))
    with pytest.raises(ValidationError, match="no column for the required field last_name of lead"):
        import_file(crm, "lead", write(tmp_path / "r.csv", "email\na@example.com\n"))


# -- encodings -----------------------------------------------------------------------------------


def test_utf8_with_a_byte_order_mark(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path / "bom.csv", "\ufefffirst_name,last_name\nZoë,Müller\n")
    import_file(crm, "lead", path)
    (lead,) = all_leads(crm)
    assert (lead.first_name, lead.last_name) == ("Zoë", "Müller")


def test_another_encoding_is_a_clear_error_and_works_when_named(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path / "latin.csv", "first_name,last_name\nAda,Lovelace\nZoë,Müller\n", encoding="latin-1")
    with pytest.raises(ValidationError) as caught:
        import_file(crm, "lead", path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not valid UTF-8: byte 36 (line 3) is b'\\xeb'")
    assert "--encoding" in message
    assert count(crm, "crm_lead") == 0
    import_file(crm, "lead", path, encoding="latin-1")
    assert [(r.first_name, r.last_name) for r in all_leads(crm)] == [("Ada", "Lovelace"), ("Zoë", "Müller")]


def test_utf16_with_a_byte_order_mark_is_recognised(crm: Crm, tmp_path: Path) -> None:
    import_file(crm, "lead", write(tmp_path / "u16.csv", "last_name\nGödel\n", encoding="utf-16"))
    assert [r.last_name for r in all_leads(crm)] == ["Gödel"]


def test_an_unknown_encoding_name_is_an_error(crm: Crm, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown encoding 'klingon'"):
        import_file(crm, "lead", leads_csv(tmp_path, []), encoding="klingon")


# -- JSON ------------------------------------------------------------------------------------------


def test_a_json_array_is_imported_object_by_object(crm: Crm, tmp_path: Path) -> None:
    data = [{"last_name": "Lovelace", "score": 5, "Email": "ada@example.com"}, {"last_name": "Hopper", "remarks": 1}, [1]]
    path = write(tmp_path / "leads.json", json.dumps(data, indent=2))
    report = import_file(crm, "lead", path, skip_invalid=True, batch_size=1)
    assert [(r.last_name, r.score, r.email) for r in all_leads(crm)] == [("Lovelace", 5, "ada@example.com")]
    assert [(e.row, e.line) for e in report.errors] == [(2, 7), (3, 11)]
    assert "unknown column 'remarks' for lead" in report.errors[0].message
    assert report.errors[1].message == 'expected a JSON object such as {"name": "Acme"}, got [1]'


def test_json_lines_are_imported(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path / "leads.jsonl", '{"last_name": "Lovelace"}\n\n{"last_name": "Hopper"}\nnot json\n')
    report = import_file(crm, "lead", path, skip_invalid=True)
    assert [r.last_name for r in all_leads(crm)] == ["Lovelace", "Hopper"]
    ((row, line, message),) = [(e.row, e.line, e.message) for e in report.errors]
    assert (row, line) == (3, 4) and message.startswith("not valid JSON")


def test_malformed_json_names_the_line(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", '[\n{"last_name": "Lovelace"},\n{"last_name": }\n]')
    with pytest.raises(ValidationError, match="line 3: not valid JSON"):
        import_file(crm, "lead", path)
    with pytest.raises(ValidationError, match="expected '\\[' starting an array of objects.*--format jsonl"):
        import_file(crm, "lead", write(tmp_path / "obj.json", '{"last_name": "Lovelace"}'))


def test_a_long_json_array_streams_across_chunks(crm: Crm, tmp_path: Path) -> None:
    data = [{"last_name": f"L{n}", "description": "x" * 500, "score": n} for n in range(400)]
    path = write(tmp_path / "long.json", json.dumps(data))
    assert import_file(crm, "lead", path).created == 400
    assert [r.score for r in all_leads(crm)] == list(range(400))


# -- ids -------------------------------------------------------------------------------------------


def test_ids_are_ignored_unless_kept(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path / "ids.csv", "id,last_name\n40,Lovelace\n41,Hopper\n")
    report = import_file(crm, "lead", path)
    assert [r.id for r in all_leads(crm)] == [1, 2]
    assert report.ignored_columns == ["id"]


def test_keep_ids_uses_the_file_ids_and_later_ids_follow(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path / "ids.csv", "id,last_name\n40,Lovelace\n,Hopper\n45,Byron\n")
    import_file(crm, "lead", path, keep_ids=True)
    existing(crm, last_name="After")
    assert [(r.id, r.last_name) for r in all_leads(crm)] == [(40, "Lovelace"), (45, "Byron"), (46, "Hopper"), (47, "After")]
    with pytest.raises(ImportFailedError) as caught:
        import_file(crm, "lead", path, keep_ids=True)
    assert caught.value.report.errors[0].message.startswith("id 40 is already used by another lead")


def test_dedupe_on_id_updates_records_by_id(crm: Crm, tmp_path: Path) -> None:
    old = existing(crm, last_name="Old")
    path = write(tmp_path / "ids.csv", f"id,last_name\n{old.id},New\n999,Other\n")
    report = import_file(crm, "lead", path, dedupe_on="id", on_duplicate="update")
    assert (report.updated, report.created) == (1, 1)
    assert [(r.id, r.last_name) for r in all_leads(crm)] == [(old.id, "New"), (old.id + 1, "Other")]


def test_keep_ids_orders_a_batch_so_parents_come_first(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path / "accounts.csv", "id,name,parent_id\n10,Child,11\n11,Parent,\n12,Grandchild,10\n")
    import_file(crm, "account", path, keep_ids=True)
    with crm.unit_of_work() as uow:
        assert {r.id: r.parent_id for r in uow.all("account")} == {10: 11, 11: None, 12: 10}


# -- one implementation of parsing -----------------------------------------------------------------

CORPUS = [
    {"last_name": "Lovelace", "email": "ada@EXAMPLE.com", "score": "12", "website": "example.com"},
    {"last_name": "", "email": "ada@", "score": "1.5"},
    {"last_name": "x" * 101, "source": "carrier pigeon", "status": "Working"},
    {"last_name": "Hopper", "phone": "call me", "account_id": "-3"},
]


def test_the_import_and_the_schemas_give_the_same_results_and_messages(crm: Crm) -> None:
    with crm.unit_of_work() as uow:
        report = import_rows(uow, "lead", CORPUS, skip_invalid=True)
        imported = uow.all("lead")
    schema_errors: dict[int, dict[str, list[str]]] = {}
    loaded = []
    for number, row in enumerate(CORPUS, 1):
        try:
            loaded.append(crm.schemas.load("lead", row))
        except ValidationError as exc:
            schema_errors[number] = exc.messages
    import_errors: dict[int, dict[str, list[str]]] = {}
    for error in report.errors:
        import_errors.setdefault(error.row, {}).setdefault(error.field or "_schema", []).append(error.message)
    assert import_errors == schema_errors
    assert [{k: r.values[k] for k in loaded[0]} for r in imported] == loaded


def test_import_rows_reports_without_committing(crm: Crm) -> None:
    with crm.unit_of_work(Actor.system()) as uow:
        report = import_rows(uow, "lead", [{"Last name": "Lovelace"}])
        assert report.created == 1 and not report.committed
    assert count(crm, "crm_lead") == 0


def test_postgresql_plans_each_lookup_with_its_own_values(crm):
    """Each batch's duplicate lookup (``email IN (...)``) is the same statement; prepared, it
    could get a generic plan chosen while the table was empty and scan the whole table for
    every batch. crmcore's connections send statements unprepared, so each is planned with its
    own values."""
    if crm.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no plan cache")
    with crm.connect() as connection:
        assert connection.connection.dbapi_connection.prepare_threshold is None
        lookup = "SELECT id FROM crm_lead WHERE email IN (%s, %s)"
        cursor = connection.connection.dbapi_connection.cursor()
        for n in range(8):
            cursor.execute(lookup, (f"a{n}@example.com", f"b{n}@example.com"))
        prepared = connection.exec_driver_sql("SELECT count(*) FROM pg_prepared_statements").scalar_one()
        assert prepared == 0
