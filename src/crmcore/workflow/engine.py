"""The workflow engine: where records are in their pipelines, and how they move.

Every write of a staged entity passes here (from the ``crm_before_create`` and
``crm_before_update`` hooks of the builtin workflow plugin, a single write being a batch of
one): a create gets its pipeline and first stage (a create in a later stage, or a
change of pipeline into one, must be admitted by one transition into that stage:
:meth:`Workflow.entry_refusal`); a change of stage is a move,
checked against the pipeline's transitions, guards, permission and the target's required
fields; fields locked in the current stage cannot change. An illegal move raises
:class:`~crmcore.errors.TransitionError` naming the record, the stage, the target and the
allowed targets; a failing guard names the condition and the values it saw.

Stages and transitions are looked up once per (pipeline, stage) and guards are compiled once
(:mod:`crmcore.workflow.compiled`). A batch (:meth:`Workflow.on_update`) checks every
record with the same messages whatever the batch, and reads the records its guards refer
to once for the batch (:meth:`Workflow.lookup_many`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import ConfigError, NotFoundError, TransitionError, ValidationError
from crmcore.fields import Reference
from crmcore.records import Record
from crmcore.storage import internal
from crmcore.workflow.compiled import Compiled, compile_condition
from crmcore.workflow.pipelines import Pipeline, Stage, Transition

if TYPE_CHECKING:
    from crmcore.registry import EntityType, Registry
    from crmcore.storage.uow import UnitOfWork
    from crmcore.workflow.conditions import Condition

__all__ = ["Lookups", "Workflow"]

#: Resolves a name of a condition (a path such as ``("owner", "username")``) to a value.
Lookup = Callable[[tuple[str, ...]], Any]


def _entry_defaults(stage: Stage, values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``on_enter`` values of *stage* for the fields empty in *values*."""
    if not stage.on_enter:
        return {}
    made = {"today": dt.date.today(), "now": _now()}  # today as conditions read it
    return {name: made[value] for name, value in stage.on_enter if values.get(name) in (None, "", ())}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Workflow:
    """The frozen pipelines of one app and the rules of moving between their stages.

    :param registry: the frozen registry the pipelines are checked against.
    :param pipelines: the pipelines, extended by the plugins and frozen.
    :param permissions: the actions the security model knows, which a transition's
        ``permission`` must name.
    """

    def __init__(self, registry: Registry, pipelines: Sequence[Pipeline], *, permissions: Collection[str]) -> None:
        self.permissions = frozenset(permissions)
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
        self.check(registry)
        # lookups of the frozen pipelines, filled as moves need them
        self._stages: dict[tuple[str, str], Stage] = {}
        self._transitions: dict[tuple[str, str, str], Transition | None] = {}
        self._guards: dict[int, tuple[Transition, list[tuple[Condition, Compiled]]]] = {}  # by id of the transition
        self._into: dict[tuple[str, str], list[Transition]] = {}  # transitions into a stage

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
                for name in (*stage.required, *stage.locked, *(f for f, _ in stage.on_enter)):
                    if not entity.has_field(name):
                        raise ConfigError(f"{where} stage {stage.name!r}: unknown field {name!r} of {entity.name}")
            actions = self.permissions
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
        found = self._stages.get((pipeline.name, name))
        if found is not None and self.pipelines.get(pipeline.name) is pipeline:
            return found
        try:
            found = pipeline.stage(name)
        except KeyError:
            raise ValidationError(
                {pipeline.field: [f"unknown stage {name!r} of pipeline {pipeline.name!r}; its stages: {', '.join(pipeline.stage_names)}"]},
                entity=entity,
            ) from None
        if self.pipelines.get(pipeline.name) is pipeline:
            self._stages[(pipeline.name, name)] = found
        return found

    def _transition(self, entity: EntityType, record: Record, pipeline: Pipeline, current: Stage, target: Stage) -> Transition:
        """The transition from *current* to *target*, or the :class:`TransitionError` of an
        illegal move of *record*."""
        key = (pipeline.name, current.name, target.name)
        if key in self._transitions and self.pipelines.get(pipeline.name) is pipeline:
            transition = self._transitions[key]
        else:
            transition = pipeline.find(current.name, target.name)
            if self.pipelines.get(pipeline.name) is pipeline:
                self._transitions[key] = transition
        if transition is None:
            allowed = pipeline.targets(current.name)
            shown = ", ".join(repr(t) for t in allowed) or "none (it is a final stage)"
            raise TransitionError(
                f"{entity.name} {record.id} cannot move from {current.name!r} to {target.name!r}; allowed targets: {shown}"
            )
        return transition

    def _compiled_guards(self, transition: Transition) -> list[tuple[Condition, Compiled]]:
        """The guards of *transition* with their compiled forms (kept with the transition, so
        the id that keys them cannot be reused)."""
        found = self._guards.get(id(transition))
        if found is None or found[0] is not transition:
            found = self._guards[id(transition)] = (transition, [(guard, compile_condition(guard)) for guard in transition.guards])
        return found[1]

    # -- writes ---------------------------------------------------------------------------------
    def on_create(self, uow: UnitOfWork, entity: EntityType, values: Mapping[str, Any]) -> dict[str, Any]:
        """Changes for a record about to be created: pipeline, first stage, time of entry,
        probability.

        A record is created in its pipeline's first stage unless *values* name another one. A
        record created in a later stage *S* must satisfy what entering *S* requires, as if it
        had moved there: the required fields of *S*, and **one** transition into *S* must admit
        it: the actor holds the transition's permission (if it has one) and every guard of the
        transition holds on the new record's values. One is enough, as for a move, where the
        record takes one path; none admitting it (or no transition leading into *S*) refuses the
        create. The first stage needs its required fields only.

        :raises ValidationError: on the stage field, naming the stage and, for each transition
            into it, why it does not admit the record; or on a missing required field.
        """
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
        changes.update(_entry_defaults(stage, {**values, **changes}))
        merged = {**values, **changes}
        self._require_fields(entity, stage, merged, None)
        if stage.name != pipeline.first.name:
            refusal = self.entry_refusal(uow, entity, pipeline, stage, merged)
            if refusal is not None:
                raise ValidationError(
                    {pipeline.field: [f"a new {entity.name} cannot start in stage {stage.name!r}: {refusal}"]},
                    entity=entity.name,
                )
        return changes

    def entry_refusal(self, uow: UnitOfWork, entity: EntityType, pipeline: Pipeline, stage: Stage,
                      values: Mapping[str, Any]) -> str | None:
        """Why a record with *values* may not enter *stage* without moving there (created in
        it, or changing pipeline into it), or ``None`` when one transition into the stage
        admits it (its permission granted to the actor, all its guards holding).

        :returns: ``None``, or the reasons, one per transition into *stage*, and what to do.
        """
        into = self._into.get((pipeline.name, stage.name))
        if into is None or self.pipelines.get(pipeline.name) is not pipeline:
            into = pipeline.transitions_into(stage.name)
            if self.pipelines.get(pipeline.name) is pipeline:
                self._into[(pipeline.name, stage.name)] = into
        if not into:
            return f"no transition leads into it; start in {pipeline.first.name!r} and move the record"
        reasons = []
        lookup: Lookup | None = None
        for transition in into:
            if transition.permission is not None and not uow.can(entity.name, transition.permission):
                reasons.append(f"{transition}: {uow.actor.username} lacks permission {transition.permission!r}")
                continue
            failed = None
            for guard, test in self._compiled_guards(transition):
                if lookup is None:
                    lookup = self.lookup(uow, entity, values)
                if not test(values, lookup, {}):
                    evaluation = guard.evaluate(lookup)
                    if not evaluation.result:
                        failed = f"{transition}: guard {str(guard)!r} failed ({evaluation.describe()})"
                        break
            if failed is None:
                return None
            reasons.append(failed)
        return "no transition into it admits it (" + "; ".join(reasons) + ")"

    def on_update(
        self, uow: UnitOfWork, entity: EntityType, items: Sequence[tuple[Record, Mapping[str, Any]]],
    ) -> list[dict[str, Any] | None]:
        """Check changes of records of *entity* (a single update is a batch of one) and return
        the changes each move implies. Each record is checked in three rounds over the batch
        (transitions, permissions and guards; then the ``crm_before_move`` hooks, once for the
        batch; then the target stages' required fields), so the first record of a round that
        may not move is named, with the same message whatever the batch. The permission of a
        transition is asked once, guards run compiled over the batch and the records they
        refer to are read once. A change of pipeline is checked against the transitions into
        the new stage (:meth:`entry_refusal`).

        :returns: the changes each move implies, in the order of *items* (``None`` for none).
        """
        results: list[dict[str, Any] | None] = [None] * len(items)
        moves: list[tuple[int, Record, Mapping[str, Any], tuple[Pipeline, Stage, Transition]]] = []
        field = self.defaults[entity.name].field  # every pipeline of an entity keeps its stage there
        legal: dict[tuple[Any, Any, Any], tuple[Pipeline, Stage, Transition]] = {}  # moves found allowed
        for index, (record, changes) in enumerate(items):
            values = record.values
            if "pipeline" in changes and changes["pipeline"] != values.get("pipeline"):
                results[index] = self._change_pipeline(uow, entity, record, changes)
                continue
            key = (values.get("pipeline"), values.get(field), changes.get(field))
            found = legal.get(key)
            if found is None:
                pipeline, current, target = self._locate(entity, record, changes)
                if target is None:
                    continue
                found = legal[key] = (pipeline, target, self._transition(entity, record, pipeline, current, target))
            moves.append((index, record, changes, found))
        if not moves:
            return results
        if any(t.permission is not None or t.guards for _, _, t in legal.values()):
            allowed: dict[str, bool] = {}
            lookups: Lookups | None = None
            for number, (_, record, changes, (_, _, transition)) in enumerate(moves):
                permission = transition.permission
                if permission is not None:
                    if permission not in allowed:
                        allowed[permission] = uow.can(entity.name, permission)
                    if not allowed[permission]:
                        self._refuse_permission(uow, entity, record, transition)
                if transition.guards:
                    if lookups is None:
                        lookups = self.lookup_many(uow, entity, [_After(m[1].values, m[2]) for m in moves])
                    self._check_guards(entity, record, transition, record.merged(changes), lookups.of(number))
        uow.crm.hook.crm_before_move(uow=uow, entity=entity.name, moves=[(m[1], m[3][2], _After(m[1].values, m[2])) for m in moves])
        now = _now()
        entered: dict[tuple[int, bool], dict[str, Any]] = {}  # shared by the moves alike
        for index, record, changes, (pipeline, target, _) in moves:
            key2 = (id(target), "probability" in changes)
            extra = entered.get(key2)
            if extra is None:
                extra = entered[key2] = self._entry_changes(entity, pipeline, target, changes, now)
            if target.on_enter:
                extra = {**extra, **_entry_defaults(target, record.merged(changes, extra))}
            if target.required:
                self._require_fields(entity, target, record.merged(changes, extra), record)
            results[index] = extra
        return results

    def _locate(self, entity: EntityType, record: Record, changes: Mapping[str, Any]) -> tuple[Pipeline, Stage, Stage | None]:
        """The record's pipeline, its current stage and the stage it moves to (``None`` when
        it stays; a change of a field locked in the stage is refused then)."""
        values = record.values
        pipeline = self.pipeline_of(entity.name, values)
        current = self.stage_of(pipeline, values.get(pipeline.field) or pipeline.first.name, entity.name)
        target_name = changes.get(pipeline.field, current.name)
        if target_name == current.name:
            locked = [name for name in changes if name in current.locked and name != pipeline.field]
            if locked:
                raise ValidationError(
                    {name: [f"is locked while {entity.name} {record.id} is in stage {current.name!r}"] for name in locked},
                    entity=entity.name,
                )
            return pipeline, current, None
        return pipeline, current, self.stage_of(pipeline, target_name, entity.name)

    def _change_pipeline(self, uow: UnitOfWork, entity: EntityType, record: Record, changes: Mapping[str, Any]) -> dict[str, Any]:
        pipeline = self.pipeline_of(entity.name, record.values)
        new_pipeline = self.pipeline_of(entity.name, changes)
        if pipeline.field not in changes:
            raise TransitionError(
                f"{entity.name} {record.id} changes pipeline to {new_pipeline.name!r}: give its stage too "
                f"({', '.join(new_pipeline.stage_names)})"
            )
        target = self.stage_of(new_pipeline, changes[pipeline.field], entity.name)
        extra = self._entered(entity, new_pipeline, target, record, changes)
        if target.name != new_pipeline.first.name:
            refusal = self.entry_refusal(uow, entity, new_pipeline, target, record.merged(changes, extra))
            if refusal is not None:
                raise TransitionError(
                    f"{entity.name} {record.id} cannot change pipeline to {new_pipeline.name!r} in stage "
                    f"{target.name!r}: {refusal}"
                )
        return extra

    def _entry_changes(self, entity: EntityType, pipeline: Pipeline, target: Stage, changes: Mapping[str, Any],
                       now: dt.datetime) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        entered = f"{pipeline.field}_entered_at"
        if entity.has_field(entered):
            extra[entered] = now
        if entity.has_field("probability") and "probability" not in changes:
            extra["probability"] = target.probability
        return extra

    def _entered(self, entity: EntityType, pipeline: Pipeline, target: Stage, record: Record, changes: Mapping[str, Any]) -> dict[str, Any]:
        extra = self._entry_changes(entity, pipeline, target, changes, _now())
        extra.update(_entry_defaults(target, record.merged(changes, extra)))
        if target.required:
            self._require_fields(entity, target, record.merged(changes, extra), record)
        return extra

    def _refuse_permission(self, uow: UnitOfWork, entity: EntityType, record: Record, transition: Transition) -> None:
        current = record.values.get(self.pipeline_of(entity.name, record.values).field)
        raise TransitionError(
            f"{entity.name} {record.id} cannot move from {current!r} to {transition.target!r}: "
            f"{uow.actor.username} lacks permission {transition.permission!r}"
        )

    def _check_guards(self, entity: EntityType, record: Record, transition: Transition, merged: Mapping[str, Any], lookup: Lookup) -> None:
        for guard, test in self._compiled_guards(transition):
            if test(merged, lookup, {}):
                continue
            evaluation = guard.evaluate(lookup)  # again, for the values it saw
            if not evaluation.result:
                current = record.values.get(self.pipeline_of(entity.name, record.values).field)
                raise TransitionError(
                    f"{entity.name} {record.id} cannot move from {current!r} to {transition.target!r}: "
                    f"guard {str(guard)!r} failed ({evaluation.describe()})"
                )

    @staticmethod
    def _require_fields(entity: EntityType, stage: Stage, values: Mapping[str, Any], record: Record | None) -> None:
        missing = [name for name in stage.required if values.get(name) in (None, "", ())]
        if missing:
            who = f"{entity.name} {record.id}" if record is not None else f"a new {entity.name}"
            raise ValidationError(
                {name: [f"is required to enter stage {stage.name!r} ({who})"] for name in missing}, entity=entity.name
            )

    def lookup(self, uow: UnitOfWork, entity: EntityType, values: Mapping[str, Any]) -> Lookup:
        """A name resolver for conditions: record fields, then ``ref.field`` of referenced
        records (read as the system would: conditions are rules, not the actor's view)."""
        return Lookups(uow, entity, [values]).resolve

    def lookup_many(self, uow: UnitOfWork, entity: EntityType, rows: Sequence[Mapping[str, Any]]) -> Lookups:
        """Name resolvers for the values of many records of *entity* (see :class:`Lookups`)."""
        return Lookups(uow, entity, rows)


class _After(Mapping[str, Any]):
    """A record's values with changes applied, read-only, without copying them."""

    __slots__ = ("_changes", "_values")

    def __init__(self, values: Mapping[str, Any], changes: Mapping[str, Any]) -> None:
        self._values = values
        self._changes = changes

    def __getitem__(self, key: str) -> Any:
        changes = self._changes
        return changes[key] if key in changes else self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        changes = self._changes
        return changes[key] if key in changes else self._values.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._changes or key in self._values

    def __iter__(self) -> Any:
        yield from self._values
        yield from (k for k in self._changes if k not in self._values)

    def __len__(self) -> int:
        return len(self._values) + sum(1 for k in self._changes if k not in self._values)

    def __repr__(self) -> str:
        return f"<values {dict(self)!r}>"


class Lookups:
    """Name resolvers for the conditions of many records at once.

    A plain name is the record's value; ``ref.field`` reads the referenced record, as the system
    would. The records that the rows refer to through one reference field are read together, one
    query per 500 of them, the first time a row needs one, and kept for the other rows (deeper
    paths read their records one at a time). :meth:`resolve` answers for the row at :attr:`at`
    (set it while looping: no resolver is built per row); :meth:`of` gives a row its own.
    """

    def __init__(self, uow: UnitOfWork, entity: EntityType, rows: Sequence[Mapping[str, Any]]) -> None:
        self.uow = uow
        self.entity = entity
        self.rows = rows
        self.at = 0
        self._cache: dict[tuple[str, int], Record | None] = {}
        self._filled: set[str] = set()

    def __repr__(self) -> str:
        return f"<Lookups {self.entity.name} rows={len(self.rows)} read={len(self._cache)}>"

    def resolve(self, path: tuple[str, ...]) -> Any:
        """The value of *path* for the row at :attr:`at`."""
        return self._resolve(self.rows[self.at], path)

    def of(self, index: int) -> Lookup:
        """The resolver of row *index*."""
        row = self.rows[index]
        return lambda path: self._resolve(row, path)

    def _resolve(self, values: Mapping[str, Any], path: tuple[str, ...]) -> Any:
        current = values
        current_entity = self.entity
        registry = self.uow.registry
        last = len(path) - 1
        for index, part in enumerate(path):
            if index == last:
                return current.get(part)
            reference = f"{part}_id" if current_entity.has_field(f"{part}_id") else part
            target_id = current.get(reference)
            if target_id is None:
                return None
            field = current_entity.field(reference)
            assert isinstance(field.type, Reference)
            target = field.type.entity
            key = (target, target_id)
            if key not in self._cache:
                if index == 0 and reference not in self._filled:
                    self._fill(reference, target)
                if key not in self._cache:
                    self._cache[key] = _read(self.uow, target, target_id)
            found = self._cache[key]
            if found is None:
                return None
            current_entity, current = registry.entity(target), found.values
        return None

    def _fill(self, reference: str, target: str) -> None:
        """Read the records of *target* that the rows name in field *reference*."""
        self._filled.add(reference)
        cache = self._cache
        ids = sorted({v for row in self.rows if (v := row.get(reference)) is not None and (target, v) not in cache})
        if not ids:
            return
        uow = self.uow
        etype = uow.registry.entity(target)
        table = uow.registry.table(target)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for row in uow.connection.execute(sa.select(table).where(table.c.id.in_(chunk))).mappings():
                cache[(target, row["id"])] = internal.row_of(uow, etype, row, full=True)
            for record_id in chunk:
                cache.setdefault((target, record_id), None)


def _read(uow: UnitOfWork, entity: str, record_id: int) -> Record | None:
    try:
        return internal.select_one(uow, uow.registry.entity(entity), record_id)
    except NotFoundError:
        return None
