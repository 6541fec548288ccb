"""Roles, groups and their members as data; group ownership of records; checks on them.

Declared through the same hooks as any plugin: the entity types ``role``, ``group``,
``role_assignment`` (a user holds a role) and ``group_member`` (a user, a role, or a role with
its subordinates belongs to a group), and an ``owner_group_id`` field on every ownable entity.
"""

from __future__ import annotations

from typing import Any

from crmcore import EntityType
from crmcore.errors import ValidationError
from crmcore.fields import Boolean, Field, Json, Reference, String, Text
from crmcore.hookspecs import hookimpl
from crmcore.plugins import PluginInfo
from crmcore.security import ADMIN_ACTIONS

PLUGIN = PluginInfo(
    name="core.permissions",
    title="Permissions",
    sections=("security",),
    description="Profiles, hierarchical roles, groups, sharing defaults and rules, field access.",
)

ROLE = EntityType(
    "role",
    fields=(
        Field("name", String(64), required=True, unique=True),
        Field("label", String(200)),
        Field("parent_id", Reference("role", on_delete="restrict"), label="Parent role",
              help="The role above; its holders see (and may edit) what this role's holders own."),
        Field("profiles", Json(), help='Names of the profiles the role carries, e.g. ["sales_rep"].'),
    ),
    referable_by_all=True,
    help="A place in the role tree (CEO, VP Sales, Sales Rep...). Users hold one or more.",
)

GROUP = EntityType(
    "group",
    fields=(Field("name", String(64), required=True, unique=True), Field("description", Text())),
    referable_by_all=True,
    help="A set of users, roles and role trees; a group can own records.",
)

ROLE_ASSIGNMENT = EntityType(
    "role_assignment",
    fields=(
        Field("user_id", Reference("user", on_delete="cascade"), required=True, label="User"),
        Field("role_id", Reference("role", on_delete="cascade"), required=True, label="Role"),
    ),
    help="A user holds a role.",
)

GROUP_MEMBER = EntityType(
    "group_member",
    fields=(
        Field("group_id", Reference("group", on_delete="cascade"), required=True, label="Group"),
        Field("user_id", Reference("user", on_delete="cascade"), label="User"),
        Field("role_id", Reference("role", on_delete="cascade"), label="Role"),
        Field("subordinates", Boolean(), default=False, help="With a role: include every role below it."),
    ),
    help="A member of a group: a user, a role, or a role with its subordinates.",
)


@hookimpl
def crm_entity_types() -> list[EntityType]:
    return [ROLE, GROUP, ROLE_ASSIGNMENT, GROUP_MEMBER]


@hookimpl
def crm_permissions() -> list[str]:
    """The administrator's privileges: ``security.explain`` (explain another user's access, or a
    record one cannot read) and ``security.keep_ids`` (import keeping the file's ids)."""
    return list(ADMIN_ACTIONS)


@hookimpl
def crm_entity_fields(entity: EntityType) -> list[Field] | None:
    if entity.ownable:
        return [Field("owner_group_id", Reference("group", on_delete="restrict"), label="Owner group", index=True,
                      help="A group owning the record; its members have full access.")]
    return None


def _check_member(values: dict[str, Any]) -> None:
    if (values.get("user_id") is None) == (values.get("role_id") is None):
        raise ValidationError("a group member is either a user (user_id) or a role (role_id), not both or neither", entity="group_member")
    if values.get("subordinates") and values.get("role_id") is None:
        raise ValidationError({"subordinates": ["only a role member can include subordinates"]}, entity="group_member")


def _check_profiles(uow: Any, values: dict[str, Any]) -> None:
    profiles = values.get("profiles")
    if profiles is None:
        return
    known = uow.crm.access.model.profiles
    if not isinstance(profiles, list) or not all(isinstance(p, str) for p in profiles):
        raise ValidationError({"profiles": [f"expected a list of profile names, got {profiles!r}"]}, entity="role")
    unknown = [p for p in profiles if p not in known]
    if unknown:
        raise ValidationError({"profiles": [f"unknown profile {unknown[0]!r}; declared: {', '.join(sorted(known))}"]}, entity="role")


@hookimpl
def crm_before_create(uow: Any, entity: str, items: list[dict[str, Any]]) -> None:
    for values in items:
        if entity == "group_member":
            _check_member(values)
        elif entity == "role":
            _check_profiles(uow, values)


@hookimpl
def crm_before_update(uow: Any, entity: str, items: list[tuple[Any, dict[str, Any]]]) -> None:
    for record, changes in items:
        if entity == "group_member":
            _check_member(record.merged(changes))
        elif entity == "role":
            _check_profiles(uow, changes)
            if "parent_id" in changes and changes["parent_id"] is not None:
                _check_role_parent(uow, record.id, changes["parent_id"])


def _check_role_parent(uow: Any, role_id: int, parent_id: int) -> None:
    with uow.system_scope("a role's new parent is checked against the whole role tree") as system:
        parents = {row["id"]: row["parent_id"] for row in system.select("role", fields=("id", "parent_id")).all()}
    current: int | None = parent_id
    while current is not None:
        if current == role_id:
            raise ValidationError({"parent_id": [f"role {parent_id} is below role {role_id}; the role tree cannot form a cycle"]}, entity="role")
        current = parents.get(current)


@hookimpl
def crm_seed(crm: Any, uow: Any) -> list[str]:
    """Create the roles and groups declared in settings that the database lacks."""
    model = crm.access.model
    done: list[str] = []
    existing = {row["name"]: row["id"] for row in uow.select("role", fields=("id", "name")).all()}
    for decl in model.roles:
        if decl.name not in existing:
            existing[decl.name] = uow.create("role", name=decl.name, label=decl.label or None, profiles=list(decl.profiles)).id
            done.append(f"role {decl.name} created")
    for decl in model.roles:
        if decl.parent is not None:
            record = uow.get("role", existing[decl.name])
            if record.parent_id is None:
                uow.update(record, parent_id=existing[decl.parent])
    groups = {row["name"] for row in uow.select("group", fields=("name",)).all()}
    for name, description in model.groups.items():
        if name not in groups:
            uow.create("group", name=name, description=description or None)
            done.append(f"group {name} created")
    return done
