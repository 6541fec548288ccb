"""Pipelines of the core entities and the checks of every staged write, as a builtin plugin.

Declares the seed's opportunity pipeline (``sales``) and the lead pipeline (``lead``), reads
``[pipelines.*]`` of the settings, and routes every create and update of a staged entity
through the :class:`~crmcore.workflow.engine.Workflow`: one record at a time from the
per-record hooks, a batch at a time from ``crm_before_update_many`` and
``crm_after_update_many`` (:meth:`~crmcore.storage.uow.UnitOfWork.move_many`). After a move it
calls ``crm_record_moved`` / ``crm_records_moved`` and queues the ``record-moved`` signal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore.hookspecs import hookimpl
from crmcore.plugins import PluginInfo
from crmcore.signals import MOVED, MoveEvent
from crmcore.workflow import Pipeline, Stage, Transition, default_transitions

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

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
    Stage("lost", kind="lost", probability=0, on_enter={"close_date": "today"}),
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
def crm_before_update_many(uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]) -> list[Any] | None:
    workflow = uow.crm.workflow
    if workflow.staged(entity):
        return workflow.on_update_many(uow, uow.registry.entity(entity), items)
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
    single, batch = uow.hook_callers("crm_record_moved", "crm_records_moved", many=False)
    if batch is not None:  # plugins with the batch form only, first
        batch(uow=uow, entity=old.entity, moves=[(old, new, source, target)])
    if single is not None:
        single(uow=uow, old=old, new=new, source=source, target=target)
    uow.announce(MOVED, old.entity, event=MoveEvent(old.entity, new, uow.actor, pipeline.name, source, target))


@hookimpl
def crm_after_update_many(uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]) -> None:
    workflow = uow.crm.workflow
    if not workflow.staged(entity):
        return
    field = workflow.defaults[entity].field  # every pipeline of an entity keeps its stage there
    moves = [(old, new, old.values.get(field), new.values.get(field)) for old, new, changes in items if field in changes]
    if not moves:
        return
    single, batch = uow.hook_callers("crm_record_moved", "crm_records_moved", many=True)
    if single is not None:
        for old, new, source, target in moves:
            single(uow=uow, old=old, new=new, source=source, target=target)
    if batch is not None:
        batch(uow=uow, entity=entity, moves=moves)
    actor = uow.actor
    uow.announce_many(MOVED, entity, lambda: (
        {"event": MoveEvent(entity, new, actor, workflow.pipeline_of(entity, new.values).name, source, target)}
        for _, new, source, target in moves
    ))
