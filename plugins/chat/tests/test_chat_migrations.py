"""The chat's migration makes its tables, the cursor table and the indexes of its seed."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crm_chat import messages, rooms, unread


def test_upgrade_makes_what_the_chat_uses(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["chat"], file=True, create_schema=False)
    crm.upgrade()
    with crm.connect() as connection:
        inspector = sa.inspect(connection)
        tables = set(inspector.get_table_names())
        indexes = {i["name"] for i in inspector.get_indexes("chat_message")}
    assert {"chat_room", "chat_member", "chat_message", "chat_mention", "chat_cursor"} <= tables
    assert "ix_chat_message_room_seq" in indexes
    with crm.unit_of_work() as uow:
        ada = uow.create("user", username="ada")
        uow.create("user", username="bob")
        uow.commit()
    with crm.unit_of_work("ada") as uow:
        room = rooms.direct_room(uow, "bob")
        messages.post(uow, room, "after an upgrade")
        uow.commit()
    with crm.unit_of_work("bob") as uow:
        assert unread.unread_counts(uow) == {room.id: 1}
    assert ada.id
