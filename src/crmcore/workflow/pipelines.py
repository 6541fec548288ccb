"""Pipelines as data: stages, transitions, guards, required and locked fields.

A pipeline belongs to one entity type and names the field holding the stage (``stage`` for
opportunities, ``status`` for leads). An entity type may have several pipelines ("new
business" and "renewals"); a record carries the name of its pipeline in a ``pipeline`` field.
Pipelines are declared in ``[pipelines.<name>]`` of the settings or by plugins
(``crm_pipelines``), and extended by phase plugins (``crm_extend_pipeline``), which insert
stages, add transitions and guards through a :class:`PipelineBuilder`::

    [pipelines.renewals]
    entity = "opportunity"
    label = "Renewals"
    stages = [
        { name = "open", probability = 20 },
        { name = "negotiation", probability = 60, required = ["amount"] },
        { name = "won", kind = "won", probability = 100, locked = ["amount", "close_date"] },
        { name = "lost", kind = "lost" },
    ]
    transitions = [
        { from = "open", to = "negotiation" },
        { from = "negotiation", to = "won", guards = ["amount > 0"] },
        { from = "*", to = "lost" },
    ]

Without ``transitions``, a record moves to the next or the previous open stage, and from any
open stage to a lost stage; the last open stage leads to the won stages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from crmcore.errors import ConfigError
from crmcore.workflow.conditions import Condition, parse

__all__ = ["Pipeline", "PipelineBuilder", "Stage", "Transition", "pipeline_from_settings"]

KINDS = ("open", "won", "lost")


def _str_tuple(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(values)


def _condition_tuple(values: Iterable[Condition]) -> tuple[Condition, ...]:
    return tuple(values)


@attrs.frozen
class Stage:
    """One stage of a pipeline.

    :param probability: percent chance to win while here (0..100).
    :param kind: ``open``, ``won`` or ``lost``.
    :param required: fields that must have a value to enter the stage.
    :param locked: fields that cannot change while the record is in the stage.
    """

    name: str
    label: str = ""
    probability: int = 0
    kind: str = attrs.field(default="open", validator=attrs.validators.in_(KINDS))
    required: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    locked: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)

    def __attrs_post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name.replace("_", " ").capitalize())


@attrs.frozen
class Transition:
    """An allowed move from *source* (a stage, or ``"*"`` for any) to *target*.

    :param guards: conditions that must all hold on the record for the move.
    :param permission: an action the actor's profiles must grant (``"opportunity.close"``).
    """

    source: str
    target: str
    guards: tuple[Condition, ...] = attrs.field(default=(), converter=_condition_tuple)
    permission: str | None = None

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"


@attrs.frozen
class Pipeline:
    """A frozen pipeline of one entity type."""

    name: str
    entity: str
    stages: tuple[Stage, ...]
    transitions: tuple[Transition, ...]
    field: str = "stage"
    label: str = ""
    default: bool = False
    origin: str = ""

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    @property
    def first(self) -> Stage:
        return self.stages[0]

    def transitions_from(self, source: str) -> list[Transition]:
        return [t for t in self.transitions if t.source in (source, "*") and t.target != source]

    def targets(self, source: str) -> list[str]:
        return list(dict.fromkeys(t.target for t in self.transitions_from(source)))

    def find(self, source: str, target: str) -> Transition | None:
        exact = [t for t in self.transitions if t.source == source and t.target == target]
        if exact:
            return exact[0]
        wild = [t for t in self.transitions if t.source == "*" and t.target == target and source != target]
        return wild[0] if wild else None

    def __repr__(self) -> str:
        return f"<Pipeline {self.name} {self.entity}: {' > '.join(self.stage_names)}>"


def default_transitions(stages: Sequence[Stage]) -> list[Transition]:
    """Next and previous open stage; any open stage to a lost one; the last open to a won one."""
    opened = [s for s in stages if s.kind == "open"]
    transitions = []
    for index, stage in enumerate(opened):
        if index + 1 < len(opened):
            transitions.append(Transition(stage.name, opened[index + 1].name))
        if index > 0:
            transitions.append(Transition(stage.name, opened[index - 1].name))
        for closed in stages:
            if closed.kind == "lost":
                transitions.append(Transition(stage.name, closed.name))
    if opened:
        for won in (s for s in stages if s.kind == "won"):
            transitions.append(Transition(opened[-1].name, won.name))
    return transitions


@attrs.define
class PipelineBuilder:
    """A pipeline while plugins extend it (``crm_extend_pipeline``); frozen afterwards."""

    name: str
    entity: str
    stages: list[Stage]
    transitions: list[Transition]
    field: str = "stage"
    label: str = ""
    default: bool = False
    origin: str = ""

    @classmethod
    def of(cls, pipeline: Pipeline) -> PipelineBuilder:
        return cls(pipeline.name, pipeline.entity, list(pipeline.stages), list(pipeline.transitions),
                   pipeline.field, pipeline.label, pipeline.default, pipeline.origin)

    def _index(self, name: str) -> int:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        raise ConfigError(f"pipeline {self.name!r} has no stage {name!r}; its stages: {', '.join(s.name for s in self.stages)}")

    def insert_stage(self, stage: Stage, *, after: str | None = None, before: str | None = None, rewire: bool = True) -> None:
        """Insert *stage* after (or before) an existing one.

        With *rewire*, moves between the two neighbours now pass through the new stage: the
        direct transition is removed and two are added (neighbour -> new -> neighbour), with
        the backward moves when the pipeline had them.
        """
        if (after is None) == (before is None):
            raise ConfigError(f"insert_stage({stage.name!r}) needs exactly one of after= or before=")
        index = self._index(after) + 1 if after is not None else self._index(before or "")
        previous = self.stages[index - 1].name if index > 0 else None
        following = self.stages[index].name if index < len(self.stages) else None
        self.stages.insert(index, stage)
        if not rewire or previous is None or following is None:
            return
        forward = [t for t in self.transitions if t.source == previous and t.target == following]
        backward = [t for t in self.transitions if t.source == following and t.target == previous]
        self.transitions = [t for t in self.transitions if t not in forward and t not in backward]
        self.transitions += [Transition(previous, stage.name), Transition(stage.name, following)]
        if backward:
            self.transitions += [Transition(following, stage.name), Transition(stage.name, previous)]
        for closed in self.stages:
            if closed.kind == "lost" and any(t.source == previous and t.target == closed.name for t in self.transitions):
                self.transitions.append(Transition(stage.name, closed.name))

    def add_transition(self, source: str, target: str, *, guards: Iterable[Any] = (), permission: str | None = None) -> None:
        """Allow a move; *guards* are conditions (data or text)."""
        for name in (source, target):
            if name != "*":
                self._index(name)
        where = f"pipeline {self.name!r} transition {source} -> {target}"
        self.transitions.append(Transition(source, target, tuple(parse(g, where=where) for g in guards), permission))

    def remove_transition(self, source: str, target: str) -> None:
        self.transitions = [t for t in self.transitions if not (t.source == source and t.target == target)]

    def add_guard(self, source: str, target: str, guard: Any) -> None:
        """Add a guard to every transition from *source* to *target*."""
        where = f"pipeline {self.name!r} transition {source} -> {target}"
        condition = parse(guard, where=where)
        found = False
        updated = []
        for transition in self.transitions:
            if transition.source == source and transition.target == target:
                transition = attrs.evolve(transition, guards=(*transition.guards, condition))
                found = True
            updated.append(transition)
        if not found:
            raise ConfigError(f"{where}: no such transition to guard")
        self.transitions = updated

    def update_stage(self, name: str, **changes: Any) -> None:
        """Change a stage's label, probability, kind, required or locked fields."""
        index = self._index(name)
        self.stages[index] = attrs.evolve(self.stages[index], **changes)

    def freeze(self) -> Pipeline:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"pipeline {self.name!r} names a stage twice: {', '.join(names)}")
        for transition in self.transitions:
            for name in (transition.source, transition.target):
                if name != "*" and name not in names:
                    raise ConfigError(f"pipeline {self.name!r}: transition {transition} names unknown stage {name!r}; its stages: {', '.join(names)}")
        return Pipeline(self.name, self.entity, tuple(self.stages), tuple(self.transitions), self.field,
                        self.label, self.default, self.origin)


_PIPELINE_KEYS = {"entity", "label", "field", "stages", "transitions", "default"}
_STAGE_KEYS = {"name", "label", "probability", "kind", "required", "locked"}
_TRANSITION_KEYS = {"from", "to", "guards", "permission"}


def pipeline_from_settings(name: str, table: Mapping[str, Any]) -> Pipeline:
    """Build a pipeline from its ``[pipelines.<name>]`` table.

    :raises ConfigError: naming the key and value at fault.
    """
    where = f"pipelines.{name}"

    def keys(spec: Mapping[str, Any], known: set[str], at: str) -> None:
        for key, value in spec.items():
            if key not in known:
                raise ConfigError(f"unknown key {at}.{key} = {value!r}; known keys: {', '.join(sorted(known))}", key=f"{at}.{key}")

    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table, got {table!r}", key=where)
    keys(table, _PIPELINE_KEYS, where)
    entity = table.get("entity")
    if not isinstance(entity, str):
        raise ConfigError(f"{where}.entity: name the entity type, such as entity = \"opportunity\"", key=f"{where}.entity")
    stage_specs = table.get("stages")
    if not isinstance(stage_specs, list) or not stage_specs:
        raise ConfigError(f"{where}.stages: a pipeline needs a list of stages", key=f"{where}.stages")
    stages = []
    for index, spec in enumerate(stage_specs):
        at = f"{where}.stages[{index}]"
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise ConfigError(f"{at}: a stage is a table with a name, got {spec!r}", key=at)
        keys(spec, _STAGE_KEYS, at)
        probability = spec.get("probability", 0)
        if not isinstance(probability, int) or isinstance(probability, bool) or not 0 <= probability <= 100:
            raise ConfigError(f"{at}.probability must be a whole number from 0 to 100, got {probability!r}", key=f"{at}.probability")
        kind = spec.get("kind", "open")
        if kind not in KINDS:
            raise ConfigError(f"{at}.kind must be one of {', '.join(KINDS)}, got {kind!r}", key=f"{at}.kind")
        for key in ("required", "locked"):
            value = spec.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{at}.{key} must be a list of field names, got {value!r}", key=f"{at}.{key}")
        stages.append(Stage(spec["name"], spec.get("label", ""), probability, kind, spec.get("required", []), spec.get("locked", [])))
    transitions = None
    if "transitions" in table:
        transitions = []
        for index, spec in enumerate(table["transitions"]):
            at = f"{where}.transitions[{index}]"
            if not isinstance(spec, Mapping) or "from" not in spec or "to" not in spec:
                raise ConfigError(f"{at}: a transition is a table such as {{ from = \"open\", to = \"won\" }}, got {spec!r}", key=at)
            keys(spec, _TRANSITION_KEYS, at)
            guards = spec.get("guards", [])
            if not isinstance(guards, list):
                raise ConfigError(f"{at}.guards must be a list of conditions, got {guards!r}", key=f"{at}.guards")
            transitions.append(Transition(spec["from"], spec["to"], tuple(parse(g, where=f"{at}.guards[{i}]") for i, g in enumerate(guards)),
                                          spec.get("permission")))
    builder = PipelineBuilder(name, entity, stages, transitions if transitions is not None else default_transitions(stages),
                              table.get("field", "stage"), table.get("label", ""), bool(table.get("default", False)), "settings")
    return builder.freeze()
