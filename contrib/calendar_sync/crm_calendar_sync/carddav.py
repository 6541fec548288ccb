"""Two-way sync of a CardDAV address book with the contacts of its user, on the same engine as
the calendars.

:func:`sync_addressbook`, in the caller's unit of work (all or nothing on the database side):

1. **What changed remotely**: a ``sync-collection`` report from the stored token (RFC 6578);
   without one, or when the server refuses it, the full listing, reconciled by UID with the
   cards linked (``calendar_sync_card``), never deleting and re-creating; a server without
   sync tokens is asked for its ctag, then its ETags. Only cards whose ETag is not the one
   stored are fetched (``addressbook-multiget``).
2. **Each remote card**: a card not linked yet is matched with a contact by UID, e-mail or
   phone, and only then created (:func:`~crm_calendar_sync.contacts.apply_cards`: never a
   duplicate); a linked card whose contact did not change here updates the contact in the
   fields that differ; a contact changed on both sides is merged field group by field group
   against the snapshot of the last sync (:func:`~crm_calendar_sync.merge.merge`), a group
   changed differently on both sides keeping the CRM's value and being listed
   (``calendar_sync_conflict``), and the merge is written back. A card deleted there deletes
   its contact.
3. **Local changes go out**: a changed contact is written over the version last seen
   (``If-Match``; on a precondition failure fetched again, merged and written over the new
   version); a contact of the user not in the address book yet is created with
   ``If-None-Match: *``; a contact deleted here is deleted there. Only the properties the
   contact fields map to are rewritten in the card received (the others, and the values of
   a property the CRM keeps one of, stay).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ValidationError

from crm_calendar_sync import links
from crm_calendar_sync.contacts import (
    CARD_FIELDS,
    ContactCard,
    _accounts,
    apply_cards,
    export_vcards,
    read_vcards,
)
from crm_calendar_sync.credentials import account_password
from crm_calendar_sync.dav import DavCollection, DavError, InvalidSyncToken, RemoteItem, SyncReport
from crm_calendar_sync.merge import merge
from crm_calendar_sync.parse import plain_value
from crm_calendar_sync.vcard_patch import patch_card

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["CONTACT_GROUPS", "CardSyncSummary", "contact_hash", "contact_plain", "sync_addressbook"]

#: The contact fields a card is compared on (the company as the contact's account).
SYNCED_FIELDS = (*CARD_FIELDS, "account_id")
#: The merged units of a contact changed on both sides.
CONTACT_GROUPS: dict[str, tuple[str, ...]] = {
    "name": ("first_name", "last_name"),
    "email": ("email",),
    "phone": ("phone",),
    "mobile": ("mobile",),
    "title": ("title",),
    "birthdate": ("birthdate",),
    "address": ("mailing_street", "mailing_city", "mailing_postal_code", "mailing_country"),
    "description": ("description",),
    "company": ("account_id",),
}


def contact_plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """The synced fields of *values* as JSON (dates as ISO text, empty as ``None``)."""
    return {name: plain_value(values.get(name)) or None for name in SYNCED_FIELDS}


def contact_hash(values: Mapping[str, Any]) -> str:
    """A hash of the synced fields of *values*."""
    text = json.dumps(list(contact_plain(values).values()), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@attrs.frozen
class CardSyncSummary:
    """What a sync of an address book did."""

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


def sync_addressbook(uow: UnitOfWork, account: Record, *, password: str | None = None) -> CardSyncSummary:
    """Synchronise CardDAV *account* both ways (see the module docs).

    :param password: the server password (default: the account's, decrypted).
    :raises ValidationError: for an account that is not a CardDAV account with a URL.
    """
    if account.get("kind") != "carddav" or not account.get("url"):
        raise ValidationError({"url": [f"calendar account {account.id} ({account.get('name')!r}) is not a CardDAV "
                                       "account with a URL; set kind=carddav and url"]}, entity="calendar_account")
    secret = password if password is not None else account_password(uow.crm, account)
    dav = DavCollection(account["url"], account.get("username"), secret, kind="addressbook")
    return _CardSync(uow, account, dav).run()


class _CardSync:
    """One sync of one address book: the state read once, then the three steps."""

    def __init__(self, uow: UnitOfWork, account: Record, dav: DavCollection) -> None:
        self.uow, self.account, self.dav = uow, account, dav
        self.raw = uow.raw(links.PLUGIN_NAME)
        self.owner_id = account.get("user_id")
        self.counts = dict.fromkeys(("created", "updated", "deleted", "merged", "conflicts", "written"), 0)
        self.skipped: list[str] = []
        self.conflict_rows: list[dict[str, Any]] = []
        self.merged_keys: set[tuple[str, str]] = set()
        self.touched: set[str] = set()
        self.rows: dict[str, dict[str, Any]] = {}  # link rows to save, by UID

    def __repr__(self) -> str:
        return f"<_CardSync account={self.account.id} {self.dav!r}>"

    def run(self) -> CardSyncSummary:
        self.links = {k.uid: k for k in links.card_links(self.raw, self.account.id)}
        self.by_href = {k.href: k for k in self.links.values() if k.href}
        self.contacts = {r.id: r for r in self.uow.get_many("contact", {k.contact_id for k in self.links.values()})}
        report, full = self._report()
        deleted = set(report.deleted)
        if report.complete:
            deleted |= {href for href in self.by_href if href not in report.changed}
        wanted = sorted(href for href, etag in report.changed.items()
                        if etag is None or href not in self.by_href or self.by_href[href].etag != etag)
        self._take_remote(self.dav.fetch(wanted) if wanted else [])
        self._remote_deletions(deleted - set(report.changed))
        self._push_local()
        self._push_new()
        links.save_card_links(self.raw, list(self.rows.values()))
        links.record_conflicts(self.raw, self.account.id, self.conflict_rows, self.merged_keys)
        ctag = self.dav.ctag() if report.token is None else None
        links.save_collection_state(self.raw, self.account.id, self.dav.url, report.token, ctag)
        return CardSyncSummary(**self.counts, requests=self.dav.requests, full=full, skipped=tuple(self.skipped))

    # -- step 1 ------------------------------------------------------------------------------

    def _report(self) -> tuple[SyncReport, bool]:
        token, ctag = links.collection_state(self.raw, self.account.id, self.dav.url)
        try:
            if token:
                try:
                    return self.dav.sync(token), False
                except InvalidSyncToken:
                    return self.dav.sync(None), True
            return self.dav.sync(None), True
        except DavError:
            pass
        current = self.dav.ctag()
        if current is not None and current == ctag:
            return SyncReport({}, (), None, complete=False), False
        return SyncReport(self.dav.listing(), (), None, complete=True), True

    # -- step 2 ------------------------------------------------------------------------------

    def _read(self, item: RemoteItem) -> ContactCard | None:
        cards, skipped = read_vcards(item.data or "", name=item.href)
        self.skipped.extend(skipped)
        return cards[0] if cards else None

    def _remote_plain(self, card: ContactCard) -> dict[str, Any]:
        values: dict[str, Any] = dict(card.values)
        if card.company:
            values["account_id"] = _accounts(self.uow, {card.company}, self.owner_id)[card.company.lower()]
        return contact_plain(values)

    def _link_row(self, uid: str, record: Record, card: str | None, href: str | None, etag: str | None) -> None:
        link = self.links.get(uid)
        self.rows[uid] = {"id": link.id if link is not None else None, "account_id": self.account.id, "uid": uid,
                          "contact_id": record.id, "fields_hash": contact_hash(record.values),
                          "snapshot": contact_plain(record.values), "card": card, "href": href, "etag": etag}
        self.touched.add(uid)

    def _take_remote(self, items: Sequence[RemoteItem]) -> None:
        fresh: list[tuple[RemoteItem, ContactCard, str]] = []
        plan: list[tuple[Record, dict[str, Any]]] = []
        applied: list[tuple[RemoteItem, str]] = []
        merges: list[tuple[RemoteItem, ContactCard, str]] = []
        for item in items:
            card = self._read(item)
            if card is None:
                continue
            uid = card.uid or item.href
            link = self.links.get(uid)
            record = self.contacts.get(link.contact_id) if link is not None else None
            if link is None or record is None:
                fresh.append((item, card, uid))
            elif contact_hash(record.values) != link.fields_hash:
                merges.append((item, card, uid))
            else:
                remote = self._remote_plain(card)
                changes = {name: remote[name] for name in SYNCED_FIELDS if contact_plain(record.values)[name] != remote[name]}
                if changes:
                    plan.append((record, changes))
                applied.append((item, uid))
        for record in self.uow.update_many("contact", plan) if plan else []:
            self.contacts[record.id] = record
            self.counts["updated"] += 1
        for item, uid in applied:
            self._link_row(uid, self.contacts[self.links[uid].contact_id], item.data, item.href, item.etag)
        if fresh:
            cards = [attrs.evolve(card, uid=uid) for _, card, uid in fresh]
            summary = apply_cards(self.uow, cards, owner_id=self.owner_id)
            self.counts["created"] += summary.created
            self.counts["updated"] += summary.updated
            made = {r.id: r for r in self.uow.get_many("contact", set(summary.contact_ids))}
            self.contacts.update(made)
            for (item, _, uid), contact_id in zip(fresh, summary.contact_ids, strict=True):
                self._link_row(uid, made[contact_id], item.data, item.href, item.etag)
        for item, card, uid in merges:
            self._merge_and_write(item, card, uid)

    def _merge_and_write(self, item: RemoteItem, card: ContactCard, uid: str, *, again: bool = True) -> None:
        """Merge the server's *card* with its contact, changed on both sides, then write the
        result over the server's version."""
        link = self.links[uid]
        record = self.contacts[link.contact_id]
        local, remote = contact_plain(record.values), self._remote_plain(card)
        outcome = merge(link.snapshot, local, remote, groups=CONTACT_GROUPS)
        changes = {name: remote[name] for name in outcome.remote_fields if local[name] != remote[name]}
        if changes:
            (record,) = self.uow.update_many("contact", [(record, changes)])
            self.contacts[record.id] = record
        self.counts["merged"] += 1
        self.counts["conflicts"] += len(outcome.conflicts)
        self.merged_keys.add((uid, ""))
        self.conflict_rows += [{"uid": uid, "recurrence_id": "", "activity_id": None, "field": group,
                                "base": link.snapshot, "local": local, "remote": remote} for group in outcome.conflicts]
        self.links[uid] = attrs.evolve(link, snapshot=remote, card=item.data, href=item.href, etag=item.etag)
        self._write(uid, record, again=again)

    def _remote_deletions(self, hrefs: Iterable[str]) -> None:
        gone = [self.by_href[href] for href in sorted(hrefs) if href in self.by_href and self.by_href[href].uid not in self.touched]
        doomed = [self.contacts[k.contact_id] for k in gone if k.contact_id in self.contacts]
        if doomed:
            self.uow.delete_many("contact", doomed)
            self.counts["deleted"] += len(doomed)
        links.delete_card_links(self.raw, [k.id for k in gone])
        for k in gone:
            self.links.pop(k.uid, None)
            self.touched.add(k.uid)

    # -- step 3 ------------------------------------------------------------------------------

    def _company(self, record: Record) -> str | None:
        account_id = record.get("account_id")
        if account_id is None:
            return None
        found = self.uow.get_many("account", [account_id])
        return str(found[0].get("name")) if found else None

    def _write(self, uid: str, record: Record, *, again: bool = True) -> None:
        link = self.links[uid]
        text = patch_card(link.card or "", link.snapshot or {}, contact_plain(record.values), record.values,
                          self._company(record))
        status, etag = self.dav.put(link.href or self.dav.new_href(uid), text, etag=link.etag)
        if status == 412 and again:  # changed there meanwhile: fetch, merge, write over the new version
            fetched = self.dav.fetch([link.href]) if link.href else []
            card = self._read(fetched[0]) if fetched else None
            if card is not None:
                self._merge_and_write(fetched[0], card, uid, again=False)
            return
        if status == 412:
            return
        self.counts["written"] += 1
        self._link_row(uid, record, text, link.href, etag)

    def _push_local(self) -> None:
        for uid, link in sorted(self.links.items()):
            if uid in self.touched:
                continue
            record = self.contacts.get(link.contact_id)
            if record is None:  # deleted here: deleted there
                if link.href and self.dav.delete(link.href, etag=link.etag) != 412:
                    links.delete_card_links(self.raw, [link.id])
                    self.counts["deleted"] += 1
                continue
            if contact_hash(record.values) != link.fields_hash:
                self._write(uid, record)

    def _push_new(self) -> None:
        if self.owner_id is None:
            return
        linked = {k.contact_id for k in self.links.values()} | {row["contact_id"] for row in self.rows.values()}
        mine = [r for r in self.uow.query("contact").where(owner_id=self.owner_id).order_by("id").all() if r.id not in linked]
        if not mine:
            return
        missing = [(r, {"vcard_uid": f"urn:uuid:{uuid.uuid4()}"}) for r in mine if not r.get("vcard_uid")]
        given = {r.id: r for r in self.uow.update_many("contact", missing)} if missing else {}
        mine = [given.get(r.id, r) for r in mine]
        texts = [part + "END:VCARD\r\n" for part in export_vcards(self.uow, mine).split("END:VCARD\r\n") if part.strip()]
        for record, text in zip(mine, texts, strict=True):
            uid = str(record.get("vcard_uid"))
            href = self.dav.new_href(uid)
            status, etag = self.dav.put(href, text, etag=None)
            if status == 412:  # a card of that name is there already: the next sync brings it in
                continue
            self.counts["written"] += 1
            self.links.pop(uid, None)
            self._link_row(uid, record, text, href, etag)
