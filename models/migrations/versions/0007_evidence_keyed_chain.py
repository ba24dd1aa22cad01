"""evidence: the audit log's keyed chain (seq, prev_hash, hash) and retention tombstones

Revision ID: 0007_evidence_keyed_chain
Revises: 0006_outbound_uncertain_since
Create Date: 2026-12-05 13:50:00
"""
from alembic import op
import sqlalchemy as sa

import models.types

revision = "0007_evidence_keyed_chain"
down_revision = "0006_outbound_uncertain_since"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("hash", sa.String(), nullable=False, server_default=""))
        batch_op.create_unique_constraint("uq_audit_log_seq", ["seq"])
    op.create_table(
        "evidence_tombstones",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(), nullable=False),
        sa.Column("at", models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("mac", sa.String(), nullable=False),
    )
    op.create_index("ix_evidence_tombstones_incident_id", "evidence_tombstones", ["incident_id"])


def downgrade() -> None:
    op.drop_index("ix_evidence_tombstones_incident_id", table_name="evidence_tombstones")
    op.drop_table("evidence_tombstones")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint("uq_audit_log_seq", type_="unique")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
