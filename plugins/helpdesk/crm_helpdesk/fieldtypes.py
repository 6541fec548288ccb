"""Two choice field types of the help desk: IANA time zone names and times of day.

Both are :class:`~crmcore.fields.Choice` fields with a short description (the full list of
choices would make an unreadable message) and a column of a fixed width, so the schema does not
change with the time zone database of the machine that writes a migration.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any

import sqlalchemy as sa
from crmcore.fields import Choice, FieldValueError

__all__ = ["CLOSING_TIMES", "OPENING_TIMES", "ClockTime", "TimeZoneName"]

_STEP = 5  # minutes between two times of day on offer

#: Times a window may open at: 00:00 to 23:55, every five minutes.
OPENING_TIMES = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(0, 24 * 60, _STEP))
#: Times a window may close at: 00:05 to 24:00, every five minutes.
CLOSING_TIMES = tuple(f"{m // 60:02d}:{m % 60:02d}" for m in range(_STEP, 24 * 60 + 1, _STEP))
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def _zone_names() -> tuple[str, ...]:
    names = sorted(n for n in zoneinfo.available_timezones() if "/" in n and len(n) <= 64)
    return ("UTC", *names)


class TimeZoneName(Choice):
    """An IANA time zone name such as ``"Europe/Berlin"`` (or ``"UTC"``)."""

    def __init__(self) -> None:
        super().__init__(*_zone_names())

    def describe(self) -> str:
        return "an IANA time zone name such as 'Europe/Berlin'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(64)


class ClockTime(Choice):
    """A time of day on a five-minute step, written ``HH:MM`` (``"9:30"`` reads as ``"09:30"``).

    :param closing: times a window closes at (``00:05`` to ``24:00``) instead of opens at
        (``00:00`` to ``23:55``).
    """

    def __init__(self, closing: bool = False) -> None:
        super().__init__(*(CLOSING_TIMES if closing else OPENING_TIMES))

    def parse(self, value: Any) -> str:
        if isinstance(value, str):
            match = _CLOCK.match(value)
            if match:
                value = f"{int(match.group(1)):02d}:{match.group(2)}"
        try:
            return super().parse(value)
        except FieldValueError:
            raise self._fail(value) from None

    def describe(self) -> str:
        first, last = self.choices[0], self.choices[-1]
        return f"a time of day from {first!r} to {last!r} on a five-minute step, such as '09:30'"

    def sql_type(self) -> sa.types.TypeEngine[Any]:
        return sa.String(5)
