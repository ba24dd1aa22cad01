"""share: one-time share links and the items reporters send through them

Revision ID: 0003_share_links_media
Revises: 0002_evidence_cad
Create Date: 2026-11-22 03:00:00
"""
from alembic import op
import sqlalchemy as sa

import models.types

revision = "0003_share_links_media"
down_revision = "0002_evidence_cad"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "share_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("nonce", sa.String(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(), nullable=False),
        sa.Column("device_hash", sa.String(), nullable=False),
        sa.Column("bound_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consent_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("consent_scope", sa.JSON(), nullable=False),
        sa.Column("consent_text", sa.Text(), nullable=False),
        sa.Column("consent_user_agent", sa.String(), nullable=False),
        sa.Column("declined_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", models.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["outbound_messages.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("nonce"),
    )
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.create_index("ix_share_links_incident_id", ["incident_id"], unique=False)

    op.create_table(
        "shared_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("received_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("stream_seq", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["link_id"], ["share_links.id"]),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("shared_items", schema=None) as batch_op:
        batch_op.create_index("ix_shared_items_link_id", ["link_id"], unique=False)
        batch_op.create_index("ix_shared_items_incident_kind", ["incident_id", "kind", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("shared_items", schema=None) as batch_op:
        batch_op.drop_index("ix_shared_items_incident_kind")
        batch_op.drop_index("ix_shared_items_link_id")
    op.drop_table("shared_items")
    with op.batch_alter_table("share_links", schema=None) as batch_op:
        batch_op.drop_index("ix_share_links_incident_id")
    op.drop_table("share_links")
