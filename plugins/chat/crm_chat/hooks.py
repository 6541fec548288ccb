"""The chat's record hooks: what keeps rooms, members, messages and mentions consistent
whatever API wrote them (the plugin's functions or the plain record API).

- Rooms are made by the plugin (system scope); users may rename a private or team room they
  belong to and change its topic, nothing else.
- A private room's members add and remove members; two-person and team rooms have no members
  to add, the public room is everyone's.
- A new message gets the next number of its room and its author (the actor), whatever the
  caller gave; its reply must be in the same room; its mentions are parsed from the body; the
  room's counter and the author's cursor move; ``chat.message-posted`` is announced.
- Only its author edits a message (``edited_at`` is set, the text mentions follow the body)
  or deletes it as a tombstone; the record itself is never deleted by a user.
- A mention is written by the message's author, of a record the author may read.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from crmcore.errors import PermissionDeniedError, ValidationError

from crm_chat import mentions, unread
from crm_chat.entities import DELETED_BODY
from crm_chat.settings import chat_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["after_create", "after_update", "before_create", "before_delete", "before_update"]

POSTED = "chat.message-posted"
_FIXED = ("room_id", "seq", "author_id", "reply_to_id", "edited_at")
_ROOM_EDITABLE = frozenset({"name", "topic"})


def _deny(entity: str, message: str) -> PermissionDeniedError:
    return PermissionDeniedError(message, reasons=[f"chat rules for {entity}"])


def before_create(
    uow: UnitOfWork, entity: str, items: list[dict[str, Any]]
) -> list[dict[str, Any] | None] | None:
    system = uow.actor.is_system
    if entity == "chat_room" and not system:
        raise _deny(
            entity,
            "chat rooms are made with crm_chat.rooms (create_room, direct_room, "
            "team_room) or `crm chat`, not as plain records",
        )
    if entity == "chat_member" and not system:
        _check_membership_change(uow, [v.get("room_id") for v in items])
        return [{"key": f"{v.get('room_id')}:{v.get('user_id')}"} for v in items]
    if entity == "chat_message":
        return _number(uow, items)
    if entity == "chat_mention" and not system:
        _check_mentions(uow, items)
    return None


def _check_membership_change(uow: UnitOfWork, room_ids: list[Any]) -> None:
    me = uow.actor.user_id
    ids = sorted({int(i) for i in room_ids if i is not None})
    rooms = {r.id: r for r in uow.get_many("chat_room", ids)}
    mine = {
        row["room_id"]
        for row in uow.select("chat_member", fields=("room_id",))
        .where(("room_id", "in", ids), user_id=me)
        .all()
    }
    for room_id in ids:
        room = rooms.get(room_id)
        if room is None or room.values["kind"] != "private" or room_id not in mine:
            raise _deny(
                "chat_member",
                f"only the members of private room {room_id} change its members; "
                f"{uow.actor.username!r} is not one (or the room is not private)",
            )


def _number(uow: UnitOfWork, items: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    limit = chat_settings(uow.crm).max_length
    room_ids = sorted({int(v["room_id"]) for v in items if v.get("room_id") is not None})
    rooms = {r.id: r for r in uow.get_many("chat_room", room_ids)}
    replies = sorted({int(v["reply_to_id"]) for v in items if v.get("reply_to_id")})
    reply_rooms = {m.id: m.values["room_id"] for m in uow.get_many("chat_message", replies)}
    next_seq = {i: (r.values.get("last_seq") or 0) for i, r in rooms.items()}
    changes: list[dict[str, Any] | None] = []
    for row, values in enumerate(items, 1):
        room_id = values.get("room_id")
        if room_id is None or int(room_id) not in rooms:
            raise ValidationError(
                {"room_id": [f"no chat room {room_id!r} you belong to; post in one of your rooms"]},
                entity="chat_message",
                row=row if len(items) > 1 else None,
            )
        body = values.get("body") or ""
        if not body.strip():
            raise ValidationError({"body": ["a message needs a body"]}, entity="chat_message")
        if len(body) > limit:
            raise ValidationError(
                {"body": [f"a message has at most {limit} characters, got {len(body)}"]},
                entity="chat_message",
            )
        reply = values.get("reply_to_id")
        if reply and reply_rooms.get(int(reply)) != int(room_id):
            raise ValidationError(
                {"reply_to_id": [f"message {reply!r} is not in room {room_id}; reply in its room"]},
                entity="chat_message",
            )
        next_seq[int(room_id)] += 1
        changes.append(
            {
                "seq": next_seq[int(room_id)],
                "author_id": uow.actor.user_id,
                "edited_at": None,
                "deleted_at": None,
            }
        )
    return changes


def _check_mentions(uow: UnitOfWork, items: list[dict[str, Any]]) -> None:
    ids = sorted({int(v["message_id"]) for v in items if v.get("message_id") is not None})
    messages = {m.id: m for m in uow.get_many("chat_message", ids)}
    for values in items:
        message = messages.get(int(values.get("message_id") or 0))
        if message is None or message.values.get("author_id") != uow.actor.user_id:
            raise _deny(
                "chat_mention",
                f"only the author of message {values.get('message_id')!r} links records to it",
            )
    mentions.check_readable(uow, [(v["target_entity"], int(v["target_id"])) for v in items])


def after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity != "chat_message":
        return
    now = dt.datetime.now(dt.UTC)
    last: dict[int, int] = {}
    for record in records:
        room_id = record.values["room_id"]
        last[room_id] = max(last.get(room_id, 0), record.values["seq"])
    with uow.system_scope("a message moves its room's message counter") as scoped:
        for room_id, seq in sorted(last.items()):
            scoped.update("chat_room", room_id, last_seq=seq, last_message_at=now)
    if uow.actor.user_id is not None:
        unread.advance(uow, uow.actor.user_id, last)
    _link_text_mentions(uow, records)
    for record in records:
        uow.announce(POSTED, "chat_message", message=record, actor=uow.actor)


def _link_text_mentions(uow: UnitOfWork, records: list[Record]) -> None:
    rows = [
        {**found, "message_id": record.id}
        for record in records
        for found in mentions.resolve(uow, record.values.get("body") or "")
    ]
    if rows:
        uow.create_many("chat_mention", rows)


def before_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]
) -> list[dict[str, Any] | None] | None:
    if uow.actor.is_system:
        return None
    if entity == "chat_room":
        for record, changes in items:
            extra = sorted(set(changes) - _ROOM_EDITABLE)
            if extra or record.values["kind"] not in ("private", "team"):
                raise _deny(
                    entity,
                    f"members change only the name and topic of a private or team room; "
                    f"room {record.id} ({record.values['kind']}) refuses {sorted(changes)}",
                )
        return None
    if entity == "chat_member":
        raise _deny(entity, "a membership is added or removed, not changed")
    if entity == "chat_mention":
        raise _deny(entity, "a mention is added or removed, not changed")
    if entity != "chat_message":
        return None
    found: list[dict[str, Any] | None] = []
    for record, changes in items:
        if record.values.get("author_id") != uow.actor.user_id:
            raise _deny(entity, f"only its author changes message {record.id}")
        if record.values.get("deleted_at") is not None:
            raise _deny(entity, f"message {record.id} was deleted; post a new one")
        fixed = sorted(set(changes) & set(_FIXED))
        if fixed:
            raise ValidationError(
                {fixed[0]: [f"{fixed[0]} of message {record.id} cannot change"]},
                entity=entity,
            )
        if changes.get("deleted_at") is not None:
            found.append({"body": DELETED_BODY})
            continue
        body = changes.get("body")
        if "body" in changes and not (body or "").strip():
            raise ValidationError(
                {"body": ["a message needs a body; delete it instead"]}, entity=entity
            )
        found.append({"edited_at": dt.datetime.now(dt.UTC)} if "body" in changes else None)
    return found


def after_update(
    uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]
) -> None:
    if entity != "chat_message":
        return
    changed = [new for _old, new, changes in items if "body" in changes]
    if not changed:
        return
    gone = [r.id for r in changed if r.values.get("deleted_at") is not None]
    edited = [r for r in changed if r.values.get("deleted_at") is None]
    if gone:
        uow.delete_where("chat_mention", [("message_id", "in", gone)])
    if edited:
        uow.delete_where(
            "chat_mention", [("message_id", "in", [r.id for r in edited]), ("origin", "=", "text")]
        )
        _link_text_mentions(uow, edited)


def before_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if uow.actor.is_system:
        return
    if entity == "chat_room":
        raise _deny(entity, "chat rooms are not deleted by users; leave a private room instead")
    if entity == "chat_message":
        raise _deny(
            entity,
            "a message is deleted as a tombstone: crm_chat.messages.delete or `crm chat delete`",
        )
    if entity == "chat_member":
        _check_membership_change(uow, [r.values["room_id"] for r in records])
    if entity == "chat_mention":
        ids = sorted({r.values["message_id"] for r in records})
        for message in uow.get_many("chat_message", ids):
            if message.values.get("author_id") != uow.actor.user_id:
                raise _deny(entity, f"only the author of message {message.id} unlinks records")
