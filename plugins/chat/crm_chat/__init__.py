"""crm-chat: rooms and messages between the users of a crmcore deployment.

Enable it with ``plugins = ["chat"]``. One public room every active user reads and posts in,
private rooms whose members decide who joins, a two-person room per pair, and team rooms
following the core's teams. Messages are Markdown (sanitised when rendered), may reply to
another one, keep their edits in the audit trail and leave a tombstone when deleted. Mentions
of records (``#opportunity:42``) are typed links whose labels each reader sees only for the
records they may read. The modules beside this one hold the logic: rooms
(:mod:`~crm_chat.rooms`), messages (:mod:`~crm_chat.messages`), mentions
(:mod:`~crm_chat.mentions`), unread cursors and notification modes (:mod:`~crm_chat.unread`),
rendering (:mod:`~crm_chat.render`) and delivery (:mod:`~crm_chat.delivery`).
"""

from __future__ import annotations

from typing import Any

from crmcore import PluginInfo, Setting

__all__ = ["PLUGIN", "listen"]


def __getattr__(name: str) -> Any:
    """``crm_chat.listen`` (:func:`crm_chat.delivery.listen`), imported on first use."""
    if name == "listen":
        from crm_chat.delivery import listen

        return listen
    raise AttributeError(f"module 'crm_chat' has no attribute {name!r}")


PLUGIN = PluginInfo(
    name="chat",
    title="Chat",
    requires=(),
    description=(
        "A public room, private, two-person and team rooms, Markdown messages with replies, "
        "edits and tombstones, typed record mentions, unread cursors and notification modes."
    ),
    settings={
        "public_room": Setting(
            str, default="General", help="The name of the public room, made on first use."
        ),
        "max_length": Setting(
            int,
            default=20000,
            minimum=1,
            maximum=1000000,
            help="The longest message body, in characters.",
        ),
    },
)
