"""The fields the documents plugin adds to the core's ``document`` and its own entity type
``document_version``."""

from __future__ import annotations

from crmcore import EntityType, Field
from crmcore.fields import Choice, Date, Integer, Reference, String, Text

__all__ = ["DOCUMENT_FIELDS", "ENTITIES", "KINDS", "LINKS", "VERSION"]

#: What a document is.
KINDS = ("contract", "offer", "work_report", "other")
#: The core's link fields of a document, most specific first: a document attached to one of
#: these records also sets its link field (and so appears on the record's timeline).
LINKS = (
    ("opportunity", "opportunity_id"),
    ("contact", "contact_id"),
    ("lead", "lead_id"),
    ("account", "account_id"),
)

DOCUMENT_FIELDS = (
    Field("kind", Choice(*KINDS), default="other", index=True),
    Field(
        "record_entity",
        String(64),
        read_only=True,
        help="The entity type of the record the document is attached to (any, plugins' too); "
        "set by crm_documents.documents.attach or from the link fields.",
    ),
    Field("record_id", Integer(), read_only=True, help="The id of that record."),
    Field("valid_from", Date(), help="A contract's first day."),
    Field("valid_until", Date(), index=True, help="A contract's last day."),
    Field("notice_days", Integer(), help="A contract's notice period, in days before its end."),
    Field(
        "notice_date",
        Date(),
        index=True,
        read_only=True,
        help="The last day to give notice: valid_until minus notice_days (set by the plugin).",
    ),
    Field("version_count", Integer(), default=0, read_only=True, help="The number of versions."),
    Field(
        "content_text",
        Text(),
        read_only=True,
        help="The text of the current version, for full-text search.",
    ),
)

VERSION = EntityType(
    "document_version",
    label="Document version",
    title_field="filename",
    fields=(
        Field(
            "document_id",
            Reference("document", on_delete="cascade"),
            required=True,
            label="Document",
            index=True,
        ),
        Field("number", Integer(), help="1 for the first version, then 2, 3, ..."),
        Field("content_hash", String(64), index=True, help="SHA-256 of the content (hex)."),
        Field("size", Integer(), help="Size in bytes."),
        Field("media_type", String(100)),
        Field("filename", String(255)),
        Field("uploader_id", Reference("user", on_delete="set_null"), label="Uploader"),
        Field("comment", Text()),
    ),
    help="One stored content of a document; the store keeps it by its hash.",
)

ENTITIES = (VERSION,)
