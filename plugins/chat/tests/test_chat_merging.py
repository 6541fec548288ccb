"""Merging duplicate records: a mention of a record merged away mentions the record kept, a
message mentioning both keeps one mention, and undo brings the mentions back."""

from __future__ import annotations

from typing import Any

from crm_chat.messages import post
from crm_chat.rooms import public_room


def test_mentions_follow_the_record_kept_and_come_back_on_undo(
    crm_factory: Any, make_user: Any
) -> None:
    crm = crm_factory(plugins=["chat"])
    ann = make_user(crm, "ann")
    with crm.unit_of_work(ann) as uow:
        kept, gone = uow.create("account", name="Acme"), uow.create("account", name="ACME Ltd")
        room = public_room(uow)
        one = post(uow, room, f"see #account:{gone.id}")
        both = post(uow, room, f"#account:{kept.id} and #account:{gone.id} are one")
        merge_id = uow.merge("account", [gone.id], into=kept.id).merge_id
        uow.commit()
    with crm.unit_of_work(ann) as uow:
        mentions = (
            uow.select("chat_mention", fields=("message_id", "target_id"))
            .where(target_entity="account")
            .all()
        )
        assert sorted((m["message_id"], m["target_id"]) for m in mentions) == [
            (one.id, kept.id),
            (both.id, kept.id),
        ]
        uow.undo_merge(merge_id)
        uow.commit()
    with crm.unit_of_work(ann) as uow:
        mentions = (
            uow.select("chat_mention", fields=("message_id", "target_id"))
            .where(target_entity="account")
            .all()
        )
        assert sorted((m["message_id"], m["target_id"]) for m in mentions) == [
            (one.id, gone.id),
            (both.id, kept.id),
            (both.id, gone.id),
        ]
