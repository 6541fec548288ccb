"""The installed base: units, their components and the location tree.

A unit may be a component of another unit (``parent_id``) and stand at a location; locations
form a tree (a site, its buildings, their rooms). Neither tree may hold a cycle: the check
walks up from the new parents of a whole batch, one query per level. A unit's history is its
timeline in the core's audit trail (its own changes, its warranty registrations, the service
lines done on it), and a CSV of units goes through the core's import.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from crmcore.errors import NotFoundError, ValidationError
from crmcore.transfer import ImportReport, import_file

if TYPE_CHECKING:
    from crmcore import Actor, Crm, UnitOfWork
    from crmcore.records import Record
    from crmcore.storage import AuditEntry

__all__ = [
    "TREE_ENTITIES",
    "check_parents",
    "components",
    "find_unit",
    "import_units",
    "location_path",
    "locations_below",
    "unit_history",
]

#: The entity types whose ``parent_id`` forms a tree.
TREE_ENTITIES = ("location", "installed_unit")

_CHUNK = 500


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def check_parents(uow: UnitOfWork, entity: str, changes: Sequence[tuple[int, int]]) -> None:
    """Refuse parent changes that would put a record inside itself.

    :param changes: ``(record id, new parent id)`` pairs of one batch.
    :raises ValidationError: naming the record and the parent that would close a cycle.
    """
    if entity not in TREE_ENTITIES or not changes:
        return
    moving = dict(changes)
    known: dict[int, int | None] = {}
    walkers = {record_id: parent_id for record_id, parent_id in changes if parent_id is not None}
    visited: dict[int, set[int]] = {record_id: set() for record_id in walkers}
    while walkers:
        for record_id, node in walkers.items():
            if node == record_id:
                what = "its own parent" if moving[record_id] == record_id else (
                    f"inside {entity} {moving[record_id]}, which is inside it"
                )
                raise ValidationError(
                    {"parent_id": [f"{entity} {record_id} cannot be {what}"]}, entity=entity
                )
        missing = [n for n in set(walkers.values()) if n not in moving and n not in known]
        for chunk in _chunks(missing):
            rows = uow.select(entity, ("id", "parent_id")).where(("id", "in", list(chunk))).all()
            known.update((row["id"], row["parent_id"]) for row in rows)
        advanced: dict[int, int] = {}
        for record_id, node in walkers.items():
            visited[record_id].add(node)
            up = moving[node] if node in moving else known.get(node)
            if up is not None and up not in visited[record_id]:
                advanced[record_id] = up
        walkers = advanced


def find_unit(uow: UnitOfWork, key: int | str) -> Record:
    """The unit with id *key* (a number) or serial number *key*.

    :raises NotFoundError: naming the key when no readable unit matches.
    """
    text = str(key).strip()
    if text.isdigit():
        try:
            return uow.get("installed_unit", int(text))
        except NotFoundError:
            pass
    found = uow.query("installed_unit").where(serial_number=text).first()
    if found is None:
        raise NotFoundError(
            f"no unit with id or serial number {text!r}; list units with 'crm service units'",
            entity="installed_unit",
            id=text,
        )
    return found


def components(uow: UnitOfWork, unit_id: int) -> list[tuple[int, Record]]:
    """The components of a unit, depth first: ``(depth, unit)`` pairs, one query per level."""
    result: list[tuple[int, Record]] = []
    children: dict[int, list[Record]] = {}
    level = [unit_id]
    seen = {unit_id}
    while level:
        found = uow.query("installed_unit").where(("parent_id", "in", level)).order_by("id").all()
        level = []
        for unit in found:
            if unit.id not in seen:
                seen.add(unit.id)
                children.setdefault(unit.parent_id, []).append(unit)
                level.append(unit.id)

    def walk(node: int, depth: int) -> None:
        for child in children.get(node, ()):
            result.append((depth, child))
            walk(child.id, depth + 1)

    walk(unit_id, 1)
    return result


def location_path(uow: UnitOfWork, location_id: int | None) -> list[str]:
    """The names from the root location down to *location_id* (empty for ``None``)."""
    names: list[str] = []
    seen: set[int] = set()
    while location_id is not None and location_id not in seen:
        seen.add(location_id)
        row = uow.select("location", ("name", "parent_id")).where(id=location_id).first()
        if row is None:
            break
        names.append(row["name"])
        location_id = row["parent_id"]
    return names[::-1]


def locations_below(uow: UnitOfWork, location_ids: Iterable[int]) -> dict[int, set[int]]:
    """``{location id: ids of it and every location inside it}``, one query per tree level."""
    roots = list(dict.fromkeys(location_ids))
    below = {root: {root} for root in roots}
    owner: dict[int, set[int]] = {root: {root} for root in roots}
    level = roots
    while level:
        found: list[int] = []
        for chunk in _chunks(level):
            rows = uow.select("location", ("id", "parent_id")).where(
                ("parent_id", "in", list(chunk))
            ).all()
            for row in rows:
                if row["id"] in owner:
                    continue
                owner[row["id"]] = set(owner[row["parent_id"]])
                for root in owner[row["id"]]:
                    below[root].add(row["id"])
                found.append(row["id"])
        level = found
    return below


def unit_history(uow: UnitOfWork, unit_id: int) -> list[AuditEntry]:
    """Everything done on a unit, oldest first: its timeline (its own changes and those of the
    records about it: registrations, service lines, components)."""
    return uow.timeline("installed_unit", unit_id)


def import_units(
    crm: Crm,
    path: str | os.PathLike[str],
    *,
    actor: Actor | str | None = None,
    skip_invalid: bool = False,
    rejects: str | os.PathLike[str] | None = None,
) -> ImportReport:
    """Import units from a CSV (or JSON) file through the core's import: columns match the
    unit's fields by name or label, a known serial number updates its unit.

    :raises crmcore.transfer.ImportFailedError: listing the bad rows, unless *skip_invalid*.
    """
    return import_file(
        crm,
        "installed_unit",
        path,
        actor=actor,
        dedupe_on="serial_number",
        on_duplicate="update",
        skip_invalid=skip_invalid,
        rejects=rejects,
    )
