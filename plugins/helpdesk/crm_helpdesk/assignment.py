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

Each choice is one SQL statement over the agents, with correlated subqueries on the ticket
table's indexes; nothing is loaded and counted in Python.
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

__all__ = ["agent_ids_query", "member_queues_query", "pick_agent"]


def agent_ids_query(
    uow: UnitOfWork, queue_id: int, group_ids: Iterable[int] | None = None
) -> sa.Select[Any]:
    """A one-column SELECT of the user ids that work queue *queue_id* (active or not): its
    ``queue_agent`` users and the members of *group_ids* (default: the groups of its
    ``queue_group`` records the actor may read)."""
    agent = uow.registry.table("queue_agent")
    parts: list[sa.Select[Any]] = [
        sa.select(agent.c.user_id.label("user_id")).where(agent.c.queue_id == queue_id)
    ]
    if group_ids is None:
        group_ids = _group_ids(uow, queue_id)
    context = uow.access
    for group_id in sorted(set(group_ids)):
        members = context.users_of_group(group_id, f"members of group {group_id}").query
        if members is not None:
            parts.append(sa.select(members.subquery().c[0].label("user_id")))
    union = sa.union(*parts) if len(parts) > 1 else parts[0]
    return sa.select(union.subquery().c.user_id)


def pick_agent(uow: UnitOfWork, queue_id: int, *, exclude: int | None = None) -> int | None:
    """The agent queue *queue_id* gives its next ticket to, or ``None`` (manual assignment,
    or no active agent). *exclude* leaves one user out (a breached ticket's assignee)."""
    registry = uow.registry
    with system_scope(uow, "a queue's assignment rule picks the agent of a ticket"):
        found = uow.get_many("queue", [queue_id])
        method = found[0].values.get("assignment") if found else None
        group_ids = _group_ids(uow, queue_id) if method not in (None, "manual") else []
    if method in (None, "manual"):
        return None
    user, ticket = registry.table("user"), registry.table("ticket")
    last_assigned = (
        sa.select(sa.func.max(ticket.c.assigned_at))
        .where(ticket.c.assignee_id == user.c.id, ticket.c.queue_id == queue_id)
        .scalar_subquery()
    )
    order: list[Any] = [last_assigned.asc().nulls_first(), user.c.id]
    if method == "least_open":
        still_open = (
            sa.select(sa.func.count())
            .select_from(ticket)
            .where(ticket.c.assignee_id == user.c.id, ticket.c.status.not_in(DONE_STAGES))
            .scalar_subquery()
        )
        order.insert(0, still_open)
    statement = (
        sa.select(user.c.id)
        .where(
            user.c.id.in_(agent_ids_query(uow, queue_id, group_ids)),
            sa.or_(user.c.active.is_(None), user.c.active.is_(True)),
        )
        .order_by(*order)
        .limit(1)
    )
    if exclude is not None:
        statement = statement.where(user.c.id != exclude)
    return uow.connection.execute(statement).scalar()


def _group_ids(uow: UnitOfWork, queue_id: int) -> list[int]:
    links = uow.query("queue_group").where(queue_id=queue_id)
    return sorted({g.values["group_id"] for g in links if g.values.get("group_id") is not None})


def member_queues_query(context: AccessContext) -> sa.Select[Any]:
    """A one-column SELECT of the queue ids the actor of *context* works: as an agent, through
    one of its groups, or as the queue's manager."""
    registry = context.registry
    agent, group, queue = (registry.table(n) for n in ("queue_agent", "queue_group", "queue"))
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
