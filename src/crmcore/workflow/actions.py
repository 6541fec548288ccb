"""Actions: what a rule does once it fires, by name, with typed parameters.

An :class:`Action` declares its parameters (:class:`Param`), so a rule's ``then`` is checked
when the app starts: an unknown action or parameter, a missing required one, a value of the
wrong type or an unknown field stops start-up naming the rule. It runs with an
:class:`ActionContext` (the unit of work, the rule, the record) and describes what it would do
without doing it, for ``crm rules simulate``. An action that can do its work for many records
at once (a rule firing for a batch of moves) also offers ``run_many``.

The builtin actions (:data:`BUILTIN_ACTIONS`):

``create_activity``
    ``kind``, ``subject``, ``description``, ``due_in_days`` (or ``due_in_hours``),
    ``assign_to`` and ``participants``; the activity is linked to the record (and its account).
``set_field``
    ``field`` and ``value`` (parsed like any input of the field).
``add_tag``
    ``tags`` (a list) or ``tag``.
``notify``
    ``message`` for the users ``to`` (a ``notification`` record each).
``require_approval``
    ``role`` (and ``message``): the record's next move waits for a user with that role
    (:mod:`crmcore.workflow.approvals`).
``schedule_reminder``
    reminds ``to`` of the activity the rule created (or of the activity the rule is about)
    ``days_before`` it is due, or ``in_days`` / ``in_hours`` from now, with a ``message``.

Whom an action addresses is an *assignee*: ``owner`` (the record's owner), ``owner_manager``
(the first user found going up the owner's role tree: the next role up that has a user),
``role:NAME`` (the users holding the role), ``group:NAME`` (the group: it owns an activity; its
members take part or are notified) or ``user:USERNAME``. Texts (``subject``, ``message``...)
may name values of the record in braces: ``"Review {name} ({amount})"``, ``{account.name}``.
Plugins add actions through the ``crm_rule_actions`` hook.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.errors import ConfigError, CrmError
from crmcore.fields import Choice
from crmcore.money import Money
from crmcore.records import Record
from crmcore.workflow.assignees import Assignees, manager_of, resolve_assignee
from crmcore.workflow.conditions import ConditionError, parse

if TYPE_CHECKING:
    from crmcore.registry import EntityType, Registry
    from crmcore.storage.uow import UnitOfWork
    from crmcore.workflow.engine import Workflow
    from crmcore.workflow.rules import Rule

__all__ = [
    "BUILTIN_ACTIONS",
    "Action",
    "ActionContext",
    "Assignees",
    "CheckContext",
    "Param",
    "manager_of",
    "render",
    "resolve_assignee",
]

PARAM_KINDS = ("text", "integer", "number", "boolean", "texts", "assignee", "assignees", "field", "any")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*)\}")
_ASSIGNEE = re.compile(r"owner|owner_manager|(role|group|user):[A-Za-z0-9_.@-]+")
_LINKABLE = ("account", "contact", "lead", "opportunity")


@attrs.frozen
class Param:
    """One parameter of an action.

    :param kind: ``text``, ``integer``, ``number``, ``boolean``, ``texts`` (a list of texts),
        ``assignee``, ``assignees`` (a list), ``field`` (a field of the rule's entity) or ``any``.
    :param template: a text that may name record values in braces (checked at start-up).
    """

    kind: str = attrs.field(validator=attrs.validators.in_(PARAM_KINDS))
    required: bool = False
    default: Any = None
    help: str = ""
    template: bool = False


@attrs.frozen
class CheckContext:
    """What an action's start-up check knows: the registry, the pipelines, the rule."""

    registry: Registry
    workflow: Workflow
    entity: EntityType
    rule: Rule
    index: int
    where: str

    def fail(self, message: str, key: str | None = None) -> ConfigError:
        """The error to raise, naming the rule, the action and *message*."""
        from crmcore.workflow.rules import RuleError

        return RuleError(f"{self.where}: {message}", key=key)


@attrs.frozen
class Action:
    """A named action rules can use.

    :param run: ``run(ctx, params)`` does the work in ``ctx.uow``.
    :param params: ``{name: Param}``; any other parameter is refused at start-up.
    :param describe: ``describe(ctx, params) -> str`` says what *run* would do, without writing
        (``crm rules simulate``); by default the action's name and parameters.
    :param check: ``check(ctx, params)`` for checks beyond the parameter types; raise
        ``ctx.fail(message)``.
    :param blocks_moves: the action makes records wait for approvals (the approval check of
        moves is on for the entity types of rules using it).
    :param run_many: ``run_many(contexts, params)`` does what *run* does for each context (one
        per record the rule fired for, in order) set-based; without it, *run* is called once
        per context.
    """

    name: str
    run: Callable[[ActionContext, Mapping[str, Any]], Any]
    params: Mapping[str, Param] = attrs.field(factory=dict)
    describe: Callable[[ActionContext, Mapping[str, Any]], str] | None = None
    check: Callable[[CheckContext, Mapping[str, Any]], None] | None = None
    help: str = ""
    blocks_moves: bool = False
    run_many: Callable[[Sequence[ActionContext], Mapping[str, Any]], Any] | None = None

    def check_params(self, ctx: CheckContext, given: Mapping[str, Any]) -> None:
        """Check *given* against the declared parameters, then the action's own check."""
        for name, value in given.items():
            param = self.params.get(name)
            if param is None:
                known = ", ".join(sorted(self.params)) or "none"
                raise ctx.fail(f"unknown parameter {name!r} = {value!r}; parameters of {self.name}: {known}")
            _check_value(ctx, name, param, value)
        for name, param in self.params.items():
            if param.required and name not in given:
                raise ctx.fail(f"missing parameter {name!r} ({param.help or param.kind})")
        if self.check is not None:
            self.check(ctx, given)

    def with_defaults(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """*given* with the defaults of the parameters it leaves out."""
        return {**{n: p.default for n, p in self.params.items() if p.default is not None}, **given}

    def explain(self, ctx: ActionContext, params: Mapping[str, Any]) -> str:
        """What the action would do with *params* (no write)."""
        if self.describe is not None:
            return self.describe(ctx, params)
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in params.items())})"


def _check_value(ctx: CheckContext, name: str, param: Param, value: Any) -> None:
    kind = param.kind
    bad = False
    if kind == "text":
        bad = not isinstance(value, str)
    elif kind == "integer":
        bad = isinstance(value, bool) or not isinstance(value, int)
    elif kind == "number":
        bad = isinstance(value, bool) or not isinstance(value, (int, float))
    elif kind == "boolean":
        bad = not isinstance(value, bool)
    elif kind in ("texts", "assignees"):
        bad = not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value)
    elif kind in ("assignee", "field"):
        bad = not isinstance(value, str)
    if bad:
        expected = {
            "text": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
            "texts": "a list of texts", "assignees": "a list of assignees such as [\"owner_manager\"]",
            "assignee": "an assignee such as \"owner\"", "field": "a field name",
        }[kind]
        raise ctx.fail(f"parameter {name!r} must be {expected}, got {value!r}")
    if kind in ("assignee", "assignees"):
        for item in [value] if kind == "assignee" else value:
            check_assignee(ctx, name, item)
    if kind == "field" and not ctx.entity.has_field(value):
        fields = ", ".join(f.name for f in ctx.entity.fields)
        raise ctx.fail(f"unknown field {value!r} of {ctx.entity.name} in parameter {name!r}; its fields: {fields}")
    if param.template:
        texts = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else []
        for text in texts:
            for placeholder in _PLACEHOLDER.findall(text):
                try:
                    parse(f"{placeholder} is not null", where=f"{ctx.where} parameter {name!r}").check(
                        ctx.registry, ctx.entity, where=f"{ctx.where} parameter {name!r}")
                except ConditionError as exc:
                    raise ctx.fail(f"placeholder {{{placeholder}}} in {name!r}: {str(exc).split(': ', 1)[-1]}") from None


def check_assignee(ctx: CheckContext, name: str, value: str) -> None:
    """An assignee is ``owner``, ``owner_manager``, ``role:NAME``, ``group:NAME`` or
    ``user:USERNAME``; the first two need an ownable entity type."""
    if not _ASSIGNEE.fullmatch(value):
        raise ctx.fail(f"parameter {name!r}: unknown assignee {value!r}; use owner, owner_manager, role:NAME, group:NAME "
                       "or user:USERNAME")
    if value in ("owner", "owner_manager") and not ctx.entity.ownable:
        raise ctx.fail(f"parameter {name!r}: {ctx.entity.name} records have no owner, so {value!r} names nobody; "
                       "use role:NAME, group:NAME or user:USERNAME")


# -- running ------------------------------------------------------------------------------------


@attrs.define(eq=False)
class ActionContext:
    """What an action sees when it runs (or is simulated).

    :ivar uow: the unit of work (in a simulation, one that is rolled back and never written to).
    :ivar record: the record the rule fired for (in a simulation, the given values; ``id`` may
        be ``None``).
    :ivar lookup: resolves names of conditions and placeholders (``owner.username``).
    :ivar simulate: ``True`` when nothing may be written: only :meth:`Action.explain` is called.
    :ivar planned: what earlier actions of the same firing made (``"activity"``: the activity
        created; in a simulation ``"activity_due"``, the time it would be due).
    """

    uow: UnitOfWork
    rule: Rule
    entity: EntityType
    record: Record
    lookup: Callable[[tuple[str, ...]], Any]
    now: dt.datetime
    simulate: bool = False
    planned: dict[str, Any] = attrs.field(factory=dict)
    _names: dict[int, str] = attrs.field(factory=dict)

    def render(self, text: str | None) -> str | None:
        """*text* with its ``{placeholders}`` replaced by the record's values."""
        return render(text, self.lookup)

    def resolve(self, spec: str) -> Assignees:
        """The users (and group) an assignee names for this record."""
        return resolve_assignee(self.uow, spec, self.record, rule=self.rule.name)

    def username(self, user_id: int) -> str:
        """A user's name for messages (read once per firing)."""
        if user_id not in self._names:
            table = self.uow.registry.table("user")
            row = self.uow.connection.execute(sa.select(table.c.username).where(table.c.id == user_id)).first()
            self._names[user_id] = row[0] if row else f"user {user_id}"
        return self._names[user_id]

    def who(self, spec: str) -> str:
        """Whom an assignee names, for descriptions: ``boss (owner_manager)``."""
        found = self.resolve(spec)
        names = [self.username(u) for u in found.user_ids]
        if found.group is not None and not names:
            names = [f"group {found.group[1]}"]
        return f"{', '.join(names) or 'nobody'} ({spec})"


def render(text: str | None, lookup: Callable[[tuple[str, ...]], Any]) -> str | None:
    """Replace ``{name}`` and ``{ref.name}`` in *text* with values; nothing else is evaluated."""
    if text is None:
        return None

    def value(match: re.Match[str]) -> str:
        found = lookup(tuple(match.group(1).split(".")))
        if found is None:
            return ""
        if isinstance(found, Money):
            return f"{found.amount:,} {found.currency}"
        if isinstance(found, (dt.date, dt.datetime)):
            return found.isoformat()
        return str(found)

    return _PLACEHOLDER.sub(value, text)


# -- the builtin actions ------------------------------------------------------------------------


def _days(params: Mapping[str, Any]) -> dt.timedelta | None:
    if params.get("due_in_days") is not None:
        return dt.timedelta(days=params["due_in_days"])
    if params.get("due_in_hours") is not None:
        return dt.timedelta(hours=params["due_in_hours"])
    return None


def _links(ctx: ActionContext) -> dict[str, Any]:
    links: dict[str, Any] = {}
    name = ctx.entity.name
    if name in _LINKABLE and ctx.record.get("id") is not None:
        links[f"{name}_id"] = ctx.record.id
    if name != "account" and ctx.record.get("account_id") is not None:
        links["account_id"] = ctx.record.get("account_id")
    return links


def _activity_people(ctx: ActionContext, params: Mapping[str, Any]) -> tuple[dict[str, Any], list[int]]:
    """Who owns the activity (the assignee; the record's owner when it names nobody) and who
    takes part (everyone the participants name, the owner excepted)."""
    spec = params.get("assign_to", "owner")
    owner = ctx.resolve(spec)
    if not owner.user_ids and owner.group is None and spec != "owner":
        owner = ctx.resolve("owner")
    ownership: dict[str, Any] = {}
    if owner.group is not None and (spec.startswith("group:") or owner.first is None):
        ownership["owner_group_id"] = owner.group[0]
    elif owner.first is not None:
        ownership["owner_id"] = owner.first
    participants: list[int] = []
    for item in params.get("participants", ()):
        for user_id in ctx.resolve(item).user_ids:
            if user_id != ownership.get("owner_id") and user_id not in participants:
                participants.append(user_id)
    return ownership, participants


def _create_activity(ctx: ActionContext, params: Mapping[str, Any]) -> Record:
    ownership, participants = _activity_people(ctx, params)
    delay = _days(params)
    values: dict[str, Any] = {
        "kind": params["kind"], "subject": ctx.render(params["subject"]), "description": ctx.render(params.get("description")),
        "status": "planned", **_links(ctx), **ownership,
    }
    if delay is not None:
        values["due_at"] = ctx.now + delay
    if participants:
        values["participants"] = [{"user_id": u} for u in participants]
    activity = ctx.uow.create("activity", values)
    ctx.planned["activity"] = activity
    return activity


def _describe_activity(ctx: ActionContext, params: Mapping[str, Any]) -> str:
    delay = _days(params)
    due = ""
    if delay is not None:
        ctx.planned["activity_due"] = ctx.now + delay
        amount = f"{params['due_in_days']} day(s)" if params.get("due_in_days") is not None else f"{params['due_in_hours']} hour(s)"
        due = f", due in {amount} ({(ctx.now + delay).isoformat(timespec='minutes')})"
    else:
        ctx.planned["activity_due"] = None
    ctx.planned["activity_owner"] = params.get("assign_to", "owner")
    text = f"create {params['kind']} {ctx.render(params['subject'])!r}{due}, assigned to {ctx.who(params.get('assign_to', 'owner'))}"
    participants = params.get("participants", ())
    if participants:
        text += ", participants: " + "; ".join(ctx.who(p) for p in participants)
    return text


def _check_activity(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    kind_field = ctx.registry.entity("activity").field("kind")
    if isinstance(kind_field.type, Choice) and params.get("kind") not in kind_field.type.choices:
        raise ctx.fail(f"unknown activity kind {params.get('kind')!r}; kinds: {', '.join(kind_field.type.choices)}")
    if params.get("due_in_days") is not None and params.get("due_in_hours") is not None:
        raise ctx.fail("give due_in_days or due_in_hours, not both")
    if "assign_to" not in params and not ctx.entity.ownable:
        raise ctx.fail(f"{ctx.entity.name} records have no owner; name whom to assign the activity to with assign_to")


def _set_field(ctx: ActionContext, params: Mapping[str, Any]) -> Record:
    updated = ctx.uow.update(ctx.record.entity, ctx.record.id, {params["field"]: params.get("value")})
    ctx.record = updated
    return updated


def _describe_set_field(ctx: ActionContext, params: Mapping[str, Any]) -> str:
    return f"set {params['field']} to {params.get('value')!r} (now {ctx.record.get(params['field'])!r})"


def _check_set_field(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    field = ctx.entity.field(params["field"])
    if field.read_only or field.name in ("id", "version"):
        raise ctx.fail(f"field {field.name!r} of {ctx.entity.name} is read-only; rules cannot set it")
    try:
        field.parse(params.get("value"))
    except ValueError as exc:
        raise ctx.fail(f"value {params.get('value')!r} does not fit field {field.name!r}: {exc}") from None


def _tags(params: Mapping[str, Any]) -> list[str]:
    return [*params.get("tags", ()), *([params["tag"]] if params.get("tag") else [])]


def _add_tag(ctx: ActionContext, params: Mapping[str, Any]) -> None:
    ctx.uow.tag(ctx.record, *(ctx.render(t) or "" for t in _tags(params)))


def _add_tag_many(contexts: Sequence[ActionContext], params: Mapping[str, Any]) -> None:
    """Tag the records of *contexts* with one :meth:`~crmcore.storage.uow.UnitOfWork.tag_many`
    per set of rendered names (one for them all when the names have no placeholders)."""
    texts = _tags(params)
    fixed = not any("{" in t for t in texts)
    groups: dict[tuple[str, ...], list[Record]] = {}
    for ctx in contexts:
        names = tuple(texts) if fixed else tuple(ctx.render(t) or "" for t in texts)
        groups.setdefault(names, []).append(ctx.record)
    for names, records in groups.items():
        contexts[0].uow.tag_many(records, *names)


def _check_tag(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    if not ctx.entity.ownable:
        raise ctx.fail(f"{ctx.entity.name} records cannot be tagged; only ownable entity types can")
    if not _tags(params):
        raise ctx.fail("name the tags to add: tags = [\"...\"] or tag = \"...\"")


def _notify(ctx: ActionContext, params: Mapping[str, Any]) -> list[Record]:
    message = ctx.render(params["message"])
    users: list[int] = []
    for spec in params.get("to", ("owner",)):
        users.extend(u for u in ctx.resolve(spec).user_ids if u not in users)
    return [
        ctx.uow.create("notification", user_id=user, message=message, record_entity=ctx.entity.name,
                       record_id=ctx.record.get("id"), rule=ctx.rule.name)
        for user in users
    ]


def _describe_notify(ctx: ActionContext, params: Mapping[str, Any]) -> str:
    people = "; ".join(ctx.who(s) for s in params.get("to", ("owner",)))
    return f"notify {people}: {ctx.render(params['message'])!r}"


def _require_approval(ctx: ActionContext, params: Mapping[str, Any]) -> Record | None:
    from crmcore.workflow.approvals import request_approval

    return request_approval(ctx.uow, ctx.record, params["role"], rule=ctx.rule.name, message=ctx.render(params.get("message")))


def _describe_approval(ctx: ActionContext, params: Mapping[str, Any]) -> str:
    return f"require the approval of role {params['role']!r} before the next move"


def _check_approval(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    if not ctx.workflow.staged(ctx.entity.name):
        raise ctx.fail(f"{ctx.entity.name} records have no pipeline, so there is no move to hold for an approval")
    if not re.fullmatch(r"[A-Za-z0-9_.@-]+", params["role"]):
        raise ctx.fail(f"role must be a role's name, got {params['role']!r}")


def _reminder_time(ctx: ActionContext, params: Mapping[str, Any], due: dt.datetime | None) -> dt.datetime:
    if params.get("days_before") is not None:
        if due is None:
            raise CrmError(f"rule {ctx.rule.name!r}: schedule_reminder days_before needs an activity with a due time; "
                           "give the activity due_in_days, or use in_days")
        return due - dt.timedelta(days=params["days_before"])
    if params.get("in_hours") is not None:
        return ctx.now + dt.timedelta(hours=params["in_hours"])
    return ctx.now + dt.timedelta(days=params.get("in_days") or 0)


def _reminded(ctx: ActionContext, params: Mapping[str, Any], activity_owner: int | None) -> list[int]:
    users: list[int] = []
    for spec in params.get("to", ("owner",)):
        found = ctx.resolve(spec).user_ids if spec != "owner" or activity_owner is None else (activity_owner,)
        users.extend(u for u in found if u not in users)
    return users


def _schedule_reminder(ctx: ActionContext, params: Mapping[str, Any]) -> list[Record]:
    from crmcore.jobs.reminders import schedule_reminder

    activity: Record = ctx.planned.get("activity") or ctx.record
    when = _reminder_time(ctx, params, activity.get("due_at"))
    message = ctx.render(params.get("message"))
    return [schedule_reminder(ctx.uow, activity, user, when, message) for user in _reminded(ctx, params, activity.get("owner_id"))]


def _describe_reminder(ctx: ActionContext, params: Mapping[str, Any]) -> str:
    due = ctx.planned.get("activity_due") if "activity_due" in ctx.planned else ctx.record.get("due_at")
    when = _reminder_time(ctx, params, due)
    people = "; ".join(ctx.who(s) for s in params.get("to", ("owner",)))
    return f"remind {people} at {when.isoformat(timespec='minutes')}" + (
        f" ({params['days_before']} day(s) before the activity is due)" if params.get("days_before") is not None else "")


def _check_reminder(ctx: CheckContext, params: Mapping[str, Any]) -> None:
    earlier = [c.action for c in ctx.rule.then[:ctx.index]]
    if ctx.entity.name != "activity" and "create_activity" not in earlier:
        raise ctx.fail("a reminder is about an activity: put a create_activity action before it, or use a rule on activities")
    given = [k for k in ("days_before", "in_days", "in_hours") if params.get(k) is not None]
    if len(given) > 1:
        raise ctx.fail(f"give one of days_before, in_days or in_hours, not {' and '.join(given)}")


_ASSIGN = Param("assignee", default="owner", help="whom: owner, owner_manager, role:NAME, group:NAME, user:NAME")
_TO = Param("assignees", default=("owner",), help="whom, a list of assignees")

#: The actions every app has, by name.
BUILTIN_ACTIONS: dict[str, Action] = {
    action.name: action for action in (
        Action("create_activity", _create_activity, {
            "kind": Param("text", required=True, help="meeting, call, email or task"),
            "subject": Param("text", required=True, template=True),
            "description": Param("text", template=True),
            "due_in_days": Param("number"),
            "due_in_hours": Param("number"),
            "assign_to": _ASSIGN,
            "participants": Param("assignees", default=(), help="who takes part, a list of assignees"),
        }, _describe_activity, _check_activity, help="Plan an activity about the record."),
        Action("set_field", _set_field, {
            "field": Param("field", required=True), "value": Param("any", required=True),
        }, _describe_set_field, _check_set_field, help="Set a field of the record."),
        Action("add_tag", _add_tag, {
            "tags": Param("texts", template=True), "tag": Param("text", template=True),
        }, lambda ctx, p: f"tag with {', '.join(repr(ctx.render(t)) for t in _tags(p))}", _check_tag,
            help="Tag the record.", run_many=_add_tag_many),
        Action("notify", _notify, {
            "message": Param("text", required=True, template=True), "to": _TO,
        }, _describe_notify, help="Leave a notification for users."),
        Action("require_approval", _require_approval, {
            "role": Param("text", required=True, help="the role whose holders approve"),
            "message": Param("text", template=True),
        }, _describe_approval, _check_approval, help="Hold the record's next move until approved.", blocks_moves=True),
        Action("schedule_reminder", _schedule_reminder, {
            "days_before": Param("number", help="days before the activity is due"),
            "in_days": Param("number"), "in_hours": Param("number"),
            "to": _TO, "message": Param("text", template=True),
        }, _describe_reminder, _check_reminder, help="Remind users of the activity."),
    )
}
