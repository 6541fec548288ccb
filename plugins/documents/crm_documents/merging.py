"""What a merge of duplicate records does to documents: a document attached to a record
merged away is attached to the record kept (its link fields to accounts, contacts, leads and
opportunities are references, which the core repoints by itself). Declared through the
core's ``crm_merge_relations`` hook."""

from __future__ import annotations

from crmcore.merge import MergeRelation

__all__ = ["RELATIONS"]

RELATIONS = (MergeRelation(entity="document", field="record_id", entity_field="record_entity"),)
