"""A document is read by those who may read its record; the search and versions too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from crmcore import NotFoundError
from documents_support import SECURITY, app, users

from crm_documents import documents, search


def test_documents_follow_the_record_they_are_attached_to(crm_factory: Any, tmp_path: Path) -> None:
    crm = app(crm_factory, tmp_path, security=SECURITY)
    ada, bob = users(crm, "ada", "bob", roles=("rep",))
    with crm.unit_of_work(ada) as uow:
        mine = uow.create("account", name="Acme")
        doc = documents.attach(
            uow, mine, "Acme contract", b"secret maintenance terms", kind="contract"
        )
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        theirs = uow.create("account", name="Bobco")
        documents.attach(uow, theirs, "Bobco contract", b"public maintenance terms")
        assert [r["title"] for r in documents.find(uow)] == ["Bobco contract"]
        assert [h.document.values["title"] for h in search.search(uow, "maintenance")] == [
            "Bobco contract"
        ]
        with pytest.raises(NotFoundError):
            uow.get("document", doc.id)
        with pytest.raises(NotFoundError):
            documents.versions(uow, doc.id)
        assert uow.query("document_version").where(document_id=doc.id).count() == 0
        with pytest.raises(NotFoundError):
            documents.add_version(uow, doc.id, b"overwrite")
        uow.commit()
    with crm.unit_of_work() as uow:  # shared: bob may read the account, and so its documents
        uow.update("account", mine.id, owner_id=bob.user_id)
        uow.commit()
    with crm.unit_of_work(bob) as uow:
        assert {r["title"] for r in documents.find(uow)} == {"Acme contract", "Bobco contract"}
        assert documents.content(uow, doc.id)[1] == b"secret maintenance terms"
    with crm.unit_of_work(ada) as uow:
        assert documents.find(uow) == []
