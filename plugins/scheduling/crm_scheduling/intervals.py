"""Spans of time as sorted lists of ``(start, end)`` pairs of aware datetimes: the arithmetic
availability is made of (pure, no database)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

__all__ = ["Span", "clip", "merge", "minutes", "overlaps", "subtract"]

Span = tuple[dt.datetime, dt.datetime]


def merge(spans: Iterable[Span]) -> list[Span]:
    """*spans* sorted, with overlapping or touching ones joined; empty ones dropped."""
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[1] > s[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def subtract(spans: Sequence[Span], taken: Iterable[Span]) -> list[Span]:
    """What of *spans* (merged) is left once *taken* is removed."""
    cuts = merge(taken)
    out: list[Span] = []
    for start, end in merge(spans):
        cursor = start
        for cut_start, cut_end in cuts:
            if cut_end <= cursor or cut_start >= end:
                continue
            if cut_start > cursor:
                out.append((cursor, cut_start))
            cursor = max(cursor, cut_end)
            if cursor >= end:
                break
        if cursor < end:
            out.append((cursor, end))
    return out


def clip(spans: Iterable[Span], first: dt.datetime, last: dt.datetime) -> list[Span]:
    """The parts of *spans* between *first* and *last*."""
    return [(max(s, first), min(e, last)) for s, e in spans if e > first and s < last]


def minutes(spans: Iterable[Span]) -> float:
    """The total length of *spans* in minutes (overlaps counted once)."""
    return sum((e - s).total_seconds() for s, e in merge(spans)) / 60


def overlaps(spans: Iterable[Span], start: dt.datetime, end: dt.datetime) -> list[Span]:
    """The spans of *spans* that overlap ``[start, end)``."""
    return [(s, e) for s, e in spans if s < end and e > start]
