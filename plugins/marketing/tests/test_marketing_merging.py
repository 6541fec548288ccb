"""Merging duplicate contacts: campaign members and static segment entries follow the contact
kept; a member of the same run as the kept contact is merged into its member; undo restores."""

from __future__ import annotations

import datetime as dt
from typing import Any


def test_campaign_members_follow_the_contact_kept_and_come_back_on_undo(crm_factory: Any) -> None:
    crm = crm_factory(plugins=["marketing"])
    with crm.unit_of_work() as uow:
        kept, gone = uow.create("contact", last_name="Lovelace"), uow.create("contact", last_name="Lovelace A.")
        campaign = uow.create("campaign", name="Spring", channel="email")
        runs = [
            uow.create("campaign_run", campaign_id=campaign.id, run_at=dt.datetime(2026, 3, day, tzinfo=dt.UTC))
            for day in (1, 2)
        ]

        def member(run: Any, contact: Any) -> Any:
            return uow.create(
                "campaign_member",
                run_id=run.id,
                campaign_id=campaign.id,
                member_entity="contact",
                member_id=contact.id,
                contact_id=contact.id,
                status="sent",
            )

        both = (member(runs[0], kept), member(runs[0], gone))
        alone = member(runs[1], gone)
        plan = uow.plan_merge("contact", [gone.id], into=kept.id)
        shown = {r.name: r for r in plan.relations}
        merge_id = uow.merge("contact", [gone.id], into=kept.id).merge_id
        uow.commit()

    assert shown["campaign_member.member_id"].moving == (alone.id,)
    assert shown["campaign_member.member_id"].merged_away == (both[1].id,)
    with crm.unit_of_work() as uow:
        members = uow.query("campaign_member").all()
        assert sorted((m.run_id, m.member_id, m.contact_id) for m in members) == [
            (runs[0].id, kept.id, kept.id),
            (runs[1].id, kept.id, kept.id),
        ]
        uow.undo_merge(merge_id)
        uow.commit()
    with crm.unit_of_work() as uow:
        members = uow.query("campaign_member").all()
        assert sorted((m.id, m.member_id, m.contact_id) for m in members) == [
            (both[0].id, kept.id, kept.id),
            (both[1].id, gone.id, gone.id),
            (alone.id, gone.id, gone.id),
        ]
