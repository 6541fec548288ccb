"""Who may see and touch requests. Requests face other systems, not users: they are written by
the system only (posting, delivery and answers act as the system on the user's behalf), and
users see them only with the privilege ``outbox.outbox_request.view``.

- ``outbox.outbox_request.view``: list and read requests (``crm outbox list``);
- ``outbox.outbox_request.retry``: send failed requests again (``crm outbox retry``),
  delivery by hand (``crm outbox deliver``);
- ``outbox.outbox_request.answer``: record another system's answer (``crm outbox answer``).

A profile grants them like the core actions (``privileges = { outbox_request = ["read",
"outbox.outbox_request.view"] }``); the system actor and open mode allow everything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crmcore.security import NEVER, Restriction

if TYPE_CHECKING:
    from crmcore.security import AccessContext

__all__ = [
    "ANSWER_PERMISSION",
    "PERMISSIONS",
    "RETRY_PERMISSION",
    "VIEW_PERMISSION",
    "restrictions",
]

VIEW_PERMISSION = "outbox.outbox_request.view"
RETRY_PERMISSION = "outbox.outbox_request.retry"
ANSWER_PERMISSION = "outbox.outbox_request.answer"
PERMISSIONS = (VIEW_PERMISSION, RETRY_PERMISSION, ANSWER_PERMISSION)

_READS = ("read", "export")


def restrictions(context: AccessContext, entity: str, action: str) -> list[Restriction] | None:
    """No user writes requests; only those whose profile grants ``view`` read them."""
    if entity != "outbox_request" or context.actor.user_id is None:
        return None
    if action in _READS:
        if (
            context.service is not None
            and context.service.privilege(context, entity, VIEW_PERMISSION)[0]
        ):
            return None
        return [Restriction(NEVER, f"reading outbox requests needs {VIEW_PERMISSION}")]
    return [Restriction(NEVER, "outbox requests are written by the system only")]
