"""Property tests: the compiled predicate selects in SQL exactly what it allows in memory.

Random role trees, users holding several roles, groups of users, roles and role trees, sharing
defaults, hierarchy settings and sharing rules; for every actor and action, the rows the SQL
``WHERE`` returns are exactly the records the in-memory evaluation allows, and both agree with
an independent, naive reading of the model written below.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmcore import Actor, NotFoundError
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


def _security(world: dict[str, Any]) -> dict[str, Any]:
    roles = {}
    for i, parent in enumerate(world["parents"]):
        spec: dict[str, Any] = {"profiles": world["role_profiles"][i]}
        if parent is not None:
            spec["parent"] = f"r{parent}"
        roles[f"r{i}"] = spec
    security: dict[str, Any] = {
        "profiles": {
            "reader": {"privileges": {"lead": ["read"]}},
            "writer": {"privileges": {"lead": ["read", "update", "delete"]}},
            "nothing": {"privileges": {}},
        },
        "roles": roles,
        "groups": {f"g{i}": {} for i in range(world["n_groups"])},
        "entities": {"lead": {"sharing": world["sharing"], "hierarchy": world["hierarchy"]}},
        "rules": [
            {"name": f"rule{i}", "entity": "lead", "owned_by": _party_text(o), "shared_with": _party_text(s), "access": a}
            for i, (o, s, a) in enumerate(world["rules"])
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


# PostgreSQL builds a schema per example: fewer examples there keep the suite quick.
EXAMPLES = 20 if database_url_for_tests().startswith("postgresql") else 60


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(world=worlds())
def test_sql_memory_and_model_agree_for_every_actor_and_action(crm_factory, world):
    crm = crm_factory(security=_security(world))
    with crm.unit_of_work() as uow:
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
        leads = []
        for kind, index in world["records"]:
            owner = {"owner_id": users[index].id} if kind == "user" else {"owner_id": None, "owner_group_id": groups[f"g{index}"]}
            leads.append(uow.create("lead", last_name="L", **owner))
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
