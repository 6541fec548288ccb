"""What a merge of duplicate records does to chat: a mention of a record merged away now
mentions the record kept (a message mentioning both keeps one mention). Declared through the
core's ``crm_merge_relations`` hook."""

from __future__ import annotations

from crmcore.merge import MergeRelation

__all__ = ["RELATIONS"]

RELATIONS = (
    MergeRelation(
        entity="chat_mention",
        field="target_id",
        entity_field="target_entity",
        strategy="union",
        unique=("message_id",),
    ),
)
