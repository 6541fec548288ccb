"""Pipelines of the core entities and the checks of every staged write, as a builtin plugin.

Declares the seed's opportunity pipeline (``sales``) and the lead pipeline (``lead``), reads
``[pipelines.*]`` of the settings, and routes every create and update of a staged entity
through the :class:`~crmcore.workflow.engine.Workflow`, a batch at a time (a single write is a
batch of one). After moves it calls ``crm_after_move`` with the batch and queues a
``record-moved`` signal per record.
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
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    workflow = uow.crm.workflow
    if not workflow.staged(entity):
        return None
    etype = uow.registry.entity(entity)
    return [workflow.on_create(uow, etype, values) for values in items]


@hookimpl
def crm_before_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]) -> list[Any] | None:
    workflow = uow.crm.workflow
    if workflow.staged(entity):
        return workflow.on_update(uow, uow.registry.entity(entity), items)
    return None


@hookimpl
def crm_after_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]) -> None:
    workflow = uow.crm.workflow
    if not workflow.staged(entity):
        return
    field = workflow.defaults[entity].field  # every pipeline of an entity keeps its stage there
    moves = [(old, new, old.values.get(field), new.values.get(field)) for old, new, changes in items if field in changes]
    if not moves:
        return
    uow.crm.hook.crm_after_move(uow=uow, entity=entity, moves=moves)
    actor = uow.actor
    if len(moves) == 1:  # queued as it is: lighter to hold until the commit than a batch's maker
        _, new, source, target = moves[0]
        uow.announce(MOVED, entity, event=MoveEvent(entity, new, actor, workflow.pipeline_of(entity, new.values).name, source, target))
        return
    uow.announce_many(MOVED, entity, lambda: (
        {"event": MoveEvent(entity, new, actor, workflow.pipeline_of(entity, new.values).name, source, target)}
        for _, new, source, target in moves
    ))
