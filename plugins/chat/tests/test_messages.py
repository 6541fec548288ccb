"""Messages: numbering, replies, edits kept, tombstones; record mentions as typed links whose
labels each reader sees only for records they may read."""

from __future__ import annotations

from typing import Any

import pytest
from chat_support import SECURITY, users
from crmcore import NotFoundError, PermissionDeniedError, ValidationError

from crm_chat import mentions, messages, rooms
from crm_chat.entities import DELETED_BODY
from crm_chat.mentions import RESTRICTED


def test_messages_are_numbered_per_room_whatever_the_caller_gives(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    ada, bob = users(crm, "ada", "bob")
    with crm.unit_of_work(ada) as uow:
        room = rooms.direct_room(uow, "bob")
        first = messages.post(uow, room, "one")
        forged = uow.create(
            "chat_message", room_id=room.id, body="two", seq=99, author_id=bob.user_id
        )
        batch = uow.create_many(
            "chat_message",
            [{"room_id": room.id, "body": "three"}, {"room_id": room.id, "body": "four"}],
        )
        uow.commit()
    assert [first.values["seq"], forged.values["seq"]] == [1, 2]
    assert [m.values["seq"] for m in batch] == [3, 4]
    assert forged.values["author_id"] == ada.user_id
    with crm.unit_of_work(bob) as uow:
        assert uow.get("chat_room", room.id).values["last_seq"] == 4
        assert [m.values["body"] for m in messages.read(uow, room, since=2)] == ["three", "four"]


def test_a_reply_stays_in_its_room(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    ada, _ = users(crm, "ada", "bob")
    with crm.unit_of_work(ada) as uow:
        public = rooms.public_room(uow)
        room = rooms.direct_room(uow, "bob")
        question = messages.post(uow, public, "who is in?")
        answer = messages.post(uow, public, "me", reply_to=question)
        assert answer.values["reply_to_id"] == question.id
        with pytest.raises(ValidationError, match=f"message {question.id} is not in room"):
            messages.post(uow, room, "elsewhere", reply_to=question)
        with pytest.raises(ValidationError, match="body"):
            messages.post(uow, room, "   ")


def test_edits_are_kept_and_deletion_leaves_a_tombstone(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    ada, bob = users(crm, "ada", "bob")
    with crm.unit_of_work(ada) as uow:
        room = rooms.direct_room(uow, "bob")
        message = messages.post(uow, room, "first draft")
        messages.edit(uow, message, "second draft")
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        with pytest.raises(PermissionDeniedError, match="only its author"):
            messages.edit(uow, message, "mine now")
        with pytest.raises(PermissionDeniedError, match="tombstone"):
            uow.delete("chat_message", message.id)
    with crm.unit_of_work(ada) as uow:
        edited = uow.get("chat_message", message.id)
        assert edited.values["edited_at"] is not None
        assert [(e.before, e.after) for e in messages.edits(uow, message)] == [
            ("first draft", "second draft")
        ]
        messages.delete(uow, message)
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        gone = uow.get("chat_message", message.id)
        assert gone.values["deleted_at"] is not None and gone.values["body"] == DELETED_BODY
        assert messages.read(uow, room)[0].id == message.id  # the tombstone keeps its place
    with crm.unit_of_work(ada) as uow, pytest.raises(PermissionDeniedError, match="was deleted"):
        messages.edit(uow, message, "back")


def test_a_mention_is_a_typed_link_labelled_for_each_reader(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"], security=SECURITY)
    ada, bob = users(crm, "ada", "bob", roles=("rep",))
    with crm.unit_of_work(ada) as uow:
        deal = uow.create("opportunity", name="Acme renewal", stage="qualification")
        room = rooms.direct_room(uow, "bob")
        message = messages.post(uow, room, f"see #opportunity:{deal.id} and @bob")
        uow.commit()
    with crm.unit_of_work() as uow:
        links = uow.query("chat_mention").where(message_id=message.id).order_by("id").all()
        assert [(m.values["target_entity"], m.values["target_id"]) for m in links] == [
            ("opportunity", deal.id),
            ("user", bob.user_id),
        ]
    with crm.unit_of_work(ada) as uow:
        assert mentions.labels(uow, [("opportunity", deal.id)]) == {
            ("opportunity", deal.id): "Acme renewal"
        }
    with crm.unit_of_work(bob) as uow:
        found = mentions.mentions_of(uow, [uow.get("chat_message", message.id)])[message.id]
        assert [(m.entity, m.label) for m in found] == [
            ("opportunity", RESTRICTED),
            ("user", "bob"),
        ]
        with pytest.raises(ValidationError, match=f"no opportunity {deal.id} you may read"):
            messages.post(uow, room, f"what is #opportunity:{deal.id}?")
        with pytest.raises(ValidationError, match=f"no opportunity {deal.id} you may read"):
            messages.post(uow, room, "and this?", mentions=[("opportunity", deal.id)])


def test_picked_mentions_and_mentions_following_edits(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    ada, _ = users(crm, "ada", "bob")
    with crm.unit_of_work(ada) as uow:
        one = uow.create("account", name="One")
        two = uow.create("account", name="Two")
        room = rooms.direct_room(uow, "bob")
        message = messages.post(
            uow,
            room,
            f"about #account:{one.id}",
            mentions=[("account", two.id), ("account", one.id)],
        )

        def linked() -> list[tuple[int, str]]:
            rows = uow.query("chat_mention").where(message_id=message.id).order_by("id").all()
            return [(m.values["target_id"], m.values["origin"]) for m in rows]

        assert linked() == [(one.id, "text"), (two.id, "picker")]
        messages.edit(uow, message, "about nothing")
        assert linked() == [(two.id, "picker")]
        messages.delete(uow, message)
        assert linked() == []
        with pytest.raises(ValidationError, match="no entity type 'spaceship'"):
            messages.post(uow, room, "x", mentions=[("spaceship", 1)])


def chat_entries(timeline: Any) -> set[int]:
    return {entry.record_id for entry in timeline if entry.entity == "chat_message"}


def test_a_record_lists_the_messages_mentioning_it_for_who_may_read_both(
    crm_factory: Any,
) -> None:
    crm = crm_factory(plugins=["chat"], security=SECURITY)
    ada, bob, cy = users(crm, "ada", "bob", "cy", roles=("rep",))
    with crm.unit_of_work(ada) as uow:
        account = uow.create("account", name="Acme")
        public = rooms.public_room(uow)
        private = rooms.direct_room(uow, "bob")
        said = messages.post(uow, public, f"#account:{account.id} signed!")
        whispered = messages.post(uow, private, f"#account:{account.id} pays late")
        uow.commit()
    with crm.unit_of_work(ada) as uow:
        found = mentions.record_messages(uow, "account", account.id)
        assert [m.id for m in found] == [said.id, whispered.id]
        assert chat_entries(uow.timeline("account", account.id)) == {said.id, whispered.id}
    with crm.unit_of_work() as uow:  # cy may read the account, but is not in the private room
        uow.update("account", account.id, owner_id=cy.user_id)
        uow.commit()
    with crm.unit_of_work(cy) as uow:
        assert [m.id for m in mentions.record_messages(uow, "account", account.id)] == [said.id]
        # the account's timeline holds the messages cy may read
        assert chat_entries(uow.timeline("account", account.id)) == {said.id}
    with crm.unit_of_work(bob) as uow, pytest.raises(NotFoundError):
        mentions.record_messages(uow, "account", account.id)
