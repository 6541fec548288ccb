"""Approvals: a record's next move waits until a user with a role approves or rejects it.

The ``require_approval`` action of a rule (or :func:`request_approval`) opens an approval
(entity type ``approval``) for a record and a role. While it is *pending*, every move of the
record is refused with a :class:`~crmcore.errors.TransitionError` naming the approval, the role
and how to decide it. A user holding the role, or a role above it in the role tree, decides it
(:func:`approve`, :func:`reject`; ``crm approvals approve ID --as USER``):

- *approved*: the record moves on; the approval is closed by its next move;
- *rejected*: moves forward (to a later open stage or a won stage) stay refused; the record may
  go back to an earlier stage or to a lost stage, which closes the approval.

Approvals are written by the rule engine and these functions only (every field is read-only
for users), as the system, inside the caller's unit of work; they are audited, so the decision
shows in the record's timeline.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crmcore.actors import Actor
from crmcore.errors import NotFoundError, PermissionDeniedError, TransitionError, ValidationError
from crmcore.records import Record

if TYPE_CHECKING:
    from crmcore.storage.uow import UnitOfWork
    from crmcore.workflow.pipelines import Transition

__all__ = [
    "APPROVAL_STATUSES",
    "APPROVED",
    "PENDING",
    "REJECTED",
    "approve",
    "approvals",
    "check_move",
    "check_moves",
    "close_decided",
    "close_decided_many",
    "may_decide",
    "reject",
    "request_approval",
]

PENDING = "pending"
APPROVED = "approved"
REJECTED = "rejected"
APPROVAL_STATUSES = (PENDING, APPROVED, REJECTED)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def as_system(uow: UnitOfWork) -> Iterator[UnitOfWork]:
    """Run a block of *uow*'s work as the system actor (rules and approvals bookkeeping)."""
    with uow.acting_as(Actor.system()):
        yield uow


def request_approval(
    uow: UnitOfWork, record: Record, role: str, *, rule: str | None = None, message: str | None = None,
) -> Record:
    """Hold *record*'s next move until a user with *role* approves it.

    An open approval of the same role and rule for the record is returned instead of a second
    one.

    :raises NotFoundError: when there is no role named *role*.
    """
    role_table = uow.registry.table("role")
    if uow.connection.execute(sa.select(role_table.c.id).where(role_table.c.name == role)).first() is None:
        where = f"rule {rule!r}: " if rule else ""
        raise NotFoundError(f"{where}no role named {role!r} to approve {record.entity} {record.id}; create the role first",
                            entity="role", id=role)
    table = uow.registry.table("approval")
    existing = uow.connection.execute(sa.select(table.c.id).where(
        table.c.record_entity == record.entity, table.c.record_id == record.id, table.c.role == role,
        table.c.closed_at.is_(None), table.c.rule == rule if rule is not None else table.c.rule.is_(None),
    )).first()
    with as_system(uow):
        if existing is not None:
            return uow.get("approval", existing[0])
        workflow = uow.crm.workflow
        stage = None
        if workflow.staged(record.entity):
            stage = record.get(workflow.pipeline_of(record.entity, record.values).field)
        return uow.create("approval", record_entity=record.entity, record_id=record.id, role=role, rule=rule,
                          message=message, stage=stage, status=PENDING)


def check_move(uow: UnitOfWork, record: Record, transition: Transition) -> None:
    """Refuse the move of *record* while an approval is pending, or forward after a rejection.

    :raises TransitionError: naming the approval, its role and what to do.
    """
    check_moves(uow, [(record, transition)])


def check_moves(uow: UnitOfWork, moves: Sequence[tuple[Record, Transition]]) -> None:
    """Refuse moves of ``(record, transition)`` pairs of records of one entity type while an
    approval is pending, or forward after a rejection (see :func:`check_move`),
    with one read of their open approvals per 500 records; the first record held is named."""
    if not moves:
        return
    entity = moves[0][0].entity
    table = uow.registry.table("approval")
    ids = sorted({record.id for record, _ in moves})
    found: dict[int, list[Any]] = {}
    for start in range(0, len(ids), 500):
        statement = sa.select(table.c.id, table.c.status, table.c.role, table.c.rule, table.c.decided_by, table.c.record_id).where(
            table.c.record_entity == entity, table.c.record_id.in_(ids[start:start + 500]), table.c.closed_at.is_(None),
        ).order_by(table.c.id)
        for row in uow.connection.execute(statement):
            found.setdefault(row.record_id, []).append(row)
    if not found:
        return
    for record, transition in moves:
        rows = found.get(record.id)
        if rows:
            _check(uow, record, transition, rows)


def _check(uow: UnitOfWork, record: Record, transition: Transition, found: Sequence[Any]) -> None:
    workflow = uow.crm.workflow
    pipeline = workflow.pipeline_of(record.entity, record.values)
    current = record.get(pipeline.field)
    head = f"{record.entity} {record.id} cannot move from {current!r} to {transition.target!r}"
    for row in found:
        why = f" (rule {row.rule!r})" if row.rule else ""
        if row.status == PENDING:
            raise TransitionError(
                f"{head}: approval {row.id} by role {row.role!r} is pending{why}; a user with that role decides it "
                f"with 'crm approvals approve {row.id}' or 'crm approvals reject {row.id}'"
            )
        if row.status == REJECTED:
            names = pipeline.stage_names
            target = pipeline.stage(transition.target)
            backward = current in names and names.index(target.name) < names.index(current)
            if target.kind != "lost" and not backward:
                raise TransitionError(
                    f"{head}: approval {row.id} by role {row.role!r} was rejected{why}; move it back to an earlier "
                    "stage or to a lost stage"
                )


def close_decided(uow: UnitOfWork, record: Record) -> int:
    """Close the decided approvals of *record* (after it moved): they no longer hold it."""
    return close_decided_many(uow, [record])


def close_decided_many(uow: UnitOfWork, records: Sequence[Record]) -> int:
    """Close the decided approvals of *records*, of one entity type, after they moved (one read
    per 500 records)."""
    if not records:
        return 0
    table = uow.registry.table("approval")
    stamp = _now()
    ids = sorted({record.id for record in records})
    found: list[int] = []
    for start in range(0, len(ids), 500):
        found.extend(r[0] for r in uow.connection.execute(sa.select(table.c.id).where(
            table.c.record_entity == records[0].entity, table.c.record_id.in_(ids[start:start + 500]),
            table.c.closed_at.is_(None), table.c.status != PENDING,
        ).order_by(table.c.id)))
    with as_system(uow):
        for approval_id in found:
            uow.update("approval", approval_id, closed_at=stamp)
    return len(found)


def may_decide(uow: UnitOfWork, approval: Record) -> bool:
    """Does the actor hold the approval's role, or a role above it?"""
    if uow.actor.is_system:
        return False
    access = uow.access
    role_id = access.role_ids_by_name.get(approval.role)
    return role_id is not None and (role_id in access.role_ids or role_id in access.below)


def _decide(uow: UnitOfWork, approval_id: int | str, status: str, comment: str | None) -> Record:
    approval = uow.get("approval", approval_id)  # type: ignore[arg-type]  # text ids are checked there
    if uow.actor.is_system:
        raise PermissionDeniedError(
            f"approval {approval.id} is decided by a user holding role {approval.role!r}; name the user (--as USERNAME)",
            reasons=["the system actor does not decide approvals"],
        )
    if approval.status != PENDING:
        who = f" by user {approval.decided_by}" if approval.decided_by else ""
        raise ValidationError(f"approval {approval.id} was already {approval.status}{who}; only pending approvals are decided",
                              entity="approval")
    if not may_decide(uow, approval):
        raise PermissionDeniedError(
            f"{uow.actor.username} may not decide approval {approval.id}: it needs role {approval.role!r} or a role above it",
            reasons=[f"{uow.actor.username} holds neither role {approval.role!r} nor a role above it"],
        )
    decided_by = uow.actor.user_id
    with as_system(uow):
        return uow.update(approval, status=status, decided_by=decided_by, decided_at=_now(), comment=comment)


def approve(uow: UnitOfWork, approval_id: int | str, comment: str | None = None) -> Record:
    """Approve: the record may move on.

    :raises NotFoundError: for an unknown approval.
    :raises PermissionDeniedError: unless the actor holds the role or a role above it.
    :raises ValidationError: for an approval that is already decided.
    """
    return _decide(uow, approval_id, APPROVED, comment)


def reject(uow: UnitOfWork, approval_id: int | str, comment: str | None = None) -> Record:
    """Reject: the record may only go back or to a lost stage (same errors as :func:`approve`)."""
    return _decide(uow, approval_id, REJECTED, comment)


def approvals(uow: UnitOfWork, *, status: str | None = PENDING, mine: bool = True) -> list[Record]:
    """Approvals, oldest first.

    :param status: only those of this status (``None``: every status).
    :param mine: only those the actor may decide (the system actor: all).
    """
    query = uow.query("approval")
    if status is not None:
        query = query.where(status=status)
    found = query.order_by("id").all()
    if mine and not uow.actor.is_system:
        found = [a for a in found if may_decide(uow, a)]
    return found
