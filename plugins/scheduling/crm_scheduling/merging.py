"""What a merge of duplicate records does to scheduling: a territory placed in a marketing
geography merged away is placed in the geography kept (linked by id: marketing is optional).
Declared through the core's ``crm_merge_relations`` hook."""

from __future__ import annotations

from crmcore.merge import MergeRelation

__all__ = ["RELATIONS"]

RELATIONS = (
    MergeRelation(entity="territory", field="geography_id", targets=("geography",)),
)
