"""Lead scoring: points from the rules of ``[sales.scoring]``, then hot, warm or cold.

A lead's score (0 to 100) adds the points of each field that has a value, of its source, of
the activities about it (per kind, up to a cap: its engagement) and of the quality issues its
last check found (usually negative), as :class:`~crm_sales.settings.ScoringRules` says.
Its ``temperature`` is ``hot`` from the ``hot`` threshold on, ``warm`` from ``warm``, else
``cold``. :func:`score_leads` scores many leads with one query per batch for the leads and one
for their activities, and writes the scores that changed in one statement per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs
from crmcore.actors import Actor
from crmcore.records import Record

from crm_sales.leads import _lead_ids, check_records, read_leads, sales_settings

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.query import Query

__all__ = ["LeadScore", "activity_counts", "check_changed_leads", "score_leads", "score_records"]

log = logging.getLogger(__name__)

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
        with uow.acting_as(Actor.system()):  # score and temperature are read-only: set by scoring
            uow.update_many("lead", plan)
    return scores


def activity_counts(uow: UnitOfWork, lead_ids: Sequence[int]) -> dict[int, Mapping[str, int]]:
    """``{lead id: {activity kind: number}}`` of the activities about *lead_ids* (all of them,
    whoever may read them: engagement is a property of the lead)."""
    if not lead_ids or not uow.registry.entity("activity").has_field("lead_id"):
        return {}
    counts: dict[int, dict[str, int]] = {}
    with uow.acting_as(Actor.system()):
        for start in range(0, len(lead_ids), _BATCH):
            chunk = list(lead_ids[start:start + _BATCH])
            rows = uow.select("activity").where(("lead_id", "in", chunk)).group_by("lead_id", "kind").aggregate()
            for row in rows:
                counts.setdefault(row["lead_id"], {})[row["kind"]] = int(row["count"])
    return dict(counts)


def check_changed_leads(uow: UnitOfWork) -> None:
    """Before *uow* commits: check the leads it created or changed and score them and the
    leads of the activities it created or changed, up to ``[sales] check_on_commit`` leads
    (more are left for ``crm leads check``). Bookkeeping: the leads are read in full, as the
    system."""
    limit = sales_settings(uow).check_on_commit
    if limit <= 0:
        return
    leads: set[int] = set()
    activities: set[int] = set()
    for change in uow.changes:
        if change.entity == "lead" and change.action != "deleted":
            leads.add(change.id)
        elif change.entity == "activity" and change.action != "deleted":
            activities.add(change.id)
    if len(leads) > limit:
        log.info("%d leads were created or changed; left for 'crm leads check' (check_on_commit = %d)", len(leads), limit)
        return
    scored = set(leads)
    with uow.acting_as(Actor.system()):
        if activities:
            chunk = sorted(activities)[: limit * 10]
            rows = uow.select("activity", ["lead_id"]).where(("id", "in", chunk), ("lead_id", "is not null")).all()
            scored |= {row["lead_id"] for row in rows}
        if not scored or len(scored) > limit:
            return
        checked = uow.get_many("lead", leads)
    if checked:
        check_records(uow, checked, store=True)
    with uow.acting_as(Actor.system()):
        full = uow.get_many("lead", scored)
    score_records(uow, full, store=True)
