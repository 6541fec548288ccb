"""Jobs and reminders as a builtin plugin: the ``job`` and ``reminder`` entity types, the
handler of reminder jobs, the hooks that keep reminders and their jobs together, and the
``crm worker`` and ``crm reminders`` commands.

``job`` is an entity type (table ``crm_job``) so that ``crm list job --where status=failed`` and
``crm show job 12`` work like for any record, and permissions decide who may read jobs. It is
not audited: a job changes state several times per run, and the audit trail would fill with
plumbing. Every field is read-only, written by :mod:`crmcore.jobs` only.

``reminder`` (table ``crm_reminder``) is audited, so a reminder's life shows in its activity's
timeline. It is not ownable: ``user_id`` says whose it is, and a restriction on the access
predicate lets a user see and change their own reminders only (managers do not see their
reports' reminders; the system actor sees all).

Settings, in ``[plugins."core.jobs"]``: ``batch_size`` (jobs claimed at a time, 10),
``lock_timeout`` (seconds before a running job without a result is reclaimed, 900),
``retry_delay`` (seconds before the second attempt, doubled for each further one, 30) and
``retry_delay_max`` (3600).
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import zoneinfo
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from crmcore import EntityType
from crmcore.cli import current_actor, current_app, echo_json
from crmcore.errors import ConfigError
from crmcore.fields import Choice, DateTime, Field, Integer, Json, Reference, String, Text
from crmcore.hookspecs import hookimpl
from crmcore.jobs import (
    JOB_STATUSES,
    KEY_LENGTH,
    QUEUED,
    Job,
    WorkerSettings,
    run_worker,
    stop_on_signals,
)
from crmcore.jobs import reminders as reminder_rules
from crmcore.jobs.reminders import MAX_SNOOZE_MINUTES, REMINDER_DUE, REMINDER_STATUSES, SCHEDULED
from crmcore.plugins import PluginInfo, Setting
from crmcore.security import FieldEquals, Restriction

if TYPE_CHECKING:
    from crmcore import Crm, UnitOfWork
    from crmcore.actors import Actor
    from crmcore.records import Record
    from crmcore.security import AccessContext

PLUGIN = PluginInfo(
    name="core.jobs",
    title="Jobs and reminders",
    description="The jobs table, crm worker, reminders and crm reminders.",
    settings={
        "batch_size": Setting(int, default=10, help="Jobs a worker claims at a time."),
        "lock_timeout": Setting((int, float), default=900, help="Seconds after which a running job without a result is run again."),
        "retry_delay": Setting((int, float), default=30, help="Seconds before a failed job's second attempt; doubled for each further one."),
        "retry_delay_max": Setting((int, float), default=3600, help="The longest wait between two attempts, in seconds."),
    },
)

JOB = EntityType(
    "job",
    fields=(
        Field("kind", String(100), required=True, read_only=True, index=True,
              help="The kind of work; a plugin names its handler in crm_job_handlers."),
        Field("payload", Json(), read_only=True, help="What the handler receives."),
        Field("run_at", DateTime(), required=True, read_only=True, index=True, help="When it is due; a retry moves it later."),
        Field("status", Choice(*JOB_STATUSES), default=QUEUED, read_only=True, index=True),
        Field("attempts", Integer(), default=0, read_only=True, help="How many times a worker started it."),
        Field("max_attempts", Integer(), default=5, read_only=True, help="After this many failed attempts it is kept as failed."),
        Field("last_error", Text(), read_only=True, help="The error of its last failed attempt."),
        Field("key", String(KEY_LENGTH), read_only=True, help="Its dedupe key: enqueueing a key that is queued updates that job."),
        Field("queued_key", String(KEY_LENGTH), read_only=True, unique=True,
              help="The dedupe key while the job is queued; one queued job per key."),
        Field("locked_by", String(200), read_only=True, help="The worker running it, or the one that ran it last."),
        Field("locked_at", DateTime(), read_only=True, help="When that worker started it."),
        Field("finished_at", DateTime(), read_only=True),
    ),
    auditable=False,
    title_field="kind",
    help="Work for `crm worker` to run at a time: a reminder, a time-based rule, a plugin's task.",
)

REMINDER = EntityType(
    "reminder",
    fields=(
        Field("activity_id", Reference("activity", on_delete="cascade"), required=True, label="Activity"),
        Field("user_id", Reference("user", on_delete="cascade"), required=True, label="User",
              help="Who is reminded; only they (and the system actor) see the reminder."),
        Field("remind_at", DateTime(), required=True, index=True),
        Field("status", Choice(*REMINDER_STATUSES), default=SCHEDULED, index=True,
              help="Scheduled, then due when its time comes (the worker); snoozed or dismissed by the user."),
        Field("message", String(500)),
    ),
    help="A user is reminded of an activity at a time; `crm reminders` lists the due ones.",
)

_AS = "crm.reminders.as"  # click meta key of `crm reminders --as`
_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def _remember_as(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.meta[_AS] = value
    return value


#: ``--as`` of ``crm reminders`` and its subcommands (``crm --as`` works as well).
_AS_OPTION = click.option("--as", "username", metavar="USERNAME", callback=_remember_as, expose_value=False,
                          help="Act as this user [default: crm --as, else the system actor].")


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return [JOB, REMINDER]


@hookimpl
def crm_configure(crm: Crm, settings: dict[str, Any]) -> None:
    for key in ("batch_size", "lock_timeout", "retry_delay", "retry_delay_max"):
        value = settings[key]
        if isinstance(value, bool) or value < (1 if key == "batch_size" else 0):
            raise ConfigError(
                f'plugins."core.jobs".{key} must be a positive number, got {value!r}', key=f"plugins.core.jobs.{key}",
            )
    crm.set_state(WorkerSettings(
        batch_size=settings["batch_size"], lock_timeout=float(settings["lock_timeout"]),
        retry_delay=float(settings["retry_delay"]), retry_delay_max=float(settings["retry_delay_max"]),
    ))


@hookimpl
def crm_job_handlers() -> dict[str, Any]:
    return {REMINDER_DUE: reminder_rules.make_due}


@hookimpl
def crm_before_create(uow: UnitOfWork, entity: str, items: list[dict[str, Any]]) -> None:
    if entity == "reminder":
        for values in items:
            reminder_rules.check_create(uow, values)


@hookimpl
def crm_after_create(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "reminder":
        for record in records:
            reminder_rules.on_created(uow, record)


@hookimpl
def crm_before_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, dict[str, Any]]]) -> None:
    if entity == "reminder":
        for record, changes in items:
            reminder_rules.check_update(uow, record, changes)


@hookimpl
def crm_after_update(uow: UnitOfWork, entity: str, items: list[tuple[Record, Record, dict[str, Any]]]) -> None:
    if entity == "reminder":
        for _, new, changes in items:
            reminder_rules.on_updated(uow, new, changes)


@hookimpl
def crm_after_delete(uow: UnitOfWork, entity: str, records: list[Record]) -> None:
    if entity == "reminder":
        for record in records:
            reminder_rules.on_deleted(uow, record)


@hookimpl
def crm_access_restrictions(context: AccessContext, entity: str) -> list[Restriction] | None:
    if entity == "reminder":
        return [Restriction(FieldEquals("user_id", context.actor.user_id), "a reminder is only for the user it reminds")]
    return None


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    return [worker, reminders]


# -- crm worker -----------------------------------------------------------------------------------


@click.command()
@click.option("--once", is_flag=True, help="Run what is due, then exit [default: keep polling until stopped].")
@click.option("--max-jobs", type=click.IntRange(min=1), metavar="N", help="Exit after running N jobs.")
@click.option("--poll", type=click.FloatRange(min=0.01), default=1.0, show_default=True, metavar="SECONDS",
              help="How long to wait when nothing is due.")
@click.option("--batch-size", type=click.IntRange(min=1), metavar="N", help="Jobs claimed at a time [default: from the settings, 10].")
@click.option("--id", "worker_id", metavar="NAME", help="The worker's name in the jobs and the logs [default: host:pid:random].")
def worker(once: bool, max_jobs: int | None, poll: float, batch_size: int | None, worker_id: str | None) -> None:
    """Run due jobs (reminders, time-based rules, plugins' jobs) as the system actor.

    Failed jobs are retried later with a growing delay; after their last attempt they are kept
    as failed with the error (`crm list job --where status=failed`). SIGINT or SIGTERM: the
    current job is finished, then the worker exits. Several workers may run side by side.
    """
    crm = current_app()
    terminal = sys.stderr.isatty()

    def shown(job: Job, outcome: str, seconds: float) -> None:
        click.echo(f"job {job.id} {job.kind}: {outcome} ({seconds * 1000:.0f} ms)", err=True)

    stop = threading.Event()
    with stop_on_signals(stop):
        if terminal and not once:
            click.echo("running due jobs; Ctrl-C to stop", err=True)
        stats = run_worker(crm, once=once, max_jobs=max_jobs, worker_id=worker_id, poll=poll, batch_size=batch_size,
                           stop=stop, on_job=shown if terminal else None)
    click.echo(f"worker {stats.worker_id}: {stats.summary()}")


# -- crm reminders --------------------------------------------------------------------------------


def _reminder_actor(ctx: click.Context) -> Actor:
    username = ctx.meta.get(_AS)
    return current_app().actor(username) if username else current_actor()


@click.group(invoke_without_command=True)
@_AS_OPTION
@_JSON
@click.pass_context
def reminders(ctx: click.Context, as_json: bool) -> None:
    """Your due reminders (the system actor: everyone's); snooze or dismiss them."""
    if ctx.invoked_subcommand is not None:
        return
    crm = current_app()
    with crm.unit_of_work(_reminder_actor(ctx)) as uow:
        due = reminder_rules.due_reminders(uow)
        activities = {a.id: a for a in uow.get_many("activity", {r.activity_id for r in due})}
        users = {u.id: u for u in uow.get_many("user", {r.user_id for r in due})}
        actor = uow.actor
    rows = [_reminder_row(crm, reminder, activities.get(reminder.activity_id), users.get(reminder.user_id)) for reminder in due]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        whose = "anyone" if actor.is_system else actor.username
        click.echo(f"no due reminders for {whose}")
        return
    table = [
        (str(r["id"]), r["due"], f"{r['activity_id']} {r['activity'] or ''}".rstrip(), r["user"] or str(r["user_id"]), r["message"] or "")
        for r in rows
    ]
    _echo_table(("id", "due", "activity", "user", "message"), table)


@reminders.command("snooze")
@click.argument("reminder_id", metavar="ID")
@click.option("--minutes", type=click.IntRange(1, MAX_SNOOZE_MINUTES), default=15, show_default=True,
              help="How long to put the reminder off.")
@_AS_OPTION
@_JSON
@click.pass_context
def snooze_command(ctx: click.Context, reminder_id: str, minutes: int, as_json: bool) -> None:
    """Put reminder ID off by some minutes; it is due again then."""
    crm = current_app()
    with crm.unit_of_work(_reminder_actor(ctx)) as uow:
        reminder = reminder_rules.snooze(uow, reminder_id, minutes)  # type: ignore[arg-type]  # text ids are checked there
        user = uow.get_many("user", [reminder.user_id])
        uow.commit()
    row = _reminder_row(crm, reminder, None, user[0] if user else None)
    if as_json:
        echo_json(row)
    else:
        click.echo(f"reminder {reminder.id} snoozed until {row['due']}")


@reminders.command("dismiss")
@click.argument("reminder_id", metavar="ID")
@_AS_OPTION
@click.pass_context
def dismiss_command(ctx: click.Context, reminder_id: str) -> None:
    """Dismiss reminder ID."""
    crm = current_app()
    with crm.unit_of_work(_reminder_actor(ctx)) as uow:
        reminder = reminder_rules.dismiss(uow, reminder_id)  # type: ignore[arg-type]  # text ids are checked there
        uow.commit()
    click.echo(f"reminder {reminder.id} dismissed")


def _reminder_row(crm: Crm, reminder: Record, activity: Record | None, user: Record | None) -> dict[str, Any]:
    """A reminder for output; its time in the reminded user's time zone."""
    when: dt.datetime = reminder.remind_at
    return {
        "id": reminder.id,
        "status": reminder.status,
        "remind_at": when.isoformat(),
        "due": when.astimezone(_timezone(crm, user)).strftime("%Y-%m-%d %H:%M %z").replace("+0000", "UTC"),
        "activity_id": reminder.activity_id,
        "activity": activity.get("subject") if activity is not None else None,
        "user_id": reminder.user_id,
        "user": user.get("username") if user is not None else None,
        "message": reminder.get("message"),
    }


def _timezone(crm: Crm, user: Record | None) -> dt.tzinfo:
    name = user.get("timezone") if user is not None else None
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return crm.registry.timezone or dt.UTC


def _echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
