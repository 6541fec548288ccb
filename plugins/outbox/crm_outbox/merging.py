"""What a merge of duplicate records does to the outbox: a request about a record merged
away is about the record kept. Declared through the core's ``crm_merge_relations`` hook."""

from __future__ import annotations

from crmcore.merge import MergeRelation

__all__ = ["RELATIONS"]

RELATIONS = (
    MergeRelation(entity="outbox_request", field="source_id", entity_field="source_entity"),
)
