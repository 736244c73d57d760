"""The complaint lifecycle across the tree (issue 5): where a complaint went, the dates
its deadline clocks start from, and the free text of the lifecycle beside the ledger.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 23:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("referred_to", sa.String(length=63)),
    ("referral_message_id", sa.String(length=36)),
    ("verified_at", sa.DateTime(timezone=True)),
    ("disposed_at", sa.DateTime(timezone=True)),
    ("resolved_at", sa.DateTime(timezone=True)),
    ("replied_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("complaints") as batch:
        for name, type_ in _COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_table(
        "complaint_notes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tracking_id", sa.String(length=100), nullable=False),
        sa.Column("commitment", sa.LargeBinary(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=63), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.ForeignKeyConstraint(["tracking_id"], ["complaints.tracking_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_complaint_notes_tracking_id", "complaint_notes", ["tracking_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_complaint_notes_tracking_id", table_name="complaint_notes")
    op.drop_table("complaint_notes")
    with op.batch_alter_table("complaints") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
