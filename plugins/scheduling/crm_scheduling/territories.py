"""Checks of territories and absences: a territory tree without cycles, a geography that
exists (with the marketing plugin enabled), an absence that ends after it starts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from crmcore.errors import ValidationError

from crm_scheduling.resources import territory_parents

if TYPE_CHECKING:
    from crmcore import UnitOfWork

__all__ = ["check_geography", "check_parents", "check_span"]


def check_span(values: dict[str, Any]) -> None:
    """Refuse an absence that does not end after it starts."""
    start, end = values.get("starts_at"), values.get("ends_at")
    if start is not None and end is not None and end <= start:
        raise ValidationError({"ends_at": [
            f"the absence ends ({end.isoformat()}) before it starts ({start.isoformat()})"]},
            entity="absence")


def check_geography(uow: UnitOfWork, items: Sequence[dict[str, Any]]) -> None:
    """Refuse a ``geography_id`` naming no geography, with marketing enabled (without it the
    number is kept and unused)."""
    wanted = sorted({v["geography_id"] for v in items if v.get("geography_id")})
    if not wanted or "geography" not in uow.crm.registry.entity_names:
        return
    found = {r["id"] for r in uow.select("geography", ("id",)).where(("id", "in", wanted)).all()}
    missing = [g for g in wanted if g not in found]
    if missing:
        raise ValidationError({"geography_id": [
            f"geography {missing[0]} does not exist; name a node of the geography tree"]},
            entity="territory")


def check_parents(uow: UnitOfWork, changes: Sequence[tuple[int, int]]) -> None:
    """Refuse a territory placed inside itself."""
    if not changes:
        return
    parents = territory_parents(uow)
    parents.update(dict(changes))
    for start, _ in changes:
        node, seen = parents.get(start), {start}
        while node is not None:
            if node in seen:
                raise ValidationError({"parent_id": [
                    f"territory {start} would end up inside itself; choose another parent"]},
                    entity="territory")
            seen.add(node)
            node = parents.get(node)
