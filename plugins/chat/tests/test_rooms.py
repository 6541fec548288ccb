"""Rooms: the public room, private rooms whose members decide, one two-person room per pair,
team rooms; a user reads only the rooms they belong to, on every read path."""

from __future__ import annotations

from typing import Any

import pytest
from chat_support import users
from crmcore import NotFoundError, PermissionDeniedError, ValidationError

from crm_chat import messages, rooms, unread


def test_the_public_room_is_made_once_and_read_by_every_active_user(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    ada, bob = users(crm, "ada", "bob")
    (gone,) = users(crm, "gone", active=False)
    with crm.unit_of_work(ada) as uow:
        first = rooms.public_room(uow)
        messages.post(uow, first, "hello")
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        assert rooms.public_room(uow).id == first.id
        assert [m.values["body"] for m in messages.read(uow, first)] == ["hello"]
    with crm.unit_of_work() as uow:
        assert uow.query("chat_room").where(kind="public").count() == 1
        uow.update("user", gone.user_id, active=True)
        uow.commit()
    with crm.unit_of_work() as uow:
        uow.update("user", gone.user_id, active=False)
        uow.commit()
    with crm.unit_of_work(gone) as uow:  # an inactive user's unit reads no room
        assert uow.query("chat_room").count() == 0


def test_a_private_room_is_read_by_its_members_only(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    ada, bob, cy = users(crm, "ada", "bob", "cy")
    with crm.unit_of_work(ada) as uow:
        room = rooms.create_room(uow, "Deal desk", ["bob"])
        messages.post(uow, room, "between us")
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        assert [m.values["body"] for m in messages.read(uow, room)] == ["between us"]
    with crm.unit_of_work(cy) as uow:
        with pytest.raises(NotFoundError):
            uow.get("chat_room", room.id)
        assert uow.query("chat_message").count() == 0
        assert uow.select("chat_member").count() == 0
        assert uow.select("chat_mention").count() == 0
        assert uow.select("chat_message").group_by("room_id").aggregate() == []
        with pytest.raises((NotFoundError, ValidationError)):
            uow.create("chat_message", room_id=room.id, body="let me in")


def test_members_decide_who_joins_a_private_room(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    ada, bob, cy, dan = users(crm, "ada", "bob", "cy", "dan")
    with crm.unit_of_work(ada) as uow:
        room = rooms.create_room(uow, "Deal desk", ["bob"])
        uow.commit()
    with crm.unit_of_work(cy) as uow, pytest.raises((NotFoundError, PermissionDeniedError)):
        uow.create("chat_member", room_id=room.id, user_id=cy.user_id)
    with crm.unit_of_work(bob) as uow:
        rooms.add_members(uow, room, ["cy"])
        uow.commit()
    with crm.unit_of_work(cy) as uow:
        assert rooms.member_ids(uow, room) == sorted([ada.user_id, bob.user_id, cy.user_id])
        rooms.leave(uow, room)
        uow.commit()
    with crm.unit_of_work(cy) as uow:
        with pytest.raises(NotFoundError):
            uow.get("chat_room", room.id)
    with crm.unit_of_work(ada) as uow, pytest.raises(PermissionDeniedError):
        uow.create("chat_room", name="Sneaky", kind="public", key="public")
    with crm.unit_of_work(ada) as uow, pytest.raises(ValidationError, match="at least one member"):
        rooms.create_room(uow, "Alone", [])
    assert dan.user_id


def test_a_two_person_room_is_unique_per_pair(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    ada, bob, cy = users(crm, "ada", "bob", "cy")
    with crm.unit_of_work(ada) as uow:
        room = rooms.direct_room(uow, "bob")
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        assert rooms.direct_room(uow, ada.user_id).id == room.id
        assert rooms.find_room(uow, "@ada").id == room.id
        with pytest.raises(PermissionDeniedError):
            rooms.add_members(uow, room, ["cy"])
    with crm.unit_of_work(cy) as uow:
        assert rooms.direct_room(uow, "ada").id != room.id
        with pytest.raises(ValidationError, match="another user"):
            rooms.direct_room(uow, "cy")
        with pytest.raises(NotFoundError, match="'nobody'"):
            rooms.direct_room(uow, "nobody")


def test_a_team_room_follows_the_team(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"])
    with crm.unit_of_work() as uow:
        team = uow.create("team", name="North")
        uow.commit()
    ada, bob = users(crm, "ada", "bob", team_id=team.id)
    (cy,) = users(crm, "cy")
    with crm.unit_of_work(ada) as uow:
        room = rooms.team_room(uow, team.id)
        messages.post(uow, room, "team stand-up at 9")
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        assert unread.unread_counts(uow)[room.id] == 1
        assert rooms.member_ids(uow, room) == [ada.user_id, bob.user_id]
    with crm.unit_of_work(cy) as uow:
        assert room.id not in unread.unread_counts(uow)
    with crm.unit_of_work() as uow:
        uow.update("user", cy.user_id, team_id=team.id)
        uow.commit()
    with crm.unit_of_work(cy) as uow:
        assert unread.unread_counts(uow)[room.id] == 1


def test_an_administrator_is_no_member_of_other_peoples_rooms(crm_factory: Any) -> None:
    from chat_support import SECURITY

    crm = crm_factory(plugins=["chat"], security=SECURITY)
    ada, bob = users(crm, "ada", "bob", roles=("rep",))
    with crm.unit_of_work(ada) as uow:
        room = rooms.direct_room(uow, "bob")
        messages.post(uow, room, "hi")
        uow.commit()
    with crm.unit_of_work() as uow:
        admin_user = uow.create("user", username="root")
        uow.commit()
    with crm.unit_of_work("root") as uow:
        assert uow.query("chat_message").count() == 0
    assert admin_user.id and bob.user_id
