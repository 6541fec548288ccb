"""The unit of work's set-based work for plugins: find, check, create, update and delete many
records of one entity type on the secured road, a statement per batch, not per record.

:class:`SetWork` is a part of :class:`~crmcore.storage.uow.UnitOfWork`, on top of its
:class:`~crmcore.storage.uow_signals.SignalQueue`; the work itself lives in
:mod:`crmcore.storage.sets`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from crmcore.storage import sets as _sets
from crmcore.storage.operations import _atomic
from crmcore.storage.uow_signals import SignalQueue

if TYPE_CHECKING:
    from crmcore.records import Record
    from crmcore.storage.uow import UnitOfWork


class SetWork(SignalQueue):
    """A part of :class:`~crmcore.storage.uow.UnitOfWork` (see the module)."""

    def find_many(self, entity: str, field: str, values: Iterable[Any], /, *, ignore_case: bool = False,
                  ignore_chars: str = "", lock: bool = False, fields: Sequence[str] | None = None) -> list[Record]:
        """The records of *entity* the actor may read whose *field* holds one of *values*, in id
        order, without the fields hidden from the actor: one query per 500 values.

        :param ignore_case: compare text without case (``values`` are lowered).
        :param ignore_chars: characters the stored text is compared without (phone separators
            such as ``" -()./"``; *values* are given without them).
        :param lock: lock the rows until the unit ends (``SELECT ... FOR UPDATE``).
        :param fields: read only ``id`` and these fields (``"version"`` included): records that
            are projections, as ``Query.fields`` makes them (no lock).
        :raises ValidationError: for an unknown field.
        :raises PermissionDeniedError: for a field hidden from the actor.
        """
        return _sets.find_many(_unit(self), entity, field, values, ignore_case=ignore_case, ignore_chars=ignore_chars, lock=lock,
                               fields=fields)

    def check_access_many(self, records: Sequence[Record], action: str, /) -> None:
        """:meth:`check_access` for many records of one entity type, on their rows as stored:
        one query per 500 records; the first record refused (in the order given) raises.

        :raises NotFoundError: for a record the actor may not read (or that is gone).
        :raises PermissionDeniedError: for one it may read but not *action*.
        """
        _sets.check_access_many(_unit(self), records, action)

    @_atomic
    def create_many(self, entity: str, rows: Sequence[Mapping[str, Any]], /, *,
                    known: Mapping[str, Iterable[int]] | None = None) -> list[Record]:
        """Create one record of *entity* per mapping of *rows*, with the checks, hooks, audit
        and signals of :meth:`create` for each, and one ``INSERT`` for all. All or nothing.

        :param known: ``{entity: ids}`` of records this unit read or wrote, whose existence the
            reference check need not query again.
        :returns: the new records, in the order of *rows*.
        :raises ValidationError: naming the first row that does not fit.
        :raises ReferenceError: when a reference names a missing or unreadable record.
        """
        return _sets.create_many(_unit(self), entity, rows, known)

    @_atomic
    def update_many(self, entity: str, items: Sequence[tuple[Record, Mapping[str, Any]]], /) -> list[Record]:
        """Update records of *entity*, each given with its changes ``(record, {field: value})``,
        with the checks, hooks, audit and signals of :meth:`update`, set-based: the rows are
        read again (a record the actor may not read is not found, one at another version than
        given a conflict), one statement per batch. All or nothing.

        :returns: the records changed, as they are now (those already holding the values left out).
        """
        return _sets.update_many(_unit(self), entity, items)

    @_atomic
    def delete_many(self, entity: str, records: Sequence[Record], /, *, privilege: str = "delete") -> int:
        """Delete *records* of *entity* with the checks, hooks, reference rules, audit (each
        record's full snapshot) and signals of :meth:`delete`, set-based: the rows are read
        again and must be at the versions given. All or nothing.

        :param privilege: what the actor must be granted on each record: ``"delete"``, or
            ``"update"`` for a removal that is part of a change the actor makes (a lead
            converted into an account, a contact and an opportunity).
        :returns: the number of records deleted.
        """
        return _sets.delete_many(_unit(self), entity, records, privilege)

    def field_history(self, entity: str, ids: Iterable[int], field: str, /) -> dict[int, list[tuple[Any, Any, Any]]]:
        """The changes of *field* in the audit trails of the records *ids* the actor may read
        (others are left out): ``{id: [(at, old, new), ...]}`` oldest first, values in their
        audit (JSON) form; for derived figures such as the time deals spend in each stage.

        :raises PermissionDeniedError: for a field hidden from the actor.
        """
        return _sets.field_history(_unit(self), entity, ids, field)

    def atomic(self, function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call ``function(*args, **kwargs)`` all or nothing within this unit: when it raises,
        its writes, audit entries and queued signals are undone and the unit goes on as before
        the call (a plugin's operation made of several writes)."""
        return _sets.atomic(_unit(self), function, args, kwargs)


def _unit(part: SetWork) -> UnitOfWork:
    """The unit of work *part* is a part of (the work in :mod:`crmcore.storage.sets` uses all of it)."""
    return cast("UnitOfWork", part)
