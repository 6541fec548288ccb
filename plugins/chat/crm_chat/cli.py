"""``crm chat ...``: the chat from the terminal.

::

    crm --as ada chat rooms
    crm --as ada chat post public "Kick-off at 10, see #opportunity:42"
    crm --as ada chat post @bob "Can you call Acme?" [--reply-to 12] [--mention account:7]
    crm --as bob chat read @ada [--since 10] [--limit 50] [--no-mark]
    crm --as ada chat create "Deal desk" bob cy
    crm --as ada chat edit 12 "new text"  |  crm --as ada chat delete 12
    crm --as ada chat mode public --notify mentions [--mute/--unmute]
    crm --as ada chat about opportunity 42        (the messages mentioning a record)

ROOM is a room's id, ``public``, ``@username`` (the two-person room) or a room's name. Every
command acts as ``--as USER`` in one unit of work; ``--json`` prints JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click
from crmcore.cli import current_actor, current_app, echo_json
from crmcore.errors import ValidationError

from crm_chat import mentions, messages, rooms, unread
from crm_chat.entities import NOTIFY_MODES

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["chat"]

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _when(moment: dt.datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _mention(text: str) -> tuple[str, int]:
    entity, _, record_id = text.partition(":")
    if not record_id.isdigit():
        raise ValidationError(
            {"mention": [f"give a mention as ENTITY:ID (account:7), got {text!r}"]},
            entity="chat_mention",
        )
    return entity, int(record_id)


def _lines(uow: UnitOfWork, found: list[Record]) -> list[dict[str, Any]]:
    linked = mentions.mentions_of(uow, found)
    authors = {
        row["id"]: row["username"]
        for row in uow.select("user", fields=("id", "username"))
        .where(("id", "in", sorted({m.values["author_id"] or 0 for m in found})))
        .all()
    }
    shown = []
    for message in found:
        labels = {m.token: m.label for m in linked.get(message.id, ()) if m.entity != "user"}
        body = message.values.get("body") or ""
        for token, label in labels.items():
            body = body.replace(token, f"[{label}]")
        shown.append(
            {
                "id": message.id,
                "seq": message.values["seq"],
                "author": authors.get(message.values["author_id"]),
                "at": message.values["created_at"].isoformat(),
                "body": body,
                "reply_to": message.values.get("reply_to_id"),
                "edited": message.values.get("edited_at") is not None,
                "mentions": [
                    {"entity": m.entity, "id": m.id, "label": m.label}
                    for m in linked.get(message.id, ())
                ],
            }
        )
    return shown


@click.group("chat")
def chat() -> None:
    """Rooms and messages: a public room, private, two-person and team rooms."""


@chat.command("rooms")
@_JSON
def rooms_command(as_json: bool) -> None:
    """The rooms you belong to, with unread messages."""
    with current_app().unit_of_work(current_actor()) as uow:
        rooms.public_room(uow)
        states = unread.summary(uow)
        uow.commit()
    if as_json:
        echo_json(
            [
                {
                    "id": s.room_id,
                    "name": s.name,
                    "kind": s.kind,
                    "unread": s.unread,
                    "notify": s.notify,
                    "muted": s.muted,
                }
                for s in states
            ]
        )
        return
    for s in states:
        flags = " (muted)" if s.muted else ""
        click.echo(
            f"{s.room_id:>5}  {s.name:<30} {s.kind:<8} {s.unread:>5} unread  "
            f"notify {s.notify}{flags}  last {_when(s.last_message_at)}"
        )


@chat.command("post")
@click.argument("room")
@click.argument("text")
@click.option("--reply-to", type=int, help="The id of the message this one answers.")
@click.option("--mention", "picked", multiple=True, help="A record to link: ENTITY:ID.")
@_JSON
def post_command(
    room: str, text: str, reply_to: int | None, picked: tuple[str, ...], as_json: bool
) -> None:
    """Post TEXT (Markdown; #entity:id links a record, @user names a user) in ROOM."""
    with current_app().unit_of_work(current_actor()) as uow:
        found = rooms.find_room(uow, room)
        message = messages.post(
            uow, found, text, reply_to=reply_to, mentions=[_mention(p) for p in picked]
        )
        shown = _lines(uow, [message])[0]
        uow.commit()
    if as_json:
        echo_json(shown)
    else:
        click.echo(f"posted message {shown['id']} (#{shown['seq']}) in {found.values['name']}")


@chat.command("read")
@click.argument("room")
@click.option("--since", type=int, help="Messages after this number (seq) only.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--mark/--no-mark", default=True, help="Move your read cursor (default: yes).")
@_JSON
def read_command(room: str, since: int | None, limit: int, mark: bool, as_json: bool) -> None:
    """The messages of ROOM, oldest first."""
    with current_app().unit_of_work(current_actor()) as uow:
        found = rooms.find_room(uow, room)
        shown = _lines(uow, messages.read(uow, found, since=since, limit=limit, mark=mark))
        uow.commit()
    if as_json:
        echo_json(shown)
        return
    for line in shown:
        reply = f" (reply to {line['reply_to']})" if line["reply_to"] else ""
        edited = " (edited)" if line["edited"] else ""
        click.echo(f"#{line['seq']:<4} {line['author'] or 'system'}{reply}{edited}: {line['body']}")


@chat.command("create")
@click.argument("name")
@click.argument("members", nargs=-1, required=True)
@click.option("--topic", help="What the room is for.")
def create_command(name: str, members: tuple[str, ...], topic: str | None) -> None:
    """A private room NAME with you and MEMBERS (usernames)."""
    with current_app().unit_of_work(current_actor()) as uow:
        room = rooms.create_room(uow, name, list(members), topic=topic)
        uow.commit()
    click.echo(f"room {room.id} {name!r} with {len(members) + 1} members")


@chat.command("edit")
@click.argument("message_id", type=int)
@click.argument("text")
def edit_command(message_id: int, text: str) -> None:
    """Change the text of your message MESSAGE_ID (the former text stays in its history)."""
    with current_app().unit_of_work(current_actor()) as uow:
        messages.edit(uow, message_id, text)
        uow.commit()
    click.echo(f"message {message_id} edited")


@chat.command("delete")
@click.argument("message_id", type=int)
def delete_command(message_id: int) -> None:
    """Delete your message MESSAGE_ID (a tombstone stays)."""
    with current_app().unit_of_work(current_actor()) as uow:
        messages.delete(uow, message_id)
        uow.commit()
    click.echo(f"message {message_id} deleted")


@chat.command("mode")
@click.argument("room")
@click.option("--notify", type=click.Choice(NOTIFY_MODES), help="What notifies you.")
@click.option("--mute/--unmute", default=None, help="Mute the room, or not.")
def mode_command(room: str, notify: str | None, mute: bool | None) -> None:
    """Set how ROOM notifies you."""
    with current_app().unit_of_work(current_actor()) as uow:
        found = rooms.find_room(uow, room)
        unread.set_mode(uow, found, notify=notify, muted=mute)
        uow.commit()
    click.echo(
        f"room {found.values['name']}: notify {notify or 'unchanged'}, "
        f"{'muted' if mute else 'unmuted' if mute is False else 'mute unchanged'}"
    )


@chat.command("about")
@click.argument("entity")
@click.argument("record_id", type=int)
@_JSON
def about_command(entity: str, record_id: int, as_json: bool) -> None:
    """The messages mentioning record ENTITY RECORD_ID, in the rooms you belong to."""
    with current_app().unit_of_work(current_actor()) as uow:
        found = mentions.record_messages(uow, entity, record_id)
        names = {
            r.id: r.values["name"]
            for r in uow.get_many("chat_room", {m.values["room_id"] for m in found})
        }
        shown = _lines(uow, found)
    for line, message in zip(shown, found, strict=True):
        line["room"] = names.get(message.values["room_id"])
    if as_json:
        echo_json(shown)
        return
    for line in shown:
        click.echo(
            f"{line['at'][:16]}  {line['room']}  {line['author'] or 'system'}: {line['body']}"
        )
