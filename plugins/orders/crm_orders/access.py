"""Record access of quotes and sales orders (``crm_access_restrictions``), compiled into the one
SQL predicate of every read.

- A quote or an order is reached only by those who may read its account and its opportunity
  (when it has them), on top of its own sharing (owner, roles above, groups, sharing default):
  a user who cannot see the deal cannot see what was offered on it, **unless a sharing rule for
  ``quote`` or ``sales_order`` shares the document with the user** (``[[security.sharing]]``
  with ``entity = "quote"``), which then reaches the documents it covers whatever their
  account and opportunity.
- Lines follow their document: readable with a readable document, writable with an updatable
  one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from crmcore.security import ACCESS_LEVELS, ALWAYS, NEVER, FieldEquals, FieldIn, IdSet, Restriction, all_of, any_of

if TYPE_CHECKING:
    from crmcore.security import AccessContext, Party, Predicate

__all__ = ["DOCUMENT_ENTITIES", "LINE_PARENTS", "restrictions"]

DOCUMENT_ENTITIES = ("quote", "sales_order")
#: line entity -> (document entity, reference field)
LINE_PARENTS = {"quote_line": ("quote", "quote_id"), "sales_order_line": ("sales_order", "sales_order_id")}
_READS = ("read", "export")


def restrictions(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    """The orders plugin's restrictions for (actor, *entity*, *action*)."""
    if context.is_system:
        return None
    if entity in DOCUMENT_ENTITIES:
        return _document(context, entity, action)
    if entity in LINE_PARENTS:
        return _line(context, entity, action)
    return None


def _readable(context: AccessContext, field: str, parent: str) -> Predicate:
    predicate = context.predicate(parent, "read")
    if predicate == ALWAYS:
        return ALWAYS
    empty = FieldEquals(field, None)
    if predicate == NEVER:
        return empty
    table = context.table(parent)
    ids = IdSet(query=sa.select(table.c.id).where(predicate.sql(table)), label=f"{parent}s the actor may read")
    return any_of([empty, FieldIn(field, ids)])


def _document(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    parents = all_of([_readable(context, "account_id", "account"), _readable(context, "opportunity_id", "opportunity")])
    if parents == ALWAYS:
        return None
    shared = _shared(context, entity, action)
    reason = f"a {entity.replace('_', ' ')} is seen with its account and opportunity, or through a sharing rule"
    return [Restriction(any_of([parents, *shared]), reason)]


def _shared(context: AccessContext, entity: str, action: str) -> list[Predicate]:
    """What the sharing rules for *entity* that reach the actor share with it, at the level
    *action* needs."""
    service = context.service
    if service is None:
        return []
    need = 1 if action in _READS else (3 if action == "delete" else 2)
    found = []
    for rule in service.model.rules:
        if rule.entity == entity and context.matches(rule.shared_with) and ACCESS_LEVELS.index(rule.access) >= need:
            found.append(_owned_by(context, rule.owned_by))
    return found


def _owned_by(context: AccessContext, party: Party) -> Predicate:
    if party.kind == "group":
        group_id = context.group_ids_by_name.get(party.name)
        if group_id is None:
            return NEVER
        return any_of([
            FieldEquals("owner_group_id", group_id),
            FieldIn("owner_id", context.users_of_group(group_id, f"members of group {party.name}")),
        ])
    role_id = context.role_ids_by_name.get(party.name)
    if role_id is None:
        return NEVER
    roles = {role_id} if party.kind == "role" else context.subtree(role_id)
    return FieldIn("owner_id", context.users_with_roles(roles, f"users in {party}"))


def _line(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    parent, field = LINE_PARENTS[entity]
    needed = "read" if action in _READS else "update"
    predicate = context.predicate(parent, needed)
    if predicate == ALWAYS:
        return None
    reason = f"a {entity.replace('_', ' ')} follows its {parent.replace('_', ' ')} ({needed})"
    if predicate == NEVER:
        return [Restriction(NEVER, reason)]
    table = context.table(parent)
    ids = IdSet(query=sa.select(table.c.id).where(predicate.sql(table)), label=f"{parent}s the actor may {needed}")
    return [Restriction(FieldIn(field, ids), reason)]
