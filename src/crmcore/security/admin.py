"""Managing users, role assignments and groups from Python (the CLI calls these too).

Users, role assignments and groups are data: every change goes through the unit of work, so it
is validated, versioned and audited, and takes effect on the next query.

Example::

    with crm.unit_of_work() as uow:
        add_user(uow, "rep1", roles=["sales_rep"], groups=["support"])
        add_group(uow, "emea", members=["user:rep1", "role-tree:sales_manager"])
        set_role_parent(uow, "sales_rep", "vp_sales")
        uow.commit()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.errors import NotFoundError, PermissionDeniedError, ValidationError
from crmcore.records import Record
from crmcore.security.model import EXPLAIN_ACTION
from crmcore.storage import internal

if TYPE_CHECKING:
    from crmcore.app import Crm
    from crmcore.security.access import Decision
    from crmcore.storage.uow import UnitOfWork

__all__ = [
    "acting_user",
    "add_group",
    "add_group_members",
    "add_user",
    "assign_roles",
    "explain_access",
    "find_by_name",
    "group_members",
    "remove_roles",
    "resolve_owner",
    "set_role_parent",
    "user_groups",
    "user_roles",
]


def find_by_name(uow: UnitOfWork, entity: str, name: str, *, field: str = "name") -> Record:
    """The record of *entity* whose *field* is *name*.

    :raises NotFoundError: naming the entity and the value, and listing a few known ones.
    """
    table = uow.registry.table(entity)
    row = uow.connection.execute(sa.select(table.c.id).where(table.c[field] == name)).first()
    if row is None:
        known = [r[0] for r in uow.connection.execute(sa.select(table.c[field]).order_by(table.c[field]).limit(20))]
        hint = f"; known: {', '.join(known)}" if known else f"; there is no {entity} yet"
        raise NotFoundError(f"no {entity} named {name!r}{hint}", entity=entity, id=name)
    # names resolve for every actor (to give a record an owner, say); what may be done with
    # the record is checked by the write that uses it
    return internal.select_one(uow, uow.registry.entity(entity), row[0])


def add_user(
    uow: UnitOfWork, username: str, *, roles: Sequence[str] = (), groups: Sequence[str] = (), **fields: Any
) -> Record:
    """Create a user holding *roles* and belonging to *groups* (all by name)."""
    user = uow.create("user", username=username, **fields)
    assign_roles(uow, user, roles)
    for group in groups:
        add_group_members(uow, group, [f"user:{username}"])
    return user


def assign_roles(uow: UnitOfWork, user: Record, roles: Iterable[str]) -> list[str]:
    """Give *user* the roles named *roles* it does not hold yet; returns those added."""
    held = set(user_roles(uow, user))
    added = []
    for name in roles:
        if name in held:
            continue
        role = find_by_name(uow, "role", name)
        uow.create("role_assignment", user_id=user.id, role_id=role.id)
        held.add(name)
        added.append(name)
    return added


def remove_roles(uow: UnitOfWork, user: Record, roles: Iterable[str]) -> list[str]:
    """Take the roles named *roles* from *user*; returns those removed."""
    table = uow.registry.table("role_assignment")
    removed = []
    for name in roles:
        role = find_by_name(uow, "role", name)
        row = uow.connection.execute(
            sa.select(table.c.id).where(table.c.user_id == user.id, table.c.role_id == role.id)
        ).first()
        if row is not None:
            uow.delete("role_assignment", row[0])
            removed.append(name)
    return removed


def user_roles(uow: UnitOfWork, user: Record) -> list[str]:
    """The names of the roles *user* holds, sorted."""
    assignment = uow.registry.table("role_assignment")
    role = uow.registry.table("role")
    statement = (
        sa.select(role.c.name).join(assignment, assignment.c.role_id == role.c.id)
        .where(assignment.c.user_id == user.id).order_by(role.c.name)
    )
    return [r[0] for r in uow.connection.execute(statement)]


def user_groups(uow: UnitOfWork, user: Record) -> list[str]:
    """The names of the groups *user* belongs to directly, sorted."""
    member = uow.registry.table("group_member")
    group = uow.registry.table("group")
    statement = (
        sa.select(group.c.name).join(member, member.c.group_id == group.c.id)
        .where(member.c.user_id == user.id).order_by(group.c.name)
    )
    return [r[0] for r in uow.connection.execute(statement)]


def _member_values(uow: UnitOfWork, text: str) -> dict[str, Any]:
    kind, sep, name = text.partition(":")
    if not sep or kind not in ("user", "role", "role-tree") or not name:
        raise ValidationError(
            {"member": [f"expected 'user:NAME', 'role:NAME' or 'role-tree:NAME', got {text!r}"]}, entity="group_member"
        )
    if kind == "user":
        return {"user_id": find_by_name(uow, "user", name, field="username").id}
    return {"role_id": find_by_name(uow, "role", name).id, "subordinates": kind == "role-tree"}


def add_group(uow: UnitOfWork, name: str, *, members: Sequence[str] = (), description: str | None = None) -> Record:
    """Create a group with *members* (``user:NAME``, ``role:NAME``, ``role-tree:NAME``)."""
    group = uow.create("group", name=name, description=description)
    add_group_members(uow, name, members)
    return group


def add_group_members(uow: UnitOfWork, group: str, members: Iterable[str]) -> None:
    """Add *members* to the group named *group* (members already in it are left alone)."""
    record = find_by_name(uow, "group", group)
    present = set(group_members(uow, group))
    for text in members:
        if text in present:
            continue
        uow.create("group_member", group_id=record.id, **_member_values(uow, text))
        present.add(text)


def group_members(uow: UnitOfWork, group: str) -> list[str]:
    """The members of the group named *group*, as ``user:NAME`` / ``role:NAME`` / ``role-tree:NAME``."""
    record = find_by_name(uow, "group", group)
    member = uow.registry.table("group_member")
    user = uow.registry.table("user")
    role = uow.registry.table("role")
    rows = uow.connection.execute(
        sa.select(member.c.subordinates, user.c.username, role.c.name)
        .select_from(member.outerjoin(user, user.c.id == member.c.user_id).outerjoin(role, role.c.id == member.c.role_id))
        .where(member.c.group_id == record.id).order_by(member.c.id)
    )
    found = []
    for subordinates, username, role_name in rows:
        if username is not None:
            found.append(f"user:{username}")
        else:
            found.append(f"{'role-tree' if subordinates else 'role'}:{role_name}")
    return found


def set_role_parent(uow: UnitOfWork, role: str, parent: str | None) -> Record:
    """Move the role named *role* under *parent* (``None``: to the top of the tree)."""
    record = find_by_name(uow, "role", role)
    parent_id = None if parent is None else find_by_name(uow, "role", parent).id
    return uow.update(record, parent_id=parent_id)


def resolve_owner(uow: UnitOfWork, text: str) -> dict[str, Any]:
    """Turn ``USERNAME`` or ``group:NAME`` (the CLI's ``owner=``) into owner fields."""
    if text.startswith("group:"):
        return {"owner_group_id": find_by_name(uow, "group", text[len("group:"):]).id}
    name = text[len("user:"):] if text.startswith("user:") else text
    return {"owner_id": find_by_name(uow, "user", name, field="username").id}


def acting_user(crm: Crm, username: str) -> Actor:
    """The actor of the active user *username*, for acting as it (``crm --as USERNAME``).

    :raises NotFoundError: when there is no such user.
    :raises PermissionDeniedError: when the user is deactivated (``active`` is false).
    """
    return crm.actor(username)


def explain_access(crm: Crm, caller: Actor, username: str, entity: str, record_id: int, action: str = "read") -> Decision:
    """Whether the user *username* may *action* record *record_id* of *entity*, explained to
    *caller* (``crm access explain``).

    The system actor may explain anything. Other callers may explain their own access to the
    records they can read; explaining another user's access, or a record the caller cannot
    read, needs the ``security.explain`` privilege on *entity* (an administrator's). Without it,
    a record the caller cannot read is reported exactly like a missing one.

    :raises PermissionDeniedError: when *caller* asks about another user without the privilege.
    :raises NotFoundError: for an unknown user, entity type or record (or an unreadable record).
    """
    crm.registry.entity(entity)  # an unknown entity type is named before anything else
    own = not caller.is_system and username == caller.username
    with crm.unit_of_work(caller) as uow:
        if not caller.is_system and not uow.can(entity, EXPLAIN_ACTION):
            if not own:
                raise PermissionDeniedError(
                    f"{caller.username} may not explain the access of {username!r} to {entity} records: that needs "
                    f"the {EXPLAIN_ACTION} privilege (an administrator's); explain your own access with "
                    f"'crm --as {caller.username} access explain {caller.username} {entity} ID'",
                    reasons=[f"no profile of {caller.username} grants {EXPLAIN_ACTION} on {entity}"],
                )
            uow.get(entity, record_id)  # unreadable or missing: the same NotFoundError
    return crm.explain(caller if own else username, entity, record_id, action)
