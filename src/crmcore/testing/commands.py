"""The ``crm`` command and its demo, run from tests (re-exported by :mod:`crmcore.testing`).

:func:`run_crm` runs ``crm`` in this process through click's ``CliRunner``; :func:`crm_ok` and
:func:`crm_fails` run it and check the outcome (in the folder of the fixture ``crm_workdir``,
``crm`` reads only the ``crm.toml`` the test writes). For a plugin's ``crm demo`` chapter,
:func:`tell_story` tells the story on an app of the test, and :func:`demo_counts` counts the
records a ``crm demo`` file holds.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from click.testing import Result

    from crmcore.app import Crm
    from crmcore.demo import Story

__all__ = ["CORE_DEMO_ENTITIES", "ToldStory", "crm_fails", "crm_ok", "demo_counts", "run_crm", "tell_story"]


def run_crm(*args: str, obj: Any = None) -> Result:
    """``crm ARGS`` run in this process through click's ``CliRunner`` (exceptions other than
    the command's deliberate exit propagate, with their traceback). *obj* is the
    :class:`~crmcore.cli.CliState` to run with (plugin objects for throwaway hooks, say)."""
    from click.testing import CliRunner

    from crmcore.cli import main

    return CliRunner().invoke(main, list(args), obj=obj, catch_exceptions=False)


def crm_ok(*args: str, obj: Any = None) -> str:
    """Run ``crm ARGS`` (see :func:`run_crm`), which must succeed; its standard output."""
    result = run_crm(*args, obj=obj)
    assert result.exit_code == 0, result.output
    return result.stdout


def crm_fails(*args: str, obj: Any = None) -> str:
    """Run ``crm ARGS`` (see :func:`run_crm`), which must fail with exit code 1, one line on
    standard error starting ``error:`` and no traceback; that line."""
    result = run_crm(*args, obj=obj)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


#: The core's entity types ``crm demo`` fills, as :func:`demo_counts` counts them by default.
CORE_DEMO_ENTITIES = ("user", "team", "account", "contact", "lead", "opportunity", "activity", "note")


def demo_counts(path: str | Path, entities: Sequence[str] = CORE_DEMO_ENTITIES, *, prefix: str = "crm_") -> dict[str, int]:
    """``{entity: number of records}`` in the ``crm demo`` SQLite file *path*, read from the
    tables ``<prefix><entity>`` (a plugin's: ``demo_counts(path, ["ticket"], prefix="helpdesk_")``)."""
    connection = sqlite3.connect(path)
    try:
        return {
            entity: connection.execute(f'SELECT count(*) FROM "{prefix}{entity}"').fetchone()[0]  # noqa: S608 - names of tables
            for entity in entities
        }
    finally:
        connection.close()


class ToldStory(NamedTuple):
    """The story of ``crm demo`` told on an app: the app, the :class:`~crmcore.demo.Story`
    and the lines printed."""

    crm: Crm
    story: Story
    lines: list[str]


def tell_story(crm: Crm, *, today: dt.date | None = None) -> ToldStory:
    """Tell the story of ``crm demo`` (the core's chapters, its plugins' and the summary) on
    *crm*, whose schema exists and holds no records, on the day *today* (default: today),
    collecting what it prints. Told once per module for the tests that only read it::

        @pytest.fixture(scope="module")
        def told(crm_module_factory):
            return tell_story(crm_module_factory(plugins=["helpdesk"]), today=dt.date(2026, 3, 2))
    """
    from crmcore.demo import tell

    lines: list[str] = []
    story = tell(crm, echo=lines.append, today=today)
    return ToldStory(crm, story, lines)
