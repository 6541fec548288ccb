"""The chat chapter of ``crm demo`` (``crm_demo``): a word in the public room, then a private
room where a rep links an opportunity and another private room; a member who may not read a
linked record sees "a restricted record" where the rep sees its name. The demo company runs
without ``[security]`` (everybody reads every opportunity), so the record the second member
may not read is the other private room, of which they are no member; with sharing set to
private, an opportunity of the rep's reads the same way. Unread counts per member close it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crmcore.errors import NotFoundError

from crm_chat import mentions, messages, rooms, unread

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["tell"]


def _cast(crm: Crm) -> tuple[str, str, str, int] | None:
    """A rep owning an opportunity, two other users, and the opportunity's id."""
    with crm.unit_of_work() as uow:
        names = {r.id: r.values["username"] for r in uow.query("user").order_by("id").all()}
        deals = uow.query("opportunity").order_by("id").limit(1).all()
    if len(names) < 3 or not deals:
        return None
    rep = names.get(deals[0].values.get("owner_id")) or next(iter(names.values()))
    others = [n for n in names.values() if n != rep]
    return rep, others[0], others[1], deals[0].id


def _label(crm: Crm, reader: str, room: Any, entity: str, record_id: int) -> str:
    with crm.unit_of_work(reader) as uow:
        found = messages.read(uow, room, mark=False)
        linked = mentions.mentions_of(uow, found)[found[-1].id]
        return next(m.label for m in linked if (m.entity, m.id) == (entity, record_id))


def tell(crm: Crm, echo: Callable[[str], None]) -> None:
    """Tell the chat chapter on *crm* (after the core's chapters)."""
    echo("")
    echo("Chat")
    cast = _cast(crm)
    if cast is None:
        echo("Chat: skipped (the demo company has fewer than three users or no opportunity)")
        return
    rep, other, third, deal_id = cast
    with crm.unit_of_work(rep) as uow:
        public = rooms.public_room(uow)
        messages.post(uow, public, "Good morning all! The **quarterly review** is on Friday.")
        pricing = rooms.create_room(uow, "Pricing", [third], topic="Discounts to agree")
        messages.post(
            uow, pricing, f"@{third} what discount can we give on #opportunity:{deal_id}?"
        )
        room = rooms.create_room(uow, "Deal desk", [other], topic="Deals that need a hand")
        messages.post(
            uow,
            room,
            f"@{other} could you look at #opportunity:{deal_id} before my call? "
            f"The discount is discussed in #chat_room:{pricing.id}.",
        )
        uow.commit()
    echo(
        f"{rep} posted in the public room {public.values['name']!r} and opened the private "
        f"rooms 'Pricing' (with {third}) and 'Deal desk' (with {other})"
    )
    for entity, record_id in (("opportunity", deal_id), ("chat_room", pricing.id)):
        seen = {reader: _label(crm, reader, room, entity, record_id) for reader in (rep, other)}
        echo(
            f"  the mention of {entity} {record_id} in Deal desk reads "
            + " and ".join(f"{label!r} for {reader}" for reader, label in seen.items())
        )
    with crm.unit_of_work(other) as uow:
        counts = {s.name: s.unread for s in unread.summary(uow)}
        messages.read(uow, room)
        after = {s.name: s.unread for s in unread.summary(uow)}
        try:
            uow.get("chat_room", pricing.id)
            visible = "reads"
        except NotFoundError:
            visible = "does not see"
        uow.commit()
    shown = ", ".join(f"{name} {count}" for name, count in counts.items())
    echo(
        f"  unread for {other}: {shown}; after reading Deal desk: {after['Deal desk']}; "
        f"{other} {visible} the room Pricing"
    )
