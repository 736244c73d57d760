"""Reporter identities kept apart from complaint content (docs/decisions/0011).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 00:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reporter_identities",
        sa.Column("tracking_id", sa.String(length=100), nullable=False),
        sa.Column("identity", sa.LargeBinary(), nullable=True),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tracking_id"], ["complaints.tracking_id"]),
        sa.PrimaryKeyConstraint("tracking_id"),
    )


def downgrade() -> None:
    op.drop_table("reporter_identities")
