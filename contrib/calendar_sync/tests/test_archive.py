"""The message archive: .eml and .mbox files and a real IMAP mailbox (pymap on 127.0.0.1),
linked to contacts and accounts by address, on their timelines, archived once per
Message-ID, the mailbox read incrementally by UID."""

from __future__ import annotations

import email.message
import email.utils
import mailbox
from pathlib import Path
from typing import Any

import pytest
from calendar_support import PLUGINS
from cryptography.fernet import Fernet

from crm_calendar_sync.archive import archive_messages, fetch_imap, read_messages
from crm_calendar_sync.credentials import set_password

KEY = Fernet.generate_key().decode()
SETTINGS = {"plugins": {"calendar_sync": {"secret_key": KEY}}}


def _message(number: int, sender: str, to: str, *, cc: str = "", subject: str | None = None, html: bool = False,
             message_id: str | None = "") -> bytes:
    message = email.message.EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = subject if subject is not None else f"Proposal {number}"
    message["Date"] = email.utils.format_datetime(email.utils.parsedate_to_datetime(f"Mon, 0{number % 9 + 1} Nov 2026 "
                                                                                      "10:00:00 +0100"))
    if message_id is not None:
        message["Message-ID"] = message_id or f"<m{number}@mail.example.com>"
    if html:
        message.set_content(f"<p>Hello,<br>see offer {number} &amp; terms</p>", subtype="html")
    else:
        message.set_content(f"Hello,\nsee offer {number}.\n")
    return message.as_bytes()


@pytest.fixture
def crm(crm_factory: Any, make_user: Any) -> Any:
    crm = crm_factory(plugins=PLUGINS, settings=SETTINGS)
    make_user(crm, "ann", email="ann@crm.example")
    with crm.unit_of_work() as uow:
        firm = uow.create("account", name="Analytical Engines")
        uow.create("contact", first_name="Ada", last_name="Lovelace", email="Ada@Engines.example", account_id=firm.id)
        uow.create("contact", first_name="Charles", last_name="Babbage", email="charles@engines.example", account_id=firm.id)
        uow.create("contact", last_name="Somerville", email="mary@elsewhere.example")
        uow.commit()
    return crm


def _archive(crm: Any, name: str, data: bytes) -> Any:
    with crm.unit_of_work() as uow:
        messages, skipped = read_messages(data, name=name)
        summary = archive_messages(uow, messages, skipped=skipped)
        uow.commit()
    return summary


def _emails(crm: Any) -> list[Any]:
    with crm.unit_of_work() as uow:
        return uow.query("activity").where(kind="email").order_by("id").all()


def _people(crm: Any) -> dict[str, Any]:
    with crm.unit_of_work() as uow:
        return {p.last_name: p for p in uow.query("contact").all()}


def test_an_eml_file_is_archived_on_the_timelines_of_its_contacts_and_account(crm: Any) -> None:
    data = _message(1, "Ann <ann@crm.example>", "Ada Lovelace <ada@engines.example>", cc="mary@elsewhere.example")
    summary = _archive(crm, "offer.eml", data)
    assert (summary.created, summary.duplicates, summary.unmatched) == (1, 0, 0)
    (mail,) = _emails(crm)
    people = _people(crm)
    assert (mail.subject, mail.status, mail.contact_id) == ("Proposal 1", "done", people["Lovelace"].id)
    assert mail.account_id == people["Lovelace"].account_id and mail.description == "Hello,\nsee offer 1."
    assert mail.starts_at.isoformat() == "2026-11-02T09:00:00+00:00"
    assert {"contact_id": people["Somerville"].id} in mail.participants and {"user_id": 1} in mail.participants
    with crm.unit_of_work() as uow:
        for entity, record_id in (("contact", people["Lovelace"].id), ("contact", people["Somerville"].id),
                                  ("account", people["Lovelace"].account_id)):
            assert any(e.entity == "activity" and e.record_id == mail.id for e in uow.timeline(entity, record_id)), entity
        assert not any(e.entity == "activity" for e in uow.timeline("contact", people["Babbage"].id))


def test_an_mbox_is_archived_once_per_message_id(crm: Any, tmp_path: Path) -> None:
    box = mailbox.mbox(str(tmp_path / "sent.mbox"))
    for number in range(1, 5):
        box.add(_message(number, "ann@crm.example", "charles@engines.example" if number % 2 else "nobody@else.example"))
    box.add(_message(9, "ada@engines.example", "ann@crm.example", subject="", html=True, message_id=None))
    box.flush()
    box.close()
    data = (tmp_path / "sent.mbox").read_bytes()
    first = _archive(crm, "sent.mbox", data)
    assert (first.messages, first.created, first.unmatched, first.skipped) == (5, 3, 2, ())
    again = _archive(crm, "sent.mbox", data)
    assert (again.created, again.duplicates, again.unmatched) == (0, 3, 2)  # the strangers are still unknown
    single = _archive(crm, "one.eml", _message(1, "ann@crm.example", "charles@engines.example"))
    assert (single.created, single.duplicates) == (0, 1)  # the same Message-ID from another file
    mails = _emails(crm)
    assert len(mails) == 3
    html = next(m for m in mails if m.subject == "(no subject)")
    assert "see offer 9 & terms" in html.description and "<p>" not in html.description


def test_a_message_without_any_address_is_reported(crm: Any) -> None:
    summary = _archive(crm, "broken.eml", b"Subject: nobody\r\n\r\ntext\r\n")
    assert summary.created == 0
    (line,) = summary.skipped
    assert line.startswith("broken.eml: message 1 skipped:") and "From, To, Cc" in line


def test_an_imap_mailbox_is_read_incrementally_by_uid(crm: Any, imap_server: Any) -> None:
    with crm.unit_of_work() as uow:
        ann = uow.find_many("user", "username", ["ann"])[0]
        account = uow.create("calendar_account", name="Mail", kind="imap", url=imap_server.url(), username="ann",
                             user_id=ann.id, owner_id=ann.id)
        set_password(uow, account, "ann-secret")
        uow.commit()
    imap_server.append(_message(1, "ada@engines.example", "ann@crm.example"),
                       _message(2, "stranger@else.example", "ann@crm.example"),
                       _message(3, "ann@crm.example", "charles@engines.example"))

    def fetch() -> Any:
        with crm.unit_of_work() as uow:
            summary = fetch_imap(uow, uow.get("calendar_account", account.id))
            uow.commit()
        return summary

    first = fetch()
    assert (first.fetched, first.full, first.archive.created, first.archive.unmatched) == (3, True, 2, 1)
    assert fetch().fetched == 0  # nothing new: nothing read
    imap_server.append(_message(4, "charles@engines.example", "ann@crm.example"),
                       _message(1, "ada@engines.example", "ann@crm.example"))  # a copy of one archived already
    later = fetch()
    assert (later.fetched, later.full, later.archive.created, later.archive.duplicates) == (2, False, 1, 1)
    mails = _emails(crm)
    assert sorted(m.subject for m in mails) == ["Proposal 1", "Proposal 3", "Proposal 4"]
    assert all(m.owner_id == ann.id for m in mails)


def test_the_command_line_archives_a_file(crm_factory: Any, make_user: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner
    from crmcore.cli import main

    crm = crm_factory(plugins=PLUGINS, file=True)
    with crm.unit_of_work() as uow:
        uow.create("contact", last_name="Lovelace", email="ada@engines.example")
        uow.commit()
    path = tmp_path / "offer.eml"
    path.write_bytes(_message(1, "ann@crm.example", "ada@engines.example"))
    runner = CliRunner()
    args = ["--db", crm.settings.database, "mail", "import", str(path)]
    done = runner.invoke(main, args, env={"CRM_PLUGINS": "calendar_sync"})
    assert done.exit_code == 0, done.output
    assert "offer.eml: 1 messages: 1 archived, 0 already archived" in done.output
    again = runner.invoke(main, args, env={"CRM_PLUGINS": "calendar_sync"})
    assert "0 archived, 1 already archived" in again.output


def test_the_worker_fetches_an_imap_account_on_its_schedule(crm: Any, imap_server: Any) -> None:
    import datetime as dt

    from crmcore.jobs import run_worker

    with crm.unit_of_work() as uow:
        ann = uow.find_many("user", "username", ["ann"])[0]
        account = uow.create("calendar_account", name="Mail", kind="imap", url=imap_server.url(), username="ann",
                             user_id=ann.id, owner_id=ann.id)
        set_password(uow, account, "ann-secret")
        uow.commit()
    imap_server.append(_message(1, "ada@engines.example", "ann@crm.example"))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)
    assert run_worker(crm, once=True, now=now).done == 1
    assert [m.subject for m in _emails(crm)] == ["Proposal 1"]


def test_a_message_to_an_account_address_is_on_the_account_timeline(crm: Any) -> None:
    with crm.unit_of_work() as uow:
        firm = uow.create("account", name="Difference Engines", email="info@difference.example")
        uow.commit()
    summary = _archive(crm, "info.eml", _message(5, "ann@crm.example", "INFO@difference.example"))
    assert summary.created == 1
    (mail,) = _emails(crm)
    assert (mail.account_id, mail.contact_id) == (firm.id, None)
    with crm.unit_of_work() as uow:
        assert any(e.entity == "activity" and e.record_id == mail.id for e in uow.timeline("account", firm.id))
