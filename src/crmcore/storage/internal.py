"""The unit of work's parts that the core's own services build on: the secured read road
(:mod:`crmcore.query`), the bulk import and export (:mod:`crmcore.transfer`), the sales
features' batch writes and the workflow's lookups.

These are the steps of the unit of work's public record API, taken one at a time by services
that read or write set-based: running a statement in the unit's transaction, turning a row
into a record, the write checks and the bookkeeping after a write. Nothing outside
:mod:`crmcore.storage` touches the unit of work's private members; it comes here instead, so
the unit's inside can change without hunting for its users. A plugin does not need this
module: the public methods of :class:`~crmcore.storage.uow.UnitOfWork` are its road, and a
statement run here carries no read predicate unless the caller put it in (as
:mod:`crmcore.query` does for every entity it touches).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

    from crmcore.errors import ConflictError
    from crmcore.records import Record
    from crmcore.registry import EntityType
    from crmcore.storage.uow import UnitOfWork

__all__ = [
    "check_writable", "created", "execute", "prepare_create", "record_maker", "recorded", "refusals", "row_of",
    "select_one", "stale", "to_row", "visible", "written",
]


def execute(uow: UnitOfWork, statement: Any, params: Any = None) -> sa.CursorResult[*tuple[Any, ...]]:
    """Run *statement* in *uow*'s transaction (a lock timeout or lost race becomes crmcore's
    error). The caller applies the actor's read filter (:meth:`UnitOfWork.read_filter`)."""
    return uow._execute(statement, params)


def record_maker(uow: UnitOfWork) -> Callable[..., Record]:
    """``make(etype, row, *, full=False)``: the record of a row of *etype* read in *uow*
    (with ``full``, every field; else the fields hidden from the actor are left out)."""
    return uow._row_to_record


def row_of(uow: UnitOfWork, etype: EntityType, row: Mapping[Any, Any], *, full: bool = False) -> Record:
    """The record of *row*, a row of *etype* read in *uow* (see :func:`record_maker`)."""
    return uow._row_to_record(etype, row, full=full)


def select_one(uow: UnitOfWork, etype: EntityType, record_id: int) -> Record:
    """The full record *record_id* of *etype*, read without the actor's read filter.

    :raises NotFoundError: when it does not exist.
    """
    return uow._select_one(etype, record_id)


def visible(uow: UnitOfWork) -> Callable[[Record], Record]:
    """``visible(record)``: a full record as the actor may see it (hidden fields left out)."""
    return uow._visible


def check_writable(uow: UnitOfWork, etype: EntityType, names: Iterable[str]) -> None:
    """Refuse fields of *etype* the actor may not write (:class:`PermissionDeniedError`)."""
    uow._check_writable(etype, names)


def prepare_create(uow: UnitOfWork, etype: EntityType, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps of a create before its INSERT, for a batch of validated *items*: owners
    defaulted, ``crm_before_create`` run once and its changes merged. Returns *items*."""
    return uow._prepare_create(etype, items)


def created(uow: UnitOfWork, etype: EntityType, records: list[Record], *, announce: bool = True) -> None:
    """The steps of a create after its INSERT, for a batch of new *records*: changes and audit
    entries recorded, ``record-created`` queued (unless the caller announces in bulk),
    ``crm_after_create`` run once (the caller then calls :func:`written`)."""
    uow._created(etype, records, announce=announce)


def recorded(uow: UnitOfWork, action: str, etype: EntityType, record: Record, old: Record | None, diff: Mapping[str, Any]) -> None:
    """The change and audit entry of one written record (*action* ``"updated"`` or
    ``"deleted"``), and its signal queued; the caller runs the hooks, once for its batch."""
    uow._after_write(action, etype, record, old, diff)


def written(uow: UnitOfWork, entity: str) -> None:
    """Renew the actor's cached access after writes of *entity* that it may depend on (roles,
    groups and their members)."""
    uow._security_changed(entity)


def refusals(uow: UnitOfWork, etype: EntityType, row: Mapping[str, Any] | None = None) -> AbstractContextManager[None]:
    """A block in which the database's refusal of a write of *etype* records becomes crmcore's
    error (a broken unique constraint: a :class:`ValidationError` naming the field and *row*'s
    value)."""
    return uow._refusals(etype, row)


def to_row(uow: UnitOfWork, etype: EntityType, values: Mapping[str, Any]) -> dict[str, Any]:
    """``{column: stored value}`` of parsed *values* of *etype*."""
    return uow._to_row(etype, values)


def stale(uow: UnitOfWork, entity: str, record_id: int, expected: int, current: int | None) -> ConflictError:
    """The conflict of a write of a record changed (or deleted, *current* ``None``) since
    version *expected* was read."""
    return uow._stale(entity, record_id, expected, current)
