"""Two-way sync of a CalDAV calendar account with the activities of its user.

:func:`sync_account`, in the caller's unit of work (all or nothing on the database side):

1. **What changed remotely**: a ``sync-collection`` report from the stored token (RFC 6578);
   without a token, with an expired or invalid one, a full listing (the report without a
   token), reconciled by UID with what is linked, never deleting and re-creating; on a server
   without sync tokens, the collection's ctag, then a listing of ETags. Items whose ETag is the
   one stored are not fetched (our own writes come back that way); the others are fetched with
   ``calendar-multiget``.
2. **Each remote event** is compared with its link (the hash of the modelled fields last
   synced): unchanged locally, the server's version is applied (new events come in, known ones
   are updated in the fields that differ, through :func:`~crm_calendar_sync.importer.apply_events`);
   changed on both sides, the fields are merged three ways against the last snapshot
   (:mod:`~crm_calendar_sync.merge`), conflicts listed in ``calendar_sync_conflict``, and the
   result written back. Items deleted remotely delete their activities.
3. **Local changes go out**: changed activities are written over the version last seen
   (``If-Match``); on a precondition failure the item is fetched again, merged three ways and
   written over the new version. New calendar activities of the user are created with
   ``If-None-Match: *``; activities deleted here are deleted there (``If-Match``). Only the
   modelled fields are rewritten in the component received; other properties, attendees and
   their parameters stay, and every organizer and attendee is marked ``SCHEDULE-AGENT=CLIENT``
   so that the server never sends an invitation or a cancellation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import icalendar
from crmcore.errors import ValidationError
from crmcore.records import Record

from crm_calendar_sync import links
from crm_calendar_sync.credentials import account_password
from crm_calendar_sync.dav import DavCollection, DavError, InvalidSyncToken, SyncReport
from crm_calendar_sync.entities import CALENDAR_KINDS
from crm_calendar_sync.exporter import PRODID, component_for, participant_addresses
from crm_calendar_sync.importer import apply_events, snapshot
from crm_calendar_sync.merge import merge
from crm_calendar_sync.parse import ParsedEvent, fields_hash, read_calendar

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["PROVIDER", "SyncSummary", "sync_account"]

PROVIDER = "caldav"


@attrs.frozen
class SyncSummary:
    """What a sync did."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    merged: int = 0
    conflicts: int = 0
    written: int = 0
    requests: int = 0
    full: bool = False
    skipped: tuple[str, ...] = ()

    def line(self) -> str:
        return (f"created {self.created}, updated {self.updated}, deleted {self.deleted}, merged {self.merged}, "
                f"conflicts {self.conflicts} ({self.written} written, {self.requests} requests"
                f"{', full resync' if self.full else ''})")


def sync_account(uow: UnitOfWork, account: Record, *, password: str | None = None) -> SyncSummary:
    """Synchronise CalDAV *account* both ways (see the module docs).

    :param password: the server password (default: the account's, decrypted).
    :raises ValidationError: for an account that is not a CalDAV account with a URL.
    """
    if account.get("kind") != "caldav" or not account.get("url"):
        raise ValidationError({"url": [f"calendar account {account.id} ({account.get('name')!r}) is not a CalDAV "
                                       "account with a URL; set kind=caldav and url"]}, entity="calendar_account")
    secret = password if password is not None else account_password(uow.crm, account)
    dav = DavCollection(account["url"], account.get("username"), secret)
    return _Sync(uow, account, dav).run()


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return snapshot(values)


def _no_scheduling(component: icalendar.cal.Component) -> None:
    for name in ("ORGANIZER", "ATTENDEE"):
        found = component.get(name)
        for prop in found if isinstance(found, list) else ([found] if found is not None else []):
            prop.params["SCHEDULE-AGENT"] = "CLIENT"


class _Sync:
    """One sync of one account: the state read once, then the three steps."""

    def __init__(self, uow: UnitOfWork, account: Record, dav: DavCollection) -> None:
        self.uow, self.account, self.dav = uow, account, dav
        self.raw = uow.raw(links.PLUGIN_NAME)
        user_id = account.get("user_id")
        self.owner = uow.get("user", user_id) if user_id is not None else None
        self.zone = self.owner.get("timezone") if self.owner is not None else None
        self.counts = {"created": 0, "updated": 0, "deleted": 0, "merged": 0, "conflicts": 0, "written": 0}
        self.skipped: list[str] = []
        self.conflict_rows: list[dict[str, Any]] = []
        self.merged_keys: set[tuple[str, str]] = set()
        self.touched: set[str] = set()  # UIDs already settled in this sync

    def __repr__(self) -> str:
        return f"<_Sync account={self.account.id} {self.dav!r}>"

    # -- state -------------------------------------------------------------------------------

    def _load(self) -> None:
        self.links = {(k.uid, k.recurrence_id): k for k in links.account_links(self.raw, self.account.id)}
        self._by_uid: dict[str, list[str]] | None = None
        self.aliases = links.account_aliases(self.raw, self.account.id, PROVIDER)
        by_id = {k.id: k for k in self.links.values()}
        self.href_of = {by_id[event].uid: href for href, (event, _) in self.aliases.items() if event in by_id}
        self.records = {r.id: r for r in self.uow.get_many("activity", {k.activity_id for k in self.links.values()})}

    def _uid_links(self, uid: str) -> list[links.EventLink]:
        return sorted((self.links[(uid, rid)] for rid in self._recurrence_ids(uid)), key=lambda k: k.recurrence_id)

    def _recurrence_ids(self, uid: str) -> list[str]:
        if self._by_uid is None:  # an index of the links by UID, rebuilt after the links change
            self._by_uid = {}
            for key in self.links:
                self._by_uid.setdefault(key[0], []).append(key[1])
        return [rid for rid in self._by_uid.get(uid, ()) if (uid, rid) in self.links]

    # -- step 1: what changed there ------------------------------------------------------------

    def _report(self) -> tuple[SyncReport, bool]:
        token, ctag = links.collection_state(self.raw, self.account.id, self.dav.url)
        try:
            if token:
                try:
                    return self.dav.sync(token), False
                except InvalidSyncToken:  # expired or unknown: everything, reconciled by UID
                    return self.dav.sync(None), True
            return self.dav.sync(None), True
        except DavError:
            pass
        current = self.dav.ctag()  # no sync-collection report: the ctag, then a listing
        if current is not None and current == ctag:
            return SyncReport({}, (), None, complete=False), False
        return SyncReport(self.dav.listing(), (), None, complete=True), True

    def run(self) -> SyncSummary:
        self._load()
        report, full = self._report()
        deleted = set(report.deleted)
        if report.complete:
            deleted |= {href for href in self.aliases if href not in report.changed}
        wanted = sorted(href for href, etag in report.changed.items()
                        if etag is None or self.aliases.get(href, (None, None))[1] != etag)
        items = self.dav.fetch(wanted) if wanted else []
        self._take_remote(items)
        self._remote_deletions(deleted)
        self._push_local()
        links.record_conflicts(self.raw, self.account.id, self.conflict_rows, self.merged_keys)
        ctag = self.dav.ctag() if report.token is None else None
        links.save_collection_state(self.raw, self.account.id, self.dav.url, report.token, ctag)
        return SyncSummary(**self.counts, requests=self.dav.requests, full=full, skipped=tuple(self.skipped))

    # -- step 2: each remote event -------------------------------------------------------------

    def _parse(self, data: str, href: str) -> list[ParsedEvent]:
        events, skipped = read_calendar(data, name=href, default_timezone=self.zone)
        self.skipped.extend(skipped)
        return events

    def _take_remote(self, items: Sequence[Any]) -> None:
        incoming: list[ParsedEvent] = []
        hrefs: dict[str, tuple[str, str | None]] = {}
        merges: list[tuple[str, list[ParsedEvent], str, str | None]] = []
        for item in items:
            events = self._parse(item.data, item.href)
            if not events:
                continue
            uid = events[0].uid
            hrefs[uid] = (item.href, item.etag)
            both = [e for e in events if self._changed_here(e.key)]
            if both:
                merges.append((uid, events, item.href, item.etag))
            else:
                incoming.extend(events)
                self._drop_missing(uid, events)
            self.touched.add(uid)
        if incoming:
            summary = apply_events(self.uow, self.account.id, incoming, owner=self.owner)
            self.counts["created"] += summary.created
            self.counts["updated"] += summary.updated
        self._load_links_of(hrefs)
        for uid, events, href, etag in merges:
            self._merge_and_write(uid, events, href, etag)

    def _changed_here(self, key: tuple[str, str]) -> bool:
        link = self.links.get(key)
        record = self.records.get(link.activity_id) if link is not None else None
        return record is not None and fields_hash(record.values) != link.fields_hash  # type: ignore[union-attr]

    def _drop_missing(self, uid: str, events: Sequence[ParsedEvent]) -> None:
        """Occurrences of *uid* linked here that the server's item no longer has: deleted there."""
        present = {event.key for event in events}
        gone = [k for k in self._uid_links(uid) if k.key not in present and k.recurrence_id]
        self._delete_local(gone)

    def _load_links_of(self, hrefs: Mapping[str, tuple[str, str | None]]) -> None:
        """Re-read the links after events came in, and record the hrefs and ETags they came from."""
        if not hrefs:
            return
        fresh = links.read_links(self.raw, self.account.id, hrefs)
        self.links.update(fresh)
        self._by_uid = None
        first: dict[str, int] = {}  # the link an item's href points at: its series, else its first event
        for link in sorted(fresh.values(), key=lambda k: (k.recurrence_id != "", k.id)):
            first.setdefault(link.uid, link.id)
        aliases = {href: (first[uid], etag) for uid, (href, etag) in hrefs.items() if uid in first}
        links.add_aliases(self.raw, self.account.id, PROVIDER, aliases)
        self.aliases.update(aliases)
        self.href_of.update({uid: href for uid, (href, _) in hrefs.items()})
        missing = {k.activity_id for k in fresh.values()} - set(self.records)
        self.records.update({r.id: r for r in self.uow.get_many("activity", missing)})

    def _merge_and_write(self, uid: str, events: Sequence[ParsedEvent], href: str, etag: str | None) -> None:
        """Merge the server's *events* of *uid* with the activities, then write the result over *etag*."""
        incoming = [e for e in events if e.key not in self.links or self.links[e.key].activity_id not in self.records]
        if incoming:
            summary = apply_events(self.uow, self.account.id, incoming, owner=self.owner)
            self.counts["created"] += summary.created
            self._load_links_of({uid: (href, etag)})
        self._merge_events_only(uid, [e for e in events if e not in incoming])
        self._write(uid, href, etag)

    # -- deletions ---------------------------------------------------------------------------------

    def _delete_local(self, gone: Sequence[links.EventLink]) -> None:
        if not gone:
            return
        records = [self.records[k.activity_id] for k in gone if k.activity_id in self.records]
        doomed = {r.id for r in records}
        masters = [r for r in records if r.get("series_id") not in doomed]  # overrides go with their series
        if masters:
            self.uow.delete_many("activity", masters)
            self.counts["deleted"] += len(masters)
        links.delete_links(self.raw, [k.id for k in gone])
        for k in gone:
            self.links.pop(k.key, None)
            self.records.pop(k.activity_id, None)

    def _remote_deletions(self, hrefs: Iterable[str]) -> None:
        by_id = {k.id: k for k in self.links.values()}
        for href in sorted(hrefs):
            event = self.aliases.pop(href, (None, None))[0]
            link = by_id.get(event) if event is not None else None
            if link is None or link.uid in self.touched:
                continue
            self._delete_local(self._uid_links(link.uid))
            self.touched.add(link.uid)

    # -- step 3: local changes go out ------------------------------------------------------------

    def _push_local(self) -> None:
        for uid in sorted({k.uid for k in self.links.values()} - self.touched):
            uid_links = self._uid_links(uid)
            master = next((k for k in uid_links if not k.recurrence_id), uid_links[0])
            href = self.href_of.get(uid)
            if href is None:
                continue  # linked from an earlier import of this account, never on the server
            if master.activity_id not in self.records:  # deleted here: deleted there
                status = self.dav.delete(href, etag=self.aliases.get(href, (None, None))[1])
                if status != 412:
                    links.delete_links(self.raw, [k.id for k in uid_links])
                    self.aliases.pop(href, None)
                    self.counts["deleted"] += 1
                continue
            changed = [k for k in uid_links if k.activity_id not in self.records
                       or fields_hash(self.records[k.activity_id].values) != k.fields_hash]
            if changed:
                gone = [k for k in changed if k.activity_id not in self.records]
                links.delete_links(self.raw, [k.id for k in gone])
                for k in gone:
                    self.links.pop(k.key, None)
                self._write(uid, href, self.aliases.get(href, (None, None))[1])
        self._push_new()

    def _push_new(self) -> None:
        if self.owner is None:
            return
        linked = {k.activity_id for k in self.links.values()}
        mine = self.uow.query("activity").where(("kind", "in", list(CALENDAR_KINDS)), owner_id=self.owner.id).order_by("id").all()
        series = [r for r in mine if r.id not in linked and r.get("series_id") is None]
        for record in series:
            self.records[record.id] = record
        if series:
            for record in self.uow.find_many("activity", "series_id", [r.id for r in series]):
                self.records[record.id] = record
        for record in series:
            self._write(record.get("ical_uid"), self.dav.new_href(record.get("ical_uid")), None, first=record)

    def _members(self, uid: str, first: Record | None) -> list[Record]:
        if first is not None:
            overrides = [r for r in self.records.values() if r.get("series_id") == first.id]
            return [first, *sorted(overrides, key=lambda r: r.get("recurrence_id") or "")]
        found = [self.records[k.activity_id] for k in self._uid_links(uid) if k.activity_id in self.records]
        master = next((r for r in found if not r.get("recurrence_id")), None)
        if master is not None:  # overrides made here since the last sync go too
            found += [r for r in self.records.values() if r.get("series_id") == master.id and r not in found]
        return found

    def _body(self, members: Sequence[Record]) -> tuple[str, dict[int, str]]:
        calendar = icalendar.Calendar()
        calendar.add("PRODID", PRODID)
        calendar.add("VERSION", "2.0")
        people = participant_addresses(self.uow, members)
        texts: dict[int, str] = {}
        for record in members:
            link = self.links.get((record.get("ical_uid"), record.get("recurrence_id") or ""))
            component = component_for(record, link, people)
            _no_scheduling(component)
            texts[record.id] = component.to_ical().decode()
            calendar.add_component(component)
        calendar.add_missing_timezones()
        return calendar.to_ical().decode(), texts

    def _write(self, uid: str, href: str, etag: str | None, *, first: Record | None = None, again: bool = True) -> None:
        members = self._members(uid, first)
        if not members:
            return
        body, texts = self._body(members)
        status, new_etag = self.dav.put(href, body, etag=etag)
        if status == 412 and again:  # changed there meanwhile: fetch, merge, write over the new version
            fetched = self.dav.fetch([href])
            if not fetched:
                return
            events = self._parse(fetched[0].data, href)
            if first is not None:  # a new item met one of that UID: link, then merge as changed on both sides
                self.touched.add(uid)
                summary = apply_events(self.uow, self.account.id, [e for e in events if e.key not in self.links],
                                       owner=self.owner)
                self.counts["created"] += summary.created
                self._load_links_of({uid: (href, fetched[0].etag)})
                return
            self._merge_events_only(uid, events)
            self._write(uid, href, fetched[0].etag, again=False)
            return
        if status == 412:
            return
        self.counts["written"] += 1
        rows_new, rows_changed = [], []
        for record in members:
            key = (record.get("ical_uid"), record.get("recurrence_id") or "")
            row = {"account_id": self.account.id, "uid": key[0], "recurrence_id": key[1], "activity_id": record.id,
                   "fields_hash": fields_hash(record.values), "snapshot": _plain(record.values), "component": texts[record.id]}
            link = self.links.get(key)
            (rows_changed.append({**row, "id": link.id}) if link is not None else rows_new.append(row))
        links.insert_links(self.raw, rows_new)
        links.update_links(self.raw, rows_changed)
        fresh = links.read_links(self.raw, self.account.id, [uid])
        self.links.update(fresh)
        self._by_uid = None
        master = fresh.get((uid, "")) or next(iter(fresh.values()))
        links.add_aliases(self.raw, self.account.id, PROVIDER, {href: (master.id, new_etag)})
        self.aliases[href] = (master.id, new_etag)
        self.href_of[uid] = href
        self.touched.add(uid)

    def _merge_events_only(self, uid: str, events: Sequence[ParsedEvent]) -> None:
        plan = []
        for event in events:
            link = self.links.get(event.key)
            record = self.records.get(link.activity_id) if link is not None else None
            if record is None or link is None:
                continue
            outcome = merge(link.snapshot, _plain(record.values), _plain(event.values))
            changes = {n: event.values.get(n) for n in outcome.remote_fields if record.get(n) != event.values.get(n)}
            if changes:
                plan.append((record, changes))
            self.merged_keys.add(event.key)
            self.counts["conflicts"] += len(outcome.conflicts)
            for group in outcome.conflicts:
                self.conflict_rows.append({"uid": uid, "recurrence_id": event.recurrence_id, "activity_id": record.id,
                                           "field": group, "base": link.snapshot, "local": _plain(record.values),
                                           "remote": _plain(event.values)})
            self.links[event.key] = attrs.evolve(link, component=event.component)
        for record in self.uow.update_many("activity", plan) if plan else []:
            self.records[record.id] = record
        self.counts["merged"] += 1

