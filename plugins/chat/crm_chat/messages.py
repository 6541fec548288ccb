"""Messages: posting, replying, editing (the edits kept in the audit trail), deleting as a
tombstone, and reading a room.

:func:`post` is ``uow.create("chat_message", ...)`` plus mentions given through the API; the
plugin's hooks (:mod:`crm_chat.hooks`) do the rest for any create, so a message written with
the plain record API is numbered, authored, its mentions parsed and its room's counter moved
just the same.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from crm_chat import mentions as _mentions
from crm_chat import unread
from crm_chat.entities import DELETED_BODY

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["Edit", "delete", "edit", "edits", "post", "read"]


def post(
    uow: UnitOfWork,
    room: Record,
    body: str,
    *,
    reply_to: Record | int | None = None,
    mentions: Sequence[tuple[str, int]] = (),
) -> Record:
    """Post *body* (Markdown) in *room* as the actor.

    :param reply_to: the message (or its id) this one answers, in the same room.
    :param mentions: ``(entity, id)`` of records to link besides the ``#entity:id`` of the
        body (a picker's choice).
    :raises NotFoundError: when the actor does not belong to the room.
    :raises ValidationError: for an empty or too long body, a reply to another room's message,
        or a mention of a record the actor may not read.
    """
    values: dict[str, object] = {"room_id": room.id, "body": body}
    if reply_to is not None:
        values["reply_to_id"] = reply_to if isinstance(reply_to, int) else reply_to.id
    message = uow.create("chat_message", values)
    picked = [m for m in _mentions.resolve(uow, "", mentions) if m["origin"] == "picker"]
    present = {
        (r["target_entity"], r["target_id"])
        for r in uow.select("chat_mention", fields=("target_entity", "target_id"))
        .where(message_id=message.id)
        .all()
    }
    extra = [
        {**m, "message_id": message.id}
        for m in picked
        if (m["target_entity"], m["target_id"]) not in present
    ]
    if extra:
        uow.create_many("chat_mention", extra)
    return message


def edit(uow: UnitOfWork, message: Record | int, body: str) -> Record:
    """Change the body of the actor's own *message*; the former body stays in its history
    (:func:`edits`) and the mentions of the text follow the new body.

    :raises PermissionDeniedError: for another user's or a deleted message.
    """
    record = uow.get("chat_message", message if isinstance(message, int) else message.id)
    return uow.update(record, body=body)


def delete(uow: UnitOfWork, message: Record | int) -> Record:
    """Delete the actor's own *message*: it stays as a tombstone (``deleted_at`` set,
    the body replaced) so that replies keep their place; its mentions go.

    :raises PermissionDeniedError: for another user's message.
    """
    record = uow.get("chat_message", message if isinstance(message, int) else message.id)
    return uow.update(record, body=DELETED_BODY, deleted_at=dt.datetime.now(dt.UTC))


@attrs.frozen
class Edit:
    """One change of a message's body: when, by whom, and the body before and after."""

    at: dt.datetime
    actor_id: int | None
    before: str | None
    after: str | None


def edits(uow: UnitOfWork, message: Record | int) -> list[Edit]:
    """The changes of *message*'s body, oldest first, from its audit trail."""
    record_id = message if isinstance(message, int) else message.id
    return [
        Edit(entry.at, entry.actor_id, *entry.changes["body"])
        for entry in uow.history("chat_message", record_id)
        if entry.action == "updated" and "body" in entry.changes
    ]


def read(
    uow: UnitOfWork,
    room: Record,
    *,
    since: int | None = None,
    limit: int = 50,
    mark: bool = True,
) -> list[Record]:
    """The messages of *room* after number *since* (default: the last *limit*), oldest first,
    and, with *mark*, the actor's cursor moved to the last one read.

    :raises NotFoundError: when the actor does not belong to the room.
    """
    uow.get("chat_room", room.id)
    query = uow.query("chat_message").where(room_id=room.id)
    if since is not None:
        found = query.where(("seq", ">", int(since))).order_by("seq").limit(limit).all()
    else:
        found = list(reversed(query.order_by("-seq").limit(limit).all()))
    if mark and found and uow.actor.user_id is not None:
        unread.mark_read(uow, room, found[-1].values["seq"])
    return found
