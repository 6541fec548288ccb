"""The documents plugin's settings (``[plugins.documents]``), kept as the app's state, with
the content store they name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
from crmcore.errors import ConfigError

from crm_documents.store import ContentStore

if TYPE_CHECKING:
    from crmcore import Crm

__all__ = ["DocumentsSettings", "documents_settings", "store"]


@attrs.frozen
class DocumentsSettings:
    """The checked ``[plugins.documents]`` table."""

    storage_path: str = "crm-documents"
    reminder_days: int = 14
    max_size_mb: int = 100

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> DocumentsSettings:
        """:raises ConfigError: for an empty storage path."""
        path = table["storage_path"].strip()
        if not path:
            raise ConfigError(
                "plugins.documents.storage_path must name a folder, got an empty text",
                key="plugins.documents.storage_path",
            )
        return cls(path, table["reminder_days"], table["max_size_mb"])


def documents_settings(crm: Crm) -> DocumentsSettings:
    """The settings of *crm* (the defaults when the plugin was not configured)."""
    return crm.find_state(DocumentsSettings) or DocumentsSettings()


def store(crm: Crm) -> ContentStore:
    """The content store *crm*'s settings name."""
    settings = documents_settings(crm)
    return ContentStore(Path(settings.storage_path), settings.max_size_mb * 1024 * 1024)
