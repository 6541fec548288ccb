"""A lean reader of iCalendar content lines, for importing large files quickly.

:func:`components` splits a file into its VEVENTs and VTODOs (with their VALARMs) and gives
each as a :class:`Component` offering the part of icalendar's component interface that
:mod:`~crm_calendar_sync.parse` reads (``name``, ``get``, ``[]``, ``subcomponents``,
``to_ical``), with properties (:class:`Prop`) whose values are decoded only when asked
(``dt``, ``dts``, ``cats``, ``str()``, ``params``, ``to_ical``). A component's text is the
file's own lines, byte for byte. Time-zone ids are read as icalendar reads them: an IANA name
as that zone, an id the file defines with a VTIMEZONE as that definition (built by icalendar),
a Windows id as its IANA zone. Anything it cannot read raises ``ValueError``; the caller then
reads the file with icalendar instead.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import icalendar
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from crm_calendar_sync import timezones

__all__ = ["Component", "Prop", "calendars"]

_UNFOLD = re.compile(r"\r?\n[ \t]")
_STAMP = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?$")
_TEXT_ESCAPES = re.compile(r"\\([\\;,nN])")


def _unescape(text: str) -> str:
    return _TEXT_ESCAPES.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), text)


def _split(line: str) -> tuple[str, dict[str, str], str]:
    """``NAME;PARAM=value:VALUE`` into its parts (a colon inside quotes is not the separator)."""
    head, colon, value = line.partition(":")
    if not colon:
        raise ValueError(f"content line without a value: {line[:60]!r}")
    if '"' not in head:  # the common case: no quoted parameter
        name, *rest = head.split(";")
        params = {}
        for part in rest:
            key, _, raw = part.partition("=")
            params[key.upper()] = raw
        return name.upper(), params, value
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            head, value = line[:index], line[index + 1:]
            break
    else:
        raise ValueError(f"content line without a value: {line[:60]!r}")
    parts: list[str] = []
    current, quoted = [], False
    for char in head:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    params = {}
    for part in parts[1:]:
        key, _, raw = part.partition("=")
        params[key.upper()] = raw[1:-1] if len(raw) > 1 and raw[0] == raw[-1] == '"' else raw
    return parts[0].upper(), params, value


class Prop:
    """One property: its parameters and value text, decoded on demand."""

    __slots__ = ("calendar", "name", "params", "value")

    def __init__(self, name: str, params: dict[str, str], value: str, calendar: _Calendar) -> None:
        self.name, self.params, self.value, self.calendar = name, params, value, calendar

    def __str__(self) -> str:
        return _unescape(self.value)

    def __repr__(self) -> str:
        return f"<Prop {self.name}>"

    def to_ical(self) -> bytes:
        return self.value.encode()

    @property
    def dt(self) -> Any:
        if self.name in ("DURATION",) or (self.name == "TRIGGER" and self.params.get("VALUE", "").upper() != "DATE-TIME"
                                          and not _STAMP.match(self.value)):
            return icalendar.vDuration.from_ical(self.value)
        return self.calendar.moment(self.value, self.params.get("TZID"))

    @property
    def dts(self) -> list[_Value]:
        found = []
        for part in self.value.split(","):
            if "/" in part:
                start, end = part.split("/", 1)
                first = self.calendar.moment(start, self.params.get("TZID"))
                found.append(_Value((first, self.calendar.moment(end, self.params.get("TZID")) if _STAMP.match(end)
                                     else icalendar.vDuration.from_ical(end))))
            else:
                found.append(_Value(self.calendar.moment(part, self.params.get("TZID"))))
        return found

    @property
    def cats(self) -> list[str]:
        return [_unescape(c) for c in re.split(r"(?<!\\),", self.value)]


class _Value:
    __slots__ = ("dt",)

    def __init__(self, value: Any) -> None:
        self.dt = value


class Component:
    """A VEVENT, VTODO or VALARM: its properties and subcomponents, and its own text."""

    __slots__ = ("lines", "name", "props", "subcomponents")

    def __init__(self, name: str) -> None:
        self.name = name
        self.props: dict[str, Any] = {}
        self.subcomponents: list[Component] = []
        self.lines: list[str] = []

    def __repr__(self) -> str:
        return f"<Component {self.name}>"

    def add(self, prop: Prop) -> None:
        there = self.props.get(prop.name)
        if there is None:
            self.props[prop.name] = prop
        elif isinstance(there, list):
            there.append(prop)
        else:
            self.props[prop.name] = [there, prop]

    def get(self, name: str, default: Any = None) -> Any:
        return self.props.get(name.upper(), default)

    def __getitem__(self, name: str) -> Any:
        return self.props[name.upper()]

    def __contains__(self, name: str) -> bool:
        return name.upper() in self.props

    def to_ical(self) -> bytes:
        return ("\r\n".join(self.lines) + "\r\n").encode()


class _Calendar:
    """One VCALENDAR: its properties, its time-zone definitions, its components."""

    def __init__(self) -> None:
        self.props: dict[str, Prop] = {}
        self.zone_texts: dict[str, str] = {}
        self.zones: dict[str, dt.tzinfo | None] = {}
        self.subcomponents: list[Component] = []

    def get(self, name: str, default: Any = None) -> Any:
        return self.props.get(name.upper(), default)

    def zone(self, tzid: str) -> dt.tzinfo | None:
        if tzid not in self.zones:
            found: dt.tzinfo | None = timezones.zone(tzid)
            if found is None and tzid in self.zone_texts:
                found = icalendar.Timezone.from_ical(self.zone_texts[tzid]).to_tz()
            if found is None and tzid in WINDOWS_TO_OLSON:
                found = timezones.zone(WINDOWS_TO_OLSON[tzid])
            self.zones[tzid] = found
        return self.zones[tzid]

    def moment(self, text: str, tzid: str | None) -> dt.date:
        match = _STAMP.match(text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a date or a time")
        year, month, day, hour, minute, second, utc = match.groups()
        if hour is None:
            return dt.date(int(year), int(month), int(day))
        moment = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
        if utc:
            return moment.replace(tzinfo=dt.UTC)
        if tzid:
            zone = self.zone(tzid)
            if zone is None:
                raise ValueError(f"unknown time zone {tzid!r}")
            return moment.replace(tzinfo=zone)
        return moment


def calendars(data: bytes | str) -> Iterator[_Calendar]:
    """The VCALENDARs of *data*, each with its VEVENTs and VTODOs (VTIMEZONEs kept as
    definitions, other components left out)."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    folded = text.replace("\r\n", "\n").split("\n")
    calendar: _Calendar | None = None
    stack: list[Component] = []
    zone_lines: list[str] | None = None
    zone_depth = 0
    raw: list[str] = []
    for line in folded:
        if line[:1] in (" ", "\t"):
            if raw:
                raw[-1] += "\r\n" + line
            continue
        raw.append(line)
    for physical in raw:
        line = _UNFOLD.sub("", physical) if "\n" in physical else physical
        if not line.strip():
            continue
        upper = line[:6].upper()
        if zone_lines is not None:
            zone_lines.append(physical)
            if upper == "BEGIN:":
                zone_depth += 1
            elif upper == "END:VT" and line.strip().upper() == "END:VTIMEZONE" and zone_depth == 0:
                block = "\r\n".join(zone_lines) + "\r\n"
                tzid = next((_split(_UNFOLD.sub("", z))[2] for z in zone_lines if z.upper().startswith("TZID")), None)
                if calendar is not None and tzid:
                    calendar.zone_texts[tzid] = calendar.zone_texts[_unescape(tzid)] = block
                zone_lines = None
            elif upper == "END:ST" or upper == "END:DA":
                zone_depth -= 1
            continue
        if upper == "BEGIN:":
            kind = line[6:].strip().upper()
            if kind == "VCALENDAR":
                calendar = _Calendar()
            elif kind == "VTIMEZONE" and not stack:
                zone_lines, zone_depth = [physical], 0
            elif calendar is not None:
                component = Component(kind)
                if stack:
                    stack[-1].subcomponents.append(component)
                stack.append(component)
            if stack:
                for item in stack:
                    item.lines.append(physical)
            continue
        if upper == "END:VC" and line.strip().upper() == "END:VCALENDAR":
            if calendar is not None:
                yield calendar
            calendar = None
            continue
        if stack:
            for item in stack:
                item.lines.append(physical)
            if upper[:4] == "END:":
                done = stack.pop()
                if not stack and done.name in ("VEVENT", "VTODO") and calendar is not None:
                    calendar.subcomponents.append(done)
                continue
            name, params, value = _split(line)
            stack[-1].add(Prop(name, params, value, calendar))  # type: ignore[arg-type]
        elif calendar is not None:
            name, params, value = _split(line)
            calendar.props[name] = Prop(name, params, value, calendar)
    if calendar is not None or stack:
        raise ValueError("the file ends inside a component")
