"""Pipelines as data: stages, transitions, guards, required and locked fields.

A pipeline belongs to one entity type and names the field holding the stage (``stage`` for
opportunities, ``status`` for leads). An entity type may have several pipelines ("new
business" and "renewals"); a record carries the name of its pipeline in a ``pipeline`` field.
Pipelines are declared in ``[pipelines.<name>]`` of the settings or by plugins
(``crm_pipelines``), and extended by phase plugins (``crm_extend_pipeline``), which insert
stages, add transitions and guards through a :class:`PipelineBuilder`. The reference,
docs/pipelines.md, shows a pipeline declared in the settings (``crmcore.docgen.PIPELINE_EXAMPLE``).

Without ``transitions``, a record moves to the next or the previous open stage, and from any
open stage to a lost stage; the last open stage leads to the won stages.

A pipeline has at most one transition per (source, target): :meth:`PipelineBuilder.add_transition`
refuses a second one, and :meth:`PipelineBuilder.add_guard` adds guards to the one there is. A
record created directly in a stage other than the first must satisfy what entering that stage
requires (see :meth:`crmcore.workflow.engine.Workflow.on_create`).
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


#: What a stage's ``on_enter`` may set an empty field to: the date or the moment of entry.
ENTRY_VALUES = ("today", "now")


def _entry_pairs(values: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    pairs = tuple(values.items()) if isinstance(values, Mapping) else tuple(tuple(p) for p in values)
    for pair in pairs:
        if len(pair) != 2 or not isinstance(pair[0], str) or pair[1] not in ENTRY_VALUES:
            raise ValueError(f"on_enter maps field names to one of {', '.join(map(repr, ENTRY_VALUES))}, got {pair!r}")
    return pairs  # type: ignore[return-value]


@attrs.frozen
class Stage:
    """One stage of a pipeline.

    :param probability: percent chance to win while here (0..100).
    :param kind: ``open``, ``won`` or ``lost``.
    :param required: fields that must have a value to enter the stage.
    :param locked: fields that cannot change while the record is in the stage.
    :param on_enter: fields set on entering the stage when they are empty: ``{"close_date":
        "today"}`` (``"today"``: the date of entry; ``"now"``: its moment). They are set before
        the required fields are checked.
    """

    name: str
    label: str = ""
    probability: int = 0
    kind: str = attrs.field(default="open", validator=attrs.validators.in_(KINDS))
    required: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    locked: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    on_enter: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_entry_pairs)

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

    def transitions_into(self, target: str) -> list[Transition]:
        """The transitions that lead into stage *target* from another stage (``"*"`` included)."""
        return [t for t in self.transitions if t.target == target and t.source != target]

    def describe(self) -> dict[str, Any]:
        """The pipeline as plain data (for ``crm pipelines show --json`` and the reference):
        stages with probability, kind, required and locked fields; transitions with their guards
        as text and their permission."""
        return {
            "name": self.name,
            "entity": self.entity,
            "label": self.label,
            "field": self.field,
            "default": self.default,
            "origin": self.origin,
            "stages": [
                {"name": s.name, "label": s.label, "probability": s.probability, "kind": s.kind,
                 "required": list(s.required), "locked": list(s.locked), "on_enter": dict(s.on_enter)}
                for s in self.stages
            ],
            "transitions": [
                {"from": t.source, "to": t.target, "guards": [str(g) for g in t.guards], "permission": t.permission}
                for t in self.transitions
            ],
        }

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
    """A pipeline while plugins extend it (``crm_extend_pipeline``); frozen afterwards.

    A phase plugin receives one builder per pipeline (its ``name`` and ``entity`` say which)
    and changes it in place: :meth:`insert_stage`, :meth:`update_stage`,
    :meth:`add_transition`, :meth:`remove_transition`, :meth:`add_guard`. A pipeline holds at
    most one transition per (source, target): adding one that exists raises
    :class:`~crmcore.errors.ConfigError`, so two plugins cannot silently both define a move.
    To tighten a move another plugin (or the core) declared, add guards to it with
    :meth:`add_guard`; to change its permission, remove it and add it again.

    Example::

        @hookimpl
        def crm_extend_pipeline(pipeline, settings):
            if pipeline.name != "sales":
                return
            pipeline.insert_stage(Stage("legal_review", probability=70), after="quotation_sent")
            # the direct move quotation_sent -> final_stage stays, for small deals only
            pipeline.add_transition("quotation_sent", "final_stage", guards=["amount <= 100000"])
            # every deal needs a contact to be won
            pipeline.add_guard("final_stage", "won", "contact_id is not null")

    Errors raised here name the pipeline, the transition or stage and what to do instead;
    :meth:`freeze` checks the whole pipeline again (unknown stages, a stage or a transition
    declared twice).
    """

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
        """A builder holding *pipeline*'s stages and transitions, to change them."""
        return cls(pipeline.name, pipeline.entity, list(pipeline.stages), list(pipeline.transitions),
                   pipeline.field, pipeline.label, pipeline.default, pipeline.origin)

    def _index(self, name: str) -> int:
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        raise ConfigError(f"pipeline {self.name!r} has no stage {name!r}; its stages: {', '.join(s.name for s in self.stages)}")

    def _find(self, source: str, target: str) -> Transition | None:
        for transition in self.transitions:
            if transition.source == source and transition.target == target:
                return transition
        return None

    def insert_stage(self, stage: Stage, *, after: str | None = None, before: str | None = None, rewire: bool = True) -> None:
        """Insert *stage* after (or before) an existing one.

        With *rewire*, moves between the two neighbours now pass through the new stage: the
        direct transition is removed and two are added (neighbour -> new -> neighbour), with
        the backward moves when the pipeline had them, and the new stage may go to the lost
        stages its predecessor may go to.

        :param stage: the new :class:`Stage`.
        :param after: the name of the stage it follows; or
        :param before: the name of the stage it precedes (give exactly one of the two).
        :param rewire: route the moves between the neighbours through the new stage.
        :returns: ``None``.
        :raises ConfigError: without exactly one of *after* and *before*, or naming an unknown
            stage.
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
        """Allow a move from *source* to *target*.

        :param source: a stage name, or ``"*"`` for any stage.
        :param target: a stage name.
        :param guards: conditions (data or text, see ``docs/conditions.md``) that must all hold
            on the record, as it will be after the move, for the move to be allowed.
        :param permission: an action the actor's profiles must grant, such as
            ``"opportunity.close"`` (declared through ``crm_permissions``).
        :returns: ``None``.
        :raises ConfigError: naming an unknown stage, a malformed guard, or a transition from
            *source* to *target* that the pipeline already has (add guards to it with
            :meth:`add_guard`, or :meth:`remove_transition` it first to replace it).

        Example::

            pipeline.add_transition("quotation_sent", "final_stage", guards=["amount <= 100000"])
        """
        for name in (source, target):
            if name != "*":
                self._index(name)
        where = f"pipeline {self.name!r} transition {source} -> {target}"
        existing = self._find(source, target)
        if existing is not None:
            guarded = f" (guards: {', '.join(repr(str(g)) for g in existing.guards)})" if existing.guards else ""
            raise ConfigError(
                f"{where} exists already{guarded}; add guards to it with "
                f"add_guard({source!r}, {target!r}, guard), or remove_transition({source!r}, {target!r}) "
                "first to replace it"
            )
        self.transitions.append(Transition(source, target, tuple(parse(g, where=where) for g in guards), permission))

    def remove_transition(self, source: str, target: str) -> None:
        """Forbid the move from *source* to *target* (exactly these names; ``"*"`` for a
        wildcard transition). Removing a transition the pipeline lacks does nothing.

        :returns: ``None``.
        """
        self.transitions = [t for t in self.transitions if not (t.source == source and t.target == target)]

    def add_guard(self, source: str, target: str, guard: Any) -> None:
        """Add *guard* to the transition from *source* to *target*, after its own guards.

        The way for a plugin to tighten a move that the core or another plugin declared: every
        guard of the transition must hold for the move (and for a record created in *target*
        through it, see ``docs/pipelines.md``).

        :param source: the transition's source as declared: a stage name or ``"*"``.
        :param target: the transition's target stage.
        :param guard: a condition, as data or text (``"contact_id is not null"``).
        :returns: ``None``.
        :raises ConfigError: for a malformed guard, or when the pipeline has no transition
            from *source* to *target* (the message lists the transitions into *target*; a
            move allowed by a ``"*"`` transition is guarded through ``add_guard("*", target, ...)``).

        Example::

            pipeline.add_guard("final_stage", "won", "contact_id is not null")
        """
        where = f"pipeline {self.name!r} transition {source} -> {target}"
        condition = parse(guard, where=where)
        existing = self._find(source, target)
        if existing is None:
            into = [str(t) for t in self.transitions if t.target == target]
            raise ConfigError(
                f"{where}: no such transition to guard; transitions into {target!r}: {', '.join(into) or 'none'}; "
                f"add it with add_transition({source!r}, {target!r}, guards=[...])"
            )
        self.transitions = [
            attrs.evolve(t, guards=(*t.guards, condition)) if t is existing else t for t in self.transitions
        ]

    def update_stage(self, name: str, **changes: Any) -> None:
        """Change a stage's label, probability, kind, required or locked fields.

        :param name: the stage's name.
        :param changes: attributes of :class:`Stage`, such as ``required=("amount",)``.
        :returns: ``None``.
        :raises ConfigError: naming an unknown stage.

        Example::

            pipeline.update_stage("final_stage", required=("amount", "contact_id"))
        """
        index = self._index(name)
        self.stages[index] = attrs.evolve(self.stages[index], **changes)

    def freeze(self) -> Pipeline:
        """The frozen :class:`Pipeline`.

        :raises ConfigError: when a stage is named twice, a transition names an unknown stage,
            or two transitions have the same source and target.
        """
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ConfigError(f"pipeline {self.name!r} names a stage twice: {', '.join(names)}")
        seen: set[tuple[str, str]] = set()
        for transition in self.transitions:
            for name in (transition.source, transition.target):
                if name != "*" and name not in names:
                    raise ConfigError(f"pipeline {self.name!r}: transition {transition} names unknown stage {name!r}; its stages: {', '.join(names)}")
            key = (transition.source, transition.target)
            if key in seen:
                raise ConfigError(
                    f"pipeline {self.name!r} declares transition {transition} twice; declare it once, "
                    "with all its guards"
                )
            seen.add(key)
        return Pipeline(self.name, self.entity, tuple(self.stages), tuple(self.transitions), self.field,
                        self.label, self.default, self.origin)


_PIPELINE_KEYS = {"entity", "label", "field", "stages", "transitions", "default"}
_STAGE_KEYS = {"name", "label", "probability", "kind", "required", "locked", "on_enter"}
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
        on_enter = spec.get("on_enter", {})
        if not isinstance(on_enter, Mapping) or any(v not in ENTRY_VALUES for v in on_enter.values()):
            raise ConfigError(f"{at}.on_enter maps field names to \"today\" or \"now\", such as "
                              f"{{ close_date = \"today\" }}, got {on_enter!r}", key=f"{at}.on_enter")
        stages.append(Stage(spec["name"], spec.get("label", ""), probability, kind, spec.get("required", []),
                            spec.get("locked", []), on_enter))
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
