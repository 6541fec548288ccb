"""Record access the help desk adds to the permission model (``crm_access_grants`` and
``crm_access_restrictions``), compiled into the one SQL predicate of every read.

Grants (on top of ownership, hierarchy, groups and sharing rules, where the sharing default
does not already allow the action):

- agents read the tickets of the queues they work (as agents, through a group, or as the
  queue's manager), and the accounts and contacts of those tickets;
- the assignee of a ticket and the manager of its queue may also update it;
- everybody with the privilege reads published articles; those whose profile grants
  ``helpdesk.kb_article.publish`` read and update every article.

Restriction: an article that is not published is seen only by its owner (the author) and by
those whose profile grants ``helpdesk.kb_article.publish``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from crmcore.security import ALWAYS, FieldEquals, FieldIn, Grant, IdSet, Restriction, any_of

from crm_helpdesk.assignment import member_queues_query
from crm_helpdesk.workflow import PUBLISH_PERMISSION

if TYPE_CHECKING:
    from crmcore.security import AccessContext

__all__ = ["grants", "restrictions"]

_READS = ("read", "export")


def grants(context: AccessContext, entity: str, action: str) -> list[Grant] | None:
    """The help desk's grants for (actor, *entity*, *action*)."""
    me = context.actor.user_id
    if me is None:
        return None
    if entity == "ticket":
        queues = member_queues_query(context)
        found = [
            Grant(
                "read_write", FieldEquals("assignee_id", me), "the actor is the ticket's assignee"
            ),
        ]
        managed = context.table("queue")
        found.append(
            Grant(
                "read_write",
                FieldIn(
                    "queue_id",
                    IdSet(
                        query=sa.select(managed.c.id).where(managed.c.manager_id == me),
                        label="queues the actor manages",
                    ),
                ),
                "the actor manages the ticket's queue",
            )
        )
        if action in _READS:
            found.append(
                Grant(
                    "read",
                    FieldIn("queue_id", IdSet(query=queues, label="the actor's queues")),
                    "the ticket is in a queue the actor works",
                )
            )
        return found
    if entity in ("account", "contact") and action in _READS:
        ticket = context.table("ticket")
        column = ticket.c.account_id if entity == "account" else ticket.c.contact_id
        of_my_queues = sa.select(column).where(
            ticket.c.queue_id.in_(member_queues_query(context)), column.is_not(None)
        )
        return [
            Grant(
                "read",
                FieldIn("id", IdSet(query=of_my_queues, label=f"{entity}s of the actor's queues")),
                f"the {entity} has a ticket in a queue the actor works",
            )
        ]
    if entity == "kb_article":
        found = []
        if _publisher(context):
            found.append(Grant("read_write", ALWAYS, "the actor publishes articles"))
        if action in _READS:
            found.append(
                Grant("read", FieldEquals("status", "published"), "the article is published")
            )
        return found
    return None


def _publisher(context: AccessContext) -> bool:
    return (
        context.service is not None
        and context.service.privilege(context, "kb_article", PUBLISH_PERMISSION)[0]
    )


def restrictions(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    """Unpublished articles: their authors and publishers only."""
    if entity != "kb_article" or _publisher(context):
        return None
    mine = FieldEquals("owner_id", context.actor.user_id)
    return [
        Restriction(
            any_of([FieldEquals("status", "published"), mine]),
            "unpublished articles are seen by their author and by publishers",
        )
    ]
