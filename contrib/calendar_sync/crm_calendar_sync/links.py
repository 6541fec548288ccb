"""The plugin's own tables, which are not records: the link of each calendar event to its
activity, and the provider ids of an event (a CalDAV href, a Graph id) as aliases.

``calendar_sync_event`` holds one row per (calendar account, UID, RECURRENCE-ID) (an empty
RECURRENCE-ID for a series or a single event): the activity it is, a hash of the modelled
fields as last imported or synced, that snapshot itself (the base of a three-way merge) and the
component as received, whose properties the plugin does not model are written back unchanged.
``calendar_sync_alias`` maps a provider's own id of an event to the event row: one row per
(account, provider, remote id), never packed into one string, with the ETag last seen.
``calendar_sync_card`` links each card of a CardDAV address book (account, UID) to its
contact, with the same hash, snapshot and card as received, and the card's href and ETag.
``calendar_sync_message`` maps the Message-ID of each archived e-mail to its activity and
``calendar_sync_message_party`` links it to each contact and account it involves.
``calendar_sync_collection`` keeps the sync token (RFC 6578) and the ctag of each remote
collection of an account (for a mailbox: its UIDVALIDITY and the last UID archived); ``calendar_sync_conflict`` lists the fields changed on both sides to
different values, for a person to look at.

They are reached through the named raw API (``uow.raw("calendar_sync")``), in the unit of
work's transaction, with one statement per 500 keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

if TYPE_CHECKING:
    from crmcore.storage import RawConnection

__all__ = [
    "ALIAS",
    "CARD",
    "CardLink",
    "card_links",
    "delete_card_links",
    "save_card_links",
    "COLLECTION",
    "CONFLICT",
    "EVENT",
    "EventLink",
    "MESSAGE",
    "MESSAGE_PARTY",
    "PLUGIN_NAME",
    "account_aliases",
    "account_links",
    "add_aliases",
    "collection_state",
    "conflicts",
    "delete_links",
    "record_conflicts",
    "save_collection_state",
    "ensure_tables",
    "events_by_alias",
    "insert_links",
    "links_of_activities",
    "read_links",
    "table_ddl",
    "update_links",
]

PLUGIN_NAME = "calendar_sync"
_CHUNK = 500

METADATA = sa.MetaData()

EVENT = sa.Table(
    "calendar_sync_event",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("uid", sa.String(500), nullable=False),
    sa.Column("recurrence_id", sa.String(32), nullable=False, server_default=""),
    sa.Column("activity_id", sa.Integer, nullable=False),
    sa.Column("fields_hash", sa.String(64), nullable=False),
    sa.Column("snapshot", sa.JSON),
    sa.Column("component", sa.Text),
    sa.UniqueConstraint("account_id", "uid", "recurrence_id", name="uq_calendar_sync_event_key"),
)
EVENT_ACTIVITY_INDEX = sa.Index("ix_calendar_sync_event_activity_id", EVENT.c.activity_id)

ALIAS = sa.Table(
    "calendar_sync_alias",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.Integer, nullable=False),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("remote_id", sa.String(1000), nullable=False),
    sa.Column("etag", sa.String(255)),
    sa.UniqueConstraint("account_id", "provider", "remote_id", name="uq_calendar_sync_alias_key"),
)
ALIAS_EVENT_INDEX = sa.Index("ix_calendar_sync_alias_event_id", ALIAS.c.event_id)

COLLECTION = sa.Table(
    "calendar_sync_collection",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("url", sa.String(1000), nullable=False),
    sa.Column("sync_token", sa.String(1000)),
    sa.Column("ctag", sa.String(255)),
    sa.UniqueConstraint("account_id", "url", name="uq_calendar_sync_collection_key"),
)

CONFLICT = sa.Table(
    "calendar_sync_conflict",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("uid", sa.String(500), nullable=False),
    sa.Column("recurrence_id", sa.String(32), nullable=False, server_default=""),
    sa.Column("activity_id", sa.Integer),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("base", sa.JSON),
    sa.Column("local", sa.JSON),
    sa.Column("remote", sa.JSON),
    sa.UniqueConstraint("account_id", "uid", "recurrence_id", "field", name="uq_calendar_sync_conflict_key"),
)


CARD = sa.Table(
    "calendar_sync_card",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.Integer, nullable=False),
    sa.Column("uid", sa.String(500), nullable=False),
    sa.Column("contact_id", sa.Integer, nullable=False),
    sa.Column("fields_hash", sa.String(64), nullable=False),
    sa.Column("snapshot", sa.JSON),
    sa.Column("card", sa.Text),
    sa.Column("href", sa.String(1000)),
    sa.Column("etag", sa.String(255)),
    sa.UniqueConstraint("account_id", "uid", name="uq_calendar_sync_card_key"),
)
CARD_CONTACT_INDEX = sa.Index("ix_calendar_sync_card_contact_id", CARD.c.contact_id)


MESSAGE = sa.Table(
    "calendar_sync_message",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(998), nullable=False),
    sa.Column("activity_id", sa.Integer, nullable=False),
    sa.Column("account_id", sa.Integer),
    sa.UniqueConstraint("message_id", name="uq_calendar_sync_message_message_id"),
)

MESSAGE_PARTY = sa.Table(
    "calendar_sync_message_party",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("activity_id", sa.Integer, nullable=False),
    sa.Column("contact_id", sa.Integer),
    sa.Column("account_id", sa.Integer),
)
PARTY_CONTACT_INDEX = sa.Index("ix_calendar_sync_message_party_contact_id", MESSAGE_PARTY.c.contact_id)
PARTY_ACCOUNT_INDEX = sa.Index("ix_calendar_sync_message_party_account_id", MESSAGE_PARTY.c.account_id)


@attrs.frozen
class CardLink:
    """One row of ``calendar_sync_card``: a card of a CardDAV address book and its contact,
    with the hash and snapshot of the contact fields last synced, the card as received (its
    other properties are written back unchanged), its href and the ETag last seen."""

    id: int
    account_id: int
    uid: str
    contact_id: int
    fields_hash: str
    snapshot: dict[str, Any] | None
    card: str | None
    href: str | None
    etag: str | None


def card_links(raw: RawConnection, account_id: int) -> list[CardLink]:
    """Every card link of *account_id*, in id order (one query)."""
    rows = raw.execute(sa.select(CARD).where(CARD.c.account_id == account_id).order_by(CARD.c.id))
    return [CardLink(**row) for row in rows.mappings()]


def save_card_links(raw: RawConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert the card links without an ``id`` and update those with one (``contact_id,
    fields_hash, snapshot, card, href, etag``): one statement each."""
    fresh = [dict(row) for row in rows if row.get("id") is None]
    for row in fresh:
        row.pop("id", None)
    if fresh:
        raw.execute(sa.insert(CARD), fresh)
    known = [{"link_id": row["id"], **{f"new_{k}": row[k] for k in _CARD_VALUES}} for row in rows if row.get("id") is not None]
    if known:
        raw.execute(sa.update(CARD).where(CARD.c.id == sa.bindparam("link_id"))
                    .values({k: sa.bindparam(f"new_{k}") for k in _CARD_VALUES}), known)


_CARD_VALUES = ("contact_id", "fields_hash", "snapshot", "card", "href", "etag")


def delete_card_links(raw: RawConnection, link_ids: Iterable[int]) -> None:
    """Delete card links."""
    wanted = sorted(set(link_ids))
    for start in range(0, len(wanted), _CHUNK):
        raw.execute(sa.delete(CARD).where(CARD.c.id.in_(wanted[start:start + _CHUNK])))


@attrs.frozen
class EventLink:
    """One row of ``calendar_sync_event``."""

    id: int
    account_id: int
    uid: str
    recurrence_id: str
    activity_id: int
    fields_hash: str
    snapshot: dict[str, Any] | None
    component: str | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.uid, self.recurrence_id)


def table_ddl(dialect: str) -> list[tuple[str, str]]:
    """``(name, CREATE statement)`` of each table and index, for *dialect*."""
    compiler = postgresql.dialect() if dialect == "postgresql" else sqlite.dialect()
    made = []
    for table, indexes in ((EVENT, (EVENT_ACTIVITY_INDEX,)), (ALIAS, (ALIAS_EVENT_INDEX,)), (COLLECTION, ()), (CONFLICT, ()),
                           (CARD, (CARD_CONTACT_INDEX,)), (MESSAGE, ()),
                           (MESSAGE_PARTY, (PARTY_CONTACT_INDEX, PARTY_ACCOUNT_INDEX))):
        made.append((table.name, str(sa.schema.CreateTable(table).compile(dialect=compiler)).strip()))
        made.extend((str(index.name), str(sa.schema.CreateIndex(index).compile(dialect=compiler)).strip()) for index in indexes)
    return made


def ensure_tables(raw: RawConnection) -> list[str]:
    """Create the tables and indexes the database lacks (its migration makes them too; tests
    and throwaway databases build the schema from the registry). One line per table made."""
    return [f"calendar table {name} created" for name, statement in table_ddl(raw.dialect)
            if raw.ensure(name, statement) and not name.startswith("ix_")]


def read_links(raw: RawConnection, account_id: int, uids: Iterable[str]) -> dict[tuple[str, str], EventLink]:
    """The links of the events of *account_id* with those UIDs, by (UID, RECURRENCE-ID)."""
    wanted = sorted(set(uids))
    found: dict[tuple[str, str], EventLink] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        rows = raw.execute(sa.select(EVENT).where(EVENT.c.account_id == account_id, EVENT.c.uid.in_(chunk)))
        for row in rows.mappings():
            link = EventLink(**row)
            found[link.key] = link
    return found


def links_of_activities(raw: RawConnection, activity_ids: Iterable[int]) -> dict[int, list[EventLink]]:
    """Every link of those activities, by activity id (in link id order)."""
    wanted = sorted(set(activity_ids))
    found: dict[int, list[EventLink]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        rows = raw.execute(sa.select(EVENT).where(EVENT.c.activity_id.in_(chunk)).order_by(EVENT.c.id))
        for row in rows.mappings():
            found.setdefault(row["activity_id"], []).append(EventLink(**row))
    return found


def insert_links(raw: RawConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert links (``account_id, uid, recurrence_id, activity_id, fields_hash, snapshot,
    component``), one statement for all."""
    if rows:
        raw.execute(sa.insert(EVENT), [dict(row) for row in rows])


def update_links(raw: RawConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Update links by ``id`` (``activity_id, fields_hash, snapshot, component``), one
    statement executed for all."""
    if not rows:
        return
    statement = (
        sa.update(EVENT)
        .where(EVENT.c.id == sa.bindparam("link_id"))
        .values(activity_id=sa.bindparam("new_activity_id"), fields_hash=sa.bindparam("new_hash"),
                snapshot=sa.bindparam("new_snapshot"), component=sa.bindparam("new_component"))
    )
    raw.execute(statement, [
        {"link_id": row["id"], "new_activity_id": row["activity_id"], "new_hash": row["fields_hash"],
         "new_snapshot": row["snapshot"], "new_component": row["component"]}
        for row in rows
    ])


def add_aliases(raw: RawConnection, account_id: int, provider: str,
                aliases: Mapping[str, tuple[int, str | None]]) -> None:
    """Record provider ids of events: ``{remote_id: (event link id, etag)}``; an alias the
    account already has is moved to the event given, with its new etag."""
    if not aliases:
        return
    known = events_by_alias(raw, account_id, provider, aliases)
    fresh = [{"account_id": account_id, "provider": provider, "remote_id": remote, "event_id": event, "etag": etag}
             for remote, (event, etag) in aliases.items() if remote not in known]
    if fresh:
        raw.execute(sa.insert(ALIAS), fresh)
    moved = [{"alias_remote": remote, "new_event": event, "new_etag": etag}
             for remote, (event, etag) in aliases.items() if remote in known]
    if moved:
        raw.execute(
            sa.update(ALIAS)
            .where(ALIAS.c.account_id == account_id, ALIAS.c.provider == provider,
                   ALIAS.c.remote_id == sa.bindparam("alias_remote"))
            .values(event_id=sa.bindparam("new_event"), etag=sa.bindparam("new_etag")),
            moved,
        )


def events_by_alias(raw: RawConnection, account_id: int, provider: str,
                    remote_ids: Iterable[str]) -> dict[str, tuple[int, str | None]]:
    """``{remote_id: (event link id, etag)}`` for the provider ids of *account_id* known."""
    wanted = sorted(set(remote_ids))
    found: dict[str, tuple[int, str | None]] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        rows = raw.execute(sa.select(ALIAS.c.remote_id, ALIAS.c.event_id, ALIAS.c.etag).where(
            ALIAS.c.account_id == account_id, ALIAS.c.provider == provider, ALIAS.c.remote_id.in_(chunk)))
        found.update({row.remote_id: (row.event_id, row.etag) for row in rows})
    return found


def account_links(raw: RawConnection, account_id: int) -> list[EventLink]:
    """Every link of *account_id*, in id order (one query)."""
    rows = raw.execute(sa.select(EVENT).where(EVENT.c.account_id == account_id).order_by(EVENT.c.id))
    return [EventLink(**row) for row in rows.mappings()]


def account_aliases(raw: RawConnection, account_id: int, provider: str) -> dict[str, tuple[int, str | None]]:
    """``{remote_id: (event link id, etag)}`` of every alias of *account_id* for *provider*."""
    rows = raw.execute(sa.select(ALIAS.c.remote_id, ALIAS.c.event_id, ALIAS.c.etag).where(
        ALIAS.c.account_id == account_id, ALIAS.c.provider == provider))
    return {row.remote_id: (row.event_id, row.etag) for row in rows}


def delete_links(raw: RawConnection, link_ids: Iterable[int]) -> None:
    """Delete links and their aliases."""
    wanted = sorted(set(link_ids))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        raw.execute(sa.delete(ALIAS).where(ALIAS.c.event_id.in_(chunk)))
        raw.execute(sa.delete(EVENT).where(EVENT.c.id.in_(chunk)))


def collection_state(raw: RawConnection, account_id: int, url: str) -> tuple[str | None, str | None]:
    """The stored ``(sync_token, ctag)`` of a collection (``(None, None)`` before its first sync)."""
    row = raw.execute(sa.select(COLLECTION.c.sync_token, COLLECTION.c.ctag).where(
        COLLECTION.c.account_id == account_id, COLLECTION.c.url == url)).first()
    return (row.sync_token, row.ctag) if row is not None else (None, None)


def save_collection_state(raw: RawConnection, account_id: int, url: str, sync_token: str | None, ctag: str | None) -> None:
    """Store the sync token and ctag of a collection after a sync."""
    done = raw.execute(sa.update(COLLECTION).where(COLLECTION.c.account_id == account_id, COLLECTION.c.url == url)
                       .values(sync_token=sync_token, ctag=ctag))
    if done.rowcount == 0:
        raw.execute(sa.insert(COLLECTION), {"account_id": account_id, "url": url, "sync_token": sync_token, "ctag": ctag})


def record_conflicts(raw: RawConnection, account_id: int, rows: Sequence[Mapping[str, Any]],
                     merged: Iterable[tuple[str, str]] = ()) -> None:
    """Replace the listed conflicts of the events *merged* (``(uid, recurrence_id)``) and of
    those named in *rows* (``uid, recurrence_id, activity_id, field, base, local, remote``) with
    *rows*: an event merged without a conflict has none listed any more."""
    keys = {(row["uid"], row["recurrence_id"]) for row in rows} | set(merged)
    for uid, recurrence_id in sorted(keys):
        raw.execute(sa.delete(CONFLICT).where(CONFLICT.c.account_id == account_id, CONFLICT.c.uid == uid,
                                              CONFLICT.c.recurrence_id == recurrence_id))
    if rows:
        raw.execute(sa.insert(CONFLICT), [{"account_id": account_id, **row} for row in rows])


def conflicts(raw: RawConnection, account_id: int | None = None) -> list[dict[str, Any]]:
    """The listed conflicts (of one account, or all), oldest first."""
    statement = sa.select(CONFLICT).order_by(CONFLICT.c.id)
    if account_id is not None:
        statement = statement.where(CONFLICT.c.account_id == account_id)
    return [dict(row) for row in raw.execute(statement).mappings()]
