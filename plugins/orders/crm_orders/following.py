"""The opportunity follows its documents.

- Sending a quote moves its opportunity to ``quotation_sent`` when that stage lies ahead and
  the pipeline allows the moves there (each step's transition and guards; a step refused leaves
  the opportunity where it was).
- What ``won_on`` names (a quote accepted, an order confirmed or fulfilled) marks it won: it
  walks the pipeline's allowed moves forward to its won stage, with the document's net total as
  amount and today as close date.
- With ``lost_when_quotes_closed``, an opportunity whose current quotes are all rejected or
  expired and which has no order left is moved to its lost stage.
- The amount of an open opportunity follows its current quote's net total.

These moves are the documents' doing, not the user's: they run as the system actor, through
``uow.move`` (transitions, guards, pending approvals, rules of the stage entered all apply).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from crmcore import Actor
from crmcore.errors import ConflictError, TransitionError, ValidationError

from crm_orders.settings import orders_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.money import Money
    from crmcore.records import Record
    from crmcore.workflow import Pipeline

__all__ = ["advance", "follow_amounts", "mark_lost_if_closed", "mark_won", "quotation_sent"]

log = logging.getLogger(__name__)

QUOTATION_STAGE = "quotation_sent"


def _pipeline(uow: UnitOfWork, opportunity: Record) -> Pipeline:
    return uow.crm.workflow.pipeline_of("opportunity", opportunity.values)


def _path(pipeline: Pipeline, source: str, target: str) -> list[str] | None:
    """The shortest chain of allowed moves from *source* to *target* that only goes forward
    (to later stages), or ``None``."""
    order = pipeline.stage_names
    todo: list[tuple[str, list[str]]] = [(source, [])]
    seen = {source}
    while todo:
        stage, path = todo.pop(0)
        for nxt in pipeline.targets(stage):
            if nxt in seen or order.index(nxt) < order.index(stage):
                continue
            if nxt == target:
                return [*path, nxt]
            seen.add(nxt)
            todo.append((nxt, [*path, nxt]))
    return None


def advance(uow: UnitOfWork, opportunity: Record, target: str, **changes: Any) -> Record | None:
    """Move *opportunity* forward to *target* along the pipeline's allowed moves, *changes*
    with the last one; all the steps or none. ``None`` when the pipeline does not allow it
    (no forward path, a guard, a pending approval)."""
    pipeline = _pipeline(uow, opportunity)
    current = opportunity.values.get(pipeline.field)
    if target not in pipeline.stage_names or current == target or current is None:
        return None
    path = _path(pipeline, current, target)
    if path is None:
        log.info("opportunity %s: no forward path from %s to %s", opportunity.id, current, target)
        return None

    def walk() -> Record:
        record = opportunity
        for index, stage in enumerate(path):
            record = uow.move(record, stage, **(changes if index == len(path) - 1 else {}))
        return record

    with uow.acting_as(Actor.system()):
        try:
            return uow.atomic(walk)
        except (TransitionError, ValidationError, ConflictError) as exc:
            log.info("opportunity %s stays in %s: %s", opportunity.id, current, exc)
            return None


def _opportunities(uow: UnitOfWork, ids: Iterable[int | None]) -> list[Record]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return []
    with uow.acting_as(Actor.system()):
        return uow.get_many("opportunity", wanted)


def quotation_sent(uow: UnitOfWork, quotes: Sequence[Record]) -> list[Record]:
    """Move the opportunities of the sent *quotes* to ``quotation_sent`` where that lies ahead."""
    moved = []
    for opportunity in _opportunities(uow, (q.values.get("opportunity_id") for q in quotes)):
        pipeline = _pipeline(uow, opportunity)
        if QUOTATION_STAGE not in pipeline.stage_names:
            continue
        stage = pipeline.stage(opportunity.values.get(pipeline.field))
        if stage.kind != "open":
            continue
        record = advance(uow, opportunity, QUOTATION_STAGE)
        if record is not None:
            moved.append(record)
    return moved


def mark_won(uow: UnitOfWork, event: str, documents: Sequence[Record], *, today: dt.date | None = None) -> list[Record]:
    """Mark the opportunities of *documents* won when ``won_on`` is *event* (``accepted``,
    ``confirmed`` or ``fulfilled``); the document's net total becomes the amount."""
    if orders_settings(uow.crm).won_on != event:
        return []
    amounts = {d.values.get("opportunity_id"): d.values.get("net_total") for d in documents}
    won = []
    day = today or dt.datetime.now(uow.registry.timezone).date()
    for opportunity in _opportunities(uow, amounts):
        pipeline = _pipeline(uow, opportunity)
        if pipeline.stage(opportunity.values.get(pipeline.field)).kind != "open":
            continue
        target = next((s.name for s in pipeline.stages if s.kind == "won"), None)
        if target is None:
            continue
        changes: dict[str, Any] = {"close_date": day}
        amount = amounts.get(opportunity.id)
        if amount is not None:
            changes["amount"] = amount
        record = advance(uow, opportunity, target, **changes)
        if record is not None:
            won.append(record)
    return won


def mark_lost_if_closed(uow: UnitOfWork, opportunity_ids: Iterable[int | None]) -> list[Record]:
    """Move to their lost stage the opportunities whose current quotes are all rejected or
    expired and that have no order but cancelled ones (``lost_when_quotes_closed``)."""
    if not orders_settings(uow.crm).lost_when_quotes_closed:
        return []
    opportunities = _opportunities(uow, opportunity_ids)
    if not opportunities:
        return []
    ids = [o.id for o in opportunities]
    with uow.acting_as(Actor.system()):
        alive = {row["opportunity_id"] for row in uow.select("quote", fields=("opportunity_id",)).where(
            ("opportunity_id", "in", ids), ("state", "in", ("draft", "sent", "accepted")), is_current=True).all()}
        alive |= {row["opportunity_id"] for row in uow.select("sales_order", fields=("opportunity_id",)).where(
            ("opportunity_id", "in", ids), ("state", "!=", "cancelled")).all()}
    lost = []
    for opportunity in opportunities:
        if opportunity.id in alive:
            continue
        pipeline = _pipeline(uow, opportunity)
        if pipeline.stage(opportunity.values.get(pipeline.field)).kind != "open":
            continue
        target = next((s.name for s in pipeline.stages if s.kind == "lost"), None)
        if target is not None and target in pipeline.targets(opportunity.values.get(pipeline.field)):
            record = advance(uow, opportunity, target)
            if record is not None:
                lost.append(record)
    return lost


def follow_amounts(uow: UnitOfWork, quotes: Sequence[Record]) -> int:
    """Set the amount of each open opportunity to the net total of its current quote (the
    quotes given that are current, not rejected or expired). Returns how many changed."""
    latest: dict[int, Money] = {}
    for quote in quotes:
        values = quote.values
        if values.get("opportunity_id") and values.get("is_current") and values.get("state") in ("draft", "sent", "accepted") \
                and values.get("net_total") is not None:
            latest[values["opportunity_id"]] = values["net_total"]
    changes = []
    for opportunity in _opportunities(uow, latest):
        pipeline = _pipeline(uow, opportunity)
        stage = pipeline.stage(opportunity.values.get(pipeline.field))
        if stage.kind == "open" and "amount" not in stage.locked and opportunity.values.get("amount") != latest[opportunity.id]:
            changes.append((opportunity, {"amount": latest[opportunity.id]}))
    if changes:
        with uow.acting_as(Actor.system()):
            uow.update_many("opportunity", changes)
    return len(changes)
