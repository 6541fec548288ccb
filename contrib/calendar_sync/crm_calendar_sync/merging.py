"""What a merge of duplicate activities does to calendar sync: the link of a synced event to
an activity merged away (a row of the plugin's own ``calendar_sync_event`` table) points at the
activity kept, so the next sync updates that one. Declared through the core's
``crm_merge_relations`` hook."""

from __future__ import annotations

from crmcore.merge import MergeRelation

__all__ = ["RELATIONS"]

RELATIONS = (
    MergeRelation(table="calendar_sync_event", plugin="calendar_sync", field="activity_id", targets=("activity",)),
)
