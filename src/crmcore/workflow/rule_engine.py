"""The rule engine of one app: which rules an event wakes, running them, simulating them.

:class:`RuleEngine` (``crm.rules``) is built when the app starts from the rules of the settings
and of plugins, checked against the registry. The builtin plugin ``core.rules`` calls it from
the record hooks:

- ``created``, ``updated`` and ``field_changed:<field>`` rules run from ``crm_after_create`` and
  ``crm_after_update``, ``stage_entered`` and ``stage_left`` rules from ``crm_after_move``,
  inside the unit of work that caused the event: their actions commit or roll back with it;
- every event comes as a batch (a single write is a batch of one): each rule's condition is
  evaluated over the batch (:mod:`crmcore.workflow.rule_batch`; the records conditions refer
  to are read once for it), then its actions run for the records it fires for, batched where
  the action can (:attr:`Action.run_many`, such as ``add_tag``), one record at a time
  otherwise. For each record the rules fire in the same order whatever the batch; a batch runs
  one rule over all its records before the next rule;
- time-based rules become jobs (kind ``rules.timed``, one per rule and record, keyed
  ``rule:<rule>:<entity>:<id>``) when the record enters the stage or the date field is set,
  moved when the date changes and cancelled when the record leaves the stage or the date is
  cleared. When the worker runs the job, the rule checks that the record is still in that stage
  since that time (or still has that date) and evaluates its condition again.

Actions run as the system actor within the unit of work. A rule whose actions wake rules that
wake it again stops after :data:`MAX_DEPTH` levels with an error naming the rules.

:meth:`RuleEngine.simulate` evaluates rules against given values and describes what their
actions would do, writing nothing (``crm rules simulate``; usable from pytest).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.errors import CrmError, ValidationError
from crmcore.records import Record
from crmcore.validation import validate
from crmcore.workflow.actions import ActionContext, Assignees, resolve_assignee
from crmcore.workflow.compiled import Compiled, compile_condition
from crmcore.workflow.conditions import (
    Evaluation,
)
from crmcore.workflow.rule_batch import Batch, Filter, batch_filter
from crmcore.workflow.rules import Event, Rule, RuleError, index_rules, parse_event, schedule_time

if TYPE_CHECKING:
    from crmcore.registry import EntityType, Registry
    from crmcore.storage.uow import UnitOfWork
    from crmcore.workflow.actions import Action
    from crmcore.workflow.engine import Workflow

__all__ = ["MAX_DEPTH", "TIMED_JOB", "Firing", "PlannedAction", "RuleEngine"]

log = logging.getLogger(__name__)

#: The job kind of time-based rules.
TIMED_JOB = "rules.timed"
#: How deep rules may wake each other (an action's write waking rules whose actions write...).
MAX_DEPTH = 8


@attrs.frozen
class PlannedAction:
    """What one action of a firing rule does (or would do): its name, parameters and a summary."""

    action: str
    params: Mapping[str, Any]
    summary: str

    def __str__(self) -> str:
        return f"{self.action}: {self.summary}"


@attrs.frozen
class Firing:
    """A rule evaluated for a record.

    :ivar fired: whether its condition held (simulations list the others on request).
    :ivar seen: the values the condition looked at.
    :ivar actions: what its actions would do (empty when it did not fire).
    """

    rule: str
    event: str
    fired: bool
    seen: Mapping[str, Any]
    actions: tuple[PlannedAction, ...] = ()
    condition: str = ""

    def describe(self) -> str:
        """What the condition saw, as text."""
        return Evaluation(self.fired, dict(self.seen)).describe()

    def __str__(self) -> str:
        head = f"rule {self.rule} {'fires' if self.fired else 'does not fire'} on {self.event}"
        if self.condition:
            head += f": {self.condition} ({self.describe()})"
        return "\n".join([head, *(f"  - {a}" for a in self.actions)])


@attrs.define
class _State:
    depth: int = 0
    chain: list[str] = attrs.field(factory=list)


class RuleEngine:
    """The checked rules and actions of one app (``crm.rules``).

    :param registry: the frozen registry the rules are checked against.
    :param workflow: the app's pipelines (rules name their stages; moves fire rules).
    :param rules: the declared rules; *actions*: the rule actions by name.
    :param unit_of_work: opens a unit of work for an actor, an actor's name or ``None`` (the
        system): simulations read through it (``crm.unit_of_work``).
    """

    def __init__(
        self, registry: Registry, workflow: Workflow, rules: Sequence[Rule], actions: Mapping[str, Action], *,
        unit_of_work: Callable[[Actor | str | None], UnitOfWork],
    ) -> None:
        self.registry = registry
        self.workflow = workflow
        self.unit_of_work = unit_of_work
        self.actions = dict(actions)
        self.rules: dict[str, Rule] = {}
        for rule in rules:
            if rule.name in self.rules:
                other = self.rules[rule.name]
                raise RuleError(f"rule {rule.name!r} is declared twice ({other.origin or 'unknown'} and {rule.origin or 'unknown'}); "
                                "rename one, or change the declared rule from [[rules]] by its name")
            self.rules[rule.name] = rule
        self.check()
        enabled = [r for r in self.rules.values() if r.enabled]
        self.index = index_rules([r for r in enabled if not r.on.timed])
        self.timed: dict[str, list[Rule]] = {}
        for rule in enabled:
            if rule.on.timed:
                self.timed.setdefault(rule.entity, []).append(rule)
        self.approval_entities = frozenset(
            r.entity for r in enabled if any(self.actions[c.action].blocks_moves for c in r.then)
        )
        self._states: dict[UnitOfWork, _State] = {}  # units firing rules now (dropped at depth 0)
        self._updated: dict[tuple[str, ...], list[Rule]] = {}  # the rules an update of these fields wakes
        self._texts: dict[str, str] = {}  # conditions as text, for simulations
        self._compiled: dict[str, Compiled] = {r.name: compile_condition(r.when) for r in enabled if r.when is not None}
        self._filters: dict[str, Filter] = {r.name: batch_filter(r.when.root) for r in enabled if r.when is not None}
        self._plans = {r.name: [(self.actions[c.action], self.actions[c.action].with_defaults(c.params)) for c in r.then]
                       for r in enabled}

    def __repr__(self) -> str:
        return f"<RuleEngine rules={len(self.rules)} actions={len(self.actions)}>"

    def check(self) -> None:
        """Check the pipelines and every rule against the registry.

        :raises ConfigError: naming the pipeline or rule and the unknown field, stage, action or
            parameter.
        """
        self.workflow.check(self.registry)
        for rule in self.rules.values():
            rule.check(self.registry, self.workflow, self.actions)

    def check_names(self, uow: UnitOfWork) -> list[str]:
        """The roles, groups and users the rules name that the database lacks (they are data,
        so start-up cannot check them): one line per problem."""
        problems = []
        registry = uow.registry
        for rule in self.rules.values():
            for index, call in enumerate(rule.then):
                specs = []
                for name, value in call.params.items():
                    if name in ("assign_to",):
                        specs.append(value)
                    elif name in ("participants", "to"):
                        specs.extend(value)
                if call.action == "require_approval":
                    specs.append(f"role:{call.params.get('role')}")
                for spec in specs:
                    kind, _, name = str(spec).partition(":")
                    if kind not in ("role", "group", "user") or not name:
                        continue
                    entity, column = (kind, "username") if kind == "user" else (kind, "name")
                    table = registry.table(entity)
                    if uow.connection.execute(sa.select(table.c.id).where(table.c[column] == name)).first() is None:
                        problems.append(f"rule {rule.name!r} then[{index}] ({call.action}): no {kind} named {name!r} in the database")
        return problems

    # -- events ---------------------------------------------------------------------------------
    def watches(self, entity: str) -> bool:
        """Whether any enabled rule is about *entity*."""
        return entity in self.index or entity in self.timed

    def on_created(self, uow: UnitOfWork, entity: str, records: Sequence[Record]) -> None:
        """Run the ``created`` rules of new *records* of *entity* and schedule their
        time-based rules (a single create is a batch of one)."""
        rules = self.index.get(entity, {}).get("created")
        if rules:
            self._fire_many(uow, rules, records, "created")
        for rule in self.timed.get(entity, ()):
            if rule.on.kind == "date_reached":
                self._schedule_many(uow, rule, records)
            else:
                self._schedule_many(uow, rule, [r for r in records if r.get(self._stage_field(r)) == rule.on.target])

    def on_updated(self, uow: UnitOfWork, entity: str, items: Sequence[tuple[Record, Record, Mapping[str, Any]]]) -> None:
        """Run the ``updated`` and ``field_changed`` rules of ``(old, new, changes)`` of
        records of *entity*; move or cancel date-based jobs (a single update is a batch of one)."""
        index = self.index.get(entity)
        if index:
            if len(items) == 1:  # a batch of one: its rules looked up once per set of fields
                _, new, changes = items[0]
                groups = {tuple(changes): [new]}
            else:
                groups = _grouped([tuple(changes) for _, _, changes in items], [new for _, new, _ in items])  # by fields changed
            for names, records in groups.items():
                rules = self._updated.get((entity, *names))
                if rules is None:
                    rules = list(index.get("updated", ()))
                    for name in names:
                        rules.extend(index.get(f"field_changed:{name}", ()))
                    if len(self._updated) >= 1000:  # kept for the usual few sets of fields only
                        self._updated.clear()
                    self._updated[(entity, *names)] = rules
                if rules:
                    self._fire_many(uow, rules, records, "updated")  # one record: _fire
        for rule in self.timed.get(entity, ()):
            if rule.on.kind == "date_reached":
                self._schedule_many(uow, rule, [new for _, new, changes in items if rule.on.target in changes])

    def on_moved(self, uow: UnitOfWork, entity: str, moves: Sequence[tuple[Record, Record, str | None, str | None]]) -> None:
        """Run the ``stage_left`` and ``stage_entered`` rules of ``(old, new, source, target)``
        of records of *entity*; cancel and schedule the ``days_in_stage`` jobs (a single move
        is a batch of one)."""
        if entity in self.approval_entities:
            from crmcore.workflow.approvals import close_decided_many

            close_decided_many(uow, [new for _, new, _, _ in moves])
        index = self.index.get(entity)
        if index:
            if len(moves) == 1:  # a batch of one
                _, new, source, target = moves[0]
                left, entered = {source: [new]}, {target: [new]}
            else:
                news = [new for _, new, _, _ in moves]
                left = _grouped([source for _, _, source, _ in moves], news)
                entered = _grouped([target for _, _, _, target in moves], news)
            for source, records in left.items():
                rules = index.get(f"stage_left:{source}", ())
                if rules:
                    self._fire_many(uow, rules, records, f"stage_left:{source}")
            for target, records in entered.items():
                rules = index.get(f"stage_entered:{target}", ())
                if rules:
                    self._fire_many(uow, rules, records, f"stage_entered:{target}")
        for rule in self.timed.get(entity, ()):
            if rule.on.kind == "days_in_stage":
                self._schedule_many(uow, rule, [new for _, new, source, target in moves if rule.on.target in (source, target)])

    def check_moves(self, uow: UnitOfWork, entity: str, moves: Sequence[tuple[Record, Any, Any]]) -> None:
        """Hold moves of ``(record, transition, values)`` while an approval of the record is
        pending (see :mod:`crmcore.workflow.approvals`; one read of their open approvals)."""
        if entity in self.approval_entities:
            from crmcore.workflow.approvals import check_moves

            check_moves(uow, [(record, transition) for record, transition, _ in moves])

    # -- time-based rules -----------------------------------------------------------------------
    def _stage_field(self, record: Record) -> str:
        return self.workflow.pipeline_of(record.entity, record.values).field

    def _since(self, rule: Rule, record: Record) -> Any:
        """The value a time-based rule counts from for *record*, or ``None`` if it does not apply."""
        if rule.on.kind == "date_reached":
            return record.get(rule.on.target or "")
        field = self._stage_field(record)
        if record.get(field) != rule.on.target:
            return None
        return record.get(f"{field}_entered_at")

    @staticmethod
    def job_key(rule: Rule, record: Record) -> str:
        """The dedupe key of the job of *rule* for *record*."""
        return f"rule:{rule.name}:{record.entity}:{record.id}"

    def _schedule_many(self, uow: UnitOfWork, rule: Rule, records: Sequence[Record]) -> None:
        """Queue the jobs of time-based *rule* for *records* with one statement, and cancel
        with another those of the records the rule no longer applies to."""
        if not records:
            return
        from crmcore.jobs import cancel_many, enqueue_many

        zone = self.registry.timezone or dt.UTC
        jobs: list[tuple[Any, dt.datetime, str]] = []
        gone: list[str] = []
        for record in records:
            since = self._since(rule, record)
            run_at = schedule_time(rule.on, since, zone)
            key = self.job_key(rule, record)
            if run_at is None:
                gone.append(key)
            else:
                jobs.append(({"rule": rule.name, "entity": record.entity, "id": record.id, "since": since.isoformat()}, run_at, key))
        if gone:
            cancel_many(uow, gone)
        if jobs:
            enqueue_many(uow, TIMED_JOB, jobs)

    def run_timed(self, uow: UnitOfWork, payload: Mapping[str, Any]) -> None:
        """The handler of ``rules.timed`` jobs: fire the rule if the record still qualifies."""
        rule = self.rules.get(payload.get("rule", ""))
        if rule is None or not rule.enabled:
            log.info("timed rule job for a rule that is gone or disabled; nothing to do")
            return
        found = uow.get_many(payload["entity"], [payload["id"]])
        if not found:
            return
        record = found[0]
        since = self._since(rule, record)
        if since is None or not _same_time(since, payload.get("since")):
            return
        self._fire(uow, [rule], record, str(rule.on))

    # -- firing ---------------------------------------------------------------------------------
    def _fire(self, uow: UnitOfWork, rules: Sequence[Rule], record: Record, event: str) -> None:
        state = self._states.get(uow)
        if state is not None and state.depth >= MAX_DEPTH:
            self._enter(uow)  # raises, naming the rules
        etype = uow.registry.entity(record.entity)
        workflow = self.workflow
        values = record.values
        lookup = _lazy_lookup(workflow, uow, etype, values)
        compiled = self._compiled
        first = -1  # the first rule that fires; the common case: none, nothing else to do
        seen: dict[str, Any] = {}
        try:
            for position, rule in enumerate(rules):
                test = compiled.get(rule.name)
                if test is None or test(values, lookup, seen):
                    first = position
                    break
        except _EVALUATION_ERRORS as exc:
            raise _unevaluable(rule, record, seen, exc) from exc
        if first < 0:
            return
        state = self._enter(uow)
        try:
            now: dt.datetime | None = None
            for position, rule in enumerate(rules):
                if position < first:
                    continue
                test = compiled.get(rule.name)
                if position > first and test is not None and not _holds(rule, test, record, lookup):
                    continue
                log.debug("rule %s fires on %s for %s %s", rule.name, event, record.entity, record.id)
                if now is None:
                    now = dt.datetime.now(dt.UTC)
                state.chain.append(rule.name)
                ctx = ActionContext(uow, rule, etype, record, lookup, now)
                with uow.acting_as(Actor.system()):
                    for action, params in self._plans[rule.name]:
                        try:
                            action.run(ctx, params)
                        except CrmError as exc:
                            exc.add_note(f"in rule {rule.name!r}, action {action.name}")
                            raise
                state.chain.pop()
                if ctx.record is not record:  # set_field changed it: later rules see the new values
                    record = ctx.record
                    values = record.values
                    lookup = _lazy_lookup(workflow, uow, etype, values)
        finally:
            self._leave(uow, state)

    def _enter(self, uow: UnitOfWork) -> _State:
        """One level deeper in the rules firing in *uow* (refused past :data:`MAX_DEPTH`)."""
        state = self._states.get(uow)
        if state is None:
            state = self._states[uow] = _State()
        if state.depth >= MAX_DEPTH:
            raise CrmError(
                f"rules woke each other more than {MAX_DEPTH} levels deep ({' -> '.join(state.chain)}); "
                "change a rule so that its actions do not wake it again"
            )
        state.depth += 1
        return state

    def _leave(self, uow: UnitOfWork, state: _State) -> None:
        state.depth -= 1
        if state.depth == 0:
            state.chain.clear()
            del self._states[uow]

    def _fire_many(self, uow: UnitOfWork, rules: Sequence[Rule], records: Sequence[Record], event: str) -> None:
        """:meth:`_fire` for many records of one entity type: per rule, its compiled condition
        over the records, then its actions for those it fires for (batched when the action has
        :attr:`~crmcore.workflow.actions.Action.run_many`)."""
        if len(records) == 1:
            self._fire(uow, rules, records[0], event)
            return
        etype = uow.registry.entity(records[0].entity)
        workflow = self.workflow
        current = list(records)
        now = dt.datetime.now(dt.UTC)
        debug = log.isEnabledFor(logging.DEBUG)
        batch: Batch | None = None
        state = self._enter(uow)
        try:
            for rule in rules:
                if batch is None:  # again after actions ran: they may have changed what conditions read
                    rows = [r.values for r in current]
                    batch = Batch(rows, workflow.lookup_many(uow, etype, rows))
                lookups = batch.lookups
                test = self._filters.get(rule.name)
                try:
                    firing = batch.everyone if test is None else test(batch, batch.everyone)
                except _EVALUATION_ERRORS as exc:
                    raise _unevaluable(rule, None, {}, exc) from exc
                if not firing:
                    continue
                if debug:
                    for index in firing:
                        log.debug("rule %s fires on %s for %s %s", rule.name, event, etype.name, current[index].id)
                state.chain.append(rule.name)
                contexts = [ActionContext(uow, rule, etype, current[index], lookups.of(index), now) for index in firing]
                with uow.acting_as(Actor.system()):
                    for action, params in self._plans[rule.name]:
                        try:
                            if action.run_many is not None:
                                action.run_many(contexts, params)
                            else:
                                for ctx in contexts:
                                    action.run(ctx, params)
                        except CrmError as exc:
                            exc.add_note(f"in rule {rule.name!r}, action {action.name}")
                            raise
                state.chain.pop()
                for index, ctx in zip(firing, contexts, strict=True):
                    current[index] = ctx.record  # set_field changed it: later rules see the new values
                batch = None
        finally:
            self._leave(uow, state)

    # -- simulation -----------------------------------------------------------------------------
    def simulate(
        self,
        entity: str,
        values: Mapping[str, Any] | None = None,
        *,
        event: str | None = None,
        stage: str | None = None,
        actor: Actor | str | None = None,
        include_skipped: bool = False,
    ) -> list[Firing]:
        """Which rules fire for a record with *values* on *event*, and what they would do.

        Nothing is written: the values are parsed like any input, names (``owner.x``,
        ``account.x``, assignees) are read in a unit of work that is rolled back.

        :param values: field values, as text or Python values (``{"amount": "60000"}``).
        :param event: the event (default: ``stage_entered:<stage>`` with *stage*, else
            ``created``).
        :param stage: the record's stage.
        :param actor: who acts (a new record's owner by default).
        :param include_skipped: also list the rules of the event whose condition does not hold.
        :returns: one :class:`Firing` per rule, in declared order.
        :raises ValidationError: for a value that does not fit its field or an unknown stage.
        """
        return self.simulate_many(entity, [values or {}], event=event, stage=stage, actor=actor,
                                  include_skipped=include_skipped)[0]

    def simulate_many(
        self,
        entity: str,
        rows: Iterable[Mapping[str, Any]],
        *,
        event: str | None = None,
        stage: str | None = None,
        actor: Actor | str | None = None,
        include_skipped: bool = False,
    ) -> list[list[Firing]]:
        """:meth:`simulate` for many records at once (one unit of work): a list per record."""
        etype = self.registry.entity(entity)
        parsed_event = parse_event(event or (f"stage_entered:{stage}" if stage else "created"), where="simulate --event", any_days=True)
        rules = self.matching(entity, parsed_event)
        results: list[list[Firing]] = []
        with self.unit_of_work(actor) as uow:  # read only; left without commit: rolled back
            names: dict[int, str] = {}
            assignees: dict[tuple[str, Any, Any], Assignees] = {}
            for values in rows:
                record = self._hypothetical(uow, etype, values, stage)
                results.append(self._simulate_one(uow, etype, record, rules, str(parsed_event), include_skipped, names, assignees))
        return results

    def matching(self, entity: str, event: Event) -> list[Rule]:
        """The enabled rules of *entity* waiting for *event* (a ``days_in_stage`` event without
        days matches every number of days)."""
        return [
            r for r in self.rules.values()
            if r.enabled and r.entity == entity and r.on.kind == event.kind and r.on.target == event.target
            and (not event.days or r.on.days == event.days)
        ]

    def _hypothetical(self, uow: UnitOfWork, etype: EntityType, values: Mapping[str, Any], stage: str | None) -> Record:
        given = dict(values)
        record_id = given.pop("id", None)
        parsed = validate(etype, given, partial=True)
        if etype.ownable and parsed.get("owner_id") is None and parsed.get("owner_group_id") is None:
            parsed["owner_id"] = uow.actor.user_id
        workflow = self.workflow
        if workflow.staged(etype.name):
            pipeline = workflow.pipeline_of(etype.name, parsed)
            name = stage or parsed.get(pipeline.field) or pipeline.first.name
            if name not in pipeline.stage_names:
                raise ValidationError({pipeline.field: [f"unknown stage {name!r} of pipeline {pipeline.name!r}; its stages: "
                                                        f"{', '.join(pipeline.stage_names)}"]}, entity=etype.name)
            parsed[pipeline.field] = name
        full = {"id": record_id, **{f.name: None for f in etype.fields}, **parsed}
        return Record(etype.name, full)

    def _simulate_one(
        self, uow: UnitOfWork, etype: EntityType, record: Record, rules: Sequence[Rule], event: str, include_skipped: bool,
        names: dict[int, str], assignees: dict[tuple[str, Any, Any], Assignees],
    ) -> list[Firing]:
        lookup = self.workflow.lookup(uow, etype, record.values)
        now = dt.datetime.now(dt.UTC)
        firings = []
        values = record.values
        for rule in rules:
            seen: dict[str, Any] = {}
            test = self._compiled.get(rule.name)
            fired = test(values, lookup, seen) if test is not None else True
            condition = self._texts.get(rule.name)
            if condition is None:
                condition = self._texts[rule.name] = str(rule.when) if rule.when is not None else ""
            if not fired:
                if include_skipped:
                    firings.append(Firing(rule.name, event, False, seen, (), condition))
                continue
            ctx = _SimulationContext(uow, rule, etype, record, lookup, now, True, {}, names, assignees)
            planned = tuple(PlannedAction(action.name, params, action.explain(ctx, params)) for action, params in self._plans[rule.name])
            firings.append(Firing(rule.name, event, True, seen, planned, condition))
        return firings


#: What evaluating a condition on unforeseen values may raise (reported naming the rule).
_EVALUATION_ERRORS = (ArithmeticError, TypeError, ValueError, RecursionError)


def _holds(rule: Rule, test: Compiled, record: Record, lookup: Callable[[tuple[str, ...]], Any]) -> bool:
    seen: dict[str, Any] = {}
    try:
        return test(record.values, lookup, seen)
    except _EVALUATION_ERRORS as exc:
        raise _unevaluable(rule, record, seen, exc) from exc


def _unevaluable(rule: Rule, record: Record | None, seen: Mapping[str, Any], exc: BaseException) -> CrmError:
    """The error of a rule whose condition failed on the values of a record."""
    which = f" for {record.entity} {record.id}" if record is not None else f" for a batch of {rule.entity} records"
    fields = ", ".join(repr(name) for name in rule.when.names) if rule.when is not None else "none"
    looked = f"; it saw {Evaluation(False, dict(seen)).describe()}" if seen else ""
    return CrmError(
        f"rule {rule.name!r} cannot be evaluated{which}: {type(exc).__name__}: {str(exc)[:200]} "
        f"(its condition {str(rule.when)!r} reads the fields {fields}{looked}); "
        "correct the value of the field, or change or disable the rule"
    )


def _grouped(keys: list[Any], records: list[Record]) -> dict[Any, list[Record]]:
    """*records* by their *keys* (in order), all in one group when the keys are alike."""
    if keys and keys.count(keys[0]) == len(keys):
        return {keys[0]: records}
    groups: dict[Any, list[Record]] = {}
    for key, record in zip(keys, records, strict=True):
        groups.setdefault(key, []).append(record)
    return groups


def _lazy_lookup(workflow: Any, uow: UnitOfWork, etype: EntityType, values: Mapping[str, Any]) -> Callable[[tuple[str, ...]], Any]:
    """The lookup of *values*, made when a condition or action first names a reference."""
    made: list[Callable[[tuple[str, ...]], Any]] = []

    def lookup(path: tuple[str, ...]) -> Any:
        if not made:
            made.append(workflow.lookup(uow, etype, values))
        return made[0](path)

    return lookup


@attrs.define(eq=False)
class _SimulationContext(ActionContext):
    """An action context that never writes and remembers resolved assignees across records."""

    cache: dict[tuple[str, Any, Any], Assignees] = attrs.field(factory=dict)

    def resolve(self, spec: str) -> Assignees:
        key = (spec, self.record.get("owner_id"), self.record.get("owner_group_id"))
        if key not in self.cache:
            self.cache[key] = resolve_assignee(self.uow, spec, self.record, rule=self.rule.name)
        return self.cache[key]


def _same_time(value: Any, text: Any) -> bool:
    """Is *value* (a date or a time) the one a job was scheduled for (*text*, ISO)?"""
    if not isinstance(text, str):
        return False
    if isinstance(value, dt.datetime):
        try:
            other = dt.datetime.fromisoformat(text)
        except ValueError:
            return False
        if other.tzinfo is None or value.tzinfo is None:
            return abs(value.replace(tzinfo=None) - other.replace(tzinfo=None)) < dt.timedelta(seconds=1)
        return abs(value - other) < dt.timedelta(seconds=1)
    if isinstance(value, dt.date):
        return value.isoformat() == text
    return False
