"""The workflow engine: where records are in their pipelines, and how they move.

Every write of a staged entity passes here (from the ``crm_before_create`` and
``crm_before_update`` hooks of the builtin workflow plugin): a create gets its pipeline and
first stage; a change of stage is a move, checked against the pipeline's transitions, guards,
permission and the target's required fields; fields locked in the current stage cannot change.
An illegal move raises :class:`~crmcore.errors.TransitionError` naming the record, the stage,
the target and the allowed targets; a failing guard names the condition and the values it saw.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import ConfigError, TransitionError, ValidationError
from crmcore.fields import Reference
from crmcore.records import Record
from crmcore.workflow.pipelines import Pipeline, Stage, Transition

if TYPE_CHECKING:
    from crmcore.app import Crm
    from crmcore.registry import EntityType, Registry
    from crmcore.storage.uow import UnitOfWork

__all__ = ["Workflow"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Workflow:
    """The frozen pipelines of one app and the rules of moving between their stages."""

    def __init__(self, crm: Crm, pipelines: Sequence[Pipeline]) -> None:
        self.crm = crm
        self.pipelines: dict[str, Pipeline] = {}
        self.by_entity: dict[str, list[Pipeline]] = {}
        for pipeline in pipelines:
            if pipeline.name in self.pipelines:
                raise ConfigError(f"pipeline {pipeline.name!r} is declared twice ({self.pipelines[pipeline.name].origin} and {pipeline.origin})")
            self.pipelines[pipeline.name] = pipeline
            self.by_entity.setdefault(pipeline.entity, []).append(pipeline)
        self.defaults: dict[str, Pipeline] = {}
        for entity, declared in self.by_entity.items():
            marked = [p for p in declared if p.default]
            if len(marked) > 1:
                raise ConfigError(f"entity {entity!r} has several default pipelines: {', '.join(p.name for p in marked)}")
            self.defaults[entity] = marked[0] if marked else declared[0]
        self.check(crm.registry)

    # -- start-up checks ------------------------------------------------------------------------
    def check(self, registry: Registry) -> None:
        """Check every pipeline against the registry: entity, stage field, required and locked
        fields, guard conditions, permissions.

        :raises ConfigError: naming the pipeline and what is unknown.
        """
        for pipeline in self.pipelines.values():
            where = f"pipeline {pipeline.name!r}"
            if pipeline.entity not in registry:
                raise ConfigError(f"{where}: unknown entity type {pipeline.entity!r}; known: {', '.join(sorted(registry.entity_names))}")
            entity = registry.entity(pipeline.entity)
            if not entity.has_field(pipeline.field):
                raise ConfigError(f"{where}: {entity.name} has no field {pipeline.field!r} to hold the stage")
            fields = {p.field for p in self.by_entity[entity.name]}
            if len(fields) > 1:
                raise ConfigError(f"{where}: the pipelines of {entity.name} keep their stage in different fields ({', '.join(sorted(fields))}); use one")
            if len(self.by_entity[entity.name]) > 1 and not entity.has_field("pipeline"):
                raise ConfigError(f"{where}: {entity.name} has several pipelines but no 'pipeline' field to say which a record follows")
            for stage in pipeline.stages:
                for name in (*stage.required, *stage.locked):
                    if not entity.has_field(name):
                        raise ConfigError(f"{where} stage {stage.name!r}: unknown field {name!r} of {entity.name}")
            actions = self.crm.access.model.actions
            for transition in pipeline.transitions:
                for index, guard in enumerate(transition.guards):
                    guard.check(registry, entity, where=f"{where} transition {transition} guard {index + 1}")
                if transition.permission is not None and transition.permission not in actions:
                    raise ConfigError(
                        f"{where} transition {transition}: unknown permission {transition.permission!r}; "
                        "declare it through crm_permissions"
                    )

    # -- lookups --------------------------------------------------------------------------------
    def staged(self, entity: str) -> bool:
        return entity in self.by_entity

    def pipeline_of(self, entity: str, values: Mapping[str, Any]) -> Pipeline:
        """The pipeline a record (given by its values) follows."""
        name = values.get("pipeline")
        if name:
            pipeline = self.pipelines.get(name)
            if pipeline is None or pipeline.entity != entity:
                known = ", ".join(p.name for p in self.by_entity[entity])
                raise ValidationError({"pipeline": [f"unknown pipeline {name!r} for {entity}; known: {known}"]}, entity=entity)
            return pipeline
        return self.defaults[entity]

    def stage_of(self, pipeline: Pipeline, name: str, entity: str) -> Stage:
        try:
            return pipeline.stage(name)
        except KeyError:
            raise ValidationError(
                {pipeline.field: [f"unknown stage {name!r} of pipeline {pipeline.name!r}; its stages: {', '.join(pipeline.stage_names)}"]},
                entity=entity,
            ) from None

    # -- writes ---------------------------------------------------------------------------------
    def on_create(self, uow: UnitOfWork, entity: EntityType, values: Mapping[str, Any]) -> dict[str, Any]:
        """Changes for a record about to be created: pipeline, first stage, time of entry,
        probability; the stage's required fields are checked."""
        pipeline = self.pipeline_of(entity.name, values)
        changes: dict[str, Any] = {}
        if entity.has_field("pipeline") and not values.get("pipeline"):
            changes["pipeline"] = pipeline.name
        name = values.get(pipeline.field) or pipeline.first.name
        stage = self.stage_of(pipeline, name, entity.name)
        if values.get(pipeline.field) != name:
            changes[pipeline.field] = name
        entered = f"{pipeline.field}_entered_at"
        if entity.has_field(entered):
            changes[entered] = _now()
        if entity.has_field("probability") and values.get("probability") is None:
            changes["probability"] = stage.probability
        self._require_fields(entity, stage, {**values, **changes}, None)
        return changes

    def on_update(self, uow: UnitOfWork, record: Record, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Check a change of a staged record; returns the changes a move implies."""
        entity = uow.registry.entity(record.entity)
        pipeline = self.pipeline_of(entity.name, record.values)
        current = self.stage_of(pipeline, record.values.get(pipeline.field) or pipeline.first.name, entity.name)
        target_name = changes.get(pipeline.field, current.name)
        if "pipeline" in changes and changes["pipeline"] != record.values.get("pipeline"):
            new_pipeline = self.pipeline_of(entity.name, changes)
            if pipeline.field not in changes:
                raise TransitionError(
                    f"{entity.name} {record.id} changes pipeline to {new_pipeline.name!r}: give its stage too "
                    f"({', '.join(new_pipeline.stage_names)})"
                )
            target = self.stage_of(new_pipeline, target_name, entity.name)
            return self._entered(entity, new_pipeline, target, record, changes)
        locked = [name for name in changes if name in current.locked and name != pipeline.field]
        if locked and target_name == current.name:
            raise ValidationError(
                {name: [f"is locked while {entity.name} {record.id} is in stage {current.name!r}"] for name in locked},
                entity=entity.name,
            )
        if target_name == current.name:
            return {}
        target = self.stage_of(pipeline, target_name, entity.name)
        transition = pipeline.find(current.name, target.name)
        if transition is None:
            allowed = pipeline.targets(current.name)
            shown = ", ".join(repr(t) for t in allowed) or "none (it is a final stage)"
            raise TransitionError(
                f"{entity.name} {record.id} cannot move from {current.name!r} to {target.name!r}; allowed targets: {shown}"
            )
        merged = {**record.values, **changes}
        self.check_transition(uow, entity, record, transition, merged)
        return self._entered(entity, pipeline, target, record, changes)

    def _entered(self, entity: EntityType, pipeline: Pipeline, target: Stage, record: Record, changes: Mapping[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        entered = f"{pipeline.field}_entered_at"
        if entity.has_field(entered):
            extra[entered] = _now()
        if entity.has_field("probability") and "probability" not in changes:
            extra["probability"] = target.probability
        self._require_fields(entity, target, {**record.values, **changes, **extra}, record)
        return extra

    def check_transition(self, uow: UnitOfWork, entity: EntityType, record: Record, transition: Transition, merged: Mapping[str, Any]) -> None:  # noqa: E501
        """Permission and guards of one move (raises :class:`TransitionError`)."""
        current = record.values.get(self.pipeline_of(entity.name, record.values).field)
        if transition.permission is not None:
            if not uow.can(entity.name, transition.permission):
                raise TransitionError(
                    f"{entity.name} {record.id} cannot move from {current!r} to {transition.target!r}: "
                    f"{uow.actor.username} lacks permission {transition.permission!r}"
                )
        lookup = self.lookup(uow, entity, merged)
        for guard in transition.guards:
            evaluation = guard.evaluate(lookup)
            if not evaluation.result:
                raise TransitionError(
                    f"{entity.name} {record.id} cannot move from {current!r} to {transition.target!r}: "
                    f"guard {str(guard)!r} failed ({evaluation.describe()})"
                )
        uow.crm.hook.crm_before_move(uow=uow, record=record, transition=transition, values=dict(merged))

    @staticmethod
    def _require_fields(entity: EntityType, stage: Stage, values: Mapping[str, Any], record: Record | None) -> None:
        missing = [name for name in stage.required if values.get(name) in (None, "", ())]
        if missing:
            who = f"{entity.name} {record.id}" if record is not None else f"a new {entity.name}"
            raise ValidationError(
                {name: [f"is required to enter stage {stage.name!r} ({who})"] for name in missing}, entity=entity.name
            )

    def lookup(self, uow: UnitOfWork, entity: EntityType, values: Mapping[str, Any]) -> Any:
        """A name resolver for conditions: record fields, then ``ref.field`` of referenced
        records (read as the system would: conditions are rules, not the actor's view)."""
        cache: dict[tuple[str, int], Record | None] = {}

        def resolve(path: tuple[str, ...]) -> Any:
            current: Mapping[str, Any] = values
            current_entity = entity
            for index, part in enumerate(path):
                if index == len(path) - 1:
                    return current.get(part)
                reference = f"{part}_id" if current_entity.has_field(f"{part}_id") else part
                target_id = current.get(reference)
                if target_id is None:
                    return None
                field = current_entity.field(reference)
                assert isinstance(field.type, Reference)
                key = (field.type.entity, target_id)
                if key not in cache:
                    cache[key] = _read(uow, field.type.entity, target_id)
                found = cache[key]
                if found is None:
                    return None
                current_entity, current = uow.registry.entity(field.type.entity), found.values
            return None

        return resolve


def _read(uow: UnitOfWork, entity: str, record_id: int) -> Record | None:
    table = uow.registry.table(entity)
    row = uow.connection.execute(sa.select(table).where(table.c.id == record_id)).mappings().first()
    return None if row is None else uow._row_to_record(uow.registry.entity(entity), row, full=True)

