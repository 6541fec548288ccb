"""Two-way CardDAV sync of contacts against a real Radicale server: remote cards coming in
without duplicates (matched by UID, e-mail or phone), contacts of the user going out, round
trips both ways, local and remote changes, field-level merges and listed conflicts, the
precondition failure path, an invalid sync token, deletions both ways, unknown properties
kept."""

from __future__ import annotations

from typing import Any

import pytest
from calendar_support import DATA, PLUGINS
from cryptography.fernet import Fernet

from crm_calendar_sync import links
from crm_calendar_sync.carddav import CardSyncSummary, contact_plain, sync_addressbook
from crm_calendar_sync.credentials import set_password
from crm_calendar_sync.dav import DavCollection

KEY = Fernet.generate_key().decode()
SETTINGS = {"plugins": {"calendar_sync": {"secret_key": KEY}}}
CONTACTS = DATA / "contacts"


def _card(uid: str, last: str, first: str, email: str, *extra: str) -> str:
    lines = ["BEGIN:VCARD", "VERSION:3.0", f"UID:{uid}", f"FN:{first} {last}", f"N:{last};{first};;;",
             f"EMAIL;TYPE=INTERNET,WORK:{email}", *extra, "END:VCARD"]
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture
def book(radicale_server: Any) -> tuple[str, DavCollection]:
    url = radicale_server.addressbook("ann", "contacts")
    return url, DavCollection(url, "ann", "ann-secret", kind="addressbook")


def _app(crm_factory: Any, make_user: Any, url: str) -> tuple[Any, int, int]:
    crm = crm_factory(plugins=PLUGINS, settings=SETTINGS)
    ann = make_user(crm, "ann", email="ann@example.com")
    with crm.unit_of_work() as uow:
        made = uow.create("calendar_account", name="Contacts", kind="carddav", url=url, username="ann",
                          user_id=ann.user_id, owner_id=ann.user_id)
        set_password(uow, made, "ann-secret")
        uow.commit()
    return crm, int(made.id), int(ann.user_id)


def _sync(crm: Any, account: int) -> CardSyncSummary:
    with crm.unit_of_work() as uow:
        summary = sync_addressbook(uow, uow.get("calendar_account", account))
        uow.commit()
    assert summary.skipped == ()
    return summary


def _people(crm: Any) -> dict[str, Any]:
    with crm.unit_of_work() as uow:
        return {p.last_name: p for p in uow.query("contact").order_by("id").all()}


def _put(dav: DavCollection, uid: str, text: str) -> None:
    assert dav.put(dav.new_href(uid), text, etag=None)[0] == 201


def _remote(dav: DavCollection) -> dict[str, str]:
    """``{href: card text}`` of every card of the address book."""
    return {item.href: item.data for item in dav.fetch(sorted(dav.listing()))}


def _edit(dav: DavCollection, needle: str, old: str, new: str) -> None:
    href, text = next((h, t) for h, t in _remote(dav).items() if needle in t)
    assert dav.put(href, text.replace(old, new), etag=dav.listing()[href])[0] in (200, 201, 204)


def test_remote_cards_come_in_once_and_known_people_are_linked_not_duplicated(crm_factory: Any, make_user: Any,
                                                                               book: Any) -> None:
    url, dav = book
    for name in ("ezvcard_John_Doe_EVOLUTION.vcf", "ezvcard_rfc6350-example.vcf", "ezvcard_John_Doe_GMAIL.vcf"):
        text = (CONTACTS / name).read_text(encoding="utf-8")
        _put(dav, name, text if "UID:" in text else text.replace("\nFN:", f"\nUID:{name}\nFN:", 1))  # a server needs one
    _put(dav, "ada", _card("ada-1", "Lovelace", "Ada", "ada@example.com"))
    crm, account, _ = _app(crm_factory, make_user, url)
    with crm.unit_of_work() as uow:  # already here, without a UID: matched by e-mail
        known = uow.create("contact", last_name="Lovelace", email="ADA@example.com")
        uow.commit()
    first = _sync(crm, account)
    assert (first.created, first.written) == (3, 0)
    people = _people(crm)
    assert len(people) == 3 and people["Lovelace"].id == known.id and people["Lovelace"].vcard_uid == "ada-1"
    assert people["Perreault"].email == "simon.perreault@viagenie.ca"
    assert people["Doe"].email == "john.doe@ibm.com"  # two cards of one person (UID, then e-mail): one contact
    again = _sync(crm, account)
    assert (again.created, again.updated, again.written, again.requests) == (0, 0, 0, 1)  # the report only


def test_crm_to_carddav_to_crm_leaves_the_same_contacts(crm_factory: Any, make_user: Any, book: Any) -> None:
    url, dav = book
    source, account, ann = _app(crm_factory, make_user, url)
    with source.unit_of_work() as uow:
        firm = uow.create("account", name="Analytical Engines Ltd")
        uow.create("contact", first_name="Ada", last_name="Lovelace", email="ada@example.com", phone="+44 20 1234",
                   mobile="+44 7700 1", title="Countess", birthdate="1815-12-10", mailing_street="12 St James's Sq",
                   mailing_city="London", mailing_postal_code="SW1", mailing_country="UK", description="Notes\non two lines",
                   account_id=firm.id, owner_id=ann)
        uow.create("contact", first_name="Zoë", last_name="Ødegård", email="zoe@example.no", owner_id=ann)
        uow.create("contact", last_name="Someone else's", email="other@example.com")  # not Ann's: stays here
        uow.commit()
    out = _sync(source, account)
    assert (out.written, out.created) == (2, 0)
    assert len(dav.listing()) == 2
    assert _sync(source, account).written == 0
    target, there, _ = _app(crm_factory, make_user, url)
    came = _sync(target, there)
    assert (came.created, came.written) == (2, 0)
    fields = [f for f in contact_plain({}) if f != "account_id"]
    mine = {k: {f: contact_plain(p.values)[f] for f in fields} for k, p in _people(source).items() if p.owner_id == ann}
    theirs = {k: {f: contact_plain(p.values)[f] for f in fields} for k, p in _people(target).items()}
    assert theirs == mine
    ada = _people(target)["Lovelace"]
    with target.unit_of_work() as uow:
        assert uow.get("account", ada.account_id).name == "Analytical Engines Ltd"


def test_a_local_change_is_written_keeping_what_the_crm_does_not_model(crm_factory: Any, make_user: Any, book: Any) -> None:
    url, dav = book
    _put(dav, "ada", _card("ada-1", "Lovelace", "Ada", "ada@example.com", "EMAIL;TYPE=HOME:ada@home.example",
                           "TEL;TYPE=FAX:+44 1", "X-CUSTOM-FIELD:kept", "NICKNAME:Enchantress"))
    crm, account, _ = _app(crm_factory, make_user, url)
    _sync(crm, account)
    ada = _people(crm)["Lovelace"]
    with crm.unit_of_work() as uow:
        uow.update(ada, title="Countess of Lovelace", email="ada@engines.example")
        uow.commit()
    summary = _sync(crm, account)
    assert summary.written == 1
    (text,) = _remote(dav).values()
    assert "TITLE:Countess of Lovelace" in text and "ada@engines.example" in text and "ada@example.com" not in text
    assert all(kept in text for kept in ("ada@home.example", "+44 1", "X-CUSTOM-FIELD:kept", "NICKNAME:Enchantress"))
    assert _sync(crm, account).written == 0


def test_a_remote_change_updates_the_contact(crm_factory: Any, make_user: Any, book: Any) -> None:
    url, dav = book
    _put(dav, "ada", _card("ada-1", "Lovelace", "Ada", "ada@example.com"))
    crm, account, _ = _app(crm_factory, make_user, url)
    _sync(crm, account)
    _edit(dav, "ada-1", "END:VCARD", "TITLE:Analyst\r\nEND:VCARD")
    summary = _sync(crm, account)
    assert (summary.updated, summary.written, summary.requests) == (1, 0, 2)  # the report and one multiget
    assert _people(crm)["Lovelace"].title == "Analyst"


def test_changes_on_both_sides_merge_and_a_clash_is_listed(crm_factory: Any, make_user: Any, book: Any) -> None:
    url, dav = book
    _put(dav, "ada", _card("ada-1", "Lovelace", "Ada", "ada@example.com", "TITLE:Countess"))
    crm, account, _ = _app(crm_factory, make_user, url)
    _sync(crm, account)
    _edit(dav, "ada-1", "TITLE:Countess", "TITLE:Analyst\r\nNOTE:Met at the Society")
    ada = _people(crm)["Lovelace"]
    with crm.unit_of_work() as uow:
        uow.update(ada, title="Mathematician", mobile="+44 7700 2")
        uow.commit()
    summary = _sync(crm, account)
    assert (summary.merged, summary.conflicts, summary.written) == (1, 1, 1)
    ada = _people(crm)["Lovelace"]
    assert (ada.title, ada.mobile, ada.description) == ("Mathematician", "+44 7700 2", "Met at the Society")
    (text,) = _remote(dav).values()
    assert "TITLE:Mathematician" in text and "Met at the Society" in text and "+44 7700 2" in text
    with crm.unit_of_work() as uow:
        (conflict,) = links.conflicts(uow.raw("calendar_sync"), account)
    assert (conflict["uid"], conflict["field"], conflict["remote"]["title"]) == ("ada-1", "title", "Analyst")


def test_a_precondition_failure_refetches_and_merges(crm_factory: Any, make_user: Any, book: Any) -> None:
    url, dav = book
    _put(dav, "ada", _card("ada-1", "Lovelace", "Ada", "ada@example.com"))
    crm, account, _ = _app(crm_factory, make_user, url)
    _sync(crm, account)
    with crm.unit_of_work() as uow:
        token = links.collection_state(uow.raw("calendar_sync"), account, dav.url)[0]
    _edit(dav, "ada-1", "END:VCARD", "NOTE:Changed there\r\nEND:VCARD")
    ada = _people(crm)["Lovelace"]
    with crm.unit_of_work() as uow:  # the report will not show the change: only the PUT meets it
        links.save_collection_state(uow.raw("calendar_sync"), account, dav.url, dav.sync(token).token, None)
        uow.update(ada, title="Changed here")
        uow.commit()
    summary = _sync(crm, account)
    assert (summary.merged, summary.written, summary.conflicts) == (1, 1, 0)
    ada = _people(crm)["Lovelace"]
    assert (ada.title, ada.description) == ("Changed here", "Changed there")
    (text,) = _remote(dav).values()
    assert "TITLE:Changed here" in text and "NOTE:Changed there" in text


def test_deletions_propagate_both_ways(crm_factory: Any, make_user: Any, book: Any) -> None:
    url, dav = book
    _put(dav, "ada", _card("ada-1", "Lovelace", "Ada", "ada@example.com"))
    _put(dav, "bob", _card("bob-1", "Babbage", "Charles", "charles@example.com"))
    crm, account, _ = _app(crm_factory, make_user, url)
    _sync(crm, account)
    href = next(h for h, t in _remote(dav).items() if "bob-1" in t)
    assert dav.delete(href, etag=None) in (200, 204)
    ada = _people(crm)["Lovelace"]
    with crm.unit_of_work() as uow:
        uow.delete("contact", ada.id)
        uow.commit()
    summary = _sync(crm, account)
    assert summary.deleted == 2
    assert _people(crm) == {} and dav.listing() == {}


def test_an_invalid_token_resyncs_by_uid_without_duplicates(crm_factory: Any, make_user: Any, book: Any) -> None:
    url, dav = book
    _put(dav, "ada", _card("ada-1", "Lovelace", "Ada", "ada@example.com"))
    crm, account, _ = _app(crm_factory, make_user, url)
    _sync(crm, account)
    with crm.unit_of_work() as uow:
        links.save_collection_state(uow.raw("calendar_sync"), account, dav.url, "http://radicale.org/ns/sync/expired", None)
        uow.commit()
    summary = _sync(crm, account)
    assert summary.full and (summary.created, summary.deleted, summary.written) == (0, 0, 0)
    assert list(_people(crm)) == ["Lovelace"]


def test_the_command_line_adds_an_address_book_and_the_worker_syncs_it(crm_factory: Any, make_user: Any, book: Any,
                                                                       tmp_path: Any) -> None:
    import datetime as dt

    from click.testing import CliRunner
    from crmcore.cli import main
    from crmcore.jobs import run_worker

    url, dav = book
    _put(dav, "ada", _card("ada-1", "Lovelace", "Ada", "ada@example.com"))
    crm = crm_factory(plugins=PLUGINS, settings=SETTINGS, file=True)
    make_user(crm, "ann", email="ann@example.com")
    config = tmp_path / "crm.toml"
    config.write_text(f'[crm]\ndatabase = "{crm.settings.database}"\nplugins = ["calendar_sync"]\n\n'
                      f'[plugins.calendar_sync]\nsecret_key = "{KEY}"\n', encoding="utf-8")
    runner = CliRunner()
    base = ["--config", str(config)]
    added = runner.invoke(main, [*base, "calendar", "account", "add", "People", "--carddav", "--url", url, "--login", "ann",
                                 "--user", "ann"], input="ann-secret\n")
    assert added.exit_code == 0, added.output
    assert "People  carddav" in runner.invoke(main, [*base, "calendar", "account", "list"]).output
    synced = runner.invoke(main, [*base, "calendar", "sync", "--user", "ann"])
    assert synced.exit_code == 0, synced.output
    assert "People: created 1, updated 0, deleted 0, merged 0, conflicts 0" in synced.output
    _edit(dav, "ada-1", "END:VCARD", "TITLE:Analyst\r\nEND:VCARD")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=1)
    assert run_worker(crm, once=True, now=now).done == 1
    assert _people(crm)["Lovelace"].title == "Analyst"
