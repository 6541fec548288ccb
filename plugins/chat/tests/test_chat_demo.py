"""``crm demo`` tells a chat chapter when the chat is enabled."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from crmcore import demo


def test_the_demo_has_a_chat_chapter(tmp_path: Path) -> None:
    lines: list[str] = []
    demo.run(
        str(tmp_path / "demo.db"), plugins=["chat"], echo=lines.append, today=dt.date(2026, 3, 20)
    )
    text = "\n".join(lines)
    assert "\nChat\n" in text
    assert "opened the private rooms 'Pricing'" in text
    assert "'a restricted record' for" in text
    assert "after reading Deal desk: 0" in text and "does not see the room Pricing" in text
