"""The access service: from (actor, entity, action) to one predicate, field access, explanations.

For each query the actor's :class:`AccessContext` is read from the small tables of roles, role
assignments and groups (a handful of rows, whatever the number of records), so a change of
roles, of a role's parent or of a group's members shows on the next query with no
recalculation. The context then compiles, per entity and action, into one
:class:`~crmcore.security.predicate.Predicate`: a SQL ``WHERE`` on every read path, and the
same tree evaluated in memory for single-record checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.errors import PermissionDeniedError
from crmcore.security.model import (
    FIELD_LEVELS,
    Party,
    Profile,
    SecurityModel,
    SharingRule,
    level_rank,
    needed_level,
)
from crmcore.security.predicate import (
    ALWAYS,
    NEVER,
    FieldEquals,
    FieldIn,
    IdSet,
    Predicate,
    all_of,
    any_of,
)

if TYPE_CHECKING:
    import pluggy

    from crmcore.registry import Registry

__all__ = ["AccessContext", "AccessService", "Decision", "Grant", "Restriction"]


@attrs.frozen
class Grant:
    """Record access a plugin grants: records matching *predicate* get *level* access."""

    level: str
    predicate: Predicate
    reason: str


@attrs.frozen
class Restriction:
    """A condition a plugin imposes: records must satisfy *requires* to be accessible."""

    requires: Predicate
    reason: str


@attrs.frozen
class Decision:
    """The answer to "may this actor do this to this record?" and the chain behind it."""

    allowed: bool
    chain: tuple[str, ...]

    def __bool__(self) -> bool:
        return self.allowed

    def __str__(self) -> str:
        verdict = "allowed" if self.allowed else "denied"
        return verdict + "".join(f"\n  - {step}" for step in self.chain)


@attrs.frozen
class AccessContext:
    """What the database says about one actor right now.

    :ivar role_ids: the actor's roles.
    :ivar below: ids of every role strictly below one of the actor's roles.
    :ivar group_ids: the groups the actor belongs to (directly, by role, or by role tree).
    """

    actor: Actor
    profiles: tuple[Profile, ...]
    role_ids: frozenset[int]
    below: frozenset[int]
    group_ids: frozenset[int]
    role_names: Mapping[int, str]
    role_ids_by_name: Mapping[str, int]
    children: Mapping[int, tuple[int, ...]]
    group_ids_by_name: Mapping[str, int]
    group_roles: Mapping[int, tuple[tuple[int, bool], ...]]
    tables: Mapping[str, sa.Table]
    registry: Registry
    service: AccessService | None = attrs.field(default=None, eq=False, repr=False)

    def table(self, entity: str) -> sa.Table:
        """The table of *entity*, for plugins building grant and restriction predicates."""
        return self.registry.table(entity)

    def predicate(self, entity: str, action: str = "read") -> Predicate:
        """The actor's predicate for *action* on another entity, for plugins whose records
        follow a parent's access (an opportunity's lines: ``FieldIn("opportunity_id", IdSet(
        query=select(opportunity.c.id).where(context.predicate("opportunity").sql(opportunity))))``)."""
        if self.service is None:
            raise TypeError("this access context was made without its access service")
        return self.service.predicate(self, entity, action)

    @property
    def is_system(self) -> bool:
        return self.actor.is_system

    def subtree(self, role_id: int) -> set[int]:
        """*role_id* and every role below it."""
        found, todo = set(), [role_id]
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo.extend(self.children.get(current, ()))
        return found

    def users_with_roles(self, role_ids: Iterable[int], label: str) -> IdSet:
        ids = sorted(set(role_ids))
        if not ids:
            return IdSet(label=label)
        assignment = self.tables["role_assignment"]
        return IdSet(query=sa.select(assignment.c.user_id).where(assignment.c.role_id.in_(ids)), label=label)

    def users_of_group(self, group_id: int, label: str) -> IdSet:
        member = self.tables["group_member"]
        assignment = self.tables["role_assignment"]
        role_ids: set[int] = set()
        for role_id, subordinates in self.group_roles.get(group_id, ()):
            role_ids |= self.subtree(role_id) if subordinates else {role_id}
        direct = sa.select(member.c.user_id).where(member.c.group_id == group_id, member.c.user_id.is_not(None))
        if role_ids:
            query = sa.union(direct, sa.select(assignment.c.user_id).where(assignment.c.role_id.in_(sorted(role_ids))))
            return IdSet(query=sa.select(query.subquery().c[0]), label=label)
        return IdSet(query=direct, label=label)

    def matches(self, party: Party) -> bool:
        """Does the actor belong to *party* (a rule's ``shared_with``)?"""
        if party.kind == "group":
            group_id = self.group_ids_by_name.get(party.name)
            return group_id is not None and group_id in self.group_ids
        role_id = self.role_ids_by_name.get(party.name)
        if role_id is None:
            return False
        if party.kind == "role":
            return role_id in self.role_ids
        return bool(self.subtree(role_id) & self.role_ids)


@attrs.frozen
class _Tree:
    """The role tree and groups as read at one fingerprint of their tables."""

    fingerprint: tuple[Any, ...]
    names: Mapping[int, str]
    ids_by_name: Mapping[str, int]
    parents: Mapping[int, int | None]
    children: Mapping[int, tuple[int, ...]]
    groups: Mapping[str, int]
    group_roles: Mapping[int, tuple[tuple[int, bool], ...]]


class AccessService:
    """Permission decisions of one app.

    :param registry: the frozen registry (entity types and their tables).
    :param model: the parsed security model (profiles, sharing defaults and rules).
    :param hook: the plugins' hooks, asked for grants and restrictions
        (``crm_access_grants``, ``crm_access_restrictions``).
    """

    def __init__(self, registry: Registry, model: SecurityModel, hook: pluggy.HookRelay) -> None:
        self.registry = registry
        self.model = model
        self.hook = hook
        self.tables = {name: registry.table(name) for name in ("role", "group", "role_assignment", "group_member")}
        self._cached_tree: _Tree | None = None

    # -- context --------------------------------------------------------------------------------
    def _tree(self, connection: sa.Connection) -> _Tree:
        """The role tree, groups and role members of groups: read again only when a cheap
        fingerprint of their tables (row count, highest id, latest change) has changed, so a
        change shows on the next query while unchanged tables cost one small statement."""
        role, group, member = (self.tables[n] for n in ("role", "group", "group_member"))
        fingerprint = tuple(connection.execute(sa.select(*(
            part for table in (role, group, member)
            for part in (
                sa.select(sa.func.count()).select_from(table).scalar_subquery(),
                sa.select(sa.func.max(table.c.id)).scalar_subquery(),
                sa.select(sa.func.max(table.c.updated_at)).scalar_subquery(),
            )
        ))).one())
        cached = self._cached_tree
        if cached is not None and cached.fingerprint == fingerprint:
            return cached
        roles = connection.execute(sa.select(role.c.id, role.c.name, role.c.parent_id)).all()
        names = {r.id: r.name for r in roles}
        parents = {r.id: r.parent_id for r in roles}
        children: dict[int, list[int]] = {}
        for role_id, parent_id in parents.items():
            if parent_id is not None:
                children.setdefault(parent_id, []).append(role_id)
        groups = {g.name: g.id for g in connection.execute(sa.select(group.c.id, group.c.name))}
        group_roles: dict[int, list[tuple[int, bool]]] = {}
        for row in connection.execute(sa.select(member.c.group_id, member.c.role_id, member.c.subordinates).where(member.c.role_id.is_not(None))):
            group_roles.setdefault(row.group_id, []).append((row.role_id, bool(row.subordinates)))
        tree = _Tree(fingerprint, names, {v: k for k, v in names.items()}, parents,
                     {k: tuple(v) for k, v in children.items()}, groups, {k: tuple(v) for k, v in group_roles.items()})
        self._cached_tree = tree
        return tree

    def context(self, connection: sa.Connection, actor: Actor) -> AccessContext:
        """Read the actor's roles, the role tree and group memberships (small tables only)."""
        assignment, member, role = (self.tables[n] for n in ("role_assignment", "group_member", "role"))
        tree = self._tree(connection)
        parents = tree.parents
        base = AccessContext(
            actor, (), frozenset(), frozenset(), frozenset(), tree.names, tree.ids_by_name,
            tree.children, tree.groups, tree.group_roles, self.tables, self.registry, self,
        )
        if actor.is_system or actor.user_id is None:
            return attrs.evolve(base, profiles=self._profiles([]))
        mine = frozenset(r[0] for r in connection.execute(sa.select(assignment.c.role_id).where(assignment.c.user_id == actor.user_id)))
        below: set[int] = set()
        for role_id in mine:
            below |= base.subtree(role_id) - {role_id}
        ancestors_or_self: set[int] = set()
        for role_id in mine:
            current: int | None = role_id
            while current is not None and current not in ancestors_or_self:
                ancestors_or_self.add(current)
                current = parents.get(current)
        group_ids = {row[0] for row in connection.execute(sa.select(member.c.group_id).where(member.c.user_id == actor.user_id))}
        for group_id, members in tree.group_roles.items():
            for role_id, subordinates in members:
                if role_id in mine or (subordinates and role_id in ancestors_or_self):
                    group_ids.add(group_id)
        held = connection.execute(sa.select(role.c.profiles).where(role.c.id.in_(sorted(mine)))).all() if mine else []
        return attrs.evolve(
            base, profiles=self._profiles(held),
            role_ids=mine, below=frozenset(below), group_ids=frozenset(group_ids),
        )

    def _profiles(self, my_roles: Sequence[Any]) -> tuple[Profile, ...]:
        names: list[str] = []
        for role in my_roles:
            names.extend(role.profiles or ())
        if not self.model.configured or (not my_roles and self.model.no_role_profile):
            names.append(self.model.no_role_profile or "")
        return tuple(self.model.profiles[n] for n in dict.fromkeys(names) if n in self.model.profiles)

    # -- privileges and fields ------------------------------------------------------------------
    def privilege(self, ctx: AccessContext, entity: str, action: str) -> tuple[bool, str]:
        """Does a profile of the actor grant *action* on *entity*? With the reason."""
        if ctx.is_system:
            return True, "the system actor bypasses permissions"
        if not self.model.configured:
            return True, "no [security] is configured: every user may do everything"
        for profile in ctx.profiles:
            if profile.allows(entity, action):
                return True, f"profile {profile.name!r} grants {action} on {entity}"
        held = ", ".join(p.name for p in ctx.profiles) or "none"
        return False, f"no profile of {ctx.actor.username} grants {action} on {entity} (profiles: {held})"

    def require(self, ctx: AccessContext, entity: str, action: str) -> None:
        """Raise :class:`PermissionDeniedError` unless a profile grants *action* on *entity*."""
        allowed, reason = self.privilege(ctx, entity, action)
        if not allowed:
            raise PermissionDeniedError(f"{ctx.actor.username} may not {action} {entity} records: {reason}", reasons=[reason])

    def field_levels(self, ctx: AccessContext, entity: str) -> dict[str, str]:
        """``{field: "hidden" | "read_only" | "read_write"}``: the most permissive of the actor's
        profiles that may read *entity* (a field a profile does not mention is read-write for
        it)."""
        etype = self.registry.entity(entity)
        if ctx.is_system:
            return {f.name: "read_write" for f in etype.fields}
        readers = [p for p in ctx.profiles if p.allows(entity, "read")] or list(ctx.profiles)
        levels: dict[str, str] = {}
        for field in etype.fields:
            best = "hidden" if readers else "read_write"
            for profile in readers:
                level = profile.fields.get(entity, {}).get(field.name, "read_write")
                if FIELD_LEVELS.index(level) > FIELD_LEVELS.index(best):
                    best = level
            levels[field.name] = best
        return levels

    def hidden_fields(self, ctx: AccessContext, entity: str) -> frozenset[str]:
        return frozenset(name for name, level in self.field_levels(ctx, entity).items() if level == "hidden")

    def check_writable(self, ctx: AccessContext, entity: str, names: Iterable[str]) -> None:
        """Raise :class:`PermissionDeniedError` naming the first hidden or read-only field."""
        if ctx.is_system:
            return
        levels = self.field_levels(ctx, entity)
        for name in names:
            level = levels.get(name, "read_write")
            if level != "read_write":
                what = "hidden from" if level == "hidden" else "read-only for"
                raise PermissionDeniedError(
                    f"{entity}.{name} is {what} {ctx.actor.username}; leave it out of the change",
                    field=name, reasons=[f"field access of {entity}.{name} is {level}"],
                )

    # -- record access --------------------------------------------------------------------------
    def predicate(self, ctx: AccessContext, entity: str, action: str) -> Predicate:
        """The one predicate for (actor, entity, action)."""
        return self._compile(ctx, entity, action, explain=None)

    def _compile(self, ctx: AccessContext, entity: str, action: str, explain: list[str] | None) -> Predicate:
        def say(text: str) -> None:
            if explain is not None:
                explain.append(text)

        if ctx.is_system:
            say("the system actor bypasses permissions")
            return ALWAYS
        allowed, reason = self.privilege(ctx, entity, action)
        say(reason)
        if not allowed:
            return NEVER
        etype = self.registry.entity(entity)
        need = needed_level(action)
        restrictions = self._restrictions(ctx, entity, action)
        for restriction in restrictions:
            say(f"restricted by plugin: {restriction.reason}")
        if not etype.ownable:
            say(f"{entity} records have no owner: the profile privilege decides")
            return all_of(r.requires for r in restrictions)
        if any(p.modify_all and p.allows(entity, action) for p in ctx.profiles) or (
            need == "read" and any(p.view_all and p.allows(entity, "read") for p in ctx.profiles)
        ):
            say("a profile of the actor sees every record (view_all / modify_all)")
            return all_of(r.requires for r in restrictions)
        policy = self.model.policy(entity)
        say(f"sharing default for {entity} is {policy.sharing}")
        if level_rank(policy.default_level) >= level_rank(need):
            return all_of(r.requires for r in restrictions)
        grants = self._grants(ctx, entity, action)
        for grant in grants:
            say(f"grant: {grant.reason}")
        return all_of([any_of(g.predicate for g in grants), *(r.requires for r in restrictions)])

    def _grants(self, ctx: AccessContext, entity: str, action: str) -> list[Grant]:
        """The grants for a private (or partly private) ownable entity that reach the level
        *action* needs: ownership, hierarchy, owner group, sharing rules, plugins."""
        need = needed_level(action)
        policy = self.model.policy(entity)
        grants = [Grant("full", FieldEquals("owner_id", ctx.actor.user_id), "the actor owns the record")]
        if policy.hierarchy != "none" and ctx.below:
            grants.append(Grant(policy.hierarchy, FieldIn("owner_id", ctx.users_with_roles(ctx.below, "users in roles below")),
                                "the owner holds a role below the actor's (role hierarchy)"))
        if ctx.group_ids:
            grants.append(Grant("full", FieldIn("owner_group_id", IdSet(ids=ctx.group_ids)), "a group the actor belongs to owns the record"))
        for rule in self.model.rules:
            if rule.entity == entity and ctx.matches(rule.shared_with):
                grants.append(Grant(rule.access, self._owned_by(ctx, rule),
                                    f"sharing rule {rule.name!r} ({rule.owned_by} shared with {rule.shared_with}, {rule.access})"))
        grants.extend(self._plugin_grants(ctx, entity, action))
        return [g for g in grants if level_rank(g.level) >= level_rank(need)]

    def _owned_by(self, ctx: AccessContext, rule: SharingRule) -> Predicate:
        party = rule.owned_by
        if party.kind == "group":
            group_id = ctx.group_ids_by_name.get(party.name)
            if group_id is None:
                return NEVER
            return any_of([
                FieldEquals("owner_group_id", group_id),
                FieldIn("owner_id", ctx.users_of_group(group_id, f"members of group {party.name}")),
            ])
        role_id = ctx.role_ids_by_name.get(party.name)
        if role_id is None:
            return NEVER
        roles = {role_id} if party.kind == "role" else ctx.subtree(role_id)
        return FieldIn("owner_id", ctx.users_with_roles(roles, f"users in {party}"))

    def _plugin_grants(self, ctx: AccessContext, entity: str, action: str) -> list[Grant]:
        found: list[Grant] = []
        for result in self.hook.crm_access_grants(context=ctx, entity=entity, action=action):
            found.extend(result or ())
        return found

    def _restrictions(self, ctx: AccessContext, entity: str, action: str) -> list[Restriction]:
        found: list[Restriction] = []
        for result in self.hook.crm_access_restrictions(context=ctx, entity=entity, action=action):
            found.extend(result or ())
        return found

    def allows(self, connection: sa.Connection, ctx: AccessContext, entity: str, values: Mapping[str, Any], action: str) -> bool:
        """Evaluate the predicate in memory against one record's column values."""
        cache: dict[int, set[Any]] = {}

        def run(query: sa.Select[Any]) -> set[Any]:
            key = id(query)
            if key not in cache:
                cache[key] = {row[0] for row in connection.execute(query)}
            return cache[key]

        return self.predicate(ctx, entity, action).test(values, run)

    def explain(self, connection: sa.Connection, ctx: AccessContext, entity: str, values: Mapping[str, Any], action: str) -> Decision:
        """The decision for one record and the chain of rules behind it."""
        chain: list[str] = []
        predicate = self._compile(ctx, entity, action, explain=chain)
        cache: dict[int, set[Any]] = {}

        def run(query: sa.Select[Any]) -> set[Any]:
            key = id(query)
            if key not in cache:
                cache[key] = {row[0] for row in connection.execute(query)}
            return cache[key]

        allowed = predicate.test(values, run)
        if predicate not in (ALWAYS, NEVER):
            chain.append(self._which(ctx, entity, action, values, run))
        return Decision(allowed, tuple(chain))

    def _which(self, ctx: AccessContext, entity: str, action: str, values: Mapping[str, Any], run: Any) -> str:
        for grant in self._grants(ctx, entity, action):
            if grant.predicate.test(values, run):
                return f"matched: {grant.reason}"
        for restriction in self._restrictions(ctx, entity, action):
            if not restriction.requires.test(values, run):
                return f"failed restriction: {restriction.reason}"
        return "no grant matches this record"
