"""Delivery: a library, not a server. Each posted message goes out after the commit as the
signal ``chat.message-posted`` (sender ``chat_message``; keywords ``message`` and ``actor``),
and :func:`listen` turns those signals into an async iterator of the new messages one user may
read, for the host application to carry over SSE or websockets.

The receiver runs in the committing thread and only hands the message's id to the listener's
event loop; the listener reads the messages back as its user (so a message of a room the user
does not belong to never comes out), with their mentions labelled for that user and whether
the user's notification mode and mute ask to notify them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import attrs

from crm_chat import mentions, unread
from crm_chat.hooks import POSTED
from crm_chat.render import render

if TYPE_CHECKING:
    from crmcore import Actor, Crm
    from crmcore.records import Record

__all__ = ["Delivered", "listen"]


@attrs.frozen
class Delivered:
    """A new message as one user receives it."""

    message: Record
    html: str
    mentions: tuple[mentions.Mention, ...]
    notify: bool


def _notify(mode: str, muted: bool, mentioned: bool) -> bool:
    if muted or mode == "none":
        return False
    return mode == "all" or mentioned


async def listen(crm: Crm, user: Actor | str) -> AsyncIterator[Delivered]:
    """The messages posted from now on in the rooms *user* belongs to, as they are committed
    (the user's own included). Stop by leaving the ``async for`` (or closing the iterator).
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[int] = asyncio.Queue()

    def received(sender: Any, **kwargs: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, kwargs["message"].id)

    signal = crm.signals.signal(POSTED)
    signal.connect(received, sender="chat_message", weak=False)
    try:
        while True:
            ids = [await queue.get()]
            while not queue.empty():
                ids.append(queue.get_nowait())
            for item in _read(crm, user, ids):
                yield item
    finally:
        signal.disconnect(received)


def _read(crm: Crm, user: Actor | str, ids: list[int]) -> list[Delivered]:
    with crm.unit_of_work(user) as uow:
        found = uow.get_many("chat_message", ids)
        if not found:
            return []
        linked = mentions.mentions_of(uow, found)
        me = uow.actor.user_id
        modes = unread.modes(uow, me, [m.values["room_id"] for m in found]) if me else {}
        delivered = []
        for message in found:
            links = tuple(linked.get(message.id, ()))
            mode, muted = modes.get(message.values["room_id"], ("all", False))
            mentioned = any(m.entity == "user" and m.id == me for m in links)
            html = render(
                message.values.get("body"),
                {(m.entity, m.id): m.label for m in links},
                deleted=message.values.get("deleted_at") is not None,
            )
            delivered.append(Delivered(message, html, links, _notify(mode, muted, mentioned)))
        return delivered
