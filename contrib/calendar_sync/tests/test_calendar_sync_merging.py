"""Merging duplicate activities: the link of a synced event to an activity merged away points
at the activity kept, and back after an undo."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crm_calendar_sync.links import EVENT


def test_event_links_follow_the_activity_kept_and_come_back_on_undo(crm_factory: Any, make_record: Any) -> None:
    crm = crm_factory(plugins=["calendar_sync"])
    kept, gone = make_record(crm, "activity", subject="Visit"), make_record(crm, "activity", subject="Visit (copy)")
    with crm.unit_of_work() as uow:
        raw = uow.raw("calendar_sync")
        raw.execute(sa.insert(EVENT), [{"account_id": 1, "uid": "a@example", "activity_id": gone.id, "fields_hash": "x"}])
        merge_id = uow.merge("activity", [gone.id], into=kept.id).merge_id
        assert raw.execute(sa.select(EVENT.c.activity_id)).scalars().all() == [kept.id]
        uow.undo_merge(merge_id)
        assert raw.execute(sa.select(EVENT.c.activity_id)).scalars().all() == [gone.id]
