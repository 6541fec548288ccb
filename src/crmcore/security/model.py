"""The declared part of the permission model: profiles, roles, sharing defaults, sharing rules.

These are declared in the ``[security]`` table of ``crm.toml``, in Python
(``create_app(security={...})``, same shape) and by plugins (``crm_profiles``,
``crm_sharing_rules``). Users, their role assignments and groups are data in the database;
declared roles are created there when the schema is upgraded, and may then be rearranged at run
time. The model is checked at start-up: a rule naming an unknown role, group, entity or field
stops start-up with its name.

Without a ``[security]`` section (and without plugin profiles or sharing rules) an app runs in
*open mode* (:attr:`SecurityModel.open`): every user may do everything. Once configured, two
profiles are builtin: ``read_only`` (reads what sharing makes readable; the profile of users who
hold no role unless ``no_role_profile`` names another) and ``standard`` (every core action on
every entity type but users, roles and groups, which it reads). An administrator's profile
grants :data:`ADMIN_ACTIONS`.

Example::

    [security]
    no_role_profile = "read_only"            # the profile of users who hold no role

    [security.profiles.sales_rep]
    privileges = { lead = "all", opportunity = ["create", "read", "update"], account = ["read"] }
    fields = { opportunity = { amount = "read_only" } }

    [security.profiles.intern]
    privileges = { "*" = ["read"] }
    fields = { opportunity = { amount = "hidden" } }

    [security.profiles.admin]                # an administrator: explains anyone's access
    privileges = { "*" = ["all", "security.explain"] }
    modify_all = true

    [security.roles]
    ceo = { profiles = ["admin"] }
    sales_manager = { parent = "ceo", profiles = ["sales_rep"] }
    sales_rep = { parent = "sales_manager", profiles = ["sales_rep"] }

    [security.entities.lead]
    sharing = "private"                       # private | public_read | public_read_write | public_full
    hierarchy = "read_write"                  # none | read | read_write

    [security.groups.support]
    description = "Support agents"

    [[security.rules]]
    name = "support reads accounts of the sales team"
    entity = "account"
    owned_by = "role-tree:sales_manager"      # role:NAME | role-tree:NAME | group:NAME
    shared_with = "group:support"
    access = "read"                           # read | read_write
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from crmcore.errors import ConfigError

__all__ = [
    "ACCESS_LEVELS",
    "ADMIN_ACTIONS",
    "CORE_ACTIONS",
    "EXPLAIN",
    "EXPLAIN_ACTION",
    "FIELD_LEVELS",
    "KEEP_IDS_ACTION",
    "OPEN_MODE_NOTICE",
    "Party",
    "Profile",
    "RoleDecl",
    "SECURITY_ENTITIES",
    "SecurityModel",
    "SharingRule",
    "parse_security",
    "standard_profile",
]

CORE_ACTIONS = ("create", "read", "update", "delete", "import", "export")
#: Explain another user's access to records of an entity, or access to a record the actor
#: cannot read (``crm access explain``): an administrator's privilege.
EXPLAIN_ACTION = "security.explain"
#: Import records of an entity keeping the ids of the file (``crm import --keep-ids``): an
#: administrator's privilege.
KEEP_IDS_ACTION = "security.keep_ids"
#: The privileges that make a profile an administrator's; ``"all"`` does not grant them, a
#: profile names them (``privileges = { "*" = ["all", "security.explain", "security.keep_ids"] }``).
ADMIN_ACTIONS = (EXPLAIN_ACTION, KEEP_IDS_ACTION)
#: Entity types that hold the permission model itself: the builtin ``standard`` profile may only
#: read them, so a standard user cannot give itself a role or change another user.
SECURITY_ENTITIES = ("user", "role", "group", "role_assignment", "group_member")
#: One line saying what open mode is and how to leave it (``crm access explain``, ``crm user add``).
OPEN_MODE_NOTICE = (
    "open mode: the settings have no [security] section, so every user may read, change and delete "
    "every record and explain anyone's access; add a [security] section to turn it off "
    "('crm init' writes one with an administrator profile, a standard user profile and private "
    "leads and opportunities)"
)
#: The same privilege under the name :meth:`UnitOfWork.explain` documents.
EXPLAIN = EXPLAIN_ACTION
#: Record access levels, weakest first.
ACCESS_LEVELS = ("none", "read", "read_write", "full")
SHARING_DEFAULTS = {"private": "none", "public_read": "read", "public_read_write": "read_write", "public_full": "full"}
HIERARCHY_LEVELS = ("none", "read", "read_write")
#: Field access levels, weakest first.
FIELD_LEVELS = ("hidden", "read_only", "read_write")


def level_rank(level: str) -> int:
    return ACCESS_LEVELS.index(level)


def needed_level(action: str) -> str:
    """The record access an action needs: reading needs read, deleting needs full access."""
    if action in ("read", "export"):
        return "read"
    if action == "delete":
        return "full"
    return "read_write"


@attrs.frozen
class Profile:
    """A named set of privileges per entity type and action, plus field access.

    :param privileges: ``{entity or "*": frozenset of actions}``; ``"all"`` in settings means
        every core action.
    :param fields: ``{entity: {field: "hidden" | "read_only" | "read_write"}}``.
    :param view_all: read every record of the entities it may read, whatever the sharing.
    :param modify_all: read, update and delete every record of the entities it may act on.
    """

    name: str
    privileges: Mapping[str, frozenset[str]] = attrs.field(factory=dict)
    fields: Mapping[str, Mapping[str, str]] = attrs.field(factory=dict)
    view_all: bool = False
    modify_all: bool = False
    label: str = ""

    def allows(self, entity: str, action: str) -> bool:
        """``"all"`` grants every core action; plugin actions are granted by name."""
        for key in (entity, "*"):
            actions = self.privileges.get(key)
            if actions and (action in actions or ("all" in actions and action in CORE_ACTIONS)):
                return True
        return False


@attrs.frozen
class RoleDecl:
    """A role declared in settings: created in the database on upgrade."""

    name: str
    parent: str | None = None
    profiles: tuple[str, ...] = ()
    label: str = ""


@attrs.frozen
class Party:
    """Who a sharing rule is about: ``role:NAME``, ``role-tree:NAME`` (the role and every role
    below it) or ``group:NAME``."""

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str, *, where: str) -> Party:
        kind, sep, name = text.partition(":")
        if not sep or kind not in ("role", "role-tree", "group") or not name:
            raise ConfigError(f"{where}: expected 'role:NAME', 'role-tree:NAME' or 'group:NAME', got {text!r}", key=where)
        return cls(kind, name)

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@attrs.frozen
class SharingRule:
    """Records of *entity* owned by *owned_by* are shared with *shared_with* at *access*."""

    name: str
    entity: str
    owned_by: Party
    shared_with: Party
    access: str = "read"


@attrs.frozen
class EntityPolicy:
    """Sharing default and role-hierarchy access of one entity type."""

    sharing: str = "public_read_write"
    hierarchy: str = "read_write"

    @property
    def default_level(self) -> str:
        return SHARING_DEFAULTS[self.sharing]


@attrs.frozen
class SecurityModel:
    """Everything declared about permissions in one app, checked and frozen."""

    profiles: Mapping[str, Profile] = attrs.field(factory=dict)
    roles: tuple[RoleDecl, ...] = ()
    groups: Mapping[str, str] = attrs.field(factory=dict)
    policies: Mapping[str, EntityPolicy] = attrs.field(factory=dict)
    default_policy: EntityPolicy = EntityPolicy()
    rules: tuple[SharingRule, ...] = ()
    no_role_profile: str | None = None
    configured: bool = False
    actions: frozenset[str] = frozenset((*CORE_ACTIONS, *ADMIN_ACTIONS))

    @property
    def open(self) -> bool:
        """Open mode: no ``[security]`` section (and no plugin profiles or sharing rules), so
        every user may do everything (:data:`OPEN_MODE_NOTICE` says it in one line)."""
        return not self.configured

    def policy(self, entity: str) -> EntityPolicy:
        return self.policies.get(entity, self.default_policy)


#: The profile of every user when no [security] is configured: everything, everywhere.
OPEN_PROFILE = Profile("standard", privileges={"*": frozenset({"all", EXPLAIN})}, label="Standard (no [security] configured)")
#: The default profile of users without roles once [security] is configured: they read
#: what sharing makes public, and nothing else.
READ_PROFILE = Profile("read_only", privileges={"*": frozenset({"read"})}, label="Read only")


def standard_profile(entities: Iterable[str]) -> Profile:
    """The builtin ``standard`` profile once [security] is configured: every core action on every
    entity type but those of :data:`SECURITY_ENTITIES`, which it may only read. Sharing decides
    which records: with the defaults ``crm init`` writes, a standard user reads public records
    and edits its own."""
    privileges = {e: frozenset({"read"} if e in SECURITY_ENTITIES else {"all"}) for e in entities}
    return Profile("standard", privileges=privileges, label="Standard user")


_SECURITY_KEYS = {"no_role_profile", "profiles", "roles", "groups", "entities", "rules", "default_sharing", "default_hierarchy"}


def _require(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        names = {str: "text", list: "a list", dict: "a table", bool: "true or false"}
        expected = " or ".join(names.get(k, k.__name__) for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ConfigError(f"{where} must be {expected}, got {value!r}", key=where)
    return value


def _check_keys(table: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    known = set(known)
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"unknown key {where}.{key} = {value!r}; known keys: {', '.join(sorted(known))}", key=f"{where}.{key}")


def parse_security(
    table: Mapping[str, Any] | None,
    *,
    entities: Mapping[str, Iterable[str]],
    ownable: Iterable[str],
    extra_profiles: Iterable[Profile] = (),
    extra_rules: Iterable[SharingRule] = (),
    extra_actions: Iterable[str] = (),
) -> SecurityModel:
    """Check and freeze the ``[security]`` table against the registry.

    :param entities: ``{entity name: field names}`` of the frozen registry.
    :param ownable: names of ownable entity types (sharing applies to them).
    :raises ConfigError: naming the key and the unknown role, group, entity or field.
    """
    actions = frozenset((*CORE_ACTIONS, *extra_actions))
    extra_profiles, extra_rules = list(extra_profiles), list(extra_rules)
    if table is None and not extra_profiles and not extra_rules:
        return SecurityModel(
            profiles={OPEN_PROFILE.name: OPEN_PROFILE},
            no_role_profile=OPEN_PROFILE.name,
            default_policy=EntityPolicy("public_full", "read_write"),
            configured=False,
            actions=actions,
        )
    table = dict(table or {})
    _check_keys(table, _SECURITY_KEYS, "security")
    ownable = set(ownable)

    def check_entity(name: str, where: str) -> None:
        if name != "*" and name not in entities:
            raise ConfigError(f"{where}: unknown entity type {name!r}; known: {', '.join(sorted(entities))}", key=where)

    standard = standard_profile(entities)
    profiles: dict[str, Profile] = {READ_PROFILE.name: READ_PROFILE, standard.name: standard}
    for name, spec in _require(table.get("profiles", {}), dict, "security.profiles").items():
        where = f"security.profiles.{name}"
        _require(spec, dict, where)
        _check_keys(spec, {"privileges", "fields", "view_all", "modify_all", "label"}, where)
        privileges: dict[str, frozenset[str]] = {}
        for entity, granted in _require(spec.get("privileges", {}), dict, f"{where}.privileges").items():
            check_entity(entity, f"{where}.privileges.{entity}")
            if granted == "all":
                granted = ["all"]
            for action in _require(granted, list, f"{where}.privileges.{entity}"):
                if action != "all" and action not in actions:
                    raise ConfigError(
                        f"{where}.privileges.{entity}: unknown action {action!r}; known: {', '.join(sorted(actions))}, all",
                        key=f"{where}.privileges.{entity}",
                    )
            privileges[entity] = frozenset(granted)
        fields: dict[str, dict[str, str]] = {}
        for entity, levels in _require(spec.get("fields", {}), dict, f"{where}.fields").items():
            check_entity(entity, f"{where}.fields.{entity}")
            for field, level in _require(levels, dict, f"{where}.fields.{entity}").items():
                if field not in entities[entity]:
                    raise ConfigError(
                        f"{where}.fields.{entity}: unknown field {field!r} of {entity}; known: {', '.join(entities[entity])}",
                        key=f"{where}.fields.{entity}.{field}",
                    )
                if level not in FIELD_LEVELS:
                    raise ConfigError(f"{where}.fields.{entity}.{field} must be one of {', '.join(FIELD_LEVELS)}, got {level!r}", key=f"{where}.fields.{entity}.{field}")
            fields[entity] = dict(levels)
        profiles[name] = Profile(
            name, privileges, fields,
            view_all=_require(spec.get("view_all", False), bool, f"{where}.view_all"),
            modify_all=_require(spec.get("modify_all", False), bool, f"{where}.modify_all"),
            label=spec.get("label", ""),
        )
    for profile in extra_profiles:
        profiles[profile.name] = profile

    roles: list[RoleDecl] = []
    role_specs = _require(table.get("roles", {}), dict, "security.roles")
    for name, spec in role_specs.items():
        where = f"security.roles.{name}"
        _require(spec, dict, where)
        _check_keys(spec, {"parent", "profiles", "label"}, where)
        parent = spec.get("parent")
        if parent is not None and parent not in role_specs:
            raise ConfigError(f"{where}.parent: unknown role {parent!r}; declared roles: {', '.join(role_specs)}", key=f"{where}.parent")
        for profile in _require(spec.get("profiles", []), list, f"{where}.profiles"):
            if profile not in profiles:
                raise ConfigError(f"{where}.profiles: unknown profile {profile!r}; declared: {', '.join(sorted(profiles))}", key=f"{where}.profiles")
        roles.append(RoleDecl(name, parent, tuple(spec.get("profiles", [])), spec.get("label", "")))
    _check_role_cycles(roles)

    groups: dict[str, str] = {}
    for name, spec in _require(table.get("groups", {}), dict, "security.groups").items():
        _require(spec, dict, f"security.groups.{name}")
        _check_keys(spec, {"description"}, f"security.groups.{name}")
        groups[name] = spec.get("description", "")

    default_sharing = _require(table.get("default_sharing", "public_read_write"), str, "security.default_sharing")
    default_hierarchy = _require(table.get("default_hierarchy", "read_write"), str, "security.default_hierarchy")
    default_policy = _policy({"sharing": default_sharing, "hierarchy": default_hierarchy}, "security", EntityPolicy())
    policies: dict[str, EntityPolicy] = {}
    for entity, spec in _require(table.get("entities", {}), dict, "security.entities").items():
        where = f"security.entities.{entity}"
        check_entity(entity, where)
        _require(spec, dict, where)
        _check_keys(spec, {"sharing", "hierarchy"}, where)
        if entity not in ownable and spec.get("sharing", "public_read_write") != "public_read_write":
            raise ConfigError(f"{where}.sharing: {entity} records have no owner, so sharing does not apply; use profiles", key=f"{where}.sharing")
        policies[entity] = _policy(spec, where, default_policy)

    declared_roles = {r.name for r in roles}

    def check_party(party: Party, where: str) -> None:
        if party.kind == "group":
            if party.name not in groups:
                raise ConfigError(f"{where}: unknown group {party.name!r}; declare it under [security.groups]", key=where)
        elif party.name not in declared_roles:
            raise ConfigError(f"{where}: unknown role {party.name!r}; declared roles: {', '.join(sorted(declared_roles)) or 'none'}", key=where)

    rules: list[SharingRule] = []
    for index, spec in enumerate(_require(table.get("rules", []), list, "security.rules")):
        where = f"security.rules[{index}]"
        _require(spec, dict, where)
        _check_keys(spec, {"name", "entity", "owned_by", "shared_with", "access"}, where)
        for key in ("entity", "owned_by", "shared_with"):
            if key not in spec:
                raise ConfigError(f"{where} needs {key!r}", key=f"{where}.{key}")
        name = spec.get("name", f"rule {index + 1}")
        check_entity(spec["entity"], f"{where}.entity")
        if spec["entity"] not in ownable:
            raise ConfigError(f"{where}.entity: {spec['entity']} records have no owner; sharing rules apply to ownable entities", key=f"{where}.entity")
        access = spec.get("access", "read")
        if access not in ("read", "read_write"):
            raise ConfigError(f"{where}.access must be 'read' or 'read_write', got {access!r}", key=f"{where}.access")
        rule = SharingRule(name, spec["entity"], Party.parse(spec["owned_by"], where=f"{where}.owned_by"),
                           Party.parse(spec["shared_with"], where=f"{where}.shared_with"), access)
        check_party(rule.owned_by, f"{where}.owned_by")
        check_party(rule.shared_with, f"{where}.shared_with")
        rules.append(rule)
    for rule in extra_rules:
        check_entity(rule.entity, f"sharing rule {rule.name!r}")
        check_party(rule.owned_by, f"sharing rule {rule.name!r}")
        check_party(rule.shared_with, f"sharing rule {rule.name!r}")
        rules.append(rule)

    base = _require(table.get("no_role_profile", READ_PROFILE.name), str, "security.no_role_profile")
    if base not in profiles:
        raise ConfigError(f"security.no_role_profile: unknown profile {base!r}; declared: {', '.join(sorted(profiles))}", key="security.no_role_profile")
    return SecurityModel(
        profiles=profiles, roles=tuple(roles), groups=groups, policies=policies, default_policy=default_policy,
        rules=tuple(rules), no_role_profile=base, configured=True, actions=actions,
    )


def _policy(spec: Mapping[str, Any], where: str, default: EntityPolicy) -> EntityPolicy:
    sharing = spec.get("sharing", default.sharing)
    hierarchy = spec.get("hierarchy", default.hierarchy)
    if sharing not in SHARING_DEFAULTS:
        raise ConfigError(f"{where}.sharing must be one of {', '.join(SHARING_DEFAULTS)}, got {sharing!r}", key=f"{where}.sharing")
    if hierarchy not in HIERARCHY_LEVELS:
        raise ConfigError(f"{where}.hierarchy must be one of {', '.join(HIERARCHY_LEVELS)}, got {hierarchy!r}", key=f"{where}.hierarchy")
    return EntityPolicy(sharing, hierarchy)


def _check_role_cycles(roles: list[RoleDecl]) -> None:
    parents = {r.name: r.parent for r in roles}
    for role in roles:
        seen = [role.name]
        parent = role.parent
        while parent is not None:
            if parent in seen:
                raise ConfigError(f"security.roles: roles form a cycle: {' -> '.join([*seen, parent])}", key=f"security.roles.{role.name}.parent")
            seen.append(parent)
            parent = parents.get(parent)
