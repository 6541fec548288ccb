"""The core's own ``crm`` commands, contributed through ``crm_cli_commands`` like a plugin's.

``init``, ``db upgrade|check|revision``, ``plugins list``, ``create``, ``show``, ``update``, ``delete``,
``timeline`` and ``demo``. Each reaches the app through :func:`crmcore.cli.current_app` and acts
as :func:`crmcore.cli.current_actor`; errors propagate to the root group, which prints them.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from crmcore import SYSTEM_FIELDS
from crmcore.cli import (
    DEFAULT_CONFIG,
    cli_state,
    current_actor,
    current_app,
    dump_record,
    echo_json,
    parse_assignments,
    timeline_lines,
)
from crmcore.hookspecs import hookimpl
from crmcore.plugins import (
    DEFAULT_ENTRY_POINTS,
    DEFAULT_PLUGINS,
    ESSENTIAL_PLUGINS,
    PluginInfo,
    installed_plugins,
    plugin_info,
)
from crmcore.security import resolve_owner
from crmcore.settings import DEFAULT_DATABASE

if TYPE_CHECKING:
    from crmcore import Crm, UnitOfWork
    from crmcore.records import Record

PLUGIN = PluginInfo(name="core.cli", title="Core commands")

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")

SETTINGS_TEMPLATE = """\
# crmcore deployment settings, read by `crm` and by create_app("crm.toml").
# Every key is checked at start-up: a typo stops it with a message naming the file, the key
# and the value.

[crm]
# The database: an SQLite file (the embedded default) or PostgreSQL, for example
# "postgresql+psycopg://crm@localhost/crm" (pip install 'crmcore[postgres]').
# `crm --db URL ...` overrides it for one command.
database = {database}

# The installed plugins this deployment enables (and, with them, the plugins they require).
# `crm plugins list` shows what is installed.
plugins = []

# The time zone of dates and times given without an offset, and the currency of amounts
# given without one.
timezone = "UTC"
currency = "USD"

# Each plugin's settings go in a table of their own, for example:
# [plugins.helpdesk]
# sla_hours = 8

# Fields added without code, per entity type; they validate, filter, import, export and
# audit like declared ones:
# [custom_fields.account]
# loyalty = {{ type = "choice", choices = ["bronze", "silver", "gold"] }}

# Who may do what. Without a [security] section a deployment runs in open mode: every user
# may read, change and delete every record. `crm user add NAME --role ROLE` gives a user a role;
# `crm access explain USER ENTITY ID` tells why a user may or may not act on a record.
[security]
# The profile of users who hold no role (read_only when this key is left out).
no_role_profile = "standard"
# Records of others are read-only unless an entity type below says otherwise; owners edit
# their own, and managers those of the roles below theirs.
default_sharing = "public_read"

# The administrator: every action on every record, explains anyone's access (`crm access
# explain`) and keeps the file's ids on import (`crm import --keep-ids`).
[security.profiles.admin]
label = "Administrator"
privileges = {{ "*" = ["all", "security.explain", "security.keep_ids"] }}
modify_all = true

# Roles are created in the database by `crm init` and `crm db upgrade`. The builtin "standard"
# profile may do everything with the records sharing lets it reach, and reads users, roles and
# groups without changing them; "read_only" only reads.
[security.roles]
administrator = {{ profiles = ["admin"] }}
user = {{ profiles = ["standard"] }}

# Leads and opportunities are private: their owner, the roles above and the administrators
# see them.
[security.entities.lead]
sharing = "private"

[security.entities.opportunity]
sharing = "private"
"""


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    return [init, db, plugins, create, show, update, delete, timeline, demo]


# -- set-up -------------------------------------------------------------------------------------


@click.command()
def init() -> None:
    """Write crm.toml (if absent) and create or upgrade the database."""
    state = cli_state()
    path = state.config or DEFAULT_CONFIG
    if os.path.exists(path):
        click.echo(f"{path} already exists; it was left as it is")
    else:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(SETTINGS_TEMPLATE.format(database=json.dumps(state.database or DEFAULT_DATABASE)))
        click.echo(f"wrote {path}")
        state.reset()  # read the new file
    crm = current_app()
    for step in crm.upgrade():
        click.echo(step)
    click.echo(f"database {crm.database_url} is ready")


@click.group()
def db() -> None:
    """Database schema: upgrade, check, revision."""


@db.command()
def upgrade() -> None:
    """Bring the database to the enabled set of plugins."""
    crm = current_app()
    steps = crm.upgrade()
    for step in steps:
        click.echo(step)
    if not steps:
        click.echo("database is up to date")


@db.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """List pending migration steps; exit 1 if there are any."""
    pending = current_app().pending()
    if not pending:
        click.echo("database is up to date")
        return
    for step in pending:
        click.echo(step)
    click.echo(f"database is not up to date: {len(pending)} step(s) pending; run 'crm db upgrade'", err=True)
    ctx.exit(1)


@db.command()
@click.option("--plugin", required=True, metavar="NAME", help="The plugin whose branch gets the revision ('core' for the core).")
@click.option("-m", "--message", required=True, help="What the revision does, in a few words.")
def revision(plugin: str, message: str) -> None:
    """Write a plugin's next migration from its declarations (use a scratch --db)."""
    from crmcore.storage import revision as write_revision

    click.echo(f"wrote {write_revision(current_app(), plugin, message)}")


# -- plugins ------------------------------------------------------------------------------------


@click.group()
def plugins() -> None:
    """Installed and enabled plugins."""


@plugins.command("list")
@_JSON
def plugins_list(as_json: bool) -> None:
    """Every installed plugin: name, enabled, version, requires, title; essential plugins
    (always enabled), default ones (enabled unless in [crm] disabled; a default plugin that is
    not installed is listed too) and the others (enabled when in [crm] plugins)."""
    from crmcore import __version__

    crm = current_app()
    rows: dict[str, dict[str, Any]] = {}
    essential = {plugin_info(importlib.import_module(m), default_name=m).name for m in ESSENTIAL_PLUGINS}
    defaults = {*(plugin_info(importlib.import_module(m), default_name=m).name for m in DEFAULT_PLUGINS), *DEFAULT_ENTRY_POINTS}

    def kind(name: str) -> str:
        return "essential" if name in essential else "default" if name in defaults else "optional"

    for name, loaded in crm.plugins.plugins.items():
        rows[name] = _plugin_row(loaded.info, enabled=True, builtin=loaded.builtin, kind=kind(name),
                                 default_version=__version__ if loaded.builtin else "")
    for module_name in DEFAULT_PLUGINS:  # builtins left out by [crm] disabled
        info = plugin_info(importlib.import_module(module_name), default_name=module_name)
        if info.name not in rows:
            rows[info.name] = _plugin_row(info, enabled=False, builtin=True, kind="default", default_version=__version__)
    for name, entry_point in sorted(installed_plugins().items()):
        if name in rows:
            continue
        try:
            info = plugin_info(entry_point.load(), default_name=name)
        except Exception as exc:  # one broken plugin must not hide the others
            info = PluginInfo(name=name, title=f"cannot be loaded: {type(exc).__name__}: {exc}")
        version = getattr(getattr(entry_point, "dist", None), "version", "") or ""
        rows[name] = _plugin_row(info, enabled=False, builtin=False, kind=kind(name), default_version=version)
    for name in crm.plugins.missing_defaults:
        rows[name] = {**_plugin_row(PluginInfo(name=name, title="not installed"), enabled=False, builtin=False,
                                    kind="default", default_version=""), "installed": False}
    if as_json:
        echo_json(list(rows.values()))
        return
    table = [
        (r["name"], "yes" if r["enabled"] else "no", r["kind"], r["version"] or "-", ", ".join(r["requires"]) or "-",
         r["title"] + (" (builtin)" if r["builtin"] else ""))
        for r in rows.values()
    ]
    _echo_table(("name", "enabled", "kind", "version", "requires", "title"), table)


def _plugin_row(info: PluginInfo, *, enabled: bool, builtin: bool, kind: str, default_version: str) -> dict[str, Any]:
    return {
        "name": info.name,
        "enabled": enabled,
        "builtin": builtin,
        "kind": kind,
        "installed": True,
        "version": info.version or default_version,
        "requires": list(info.requires),
        "title": info.title,
    }


def _echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    for row in (headers, *rows):
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# -- records ------------------------------------------------------------------------------------


@click.command()
@click.argument("entity")
@click.argument("assignments", nargs=-1, metavar="FIELD=VALUE...")
@_JSON
def create(entity: str, assignments: tuple[str, ...], as_json: bool) -> None:
    """Create a record of ENTITY and print its id (--json: the record).

    Values are text, read like any input: `crm create opportunity name=Renewal amount="1200 EUR"`;
    `field=` leaves a field empty. The record is owned by the acting user (--as) unless
    `owner=USERNAME` or `owner=group:NAME` says otherwise.
    """
    values: dict[str, Any] = dict(parse_assignments(assignments))
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        owner = values.pop("owner", None)
        if owner:
            values.update(resolve_owner(uow, owner))
        record = uow.create(entity, values)
        uow.commit()
    if as_json:
        echo_json(dump_record(crm, record))
    else:
        click.echo(record.id)


@click.command()
@click.argument("entity")
@click.argument("record_id", metavar="ID")
@_JSON
def show(entity: str, record_id: str, as_json: bool) -> None:
    """Show a record of ENTITY (--json: as JSON)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        record = uow.get(entity, record_id)  # type: ignore[arg-type]  # text ids are checked there
        lines = None if as_json else _record_lines(crm, uow, record)
    if lines is None:
        echo_json(dump_record(crm, record))
    else:
        for line in lines:
            click.echo(line)


@click.command()
@click.argument("entity")
@click.argument("record_id", metavar="ID")
@click.argument("assignments", nargs=-1, metavar="FIELD=VALUE...")
@_JSON
def update(entity: str, record_id: str, assignments: tuple[str, ...], as_json: bool) -> None:
    """Change fields of a record; `field=` empties one."""
    values = parse_assignments(assignments)
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        before = uow.get(entity, record_id)  # type: ignore[arg-type]
        record = uow.update(before, data=values)
        uow.commit()
    if as_json:
        echo_json(dump_record(crm, record))
    elif record.version == before.version:
        click.echo(f"{entity} {record.id} unchanged (version {record.version})")
    else:
        click.echo(f"updated {entity} {record.id} (version {record.version})")


@click.command()
@click.argument("entity")
@click.argument("record_id", metavar="ID")
def delete(entity: str, record_id: str) -> None:
    """Delete a record (refused while others refer to it)."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        uow.delete(entity, record_id)  # type: ignore[arg-type]
        uow.commit()
    click.echo(f"deleted {entity} {record_id}")


@click.command()
@click.argument("entity")
@click.argument("record_id", metavar="ID")
@_JSON
def timeline(entity: str, record_id: str, as_json: bool) -> None:
    """A record's history, with the records around it, oldest first."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        uow.get(entity, record_id)  # type: ignore[arg-type]  # a missing record is an error
        entries = uow.timeline(entity, record_id)  # type: ignore[arg-type]
        if as_json:
            ids = {e.actor_id for e in entries if e.actor_id is not None}
            names = {u.id: u.username for u in uow.get_many("user", ids)} if ids else {}
            data = [
                {
                    "at": e.at.isoformat(),
                    "actor_id": e.actor_id,
                    "actor": "system" if e.actor_id is None else names.get(e.actor_id),
                    "action": e.action,
                    "entity": e.entity,
                    "id": e.record_id,
                    "changes": {k: list(v) for k, v in e.changes.items()},
                }
                for e in entries
            ]
            lines = None
        else:
            lines = timeline_lines(crm, uow, entries)
    if lines is None:
        echo_json(data)
    else:
        for line in lines:
            click.echo(line)


def _record_lines(crm: Crm, uow: UnitOfWork, record: Record) -> list[str]:
    """``label: value`` lines, aligned; references show the title of the record they name.
    Fields hidden from the actor are left out."""
    entity = crm.registry.entity(record.entity)
    system = {f.name: f for f in SYSTEM_FIELDS}
    hidden = uow.hidden_fields(entity.name)  # left out, not shown empty as if they had no value
    fields = [system["id"], *(f for f in entity.fields if f.name not in hidden), system["version"], system["created_at"],
              system["created_by"], system["updated_at"], system["updated_by"]]
    titles = _reference_titles(crm, uow, record, fields)
    rows = []
    for field in fields:
        value = record.values.get(field.name)
        text = "" if value is None else field.type.format(value)
        if field.is_reference and value is not None:
            title = titles.get((field.type.entity, value))  # type: ignore[attr-defined]
            text = f"{value} ({title})" if title else str(value)
        if field.name in ("created_by", "updated_by") and value is None:
            text = "system"
        rows.append((field.label, text))
    width = max(len(label) for label, _ in rows) + 1
    return [f"{label + ':':<{width}} {text.replace(chr(10), chr(10) + ' ' * (width + 1))}".rstrip() for label, text in rows]


def _reference_titles(crm: Crm, uow: UnitOfWork, record: Record, fields: Sequence[Any]) -> dict[tuple[str, int], str]:
    wanted: dict[str, set[int]] = {}
    for field in fields:
        value = record.values.get(field.name)
        if field.is_reference and value is not None:
            wanted.setdefault(field.type.entity, set()).add(value)
    titles: dict[tuple[str, int], str] = {}
    for target, ids in wanted.items():
        title_field = crm.registry.entity(target).title_field
        for other in uow.get_many(target, ids):
            title = other.get(title_field)
            if title not in (None, ""):
                titles[target, other.id] = str(title)
    return titles


# -- demo ---------------------------------------------------------------------------------------


@click.command()
@click.option("--db", "path", default="crm-demo.db", show_default=True, metavar="PATH",
              help="The SQLite file to create (an existing demo file is replaced).")
@click.option("--plugin", "extra_plugins", multiple=True, metavar="NAME",
              help="Also enable this installed plugin (repeatable).")
def demo(path: str, extra_plugins: tuple[str, ...]) -> None:
    """Build a sample company in a fresh SQLite file and summarise it."""
    from crmcore import demo as demo_module

    state = cli_state()
    demo_module.run(path, settings=state.config_path, plugins=extra_plugins, plugin_objects=state.plugins,
                    echo=click.echo)
