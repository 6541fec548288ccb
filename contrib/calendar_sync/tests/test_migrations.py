"""Enabling the calendar plugin on an existing database migrates it without losing rows: its
tables, its own link tables and its columns in others' tables come from its revision, and the
import works on the migrated database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from calendar_support import sample
from crmcore import create_app

from crm_calendar_sync.importer import import_calendar

MIGRATION = ("calendar_sync: 0001 calendar accounts, activity calendar fields, contact vCard UID; event links, "
             "aliases, sync state and conflicts")


def test_enabling_the_plugin_migrates_an_existing_database(crm_factory: Any, make_record: Any, tmp_path: Path) -> None:
    existing = crm_factory(file=True, create_schema=False)
    existing.upgrade()
    call = make_record(existing, "activity", kind="call", subject="Intro call")
    database = existing.settings.database
    settings = tmp_path / "crm.toml"
    settings.write_text(f'[crm]\ndatabase = "{database}"\nplugins = ["calendar_sync"]\n', encoding="utf-8")
    with create_app(settings) as crm:
        assert crm.pending()[-3:] == [MIGRATION, "calendar_sync: 0002 carddav accounts; card links",
                                      "calendar_sync: 0003 message archive: archived messages and the contacts and "
                                      "accounts they involve"]  # one linear chain
        done = crm.upgrade()
        assert MIGRATION in done and not [line for line in done if line.startswith("calendar table")]
        assert crm.pending() == []
        with crm.connect() as connection:
            tables = sorted(t for t in sa.inspect(connection).get_table_names() if t.startswith("calendar_sync_"))
            columns = {c["name"] for c in sa.inspect(connection).get_columns("crm_activity")}
            kind = next(c for c in sa.inspect(connection).get_columns("calendar_sync_calendar_account") if c["name"] == "kind")
        assert tables == ["calendar_sync_alias", "calendar_sync_calendar_account", "calendar_sync_card",
                          "calendar_sync_collection", "calendar_sync_conflict", "calendar_sync_event",
                          "calendar_sync_message", "calendar_sync_message_party"]
        assert {"calendar_sync_ical_uid", "calendar_sync_rrule", "calendar_sync_start_date"} <= columns
        assert kind["type"].length == len("carddav")
        with crm.unit_of_work() as uow:
            assert uow.get("activity", call.id).subject == "Intro call"
            summary = import_calendar(uow, sample("thunderbird_moved_occurrences.ics"))
            uow.commit()
        assert summary.created == 5
