"""``crm user``, ``crm group`` and ``crm access explain``: users, groups and "why?" on the
command line, contributed through ``crm_cli_commands`` like a plugin's commands.

In open mode (no ``[security]`` section) ``crm user add`` and ``crm access explain`` say so in
one line on stderr, :data:`~crmcore.security.model.OPEN_MODE_NOTICE`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from crmcore import security as admin
from crmcore.cli import current_actor, current_app, echo_json
from crmcore.hookspecs import hookimpl
from crmcore.plugins import PluginInfo
from crmcore.security import OPEN_MODE_NOTICE, READ_PROFILE

if TYPE_CHECKING:
    from crmcore import Crm

PLUGIN = PluginInfo(name="core.access", title="Access commands", description="crm user, crm group, crm access.")

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


@hookimpl
def crm_cli_commands() -> list[click.Command]:
    return [user, group, access]


def _note_open_mode(crm: Crm) -> None:
    if crm.access.model.open:
        click.echo(f"note: {OPEN_MODE_NOTICE}", err=True)


def _without_roles(crm: Crm) -> str:
    """What a user who holds no role may do, in a few words."""
    model = crm.access.model
    if model.open:
        return "open mode: may do everything"
    if model.no_role_profile == READ_PROFILE.name:
        return "sees only public records"
    return f"profile {model.no_role_profile!r}"


@click.group("user")
def user() -> None:
    """Manage users and the roles they hold."""


@user.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, metavar="ROLE", help="A role the user holds (repeatable).")
@click.option("--group", "groups", multiple=True, metavar="GROUP", help="A group the user belongs to (repeatable).")
@click.option("--full-name", default=None, help="The user's full name.")
@click.option("--email", default=None, help="The user's e-mail address.")
def user_add(username: str, roles: tuple[str, ...], groups: tuple[str, ...], full_name: str | None, email: str | None) -> None:
    """Create user USERNAME with its roles and groups."""
    crm = current_app()
    _note_open_mode(crm)
    with crm.unit_of_work(current_actor()) as uow:
        record = admin.add_user(uow, username, roles=roles, groups=groups, full_name=full_name, email=email)
        uow.commit()
    held = f" with roles {', '.join(roles)}" if roles else f" without roles ({_without_roles(crm)})"
    click.echo(f"user {username} created (id {record.id}){held}")


@user.command("roles")
@click.argument("username")
@click.option("--add", "added", multiple=True, metavar="ROLE", help="Give the user this role (repeatable).")
@click.option("--remove", "removed", multiple=True, metavar="ROLE", help="Take this role away (repeatable).")
def user_roles(username: str, added: tuple[str, ...], removed: tuple[str, ...]) -> None:
    """Change the roles USERNAME holds; effective on the next query."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        record = admin.find_by_name(uow, "user", username, field="username")
        admin.assign_roles(uow, record, added)
        admin.remove_roles(uow, record, removed)
        held = admin.user_roles(uow, record)
        uow.commit()
    click.echo(f"{username} holds: {', '.join(held) or 'no role'}")


@user.command("list")
@_JSON
def user_list(as_json: bool) -> None:
    """List users with their roles and groups."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        rows = [
            {"id": u.id, "username": u.username, "full_name": u.get("full_name"), "active": u.get("active"),
             "roles": admin.user_roles(uow, u), "groups": admin.user_groups(uow, u)}
            for u in uow.query("user").order_by("username")
        ]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no users; add one with 'crm user add USERNAME --role ROLE'")
        return
    width = max(len(r["username"]) for r in rows)
    for r in rows:
        click.echo(f"{r['username']:<{width}}  roles: {', '.join(r['roles']) or '-'}  groups: {', '.join(r['groups']) or '-'}")


@click.group("group")
def group() -> None:
    """Manage groups of users, roles and role trees."""


@group.command("add")
@click.argument("name")
@click.option("--member", "members", multiple=True, metavar="user:NAME|role:NAME|role-tree:NAME",
              help="A member (repeatable). role-tree: the role and every role below it.")
@click.option("--description", default=None, help="What the group is for.")
def group_add(name: str, members: tuple[str, ...], description: str | None) -> None:
    """Create group NAME, or add members to it if it exists."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        exists = uow.select("group", fields=("id",)).where(name=name).exists()
        if exists:
            admin.add_group_members(uow, name, members)
        else:
            admin.add_group(uow, name, members=members, description=description)
        listed = admin.group_members(uow, name)
        uow.commit()
    click.echo(f"group {name} {'updated' if exists else 'created'}; members: {', '.join(listed) or 'none'}")


@group.command("list")
@_JSON
def group_list(as_json: bool) -> None:
    """List groups with their members."""
    crm = current_app()
    with crm.unit_of_work(current_actor()) as uow:
        rows = [{"name": g.name, "members": admin.group_members(uow, g.name)} for g in uow.query("group").order_by("name")]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']}: {', '.join(r['members']) or 'no members'}")
    if not rows:
        click.echo("no groups; add one with 'crm group add NAME --member user:NAME'")


@click.group("access")
def access() -> None:
    """Ask why a user may or may not act on a record."""


@access.command("explain")
@click.argument("username")
@click.argument("entity")
@click.argument("record_id", type=int)
@click.option("--action", default="read", show_default=True, help="read, update, delete, or a plugin action.")
@_JSON
def access_explain(username: str, entity: str, record_id: int, action: str, as_json: bool) -> None:
    """Explain whether USERNAME may ACTION record ID of ENTITY, and by which rules.

    Explaining another user's access, or a record you cannot read, needs the security.explain
    privilege (an administrator's); acting as the system actor (no --as) explains anything.
    """
    crm = current_app()
    _note_open_mode(crm)
    decision = admin.explain_access(crm, current_actor(), username, entity, record_id, action)
    if as_json:
        echo_json({"allowed": decision.allowed, "chain": list(decision.chain), "open_mode": crm.access.model.open})
        return
    verdict = "may" if decision.allowed else "may not"
    click.echo(f"{username} {verdict} {action} {entity} {record_id}")
    for step in decision.chain:
        click.echo(f"  - {step}")
