"""What the calendar plugin declares: the fields it adds to the core's ``activity`` (their
columns in ``crm_activity`` are ``calendar_sync_<field>``) and ``contact`` (the vCard UID), and
the ``calendar_account`` entity type, the calendars a user's events are keyed in."""

from __future__ import annotations

from crmcore import EntityType, Field
from crmcore.fields import Choice, Date, Json, Reference, String, Text

__all__ = ["ACCOUNT_KINDS", "ACTIVITY_FIELDS", "CALENDAR_ACCOUNT", "CALENDAR_KINDS", "CONTACT_FIELDS", "ENTITIES"]

#: The activity kinds that are calendar items (an e-mail is not).
CALENDAR_KINDS = ("meeting", "call", "task")
#: Where a calendar account's events come from: ``file`` for iCalendar files imported by hand,
#: ``caldav`` for a calendar collection on a CalDAV server, synchronised both ways;
#: ``carddav`` is an address book on a CardDAV server, whose cards are synchronised both ways
#: with the user's contacts; ``imap`` is a mailbox whose e-mails are archived
#: (``imap://host:port/INBOX``, ``imaps://`` for TLS); ``graph`` is an Outlook calendar and its
#: contacts read from Microsoft Graph (the access token as its secret).
ACCOUNT_KINDS = ("file", "caldav", "carddav", "imap", "graph")

ACTIVITY_FIELDS = (
    Field("ical_uid", String(500), index=True, label="iCalendar UID",
          help="The UID of the event in iCalendar files and calendar servers; kept as received."),
    Field("recurrence_id", String(32), label="Recurrence id",
          help="For a moved or changed occurrence of a series: the original start of the occurrence "
               "it replaces (YYYYMMDD for all-day series, YYYYMMDDTHHMMSSZ in UTC otherwise)."),
    Field("series_id", Reference("activity", on_delete="cascade"), label="Series", index=True,
          help="For an occurrence that was moved or changed: the series it belongs to."),
    Field("start_date", Date(), help="First day of an all-day activity."),
    Field("end_date", Date(), help="Last day of an all-day activity (inclusive)."),
    Field("rrule", Text(), label="Recurrence rule",
          help="The RRULE of a series, e.g. FREQ=WEEKLY;BYDAY=MO; occurrences are never stored as rows."),
    Field("exdates", Json(), label="Excluded occurrences",
          help="Starts of the occurrences left out of the series (ISO dates or UTC times)."),
    Field("rdates", Json(), label="Added occurrences",
          help="Starts of the occurrences added to the series (ISO dates or UTC times)."),
    Field("location", String(500)),
    Field("organizer", Json(), help='Who organises it: {"email": ..., "name": ...}.'),
    Field("attendees", Json(),
          help='Everyone invited, as received: [{"email": ..., "name": ..., "role": ..., "status": ...}]; '
               "those known by e-mail are also in participants."),
    Field("alarms", Json(),
          help='Alarms: [{"action": "DISPLAY", "minutes": 15}] (minutes before the start, or before the '
               'end with "related": "end") or [{"action": ..., "at": "2026-01-05T09:00:00Z"}].'),
)

CONTACT_FIELDS = (
    Field("vcard_uid", String(500), index=True, label="vCard UID",
          help="The UID of the person in vCard files and address books; kept as received."),
)

CALENDAR_ACCOUNT = EntityType(
    "calendar_account",
    fields=(
        Field("name", String(200), required=True),
        Field("user_id", Reference("user", on_delete="cascade"), label="User", index=True,
              help="Whose calendar it is; empty for a calendar of the deployment."),
        Field("kind", Choice(*ACCOUNT_KINDS), default="file", required=True),
        Field("url", String(1000), label="Calendar URL",
              help="The CalDAV calendar (or CardDAV address book) collection, e.g. https://dav.example.com/ann/work/."),
        Field("username", String(200), help="The login on the calendar server."),
        Field("secret", Text(), help="The password, encrypted with [plugins.calendar_sync] secret_key; "
                                     "set it with crm calendar account password, never shown."),
    ),
    ownable=True,
    help="A calendar a user's events come from and go to; events are keyed by (account, UID, RECURRENCE-ID).",
)

ENTITIES = (CALENDAR_ACCOUNT,)
