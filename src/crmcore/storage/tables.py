"""Tables of the core that are not entity types: the audit trail and tag links."""

from __future__ import annotations

import sqlalchemy as sa

from crmcore.storage.types import UTCDateTime

__all__ = ["build_core_tables"]


def build_core_tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    """Add ``crm_audit`` and ``crm_tagging`` to *metadata*."""
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
    return {"audit": audit, "tagging": tagging}
