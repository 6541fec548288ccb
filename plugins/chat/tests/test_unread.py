"""Unread counts from cursors, notification modes and mute, and rendering."""

from __future__ import annotations

from typing import Any

import pytest
from chat_support import users
from crmcore import ValidationError

from crm_chat import messages, rooms, unread
from crm_chat.render import TOMBSTONE, render


def test_unread_counts_follow_the_cursor(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    ada, bob, cy = users(crm, "ada", "bob", "cy")
    with crm.unit_of_work(ada) as uow:
        public = rooms.public_room(uow)
        room = rooms.create_room(uow, "Deal desk", ["bob"])
        for text in ("one", "two", "three"):
            messages.post(uow, room, text)
        messages.post(uow, public, "hello")
        uow.commit()
    with crm.unit_of_work(ada) as uow:  # the author's own messages are read
        assert unread.unread_counts(uow) == {room.id: 0, public.id: 0}
    with crm.unit_of_work(bob) as uow:
        assert unread.unread_counts(uow) == {room.id: 3, public.id: 1}
        messages.read(uow, room, since=0, limit=2)
        assert unread.unread_counts(uow)[room.id] == 1
        unread.mark_read(uow, room, 1)  # a cursor never goes back
        assert unread.unread_counts(uow)[room.id] == 1
        unread.mark_read(uow, room)
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        assert unread.unread_counts(uow) == {room.id: 0, public.id: 1}
    with crm.unit_of_work(cy) as uow:
        assert unread.unread_counts(uow) == {public.id: 1}


def test_modes_and_mute_are_kept_per_member(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    ada, _ = users(crm, "ada", "bob")
    with crm.unit_of_work(ada) as uow:
        room = rooms.direct_room(uow, "bob")
        unread.set_mode(uow, room, notify="mentions")
        unread.set_mode(uow, room, muted=True)
        (state,) = [s for s in unread.summary(uow) if s.room_id == room.id]
        assert (state.notify, state.muted) == ("mentions", True)
        with pytest.raises(ValidationError, match="unknown notification mode 'loud'"):
            unread.set_mode(uow, room, notify="loud")


def test_rendering_is_sanitised_and_labels_mentions() -> None:
    html = render(
        "**bold** <script>alert(1)</script> [x](javascript:alert(1)) [ok](https://example.com) "
        "#opportunity:7 #account:9",
        {("opportunity", 7): "<Acme & Co>", ("account", 9): "a restricted record"},
    )
    assert "<strong>bold</strong>" in html
    assert "<script" not in html and 'href="javascript' not in html
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer"' in html
    assert "&lt;Acme &amp; Co&gt;</span>" in html
    assert ">a restricted record</span>" in html
    assert render("gone", deleted=True) == TOMBSTONE
