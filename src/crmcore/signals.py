"""Signals: announcements that something has happened, sent after the commit.

Each app has its own namespace (:attr:`crmcore.Crm.signals`), so two apps in one process never
see each other's events. The core sends three signals; the sender is the entity type's name and
the one keyword argument is ``event``, a :class:`RecordEvent`:

=================  ==========================================================================
``record-created``  a record was created (one per record, imports included)
``record-updated``  a record was updated; ``event.changes`` maps each changed field to
                    ``(old, new)``
``record-deleted``  a record was deleted; ``event.record`` is the record as it was
``record-moved``    a staged record moved to another stage of its pipeline; ``event`` is a
                    :class:`MoveEvent` (pipeline, source and target stage)
=================  ==========================================================================

Receivers run after the unit of work committed, in the committing thread, in the order the
changes were made. They cannot change the outcome: to veto or to join the transaction, use a
hook (``crm_before_create``, ``crm_after_update``, ``crm_before_commit``...). If a receiver
raises, the others still run and :meth:`UnitOfWork.commit` then raises a
:class:`~crmcore.errors.PluginError` naming the receiver; the committed data stay committed.

Plugins announce their own events with ``crm.signals.signal("helpdesk.ticket-closed")`` and
queue them with :meth:`UnitOfWork.announce`, so they too go out only after the commit.

Example::

    def on_created(sender, event):
        print(sender, event.record.id)

    crm.signals.created.connect(on_created, sender="lead")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import blinker

if TYPE_CHECKING:
    from crmcore.actors import Actor
    from crmcore.records import Record

__all__ = ["CREATED", "DELETED", "MOVED", "UPDATED", "MoveEvent", "RecordEvent", "Signals"]

CREATED = "record-created"
UPDATED = "record-updated"
DELETED = "record-deleted"
MOVED = "record-moved"


@attrs.frozen
class RecordEvent:
    """What a record signal carries.

    :ivar action: ``"created"``, ``"updated"`` or ``"deleted"``.
    :ivar entity: the entity type's name.
    :ivar record: the record after the change (before it, for ``deleted``).
    :ivar actor: who acted.
    :ivar changes: ``{field: (old, new)}`` for updates; empty otherwise.
    """

    action: str
    entity: str
    record: Record
    actor: Actor
    changes: dict[str, tuple[Any, Any]] = attrs.field(factory=dict)


class Signals:
    """The signal namespace of one app."""

    def __init__(self) -> None:
        self._namespace = blinker.Namespace()
        self.created = self.signal(CREATED)
        self.updated = self.signal(UPDATED)
        self.deleted = self.signal(DELETED)

    def signal(self, name: str, doc: str | None = None) -> blinker.NamedSignal:
        """The signal called *name* in this app (created on first use)."""
        return self._namespace.signal(name, doc)

    def __contains__(self, name: str) -> bool:
        return name in self._namespace


@attrs.frozen
class MoveEvent:
    """What ``record-moved`` carries: *record* (after the move) went from *source* to
    *target* in *pipeline*, moved by *actor*."""

    entity: str
    record: Record
    actor: Actor
    pipeline: str
    source: str | None
    target: str | None
