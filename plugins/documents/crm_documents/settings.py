"""The documents plugin's settings (``[plugins.documents]``), kept as the app's state, with
the content store they name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ConfigError

from crm_documents.fsstore import FsspecContentStore
from crm_documents.store import ContentStore

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["DocumentsSettings", "documents_settings", "store"]


@attrs.frozen
class DocumentsSettings:
    """The checked ``[plugins.documents]`` table."""

    storage_path: str = ""
    reminder_days: int = 14
    max_size_mb: int = 100
    storage_url: str = ""

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> DocumentsSettings:
        """:raises ConfigError: for a storage path that is an existing file."""
        path = table["storage_path"].strip()
        if path and Path(path).is_file():
            raise ConfigError(
                f"plugins.documents.storage_path must name a folder, and {path!r} is a file",
                key="plugins.documents.storage_path",
            )
        url = str(table.get("storage_url", "")).strip()
        if url and "://" not in url:
            raise ConfigError(
                f"plugins.documents.storage_url must be a URL such as 'memory://docs' or "
                f"'s3://bucket/prefix', got {url!r}; for a local folder use storage_path",
                key="plugins.documents.storage_url",
            )
        return cls(path, table["reminder_days"], table["max_size_mb"], url)


def documents_settings(crm: Crm) -> DocumentsSettings:
    """The settings of *crm* (the defaults when the plugin was not configured)."""
    return crm.find_state(DocumentsSettings) or DocumentsSettings()


def store(crm: Crm) -> ContentStore | FsspecContentStore:
    """The content store *crm*'s settings name: ``storage_url`` (any fsspec file system), else
    ``storage_path``, else a folder beside an
    SQLite database file (``crm.db`` → ``crm-documents``), else ``crm-documents`` in the
    working directory."""
    settings = documents_settings(crm)
    if settings.storage_url:
        return FsspecContentStore(settings.storage_url, settings.max_size_mb * 1024 * 1024)
    root = Path(settings.storage_path) if settings.storage_path else None
    if root is None:
        url = crm.engine.url
        database = url.database if url.get_backend_name() == "sqlite" else None
        if database and database != ":memory:" and not database.startswith("file:"):
            path = Path(database)
            root = path.with_name(f"{path.stem}-documents")
        else:
            root = Path("crm-documents")
    return ContentStore(root, settings.max_size_mb * 1024 * 1024)
