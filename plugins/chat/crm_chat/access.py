"""Who reads what of the chat (``crm_access_restrictions``), compiled into the one SQL
predicate of every read.

A user reads a room when it is the public room (and the user is active), when a
``chat_member`` record makes them a member, or when it is the room of their team; they read
the members, messages and mentions of those rooms only. The restrictions hold for every
action and every profile (an administrator is no member of other people's private rooms); the
system actor is never restricted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from crmcore.security import NEVER, FieldIn, IdSet, Restriction

if TYPE_CHECKING:
    from crmcore.security import AccessContext

__all__ = ["readable_rooms", "restrictions"]

_ENTITIES = ("chat_room", "chat_member", "chat_message", "chat_mention")


def readable_rooms(context: AccessContext) -> sa.Select[Any]:
    """A one-column SELECT of the ids of the rooms the actor of *context* belongs to."""
    room, member, user = (context.table(n) for n in ("chat_room", "chat_member", "user"))
    me = context.actor.user_id
    active = sa.exists().where(user.c.id == me, sa.func.coalesce(user.c.active, sa.true()))
    parts = [
        sa.select(room.c.id.label("room_id")).where(room.c.kind == "public", active),
        sa.select(member.c.room_id.label("room_id")).where(member.c.user_id == me),
        sa.select(room.c.id.label("room_id")).where(
            room.c.kind == "team",
            room.c.team_id.in_(sa.select(user.c.team_id).where(user.c.id == me)),
        ),
    ]
    return sa.select(sa.union(*parts).subquery().c.room_id)


def restrictions(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    """Rooms, members, messages and mentions of the rooms the actor belongs to only."""
    if entity not in _ENTITIES:
        return None
    if context.actor.user_id is None:
        return [Restriction(NEVER, "chat rooms are read by their members only")]
    rooms = IdSet(query=readable_rooms(context), label="rooms the actor belongs to")
    reason = "chat rooms are read by their members only"
    if entity == "chat_room":
        return [Restriction(FieldIn("id", rooms), reason)]
    if entity in ("chat_member", "chat_message"):
        return [Restriction(FieldIn("room_id", rooms), reason)]
    message = context.table("chat_message")
    ids = sa.select(message.c.id).where(message.c.room_id.in_(readable_rooms(context)))
    return [
        Restriction(
            FieldIn("message_id", IdSet(query=ids, label="messages of those rooms")), reason
        )
    ]
