"""outbound_messages: uncertain_since, when an attempt whose outcome is unknown started

Revision ID: 0006_outbound_uncertain_since
Revises: 0005_incident_flags
Create Date: 2026-12-05 13:50:00
"""
from alembic import op
import sqlalchemy as sa

import models.types

revision = "0006_outbound_uncertain_since"
down_revision = "0005_incident_flags"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uncertain_since", models.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbound_messages", schema=None) as batch_op:
        batch_op.drop_column("uncertain_since")
