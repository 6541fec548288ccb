"""Shared test configuration: the fixtures come from the crmcore.testing pytest plugin, plus
``cli``, the ``crm`` command run on a fresh database of the kind under test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from crmcore.cli import main


@pytest.fixture
def cli(crm_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``cli("show", "account", "1")`` runs ``crm --db <url> show account 1`` in an empty folder,
    on a fresh database (an SQLite file or a PostgreSQL schema) whose tables exist; its URL is
    ``cli.url``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CRM_DATABASE_URL", raising=False)
    monkeypatch.delenv("CRM_PLUGINS", raising=False)
    url: str = crm_factory.database_url(file=True)
    crm_factory(database=url)

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["--db", url, *args], catch_exceptions=False)

    run.url = url  # type: ignore[attr-defined]
    return run
