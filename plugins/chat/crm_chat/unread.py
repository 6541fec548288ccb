"""Unread state and notification modes, per member and room.

Each room counts its messages (``chat_room.last_seq``; each message has its ``seq``) and each
member keeps a cursor, the ``seq`` of the last message they have seen, in the plugin's own
table ``chat_cursor`` (with the member's notification mode and mute). A room's unread count is
``last_seq - cursor``: :func:`summary` gives it for every room of a user in one indexed query
over the rooms the actor may read (one row per room, the cursor found by its primary key), so
the cost follows the number of rooms, not of messages. Posting moves the author's own cursor.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa
from crmcore.errors import ValidationError
from sqlalchemy.dialects import postgresql, sqlite

from crm_chat.entities import CURSOR, NOTIFY_MODES

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.query import Select
    from crmcore.records import Record

__all__ = ["RoomState", "advance", "mark_read", "set_mode", "summary", "unread_counts"]

_ME = sa.bindparam("chat_me", type_=sa.Integer())


@attrs.frozen
class RoomState:
    """A room as one member sees it in a list: unread messages, mode and mute."""

    room_id: int
    name: str
    kind: str
    last_seq: int
    read_seq: int
    notify: str
    muted: bool
    last_message_at: dt.datetime | None

    @property
    def unread(self) -> int:
        return max(self.last_seq - self.read_seq, 0)


def _cursor_column(name: str, default: Any) -> Any:
    def build(c: Any) -> Any:
        found = (
            sa.select(CURSOR.c[name])
            .where(CURSOR.c.room_id == c["id"], CURSOR.c.user_id == _ME)
            .scalar_subquery()
        )
        return sa.func.coalesce(found, default)

    return build


#: The selects of :func:`summary` and :func:`unread_counts` per unit of work, for its current
#: access context: built once and run with the user as a parameter.
_SELECTS: weakref.WeakKeyDictionary[UnitOfWork, tuple[Any, dict[str, Select]]] = (
    weakref.WeakKeyDictionary()
)


def _select(uow: UnitOfWork, full: bool) -> Select:
    access = uow.access
    held = _SELECTS.get(uow)
    if held is None or held[0] is not access:
        held = _SELECTS[uow] = (access, {})
    key = "summary" if full else "counts"
    select = held[1].get(key)
    if select is not None:
        return select
    if full:
        columns = {
            "chat_read_seq": _cursor_column("last_read_seq", 0),
            "chat_notify": _cursor_column("notify", "all"),
            "chat_muted": _cursor_column("muted", sa.false()),
        }
        fields: tuple[str, ...] = ("id", "name", "kind", "last_seq", "last_message_at")
    else:
        columns = {"chat_read_seq": _cursor_column("last_read_seq", 0)}
        fields = ("id", "last_seq")
    select = uow.select("chat_room", fields=fields).extend("chat", columns=columns)
    if full:
        select = select.order_by("-last_message_at", "name")
    held[1][key] = select
    return select


def _user(uow: UnitOfWork) -> int:
    me = uow.actor.user_id
    return me if me is not None else -1


def summary(uow: UnitOfWork) -> list[RoomState]:
    """Every room the actor belongs to, with its unread count, mode and mute, the rooms with
    the latest messages first: one query."""
    rows = _select(uow, True).params(chat_me=_user(uow)).all()
    return [
        RoomState(
            row["id"],
            row["name"],
            row["kind"],
            row["last_seq"] or 0,
            row["chat_read_seq"] or 0,
            row["chat_notify"],
            bool(row["chat_muted"]),
            row["last_message_at"],
        )
        for row in rows
    ]


def unread_counts(uow: UnitOfWork) -> dict[int, int]:
    """``{room id: unread messages}`` for every room the actor belongs to (one query)."""
    rows = _select(uow, False).params(chat_me=_user(uow)).all()
    return {row["id"]: max((row["last_seq"] or 0) - (row["chat_read_seq"] or 0), 0) for row in rows}


def _upsert(uow: UnitOfWork, rows: list[dict[str, Any]], columns: Iterable[str]) -> None:
    raw = uow.raw("chat")
    insert = (postgresql if raw.dialect == "postgresql" else sqlite).insert(CURSOR)
    set_ = {name: insert.excluded[name] for name in columns}
    if "last_read_seq" in set_:  # a cursor never goes back
        set_["last_read_seq"] = sa.case(
            (insert.excluded.last_read_seq > CURSOR.c.last_read_seq, insert.excluded.last_read_seq),
            else_=CURSOR.c.last_read_seq,
        )
    raw.execute(
        insert.on_conflict_do_update(index_elements=["user_id", "room_id"], set_=set_), rows
    )


def advance(uow: UnitOfWork, user_id: int, positions: dict[int, int]) -> None:
    """Move *user_id*'s cursors to ``{room id: seq}`` (never backwards); no access check: for
    the plugin's hooks, after a post."""
    if positions:
        rows = [
            {
                "user_id": user_id,
                "room_id": room,
                "last_read_seq": seq,
                "notify": "all",
                "muted": False,
            }
            for room, seq in positions.items()
        ]
        _upsert(uow, rows, ["last_read_seq"])


def _me(uow: UnitOfWork) -> int:
    if uow.actor.user_id is None:
        raise ValidationError(
            "read cursors belong to users; act as a user (crm --as USER)", entity="chat_room"
        )
    return uow.actor.user_id


def mark_read(uow: UnitOfWork, room: Record, seq: int | None = None) -> int:
    """The actor has read *room* up to message *seq* (default: its last message); returns the
    cursor's position.

    :raises NotFoundError: when the actor does not belong to the room.
    """
    current = uow.get("chat_room", room.id)
    last = current.values.get("last_seq") or 0
    position = last if seq is None else max(0, min(int(seq), last))
    advance(uow, _me(uow), {current.id: position})
    return position


def set_mode(
    uow: UnitOfWork, room: Record, *, notify: str | None = None, muted: bool | None = None
) -> None:
    """Set the actor's notification mode (``all``, ``mentions``, ``none``) or mute of *room*.

    :raises ValidationError: for an unknown mode.
    :raises NotFoundError: when the actor does not belong to the room.
    """
    if notify is not None and notify not in NOTIFY_MODES:
        raise ValidationError(
            {"notify": [f"unknown notification mode {notify!r}; choose {', '.join(NOTIFY_MODES)}"]},
            entity="chat_room",
        )
    current = uow.get("chat_room", room.id)
    values = {
        "user_id": _me(uow),
        "room_id": current.id,
        "last_read_seq": 0,
        "notify": notify or "all",
        "muted": bool(muted),
    }
    changed = [name for name, given in (("notify", notify), ("muted", muted)) if given is not None]
    if changed:
        _upsert(uow, [values], changed)


def modes(uow: UnitOfWork, user_id: int, room_ids: Iterable[int]) -> dict[int, tuple[str, bool]]:
    """``{room id: (notify, muted)}`` of *user_id* for *room_ids* (defaults where no cursor)."""
    ids = sorted(set(room_ids))
    found = {i: ("all", False) for i in ids}
    if ids:
        rows = uow.raw("chat").execute(
            sa.select(CURSOR.c.room_id, CURSOR.c.notify, CURSOR.c.muted).where(
                CURSOR.c.user_id == user_id, CURSOR.c.room_id.in_(ids)
            )
        )
        found.update({row.room_id: (row.notify, bool(row.muted)) for row in rows})
    return found
