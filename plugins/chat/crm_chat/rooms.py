"""Rooms: the public room (made on first use), private rooms whose members decide who joins,
one two-person room per pair of users, and team rooms.

Rooms are made by the plugin in the unit of work's system scope, after checking with the
actor's own rights what the actor names (the users, the team): a private room's creator is not
yet a member when the room is made, so the actor could not read it. Afterwards every change
of membership is the members' own (:func:`add_members`, :func:`leave`), checked by the
plugin's ``crm_before_create`` and ``crm_before_delete`` hooks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from crmcore.errors import NotFoundError, ValidationError

from crm_chat.settings import chat_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "PUBLIC_KEY",
    "add_members",
    "create_room",
    "direct_room",
    "find_room",
    "leave",
    "member_ids",
    "public_room",
    "team_room",
]

PUBLIC_KEY = "public"


def _first(uow: UnitOfWork, **where: object) -> Record | None:
    found = uow.query("chat_room").where(**where).limit(1).all()
    return found[0] if found else None


def public_room(uow: UnitOfWork) -> Record:
    """The public room, made on first use with the name ``[plugins.chat] public_room``.

    :raises NotFoundError: for an inactive user (the public room is every active user's).
    """
    found = _first(uow, key=PUBLIC_KEY)
    if found is not None:
        return found
    with uow.system_scope("the chat's public room is made on first use") as scoped:
        if _first(scoped, key=PUBLIC_KEY) is not None:
            raise NotFoundError(
                f"user {uow.actor.username!r} is not active and cannot read the public room",
                entity="chat_room",
            )
        name = chat_settings(uow.crm).public_room
        made = scoped.create("chat_room", name=name, kind="public", key=PUBLIC_KEY)
    return made


def _user_ids(uow: UnitOfWork, users: Iterable[int | str]) -> list[int]:
    """The ids of *users* (ids or usernames), read with the actor's rights."""
    wanted = list(dict.fromkeys(users))
    ids = [u for u in wanted if isinstance(u, int)]
    names = [u for u in wanted if isinstance(u, str)]
    found: dict[object, int] = {}
    if ids:
        rows = uow.select("user", fields=("id",)).where(("id", "in", ids)).all()
        found.update({row["id"]: row["id"] for row in rows})
    if names:
        rows = uow.select("user", fields=("id", "username")).where(("username", "in", names)).all()
        found.update({row["username"]: row["id"] for row in rows})
    missing = [u for u in wanted if u not in found]
    if missing:
        raise NotFoundError(
            f"no user {missing[0]!r}; give user ids or usernames of existing users", entity="user"
        )
    return list(dict.fromkeys(found[u] for u in wanted))


def _me(uow: UnitOfWork) -> int:
    me = uow.actor.user_id
    if me is None:
        raise ValidationError(
            "chat rooms are made by users; act as a user (crm --as USER) to make one",
            entity="chat_room",
        )
    return me


def create_room(
    uow: UnitOfWork, name: str, members: Iterable[int | str], *, topic: str | None = None
) -> Record:
    """A private room named *name* whose members are the actor and *members* (user ids or
    usernames); from then on only its members add or remove members.

    :raises ValidationError: for a room of fewer than two users, or an actor that is no user.
    :raises NotFoundError: naming a user that does not exist.
    """
    me = _me(uow)
    ids = list(dict.fromkeys([me, *_user_ids(uow, members)]))
    if len(ids) < 2:
        raise ValidationError(
            {
                "members": [
                    f"a private room needs at least one member besides the creator, got {ids}"
                ]
            },
            entity="chat_room",
        )
    with uow.system_scope("a private chat room is made with its first members") as scoped:
        room = scoped.create("chat_room", name=name, kind="private", topic=topic)
        scoped.create_many(
            "chat_member",
            [{"room_id": room.id, "user_id": u, "key": f"{room.id}:{u}"} for u in ids],
        )
    return uow.get("chat_room", room.id)


def direct_room(uow: UnitOfWork, other: int | str) -> Record:
    """The two-person room of the actor and *other* (user id or username), made on first use;
    there is one per pair of users.

    :raises ValidationError: when *other* is the actor.
    """
    me = _me(uow)
    (them,) = _user_ids(uow, [other])
    if them == me:
        raise ValidationError(
            {"user": [f"a two-person room needs another user than {uow.actor.username!r}"]},
            entity="chat_room",
        )
    low, high = sorted((me, them))
    key = f"direct:{low}:{high}"
    found = _first(uow, key=key)
    if found is not None:
        return found
    with uow.system_scope("a two-person chat room is made on first use") as scoped:
        names = {
            row["id"]: row["username"]
            for row in scoped.select("user", fields=("id", "username"))
            .where(("id", "in", [low, high]))
            .all()
        }
        room = scoped.create(
            "chat_room", name=f"{names[low]} & {names[high]}", kind="direct", key=key
        )
        scoped.create_many(
            "chat_member",
            [{"room_id": room.id, "user_id": u, "key": f"{room.id}:{u}"} for u in (low, high)],
        )
    return uow.get("chat_room", room.id)


def team_room(uow: UnitOfWork, team_id: int) -> Record:
    """The room of team *team_id*, made on first use; its members are the team's users.

    :raises NotFoundError: when the team does not exist or the actor may not read it.
    """
    team = uow.get("team", team_id)
    key = f"team:{team.id}"
    with uow.system_scope("a team's chat room is made on first use") as scoped:
        found = _first(scoped, key=key)
        if found is None:
            found = scoped.create(
                "chat_room",
                name=team.values.get("name") or key,
                kind="team",
                key=key,
                team_id=team.id,
            )
    return uow.get("chat_room", found.id)


def find_room(uow: UnitOfWork, ref: int | str) -> Record:
    """The room *ref* names among those the actor belongs to: an id, ``public`` (or the public
    room's name), ``@username`` (the two-person room with that user) or a room's name.

    :raises NotFoundError: naming *ref* when no such room is readable.
    """
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        return uow.get("chat_room", int(ref))
    if ref == PUBLIC_KEY or ref == chat_settings(uow.crm).public_room:
        return public_room(uow)
    if ref.startswith("@"):
        return direct_room(uow, ref[1:])
    rooms = uow.query("chat_room").where(name=ref).limit(2).all()
    if len(rooms) != 1:
        what = "no room" if not rooms else "more than one room"
        raise NotFoundError(
            f"{what} named {ref!r} among your rooms; give its id (crm chat rooms lists them)",
            entity="chat_room",
        )
    return rooms[0]


def member_ids(uow: UnitOfWork, room: Record) -> list[int]:
    """The ids of the users of a private, two-person or team room (empty for the public room,
    which is every active user's)."""
    kind = room.values["kind"]
    if kind == "team":
        rows = uow.select("user", fields=("id",)).where(team_id=room.values["team_id"]).all()
        return sorted(row["id"] for row in rows)
    if kind == "public":
        return []
    rows = uow.select("chat_member", fields=("user_id",)).where(room_id=room.id).all()
    return sorted(row["user_id"] for row in rows)


def add_members(uow: UnitOfWork, room: Record, users: Iterable[int | str]) -> list[Record]:
    """Add *users* to the private *room*, as one of its members (users already in it are
    skipped).

    :raises PermissionDeniedError: see the plugin's ``crm_before_create`` check.
    """
    present = set(member_ids(uow, room))
    ids = [u for u in _user_ids(uow, users) if u not in present]
    if not ids:
        return []
    return uow.create_many(
        "chat_member", [{"room_id": room.id, "user_id": u, "key": f"{room.id}:{u}"} for u in ids]
    )


def leave(uow: UnitOfWork, room: Record) -> None:
    """The actor leaves the private *room*.

    :raises NotFoundError: when the actor is not a member of a private room.
    """
    me = _me(uow)
    found = uow.query("chat_member").where(room_id=room.id, user_id=me).all()
    if room.values["kind"] != "private" or not found:
        raise NotFoundError(
            f"{uow.actor.username!r} is no member of a private room {room.id}; only private "
            "rooms are left",
            entity="chat_member",
        )
    uow.delete(found[0])
