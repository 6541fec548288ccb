"""What the writing calls of the unit of work share: the record of a change, the clock, ids
given as text, the records a unit issued itself (:class:`_Issued`), and :func:`_atomic`, which
makes a call all or nothing within its unit."""

from __future__ import annotations

import datetime as dt
import functools
import gc
from collections.abc import Callable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from crmcore.errors import NotFoundError
from crmcore.fields.base import shown
from crmcore.records import Record

if TYPE_CHECKING:
    from crmcore.storage.uow import UnitOfWork

__all__ = ["Change"]


@attrs.frozen
class Change:
    """One change a unit of work made: ``action`` is created, updated or deleted."""

    action: str
    entity: str
    id: int


class _Issued(Record):
    """A record with every field, as a unit of work read it from its row or wrote it: the
    values of the row at the record's version. A write handed such a record by the unit that
    issued it checks access on these values and matches the version in its ``UPDATE``, without
    reading the row again; any other record (built by hand, from another unit, with fields
    hidden) is read again from the database first. Equal to a :class:`Record` of the same values.
    """

    __slots__ = ("_origin",)

    @classmethod
    def of(cls, entity: str, values: dict[str, Any], origin: object) -> _Issued:
        """The record of *values*, a dict made for it that it takes over (not copied, unlike
        ``Record(entity, values)``: nothing else holds it), issued by the unit whose token
        is *origin*."""
        record = _new(cls)
        _set(record, "entity", entity)
        _set(record, "values", MappingProxyType(values))
        _set(record, "_origin", origin)
        return record


_new = object.__new__
_set = object.__setattr__


def _issued_by(record: Record, origin: object) -> bool:
    """Did the unit of work whose token is *origin* issue *record* (see :class:`_Issued`)?"""
    return type(record) is _Issued and getattr(record, "_origin", None) is origin


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_Method = TypeVar("_Method", bound="Callable[..., Any]")


def _atomic(method: _Method) -> _Method:
    """Make a writing method all or nothing within its unit of work.

    The method runs inside a SAVEPOINT. If it raises (bad input found late, a refused delete,
    a hook's veto, a constraint of the database), its writes, audit entries, recorded changes
    and queued signals are undone and the unit is left as it was before the call: the caller
    may go on and commit the rest. Without it, a partial cascade would survive a refused delete,
    and on PostgreSQL one failed statement would spoil the whole transaction. Calls nested in
    another (a hook creating a record) run inside the outer call's savepoint.

    While the outermost call runs, the cyclic garbage collector is paused: a set-based write
    makes thousands of short-lived objects without cycles (records, their values, audit
    entries), which reference counting frees, and the collector's scans of them and of the
    records the caller holds would cost up to half the time of the write.
    """

    @functools.wraps(method)
    def run(self: UnitOfWork, *args: Any, **kwargs: Any) -> Any:
        if self._depth:
            return method(self, *args, **kwargs)
        collecting = gc.isenabled()
        gc.disable()
        try:
            return _outermost(self, args, kwargs)
        finally:
            if collecting:
                gc.enable()

    def _outermost(self: UnitOfWork, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        self._driver_sql("SAVEPOINT crm_operation")
        marks = (len(self._audit), self._flushes, len(self.changes), len(self._signals))
        pending = self._audit  # a flush starts a new list and leaves this one as it was
        self._depth += 1
        try:
            result = method(self, *args, **kwargs)
        except BaseException:
            self._depth -= 1
            if not self._done:
                self._driver_sql("ROLLBACK TO SAVEPOINT crm_operation")
                self._driver_sql("RELEASE SAVEPOINT crm_operation")
            audit, flushes, changes, signals = marks
            if self._flushes != flushes:
                # entries queued before the call and flushed during it went with the savepoint
                self._audit = pending[:audit]
            else:
                del self._audit[audit:]
            del self.changes[changes:]
            del self._signals[signals:]
            raise
        self._depth -= 1
        if not self._done:
            self._driver_sql("RELEASE SAVEPOINT crm_operation")
        return result

    return run  # type: ignore[return-value]


_ID_MAX = 2**31 - 1  # ids are INTEGER columns (32 bits on PostgreSQL)


def _as_id(entity: str, value: Any) -> int:
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value)
    if number is not None and abs(number) <= _ID_MAX:
        return number
    if number is not None:
        raise NotFoundError(f"{entity} {number} not found: ids are whole numbers from 1 to {_ID_MAX}",
                            entity=entity, id=value)
    raise NotFoundError(f"{entity} id must be a whole number, got {shown(value)}", entity=entity, id=value)
