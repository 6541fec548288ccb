"""How the help desk's hooks reach records other than the one written: with the actor's
rights, through the unit of work's public API (:func:`referenced`), and, where a side effect
must run with more (a response stamping the ticket it answers, a ticket's SLA clocks, the
survey of a resolution, a queue picking an agent), inside :func:`system_scope`, which names
and logs the reason: the one place the plugin widens its rights.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from crmcore.errors import NotFoundError, ReferenceError, missing_reference

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = ["referenced", "system_scope"]

log = logging.getLogger(__name__)


@contextlib.contextmanager
def system_scope(uow: UnitOfWork, reason: str) -> Iterator[UnitOfWork]:
    """Run a block of *uow*'s work as the system, in the same transaction, for *reason* (a
    sentence saying why the actor's own rights do not suffice), which is logged with the actor
    and written with every audit entry of the block (:meth:`UnitOfWork.system_scope`).

    The help desk's only way to act with more rights than the actor's; read what the actor
    names with the actor's rights first (``uow.get``), then widen for the side effect alone::

        ticket = uow.get("ticket", ticket_id)  # NotFoundError if the actor may not read it
        with system_scope(uow, "a response stamps the ticket's first response"):
            uow.update("ticket", ticket.id, first_response_at=now)
    """
    log.info("system scope for %s: %s", uow.actor.username, reason)
    with uow.system_scope(reason) as scoped:  # audited: the trail says for whom and why
        yield scoped


def referenced(uow: UnitOfWork, entity: str, field: str, target: str, target_id: int) -> Record:
    """The *target* record *target_id* that field *field* of a new or changed *entity* names,
    as the actor may read it (hidden fields left out).

    :raises ReferenceError: when there is none or the actor may not read it, with the message
        crmcore gives for a missing one (:func:`crmcore.errors.missing_reference`): the two are
        not told apart.
    """
    try:
        return uow.get(target, target_id)
    except NotFoundError:
        message = missing_reference(target, target_id)
        raise ReferenceError({field: [message]}, entity=entity) from None
