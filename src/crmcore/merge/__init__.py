"""Merging duplicate records of any entity type, with every relation, and undoing it.

- :mod:`crmcore.merge.matching`: finding groups of probable duplicates, scored;
- :mod:`crmcore.merge.relations`: what a merge carries along and how (strategies), from the
  registry's references and the ``crm_merge_relations`` hook;
- :mod:`crmcore.merge.plan`: the dry run;
- :mod:`crmcore.merge.service`: the merge, its tombstones and journal, and the undo.

Callers use the unit of work: ``uow.find_duplicates``, ``uow.plan_merge``, ``uow.merge``,
``uow.undo_merge``.
"""

from __future__ import annotations

from crmcore.merge.matching import DuplicateGroup, find_duplicates
from crmcore.merge.plan import MergePlan, RelationPlan, plan_merge
from crmcore.merge.relations import (
    FIELD_STRATEGIES,
    STRATEGIES,
    MergeField,
    MergeRelation,
    unclassified_links,
)
from crmcore.merge.service import MergeRefusedError, MergeResult, merge, merged_into, merges, undo

__all__ = [
    "FIELD_STRATEGIES", "MERGE_ACTION", "STRATEGIES", "DuplicateGroup", "MergeField", "MergePlan", "MergeRefusedError", "MergeRelation",
    "MergeResult", "RelationPlan", "find_duplicates", "merge", "merged_into", "merges", "plan_merge", "unclassified_links", "undo",
]

#: The privilege a profile names to let its users merge records of an entity type (``"all"``
#: does not grant it): ``privileges = { account = ["all", "merge"] }``.
MERGE_ACTION = "merge"
