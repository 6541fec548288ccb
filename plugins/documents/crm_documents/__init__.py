"""crm-documents: documents attached to any record, with content-addressed versions, full-text
search and contract dates that remind the account owner in time.

Enable it with ``plugins = ["documents"]``. It extends the core's ``document`` entity type
(title, file metadata, links to accounts, contacts, leads and opportunities) with a kind, a
link to a record of any entity type, contract validity and the extracted text, and adds
``document_version``. The modules beside this one hold the logic: the content store
(:mod:`~crm_documents.store`), text extraction (:mod:`~crm_documents.text`), documents and
versions (:mod:`~crm_documents.documents`), search (:mod:`~crm_documents.search`), access
(:mod:`~crm_documents.access`) and contract reminders (:mod:`~crm_documents.contracts`).
"""

from __future__ import annotations

from crmcore import PluginInfo, Setting

__all__ = ["PLUGIN"]

PLUGIN = PluginInfo(
    name="documents",
    title="Documents",
    requires=(),
    description=(
        "Documents on any record: kinds, content-addressed versions in a local folder, full-text "
        "search of PDF and text files, contract validity and notice reminders."
    ),
    settings={
        "storage_path": Setting(
            str,
            default="",
            help="The folder where contents are stored by their SHA-256; empty: beside an "
            "SQLite database file (crm.db: crm-documents), else ./crm-documents.",
        ),
        "storage_url": Setting(
            str,
            default="",
            help="Any fsspec file system to store contents on instead of a local folder "
            "(memory://docs, file:///srv/docs, s3://bucket/prefix); needs crm-documents[fsspec].",
        ),
        "reminder_days": Setting(
            int,
            default=14,
            minimum=0,
            maximum=3650,
            help="Days before a contract's notice date and end date the account owner is reminded.",
        ),
        "max_size_mb": Setting(
            int, default=100, minimum=1, maximum=100000, help="The largest content accepted."
        ),
    },
)
