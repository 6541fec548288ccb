"""The field-level three-way merge of an event changed on both sides.

The base is the snapshot of the modelled fields taken at the last sync; *local* is the activity
now, *remote* the server's event now. Fields are compared as groups that only make sense
together (the times of an event, its recurrence, the people invited); each group is taken from
the side that changed it, kept when both changed it the same way, and reported as a conflict
when both changed it differently (the local value is then kept, and the remote one listed for
a person to decide). Pure functions: no app, no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["GROUPS", "Merge", "merge"]

#: The merged units: a group changes as a whole.
GROUPS: dict[str, tuple[str, ...]] = {
    "kind": ("kind",),
    "subject": ("subject",),
    "description": ("description",),
    "location": ("location",),
    "status": ("status",),
    "time": ("all_day", "starts_at", "ends_at", "start_date", "end_date", "due_at", "timezone"),
    "recurrence": ("rrule", "exdates", "rdates"),
    "people": ("organizer", "attendees"),
    "alarms": ("alarms",),
}


@attrs.frozen
class Merge:
    """The outcome: for each field, the side its value comes from (``"local"`` or
    ``"remote"``), and the groups in conflict."""

    sides: dict[str, str]
    conflicts: tuple[str, ...]

    @property
    def remote_fields(self) -> list[str]:
        return [name for name, side in self.sides.items() if side == "remote"]

    def values(self, local: Mapping[str, Any], remote: Mapping[str, Any]) -> dict[str, Any]:
        """The merged values, each from its side."""
        return {name: (remote if side == "remote" else local).get(name) for name, side in self.sides.items()}


def merge(base: Mapping[str, Any] | None, local: Mapping[str, Any], remote: Mapping[str, Any], *,
          groups: Mapping[str, tuple[str, ...]] | None = None) -> Merge:
    """Merge *local* and *remote* (plain values: ISO texts for dates and times) against *base*.

    :param base: the snapshot of the last sync, or ``None`` when there is none (every group
        that differs is then a conflict).
    :param groups: the merged units (default: those of an event, :data:`GROUPS`).
    """
    sides: dict[str, str] = {}
    conflicts: list[str] = []
    for group, names in (GROUPS if groups is None else groups).items():
        mine = [local.get(n) for n in names]
        theirs = [remote.get(n) for n in names]
        before = [base.get(n) for n in names] if base is not None else None
        if mine == theirs or theirs == before:
            side = "local"
        elif mine == before:
            side = "remote"
        else:
            side = "local"
            conflicts.append(group)
        sides.update(dict.fromkeys(names, side))
    return Merge(sides, tuple(conflicts))
