"""The ``crm`` command line: the root group, its global options and its error handling.

Every subcommand, the core's included, comes from the ``crm_cli_commands`` hook: the core's own
commands are contributed by the builtin plugin :mod:`crmcore.builtin.cli`, exactly like a
plugin's. Since the enabled plugins depend on ``--config`` and ``--db``, the root group
(:class:`CrmGroup`) builds the app lazily from the parsed root options the first time it needs
a command. When the settings are broken, ``crm --help`` still lists the core commands and the
error is reported when a command needs the app.

Commands, in the core or in a plugin, reach the app and the acting user through
:func:`current_app` and :func:`current_actor`::

    @click.command("escalate")
    def escalate():
        with current_app().unit_of_work(current_actor()) as uow:
            ...

Errors are handled in one place, :meth:`CrmGroup.invoke`: a :class:`~crmcore.errors.CrmError`
becomes one line ``error: <message>`` on stderr and exit code 1; anything else becomes
``error: <Type>: <message>`` and exit code 1; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import errno
import importlib
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import click
import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.app import Crm, create_app
from crmcore.errors import ConfigError, CrmError, PluginError, ValidationError
from crmcore.security.admin import acting_user

if TYPE_CHECKING:
    from crmcore.records import Record
    from crmcore.storage.uow import AuditEntry, UnitOfWork

__all__ = [
    "DEFAULT_CONFIG",
    "CliState",
    "CrmGroup",
    "cli_state",
    "current_actor",
    "current_app",
    "dump_record",
    "echo_json",
    "format_value",
    "main",
    "parse_assignments",
    "progress",
    "settings_line",
    "timeline_lines",
]

log = logging.getLogger(__name__)

#: The settings file ``crm`` reads when ``--config`` is not given and the file exists.
DEFAULT_CONFIG = "crm.toml"
LOG_LEVELS = ("debug", "info", "warning", "error")


@attrs.define(eq=False)
class CliState:
    """One run of ``crm``: the root options and, once a command needs it, the app.

    :param plugins: plugin objects to register in the app besides the enabled entry points, for
        programs that embed the command line (and for tests):
        ``main(["show", "account", "1"], obj=CliState(plugins=[my_plugin]))``.
    :ivar config: ``--config``; ``None`` means ``./crm.toml`` when it exists, else defaults.
    :ivar database: ``--db``, overriding ``[crm] database``.
    :ivar username: ``--as``; ``None`` means the system actor.
    :ivar debug: ``--debug``: show tracebacks.
    """

    plugins: tuple[Any, ...] = attrs.field(default=(), converter=tuple)
    config: str | None = None
    database: str | None = None
    username: str | None = None
    debug: bool = False
    log_level: str = "warning"
    _configured: bool = attrs.field(default=False, init=False, repr=False)
    _app: Crm | None = attrs.field(default=None, init=False, repr=False)
    _actor: Actor | None = attrs.field(default=None, init=False, repr=False)
    _commands: dict[str, click.Command] | None = attrs.field(default=None, init=False, repr=False)
    _error: Exception | None = attrs.field(default=None, init=False, repr=False)

    def configure(self, params: Mapping[str, Any]) -> None:
        """Take the root options from the parsed *params* (once)."""
        if self._configured:
            return
        self._configured = True
        self.config = params.get("config") or self.config
        self.database = params.get("database") or self.database
        self.username = params.get("username") or self.username
        self.debug = bool(params.get("debug")) or self.debug
        self.log_level = params.get("log_level") or self.log_level

    @property
    def config_path(self) -> str | None:
        """The settings file in effect: ``--config``, else ``./crm.toml`` if it exists."""
        if self.config:
            return self.config
        return DEFAULT_CONFIG if os.path.exists(DEFAULT_CONFIG) else None

    def app(self) -> Crm:
        """The app, built on first use from ``--config`` and ``--db``.

        :raises ConfigError: for broken settings; :raises PluginError: for a broken plugin.
        """
        if self._app is None:
            overrides: dict[str, Any] = {"database": self.database} if self.database else {}
            self._app = create_app(self.config_path, plugins=self.plugins, **overrides)
        return self._app

    def actor(self) -> Actor:
        """The user named by ``--as``, or the system actor.

        :raises NotFoundError: when there is no such user.
        :raises PermissionDeniedError: when the user is deactivated.
        """
        if self._actor is None:
            self._actor = acting_user(self.app(), self.username) if self.username else Actor.system()
        return self._actor

    def commands(self) -> dict[str, click.Command]:
        """Every subcommand by name, from the ``crm_cli_commands`` hook of the app.

        When the app cannot be built, the core's commands only; the error is kept and raised
        by :meth:`CrmGroup.get_command` for any other name.
        """
        if self._commands is None:
            try:
                self._commands = _commands_of(self.app())
            except Exception as exc:  # listing must work even when the settings are broken
                self._error = exc
                self._commands = _core_commands()
        return self._commands

    @property
    def error(self) -> Exception | None:
        """Why the app could not be built while listing commands, if it could not."""
        return self._error

    def reset(self) -> None:
        """Close and forget the app, so the next :meth:`app` reads the settings again."""
        self.close()
        self._commands = None
        self._error = None

    def close(self) -> None:
        """Close the app if it was built."""
        app, self._app, self._actor = self._app, None, None
        if app is not None:
            try:
                app.close()
            except Exception as exc:  # the command's outcome stands; closing is best effort
                log.warning("closing the app failed: %s: %s", type(exc).__name__, exc)


def _commands_of(app: Crm) -> dict[str, click.Command]:
    commands: dict[str, click.Command] = {}
    owners: dict[str, str] = {}
    for part in app.plugins.call_each("crm_cli_commands"):
        for command in part.result:
            if not isinstance(command, click.Command) or not command.name:
                raise PluginError(
                    f"plugin {part.plugin!r} returned {command!r} from crm_cli_commands; "
                    "return named click commands or groups",
                    plugin=part.plugin, hook="crm_cli_commands",
                )
            if command.name in commands:
                raise PluginError(
                    f"plugins {owners[command.name]!r} and {part.plugin!r} both add the command "
                    f"'crm {command.name}'; disable one of them",
                    plugin=part.plugin, hook="crm_cli_commands",
                )
            commands[command.name] = command
            owners[command.name] = part.plugin
    return commands


def _core_commands() -> dict[str, click.Command]:
    """The commands of the builtin plugins, without an app (for broken settings)."""
    from crmcore.plugins import DEFAULT_PLUGINS

    commands: dict[str, click.Command] = {}
    for module_name in DEFAULT_PLUGINS:
        hook = getattr(importlib.import_module(module_name), "crm_cli_commands", None)
        for command in (hook() if hook else None) or ():
            if isinstance(command, click.Command) and command.name:
                commands.setdefault(command.name, command)
    return commands


def cli_state(ctx: click.Context | None = None) -> CliState:
    """The :class:`CliState` of the running ``crm`` command.

    :raises CrmError: outside a ``crm`` command.
    """
    if ctx is None:
        ctx = click.get_current_context(silent=True)
        if ctx is None:
            raise CrmError("current_app() and current_actor() work only inside a running crm command")
    root = ctx.find_root()
    state = root.ensure_object(CliState)
    state.configure(root.params)
    return state


def current_app() -> Crm:
    """The app of the running ``crm`` command, built on first use from ``--config`` and ``--db``."""
    return cli_state().app()


def current_actor() -> Actor:
    """Who the running ``crm`` command acts as: the user named by ``--as``, or the system actor."""
    return cli_state().actor()


class CrmGroup(click.Group):
    """The root ``crm`` group: commands from the ``crm_cli_commands`` hook, errors in one place."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({**self.commands, **cli_state(ctx).commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        state = cli_state(ctx)
        command = state.commands().get(cmd_name)
        if command is None and state.error is not None and not ctx.resilient_parsing:
            raise state.error  # the command may come from a plugin of the broken settings
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if not name.startswith("-") and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            matches = difflib.get_close_matches(name, self.list_commands(ctx))
            hint = f"; did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ""
            ctx.fail(f"no such command {name!r}{hint} ('crm --help' lists the commands)")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        state = cli_state(ctx)
        with _logging_to_stderr(state.log_level):
            try:
                try:
                    return super().invoke(ctx)
                finally:
                    state.close()
            except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
                raise
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # output piped into a closed reader: not our failure
                    raise
                _report(exc, debug=state.debug)
            except Exception as exc:
                _report(exc, debug=state.debug)
        ctx.exit(1)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@contextlib.contextmanager
def _logging_to_stderr(level: str) -> Iterator[None]:
    """Send log records from *level* on to stderr while a command runs (``--log-level``)."""
    handler = _StderrHandler()
    handler.setLevel(level.upper())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > handler.level:
        root.setLevel(handler.level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def settings_line(path: str, key: str) -> int | None:
    """The line of *path* (a TOML file) where the dotted *key* is set, if it can be found.

    ``crm.plugins`` is the ``plugins =`` line under ``[crm]``; ``plugins.helpdesk`` (a table)
    is its ``[plugins.helpdesk]`` header; a key of an inline table is the line of the table.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    parts = key.split(".")
    headers: dict[str, int] = {}
    table = ""
    keys: dict[str, int] = {}
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        header = re.fullmatch(r"\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?", text)
        if header:
            table = ".".join(p.strip().strip('"\'') for p in header.group(1).split("."))
            headers.setdefault(table, number)
            continue
        assignment = re.match(r"([A-Za-z0-9_\-.\"' ]+?)\s*=", text)
        if assignment:
            name = ".".join(p.strip().strip('"\'') for p in assignment.group(1).split("."))
            keys.setdefault(f"{table}.{name}" if table else name, number)
    for end in range(len(parts), 0, -1):  # the longest prefix of the key that is set or declared
        prefix = ".".join(parts[:end])
        if prefix in keys:
            return keys[prefix]
        if prefix in headers:
            return headers[prefix]
    return None


def _quoted_line(path: str, message: str) -> str:
    match = re.search(r"at line (\d+)", message)
    if not match:
        return ""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        text = lines[int(match.group(1)) - 1].strip()
    except (OSError, UnicodeDecodeError, IndexError):
        return ""
    return f": {text[:60]!r}" if text else ""


_MISSING_TABLES = "; the database lacks tables of the enabled plugins: run 'crm db upgrade'"


def _missing_table(message: str) -> bool:
    return bool(re.search(r"no such table|relation \S+ does not exist", message))


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _report(exc: BaseException, *, debug: bool) -> None:
    if debug:
        click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
    if isinstance(exc, CrmError):
        message = _one_line(str(exc))
        if isinstance(exc, ConfigError) and exc.path and "line" not in message:
            line = settings_line(exc.path, exc.key) if exc.key else None
            message += f" (line {line})" if line else ""
        elif isinstance(exc, ConfigError) and exc.path:
            message += _quoted_line(exc.path, message)
        elif _missing_table(message):
            message += _MISSING_TABLES
        click.echo(f"error: {message}", err=True)
        return
    hint = "" if debug else " (run with --debug for the traceback)"
    if isinstance(exc, sa.exc.DBAPIError):  # the statement and its parameters are for --debug
        reason = _one_line(str(exc.orig).strip().splitlines()[0] if exc.orig and str(exc.orig).strip() else str(exc))
        click.echo(f"error: database error: {reason}{_MISSING_TABLES if _missing_table(reason) else ''}{hint}", err=True)
        return
    message = _one_line(str(exc))
    click.echo(f"error: {type(exc).__name__}{': ' + message if message else ''}{hint}", err=True)


@click.group(
    cls=CrmGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="crmcore: entities, workflow and permissions from the command line.",
)
@click.option(
    "--config", "config", metavar="PATH", is_eager=True,
    help=f"Settings file [default: ./{DEFAULT_CONFIG} when it exists, else built-in defaults].",
)
@click.option(
    "--db", "database", metavar="URL", is_eager=True,
    help="Database URL, overriding [crm] database (sqlite:///crm.db, postgresql+psycopg://...).",
)
@click.option("--as", "username", metavar="USERNAME", help="Act as this user [default: the system actor].")
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@click.option(
    "--log-level", "log_level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default="warning",
    show_default=True, help="Log messages from this level on, to stderr.",
)
@click.version_option(package_name="crmcore", prog_name="crmcore")
def main(config: str | None, database: str | None, username: str | None, debug: bool, log_level: str) -> None:
    """The root command; the options are read by :func:`cli_state`."""


# -- helpers for commands -----------------------------------------------------------------------


def parse_assignments(arguments: Sequence[str]) -> dict[str, str]:
    """Turn ``field=value`` arguments into ``{field: text}``; ``field=`` gives ``""`` (empties).

    The texts go to the unit of work as they are: :meth:`crmcore.fields.Field.parse` reads them.

    :raises ValidationError: naming an argument without ``=`` or a field given twice.
    """
    values: dict[str, str] = {}
    for argument in arguments:
        name, sep, value = argument.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValidationError(f"malformed argument {argument!r}: expected field=value, such as name=Acme")
        if name in values:
            raise ValidationError(f"field {name!r} is given twice ({name}={values[name]!r} and {argument!r})")
        values[name] = value
    return values


def echo_json(data: Any) -> None:
    """Print *data* as indented JSON (non-ASCII text kept as is)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def dump_record(crm: Crm, record: Record) -> dict[str, Any]:
    """A record as JSON-compatible values (:meth:`FieldType.dump`): system fields, then fields."""
    entity = crm.registry.entity(record.entity)
    out: dict[str, Any] = {}
    for field in entity.all_fields:
        if field.name in record.values:
            value = record.values[field.name]
            out[field.name] = None if value is None else field.type.dump(value)
    return out


def format_value(crm: Crm, entity: str, field: str, value: Any) -> str:
    """Text for *value* of *entity*.*field*, also when it is in its JSON form (audit entries)."""
    if value is None:
        return ""
    etype = crm.registry.entity(entity) if entity in crm.registry else None
    if etype is None or not etype.has_field(field):
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    ftype = etype.field(field).type
    try:
        return ftype.format(ftype.parse(value))
    except (ValueError, TypeError):
        return str(value)


def timeline_lines(crm: Crm, uow: UnitOfWork, entries: Sequence[AuditEntry]) -> list[str]:
    """One line per audit entry: time, actor, action, entity and id, then ``field: old → new``.

    Times are shown in the deployment's time zone; actors by username (one query).
    """
    ids = {e.actor_id for e in entries if e.actor_id is not None}
    names = {user.id: user.username for user in uow.get_many("user", ids)} if ids else {}
    tz = crm.registry.timezone or dt.UTC
    lines = []
    for entry in entries:
        actor = "system" if entry.actor_id is None else names.get(entry.actor_id, f"user {entry.actor_id}")
        parts = []
        if entry.action != "deleted":
            for name, (old, new) in entry.changes.items():
                after = format_value(crm, entry.entity, name, new)
                if entry.action == "created":
                    parts.append(f"{name}: {after}")
                else:
                    before = format_value(crm, entry.entity, name, old)
                    parts.append(f"{name}: {before or '∅'} → {after or '∅'}")
        when = entry.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
        details = f"  {'; '.join(parts)}" if parts else ""
        lines.append(f"{when}  {actor}  {entry.action}  {entry.entity} {entry.record_id}{details}")
    return lines


class _QuietBar:
    """Stands in for a progress bar when stderr is not a terminal."""

    def __init__(self, iterable: Iterable[Any] | None) -> None:
        self._iterable = iterable

    def __iter__(self) -> Iterator[Any]:
        return iter(self._iterable or ())

    def update(self, n_steps: int, current_item: Any = None) -> None:
        """Progress is not shown when piped."""


@contextlib.contextmanager
def progress(iterable: Iterable[Any] | None = None, *, length: int | None = None, label: str = "") -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal; silent when piped or redirected.

    ``with progress(rows, label="importing") as bar: for row in bar: ...``, or without an
    iterable ``with progress(length=n) as bar: bar.update(k)``.
    """
    if sys.stderr.isatty():
        with click.progressbar(iterable, length=length, label=label, file=sys.stderr) as bar:  # type: ignore[call-overload]
            yield bar
    else:
        yield _QuietBar(iterable)
