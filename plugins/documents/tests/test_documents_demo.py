"""``crm demo`` tells a documents chapter, and the worker reminds the account owner."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crmcore import create_app, demo


def test_the_demo_has_a_documents_chapter(tmp_path: Path) -> None:
    lines: list[str] = []
    demo.run(
        str(tmp_path / "demo.db"),
        plugins=["documents"],
        echo=lines.append,
        today=dt.date(2026, 3, 20),
    )
    text = "\n".join(lines)
    assert "\nDocuments\n" in text
    assert "notice by 2026-03-30 (90 days)" in text
    assert "search 'servicing printer' finds:" in text and "maintenance contract" in text
    assert (tmp_path / "demo-documents").is_dir()
    app = create_app(
        {"crm": {"database": f"sqlite:///{tmp_path / 'demo.db'}", "plugins": ["documents"]}}
    )
    with app, app.unit_of_work() as uow:
        due = uow.query("reminder").where(status="due").all()
        assert any(
            "last day to give notice 2026-03-30" in (r.values.get("message") or "") for r in due
        )
