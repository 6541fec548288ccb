"""``crm demo`` tells a calendar chapter when the calendar plugin is enabled."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crmcore import demo


def test_the_demo_has_a_calendar_chapter(tmp_path: Path) -> None:
    lines: list[str] = []
    demo.run(str(tmp_path / "demo.db"), plugins=["calendar_sync"], echo=lines.append, today=dt.date(2026, 3, 20))
    text = "\n".join(lines)
    assert "Calendar:" in text and "weekly_sync.ics" in text
    assert "first import: 1 events: 1 created" in text
    assert "same file again: 1 events: 0 created, 0 updated, 1 unchanged" in text
    assert text.count("Daily Sync") == 5  # the working days of its first week, expanded for the listing only
    assert "Fri 2016-10-28 14:00 CEST" in text and "Mon 2016-10-31 14:00 CET" in text
