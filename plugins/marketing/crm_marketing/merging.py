"""What a merge of duplicate accounts, contacts or leads does to marketing: campaign members
and static segment entries follow the record kept. A record merged away that was a member of
the same campaign run (or entry of the same segment) as the record kept makes one member: the
duplicate is merged into the kept one (a tombstone, restored by an undo). Declared through the
core's ``crm_merge_relations`` hook."""

from __future__ import annotations

from crmcore.merge import MergeRelation

__all__ = ["RELATIONS"]

RELATIONS = (
    MergeRelation(
        entity="campaign_member", field="member_id", entity_field="member_entity", strategy="union", unique=("run_id",)
    ),
    *(
        MergeRelation(entity="campaign_member", field=f"{kind}_id", strategy="union", unique=("run_id",))
        for kind in ("account", "contact", "lead")
    ),
    MergeRelation(
        entity="segment_entry",
        field="record_id",
        entity_field="segment_id.member_entity",
        strategy="union",
        unique=("segment_id",),
    ),
    # the quote a special offer became (orders' quote, when orders is enabled): follows a
    # merge of quotes
    MergeRelation(entity="campaign_touch", field="quote_id", targets=("quote",)),
)
