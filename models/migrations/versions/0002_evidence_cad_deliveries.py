"""evidence: cad_deliveries (log of CAD webhook hand-off attempts)

Revision ID: 0002_evidence_cad
Revises: 0001
Create Date: 2026-11-22 03:00:00
"""
from alembic import op
import sqlalchemy as sa

import models.types

revision = "0002_evidence_cad"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cad_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payload_sha256", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cad_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_cad_deliveries_incident_id", ["incident_id"], unique=False)
        batch_op.create_index("ix_cad_deliveries_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cad_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_cad_deliveries_at")
        batch_op.drop_index("ix_cad_deliveries_incident_id")
    op.drop_table("cad_deliveries")
