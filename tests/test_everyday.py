"""Everyday cases found by trying crmcore as a new user: e-mail duplicates whatever the case,
column names of common exports, the close date of lost deals, deleting what a disabled plugin's
rows refer to, hidden fields in ``crm show``, a missing SQLite file, and a plugin whose migration
has not run."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmcore.cli import main
from crmcore.fields import Email
from crmcore.transfer import import_file

DATA = Path(__file__).parent / "data"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def emails(crm: Any, entity: str) -> list[str]:
    with crm.unit_of_work() as uow:
        return [r.email for r in uow.query(entity).order_by("id")]


# -- e-mail duplicates whatever the case -----------------------------------------------------------


def test_the_dedupe_key_of_an_address_is_the_whole_address_lower_cased() -> None:
    email = Email()
    assert email.dedupe_key(email.parse("Ana.Ferreira@Exemplo.PT")) == email.dedupe_key("ana.ferreira@exemplo.pt")
    assert email.parse("Ana.Ferreira@Exemplo.PT") == "Ana.Ferreira@exemplo.pt"  # stored as given (domain lower)


@pytest.mark.parametrize("policy", ["skip", "update", "error"])
def test_an_import_finds_a_stored_address_whatever_its_case(crm: Any, tmp_path: Path, policy: str) -> None:
    with crm.unit_of_work() as uow:
        uow.create("contact", last_name="Ferreira", email="ana.ferreira@exemplo.pt")
        uow.commit()
    path = write(tmp_path / "c.csv", "last_name,email,title\nFerreira,Ana.Ferreira@Exemplo.PT,CEO\n")
    report = import_file(crm, "contact", path, dedupe_on="email", on_duplicate=policy, skip_invalid=True)
    # an update writes the file's spelling; the others leave the record alone
    assert emails(crm, "contact") == ["Ana.Ferreira@exemplo.pt" if policy == "update" else "ana.ferreira@exemplo.pt"]
    assert (report.created, report.skipped, report.updated, report.invalid) == {
        "skip": (0, 1, 0, 0), "update": (0, 0, 1, 0), "error": (0, 0, 0, 1)}[policy]
    if policy == "error":
        assert "duplicate of contact 1" in report.errors[0].message


def test_an_import_finds_addresses_repeated_in_the_file_whatever_their_case(crm: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "last_name,email\nA,ANA@EXEMPLO.PT\nB,ana@exemplo.pt\nC,Ana@Exemplo.pt\n")
    report = import_file(crm, "contact", path, dedupe_on="email", on_duplicate="skip", batch_size=2)
    assert (report.created, report.skipped) == (1, 2)
    assert emails(crm, "contact") == ["ANA@exemplo.pt"]


# -- column names of common exports --------------------------------------------------------------------


def test_common_crm_column_names_need_no_map(crm: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "Company Name,E-mail Address,Business Phone,Web Page\nAcme,info@acme.test,+1 555 0100,acme.test\n")
    report = import_file(crm, "account", path)
    assert report.columns == {"Company Name": "name", "E-mail Address": "email", "Business Phone": "phone", "Web Page": "website"}
    with crm.unit_of_work() as uow:
        account = uow.query("account").first()
    assert (account.name, account.email, account.phone, account.website) == (
        "Acme", "info@acme.test", "+1 555 0100", "https://acme.test")


def test_company_feeds_the_account_name_and_the_lead_company(crm: Any, tmp_path: Path) -> None:
    assert import_file(crm, "account", write(tmp_path / "a.csv", "Company\nAcme\n")).columns == {"Company": "name"}
    path = write(tmp_path / "l.csv", "Last Name,Company,Mobile Phone,E-mail Address\nLee,Acme,+1 555 0101,lee@acme.test\n")
    report = import_file(crm, "lead", path, skip_invalid=True)
    assert report.columns == {"Last Name": "last_name", "Company": "company", "E-mail Address": "email"}
    assert report.ignored_columns == ["Mobile Phone"]  # a lead has one phone: no column is guessed


def test_a_field_declared_in_settings_takes_aliases(crm_factory: Any, tmp_path: Path) -> None:
    crm = crm_factory(settings={"custom_fields": {"account": {"region": {"type": "string", "aliases": ["Sales Region"]}}}})
    report = import_file(crm, "account", write(tmp_path / "a.csv", "name,Sales Region\nAcme,North\n"))
    assert report.columns["Sales Region"] == "region"


def test_an_unknown_column_is_still_an_error(crm: Any, tmp_path: Path) -> None:
    from crmcore import ValidationError

    with pytest.raises(ValidationError, match=r"unknown column 'Shoe size'"):
        import_file(crm, "contact", write(tmp_path / "c.csv", "Last Name,Shoe size\nLee,42\n"))


EXPORTS = {
    "outlook_desktop_export_sample.csv": (
        {"First Name": "first_name", "Last Name": "last_name", "Job Title": "title", "Business Street": "mailing_street",
         "Business City": "mailing_city", "Business Postal Code": "mailing_postal_code",
         "Business Country/Region": "mailing_country", "Business Phone": "phone", "Mobile Phone": "mobile",
         "Account": "account_id", "Notes": "description", "E-mail Address": "email"},
        [("Ann", "Example", "ann@example.com", "Head of Sales", "+49 170 0000000"), ("Björn", "Ñúñez", "bjorn@example.org", None, None)],
        0,
    ),
    "outlook_com_export_sample.csv": (
        {"First Name": "first_name", "Last Name": "last_name", "E-mail Address": "email", "Business Phone": "phone",
         "Mobile Phone": "mobile", "Job Title": "title", "Business Street": "mailing_street", "Business City": "mailing_city",
         "Business Postal Code": "mailing_postal_code", "Business Country/Region": "mailing_country", "Notes": "description"},
        [("Ann", "Example", "ann@example.com", "CTO", "+1 555 0100"), ("Zoë", "Sample", "zoe@example.net", None, None)],
        0,
    ),
    "google_outlook_csv_export_sample.csv": (
        {"First Name": "first_name", "Last Name": "last_name", "Notes": "description", "E-mail Address": "email",
         "Mobile Phone": "mobile", "Business Street": "mailing_street", "Business City": "mailing_city",
         "Business Postal Code": "mailing_postal_code", "Business Phone": "phone", "Job Title": "title",
         "Account": "account_id", "Business Country": "mailing_country"},
        [("Ann", "Example", "ann@example.com", "CTO", "+1 555 0100")],
        0,
    ),
    "google_csv_legacy_export_sample.csv": (
        {"Given Name": "first_name", "Family Name": "last_name", "Notes": "description", "E-mail 1 - Value": "email",
         "Phone 1 - Value": "phone", "Address 1 - Street": "mailing_street", "Address 1 - City": "mailing_city",
         "Address 1 - Postal Code": "mailing_postal_code", "Address 1 - Country": "mailing_country",
         "Organization 1 - Title": "title"},
        [("Ann", "Example", "ann@example.com", "CTO", None)],
        0,
    ),
    "google_csv_export_sample.csv": (
        {"First Name": "first_name", "Last Name": "last_name", "Organization Title": "title", "Notes": "description",
         "E-mail 1 - Value": "email", "Phone 1 - Value": "phone", "Address 1 - Street": "mailing_street",
         "Address 1 - City": "mailing_city", "Address 1 - Postal Code": "mailing_postal_code",
         "Address 1 - Country": "mailing_country"},
        [],  # Google joins several values with ' ::: ', which no e-mail or phone field takes
        3,
    ),
}


ERRORS = {"google_csv_export_sample.csv": [(1, "email"), (2, "last_name"), (3, "phone")]}


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_contact_exports_of_outlook_and_google_import_without_a_map(crm: Any, name: str) -> None:
    columns, imported, invalid = EXPORTS[name]
    report = import_file(crm, "contact", DATA / name, skip_invalid=True)
    assert report.columns == columns
    header = (DATA / name).read_text(encoding="utf-8-sig").splitlines()[0]
    assert len(report.columns) + len(report.ignored_columns) == len(next(csv.reader([header])))
    with crm.unit_of_work() as uow:
        rows = [(r.first_name, r.last_name, r.email, r.title, r.mobile) for r in uow.query("contact").order_by("id")]
    assert rows == imported
    assert report.invalid == invalid
    assert [(e.row, e.field) for e in report.errors] == ERRORS.get(name, [])


def test_the_cli_says_which_column_fed_which_field(cli: Any) -> None:
    result = cli("import", "contact", str(DATA / "outlook_com_export_sample.csv"))
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert "'E-mail Address' → email" in lines[0] and lines[0].startswith("columns matched: ")
    assert lines[1].startswith("columns not imported: ") and lines[1].endswith("more")
    assert "2 created" in result.stdout


# -- the close date of a lost deal -------------------------------------------------------------------


def opportunity(crm: Any, **values: Any) -> Any:
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        record = uow.create("opportunity", name="Deal", account_id=account.id, **values)
        uow.commit()
    return record


@pytest.mark.parametrize("how", ["move", "update", "move_many"])
def test_entering_lost_sets_an_empty_close_date_to_today(crm: Any, how: str) -> None:
    record = opportunity(crm)
    with crm.unit_of_work() as uow:
        if how == "move":
            lost = uow.move(record, "lost")
        elif how == "update":
            lost = uow.update(record, stage="lost")
        else:
            (lost,) = uow.move_many([record], "lost")
        uow.commit()
    assert (lost.stage, lost.close_date) == ("lost", dt.date.today())


def test_entering_lost_keeps_a_close_date_already_set(crm: Any) -> None:
    record = opportunity(crm, close_date="2026-01-15")
    with crm.unit_of_work() as uow:
        lost = uow.move(record, "lost")
        uow.commit()
    assert lost.close_date == dt.date(2026, 1, 15)


def test_an_opportunity_created_lost_gets_todays_close_date(crm: Any) -> None:
    assert opportunity(crm, stage="lost").close_date == dt.date.today()


def test_won_still_requires_a_close_date(crm: Any) -> None:
    from crmcore import ValidationError

    record = opportunity(crm, amount="100 EUR", stage="final_stage")
    with crm.unit_of_work() as uow, pytest.raises(ValidationError, match="close_date: is required to enter stage 'won'"):
        uow.move(record, "won")


def test_a_pipeline_in_settings_declares_entry_values(crm_factory: Any) -> None:
    from crmcore import ConfigError

    stages = [{"name": "open"}, {"name": "closed", "kind": "lost", "on_enter": {"close_date": "today"}}]
    crm = crm_factory(settings={"pipelines": {"simple": {"entity": "opportunity", "stages": stages}}})
    record = opportunity(crm, pipeline="simple")
    with crm.unit_of_work() as uow:
        assert uow.move(record, "closed").close_date == dt.date.today()
    stages[1]["on_enter"] = {"close_date": "yesterday"}
    with pytest.raises(ConfigError, match=r"on_enter maps field names to \"today\" or \"now\""):
        crm_factory(settings={"pipelines": {"simple": {"entity": "opportunity", "stages": stages}}})


# -- deleting what a disabled plugin's rows refer to ------------------------------------------------------


@pytest.fixture
def ticket_left_behind(crm_factory: Any) -> tuple[Any, Any, Any]:
    """An app without the help desk, on a database where a ticket of it refers to an account
    and a contact: ``(app, account, contact)``."""
    url = crm_factory.database_url(file=True)
    with_desk = crm_factory(plugins=["helpdesk"], database=url)
    with with_desk.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        contact = uow.create("contact", last_name="Lee", account_id=account.id)
        uow.create("ticket", subject="Printer on fire", account_id=account.id, contact_id=contact.id)
        uow.commit()
    return crm_factory(database=url), account, contact


@pytest.mark.parametrize("how", ["delete", "delete_where"])
def test_deleting_a_record_a_disabled_plugins_rows_refer_to_names_the_table(ticket_left_behind: Any, how: str) -> None:
    from crmcore.errors import ReferenceError

    crm, account, contact = ticket_left_behind
    with crm.unit_of_work() as uow, pytest.raises(ReferenceError) as caught:
        if how == "delete":
            uow.delete("contact", contact.id)
        else:
            uow.delete_where("contact", {"id": contact.id})
    assert str(caught.value).startswith(
        f"contact: cannot delete contact {contact.id}: rows of table 'helpdesk_ticket' still refer to it, "
        "and crmcore does not manage that table here")
    with crm.unit_of_work() as uow:  # nothing changed, and the unit of work goes on after the refusal
        assert [r.id for r in uow.query("contact")] == [contact.id]
        with pytest.raises(ReferenceError, match="referenced by contact"):
            uow.delete("account", account.id)
        assert uow.query("account").count() == 1


# -- crm show and hidden fields -----------------------------------------------------------------------------

VIEWER_SETTINGS = """
[crm]
database = "{url}"
[security.profiles.viewer]
privileges = {{ account = "all" }}
fields = {{ account = {{ phone = "hidden" }} }}
[security.roles.viewer]
profiles = ["viewer"]
"""


def test_crm_show_leaves_out_the_fields_hidden_from_the_actor(crm_factory: Any, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    from crmcore.security import admin

    monkeypatch.chdir(tmp_path)
    url = crm_factory.database_url(file=True)
    config = write(tmp_path / "crm.toml", VIEWER_SETTINGS.format(url=url.replace("\\", "\\\\")))
    crm = crm_factory(settings={"security": tomllib.loads(config.read_text())["security"]}, database=url)
    with crm.unit_of_work() as uow:
        admin.add_user(uow, "vera", roles=["viewer"])
        record = uow.create("account", name="Acme", phone="+1 555 0100", industry="Retail")
        uow.commit()
    shown = {}
    for user in ("vera", None):
        args = ["--config", str(config), *(["--as", user] if user else []), "show", "account", str(record.id)]
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        shown[user] = [line.split(":")[0] for line in result.stdout.splitlines()]
    assert "Phone" in shown[None]
    assert shown["vera"] == [label for label in shown[None] if label != "Phone"]
    assert "Industry" in shown["vera"]


# -- a missing SQLite file -------------------------------------------------------------------------------------


def test_a_command_on_a_missing_sqlite_file_does_not_create_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    path = tmp_path / "typo.db"
    for args in (["show", "account", "1"], ["create", "account", "name=Acme"], ["export", "account"]):
        result = CliRunner().invoke(main, ["--db", f"sqlite:///{path}", *args], catch_exceptions=False)
        assert result.exit_code == 1, result.output
        assert result.stderr.splitlines() == [
            f"error: the database file '{path}' does not exist; create it with 'crm init' or 'crm db upgrade' "
            "(Crm.upgrade()), or check [crm] database (or --db)"]
    assert not path.exists()
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{path}", "db", "upgrade"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["--db", f"sqlite:///{path}", "create", "account", "name=Acme"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_crm_init_creates_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["--db", "sqlite:///new.db", "init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "new.db").exists()


def test_the_python_api_refuses_a_missing_file_too(tmp_path: Path) -> None:
    from crmcore import DatabaseError, create_app

    crm = create_app({"crm": {"database": f"sqlite:///{tmp_path / 'missing.db'}"}})
    try:
        with pytest.raises(DatabaseError, match="does not exist; create it with 'crm init'"):
            crm.unit_of_work().__enter__()
        assert not (tmp_path / "missing.db").exists()
        crm.create_schema()
        with crm.unit_of_work() as uow:
            assert uow.query("account").count() == 0
    finally:
        crm.close()


# -- a plugin enabled before its migration ran -------------------------------------------------------------------


@pytest.fixture
def behind(crm_factory: Any) -> Any:
    """An app with the help desk on a database brought up to date without it."""
    url = crm_factory.database_url(file=True)
    core = crm_factory(database=url, create_schema=False)
    core.upgrade()
    with core.unit_of_work() as uow:
        uow.create("account", name="Acme")
        uow.commit()
    return crm_factory(plugins=["helpdesk"], database=url, create_schema=False)


def test_a_plugin_enabled_before_its_migration_says_run_crm_db_upgrade(behind: Any) -> None:
    from crmcore import DatabaseError

    with behind.unit_of_work() as uow, pytest.raises(DatabaseError) as caught:
        uow.query("account").all()  # the help desk adds columns to accounts
    message = str(caught.value)
    assert re.fullmatch(r"the database lacks the column (crm_account\.)?helpdesk_\w+ \(declared by plugin 'helpdesk'\): "
                        r"it is behind the enabled plugins; run 'crm db upgrade' \(Crm.upgrade\(\)\) to bring it up to date",
                        message), message
    with behind.unit_of_work() as uow, pytest.raises(DatabaseError, match=r"lacks the table helpdesk_\w+ \(declared by plugin 'helpdesk'\)"):
        uow.query("ticket").count()
    behind.upgrade()
    with behind.unit_of_work() as uow:
        assert [r.name for r in uow.query("account")] == ["Acme"]


def test_the_cli_says_run_crm_db_upgrade_in_one_line(behind: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRM_PLUGINS", "helpdesk")
    result = CliRunner().invoke(main, ["--db", str(behind.engine.url.render_as_string(hide_password=False)),
                                       "show", "account", "1"], catch_exceptions=False)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: the database lacks the column") and line.endswith("run 'crm db upgrade' (Crm.upgrade()) to bring it up to date")
