"""The unit of work's queue of signals: what its writes announce, sent after the commit.

:class:`SignalQueue` is a part of :class:`~crmcore.storage.uow.UnitOfWork`, on top of its
:class:`~crmcore.storage.uow_access.AccessChecks`. Signals queued by
a unit go out only after it commits (dropped on rollback); a batch queues one entry whose events
are made after the commit, and only if the signal has receivers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.errors import (
    PluginError,
)
from crmcore.signals import CREATED, RecordEvent
from crmcore.storage.uow_access import AccessChecks

if TYPE_CHECKING:
    from crmcore.registry import EntityType


log = logging.getLogger("crmcore.storage.uow")  # the unit of work's logger


#: Marks a queued signal whose events are read back after the commit (see announce_created).
_READ_BACK = "__read_back__"
#: Marks a queued signal whose events are made after the commit (see announce_many).
_MANY = "__many__"


class SignalQueue(AccessChecks):
    """A part of :class:`~crmcore.storage.uow.UnitOfWork` (see the module)."""

    def announce(self, name: str, sender: Any, **kwargs: Any) -> None:
        """Queue signal *name* to be sent after the commit (dropped on rollback)."""
        self._signals.append((name, sender, kwargs))

    def announce_many(self, name: str, sender: Any, events: Callable[[], Iterable[dict[str, Any]]]) -> None:
        """Queue signal *name* once for each set of keyword arguments *events()* gives, to be
        sent after the commit (dropped on rollback): :meth:`announce` for a batch. *events* is
        called only if the signal has receivers for *sender*, so a batch nobody listens to
        builds no event at all.
        """
        self._signals.append((name, sender, {_MANY: events}))

    def announce_created(self, etype: EntityType, ids: Sequence[int]) -> None:
        """Queue ``record-created`` for each of *ids*, records of *etype* created in bulk.

        The bulk import calls it once per batch instead of holding a million events until the
        commit: after the commit, if the signal has receivers for the entity type, the records
        are read back in batches and each receiver gets the same :class:`RecordEvent` a single
        :meth:`create` sends.
        """
        if ids:
            self._signals.append((CREATED, etype.name, {_READ_BACK: (etype, ids)}))

    def _send_signals(self) -> None:
        failures = []
        queued, self._signals = self._signals, []
        reader: sa.Connection | None = None
        found: dict[tuple[str, Any], list[Any]] = {}  # receivers by signal and sender, looked up once
        try:
            for name, sender, kwargs in queued:
                try:
                    receivers = found[(name, sender)]
                except KeyError:
                    receivers = found[(name, sender)] = list(self.crm.signals.signal(name).receivers_for(sender))
                except TypeError:  # a sender that cannot be a key
                    receivers = list(self.crm.signals.signal(name).receivers_for(sender))
                if not receivers:
                    continue
                sends: Iterable[dict[str, Any]] = [kwargs]
                if _READ_BACK in kwargs:
                    reader = reader or self.crm.connect()
                    sends = self._created_events(reader, *kwargs[_READ_BACK])
                elif _MANY in kwargs:
                    sends = kwargs[_MANY]()
                for each in sends:
                    for receiver in receivers:
                        try:
                            receiver(sender, **each)
                        except Exception as exc:
                            log.error("receiver %r of %s raised %s", receiver, name, type(exc).__name__)
                            failures.append((receiver, name, exc))
        finally:
            if reader is not None:
                reader.close()
        if failures:
            receiver, name, error = failures[0]
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            raise PluginError(
                f"receiver {getattr(receiver, '__qualname__', receiver)!r} of signal {name!r} raised "
                f"{type(error).__name__}: {error}{more}; the unit of work was already committed"
            ) from error

    def _created_events(self, connection: sa.Connection, etype: EntityType, ids: Sequence[int]) -> Iterator[dict[str, Any]]:
        table = self.registry.table(etype.name)
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            rows = connection.execute(sa.select(table).where(table.c.id.in_(chunk))).mappings()
            records = {row["id"]: self._row_to_record(etype, row) for row in rows}
            for record_id in chunk:
                if record_id in records:  # gone only if deleted later in the same unit
                    yield {"event": RecordEvent("created", etype.name, records[record_id], self.actor, {})}
