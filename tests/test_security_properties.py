"""Property tests: the compiled predicate selects in SQL exactly what it allows in memory.

Random role trees, users holding several roles, groups of users, roles and role trees, sharing
defaults, hierarchy settings and sharing rules; for every actor and action, the rows the SQL
``WHERE`` returns are exactly the records the in-memory evaluation allows, and both agree with
an independent, naive reading of the model written below.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import Actor, NotFoundError, PermissionDeniedError, hookimpl
from crmcore.fields import Field, Integer, Reference, String
from crmcore.plugins import PluginInfo
from crmcore.registry import EntityType
from crmcore.testing import database_url_for_tests

ACTIONS = ("read", "update", "delete")
SHARING = ("private", "public_read", "public_read_write", "public_full")
LEVEL = {"none": 0, "read": 1, "read_write": 2, "full": 3}
NEED = {"read": 1, "update": 2, "delete": 3}
DEFAULT_LEVEL = {"private": 0, "public_read": 1, "public_read_write": 2, "public_full": 3}


@st.composite
def worlds(draw: Any) -> dict[str, Any]:
    n_roles = draw(st.integers(1, 6))
    parents = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n_roles)]
    weighted = st.sampled_from(["writer", "writer", "reader", "nothing"])
    role_profiles = [draw(st.lists(weighted, min_size=0, max_size=2, unique=True)) for _ in range(n_roles)]
    n_groups = draw(st.integers(0, 3))
    n_users = draw(st.integers(2, 5))
    user_roles = [draw(st.lists(st.integers(0, n_roles - 1), min_size=0, max_size=3, unique=True)) for _ in range(n_users)]
    members = draw(st.lists(
        st.tuples(st.integers(0, max(n_groups - 1, 0)), st.sampled_from(["user", "role", "role-tree"]), st.integers(0, 10)),
        max_size=6,
    )) if n_groups else []
    party = st.one_of(
        st.tuples(st.sampled_from(["role", "role-tree"]), st.integers(0, n_roles - 1)),
        *([st.tuples(st.just("group"), st.integers(0, n_groups - 1))] if n_groups else []),
    )
    rules = draw(st.lists(st.tuples(party, party, st.sampled_from(["read", "read_write"])), max_size=4))
    records = draw(st.lists(
        st.one_of(st.tuples(st.just("user"), st.integers(0, n_users - 1)),
                  *([st.tuples(st.just("group"), st.integers(0, n_groups - 1))] if n_groups else [])),
        min_size=1, max_size=12,
    ))
    return {
        "parents": parents, "role_profiles": role_profiles, "n_groups": n_groups, "user_roles": user_roles,
        "members": members, "rules": rules, "records": records,
        "sharing": draw(st.sampled_from(("private", "private", "private", *SHARING))), "hierarchy": draw(st.sampled_from(["none", "read", "read_write"])),
        "base": draw(st.sampled_from([None, "read_only"])),
    }


def _party_text(party: tuple[str, int]) -> str:
    kind, index = party
    return f"{kind}:{'g' if kind == 'group' else 'r'}{index}"


def _security(world: dict[str, Any], entities: tuple[str, ...] = ("lead",)) -> dict[str, Any]:
    """The security settings of *world*, the same for each of *entities*."""
    roles = {}
    for i, parent in enumerate(world["parents"]):
        spec: dict[str, Any] = {"profiles": world["role_profiles"][i]}
        if parent is not None:
            spec["parent"] = f"r{parent}"
        roles[f"r{i}"] = spec
    security: dict[str, Any] = {
        "profiles": {
            "reader": {"privileges": dict.fromkeys(entities, ["read"])},
            "writer": {"privileges": dict.fromkeys(entities, ["read", "update", "delete"])},
            "nothing": {"privileges": {}},
        },
        "roles": roles,
        "groups": {f"g{i}": {} for i in range(world["n_groups"])},
        "entities": {e: {"sharing": world["sharing"], "hierarchy": world["hierarchy"]} for e in entities},
        "rules": [
            {"name": f"rule{i}-{e}", "entity": e, "owned_by": _party_text(o), "shared_with": _party_text(s), "access": a}
            for e in entities for i, (o, s, a) in enumerate(world["rules"])
        ],
        "no_role_profile": world["base"] or "nothing",
    }
    return security


def _naive(world: dict[str, Any], user: int, owner: tuple[str, int], action: str) -> bool:
    """The model read literally, independent of the predicate compiler."""
    parents = world["parents"]

    def subtree(role: int) -> set[int]:
        found = {role}
        changed = True
        while changed:
            changed = False
            for child, parent in enumerate(parents):
                if parent in found and child not in found:
                    found.add(child)
                    changed = True
        return found

    mine = set(world["user_roles"][user])
    profiles = {"read_only"} if world["base"] == "read_only" and not mine else set()
    for role in mine:
        profiles |= set(world["role_profiles"][role])
    grants = {"reader": {"read"}, "writer": {"read", "update", "delete"}, "read_only": {"read"}}
    if not any(action in grants.get(p, set()) for p in profiles):
        return False
    need = NEED[action]
    if DEFAULT_LEVEL[world["sharing"]] >= need:
        return True

    def in_group(u: int, g: int) -> bool:
        roles_u = set(world["user_roles"][u])
        for group, kind, value in world["members"]:
            if group != g:
                continue
            if kind == "user" and value % len(world["user_roles"]) == u:
                return True
            role = value % len(parents)
            if kind == "role" and role in roles_u:
                return True
            if kind == "role-tree" and subtree(role) & roles_u:
                return True
        return False

    def in_party(u: int, party: tuple[str, int]) -> bool:
        kind, index = party
        if kind == "group":
            return in_group(u, index)
        roles_u = set(world["user_roles"][u])
        return index in roles_u if kind == "role" else bool(subtree(index) & roles_u)

    kind, index = owner
    if kind == "user":
        if index == user:
            return True
        below = set().union(*(subtree(r) - {r} for r in mine)) if mine else set()
        if world["hierarchy"] != "none" and LEVEL[world["hierarchy"]] >= need and set(world["user_roles"][index]) & below:
            return True
    elif in_group(user, index):
        return True
    for owned_by, shared_with, access in world["rules"]:
        if LEVEL[access] < need or not in_party(user, shared_with):
            continue
        if kind == "user" and owned_by[0] != "group" and in_party(index, owned_by):
            return True
        if owned_by[0] == "group" and (
            (kind == "group" and index == owned_by[1]) or (kind == "user" and in_group(index, owned_by[1]))
        ):
            return True
    return False


def _people(uow: Any, world: dict[str, Any]) -> tuple[list[Any], Any]:
    """The users, role assignments and group members of *world*; returns the users and a
    function giving the owner fields of a record owned by ``("user", i)`` or ``("group", i)``."""
    roles = {r.name: r.id for r in uow.all("role")}
    groups = {g.name: g.id for g in uow.all("group")}
    users = [uow.create("user", username=f"u{i}") for i in range(len(world["user_roles"]))]
    for user, held in zip(users, world["user_roles"], strict=True):
        for role in held:
            uow.create("role_assignment", user_id=user.id, role_id=roles[f"r{role}"])
    for group, kind, value in world["members"]:
        if kind == "user":
            uow.create("group_member", group_id=groups[f"g{group}"], user_id=users[value % len(users)].id)
        else:
            uow.create("group_member", group_id=groups[f"g{group}"], role_id=roles[f"r{value % len(roles)}"],
                       subordinates=kind == "role-tree")

    def owner_of(owner: tuple[str, int]) -> dict[str, Any]:
        kind, index = owner
        return {"owner_id": users[index].id} if kind == "user" else {"owner_id": None, "owner_group_id": groups[f"g{index}"]}

    return users, owner_of


# PostgreSQL builds a schema per example: fewer examples there keep the suite quick.
EXAMPLES = 20 if database_url_for_tests().startswith("postgresql") else 60


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(world=worlds())
def test_sql_memory_and_model_agree_for_every_actor_and_action(crm_factory, world):
    crm = crm_factory(security=_security(world))
    with crm.unit_of_work() as uow:
        users, owner_of = _people(uow, world)
        leads = [uow.create("lead", last_name="L", **owner_of(owner)) for owner in world["records"]]
        uow.commit()
    table = crm.registry.table("lead")
    with crm.connect() as connection:
        for number, user in enumerate(users):
            context = crm.access.context(connection, Actor(user.id, user.username))
            for action in ACTIONS:
                predicate = crm.access.predicate(context, "lead", action)
                in_sql = {row.id for row in connection.execute(sa.select(table.c.id).where(predicate.sql(table)))}
                rows = connection.execute(sa.select(table)).mappings().all()
                in_memory = {row["id"] for row in rows if crm.access.allows(connection, context, "lead", row, action)}
                by_model = {lead.id for lead, owner in zip(leads, world["records"], strict=True) if _naive(world, number, owner, action)}
                assert in_sql == in_memory == by_model, (user.username, action)
    for user in users:
        actor = Actor(user.id, user.username)
        readable = {lead.id for lead, owner in zip(leads, world["records"], strict=True) if _naive(world, users.index(user), owner, "read")}
        with crm.unit_of_work(actor) as uow:
            assert set(uow.query("lead").ids()) == readable
            assert uow.query("lead").count() == len(readable)
            assert {r.id for r in uow.get_many("lead", [lead.id for lead in leads])} == readable
            for lead in leads:
                try:
                    uow.get("lead", lead.id)
                    seen = True
                except NotFoundError:
                    seen = False
                assert seen == (lead.id in readable)


class Gizmos:
    """A throwaway plugin entity that refers to leads and accounts."""

    PLUGIN = PluginInfo(name="gizmos")

    @hookimpl
    def crm_entity_types(self) -> list[EntityType]:
        return [EntityType("gizmo", fields=(
            Field("label", String(20), required=True), Field("weight", Integer()),
            Field("lead_id", Reference("lead")), Field("account_id", Reference("account")),
        ), ownable=True)]


ENTITIES = ("lead", "account", "gizmo")
#: Fields the reader profile hides: a user with the reader profile only may not use them.
HIDDEN = {"account": {"industry": "hidden"}, "gizmo": {"weight": "hidden"}}


def _naive_rows(crm: Any, connection: Any, context: Any, entity: str) -> dict[int, dict[str, Any]]:
    """The naive model of a read: the rows the system actor sees, kept where the in-memory
    predicate allows the actor to read them."""
    table = crm.registry.table(entity)
    rows = connection.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    return {row["id"]: dict(row) for row in rows if crm.access.allows(connection, context, entity, row, "read")}


def _value(seen: dict[str, dict[int, dict[str, Any]]], entity: str, record_id: int | None, name: str) -> Any:
    """Field *name* of record *record_id* of *entity* as the naive model shows it: ``None``
    for no record or one the actor may not read."""
    row = seen[entity].get(record_id) if record_id is not None else None
    return None if row is None else row[name]


@settings(max_examples=EXAMPLES // 2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(world=worlds(), shift=st.integers(0, 11))
def test_selects_joins_and_aggregates_return_what_the_naive_model_allows(crm_factory, world, shift):
    security = _security(world, ENTITIES)
    security["profiles"]["reader"]["fields"] = HIDDEN
    crm = crm_factory(plugins=[Gizmos()], security=security)
    records = world["records"]
    n = len(records)
    with crm.unit_of_work() as uow:
        users, owner_of = _people(uow, world)
        accounts = [uow.create("account", name=f"A{i}", industry=f"I{i % 2}", **owner_of(records[(i + shift) % n]))
                    for i in range(n)]
        leads = [uow.create("lead", last_name=f"L{i}", account_id=accounts[(i * 7) % n].id if i % 3 != 2 else None,
                            **owner_of(owner)) for i, owner in enumerate(records)]
        for j in range(n + 2):
            uow.create("gizmo", label=f"G{j % 3}", weight=j, lead_id=leads[(j + shift) % n].id if j % 4 != 3 else None,
                       account_id=accounts[(j * 5) % n].id, **owner_of(records[(j + 1) % n]))
        uow.commit()
    for user in users:
        actor = Actor(user.id, user.username)
        with crm.connect() as connection:
            context = crm.access.context(connection, actor)
            seen = {e: _naive_rows(crm, connection, context, e) for e in ENTITIES}
        field = functools.partial(_value, seen)
        with crm.unit_of_work(actor) as uow:
            hidden = {e: uow.hidden_fields(e) for e in ENTITIES}
            # every field the actor may see (the default of a select), none of those hidden
            gizmo = crm.registry.entity("gizmo")
            shown = [f for f in gizmo.fields if f.name not in hidden["gizmo"]]
            assert uow.select("gizmo").all() == [{"id": i, **{f.name: r[f.column] for f in shown}} for i, r in seen["gizmo"].items()]
            # a join: the referenced account's fields, None where the actor may not read it
            rows = uow.select("lead", fields=("id", "last_name", "account_id", "account_id.name")).all()
            assert rows == [{"id": i, "last_name": r["last_name"], "account_id": r["account_id"],
                             "account_id.name": field("account", r["account_id"], "name")} for i, r in seen["lead"].items()]
            # a path of two joins from the plugin entity, with a filter on the far end
            chain = uow.select("gizmo", fields=("id", "lead_id.account_id.name")).where(("lead_id.account_id.name", "=", "A0"))
            expected = [{"id": i, "lead_id.account_id.name": "A0"} for i, r in seen["gizmo"].items()
                        if field("account", field("lead", r["lead_id"], "account_id"), "name") == "A0"]
            assert chain.all() == expected and chain.count() == len(expected) and chain.exists() == bool(expected)
            # an aggregate over a joined group
            totals = uow.select("gizmo").group_by("lead_id.last_name").aggregate(max=["label"])
            naive: dict[Any, list[str]] = {}
            for r in seen["gizmo"].values():
                naive.setdefault(field("lead", r["lead_id"], "last_name"), []).append(r["label"])
            assert totals == [{"lead_id.last_name": k, "count": len(v), "max_label": max(v)}
                              for k, v in sorted(naive.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))]
            # hidden fields of a touched entity are refused, wherever they are named
            if "industry" in hidden["account"]:
                with pytest.raises(PermissionDeniedError):
                    uow.select("gizmo", fields=("id", "account_id.industry"))
            else:
                industries = uow.select("gizmo", fields=("id", "account_id.industry")).all()
                assert industries == [{"id": i, "account_id.industry": field("account", r["account_id"], "industry")}
                                      for i, r in seen["gizmo"].items()]
            if "weight" in hidden["gizmo"]:
                with pytest.raises(PermissionDeniedError):
                    uow.select("gizmo").aggregate(sum=["weight"])
            else:
                weights = uow.select("gizmo").group_by("account_id.industry" if "industry" not in hidden["account"]
                                                       else "account_id").aggregate(sum=["weight"], count=False)
                assert sum(r["sum_weight"] or 0 for r in weights) == sum(r["weight"] for r in seen["gizmo"].values())
