"""Rules, actions and approvals as a builtin plugin (``core.rules``).

- reads ``[[rules]]`` of the settings and the rules of plugins (``crm_rules``), with the actions
  of :mod:`crmcore.workflow.actions` and those of plugins (``crm_rule_actions``), and builds the
  app's :class:`~crmcore.workflow.rule_engine.RuleEngine` (``crm.rules``) when the app starts:
  a rule that does not fit the registry stops start-up;
- ships the guided-selling rule ``guided_selling_review`` (an opportunity entering
  ``rfp_received`` with an amount over 50,000 gets a review meeting with the rep's manager in
  two days, and the rep a reminder the day before); a ``[[rules]]`` table of that name changes
  it (``when = "amount > 100000"``) or switches it off (``enabled = false``);
- declares the entity types ``approval`` and ``notification`` (a notification is seen by its
  user only);
- runs rules from the record hooks, a batch at a time (``crm_after_create``,
  ``crm_after_update``, ``crm_after_move``), and holds moves for approvals
  (``crm_before_move``);
- handles the ``rules.timed`` jobs of time-based rules;
- adds ``crm rules check|list|simulate`` and ``crm approvals list|approve|reject``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy as sa

from crmcore import EntityType
from crmcore import workflow as approval_rules
from crmcore.cli import current_actor, current_app, echo_json, parse_assignments
from crmcore.errors import ConfigError, PluginError
from crmcore.fields import Boolean, Choice, DateTime, Field, Integer, Reference, String, Text
from crmcore.hookspecs import hookimpl
from crmcore.plugins import PluginInfo, hook_items
from crmcore.security import FieldEquals, Restriction
from crmcore.workflow import (
    APPROVAL_STATUSES,
    BUILTIN_ACTIONS,
    PENDING,
    TIMED_JOB,
    Action,
    Rule,
    RuleEngine,
    rules_from_settings,
)

if TYPE_CHECKING:
    from crmcore import Crm, UnitOfWork
    from crmcore.actors import Actor
    from crmcore.records import Record
    from crmcore.security import AccessContext
    from crmcore.workflow import Transition

PLUGIN = PluginInfo(
    name="core.rules",
    title="Rules",
    sections=("rules",),
    description="Rules (on an event, when a condition, then actions), approvals and notifications.",
)

APPROVAL = EntityType(
    "approval",
    fields=(
        Field("record_entity", String(64), required=True, read_only=True, help="The entity type of the record waiting."),
        Field("record_id", Integer(), required=True, read_only=True, index=True, help="The id of the record waiting."),
        Field("stage", String(64), read_only=True, help="The stage the record was in when the approval was asked."),
        Field("role", String(64), required=True, read_only=True, help="Holders of this role (or of a role above it) decide."),
        Field("rule", String(100), read_only=True, help="The rule that asked for the approval."),
        Field("message", String(500), read_only=True),
        Field("status", Choice(*APPROVAL_STATUSES), default=PENDING, read_only=True, index=True),
        Field("decided_by", Reference("user", on_delete="set_null"), read_only=True, label="Decided by"),
        Field("decided_at", DateTime(), read_only=True),
        Field("comment", Text(), read_only=True),
        Field("closed_at", DateTime(), read_only=True, help="When a move after the decision closed it."),
    ),
    title_field="role",
    help="A record's next move waits for a user with a role to approve or reject (`crm approvals`).",
)

NOTIFICATION = EntityType(
    "notification",
    fields=(
        Field("user_id", Reference("user", on_delete="cascade"), required=True, label="User",
              help="Who is notified; only they (and the system actor) see the notification."),
        Field("message", String(500), required=True),
        Field("record_entity", String(64), help="The entity type of the record it is about."),
        Field("record_id", Integer(), help="The id of the record it is about."),
        Field("rule", String(100), help="The rule that sent it."),
        Field("read", Boolean(), default=False, index=True),
    ),
    title_field="message",
    help="A message for a user, left by a rule's notify action.",
)

#: Guided selling (the default rule): a review meeting for big opportunities entering rfp_received.
GUIDED_SELLING = Rule(
    "guided_selling_review",
    "opportunity",
    on="stage_entered:rfp_received",  # type: ignore[arg-type]  # text, parsed by Rule
    when="amount > 50000",  # type: ignore[arg-type]  # text, parsed by Rule
    then=[
        {"action": "create_activity", "kind": "meeting", "subject": "Review with senior manager",
         "description": "Review the RFP of {name} ({amount}) before quoting.",
         "due_in_days": 2, "assign_to": "owner", "participants": ["owner_manager"]},
        {"action": "schedule_reminder", "days_before": 1, "message": "Review with senior manager tomorrow: {name}"},
    ],
    description="Guided selling: an RFP over 50,000 is reviewed with the rep's manager within two days.",
    origin="core.rules",
)


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return [APPROVAL, NOTIFICATION]


@hookimpl(trylast=True)
def crm_rules() -> list[Rule]:
    return [GUIDED_SELLING]


@hookimpl(trylast=True)
def crm_rule_actions() -> list[Action]:
    return list(BUILTIN_ACTIONS.values())


@hookimpl
def crm_configure(crm: Crm) -> None:
    settings = crm.settings
    try:
        crm.set_state(RuleEngine(crm.registry, crm.workflow, _rules(crm), _actions(crm), unit_of_work=crm.unit_of_work))
    except ConfigError as exc:
        raise ConfigError(f"{settings.source}: {exc}", path=settings.path, key=exc.key) from None


def _actions(crm: Crm) -> dict[str, Action]:
    actions: dict[str, Action] = {}
    owners: dict[str, str] = {}
    for part in crm.plugins.call_each("crm_rule_actions"):
        for action in hook_items(part.result, Action, plugin=part.plugin, hook="crm_rule_actions",
                                 what="crmcore.workflow.actions.Action objects"):
            if action.name in actions:
                raise PluginError(f"plugins {owners[action.name]!r} and {part.plugin!r} both add the rule action "
                                  f"{action.name!r}; rename one", plugin=part.plugin, hook="crm_rule_actions")
            actions[action.name] = action
            owners[action.name] = part.plugin
    return actions


def _rules(crm: Crm) -> list[Rule]:
    declared: dict[str, Rule] = {}
    for part in crm.plugins.call_each("crm_rules", own_settings=True, crm=crm):  # defaults (trylast) first
        for rule in hook_items(part.result, Rule, plugin=part.plugin, hook="crm_rules", what="crmcore.workflow.rules.Rule objects"):
            if not rule.origin:
                rule = Rule(rule.name, rule.entity, rule.on, rule.when, rule.then, rule.description, rule.enabled, part.plugin)
            if rule.name in declared:
                raise ConfigError(f"rule {rule.name!r} is declared by both {declared[rule.name].origin!r} and {rule.origin!r}; "
                                  "rename one")
            declared[rule.name] = rule
    added, changed = rules_from_settings(crm.settings.sections.get("rules"), declared, source=crm.settings.source)
    return [changed.get(name, rule) for name, rule in declared.items()] + added


def _engine(uow: UnitOfWork) -> RuleEngine:
    return uow.crm.state(RuleEngine)


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    engine = _engine(uow)
    if engine.watches(entity):
        engine.on_created(uow, entity, records)


@hookimpl
def crm_after_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]) -> None:
    engine = _engine(uow)
    if engine.watches(entity):
        engine.on_updated(uow, entity, items)


@hookimpl
def crm_after_move(uow: UnitOfWork, entity: str, moves: list[tuple[Record, Record, str | None, str | None]]) -> None:
    engine = _engine(uow)
    if engine.watches(entity):
        engine.on_moved(uow, entity, moves)


@hookimpl
def crm_before_move(uow: UnitOfWork, entity: str, moves: list[tuple[Record, Transition, Mapping[str, Any]]]) -> None:
    _engine(uow).check_moves(uow, entity, moves)


def _run_timed(uow: UnitOfWork, payload: Any) -> None:
    _engine(uow).run_timed(uow, payload)


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    return {TIMED_JOB: _run_timed}


@hookimpl
def crm_access_restrictions(context: AccessContext, entity: str) -> list[Restriction] | None:
    if entity == "notification":
        return [Restriction(FieldEquals("user_id", context.actor.user_id), "a notification is only for the user it notifies")]
    return None


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    return [rules, approvals]


# -- crm rules ------------------------------------------------------------------------------------

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@click.group()
def rules() -> None:
    """Check, list and simulate the rules (on an event, when a condition, then actions)."""


@rules.command("check")
@click.option("--no-database", is_flag=True, help="Do not look up the roles, groups and users the rules name.")
def rules_check(no_database: bool) -> None:
    """Check every pipeline and rule against the registry (exit 1 naming what is wrong)."""
    crm = current_app()  # start-up checks every pipeline and rule already
    engine: RuleEngine = crm.rules
    engine.check()
    pipelines = sorted(crm.workflow.pipelines)
    lines = [f"{len(pipelines)} pipeline(s) checked: {', '.join(pipelines) or 'none'}"]
    enabled = [r.name for r in engine.rules.values() if r.enabled]
    disabled = [r.name for r in engine.rules.values() if not r.enabled]
    lines.append(f"{len(engine.rules)} rule(s) checked: {', '.join(enabled) or 'none'}"
                 + (f" (disabled: {', '.join(disabled)})" if disabled else ""))
    problems: list[str] = []
    if not no_database:
        with crm.unit_of_work() as uow:
            try:
                problems = engine.check_names(uow)
            except sa.exc.DBAPIError:
                lines.append("roles, groups and users not checked: the database has no schema yet (crm db upgrade)")
    for line in lines:
        click.echo(line)
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        raise click.exceptions.Exit(1)
    click.echo("ok")


@rules.command("list")
@_JSON
def rules_list(as_json: bool) -> None:
    """List the rules: entity, event, condition, actions and where each comes from."""
    engine: RuleEngine = current_app().rules
    rows = [{
        "name": r.name, "entity": r.entity, "on": str(r.on), "when": str(r.when) if r.when is not None else None,
        "then": [{"action": c.action, **c.params} for c in r.then], "enabled": r.enabled, "origin": r.origin,
        "description": r.description,
    } for r in engine.rules.values()]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no rules")
    for rule in engine.rules.values():
        state = "" if rule.enabled else " (disabled)"
        click.echo(f"{rule.name}{state} [{rule.origin}]")
        click.echo(f"  {rule.describe()}")


@rules.command("simulate")
@click.argument("entity")
@click.argument("assignments", nargs=-1, metavar="FIELD=VALUE...")
@click.option("--stage", metavar="STAGE", help="The record's stage (and the event: stage_entered:STAGE).")
@click.option("--event", metavar="EVENT", help="The event: created, updated, field_changed:F, stage_entered:S, ...")
@click.option("--all", "show_all", is_flag=True, help="Also list the rules of the event whose condition does not hold.")
@_JSON
def rules_simulate(entity: str, assignments: tuple[str, ...], stage: str | None, event: str | None, show_all: bool,
                   as_json: bool) -> None:
    """Show which rules fire for a record with these values and what they would do; writes nothing."""
    crm = current_app()
    values = parse_assignments(assignments)
    firings = crm.rules.simulate(entity, values, event=event, stage=stage, actor=current_actor(), include_skipped=show_all)
    if as_json:
        echo_json([{
            "rule": f.rule, "event": f.event, "fires": f.fired, "condition": f.condition or None,
            "seen": {k: _plain(v) for k, v in f.seen.items()},
            "actions": [{"action": a.action, "summary": a.summary} for a in f.actions],
        } for f in firings])
        return
    the_event = event or (f"stage_entered:{stage}" if stage else "created")
    if not any(f.fired for f in firings):
        click.echo(f"no rule fires on {the_event} for this {entity}")
    for firing in firings:
        click.echo(str(firing))
    click.echo("(simulation: nothing was written)")


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
    except TypeError:
        return str(value)
    return value


# -- crm approvals --------------------------------------------------------------------------------

_AS = "crm.approvals.as"


def _approval_actor(ctx: click.Context) -> Actor:
    username = ctx.meta.get(_AS)
    return current_app().actor(username) if username else current_actor()


@click.group(invoke_without_command=True)
@click.option("--as", "username", metavar="USERNAME", help="Act as this user [default: crm --as, else the system actor].")
@click.pass_context
def approvals(ctx: click.Context, username: str | None) -> None:
    """Approvals holding records' moves: list them, approve or reject one."""
    ctx.meta[_AS] = username
    if ctx.invoked_subcommand is None:
        ctx.invoke(approvals_list)


@approvals.command("list")
@click.option("--all", "show_all", is_flag=True, help="Every approval, decided ones included, whoever decides them.")
@_JSON
@click.pass_context
def approvals_list(ctx: click.Context, show_all: bool = False, as_json: bool = False) -> None:
    """The pending approvals you may decide (the system actor: all pending ones)."""
    crm = current_app()
    with crm.unit_of_work(_approval_actor(ctx)) as uow:
        found = approval_rules.list_approvals(uow, status=None if show_all else PENDING, mine=not show_all)
        actor = uow.actor
    rows = [_approval_row(a) for a in found]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        whom = "anyone" if actor.is_system or show_all else actor.username
        click.echo(f"no {'' if show_all else 'pending '}approvals for {whom}")
        return
    table = [(str(r["id"]), f"{r['entity']} {r['record_id']}", r["stage"] or "", r["role"], r["status"], r["rule"] or "",
              r["message"] or "") for r in rows]
    _echo_table(("id", "record", "stage", "role", "status", "rule", "message"), table)


def _approval_row(approval: Record) -> dict[str, Any]:
    return {
        "id": approval.id, "entity": approval.record_entity, "record_id": approval.record_id, "stage": approval.get("stage"),
        "role": approval.role, "status": approval.status, "rule": approval.get("rule"), "message": approval.get("message"),
        "decided_by": approval.get("decided_by"),
        "decided_at": approval.decided_at.isoformat() if approval.get("decided_at") else None,
    }


def _decide(ctx: click.Context, approval_id: str, comment: str | None, approve: bool) -> None:
    crm = current_app()
    with crm.unit_of_work(_approval_actor(ctx)) as uow:
        decide = approval_rules.approve if approve else approval_rules.reject
        approval = decide(uow, approval_id, comment)
        uow.commit()
    click.echo(f"approval {approval.id} {approval.status}: {approval.record_entity} {approval.record_id} "
               f"{'may move on' if approve else 'may only go back or be lost'}")


@approvals.command("approve")
@click.argument("approval_id", metavar="ID")
@click.option("--comment", help="Why.")
@click.pass_context
def approvals_approve(ctx: click.Context, approval_id: str, comment: str | None) -> None:
    """Approve approval ID: the record may move on."""
    _decide(ctx, approval_id, comment, True)


@approvals.command("reject")
@click.argument("approval_id", metavar="ID")
@click.option("--comment", help="Why.")
@click.pass_context
def approvals_reject(ctx: click.Context, approval_id: str, comment: str | None) -> None:
    """Reject approval ID: the record may only go back or to a lost stage."""
    _decide(ctx, approval_id, comment, False)


def _echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
