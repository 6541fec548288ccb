"""Time-zone ids as calendars write them, resolved to IANA names.

Calendars name zones in several ways: IANA names (``Europe/Berlin``), Windows ids from Outlook
and Exchange (``Eastern Standard Time``, mapped by CLDR's table shipped with icalendar), display
names (``Canberra, Melbourne, Sydney``), names with a vendor prefix (``custom_America/New_York``,
``/mozilla.org/20050126_1/Europe/Berlin``) and custom VTIMEZONE definitions with an invented id
(``GMT +0100 (Standard) / GMT +0200 (Daylight)``). :func:`resolve` finds the IANA zone that
keeps the file's UTC offsets at the event and in winter and summer of its year, so a series
expands with the right daylight-saving changes; a zone that matches nothing resolves to ``None``
(times are then kept in UTC).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from functools import cache

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

__all__ = ["resolve", "zone"]

# every Area/Location inside an id, overlapping ("custom_America/New_York" holds "America/New_York")
_IANA_PART = re.compile(r"(?=([A-Z][A-Za-z_]*/[A-Za-z_+\-0-9]+(?:/[A-Za-z_]+)?))")
#: Regions searched first when only the offsets tell a zone (the most common ones).
_REGIONS = ("Europe/", "America/", "Asia/", "Australia/", "Pacific/", "Africa/")
_WORD = re.compile(r"[A-Za-z]{4,}")


@cache
def _available() -> tuple[str, ...]:
    # zones with a region (Etc/ and bare abbreviations only as a last resort), sorted
    names = zoneinfo.available_timezones()
    regional = [n for n in names if "/" in n and not n.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/"))]

    def rank(name: str) -> tuple[int, str]:
        return (next((i for i, r in enumerate(_REGIONS) if name.startswith(r)), len(_REGIONS)), name)

    return (*sorted(regional, key=rank), *sorted(n for n in names if n.startswith("Etc/")))


@cache
def zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The IANA zone *name*, or ``None`` when there is none by that name."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _samples(when: dt.datetime) -> list[dt.datetime]:
    # the instant itself, mid-winter and mid-summer of its year: the standard and daylight offsets
    # (a file's definition may carry rules older than IANA's for the weeks around a change)
    year = when.year
    return [when.astimezone(dt.UTC), dt.datetime(year, 1, 15, 12, tzinfo=dt.UTC), dt.datetime(year, 7, 15, 12, tzinfo=dt.UTC)]


def _same_offsets(candidate: dt.tzinfo, given: dt.tzinfo, samples: list[dt.datetime]) -> bool:
    try:
        return all(s.astimezone(candidate).utcoffset() == s.astimezone(given).utcoffset() for s in samples)
    except (OverflowError, ValueError):
        return False


def resolve(tzid: str | None, tzinfo: dt.tzinfo | None, when: dt.datetime | None = None) -> str | None:
    """The IANA name for a time written with *tzid* and read with *tzinfo* (the file's
    definition) at *when*.

    An IANA id or a Windows id is taken as named when the file gives no definition that
    disagrees with it; otherwise the zone whose offsets match the definition through the year
    is searched, first among zones named by words of the id (``Sydney``), then among all.

    :returns: an IANA name, ``"UTC"`` for UTC, or ``None`` when no zone matches.
    """
    key = getattr(tzinfo, "key", None)
    if key and zone(key) is not None:
        return str(key)
    if tzinfo is dt.UTC:
        return "UTC"
    candidates: list[str] = []
    if tzid:
        cleaned = tzid.strip().strip('"')
        candidates.append(cleaned)
        if cleaned in WINDOWS_TO_OLSON:
            candidates.append(WINDOWS_TO_OLSON[cleaned])
        candidates.extend(match.group(1) for match in _IANA_PART.finditer(cleaned))
    named = [c for c in candidates if zone(c) is not None]
    if tzinfo is None or when is None:
        return named[0] if named else None
    samples = _samples(when.replace(tzinfo=tzinfo) if when.tzinfo is None else when)
    for name in named:
        if _same_offsets(zone(name), tzinfo, samples):  # type: ignore[arg-type]
            return name
    words = {w.lower() for w in _WORD.findall(tzid or "")} - {"standard", "daylight", "time", "summer"}
    by_word = [n for n in _available() if words & {p.lower() for p in re.split(r"[/_]", n)}]
    for name in (*by_word, *_available()):
        if _same_offsets(zone(name), tzinfo, samples):  # type: ignore[arg-type]
            return name
    return None
