"""Tables of the core that are not entity types: the audit trail, tag links, and the merges of
duplicates (each merge, the journal of the rows it changed, and the tombstones of the records
it merged away)."""

from __future__ import annotations

import sqlalchemy as sa

from crmcore.storage.types import UTCDateTime

__all__ = ["build_core_tables"]


def build_core_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Add ``crm_audit``, ``crm_tagging``, ``crm_merge``, ``crm_merge_journal`` and
    ``crm_merge_tombstone`` to *metadata*."""
    audit = sa.Table(
        "crm_audit",
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Index(None, "entity", "record_id", "id"),
        info={"origin": "core"},
    )
    tagging = sa.Table(
        "crm_tagging",
        metadata,
        sa.Column("tag_id", sa.Integer(), sa.ForeignKey("crm_tag.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("entity", sa.String(64), primary_key=True),
        sa.Column("record_id", sa.Integer(), primary_key=True),
        # 0: a shared tagging, every reader of the record sees it; a user's id: that user's
        # private tagging, which only they see
        sa.Column("owner_id", sa.Integer(), primary_key=True, server_default="0"),
        sa.Index(None, "entity", "record_id"),
        info={"origin": "core"},
    )
    merge = sa.Table(
        "crm_merge",
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("into_id", sa.Integer(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("undone_at", UTCDateTime(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        info={"origin": "core"},
    )
    # one row per row a merge changed: what it was, and the version the merge left it at
    journal = sa.Table(
        "crm_merge_journal",
        metadata,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("merge_id", sa.Integer(), sa.ForeignKey("crm_merge.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(64), nullable=True),
        sa.Column("old", sa.JSON(), nullable=True),
        sa.Column("new", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        info={"origin": "core"},
    )
    # a record merged away: its whole row, kept until the merge is undone; its id resolves to
    # the record it was merged into
    tombstone = sa.Table(
        "crm_merge_tombstone",
        metadata,
        sa.Column("merge_id", sa.Integer(), sa.ForeignKey("crm_merge.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("entity", sa.String(64), primary_key=True),
        sa.Column("record_id", sa.Integer(), primary_key=True),
        sa.Column("into_id", sa.Integer(), nullable=True),
        sa.Column("row", sa.JSON(), nullable=False),
        sa.Index(None, "entity", "record_id"),
        info={"origin": "core"},
    )
    return {"audit": audit, "tagging": tagging, "merge": merge, "merge_journal": journal, "merge_tombstone": tombstone}
