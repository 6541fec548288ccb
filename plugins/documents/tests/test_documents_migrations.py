"""The migration adds the plugin's table, its columns of ``crm_document`` and the search index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crm_documents import documents, search


def test_upgrade_makes_what_the_plugin_uses(crm_factory: Any, tmp_path: Path) -> None:
    crm = crm_factory(
        plugins=["documents"],
        file=True,
        create_schema=False,
        settings={"plugins": {"documents": {"storage_path": str(tmp_path / "store")}}},
    )
    crm.upgrade()
    with crm.connect() as connection:
        inspector = sa.inspect(connection)
        columns = {c["name"] for c in inspector.get_columns("crm_document")}
        assert "documents_document_version" in inspector.get_table_names()
    assert {"documents_record_entity", "documents_content_text", "documents_notice_date"} <= columns
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        documents.attach(uow, account, "Contract", b"maintenance of printers")
        assert [h.document.values["title"] for h in search.search(uow, "printers")] == ["Contract"]
