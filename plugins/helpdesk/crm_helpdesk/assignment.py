"""Who works a queue, and who gets its next ticket.

A queue's agents are the users listed in ``queue_agent`` and the members of the groups listed
in ``queue_group`` (users, holders of a role, holders of a role or any role below it, exactly
as the permission model counts group members), if they are active. A new ticket of a queue
goes to one of them by the queue's ``assignment``:

``round_robin``
    the agent whose last ticket of this queue was assigned longest ago (never first);
``least_open``
    the agent with the fewest tickets not yet resolved, across all queues (ties: round robin);
``manual``
    nobody; a person assigns it.

Each choice reads through the unit of work's secured road, in the help desk's system scope (a
queue's rule sees every ticket, whoever opens one): the queue's agents, those of them that are
active, then two grouped reads over the tickets (the last assignment in the queue, the
unfinished tickets) of those agents only; nothing is read per agent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_helpdesk.entities import DONE_STAGES
from crm_helpdesk.scope import system_scope

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.security import AccessContext

__all__ = ["agent_ids", "member_queues_query", "pick_agent"]


def agent_ids(uow: UnitOfWork, queue_id: int, group_ids: Iterable[int] | None = None) -> set[int]:
    """The ids of the users that work queue *queue_id* (active or not), of the records the
    actor may read: its ``queue_agent`` users and the members of *group_ids* (default: the
    groups of its ``queue_group`` records), users listed directly or holding a member role
    (or one below it, for a member with subordinates), as the permission model counts them."""
    found = {
        row["user_id"]
        for row in uow.select("queue_agent", fields=("user_id",)).where(queue_id=queue_id).all()
    }
    if group_ids is None:
        group_ids = _group_ids(uow, queue_id)
    groups = sorted(set(group_ids))
    if not groups:
        return found - {None}
    direct = uow.select("group_member", fields=("user_id",)).where(("group_id", "in", groups))
    found.update(row["user_id"] for row in direct.all())
    context = uow.access
    roles: set[int] = set()
    for group_id in groups:
        for role_id, subordinates in context.group_roles.get(group_id, ()):
            roles |= context.subtree(role_id) if subordinates else {role_id}
    if roles:
        holders = uow.select("role_assignment", fields=("user_id",)).where(
            ("role_id", "in", sorted(roles))
        )
        found.update(row["user_id"] for row in holders.all())
    return found - {None}


def pick_agent(uow: UnitOfWork, queue_id: int, *, exclude: int | None = None) -> int | None:
    """The agent queue *queue_id* gives its next ticket to, or ``None`` (manual assignment,
    or no active agent). *exclude* leaves one user out (a breached ticket's assignee)."""
    with system_scope(uow, "a queue's assignment rule picks the agent of a ticket") as scoped:
        found = scoped.get_many("queue", [queue_id])
        method = found[0].values.get("assignment") if found else None
        if method in (None, "manual"):
            return None
        candidates = sorted(agent_ids(scoped, queue_id) - {exclude})
        if not candidates:
            return None
        enabled = {"any": [("active", "is null"), ("active", "=", True)]}
        users = scoped.select("user", fields=("id",)).where(("id", "in", candidates), enabled)
        active = [row["id"] for row in users.all()]
        if not active:
            return None
        tickets = scoped.select("ticket").where(("assignee_id", "in", active))
        last = {
            row["assignee_id"]: row["max_assigned_at"]
            for row in tickets.where(queue_id=queue_id)
            .group_by("assignee_id")
            .aggregate(count=False, max=["assigned_at"])
        }
        still_open: dict[int, int] = {}
        if method == "least_open":
            unfinished = tickets.where(("status", "not in", DONE_STAGES)).group_by("assignee_id")
            still_open = {row["assignee_id"]: row["count"] for row in unfinished.aggregate()}

    def order(user_id: int) -> tuple[Any, ...]:
        assigned = last.get(user_id)  # never assigned a ticket of the queue: first
        return (still_open.get(user_id, 0), assigned is not None, assigned or 0, user_id)

    return min(active, key=order)


def _group_ids(uow: UnitOfWork, queue_id: int) -> list[int]:
    links = uow.query("queue_group").where(queue_id=queue_id)
    return sorted({g.values["group_id"] for g in links if g.values.get("group_id") is not None})


def member_queues_query(context: AccessContext) -> sa.Select[Any]:
    """A one-column SELECT of the queue ids the actor of *context* works: as an agent, through
    one of its groups, or as the queue's manager (for the access grants, built on the tables
    :meth:`~crmcore.security.AccessContext.table` gives plugins for their predicates)."""
    agent, group, queue = (context.table(n) for n in ("queue_agent", "queue_group", "queue"))
    me = context.actor.user_id
    parts = [
        sa.select(agent.c.queue_id.label("queue_id")).where(agent.c.user_id == me),
        sa.select(queue.c.id.label("queue_id")).where(queue.c.manager_id == me),
    ]
    if context.group_ids:
        parts.append(
            sa.select(group.c.queue_id.label("queue_id")).where(
                group.c.group_id.in_(sorted(context.group_ids))
            )
        )
    return sa.select(sa.union(*parts).subquery().c.queue_id)
