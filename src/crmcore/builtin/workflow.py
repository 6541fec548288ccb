"""Pipelines of the core entities and the checks of every staged write, as a builtin plugin.

Declares the seed's opportunity pipeline (``sales``) and the lead pipeline (``lead``), reads
``[pipelines.*]`` of the settings, and routes every create and update of a staged entity
through the :class:`~crmcore.workflow.engine.Workflow`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore.hookspecs import hookimpl
from crmcore.plugins import PluginInfo
from crmcore.signals import MOVED, MoveEvent
from crmcore.workflow.pipelines import Pipeline, Stage, Transition, default_transitions

if TYPE_CHECKING:
    from crmcore.records import Record
    from crmcore.storage.uow import UnitOfWork

PLUGIN = PluginInfo(
    name="core.workflow",
    title="Workflow",
    sections=("pipelines",),
    description="Pipelines with stages, transitions, guards, required and locked fields.",
)

SALES_STAGES = (
    Stage("initiation", probability=10),
    Stage("identification", probability=20),
    Stage("qualification", probability=30),
    Stage("rfp_received", label="RFP received", probability=50),
    Stage("quotation_sent", probability=65),
    Stage("final_stage", probability=80),
    Stage("won", kind="won", probability=100, required=("amount", "close_date"), locked=("amount", "close_date")),
    Stage("lost", kind="lost", probability=0),
)
SALES = Pipeline("sales", "opportunity", SALES_STAGES, tuple(default_transitions(SALES_STAGES)),
                 label="New business", default=True, origin="core.workflow")

LEAD_STAGES = (
    Stage("new", probability=5),
    Stage("working", probability=20),
    Stage("qualified", kind="won", probability=100),
    Stage("disqualified", kind="lost", probability=0),
)
LEAD = Pipeline(
    "lead", "lead", LEAD_STAGES,
    tuple(Transition(a, b) for a, b in (
        ("new", "working"), ("new", "qualified"), ("new", "disqualified"), ("working", "qualified"),
        ("working", "disqualified"), ("working", "new"), ("disqualified", "working"), ("qualified", "working"),
    )),
    field="status", label="Leads", default=True, origin="core.workflow",
)


@hookimpl(trylast=True)
def crm_pipelines() -> list[Pipeline]:
    return [SALES, LEAD]


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, values: dict[str, Any]) -> dict[str, Any] | None:
    workflow = uow.crm.workflow
    if workflow.staged(entity):
        return workflow.on_create(uow, uow.registry.entity(entity), values)
    return None


@hookimpl
def crm_before_update(uow: UnitOfWork, record: Record, changes: dict[str, Any]) -> dict[str, Any] | None:
    workflow = uow.crm.workflow
    if workflow.staged(record.entity):
        return workflow.on_update(uow, record, changes)
    return None


@hookimpl
def crm_after_update(uow: UnitOfWork, old: Record, new: Record, changes: dict[str, Any]) -> None:
    workflow = uow.crm.workflow
    if not workflow.staged(old.entity):
        return
    pipeline = workflow.pipeline_of(old.entity, new.values)
    if pipeline.field not in changes:
        return
    source, target = old.values.get(pipeline.field), new.values.get(pipeline.field)
    uow.crm.hook.crm_record_moved(uow=uow, old=old, new=new, source=source, target=target)
    uow.announce(MOVED, old.entity, event=MoveEvent(old.entity, new, uow.actor, pipeline.name, source, target))
