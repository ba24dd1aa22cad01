"""post_media: media named by post payloads, archived once with their SHA-256

Revision ID: 0009_post_media
Revises: 0008_login_sessions
Create Date: 2026-12-05 17:30:00
"""
from alembic import op
import sqlalchemy as sa

import models.types

revision = "0009_post_media"
down_revision = "0008_login_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "post_media",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("post_id", sa.Integer(), sa.ForeignKey("posts.id"), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("error", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("content_type", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(), nullable=False),
        sa.Column("fetched_at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("post_id", "idx", name="uq_post_media_post_idx"),
    )
    op.create_index("ix_post_media_post_id", "post_media", ["post_id"])


def downgrade() -> None:
    op.drop_index("ix_post_media_post_id", table_name="post_media")
    op.drop_table("post_media")
