"""What a merge of duplicate records does to field service: the help desk's tickets and SLA
policies are linked by id (the help desk is optional), and follow the record kept like
references. Declared through the core's ``crm_merge_relations`` hook."""

from __future__ import annotations

from crmcore.merge import MergeRelation

__all__ = ["RELATIONS"]

RELATIONS = (
    MergeRelation(entity="service_contract", field="sla_policy_id", targets=("sla_policy",)),
    MergeRelation(entity="service_order", field="ticket_id", targets=("ticket",)),
    MergeRelation(entity="sla_penalty", field="ticket_id", targets=("ticket",)),
)
