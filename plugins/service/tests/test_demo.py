"""``crm demo`` tells a field service chapter when the service plugin is enabled."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crmcore import create_app, demo


def test_the_demo_has_a_field_service_chapter(tmp_path: Path) -> None:
    lines: list[str] = []
    demo.run(str(tmp_path / "demo.db"), plugins=["service"], echo=lines.append,
             today=dt.date(2026, 3, 20))
    text = "\n".join(lines)
    assert "\nField service\n" in text
    assert "standard warranty until 2027-01-18" in text  # installed 60 days before, 12 months
    assert "customer pays 0.00 USD (contract SC-2001 covers 100% of labour" in text
    assert "order 1 invoiced: 2 billable lines (parts, travel), 57.00 USD" in text
    assert "3 lines checked, no leakage" in text
    assert "billed while covered - line 1 (labour), 200.00 USD at stake" in text
    crm = create_app({"crm": {"database": f"sqlite:///{tmp_path / 'demo.db'}",
                              "plugins": ["service"]}})
    with crm, crm.unit_of_work() as uow:
        assert uow.query("plan_occurrence").count() >= 5  # the worker rolls the horizon on
        assert uow.query("work_line").where(("invoice_ref", "is null")).count() == 3
