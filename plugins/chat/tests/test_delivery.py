"""Delivery: a signal after commit, and an async iterator per user."""

from __future__ import annotations

import asyncio
from typing import Any

from chat_support import users

import crm_chat
from crm_chat import messages, rooms, unread


def test_a_posted_message_is_announced_after_the_commit(
    crm_factory: Any, captured_signals: Any
) -> None:
    crm = crm_factory(plugins=["chat"])
    (ada,) = users(crm, "ada")
    with captured_signals("chat.message-posted", crm=crm) as sent:
        with crm.unit_of_work(ada) as uow:
            messages.post(uow, rooms.public_room(uow), "rolled back")
        assert sent == []
        with crm.unit_of_work(ada) as uow:
            message = messages.post(uow, rooms.public_room(uow), "kept")
            uow.commit()
    assert [event["message"].id for event in sent] == [message.id]


def test_listen_yields_the_messages_a_user_may_read(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    ada, bob, cy = users(crm, "ada", "bob", "cy")
    with crm.unit_of_work(ada) as uow:
        public = rooms.public_room(uow)
        secret = rooms.create_room(uow, "Secret", ["cy"])
        direct = rooms.direct_room(uow, "bob")
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        unread.set_mode(uow, public, notify="mentions")
        uow.commit()

    async def scenario() -> list[Any]:
        stream = crm_chat.listen(crm, "bob")
        received: list[Any] = []
        task = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0)  # the listener is connected
        with crm.unit_of_work(ada) as uow:
            messages.post(uow, secret, "not for bob")
            messages.post(uow, public, "for everyone")
            messages.post(uow, public, "@bob look")
            messages.post(uow, direct, "just **you**")
            uow.commit()
        received.append(await asyncio.wait_for(task, 5))
        while len(received) < 3:
            received.append(await asyncio.wait_for(stream.__anext__(), 5))
        await stream.aclose()
        return received

    got = asyncio.run(scenario())
    assert [d.message.values["body"] for d in got] == ["for everyone", "@bob look", "just **you**"]
    assert [d.notify for d in got] == [False, True, True]
    assert "<strong>you</strong>" in got[2].html
    assert len(crm.signals.signal("chat.message-posted").receivers) == 0
