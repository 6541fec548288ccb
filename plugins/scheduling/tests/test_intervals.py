"""Span arithmetic."""

from __future__ import annotations

import datetime as dt

from crm_scheduling.intervals import clip, merge, minutes, overlaps, subtract


def t(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2027, 1, 18, hour, minute, tzinfo=dt.UTC)


def test_merge_joins_overlapping_and_touching_spans() -> None:
    assert merge([(t(10), t(11)), (t(8), t(9)), (t(9), t(9, 30)), (t(10, 30), t(12))]) == [
        (t(8), t(9, 30)), (t(10), t(12))]


def test_subtract_cuts_holes() -> None:
    assert subtract([(t(8), t(17))], [(t(9), t(10)), (t(12), t(13)), (t(16), t(18))]) == [
        (t(8), t(9)), (t(10), t(12)), (t(13), t(16))]


def test_clip_minutes_and_overlaps() -> None:
    spans = [(t(8), t(12)), (t(13), t(17))]
    assert clip(spans, t(11), t(14)) == [(t(11), t(12)), (t(13), t(14))]
    assert minutes(spans) == 480
    assert overlaps(spans, t(12), t(13)) == []
    assert overlaps(spans, t(11, 59), t(13)) == [(t(8), t(12))]
