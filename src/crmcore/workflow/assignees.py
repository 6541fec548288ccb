"""Whom a rule's action addresses: assignees resolved to users or a group.

An assignee is ``owner`` (the record's owner), ``owner_manager`` (the first user found going up
the owner's role tree: the next role up that has a user), ``role:NAME`` (the users holding the
role), ``group:NAME`` (the group: it owns an activity; its members take part or are notified)
or ``user:USERNAME``. Names are read as the system would (rules are the deployment's
automation). :mod:`crmcore.workflow.actions` uses them and offers them under its own name too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from crmcore.errors import NotFoundError
from crmcore.records import Record

if TYPE_CHECKING:
    from crmcore.storage.uow import UnitOfWork

__all__ = ["Assignees", "manager_of", "resolve_assignee"]


@attrs.frozen
class Assignees:
    """Whom an assignee names: users (first the one to assign), or a group ``(id, name)``."""

    user_ids: tuple[int, ...] = ()
    group: tuple[int, str] | None = None

    @property
    def first(self) -> int | None:
        return self.user_ids[0] if self.user_ids else None


def resolve_assignee(uow: UnitOfWork, spec: str, record: Record, *, rule: str = "") -> Assignees:
    """Resolve an assignee (see the module docs) for *record*, reading as the system would.

    :raises NotFoundError: for a role, group or user that does not exist, naming the rule.
    """
    if spec == "owner":
        owner = record.get("owner_id")
        if owner is not None:
            return Assignees((owner,))
        group_id = record.get("owner_group_id")
        if group_id is not None:
            return _group(uow, group_id, None, rule)
        return Assignees()
    if spec == "owner_manager":
        owner = record.get("owner_id")
        manager = manager_of(uow, owner) if owner is not None else None
        return Assignees((manager,) if manager is not None else ())
    kind, _, name = spec.partition(":")
    found = _named(uow, kind if kind in ("user", "role") else "group", name, spec, rule)
    if kind == "user":
        return Assignees((found,))
    if kind == "role":
        return Assignees(tuple(_holders(uow, [found]).get(found, ())))
    return _group(uow, found, name, rule)


#: What to do when a rule names a user, role or group that does not exist.
_REMEDIES = {"user": "add the user", "role": "create the role", "group": "create the group"}


def _named(uow: UnitOfWork, entity: str, name: str, spec: str, rule: str) -> int:
    """The id of the user (by username), role or group (by name) *name* of assignee *spec*.

    :raises NotFoundError: when there is none, naming the rule and what to do.
    """
    table = uow.registry.table(entity)
    column = table.c.username if entity == "user" else table.c.name
    row = uow.connection.execute(sa.select(table.c.id).where(column == name)).first()
    if row is None:
        raise NotFoundError(f"rule {rule!r}: no {entity} named {name!r} (assignee {spec!r}); "
                            f"{_REMEDIES[entity]} or change the rule", entity=entity, id=name)
    return int(row[0])


def _holders(uow: UnitOfWork, role_ids: Sequence[int]) -> dict[int, list[int]]:
    """``{role id: [ids of the active users holding it]}`` (ordered by user id)."""
    assignment = uow.registry.table("role_assignment")
    user = uow.registry.table("user")
    rows = uow.connection.execute(
        sa.select(assignment.c.role_id, assignment.c.user_id)
        .join(user, user.c.id == assignment.c.user_id)
        .where(assignment.c.role_id.in_(list(role_ids)), sa.or_(user.c.active.is_(None), user.c.active == sa.true()))
        .order_by(assignment.c.user_id)
    )
    found: dict[int, list[int]] = {}
    for role_id, user_id in rows:
        found.setdefault(role_id, []).append(user_id)
    return found


def manager_of(uow: UnitOfWork, user_id: int) -> int | None:
    """The user's manager: going up from the user's roles one level at a time, the first
    active user (lowest id) holding a role there, the user excepted. Roles without users are
    skipped; ``None`` when nobody is found up to the top of the tree."""
    assignment = uow.registry.table("role_assignment")
    role = uow.registry.table("role")
    connection = uow.connection
    own = {r[0] for r in connection.execute(sa.select(assignment.c.role_id).where(assignment.c.user_id == user_id))}
    if not own:
        return None
    parents = dict(connection.execute(sa.select(role.c.id, role.c.parent_id)).all())
    seen = set(own)
    level = own
    while level:
        level = {parents[r] for r in level if parents.get(r) is not None} - seen
        if not level:
            return None
        seen |= level
        holders = _holders(uow, sorted(level))
        candidates = sorted(u for r in level for u in holders.get(r, ()) if u != user_id)
        if candidates:
            return candidates[0]
    return None


def _group(uow: UnitOfWork, group_id: int, name: str | None, rule: str) -> Assignees:
    """A group and its users: user members, holders of member roles and of roles below
    member role trees."""
    registry = uow.registry
    connection = uow.connection
    group = registry.table("group")
    if name is None:
        name = connection.execute(sa.select(group.c.name).where(group.c.id == group_id)).scalar() or str(group_id)
    member = registry.table("group_member")
    users: set[int] = set()
    roles: set[int] = set()
    trees: set[int] = set()
    for user_id, role_id, subordinates in connection.execute(
        sa.select(member.c.user_id, member.c.role_id, member.c.subordinates).where(member.c.group_id == group_id)
    ):
        if user_id is not None:
            users.add(user_id)
        elif role_id is not None:
            (trees if subordinates else roles).add(role_id)
    if trees:
        role = registry.table("role")
        children: dict[int, list[int]] = {}
        for role_id, parent_id in connection.execute(sa.select(role.c.id, role.c.parent_id)):
            if parent_id is not None:
                children.setdefault(parent_id, []).append(role_id)
        todo = list(trees)
        while todo:
            current = todo.pop()
            if current not in roles:
                roles.add(current)
                todo.extend(children.get(current, ()))
    if roles:
        for holders in _holders(uow, sorted(roles)).values():
            users.update(holders)
    return Assignees(tuple(sorted(users)), (group_id, name))
