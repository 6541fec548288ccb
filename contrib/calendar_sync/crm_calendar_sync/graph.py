"""Microsoft Graph (Outlook, Exchange Online) behind the same sync interface as CalDAV and
CardDAV: calendar events and contacts read with delta queries.

An account of kind ``graph`` names the Graph endpoint (``url``, e.g.
``https://graph.microsoft.com/v1.0``) and holds an access token as its secret (obtaining one
is the deployment's OAuth flow; the token is stored encrypted like a password).
:func:`sync_graph` reads, in the caller's unit of work:

- **Events**: ``/me/calendarView/delta`` over a fixed window (``calendar_window_days`` back
  and ahead of the first sync: Graph's calendar-view delta keeps the window of its first
  request). Pages are followed through ``@odata.nextLink`` to the ``@odata.deltaLink``, which
  is kept as the collection's sync token, so the next sync reads only what changed. Single
  events become activities keyed by (account, ``iCalUId``, RECURRENCE-ID) exactly as imported
  iCalendar events (:func:`~crm_calendar_sync.importer.apply_events`); the occurrences of a
  series lead to their **series master** (``/me/events/{seriesMasterId}``, read once), which
  becomes one activity with its RRULE; an exception (a moved or changed occurrence) becomes an
  override keyed by its ``originalStart``; plain occurrences are not stored. Items marked
  ``@removed`` delete their activities. Graph ids are aliases (provider ``graph``) of the event
  links, never packed into a key. A delta link the service no longer accepts (410) starts a
  full read, reconciled by ``iCalUId``.
- **Contacts**: ``/me/contacts/delta`` the same way; a contact is matched by its link (the
  Graph id), then e-mail or phone, and only then created; ``@removed`` deletes it.

Nothing is written to Graph: changes made in the CRM stay in the CRM (the CalDAV and CardDAV
adapters are the two-way ones). Exchange mails an update to the attendees of a meeting its
organizer changes through Graph, and a sync must never invite anybody; reading sends nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import attrs
import requests
from crmcore.errors import ValidationError

from crm_calendar_sync import links, timezones
from crm_calendar_sync.carddav import contact_hash, contact_plain
from crm_calendar_sync.contacts import ContactCard, apply_cards
from crm_calendar_sync.credentials import account_password
from crm_calendar_sync.importer import apply_events
from crm_calendar_sync.parse import MODELLED_FIELDS, ParsedEvent, fields_hash, occurrence_key

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["GraphError", "GraphSummary", "event_values", "sync_graph"]

PROVIDER = "graph"
#: Days before and after the first sync that the calendar view covers.
WINDOW_DAYS = 365
_PAGE = 200
_ROLES = {"required": "REQ-PARTICIPANT", "optional": "OPT-PARTICIPANT", "resource": "NON-PARTICIPANT"}
_RESPONSES = {"accepted": "ACCEPTED", "declined": "DECLINED", "tentativelyAccepted": "TENTATIVE",
              "notResponded": "NEEDS-ACTION", "none": "NEEDS-ACTION", "organizer": "ACCEPTED"}
_DAYS = {"sunday": "SU", "monday": "MO", "tuesday": "TU", "wednesday": "WE", "thursday": "TH", "friday": "FR",
         "saturday": "SA"}
_FREQ = {"daily": "DAILY", "weekly": "WEEKLY", "absoluteMonthly": "MONTHLY", "relativeMonthly": "MONTHLY",
         "absoluteYearly": "YEARLY", "relativeYearly": "YEARLY"}
_INDEX = {"first": "1", "second": "2", "third": "3", "fourth": "4", "last": "-1"}


class GraphError(Exception):
    """A Graph request answered with an unexpected status."""

    def __init__(self, method: str, url: str, status: int, text: str = "") -> None:
        super().__init__(f"{method} {url} answered {status}{': ' + text[:200] if text else ''}")
        self.method, self.url, self.status = method, url, status


@attrs.frozen
class GraphSummary:
    """What a Graph sync did."""

    events_created: int = 0
    events_updated: int = 0
    events_deleted: int = 0
    contacts_created: int = 0
    contacts_updated: int = 0
    contacts_deleted: int = 0
    requests: int = 0
    full: bool = False

    def line(self) -> str:
        return (f"events: created {self.events_created}, updated {self.events_updated}, deleted {self.events_deleted}; "
                f"contacts: created {self.contacts_created}, updated {self.contacts_updated}, "
                f"deleted {self.contacts_deleted} ({self.requests} requests{', full read' if self.full else ''})")


class _Client:
    """Graph over HTTP: GETs with the bearer token, counted."""

    def __init__(self, base: str, token: str | None, *, timeout: int = 30) -> None:
        self.base = base.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token or ''}", "Accept": "application/json",
                                     "Prefer": f'outlook.timezone="UTC", odata.maxpagesize={_PAGE}'})
        self.timeout = timeout
        self.requests = 0

    def get(self, url: str) -> dict[str, Any]:
        target = url if url.startswith(("http://", "https://")) else self.base + url
        self.requests += 1
        response = self.session.get(target, timeout=self.timeout)
        if response.status_code != 200:
            raise GraphError("GET", target.split("?")[0], response.status_code, response.text)
        return dict(response.json())

    def delta(self, first: str, link: str | None) -> tuple[list[dict[str, Any]], str | None, bool]:
        """Every item of a delta query from *link* (``None``: from *first*), the new delta link,
        and whether it was a full read (no link, or one the service refused with 410)."""
        full = link is None
        try:
            page = self.get(link or first)
        except GraphError as exc:
            if exc.status != 410 or link is None:
                raise
            page, full = self.get(first), True
        items = list(page.get("value", ()))
        while "@odata.nextLink" in page:
            page = self.get(page["@odata.nextLink"])
            items += page.get("value", ())
        return items, page.get("@odata.deltaLink"), full


# -- events ------------------------------------------------------------------------------------------


def _moment(value: Mapping[str, Any] | None) -> dt.datetime | None:
    if not value or not value.get("dateTime"):
        return None
    text = str(value["dateTime"])[:26].rstrip("Z")
    moment = dt.datetime.fromisoformat(text)
    zone = timezones.zone(timezones.resolve(value.get("timeZone") or "UTC", None) or "UTC") or dt.UTC
    return moment.replace(tzinfo=zone).astimezone(dt.UTC)


def _person(entry: Mapping[str, Any] | None, *, role: str | None = None) -> dict[str, str] | None:
    address = (entry or {}).get("emailAddress") or {}
    if not address.get("address"):
        return None
    person = {"email": str(address["address"]).lower()}
    if address.get("name"):
        person["name"] = str(address["name"])
    if role:
        person["role"] = role
    return person


def _rrule(recurrence: Mapping[str, Any] | None) -> str | None:
    if not recurrence:
        return None
    pattern, span = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    freq = _FREQ.get(pattern.get("type", ""))
    if freq is None:
        return None
    parts = [f"FREQ={freq}"]
    if int(pattern.get("interval") or 1) > 1:
        parts.append(f"INTERVAL={int(pattern['interval'])}")
    days = [_DAYS[d] for d in pattern.get("daysOfWeek") or () if d in _DAYS]
    if pattern.get("type", "").startswith("relative") and days:
        parts.append("BYDAY=" + ",".join(_INDEX.get(pattern.get("index", "first"), "1") + d for d in days))
    elif days and freq == "WEEKLY":
        parts.append("BYDAY=" + ",".join(days))
    if pattern.get("type") in ("absoluteMonthly", "absoluteYearly") and pattern.get("dayOfMonth"):
        parts.append(f"BYMONTHDAY={int(pattern['dayOfMonth'])}")
    if pattern.get("type", "").endswith("Yearly") and pattern.get("month"):
        parts.append(f"BYMONTH={int(pattern['month'])}")
    if span.get("type") == "numbered" and span.get("numberOfOccurrences"):
        parts.append(f"COUNT={int(span['numberOfOccurrences'])}")
    elif span.get("type") == "endDate" and span.get("endDate"):
        parts.append(f"UNTIL={str(span['endDate']).replace('-', '')}T235959Z")
    return ";".join(parts)


def event_values(event: Mapping[str, Any], zone_name: str | None = None) -> dict[str, Any]:
    """The activity fields of one Graph event (see the module docs); pure."""
    values: dict[str, Any] = dict.fromkeys(MODELLED_FIELDS)
    values["kind"] = "meeting"
    values["subject"] = (str(event.get("subject") or "").strip() or "(no subject)")[:200]
    values["description"] = str(event.get("bodyPreview") or "").strip() or None
    values["location"] = str((event.get("location") or {}).get("displayName") or "").strip()[:500] or None
    values["status"] = "cancelled" if event.get("isCancelled") else "planned"
    start, end = _moment(event.get("start")), _moment(event.get("end"))
    values["all_day"] = bool(event.get("isAllDay"))
    if values["all_day"] and start is not None:
        values["start_date"] = start.date()
        values["end_date"] = ((end or start) - dt.timedelta(days=1)).date() if end and end > start else start.date()
    else:
        values["starts_at"], values["ends_at"] = start, end
        values["timezone"] = timezones.resolve(event.get("originalStartTimeZone"), None) or zone_name
    values["rrule"] = _rrule(event.get("recurrence"))
    values["organizer"] = _person(event.get("organizer"))
    attendees = []
    for entry in event.get("attendees") or ():
        person = _person(entry, role=_ROLES.get(str(entry.get("type") or "required"), "REQ-PARTICIPANT"))
        if person is not None:
            person["status"] = _RESPONSES.get(str((entry.get("status") or {}).get("response") or "none"), "NEEDS-ACTION")
            attendees.append(person)
    values["attendees"] = attendees or None
    if event.get("isReminderOn") and event.get("reminderMinutesBeforeStart") is not None:
        values["alarms"] = [{"action": "DISPLAY", "minutes": int(event["reminderMinutesBeforeStart"])}]
    values["ical_uid"] = str(event.get("iCalUId") or event.get("id"))
    original = _moment({"dateTime": event["originalStart"], "timeZone": "UTC"}) if event.get("originalStart") else None
    if event.get("type") == "exception" and original is not None:
        values["recurrence_id"] = occurrence_key(original.date() if values["all_day"] else original)
    return values


def _parsed(event: Mapping[str, Any], zone_name: str | None) -> ParsedEvent:
    values = event_values(event, zone_name)
    return ParsedEvent(values["ical_uid"], values["recurrence_id"] or "", values, "", fields_hash(values))


# -- the sync ----------------------------------------------------------------------------------------


def sync_graph(uow: UnitOfWork, account: Record, *, token: str | None = None, now: dt.datetime | None = None,
               ) -> GraphSummary:
    """Read the changes of *account*'s Outlook calendar and contacts (see the module docs).

    :param token: the access token (default: the account's secret, decrypted).
    :param now: the middle of the calendar window of a first sync (default: the clock).
    :raises ValidationError: for an account that is not a Graph account with a URL.
    :raises GraphError: when Graph refuses a request (401: renew the token).
    """
    if account.get("kind") != "graph" or not account.get("url"):
        raise ValidationError({"url": [f"calendar account {account.id} ({account.get('name')!r}) is not a Graph account "
                                       "with a URL; set kind=graph and url=https://graph.microsoft.com/v1.0"]},
                              entity="calendar_account")
    client = _Client(account["url"], token if token is not None else account_password(uow.crm, account))
    raw = uow.raw(links.PLUGIN_NAME)
    owner_id = account.get("user_id")
    owner = uow.get("user", owner_id) if owner_id is not None else None
    moment = now or dt.datetime.now(dt.UTC)
    window = {"startDateTime": (moment - dt.timedelta(days=WINDOW_DAYS)).strftime("%Y-%m-%dT00:00:00Z"),
              "endDateTime": (moment + dt.timedelta(days=WINDOW_DAYS)).strftime("%Y-%m-%dT00:00:00Z")}
    events_key, contacts_key = account["url"].rstrip("/") + "/me/calendarView", account["url"].rstrip("/") + "/me/contacts"
    try:  # contacts first: the attendees of the events are then matched with them
        link, _ = links.collection_state(raw, account.id, contacts_key)
        people, delta, contacts_full = client.delta("/me/contacts/delta", link)
        counts = _contacts(uow, raw, account, people)
        links.save_collection_state(raw, account.id, contacts_key, delta, None)
        link, _ = links.collection_state(raw, account.id, events_key)
        items, delta, full = client.delta(f"/me/calendarView/delta?{urlencode(window)}", link)
        counts.update(_events(uow, raw, account, owner, client, items))
        links.save_collection_state(raw, account.id, events_key, delta, None)
    finally:
        client.session.close()
    return GraphSummary(**counts, requests=client.requests, full=full or contacts_full)


def _events(uow: UnitOfWork, raw: Any, account: Record, owner: Record | None, client: _Client,
            items: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    zone_name = owner.get("timezone") if owner is not None else None
    removed = [item["id"] for item in items if "@removed" in item]
    present = [item for item in items if "@removed" not in item]
    masters: dict[str, Mapping[str, Any]] = {item["id"]: item for item in present if item.get("type") == "seriesMaster"}
    for master_id in sorted({str(i["seriesMasterId"]) for i in present if i.get("seriesMasterId")} - set(masters)):
        masters[master_id] = client.get(f"/me/events/{master_id}")
    wanted = [*masters.values(), *(i for i in present if i.get("type") in (None, "singleInstance", "exception"))]
    parsed = [_parsed(item, zone_name) for item in wanted]
    summary = apply_events(uow, account.id, parsed, owner=owner) if parsed else None
    if parsed:
        known = links.read_links(raw, account.id, {event.uid for event in parsed})
        links.add_aliases(raw, account.id, PROVIDER, {
            str(item["id"]): (known[event.key].id, item.get("changeKey")) for item, event in zip(wanted, parsed, strict=True)})
    deleted = 0
    gone = links.events_by_alias(raw, account.id, PROVIDER, removed)
    if gone:
        by_id = {k.id: k for k in links.account_links(raw, account.id)}
        doomed = [by_id[event] for event, _ in gone.values() if event in by_id]
        records = uow.get_many("activity", {k.activity_id for k in doomed})
        masters_only = [r for r in records if r.get("series_id") not in {x.id for x in records}]
        if masters_only:
            uow.delete_many("activity", masters_only)
            deleted = len(masters_only)
        links.delete_links(raw, [k.id for k in doomed])
    return {"events_created": summary.created if summary else 0, "events_updated": summary.updated if summary else 0,
            "events_deleted": deleted}


def _card(item: Mapping[str, Any]) -> ContactCard:
    address = item.get("businessAddress") or item.get("homeAddress") or {}
    emails = [str(e.get("address")) for e in item.get("emailAddresses") or () if e.get("address")]
    values = {
        "first_name": item.get("givenName"), "last_name": item.get("surname") or item.get("displayName"),
        "email": emails[0] if emails else None, "phone": (item.get("businessPhones") or [None])[0],
        "mobile": item.get("mobilePhone"), "title": item.get("jobTitle"),
        "birthdate": str(item["birthday"])[:10] if item.get("birthday") else None,
        "mailing_street": address.get("street"), "mailing_city": address.get("city"),
        "mailing_postal_code": address.get("postalCode"), "mailing_country": address.get("countryOrRegion"),
        "description": item.get("personalNotes"),
    }
    if not values["last_name"]:
        values["last_name"] = values["email"] or item.get("companyName")
    return ContactCard(None, {k: v for k, v in values.items() if v}, item.get("companyName") or None, f"graph {item['id']}")


def _contacts(uow: UnitOfWork, raw: Any, account: Record, items: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    known = {k.uid: k for k in links.card_links(raw, account.id)}
    removed = [known[str(i["id"])] for i in items if "@removed" in i and str(i["id"]) in known]
    present = [i for i in items if "@removed" not in i]
    cards = [_card(item) for item in present]
    linked = {k.contact_id: k for k in known.values()}
    records = {r.id: r for r in uow.get_many("contact", set(linked))}
    plan, fresh = [], []
    for item, card in zip(present, cards, strict=True):
        link = known.get(str(item["id"]))
        record = records.get(link.contact_id) if link is not None else None
        if record is None:
            fresh.append((item, card))
            continue
        wanted = contact_plain(card.values)
        changes = {name: wanted[name] for name in wanted if name != "account_id" and contact_plain(record.values)[name] != wanted[name]}
        if changes:
            plan.append((record, changes))
    updated = uow.update_many("contact", plan) if plan else []
    records.update({r.id: r for r in updated})
    rows = []
    if fresh:
        summary = apply_cards(uow, [card for _, card in fresh], owner_id=account.get("user_id"))
        records.update({r.id: r for r in uow.get_many("contact", set(summary.contact_ids))})
        pairs = list(zip((str(item["id"]) for item, _ in fresh), summary.contact_ids, strict=True))
    else:
        summary, pairs = None, []
    pairs += [(str(item["id"]), known[str(item["id"])].contact_id) for item in present
              if str(item["id"]) in known and known[str(item["id"])].contact_id in records]
    for graph_id, contact_id in pairs:
        record = records[contact_id]
        link = known.get(graph_id)
        rows.append({"id": link.id if link is not None else None, "account_id": account.id, "uid": graph_id,
                     "contact_id": contact_id, "fields_hash": contact_hash(record.values),
                     "snapshot": contact_plain(record.values), "card": None, "href": graph_id,
                     "etag": next((str(i.get("changeKey")) for i in present if str(i["id"]) == graph_id), None)})
    links.save_card_links(raw, rows)
    doomed = [records[k.contact_id] for k in removed if k.contact_id in records]
    if doomed:
        uow.delete_many("contact", doomed)
    links.delete_card_links(raw, [k.id for k in removed])
    return {"contacts_created": summary.created if summary else 0,
            "contacts_updated": len(updated) + (summary.updated if summary else 0), "contacts_deleted": len(doomed)}
