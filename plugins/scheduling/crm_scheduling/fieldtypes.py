"""Field types of the scheduling plugin: plain integers and moments that know the sample values
the conformance check and test factories should use (a level from 1 to 5; a booking on a
working Monday morning, so a sample booking keeps the hard constraints)."""

from __future__ import annotations

import datetime as dt

from crmcore.fields import DateTime, Integer

__all__ = ["BookingEnd", "BookingStart", "Level"]

_MONDAY = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


class Level(Integer):
    """A skill level from 1 (beginner) to 5 (expert)."""

    def __init__(self) -> None:
        super().__init__(minimum=1, maximum=5)

    def sample(self, n: int) -> int:
        return 1 + n % 5


class BookingStart(DateTime):
    """When a booking starts (its samples: Monday 2026-01-05 10:00 UTC)."""

    def sample(self, n: int) -> dt.datetime:
        return _MONDAY.replace(hour=10)


class BookingEnd(DateTime):
    """When a booking ends (its samples: Monday 2026-01-05 11:00 UTC)."""

    def sample(self, n: int) -> dt.datetime:
        return _MONDAY.replace(hour=11)
