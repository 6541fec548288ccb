"""Warranties: terms per product or product group, registrations stamped on units, and
extended warranties.

A term names a product code or a product group, a duration in months, the event that starts
it (delivery or installation) and the percentage it covers per line type. When a unit gets
the date of that event (created with it, or updated), the standard term of its product (else
of its group) is stamped on it as a registration, once: the coverage is copied, so changing a
term later does not change warranties already given. An extended warranty is a registration
of an ``extended`` term that starts the day after the unit's last registration ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from crmcore.errors import ValidationError
from dateutil.relativedelta import relativedelta

from crm_service.entities import LINE_TYPES

if TYPE_CHECKING:
    from crmcore import UnitOfWork
    from crmcore.records import Record

__all__ = [
    "EVENT_FIELDS",
    "end_of",
    "extend_warranty",
    "register_warranty",
    "stamp_units",
    "warranties_of",
]

#: The unit field holding the date that starts a term, per ``starts_from``.
EVENT_FIELDS = {"delivery": "delivery_date", "installation": "install_date"}

_CHUNK = 500


def end_of(starts_on: dt.date, months: int) -> dt.date:
    """The last day of a warranty of *months* starting on *starts_on* (a 12-month warranty
    from 2026-01-05 ends on 2027-01-04)."""
    return starts_on + relativedelta(months=months) - dt.timedelta(days=1)


def _stamp(term: Record | Mapping[str, Any], unit_id: int, starts_on: dt.date,
           kind: str) -> dict[str, Any]:
    get = term.get if isinstance(term, Mapping) else term.values.get
    row: dict[str, Any] = {
        "unit_id": unit_id,
        "term_id": get("id"),
        "kind": kind,
        "starts_on": starts_on,
        "ends_on": end_of(starts_on, cast("int", get("months"))),
    }
    for line_type in LINE_TYPES:
        row[f"{line_type}_pct"] = get(f"{line_type}_pct")
    return row


def _standard_terms(uow: UnitOfWork) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    by_code: dict[str, dict[str, Any]] = {}
    by_group: dict[str, dict[str, Any]] = {}
    rows = uow.select(
        "warranty_term",
        ("id", "applies_to", "product", "months", "starts_from",
         *(f"{t}_pct" for t in LINE_TYPES)),
    ).where(kind="standard").order_by("id").all()
    for row in rows:
        found = by_code if row["applies_to"] == "product" else by_group
        found.setdefault(row["product"], row)
    return by_code, by_group


def stamp_units(uow: UnitOfWork, units: Sequence[Record]) -> list[Record]:
    """Stamp the standard warranty of their product on *units* that have the date of its
    starting event and no standard registration yet: one read of the terms, one of the
    registrations per 500 units, one insert.

    :returns: the registrations created.
    """
    if not units:
        return []
    by_code, by_group = _standard_terms(uow)
    if not by_code and not by_group:
        return []
    candidates: list[tuple[Record, dict[str, Any], dt.date]] = []
    for unit in units:
        group = unit.values.get("product_group") or ""
        term = by_code.get(unit.product_code) or by_group.get(group)
        if term is None:
            continue
        starts_on = unit.values.get(EVENT_FIELDS[term["starts_from"]])
        if starts_on is not None:
            candidates.append((unit, term, starts_on))
    if not candidates:
        return []
    ids = [unit.id for unit, _, _ in candidates]
    stamped: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = uow.select("warranty_registration", ("unit_id",)).where(
            ("unit_id", "in", chunk), kind="standard"
        ).all()
        stamped.update(row["unit_id"] for row in rows)
    rows = [
        _stamp(term, unit.id, starts_on, "standard")
        for unit, term, starts_on in candidates
        if unit.id not in stamped
    ]
    return uow.create_many("warranty_registration", rows) if rows else []


def register_warranty(
    uow: UnitOfWork, unit: Record, term_id: int, starts_on: dt.date, *,
    reference: str | None = None,
) -> Record:
    """Stamp the term *term_id* on *unit* from *starts_on* (a warranty registered by hand)."""
    term = uow.get("warranty_term", term_id)
    row = _stamp(term, unit.id, starts_on, term.kind)
    if reference:
        row["reference"] = reference
    return uow.create("warranty_registration", row)


def extend_warranty(
    uow: UnitOfWork, unit: Record, term_id: int, *, starts_on: dt.date | None = None,
    reference: str | None = None,
) -> Record:
    """Add an extended warranty to *unit*: the ``extended`` term *term_id*, from *starts_on*
    or else the day after the unit's last registration ends.

    :raises ValidationError: when the term is not an extended one, or the unit has no
        registration to extend and no *starts_on* is given.
    """
    term = uow.get("warranty_term", term_id)
    if term.kind != "extended":
        raise ValidationError(
            {"term_id": [f"warranty term {term.name!r} is a {term.kind} term; "
                         "extend with an extended one"]},
            entity="warranty_registration",
        )
    if starts_on is None:
        last = (
            uow.select("warranty_registration", ("ends_on",))
            .where(unit_id=unit.id)
            .order_by("-ends_on")
            .first()
        )
        if last is None:
            raise ValidationError(
                {"starts_on": [f"unit {unit.serial_number!r} has no warranty to extend; "
                               "give the day the extended warranty starts"]},
                entity="warranty_registration",
            )
        starts_on = last["ends_on"] + dt.timedelta(days=1)
    row = _stamp(term, unit.id, starts_on, "extended")
    if reference:
        row["reference"] = reference
    return uow.create("warranty_registration", row)


def warranties_of(uow: UnitOfWork, unit_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """The registrations of units, ``{unit id: [registration row, ...]}`` by start date."""
    ids = list(dict.fromkeys(unit_ids))
    found: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    fields = ("id", "unit_id", "term_id.name", "kind", "starts_on", "ends_on", "reference",
              *(f"{t}_pct" for t in LINE_TYPES))
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = uow.select("warranty_registration", fields).where(
            ("unit_id", "in", chunk)).order_by("starts_on", "id").all()
        for row in rows:
            found[row["unit_id"]].append(row)
    return found
