"""Lead scoring: points from the rules of ``[sales.scoring]``, then hot, warm or cold.

A lead's score (0 to 100) adds the points of each field that has a value, of its source, of
the activities about it (per kind, up to a cap: its engagement) and of the quality issues its
last check found (usually negative), as :class:`~crmcore.sales.settings.ScoringRules` says.
Its ``temperature`` is ``hot`` from the ``hot`` threshold on, ``warm`` from ``warm``, else
``cold``. :func:`score_leads` scores many leads with one query per batch for the leads and one
for their activities, and writes the scores that changed in one statement per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs
import sqlalchemy as sa

from crmcore.records import Record
from crmcore.sales.leads import _lead_ids, read_leads, sales_settings
from crmcore.storage import internal
from crmcore.storage.batch import update_many

if TYPE_CHECKING:
    from crmcore.query import Query
    from crmcore.storage.uow import UnitOfWork

__all__ = ["LeadScore", "activity_counts", "score_leads", "score_records"]

_BATCH = 1000


@attrs.frozen
class LeadScore:
    """The score of one lead: the new score and temperature, and the ones it had before."""

    lead_id: int
    score: int
    temperature: str
    previous_score: int | None = None
    previous_temperature: str | None = None

    @property
    def changed(self) -> bool:
        return (self.score, self.temperature) != (self.previous_score, self.previous_temperature)

    def __repr__(self) -> str:
        return f"<LeadScore lead={self.lead_id} {self.score} {self.temperature}>"


def score_leads(uow: UnitOfWork, leads: Iterable[Record | int] | Query | None = None, *, store: bool = True) -> list[LeadScore]:
    """Score leads with the rules of ``[sales.scoring]``, set-based.

    :param leads: records or ids, a query over ``lead``, or ``None`` for every lead the actor
        may read (with *store*: may update).
    :param store: write ``score`` and ``temperature`` where they changed (audited).
    :returns: one :class:`LeadScore` per lead, in id order.
    :raises NotFoundError: for a given id the actor may not read.
    :raises PermissionDeniedError: with *store*, for a given lead the actor may not update.
    """
    ids, explicit = _lead_ids(uow, leads, unchecked=False)
    if store:
        uow.require("lead", "update")
    results: list[LeadScore] = []
    for start in range(0, len(ids), _BATCH):
        records = read_leads(uow, ids[start:start + _BATCH], update=store, explicit=explicit)
        results.extend(score_records(uow, records, store=store))
    return results


def score_records(uow: UnitOfWork, records: Sequence[Record], *, store: bool) -> list[LeadScore]:
    """Score full lead *records* as read (one query for their activities) and, with *store*,
    write the changed scores."""
    rules = sales_settings(uow).scoring
    counts = activity_counts(uow, [r.id for r in records])
    scores = []
    plan = []
    for record in records:
        score = rules.score(record.values, counts.get(record.id))
        temperature = rules.temperature(score)
        result = LeadScore(record.id, score, temperature, record.values.get("score"), record.values.get("temperature"))
        scores.append(result)
        if store and result.changed:
            plan.append((record, {"score": score, "temperature": temperature}))
    if plan:
        update_many(uow, "lead", plan)
    return scores


def activity_counts(uow: UnitOfWork, lead_ids: Sequence[int]) -> dict[int, Mapping[str, int]]:
    """``{lead id: {activity kind: number}}`` of the activities about *lead_ids* (all of them,
    whoever may read them: engagement is a property of the lead)."""
    if not lead_ids or not uow.registry.entity("activity").has_field("lead_id"):
        return {}
    table = uow.registry.table("activity")
    column = table.c[uow.registry.entity("activity").field("lead_id").column]
    counts: dict[int, dict[str, int]] = {}
    for start in range(0, len(lead_ids), _BATCH):
        statement = (
            sa.select(column, table.c.kind, sa.func.count())
            .where(column.in_(list(lead_ids[start:start + _BATCH])))
            .group_by(column, table.c.kind)
        )
        for lead_id, kind, number in internal.execute(uow, statement):
            counts.setdefault(lead_id, {})[kind] = int(number)
    return dict(counts)

