"""Merging duplicate records: a document attached to a record merged away is attached to the
record kept, and back after an undo."""

from __future__ import annotations

from typing import Any

from crm_documents.documents import attach


def test_documents_follow_the_record_kept_and_come_back_on_undo(
    crm_factory: Any, make_user: Any
) -> None:
    crm = crm_factory(plugins=["documents"])
    ann = make_user(crm, "ann")
    with crm.unit_of_work(ann) as uow:
        kept, gone = uow.create("account", name="Acme"), uow.create("account", name="ACME Ltd")
        document = attach(
            uow, gone, "Frame contract", b"terms", kind="contract", filename="frame.txt"
        )
        merge_id = uow.merge("account", [gone.id], into=kept.id).merge_id
        uow.commit()
    with crm.unit_of_work(ann) as uow:
        moved = uow.get("document", document.id)
        assert (moved.record_entity, moved.record_id, moved.account_id) == (
            "account",
            kept.id,
            kept.id,
        )
        uow.undo_merge(merge_id)
        uow.commit()
    with crm.unit_of_work(ann) as uow:
        back = uow.get("document", document.id)
        assert (back.record_id, back.account_id) == (gone.id, gone.id)
