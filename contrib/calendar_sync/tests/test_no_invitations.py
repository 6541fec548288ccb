"""No sync invites, updates or cancels anybody, asserted against a real SMTP server.

The Radicale server here has its email hook on: every event written to it or deleted from it
is mailed to its attendees (``crmcore.testing``'s ``smtp_server`` receives them), whatever
their ``SCHEDULE-AGENT``, like a scheduling server. Another client's writes are mailed, which
shows the hook works; then the syncs that only reconcile (the first sync, a second one, a
resync after an invalid token, remote changes and deletions coming in, a reinstalled CRM that
already had the meeting from a file syncing the same calendar) must not make it send one
message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from calendar_support import PLUGINS, activities, import_file
from cryptography.fernet import Fernet

from crm_calendar_sync import links
from crm_calendar_sync.credentials import set_password
from crm_calendar_sync.dav import DavCollection
from crm_calendar_sync.sync import SyncSummary, sync_account

KEY = Fernet.generate_key().decode()
SETTINGS = {"plugins": {"calendar_sync": {"secret_key": KEY}}}


def _event(uid: str, summary: str, start: dt.datetime, *, rrule: str = "") -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Another client//EN", "BEGIN:VEVENT", f"UID:{uid}",
        f"DTSTAMP:{start.strftime(stamp)}", f"DTSTART:{start.strftime(stamp)}",
        f"DTEND:{(start + dt.timedelta(hours=1)).strftime(stamp)}", f"SUMMARY:{summary}",
        *([f"RRULE:{rrule}"] if rrule else []),
        "ORGANIZER;CN=Ann:mailto:ann@example.com",
        "ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=TRUE:mailto:bob@example.com",
        "ATTENDEE;CN=Cy;ROLE=OPT-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:cy@example.com",
        "END:VEVENT", "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


def _app(crm_factory: Any, make_user: Any, url: str) -> tuple[Any, int]:
    crm = crm_factory(plugins=PLUGINS, settings=SETTINGS)
    ann = make_user(crm, "ann", email="ann@example.com")
    with crm.unit_of_work() as uow:
        made = uow.create("calendar_account", name="Work", kind="caldav", url=url, username="ann",
                          user_id=ann.user_id, owner_id=ann.user_id)
        set_password(uow, made, "ann-secret")
        uow.commit()
    return crm, int(made.id)


def _sync(crm: Any, account_id: int) -> SyncSummary:
    with crm.unit_of_work() as uow:
        summary = sync_account(uow, uow.get("calendar_account", account_id))
        uow.commit()
    return summary


def _mailed_by_another_client(smtp_server: Any) -> list[str]:
    """The recipients of what the hook sent for another client's writes, then forgotten."""
    sent = sorted(address for recipients in smtp_server.recipients for address in recipients)
    smtp_server.messages.clear()
    smtp_server.recipients.clear()
    return sent


def test_reconciling_syncs_send_no_mail(crm_factory: Any, make_user: Any, radicale_mailing_server: Any,
                                        smtp_server: Any) -> None:
    url = radicale_mailing_server.calendar("ann", "work")
    client = DavCollection(url, "ann", "ann-secret")
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).replace(hour=9, minute=0, second=0, microsecond=0)
    weekly = _event("weekly@other", "Weekly review", start, rrule="FREQ=WEEKLY;COUNT=10")
    assert client.put(client.new_href("weekly@other"), weekly, etag=None)[0] == 201
    assert client.put(client.new_href("kickoff@other"), _event("kickoff@other", "Kick-off", start + dt.timedelta(days=2)),
                      etag=None)[0] == 201
    assert _mailed_by_another_client(smtp_server) == ["bob@example.com", "bob@example.com", "cy@example.com",
                                                      "cy@example.com"]  # the hook mails attendees

    crm, account = _app(crm_factory, make_user, url)
    first = _sync(crm, account)
    assert (first.created, first.written) == (2, 0)
    assert all(len(r.attendees) == 2 for r in activities(crm))
    assert _sync(crm, account).written == 0
    with crm.unit_of_work() as uow:  # an expired token: a full resync reconciled by UID
        links.save_collection_state(uow.raw("calendar_sync"), account, url, "http://radicale.org/ns/sync/expired", None)
        uow.commit()
    full = _sync(crm, account)
    assert full.full and (full.created, full.deleted, full.written) == (0, 0, 0)
    assert smtp_server.messages == []

    href, etag = next((h, e) for h, e in client.listing().items() if "weekly" in h)
    assert client.put(href, weekly.replace("SUMMARY:Weekly review", "SUMMARY:Weekly review (room 4)"), etag=etag)[0] == 204
    kickoff = next(h for h in client.listing() if "kickoff" in h)
    assert client.delete(kickoff, etag=None) in (200, 204)
    assert _mailed_by_another_client(smtp_server)  # an update and a cancellation, from the other client
    came = _sync(crm, account)
    assert (came.updated, came.deleted, came.written) == (1, 1, 0)
    assert [r.subject for r in activities(crm)] == ["Weekly review (room 4)"]

    reinstalled, again = _app(crm_factory, make_user, url)  # a new CRM on the same calendar,
    renamed = weekly.replace("SUMMARY:Weekly review", "SUMMARY:Weekly review (room 4)")
    import_file(reinstalled, renamed.encode(), user="ann")  # which had the meeting from a file already
    assert len(activities(reinstalled)) == 1
    joined = _sync(reinstalled, again)
    assert (joined.created, joined.written) == (0, 0)
    assert _sync(reinstalled, again).written == 0
    assert [r.subject for r in activities(reinstalled)] == ["Weekly review (room 4)"]
    assert smtp_server.messages == []
