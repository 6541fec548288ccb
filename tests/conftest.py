"""Shared test configuration: the fixtures come from the crmcore.testing pytest plugin, plus
``cli``, the ``crm`` command run on a fresh database of the kind under test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from crmcore.testing import run_crm


@pytest.fixture
def cli(crm_factory: Any, crm_workdir: Path) -> Callable[..., Result]:
    """``cli("show", "account", "1")`` runs ``crm --db <url> show account 1`` in an empty folder,
    on a fresh database (an SQLite file or a PostgreSQL schema) whose tables exist; its URL is
    ``cli.url``."""
    url: str = crm_factory.database_url(file=True)
    crm_factory(database=url)

    def run(*args: str) -> Result:
        return run_crm("--db", url, *args)

    run.url = url  # type: ignore[attr-defined]
    return run
