"""Workflow: pipelines and their builder, transitions and guards, rules and rule actions,
approvals and the condition language.

The public names are imported on first use (:mod:`crmcore.lazy`), so importing one module of
the package does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.lazy import lazy_exports

if TYPE_CHECKING:
    from crmcore.workflow.actions import BUILTIN_ACTIONS as BUILTIN_ACTIONS
    from crmcore.workflow.actions import Action as Action
    from crmcore.workflow.actions import ActionContext as ActionContext
    from crmcore.workflow.actions import CheckContext as CheckContext
    from crmcore.workflow.actions import Param as Param
    from crmcore.workflow.actions import render as render
    from crmcore.workflow.approvals import APPROVAL_STATUSES as APPROVAL_STATUSES
    from crmcore.workflow.approvals import APPROVED as APPROVED
    from crmcore.workflow.approvals import PENDING as PENDING
    from crmcore.workflow.approvals import REJECTED as REJECTED
    from crmcore.workflow.approvals import approvals as list_approvals  # noqa: F401  (exported lazily)
    from crmcore.workflow.approvals import approve as approve
    from crmcore.workflow.approvals import reject as reject
    from crmcore.workflow.approvals import request_approval as request_approval
    from crmcore.workflow.conditions import Condition as Condition
    from crmcore.workflow.conditions import ConditionError as ConditionError
    from crmcore.workflow.conditions import parse as parse_condition  # noqa: F401  (exported lazily)
    from crmcore.workflow.engine import Workflow as Workflow
    from crmcore.workflow.pipelines import Pipeline as Pipeline
    from crmcore.workflow.pipelines import PipelineBuilder as PipelineBuilder
    from crmcore.workflow.pipelines import Stage as Stage
    from crmcore.workflow.pipelines import Transition as Transition
    from crmcore.workflow.pipelines import default_transitions as default_transitions
    from crmcore.workflow.pipelines import pipeline_from_settings as pipeline_from_settings
    from crmcore.workflow.rule_engine import TIMED_JOB as TIMED_JOB
    from crmcore.workflow.rule_engine import Firing as Firing
    from crmcore.workflow.rule_engine import PlannedAction as PlannedAction
    from crmcore.workflow.rule_engine import RuleEngine as RuleEngine
    from crmcore.workflow.rules import EVENT_KINDS as EVENT_KINDS
    from crmcore.workflow.rules import TIMED_KINDS as TIMED_KINDS
    from crmcore.workflow.rules import ActionCall as ActionCall
    from crmcore.workflow.rules import Event as Event
    from crmcore.workflow.rules import Rule as Rule
    from crmcore.workflow.rules import RuleError as RuleError
    from crmcore.workflow.rules import rules_from_settings as rules_from_settings

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "crmcore.workflow.pipelines": ("Pipeline", "PipelineBuilder", "Stage", "Transition", "default_transitions", "pipeline_from_settings"),
    "crmcore.workflow.rules": ("EVENT_KINDS", "TIMED_KINDS", "ActionCall", "Event", "Rule", "RuleError", "rules_from_settings"),
    "crmcore.workflow.actions": ("BUILTIN_ACTIONS", "Action", "ActionContext", "CheckContext", "Param", "render"),
    "crmcore.workflow.rule_engine": ("TIMED_JOB", "Firing", "PlannedAction", "RuleEngine"),
    "crmcore.workflow.engine": ("Workflow",),
    "crmcore.workflow.approvals": ("APPROVAL_STATUSES", "APPROVED", "PENDING", "REJECTED", "approve", "list_approvals=approvals", "reject", "request_approval"),
    "crmcore.workflow.conditions": ("Condition", "ConditionError", "parse_condition=parse"),
})
