"""``crm demo`` tells a service chapter when the help desk is enabled."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from crmcore import Crm, create_app, demo
from crmcore.cli import CliState, main


def test_the_demo_has_a_service_chapter(tmp_path: Path) -> None:
    lines: list[str] = []
    demo.run(
        str(tmp_path / "demo.db"),
        plugins=["helpdesk"],
        echo=lines.append,
        today=dt.date(2026, 3, 20),
    )
    text = "\n".join(lines)
    assert "\nService\n" in text
    assert "queues General and Billing" in text
    assert "28 tickets:" in text and "SLA sweep:" in text and "CSAT" in text
    assert "'Resetting your password'" in text
    with _app(tmp_path) as crm, crm.unit_of_work() as uow:
        assert uow.query("ticket").count() == 28
        assert uow.query("csat_survey").where(("score", "is not null")).count() > 0
        assert uow.query("sla_event").count() > 0


def _app(tmp_path: Path) -> Crm:
    return create_app(
        {"crm": {"database": f"sqlite:///{tmp_path / 'demo.db'}", "plugins": ["helpdesk"]}}
    )


def test_the_demo_without_the_help_desk_has_no_service_chapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["demo", "--db", str(tmp_path / "plain.db")], obj=CliState(), catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "\nService\n" not in result.output
