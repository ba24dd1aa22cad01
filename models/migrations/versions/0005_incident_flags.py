"""incidents: flags a dispatcher must see (possible duplicate, reporter replied, DM unreachable, ...)

Revision ID: 0005_incident_flags
Revises: 0004_posts_platform_author
Create Date: 2026-12-05 05:50:00
"""
from alembic import op
import sqlalchemy as sa

revision = "0005_incident_flags"
down_revision = "0004_posts_platform_author"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("flags", sa.JSON().with_variant(sa.JSON(), "postgresql"),
                                      nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("flags")
