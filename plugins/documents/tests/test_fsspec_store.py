"""Contents stored on an fsspec file system (``storage_url``) instead of a local folder: the
same contents by hash, read back, stored once, and checked against their hash."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import fsspec
import pytest
from crmcore.errors import ConfigError, NotFoundError

from crm_documents.documents import attach, content
from crm_documents.fsstore import FsspecContentStore


def _app(crm_factory: Any, url: str) -> Any:
    return crm_factory(
        plugins=["documents"], settings={"plugins": {"documents": {"storage_url": url}}}
    )


def test_a_document_is_stored_and_read_back_on_an_in_memory_file_system(crm_factory: Any) -> None:
    url = f"memory://crm-docs-{uuid.uuid4().hex}"
    crm = _app(crm_factory, url)
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        document = attach(uow, account, "Offer", b"the offer", kind="offer", filename="offer.txt")
        _version, data = content(uow, document)
        uri = uow.get("document", document.id).uri

    assert data == b"the offer"
    assert uri.startswith("memory://")
    assert fsspec.filesystem("memory").cat_file(uri) == b"the offer"


def test_a_local_file_url_stores_under_its_folder_once(crm_factory: Any, tmp_path: Path) -> None:
    crm = _app(crm_factory, tmp_path.as_uri())
    with crm.unit_of_work() as uow:
        account = uow.create("account", name="Acme")
        attach(uow, account, "One", b"same bytes", filename="a.txt")
        attach(uow, account, "Two", b"same bytes", filename="b.txt")

    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 1


def test_a_content_changed_on_the_file_system_is_refused(tmp_path: Path) -> None:
    store = FsspecContentStore(tmp_path.as_uri())
    digest, _, _ = store.put(b"original")
    next(p for p in tmp_path.rglob("*") if p.is_file()).write_bytes(b"tampered")

    with pytest.raises(NotFoundError, match="no longer matches its hash"):
        store.get(digest)


def test_a_storage_url_without_a_protocol_is_refused(crm_factory: Any) -> None:
    with pytest.raises(ConfigError, match="storage_url must be a URL"):
        _app(crm_factory, "/srv/docs")
