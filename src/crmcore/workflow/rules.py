"""Rules: ``on`` an event, ``when`` a condition holds, ``then`` actions.

A rule belongs to one entity type. Its event is one of::

    created                       updated
    field_changed:<field>         stage_entered:<stage>        stage_left:<stage>
    days_in_stage:<stage>:<n>     date_reached:<field>[:<offset days>]

its condition is written in the language of :mod:`crmcore.workflow.conditions` (optional: no
condition means always), and its actions are named with their parameters (see
:mod:`crmcore.workflow.actions`). Rules come from ``[[rules]]`` tables of the settings and from
plugins (``crm_rules``)::

    [[rules]]
    name = "big_deal_review"
    entity = "opportunity"
    on = "stage_entered:rfp_received"
    when = "amount > 50000"
    then = [
        { action = "create_activity", kind = "meeting", subject = "Review {name}",
          due_in_days = 2, assign_to = "owner", participants = ["owner_manager"] },
        { action = "schedule_reminder", days_before = 1 },
    ]

A settings table whose name is that of a rule declared by a plugin (or a default rule of the
core) changes only the keys it gives; ``enabled = false`` switches the rule off.

Every rule is checked against the registry when the app starts (:meth:`Rule.check`): an unknown
entity, field, stage, action or parameter stops start-up with a message naming the rule and the
culprit. Event rules run inside the unit of work that caused the event; time-based rules
(``days_in_stage``, ``date_reached``) become jobs when the record enters the stage or the date
is set, and check their condition again when the job runs (:class:`RuleEngine`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from crmcore.errors import ConfigError
from crmcore.fields import Date, DateTime
from crmcore.workflow.conditions import Condition, ConditionError, parse

if TYPE_CHECKING:
    from crmcore.registry import EntityType, Registry
    from crmcore.workflow.actions import Action
    from crmcore.workflow.engine import Workflow

__all__ = [
    "EVENT_KINDS",
    "TIMED_KINDS",
    "ActionCall",
    "Event",
    "Rule",
    "RuleError",
    "parse_event",
    "rules_from_settings",
]

#: Every kind of event a rule may be ``on``.
EVENT_KINDS = ("created", "updated", "field_changed", "stage_entered", "stage_left", "days_in_stage", "date_reached")
#: The kinds that run later, through a job.
TIMED_KINDS = ("days_in_stage", "date_reached")
_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_RULE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


class RuleError(ConfigError):
    """A rule that cannot be parsed or does not fit the registry."""


@attrs.frozen
class Event:
    """What a rule waits for.

    :ivar kind: one of :data:`EVENT_KINDS`.
    :ivar target: the field (``field_changed``, ``date_reached``) or the stage (``stage_*``,
        ``days_in_stage``); ``None`` for ``created`` and ``updated``.
    :ivar days: the days in the stage (``days_in_stage``) or the offset from the date
        (``date_reached``, negative for before it).
    """

    kind: str
    target: str | None = None
    days: int = 0

    @property
    def key(self) -> str:
        """The key rules are found by when something happens (``stage_entered:won``)."""
        return self.kind if self.target is None else f"{self.kind}:{self.target}"

    @property
    def timed(self) -> bool:
        return self.kind in TIMED_KINDS

    def __str__(self) -> str:
        if self.kind == "days_in_stage":
            return f"{self.key}:{self.days}"
        if self.kind == "date_reached" and self.days:
            return f"{self.key}:{self.days}"
        return self.key


def parse_event(text: Any, *, where: str = "event", any_days: bool = False) -> Event:
    """Parse an event such as ``"stage_entered:rfp_received"`` or ``"date_reached:close_date:-7"``.

    :param any_days: accept ``days_in_stage:<stage>`` without the days (simulations: any number).

    :raises RuleError: naming *where* and what is wrong.
    """
    if isinstance(text, Event):
        return text
    if not isinstance(text, str) or not text.strip():
        raise RuleError(f"{where}: expected an event such as 'created' or 'stage_entered:won', got {text!r}")
    kind, *rest = [part.strip() for part in text.strip().split(":")]
    if kind not in EVENT_KINDS:
        raise RuleError(f"{where}: unknown event {kind!r} in {text!r}; events: {', '.join(EVENT_KINDS)}")
    if kind in ("created", "updated"):
        if rest:
            raise RuleError(f"{where}: event {kind!r} takes no argument, got {text!r}")
        return Event(kind)
    if not rest or not _NAME.fullmatch(rest[0]):
        what = "a stage" if "stage" in kind else "a field"
        raise RuleError(f"{where}: event {kind!r} needs {what}, such as '{kind}:{_EXAMPLES[kind]}'; got {text!r}")
    target, extra = rest[0], rest[1:]
    if kind in ("field_changed", "stage_entered", "stage_left"):
        if extra:
            raise RuleError(f"{where}: event {kind!r} takes one argument, got {text!r}")
        return Event(kind, target)
    if kind == "days_in_stage":
        if any_days and not extra:
            return Event(kind, target, 0)
        if len(extra) != 1 or not extra[0].isdigit() or int(extra[0]) < 1:
            raise RuleError(f"{where}: days_in_stage needs a stage and a whole number of days of at least 1, "
                            f"such as 'days_in_stage:qualification:14'; got {text!r}")
        return Event(kind, target, int(extra[0]))
    offset = 0
    if extra:
        if len(extra) != 1 or not re.fullmatch(r"[+-]?\d+", extra[0]):
            raise RuleError(f"{where}: date_reached takes a field and an optional offset in whole days, "
                            f"such as 'date_reached:close_date:-7'; got {text!r}")
        offset = int(extra[0])
    return Event(kind, target, offset)


_EXAMPLES = {
    "field_changed": "amount", "stage_entered": "won", "stage_left": "qualification",
    "days_in_stage": "qualification:14", "date_reached": "close_date",
}


@attrs.frozen
class ActionCall:
    """One action of a rule's ``then`` with its parameters."""

    action: str
    params: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def of(cls, spec: Any, *, where: str) -> ActionCall:
        """An action call from a table such as ``{action = "add_tag", tags = ["big"]}``."""
        if isinstance(spec, ActionCall):
            return spec
        if not isinstance(spec, Mapping) or not isinstance(spec.get("action"), str):
            raise RuleError(f"{where}: an action is a table naming it, such as {{ action = \"add_tag\", tags = [\"vip\"] }}; got {spec!r}")
        return cls(spec["action"], {k: v for k, v in spec.items() if k != "action"})

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.action}({shown})"


def _then(value: Any) -> tuple[ActionCall, ...]:
    if isinstance(value, (ActionCall, Mapping)):
        value = [value]
    return tuple(value)


@attrs.frozen
class Rule:
    """A rule: *on* an event of *entity*, *when* a condition, *then* actions.

    Plugins build them with text or data; they are parsed here (errors name the rule)::

        Rule("big_deal", "opportunity", on="stage_entered:rfp_received", when="amount > 50000",
             then=[{"action": "add_tag", "tags": ["big deal"]}])

    :param when: a condition (text, data or :class:`~crmcore.workflow.conditions.Condition`),
        or ``None`` for always.
    :param then: the actions, as tables with an ``action`` key or :class:`ActionCall`.
    :param enabled: a disabled rule is kept (and checked) but never fires.
    :param origin: who declared it (a plugin's name, or ``"settings"``).
    """

    name: str
    entity: str
    on: Event  # given as text or an Event; parsed in __attrs_post_init__
    when: Condition | None = None
    then: tuple[ActionCall, ...] = attrs.field(default=(), converter=_then)
    description: str = ""
    enabled: bool = True
    origin: str = ""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.name, str) or not _RULE_NAME.fullmatch(self.name):
            raise RuleError(f"rule {self.name!r}: a rule's name is 1 to 100 letters, digits, '_', '.', ':' or '-'")
        where = f"rule {self.name!r}"
        object.__setattr__(self, "on", parse_event(self.on, where=f"{where} on"))
        if self.when is not None and not (isinstance(self.when, str) and not self.when.strip()):
            object.__setattr__(self, "when", parse(self.when, where=f"{where} when"))
        else:
            object.__setattr__(self, "when", None)
        calls = tuple(ActionCall.of(spec, where=f"{where} then[{i}]") for i, spec in enumerate(self.then))
        if not calls:
            raise RuleError(f"{where}: 'then' lists no action; give at least one, such as {{ action = \"notify\", message = \"...\" }}")
        object.__setattr__(self, "then", calls)

    def __repr__(self) -> str:
        return f"<Rule {self.name} {self.entity} on {self.on}>"

    def describe(self) -> str:
        """One line: event, condition and actions."""
        when = f" when {self.when}" if self.when is not None else ""
        return f"{self.entity} on {self.on}{when} then {', '.join(c.action for c in self.then)}"

    # -- start-up checks ------------------------------------------------------------------------
    def check(self, registry: Registry, workflow: Workflow, actions: Mapping[str, Action]) -> None:
        """Check the rule against the registry, the pipelines and the known actions.

        :raises RuleError: naming the rule and the unknown entity, field, stage, action or
            parameter.
        """
        where = f"rule {self.name!r}"
        if self.entity not in registry:
            raise RuleError(f"{where}: unknown entity type {self.entity!r}; known: {', '.join(sorted(registry.entity_names))}")
        entity = registry.entity(self.entity)
        self._check_event(entity, workflow, where)
        if self.when is not None:
            try:
                self.when.check(registry, entity, where=f"{where} when")
            except ConditionError as exc:
                raise RuleError(str(exc)) from None
        from crmcore.workflow.actions import CheckContext

        for index, call in enumerate(self.then):
            action = actions.get(call.action)
            at = f"{where} then[{index}] ({call.action})"
            if action is None:
                raise RuleError(f"{at}: unknown action {call.action!r}; known actions: {', '.join(sorted(actions))}")
            action.check_params(CheckContext(registry, workflow, entity, self, index, at), call.params)

    def _check_event(self, entity: EntityType, workflow: Workflow, where: str) -> None:
        event = self.on
        if event.kind in ("field_changed", "date_reached"):
            assert event.target is not None
            if not entity.has_field(event.target):
                fields = ", ".join(f.name for f in entity.all_fields)
                raise RuleError(f"{where} on {str(event)!r}: unknown field {event.target!r} of {entity.name}; its fields: {fields}")
            if event.kind == "date_reached" and not isinstance(entity.field(event.target).type, (Date, DateTime)):
                raise RuleError(f"{where} on {str(event)!r}: field {event.target!r} of {entity.name} is not a date or a date and time")
        if event.kind in ("stage_entered", "stage_left", "days_in_stage"):
            if not workflow.staged(entity.name):
                raise RuleError(f"{where} on {str(event)!r}: {entity.name} records have no pipeline, so they have no stages")
            stages = list(dict.fromkeys(s for p in workflow.by_entity[entity.name] for s in p.stage_names))
            if event.target not in stages:
                raise RuleError(f"{where} on {str(event)!r}: unknown stage {event.target!r} of {entity.name}; its stages: {', '.join(stages)}")
            if event.kind == "days_in_stage":
                field = f"{workflow.by_entity[entity.name][0].field}_entered_at"
                if not entity.has_field(field):
                    raise RuleError(f"{where} on {str(event)!r}: {entity.name} has no field {field!r} saying when a record entered its stage")


_RULE_KEYS = {"name", "entity", "on", "when", "then", "description", "enabled"}


def rules_from_settings(
    tables: Any, declared: Mapping[str, Rule], *, source: str = "settings"
) -> tuple[list[Rule], dict[str, Rule]]:
    """Read the ``[[rules]]`` tables of the settings.

    A table naming a rule in *declared* changes that rule (only the keys it gives); any other
    table declares a new rule and needs ``entity``, ``on`` and ``then``.

    :returns: the new rules, and the changed declared rules by name.
    :raises RuleError: naming ``rules[<index>]``, the rule and the key at fault.
    """
    if tables is None:
        return [], {}
    if not isinstance(tables, list):
        raise RuleError(f"rules must be a list of tables ([[rules]] in crm.toml), got {tables!r}", key="rules")
    added: list[Rule] = []
    changed: dict[str, Rule] = {}
    seen: set[str] = set()
    for index, table in enumerate(tables):
        at = f"rules[{index}]"
        if not isinstance(table, Mapping):
            raise RuleError(f"{at} must be a table with name, entity, on, when and then; got {table!r}", key=at)
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise RuleError(f"{at}: every rule needs a name, such as name = \"big_deal_review\"", key=f"{at}.name")
        at = f"{at} {name!r}"
        unknown = sorted(set(table) - _RULE_KEYS)
        if unknown:
            raise RuleError(f"{at}: unknown key {unknown[0]!r} = {table[unknown[0]]!r}; known keys: {', '.join(sorted(_RULE_KEYS))}",
                            key=f"rules.{unknown[0]}")
        if name in seen:
            raise RuleError(f"{at}: a rule of that name is already given in [[rules]]; give each rule once", key="rules")
        seen.add(name)
        for key, kind, label in (("enabled", bool, "true or false"), ("description", str, "text"), ("entity", str, "text")):
            if key in table and not isinstance(table[key], kind):
                raise RuleError(f"{at}: {key} must be {label}, got {table[key]!r}", key=f"rules.{key}")
        values = {k: v for k, v in table.items() if k != "name"}
        try:
            if name in declared:
                base = declared[name]
                fields: dict[str, Any] = {
                    "entity": base.entity, "on": base.on, "when": base.when, "then": base.then,
                    "description": base.description, "enabled": base.enabled,
                }
                fields.update(values)
                changed[name] = Rule(name, origin=f"{base.origin}, changed by {source}", **fields)
                continue
            missing = [k for k in ("entity", "on", "then") if k not in table]
            if missing:
                raise RuleError(f"rule {name!r}: missing {', '.join(missing)}; a rule needs entity, on and then "
                                "(and usually when)", key=f"rules.{missing[0]}")
            added.append(Rule(name, origin=source, **values))
        except ConfigError as exc:
            raise RuleError(f"rules[{index}]: {exc}", key=exc.key or f"rules[{index}]") from None
    return added, changed


def schedule_time(event: Event, value: Any, tz: dt.tzinfo) -> dt.datetime | None:
    """When a time-based rule is due: *value* is the time the record entered its stage
    (``days_in_stage``) or the date field's value (``date_reached``; a date means its midnight
    in the deployment's time zone). A time past the end of the calendar (9999-12-31 in UTC) is
    never due (``None``); one before its start is due at once."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        start = value if value.tzinfo is not None else value.replace(tzinfo=tz)
    elif isinstance(value, dt.date):
        start = dt.datetime.combine(value, dt.time(), tzinfo=tz)
    else:
        return None
    try:
        return (start + dt.timedelta(days=event.days)).astimezone(dt.UTC)
    except OverflowError:
        later = event.days > 0 or (event.days == 0 and start.year > 1)
        return None if later else dt.datetime.min.replace(tzinfo=dt.UTC)


def ordered(rules: Iterable[Rule]) -> list[Rule]:
    """Rules without repeats, in their declared order."""
    return list({id(r): r for r in rules}.values())


def index_rules(rules: Sequence[Rule]) -> dict[str, dict[str, list[Rule]]]:
    """``{entity: {event key: [rules]}}`` of the enabled rules, in declared order."""
    index: dict[str, dict[str, list[Rule]]] = {}
    for rule in rules:
        if rule.enabled:
            index.setdefault(rule.entity, {}).setdefault(rule.on.key, []).append(rule)
    return index
