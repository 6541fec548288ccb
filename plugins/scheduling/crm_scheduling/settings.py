"""The scheduling plugin's settings, as one frozen value kept on the app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["SchedulingSettings"]


@attrs.frozen
class SchedulingSettings:
    """``[plugins.scheduling]``, read once."""

    speed_kmh: int = 40
    default_duration: int = 60
    territory_penalty_km: int = 50
    solver: str = "greedy"
    routing_seconds: int = 30

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> SchedulingSettings:
        """The settings of a ``[plugins.scheduling]`` table (defaults already applied)."""
        return cls(speed_kmh=table["speed_kmh"], default_duration=table["default_duration"],
                   territory_penalty_km=table["territory_penalty_km"],
                   solver=table["solver"], routing_seconds=table["routing_seconds"])
