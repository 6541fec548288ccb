"""``crm demo`` tells a scheduling chapter when the scheduling plugin is enabled."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crmcore import create_app, demo


def test_the_demo_has_a_scheduling_chapter(tmp_path: Path) -> None:
    lines: list[str] = []
    demo.run(str(tmp_path / "demo.db"), plugins=["scheduling"], echo=lines.append,
             today=dt.date(2027, 1, 13))
    text = "\n".join(lines)
    assert "\nScheduling\n" in text
    chapter = text[text.index("\nScheduling\n"):]
    assert "3 technicians on the workshop calendar" in chapter
    assert "week of 2027-01-18:" in chapter
    assert "greedy proposal:" in chapter and "0 not placed" in chapter
    assert "displaces order" in chapter
    assert "refused: booking of resource" in chapter and "double booking" in chapter
    assert "off sick on 2027-01-19:" in chapter and "flagged at once (" in chapter
    assert "outside the working hours of" in chapter and "0 conflicts left" in chapter
    assert "capacity 2027-W03 team Field technicians" in chapter
    crm = create_app({"crm": {"database": f"sqlite:///{tmp_path / 'demo.db'}",
                              "plugins": ["scheduling"]}})
    with crm, crm.unit_of_work() as uow:
        bookings = uow.query("booking").count()
        assert bookings >= 10
        assert uow.query("activity").where(kind="meeting", status="planned").where(
            ("subject", "startswith", "Service order")).count() == bookings
