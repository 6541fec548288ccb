"""The chat's entity types, and its one table that is not records (read cursors).

Rooms, members, messages and mentions are records: read and written through the unit of work,
so the access restrictions of :mod:`crm_chat.access` apply to every read. What a member has
read and how it wants to be notified change at every glance at a room; they live in the
plugin's own table ``chat_cursor`` (one row per user and room, reached through
``uow.raw("chat")``), so reading a room writes no audit entry.
"""

from __future__ import annotations

import sqlalchemy as sa
from crmcore import EntityType, Field
from crmcore.fields import Choice, DateTime, Integer, Reference, String, Text

__all__ = [
    "CURSOR",
    "DELETED_BODY",
    "ENTITIES",
    "MEMBER",
    "MENTION",
    "MESSAGE",
    "NOTIFY_MODES",
    "ROOM",
    "ROOM_KINDS",
    "cursor_ddl",
]

#: Kinds of room: the one public room, private rooms with members, two-person rooms (unique
#: per pair) and team rooms (the members of a core team).
ROOM_KINDS = ("public", "private", "direct", "team")
#: Notification modes of a member: every message, messages mentioning them, nothing.
NOTIFY_MODES = ("all", "mentions", "none")

ROOM = EntityType(
    "chat_room",
    table="chat_room",  # the entity's name already carries the plugin's prefix
    label="Chat room",
    fields=(
        Field("name", String(200), required=True),
        Field("kind", Choice(*ROOM_KINDS), required=True, index=True),
        Field(
            "key",
            String(80),
            unique=True,
            help="public, direct:<user>:<user> or team:<team>: one room per key.",
        ),
        Field("team_id", Reference("team", on_delete="cascade"), label="Team", index=True),
        Field("topic", Text()),
        Field(
            "last_seq",
            Integer(),
            default=0,
            help="The number of messages posted in the room (the last message's seq).",
        ),
        Field("last_message_at", DateTime()),
    ),
    help="A room of the chat: public, private, two-person or a team's.",
)

MEMBER = EntityType(
    "chat_member",
    table="chat_member",  # the entity's name already carries the plugin's prefix
    label="Chat member",
    fields=(
        Field(
            "room_id",
            Reference("chat_room", on_delete="cascade"),
            required=True,
            label="Room",
            index=True,
        ),
        Field("user_id", Reference("user", on_delete="cascade"), required=True, index=True),
        Field("key", String(40), unique=True, help="<room>:<user>: one membership per pair."),
    ),
    help="A user's membership of a private or two-person room.",
)

MESSAGE = EntityType(
    "chat_message",
    table="chat_message",  # the entity's name already carries the plugin's prefix
    label="Chat message",
    title_field="body",
    fields=(
        Field(
            "room_id",
            Reference("chat_room", on_delete="cascade"),
            required=True,
            label="Room",
            index=True,
        ),
        Field("seq", Integer(), help="The message's number in its room, from 1."),
        Field("author_id", Reference("user", on_delete="set_null"), label="Author", index=True),
        Field(
            "body",
            Text(),
            required=True,
            help="Markdown, sanitised when rendered; a deleted message's is a tombstone's mark.",
        ),
        Field(
            "reply_to_id",
            Reference("chat_message", on_delete="set_null"),
            label="Reply to",
        ),
        Field("edited_at", DateTime()),
        Field("deleted_at", DateTime(), help="Set when the message was deleted (a tombstone)."),
    ),
    help="A message posted in a room; edits are kept in its history.",
)

MENTION = EntityType(
    "chat_mention",
    table="chat_mention",  # the entity's name already carries the plugin's prefix
    label="Chat mention",
    title_field="target_entity",
    fields=(
        Field(
            "message_id",
            Reference("chat_message", on_delete="cascade"),
            required=True,
            label="Message",
            index=True,
        ),
        Field("target_entity", String(64), required=True),
        Field("target_id", Integer(), required=True),
        Field(
            "origin",
            Choice("text", "picker"),
            default="text",
            help="text: parsed from the body (#entity:id, @username); picker: given by the API.",
        ),
    ),
    help="A typed link from a message to a record it mentions (entity and id).",
)

#: The body a deleted message keeps (its tombstone); its former text stays in its history.
DELETED_BODY = "(message deleted)"

ENTITIES = (ROOM, MEMBER, MESSAGE, MENTION)

_METADATA = sa.MetaData()
#: Read cursors and notification settings, one row per user and room.
CURSOR = sa.Table(
    "chat_cursor",
    _METADATA,
    sa.Column("user_id", sa.Integer, primary_key=True),
    sa.Column("room_id", sa.Integer, primary_key=True),
    sa.Column("last_read_seq", sa.Integer, nullable=False, server_default="0"),
    sa.Column("notify", sa.String(16), nullable=False, server_default="all"),
    sa.Column("muted", sa.Boolean, nullable=False, server_default=sa.false()),
)


def cursor_ddl(dialect: str) -> list[tuple[str, str]]:
    """``(name, statement)`` of the schema objects the plugin keeps beside its records: the
    cursor table and the indexes of mentions by record and of messages by room and number
    (the migration makes the same)."""
    false = "false" if dialect == "postgresql" else "0"
    return [
        (
            "chat_cursor",
            "CREATE TABLE IF NOT EXISTS chat_cursor (user_id INTEGER NOT NULL, "
            "room_id INTEGER NOT NULL, last_read_seq INTEGER NOT NULL DEFAULT 0, "
            "notify VARCHAR(16) NOT NULL DEFAULT 'all', "
            f"muted BOOLEAN NOT NULL DEFAULT {false}, PRIMARY KEY (user_id, room_id))",
        ),
        (
            "ix_chat_mention_target",
            "CREATE INDEX IF NOT EXISTS ix_chat_mention_target "
            "ON chat_mention (target_entity, target_id)",
        ),
        (
            "ix_chat_message_room_seq",
            "CREATE UNIQUE INDEX IF NOT EXISTS ix_chat_message_room_seq "
            "ON chat_message (room_id, seq)",
        ),
    ]
