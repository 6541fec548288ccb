"""The outbox's migration creates exactly what its declaration describes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from outbox_support import items, post_items

from crm_outbox import deliver


def test_an_upgraded_database_matches_the_declaration_and_delivers(
    crm_factory: Any, tmp_path: Path
) -> None:
    settings = {
        "outbox": {"sinks": {"production": {"type": "file", "path": str(tmp_path / "drop")}}}
    }
    crm = crm_factory(plugins=["outbox"], settings=settings, file=True, create_schema=False)
    crm.upgrade()
    with crm.connect() as connection:
        inspector = sa.inspect(connection)
        columns = {c["name"] for c in inspector.get_columns("outbox_outbox_request")}
        indexes = {i["name"] for i in inspector.get_indexes("outbox_outbox_request")}
    assert columns == {c.name for c in crm.registry.table("outbox_request").columns}
    assert "ix_outbox_outbox_request_next_attempt_at" in indexes
    post_items(crm, items(2))
    assert deliver(crm).delivered == 2
