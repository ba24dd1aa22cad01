"""posts: index reporters' earlier posts by (platform, author_id, id)

Revision ID: 0004_posts_platform_author
Revises: 0003_share_links_media
Create Date: 2026-11-22 11:00:00
"""
from alembic import op

revision = "0004_posts_platform_author"
down_revision = "0003_share_links_media"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.create_index("ix_posts_platform_author", ["platform", "author_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_index("ix_posts_platform_author")
