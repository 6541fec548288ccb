"""The message archive: e-mails from ``.eml`` and ``.mbox`` files and from an IMAP mailbox,
kept as activities of kind ``email`` on the timelines of the people and companies they involve.

:func:`read_messages` reads a file (one message, or an mbox of many) into :class:`MailMessage`
values; :func:`archive_messages` writes a batch of them, set-based:

- a message is keyed by its ``Message-ID`` (one without gets a stable one made from its
  content): ``calendar_sync_message`` maps each archived Message-ID to its activity, so the same
  message from two files, a file and a mailbox, or one mailbox fetched twice, is archived once;
- the addresses of the sender and the recipients (``From``, ``To``, ``Cc``) are matched, without
  case, with users, contacts and accounts (their ``email``, ``find_many``); a message that
  involves no known contact or account is left out (it is counted, and archived by a later run
  once the person is known);
- the activity (``email``, done, at the message's date, subject and plain text) names the
  sender's contact (else the first recipient's) and its account (else the account whose
  address it involves); every contact and user involved is listed in ``participants``, and ``calendar_sync_message_party`` links the message
  to each contact and account involved, so it is on each one's timeline
  (``crm_timeline_records``).

:func:`fetch_imap` reads an IMAP mailbox of a user's ``imap`` account incrementally by UID:
the UIDVALIDITY and the last UID archived are kept as the mailbox's sync state; messages are
read with ``BODY.PEEK[]`` (nothing is marked as read) in batches of 200. Nothing is ever sent.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
import hashlib
import html
import imaplib
import mailbox
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import attrs
import sqlalchemy as sa
from crmcore.errors import ValidationError

from crm_calendar_sync import links
from crm_calendar_sync.credentials import account_password

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["ArchiveSummary", "MailMessage", "archive_messages", "fetch_imap", "read_messages", "timeline_records"]

_SUBJECT_LENGTH = 200
_CHUNK = 500
_FETCH_BATCH = 200
_TAGS = re.compile(r"<[^>]+>")


@attrs.frozen
class MailMessage:
    """One e-mail: its Message-ID, subject, date (aware), sender and recipients (``(address,
    name)``, addresses in lower case), and plain text."""

    message_id: str
    subject: str
    sent_at: dt.datetime | None
    sender: tuple[str, str] | None
    recipients: tuple[tuple[str, str], ...]
    body: str

    @property
    def addresses(self) -> list[str]:
        """The sender's address first, then the recipients'."""
        found = [self.sender[0]] if self.sender else []
        return [*found, *(address for address, _ in self.recipients if address not in found)]


@attrs.frozen
class ArchiveSummary:
    """What archiving a batch of messages did."""

    messages: int
    created: int
    duplicates: int
    unmatched: int
    skipped: tuple[str, ...] = ()

    def line(self) -> str:
        return (f"{self.messages} messages: {self.created} archived, {self.duplicates} already archived, "
                f"{self.unmatched} without a known contact, {len(self.skipped)} skipped")


# -- reading ---------------------------------------------------------------------------------------


def _text(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset: the bytes as Latin-1
        payload = part.get_payload(decode=True)
        content = payload.decode("latin-1") if isinstance(payload, bytes) else ""
    if part.get_content_type() == "text/html":
        content = html.unescape(_TAGS.sub(" ", content))
    return str(content).replace("\r\n", "\n").strip()


def parse_message(raw: bytes) -> MailMessage:
    """The :class:`MailMessage` of one RFC 5322 message.

    :raises ValueError: when it has no sender and no recipient.
    """
    message = email.message_from_bytes(raw, policy=email.policy.default)
    people = email.utils.getaddresses([str(v) for v in message.get_all("from", [])])
    recipients = email.utils.getaddresses([str(v) for name in ("to", "cc") for v in message.get_all(name, [])])
    sender = next(((address.strip().lower(), name) for name, address in people if "@" in address), None)
    listed = tuple(dict.fromkeys((address.strip().lower(), name) for name, address in recipients if "@" in address))
    if sender is None and not listed:
        raise ValueError("it has no sender and no recipient (From, To, Cc)")
    sent_at = None
    if message["date"]:
        try:
            sent_at = email.utils.parsedate_to_datetime(str(message["date"]))
        except (TypeError, ValueError):
            sent_at = None
        if sent_at is not None and sent_at.tzinfo is None:
            sent_at = sent_at.replace(tzinfo=dt.UTC)
    message_id = str(message["message-id"] or "").strip()
    if not message_id:  # a stable key from the content: archiving it again finds it
        message_id = f"<{hashlib.sha256(raw).hexdigest()[:40]}@crmcore.archive>"
    subject = " ".join(str(message["subject"] or "").split()) or "(no subject)"
    return MailMessage(message_id, subject[:_SUBJECT_LENGTH], sent_at, sender, listed, _text(message))


def read_messages(source: Path | bytes, *, name: str | None = None) -> tuple[list[MailMessage], list[str]]:
    """The messages of an ``.eml`` file (one message) or an ``.mbox`` file (many); a message
    that cannot be read is skipped with a line naming the file, its number and why.

    :param source: a path, or the content of a file (an mbox when it starts with ``From ``).
    """
    data = source.read_bytes() if isinstance(source, Path) else source
    label = name or (source.name if isinstance(source, Path) else "messages")
    if data.startswith(b"From "):
        raws = _mbox_messages(data)
    else:
        raws = [data]
    found: list[MailMessage] = []
    skipped: list[str] = []
    for number, raw in enumerate(raws, start=1):
        try:
            found.append(parse_message(raw))
        except (ValueError, TypeError, LookupError) as exc:
            skipped.append(f"{label}: message {number} skipped: {exc}")
    return found, skipped


def _mbox_messages(data: bytes) -> list[bytes]:
    with tempfile.TemporaryDirectory(prefix="crm-mbox-") as folder:
        path = Path(folder) / "messages.mbox"
        path.write_bytes(data)
        box = mailbox.mbox(str(path), create=False)
        try:
            return [box.get_bytes(key) for key in box.iterkeys()]
        finally:
            box.close()


# -- archiving --------------------------------------------------------------------------------------


def _archived(raw: Any, message_ids: Iterable[str]) -> set[str]:
    wanted = sorted(set(message_ids))
    found: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        found.update(raw.execute(sa.select(links.MESSAGE.c.message_id).where(links.MESSAGE.c.message_id.in_(chunk))).scalars())
    return found


def archive_messages(uow: UnitOfWork, messages: Sequence[MailMessage], *, owner: Record | None = None,
                     source_account_id: int | None = None, skipped: Iterable[str] = ()) -> ArchiveSummary:
    """Archive *messages* (see the module docs): one activity per new Message-ID involving a
    known contact or account, linked to every contact and account involved.

    :param owner: the user owning the activities made.
    :param source_account_id: the ``imap`` account they came from, if any.
    """
    raw = uow.raw(links.PLUGIN_NAME)
    unique = list({m.message_id: m for m in messages}.values())
    there = _archived(raw, (m.message_id for m in unique))
    fresh = [m for m in unique if m.message_id not in there]
    addresses = {address for m in fresh for address in m.addresses}
    contacts: dict[str, Record] = {}
    for contact in reversed(uow.find_many("contact", "email", addresses, ignore_case=True)) if addresses else []:
        contacts[str(contact.get("email")).lower()] = contact
    users = {str(u.get("email")).lower(): u.id
             for u in (uow.find_many("user", "email", addresses, ignore_case=True, fields=("email",)) if addresses else [])}
    companies = {str(a.get("email")).lower(): a.id
                 for a in (uow.find_many("account", "email", addresses, ignore_case=True, fields=("email",)) if addresses else [])}
    rows: list[dict[str, Any]] = []
    kept: list[tuple[MailMessage, list[Record], list[int]]] = []
    for message in fresh:
        people = [contacts[a] for a in message.addresses if a in contacts]
        by_address = [companies[a] for a in message.addresses if a in companies]
        if not people and not by_address:
            continue
        first = people[0] if people else None
        participants = [{"contact_id": p.id} for p in people] + [{"user_id": users[a]} for a in message.addresses if a in users]
        rows.append({"kind": "email", "subject": message.subject, "description": message.body or None,
                     "starts_at": message.sent_at, "status": "done", "contact_id": first.id if first else None,
                     "account_id": (first.get("account_id") if first else None) or (by_address[0] if by_address else None),
                     "participants": participants or None, "owner_id": owner.id if owner is not None else None})
        kept.append((message, people, by_address))
    made = uow.create_many("activity", rows) if rows else []
    if made:
        raw.execute(sa.insert(links.MESSAGE), [
            {"message_id": message.message_id, "activity_id": record.id, "account_id": source_account_id}
            for (message, _, _), record in zip(kept, made, strict=True)])
        parties = []
        for (_, people, by_address), record in zip(kept, made, strict=True):
            accounts = {p.get("account_id") for p in people if p.get("account_id") is not None} | set(by_address)
            parties += [{"activity_id": record.id, "contact_id": p.id, "account_id": None} for p in people]
            parties += [{"activity_id": record.id, "contact_id": None, "account_id": a} for a in sorted(accounts)]
        raw.execute(sa.insert(links.MESSAGE_PARTY), parties)
    return ArchiveSummary(messages=len(messages), created=len(made), duplicates=len(messages) - len(fresh),
                          unmatched=len(fresh) - len(made), skipped=tuple(skipped))


def timeline_records(uow: UnitOfWork, entity: str, record_id: int) -> dict[str, list[int]] | None:
    """The archived e-mails involving contact or account *record_id* (for its timeline)."""
    if entity not in ("contact", "account"):
        return None
    column = links.MESSAGE_PARTY.c.contact_id if entity == "contact" else links.MESSAGE_PARTY.c.account_id
    raw = uow.raw(links.PLUGIN_NAME)
    ids = raw.execute(sa.select(links.MESSAGE_PARTY.c.activity_id).where(column == record_id)).scalars().all()
    return {"activity": sorted(set(ids))} if ids else None


# -- IMAP -------------------------------------------------------------------------------------------


@attrs.frozen
class ImapSummary:
    """What fetching a mailbox did: the archive's summary and the UIDs read."""

    archive: ArchiveSummary
    fetched: int
    full: bool

    def line(self) -> str:
        return f"{self.fetched} new in the mailbox{' (full read)' if self.full else ''}; {self.archive.line()}"


def _imap_target(url: str) -> tuple[str, int, bool, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise ValidationError({"url": [f"{url!r} is not an IMAP mailbox URL; write imap://host:port/INBOX "
                                       "(or imaps:// for TLS)"]}, entity="calendar_account")
    secure = parts.scheme == "imaps"
    return parts.hostname, parts.port or (993 if secure else 143), secure, unquote(parts.path.strip("/")) or "INBOX"


def fetch_imap(uow: UnitOfWork, account: Record, *, password: str | None = None) -> ImapSummary:
    """Archive the messages of *account*'s mailbox not read before (see the module docs).

    :raises ValidationError: for an account that is not an ``imap`` account with a mailbox URL.
    :raises imaplib.IMAP4.error: when the server refuses the login or the mailbox.
    """
    if account.get("kind") != "imap" or not account.get("url"):
        raise ValidationError({"url": [f"calendar account {account.id} ({account.get('name')!r}) is not an IMAP "
                                       "account with a mailbox URL; set kind=imap and url"]}, entity="calendar_account")
    host, port, secure, folder = _imap_target(account["url"])
    secret = password if password is not None else account_password(uow.crm, account)
    raw = uow.raw(links.PLUGIN_NAME)
    state, _ = links.collection_state(raw, account.id, account["url"])
    validity_seen, _, last_text = (state or "").partition(":")
    client = imaplib.IMAP4_SSL(host, port) if secure else imaplib.IMAP4(host, port)
    try:
        client.login(account.get("username") or "", secret or "")
        status, _ = client.select(_quoted(folder), readonly=True)
        if status != "OK":
            raise imaplib.IMAP4.error(f"the server refused mailbox {folder!r}")
        validity = (client.response("UIDVALIDITY")[1] or [b""])[0]
        validity_text = validity.decode() if isinstance(validity, bytes) else str(validity or "")
        full = validity_text != validity_seen  # a new mailbox, or its UIDs were renumbered: read it all
        last = int(last_text) if last_text.isdigit() and not full else 0
        _, found = client.uid("SEARCH", f"UID {last + 1}:*")
        uids = sorted(int(u) for u in (found[0] or b"").split() if int(u) > last)  # n:* always names the last one
        raws: list[bytes] = []
        for start in range(0, len(uids), _FETCH_BATCH):
            chunk = ",".join(str(u) for u in uids[start:start + _FETCH_BATCH])
            _, answer = client.uid("FETCH", chunk, "(BODY.PEEK[])")
            raws += [item[1] for item in answer if isinstance(item, tuple)]
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    messages, skipped = [], []
    for number, content in enumerate(raws, start=1):
        try:
            messages.append(parse_message(content))
        except (ValueError, TypeError, LookupError) as exc:
            skipped.append(f"{folder}: message {number} of this fetch skipped: {exc}")
    owner_id = account.get("user_id")
    owner = uow.get("user", owner_id) if owner_id is not None else None
    summary = archive_messages(uow, messages, owner=owner, source_account_id=account.id, skipped=skipped)
    newest = max(uids) if uids else last
    links.save_collection_state(raw, account.id, account["url"], f"{validity_text}:{newest}", None)
    return ImapSummary(summary, len(uids), full)


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
