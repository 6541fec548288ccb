"""The hooks the outbox offers to other plugins, added from its ``crm_add_hookspecs``.

Sinks: ``outbox_sinks`` adds sink types (or ready sinks) beside the built-in file and HTTP
ones. Answers: ``outbox_answered`` lets the plugin that posted requests follow the other
system's answers (an order moving to fulfilment when production accepts it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmcore.hookspecs import hookspec

if TYPE_CHECKING:
    from crmcore import Record, UnitOfWork

__all__ = ["outbox_answered", "outbox_sinks"]


# ---------------------------------------------------------------------------------------------
# Sinks
# ---------------------------------------------------------------------------------------------


@hookspec
def outbox_sinks() -> list[Any] | None:
    """Add sink types that ``[outbox.sinks.NAME] type = "..."`` may name, or ready sinks.

    Called once per app, when the outbox reads its settings (start-up). All implementations
    are called and their lists joined; a type or sink name given twice (or one of the built-in
    types ``file`` and ``http``) stops start-up naming both plugins.

    :returns: a list of :class:`crm_outbox.SinkType` (``SinkType(type, build)``, where
        ``build(name, options)`` returns a sink from the settings table of a sink of that type,
        or raises :class:`~crmcore.errors.ConfigError` naming the key at fault) and of ready
        sinks (objects with a ``name`` and a ``deliver(requests)`` method, used under that
        name without settings), or ``None``. A sink's ``deliver`` gets a list of
        :class:`crm_outbox.OutgoingRequest` and returns one :class:`crm_outbox.Outcome` per
        request, in any order; raising fails the whole batch. It must be idempotent by
        ``request.key``: a request whose worker stopped mid-delivery is delivered again. A
        delivery run calls it from a thread of its own, one batch at a time, while it records
        the previous batch and claims the next one.

    Example::

        class QueueSink:
            def __init__(self, name, queue):
                self.name, self.queue = name, queue

            def deliver(self, requests):
                for request in requests:
                    self.queue.put(request.key, request.payload)   # the queue dedups by key
                return [Outcome.delivered(request.key) for request in requests]

        @hookimpl
        def outbox_sinks():
            return [SinkType("queue", lambda name, options: QueueSink(name, options["queue"]))]

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------


@hookspec
def outbox_answered(uow: UnitOfWork, items: list[tuple[Record, str, str]]) -> None:
    """Follow the answers of other systems to requests: their supply state changed.

    Called inside the unit of work that records the answers (a sink's synchronous answer at
    delivery, :func:`crm_outbox.answer` and :func:`crm_outbox.answer_many`, an answers file),
    once per batch, after the requests were updated; a hook that raises rolls the whole unit
    back, answers included. All implementations are called; each picks the requests it posted
    (by ``kind`` or ``source_entity``). Answers that repeat a request's state are not passed.

    :param uow: the unit of work recording the answers (the system acting, on behalf of the
        user who answered when a user did).
    :param items: ``(request, old_state, new_state)`` for each request whose supply state
        changed: the request record as updated, and its states before and after (among
        ``requested``, ``accepted``, ``fulfilled``, ``cancelled``).
    :returns: ``None``.

    Example::

        @hookimpl
        def outbox_answered(uow, items):
            mine = [(r, new) for r, old, new in items if r.source_entity == "sales_order"]
            for request, new in mine:
                if new == "fulfilled":
                    uow.move("sales_order", request.source_id, "fulfilled")

    .. versionadded:: 0.1
    """
