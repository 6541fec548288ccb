"""Entitlement: what share of a service line on a unit, on a day, the customer pays.

The coverages of a unit are its warranty registrations, the contracts whose items name it,
its site (or a site it stands inside) or its whole account, and the overrides decided by hand.
:func:`decide` is pure: among the coverages valid on the day (a contract counts unless it is a
draft or cancelled: an expired contract still covered the days it ran), an override of the
line type wins; otherwise the best percentage wins (a warranty before a contract on a tie).
100 % is ``covered``, 1 to 99 % ``partial``, nothing ``billable``; the decision names the
record that granted it, the reason and, for a contract naming one, the help desk's SLA
policy. :func:`entitlement_many` reads the coverages of many lines at once (a few queries per
500 units, none per line); :func:`entitlement` is a batch of one.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ValidationError
from crmcore.money import Money

from crm_service.entities import LINE_TYPES

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = [
    "BILLABLE",
    "CONTRACT",
    "COVERED",
    "Coverage",
    "Entitlement",
    "OVERRIDE",
    "OVERRIDE_PERMISSION",
    "PARTIAL",
    "WARRANTY",
    "check_override",
    "coverages_of",
    "decide",
    "entitlement",
    "entitlement_many",
]

COVERED, PARTIAL, BILLABLE = "covered", "partial", "billable"
WARRANTY, CONTRACT, OVERRIDE = "warranty_registration", "service_contract", "entitlement_override"
#: The privilege an override needs (on ``entitlement_override``).
OVERRIDE_PERMISSION = "service.entitlement_override.grant"
#: Contract states whose days of validity count (an expired contract covered its days).
_COUNTING = ("active", "expired", "renewed")
_RANK = {OVERRIDE: 0, WARRANTY: 1, CONTRACT: 2}
_CHUNK = 500


@attrs.frozen
class Coverage:
    """One record that may cover a unit's lines.

    :ivar source: ``warranty_registration``, ``service_contract`` or ``entitlement_override``.
    :ivar percents: ``{line type: percent}`` (an override names one line type, or all).
    :ivar ends_on: the last day covered; ``None``: open-ended.
    :ivar counts: ``False`` for a contract in draft or cancelled.
    """

    source: str
    id: int
    label: str
    starts_on: dt.date
    ends_on: dt.date | None
    percents: Mapping[str, int]
    counts: bool = True
    reason: str = ""
    sla_policy_id: int | None = None

    def valid_on(self, day: dt.date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)


@attrs.frozen
class Entitlement:
    """A decision: the share of a line the customer's coverage pays.

    :ivar status: ``covered``, ``partial`` or ``billable``.
    :ivar percent: the percentage covered, 0 to 100.
    :ivar source: the entity type of the granting record (``None`` when billable because
        nothing applies); :ivar source_id: its id; :ivar reason: why, in one sentence.
    :ivar sla_policy_id: the help desk's SLA policy of the granting contract, if it names one.
    """

    status: str
    percent: int
    source: str | None
    source_id: int | None
    reason: str
    sla_policy_id: int | None = None

    @property
    def granted_by(self) -> str:
        """The granting record as ``entity id`` (empty when none)."""
        return f"{self.source} {self.source_id}" if self.source else ""

    def covered_share(self, amount: Money) -> Money:
        """The part of *amount* the coverage pays, rounded to the cent."""
        share = (amount.amount * self.percent / 100).quantize(
            decimal.Decimal("0.01"), rounding=decimal.ROUND_HALF_UP
        )
        return Money(share, amount.currency)

    def customer_share(self, amount: Money) -> Money:
        """The part of *amount* the customer pays (the amount less the covered share)."""
        return Money(amount.amount - self.covered_share(amount).amount, amount.currency)


def _status(percent: int) -> str:
    return COVERED if percent >= 100 else PARTIAL if percent > 0 else BILLABLE


def decide(coverages: Iterable[Coverage], day: dt.date, line_type: str) -> Entitlement:
    """Decide one line from the coverages of its unit (pure: no database).

    :raises ValidationError: for an unknown line type.
    """
    return _decide(coverages, day, line_type, None)


def _decide(coverages: Iterable[Coverage], day: dt.date, line_type: str,
            made: dict[tuple[Any, ...], Entitlement] | None) -> Entitlement:
    if line_type not in LINE_TYPES:
        raise ValidationError(
            {"line_type": [f"unknown line type {line_type!r}; use one of "
                           f"{', '.join(LINE_TYPES)}"]},
            entity="work_line",
        )
    override: Coverage | None = None
    best: Coverage | None = None
    best_key: tuple[int, int, int] | None = None
    for c in coverages:
        if not c.counts or c.starts_on > day or (c.ends_on is not None and day > c.ends_on):
            continue
        percent = c.percents.get(line_type)
        if percent is None:
            continue
        if c.source == OVERRIDE:
            if override is None or c.id > override.id:
                override = c
            continue
        key = (-percent, _RANK[c.source], c.id)
        if best_key is None or key < best_key:
            best, best_key = c, key
    chosen = override or best
    cache_key = (chosen.source, chosen.id, line_type) if chosen else (None, day, line_type)
    if made is not None and cache_key in made:
        return made[cache_key]
    decision = _decision(chosen, day, line_type)
    if made is not None:
        made[cache_key] = decision
    return decision


def _decision(chosen: Coverage | None, day: dt.date, line_type: str) -> Entitlement:
    """The decision granted by *chosen* (the same for every day it is chosen on)."""
    if chosen is None:
        return Entitlement(BILLABLE, 0, None, None,
                           f"no warranty or contract covers {line_type} on {day}")
    percent = chosen.percents[line_type]
    if chosen.source == OVERRIDE:
        return Entitlement(_status(percent), percent, OVERRIDE, chosen.id,
                           f"{chosen.label}: {percent}% of {line_type} ({chosen.reason})")
    until = f" until {chosen.ends_on}" if chosen.ends_on else ""
    if percent == 0:
        return Entitlement(BILLABLE, 0, chosen.source, chosen.id,
                           f"{chosen.label} does not cover {line_type}{until}")
    return Entitlement(_status(percent), percent, chosen.source, chosen.id,
                       f"{chosen.label} covers {percent}% of {line_type}{until}",
                       chosen.sla_policy_id)


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _ancestors(uow: UnitOfWork, location_ids: Iterable[int]) -> dict[int, list[int]]:
    """``{location id: [it, its parent, ...]}``, one query per level of the tree."""
    parent: dict[int, int | None] = {}
    level = list(dict.fromkeys(location_ids))
    while level:
        found: list[int] = []
        for chunk in _chunks(level):
            rows = uow.select("location", ("id", "parent_id")).where(("id", "in", list(chunk)))
            for row in rows.all():
                parent[row["id"]] = row["parent_id"]
                if row["parent_id"] is not None and row["parent_id"] not in parent:
                    found.append(row["parent_id"])
        level = [i for i in dict.fromkeys(found) if i not in parent]
    chains: dict[int, list[int]] = {}
    for start in parent:
        chain: list[int] = []
        node: int | None = start
        while node is not None and node not in chain:
            chain.append(node)
            node = parent.get(node)
        chains[start] = chain
    return chains


_PCTS = tuple(f"{t}_pct" for t in LINE_TYPES)


def coverages_of(
    uow: UnitOfWork, unit_ids: Iterable[int], *, first: dt.date | None = None,
    last: dt.date | None = None,
) -> dict[int, list[Coverage]]:
    """The coverages of units, ``{unit id: [Coverage, ...]}``, optionally only those that may
    be valid between *first* and *last*: a few queries per 500 units."""
    ids = list(dict.fromkeys(unit_ids))
    found: dict[int, list[Coverage]] = {i: [] for i in ids}
    units: dict[int, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        for row in uow.select("installed_unit", ("id", "account_id", "location_id")).where(
            ("id", "in", list(chunk))
        ).all():
            units[row["id"]] = row
    dates: list[Any] = []
    if last is not None:
        dates.append(("starts_on", "<=", last))
    if first is not None:
        dates.append(("ends_on", ">=", first))
    for chunk in _chunks(ids):
        rows = uow.select(
            "warranty_registration", ("id", "unit_id", "kind", "term_id.name", "starts_on",
                                      "ends_on", *_PCTS)
        ).where(("unit_id", "in", list(chunk)), *dates).all()
        for row in rows:
            label = f"{row['kind']} warranty {row['term_id.name']!r}"
            found[row["unit_id"]].append(Coverage(
                WARRANTY, row["id"], label, row["starts_on"], row["ends_on"],
                {t: row[f"{t}_pct"] for t in LINE_TYPES},
            ))
    chains = _ancestors(uow, [u["location_id"] for u in units.values() if u["location_id"]])
    _contract_coverages(uow, units, chains, found, first, last)
    for chunk in _chunks(ids):
        window: list[Any] = []
        if last is not None:
            window.append(("valid_from", "<=", last))
        if first is not None:
            window.append({"any": [("valid_to", "is null"), ("valid_to", ">=", first)]})
        rows = uow.select(
            "entitlement_override", ("id", "unit_id", "line_type", "valid_from", "valid_to",
                                     "percent", "reason")
        ).where(("unit_id", "in", list(chunk)), *window).all()
        for row in rows:
            types = (row["line_type"],) if row["line_type"] else LINE_TYPES
            found[row["unit_id"]].append(Coverage(
                OVERRIDE, row["id"], f"override {row['id']}", row["valid_from"],
                row["valid_to"], {t: row["percent"] for t in types}, reason=row["reason"],
            ))
    return found


def _contract_coverages(
    uow: UnitOfWork, units: Mapping[int, Mapping[str, Any]], chains: Mapping[int, list[int]],
    found: dict[int, list[Coverage]], first: dt.date | None, last: dt.date | None,
) -> None:
    unit_ids = list(units)
    sites = sorted({loc for chain in chains.values() for loc in chain})
    accounts = sorted({u["account_id"] for u in units.values() if u["account_id"]})
    fields = ("unit_id", "location_id", "contract_id", "contract_id.number",
              "contract_id.account_id", "contract_id.status", "contract_id.starts_on",
              "contract_id.ends_on", "contract_id.sla_policy_id",
              *(f"contract_id.{p}" for p in _PCTS))
    window: list[Any] = []
    if last is not None:
        window.append(("contract_id.starts_on", "<=", last))
    if first is not None:
        window.append(("contract_id.ends_on", ">=", first))
    rows: list[dict[str, Any]] = []
    for chunk in _chunks(unit_ids):
        rows += uow.select("contract_item", fields).where(("unit_id", "in", list(chunk)),
                                                          *window).all()
    for chunk in _chunks(sites):
        rows += uow.select("contract_item", fields).where(("location_id", "in", list(chunk)),
                                                          *window).all()
    for chunk in _chunks(accounts):
        rows += uow.select("contract_item", fields).where(
            ("unit_id", "is null"), ("location_id", "is null"),
            ("contract_id.account_id", "in", list(chunk)), *window).all()
    by_unit: dict[int, list[int]] = {}
    by_site: dict[int, list[int]] = {}
    by_account: dict[int, list[int]] = {}
    for unit_id, unit in units.items():
        by_account.setdefault(unit["account_id"], []).append(unit_id)
        for site in chains.get(unit["location_id"], ()):
            by_site.setdefault(site, []).append(unit_id)
        by_unit[unit_id] = [unit_id]
    seen: set[tuple[int, int]] = set()
    for row in rows:
        if row["contract_id.number"] is None:  # a contract the actor may not read
            continue
        if row["unit_id"] is not None:
            covered = by_unit.get(row["unit_id"], [])
        elif row["location_id"] is not None:
            covered = by_site.get(row["location_id"], [])
        else:
            covered = by_account.get(row["contract_id.account_id"], [])
        status = row["contract_id.status"]
        for unit_id in covered:
            if (unit_id, row["contract_id"]) in seen:
                continue
            seen.add((unit_id, row["contract_id"]))
            found[unit_id].append(Coverage(
                CONTRACT, row["contract_id"], f"contract {row['contract_id.number']}",
                row["contract_id.starts_on"], row["contract_id.ends_on"],
                {t: row[f"contract_id.{t}_pct"] for t in LINE_TYPES},
                counts=status in _COUNTING, sla_policy_id=row["contract_id.sla_policy_id"],
            ))


def entitlement_many(
    uow: UnitOfWork, lines: Sequence[tuple[int, dt.date, str]]
) -> list[Entitlement]:
    """Decide many lines at once: ``(unit id, day, line type)`` each, decisions in order.

    The coverages of all their units are read together (:func:`coverages_of`), then each line
    is decided in memory.
    """
    if not lines:
        return []
    days = [day for _, day, _ in lines]
    coverages = coverages_of(uow, [u for u, _, _ in lines], first=min(days), last=max(days))
    made: dict[tuple[Any, ...], Entitlement] = {}  # decisions are values: shared when equal
    return [_decide(coverages.get(unit_id, ()), day, line_type, made)
            for unit_id, day, line_type in lines]


def entitlement(uow: UnitOfWork, unit: Any, day: dt.date, line_type: str) -> Entitlement:
    """Decide one line on *unit* (a record or an id) on *day*."""
    unit_id = unit if isinstance(unit, int) else unit.id
    return entitlement_many(uow, [(unit_id, day, line_type)])[0]


def check_override(uow: UnitOfWork, values: Mapping[str, Any]) -> None:
    """An override needs the privilege, a reason that says something, and a sane span.

    :raises PermissionDeniedError: without ``service.entitlement_override.grant``.
    :raises ValidationError: for a blank reason or a span that ends before it starts.
    """
    uow.require("entitlement_override", OVERRIDE_PERMISSION)
    if not str(values.get("reason") or "").strip():
        raise ValidationError({"reason": ["an override needs a reason"]},
                              entity="entitlement_override")
    start, end = values.get("valid_from"), values.get("valid_to")
    if start is not None and end is not None and end < start:
        raise ValidationError(
            {"valid_to": [f"the override ends on {end} before it starts on {start}"]},
            entity="entitlement_override",
        )
