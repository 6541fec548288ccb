"""Contacts: vCard 2.1, 3.0 and 4.0 keyed on UID, people without a UID matched by e-mail or phone
(never duplicated), export and import back, and the contact CSV exports of Outlook and Google
without a column mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from calendar_support import DATA, PLUGINS

from crm_calendar_sync.contacts import (
    apply_cards,
    contact_columns,
    export_vcards,
    read_contact_csv,
    read_vcards,
)

CONTACTS = DATA / "contacts"
#: Every vCard file of the samples: 2.1 (Outlook, Android), 3.0 (Lotus Notes among them) and 4.0.
VCARDS = tuple(sorted(p.name for p in CONTACTS.glob("*.vcf")))
VCARDS_21 = ("ezvcard_John_Doe_ANDROID.vcf", "ezvcard_John_Doe_MS_OUTLOOK.vcf", "ezvcard_outlook-2007.vcf")
CSVS = sorted(p.name for p in CONTACTS.glob("*.csv"))


@pytest.fixture
def crm(crm_factory: Any) -> Any:
    return crm_factory(plugins=PLUGINS)


def _import(crm: Any, name: str | Path, data: bytes | str | None = None) -> Any:
    path = CONTACTS / name if isinstance(name, str) else name
    content = data if data is not None else path.read_bytes()
    with crm.unit_of_work() as uow:
        if path.suffix == ".csv":
            cards, skipped = read_contact_csv(content, contact_columns(uow), name=path.name)
        else:
            cards, skipped = read_vcards(content, name=path.name)
        summary = apply_cards(uow, cards, skipped=skipped)
        uow.commit()
    return summary


def _contacts(crm: Any) -> list[Any]:
    with crm.unit_of_work() as uow:
        return uow.query("contact").order_by("id").all()


@pytest.mark.parametrize("name", VCARDS)
def test_each_vcard_file_imports_once(crm: Any, name: str) -> None:
    first = _import(crm, name)
    assert first.created == first.cards > 0 and first.skipped == ()
    again = _import(crm, name)
    assert (again.created, again.updated) == (0, 0)
    assert len(_contacts(crm)) == first.created


def test_the_uid_is_kept_and_keys_the_contact(crm: Any) -> None:
    _import(crm, "vobject_vcard40_multilang.vcf")
    (person,) = _contacts(crm)
    assert person.vcard_uid == "urn:uuid:multilang-vcard-example"
    text = (CONTACTS / "vobject_vcard40_multilang.vcf").read_text(encoding="utf-8")
    moved = _import(crm, "renamed.vcf", text.replace("LANGUAGE=en:Yamada;Taro;", "LANGUAGE=en:Yamada;Jiro;"))
    assert (moved.created, moved.updated) == (0, 1)
    (person,) = _contacts(crm)
    assert (person.first_name, person.last_name) == ("Jiro", "Yamada")


def test_a_vcard_without_uid_is_matched_by_email_or_phone_not_duplicated(crm: Any) -> None:
    with crm.unit_of_work() as uow:
        by_mail = uow.create("contact", last_name="Smith", email="ASmithK@gmail.com")
        by_phone = uow.create("contact", last_name="Doe", phone="+1 (555) 555-1234")
        uow.commit()
    summary = _import(crm, "ezvcard_gmail-list.vcf")
    assert (summary.created, summary.linked) == (2, 1)
    card = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Jo Doe\r\nN:Doe;Jo;;;\r\nTEL;TYPE=WORK:+1 555 555 1234\r\nEND:VCARD\r\n"
    assert _import(crm, "jo.vcf", card).created == 0
    people = _contacts(crm)
    assert len(people) == 4
    assert [p.id for p in people if p.email and p.email.lower() == "asmithk@gmail.com"] == [by_mail.id]
    assert next(p for p in people if p.id == by_phone.id).first_name == "Jo"


def test_export_then_import_creates_nothing_in_both_versions(crm: Any, tmp_path: Path) -> None:
    for name in VCARDS:
        _import(crm, name)
    before = {p.id: p.values for p in _contacts(crm)}
    for version in ("2.1", "3.0", "4.0"):
        with crm.unit_of_work() as uow:
            text = export_vcards(uow, version=version)
            uow.commit()
        assert text.count("BEGIN:VCARD") == len(before) and f"VERSION:{version}" in text
        path = tmp_path / f"out-{version}.vcf"
        path.write_text(text, encoding="utf-8", newline="")
        again = _import(crm, path)
        assert (again.created, again.updated, again.skipped) == (0, 0, ())
    after = {p.id: p.values for p in _contacts(crm)}
    assert {k: {f: v for f, v in values.items() if f not in ("vcard_uid", "version", "updated_at", "updated_by")}
            for k, values in after.items()} == {
        k: {f: v for f, v in values.items() if f not in ("vcard_uid", "version", "updated_at", "updated_by")}
        for k, values in before.items()}
    assert all(p.vcard_uid for p in _contacts(crm))


def test_a_card_that_cannot_be_read_is_reported_and_the_rest_imports(crm: Any) -> None:
    good = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\nEND:VCARD\r\n"
    bad = "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Lee;Bo;;;\r\nBEGIN:VCARD\r\nEND:VCARD\r\n"
    summary = _import(crm, "mixed.vcf", good + bad)
    assert summary.created == 1
    (line,) = summary.skipped
    assert line.startswith("mixed.vcf: card 2 skipped:") and "2.1, 3.0 or 4.0" in line


def test_vcard_21_quoted_printable_outlook_card_is_read_field_by_field(crm: Any) -> None:
    _import(crm, "ezvcard_outlook-2007.vcf")
    (person,) = _contacts(crm)
    assert (person.first_name, person.last_name, person.title) == ("Michael", "Angstadt", "TheJobTitle")
    assert (person.phone, person.mobile, person.email) == ("(111) 555-1111", "(111) 555-4444", "mike.angstadt@gmail.com")
    assert (person.mailing_street, person.mailing_city, person.mailing_postal_code) == ("222 Broadway", "New York", "99999")
    assert person.birthdate.isoformat() == "1922-03-10"
    assert person.description.splitlines() == [
        "This is the NOTE field\t", "I assume it encodes this text inside a NOTE vCard type.",
        "But I'm not sure because there's text formatting going on here.", "It does not preserve the formatting"]
    with crm.unit_of_work() as uow:
        assert uow.get("account", person.account_id).name == "TheCompany"


def test_vcard_21_android_soft_line_breaks_and_utf8_charset_are_decoded(crm: Any) -> None:
    summary = _import(crm, "ezvcard_John_Doe_ANDROID.vcf")
    assert (summary.cards, summary.created, summary.skipped) == (6, 6, ())
    people = {p.email or p.mobile: p for p in _contacts(crm)}
    assert people["john.doe@company.com"].last_name == "john.doe@company.com"  # a card with an address only
    assert people["123456789"].last_name == "Ñ Ñ Ñ Ñ"
    long_name = next(p for p in _contacts(crm) if p.phone == "234567")
    assert long_name.last_name == " ".join(["Ñ"] * 11)  # a soft break in the middle of the name
    assert people["bob@company.com"].first_name == "Ñ Ñ Ñ"


def test_vcard_21_fax_is_not_taken_for_the_phone(crm: Any) -> None:
    card = ("BEGIN:VCARD\r\nVERSION:2.1\r\nN:Lee;Ann\r\nTEL;WORK;FAX:111\r\nTEL;WORK;VOICE:222\r\n"
            "TEL;CELL:333\r\nEND:VCARD\r\n")
    _import(crm, "fax.vcf", card)
    (person,) = _contacts(crm)
    assert (person.phone, person.mobile) == ("222", "333")


def test_vcard_21_written_by_a_windows_program_in_its_code_page_is_read(crm: Any) -> None:
    card = "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Müller;Jürgen\r\nEMAIL;INTERNET:j@example.de\r\nEND:VCARD\r\n"
    _import(crm, "cp1252.vcf", card.encode("cp1252"))
    (person,) = _contacts(crm)
    assert (person.first_name, person.last_name) == ("Jürgen", "Müller")


def test_vcard_21_export_is_quoted_printable_and_imports_back_unchanged(crm: Any, tmp_path: Path) -> None:
    for name in VCARDS_21:
        _import(crm, name)
    with crm.unit_of_work() as uow:
        lee = uow.create("contact", first_name="Zoë", last_name="O'Neil; Jr", description="line one\nline two, ok",
                         mailing_street="Rue d'Été 5")
        uow.commit()
    before = {p.id: p.values for p in _contacts(crm)}
    with crm.unit_of_work() as uow:
        text = export_vcards(uow, version="2.1")
        uow.commit()
    assert text.count("VERSION:2.1") == len(before)
    assert all(len(line) <= 76 for line in text.split("\r\n") if line.endswith("="))  # soft line breaks
    text_unfolded = text.replace("=\r\n", "")  # quoted-printable soft line breaks
    assert "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:O'Neil\\;=20Jr;Zo=C3=AB;;;" in text_unfolded
    assert "NOTE;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:line=20one=0D=0Aline=20two,=20ok" in text_unfolded
    assert "TEL;WORK;VOICE:(111) 555-1111" in text and "TEL;CELL:(111) 555-4444" in text
    path = tmp_path / "out-2.1.vcf"
    path.write_text(text, encoding="utf-8", newline="")
    again = _import(crm, path)
    assert (again.created, again.updated, again.skipped) == (0, 0, ())
    after = {p.id: p.values for p in _contacts(crm)}
    ignored = ("vcard_uid", "version", "updated_at", "updated_by")
    assert ({k: {f: v for f, v in values.items() if f not in ignored} for k, values in after.items()}
            == {k: {f: v for f, v in values.items() if f not in ignored} for k, values in before.items()})
    assert next(p for p in _contacts(crm) if p.id == lee.id).last_name == "O'Neil; Jr"


@pytest.mark.parametrize("name", CSVS)
def test_outlook_and_google_csv_exports_import_without_a_mapping(crm: Any, name: str) -> None:
    rows = len((CONTACTS / name.replace(".csv", ".header.txt")).read_text(encoding="utf-8").splitlines())
    first = _import(crm, name)
    assert first.skipped == () and first.created == first.cards >= 1 and rows > 30
    again = _import(crm, name)
    assert (again.created, again.updated) == (0, 0)
    people = _contacts(crm)
    assert all(p.last_name for p in people)
    assert any(p.email for p in people)


def test_google_lists_give_their_primary_value(crm: Any) -> None:
    _import(crm, "google_csv_export_sample.csv")
    by_name = {p.last_name: p for p in _contacts(crm)}
    ann = by_name["Example"]
    assert (ann.first_name, ann.email, ann.phone, ann.title) == ("Ann", "ann@example.com", "+1 555 0100", "CTO")
    assert by_name["愛川"].phone == "+81 3 0000 0000"
    assert "noreply@example.org" in by_name  # a saved address without a name is kept under it
    with crm.unit_of_work() as uow:
        (company,) = uow.query("account").all()
    assert company.name == "Example Inc." and ann.account_id == company.id


def test_the_command_line_imports_and_exports_contacts(crm_factory: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from crmcore.cli import main

    crm = crm_factory(plugins=PLUGINS, file=True)
    runner = CliRunner()
    env = {"CRM_PLUGINS": "calendar_sync"}
    database = ["--db", crm.settings.database]
    done = runner.invoke(main, [*database, "contacts", "import", str(CONTACTS / "outlook_desktop_export_sample.csv")], env=env)
    assert done.exit_code == 0, done.output
    assert "2 contacts: 2 created" in done.output
    out = tmp_path / "people.vcf"
    exported = runner.invoke(main, [*database, "contacts", "export", "--version", "4.0", "-o", str(out)], env=env)
    assert exported.exit_code == 0 and "2 contacts" in exported.output
    again = runner.invoke(main, [*database, "contacts", "import", str(out)], env=env)
    assert "2 contacts: 0 created, 0 updated, 2 unchanged" in again.output
