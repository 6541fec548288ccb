"""crm-calendar-sync: calendars in and out of crmcore.

Meetings, calls and tasks are exchanged as iCalendar (RFC 5545) files: an event is keyed by
(calendar account, UID, RECURRENCE-ID), so importing the same file again creates nothing; a
series stays one activity with its RRULE, EXDATE and RDATE, and its moved occurrences are
activities of their own pointing at it. The modules beside this one hold the logic: the
fields added to activities and the calendar account entity (:mod:`~crm_calendar_sync.entities`),
the plugin's own link tables (:mod:`~crm_calendar_sync.links`), time zones
(:mod:`~crm_calendar_sync.timezones`), reading components (:mod:`~crm_calendar_sync.parse`),
the import (:mod:`~crm_calendar_sync.importer`), the export (:mod:`~crm_calendar_sync.exporter`),
occurrences in a window (:mod:`~crm_calendar_sync.recurrence`), the CalDAV sync
(:mod:`~crm_calendar_sync.sync`, :mod:`~crm_calendar_sync.dav`, :mod:`~crm_calendar_sync.merge`)
contacts (:mod:`~crm_calendar_sync.contacts`, :mod:`~crm_calendar_sync.vcard21`), the CardDAV
sync (:mod:`~crm_calendar_sync.carddav`, :mod:`~crm_calendar_sync.vcard_patch`), the Microsoft
Graph adapter (:mod:`~crm_calendar_sync.graph`) and the message archive
(:mod:`~crm_calendar_sync.archive`).
"""

from __future__ import annotations

from crmcore import PluginInfo, Setting

__all__ = ["PLUGIN"]

PLUGIN = PluginInfo(
    name="calendar_sync",
    title="Calendar sync",
    requires=(),
    description=(
        "iCalendar import and export of meetings, calls and tasks: UIDs kept, recurrences as "
        "rules with their exceptions, all-day events as dates, attendees linked to contacts and "
        "users, alarms as reminders; two-way CalDAV sync of per-user calendar accounts and CardDAV sync of "
        "contacts; Outlook calendars and contacts read from Microsoft Graph; vCard 2.1, 3.0 and 4.0 and "
        "Outlook and Google contact exports in and out without duplicates; an archive of e-mails from "
        ".eml, .mbox and IMAP on the timelines of contacts and accounts."
    ),
    settings={
        "secret_key": Setting(
            str, default="",
            help="The key calendar account passwords are encrypted with (a Fernet key: "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'); "
            "needed to store or use a CalDAV password.",
        ),
        "sync_interval_minutes": Setting(
            int, default=15, minimum=1, maximum=7 * 24 * 60,
            help="Minutes between two syncs of a CalDAV calendar account by the worker.",
        ),
    },
)
