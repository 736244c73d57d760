"""Intake from channel gateways (issue 5): attachments stored by SHA-256, and gateways'
idempotency keys (docs/decisions/0010-intake.md).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 23:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# A blob goes when the last complaint that lists it lets go of it (its content erased):
# attachments are personal data, like the content, and must not outlive it.
_GC_WHERE = (
    "DELETE FROM attachment_blobs WHERE sha256 = OLD.sha256 AND NOT EXISTS "
    "(SELECT 1 FROM complaint_attachments WHERE sha256 = OLD.sha256)"
)


def upgrade() -> None:
    op.create_table(
        "attachment_blobs",
        sa.Column("sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_table(
        "complaint_attachments",
        sa.Column("tracking_id", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["sha256"], ["attachment_blobs.sha256"]),
        sa.ForeignKeyConstraint(
            ["tracking_id"], ["complaint_contents.tracking_id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tracking_id", "sha256"),
    )
    with op.batch_alter_table("complaint_attachments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_complaint_attachments_sha256"), ["sha256"], unique=False
        )
    op.create_table(
        "intake_requests",
        sa.Column("gateway", sa.String(length=63), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("request_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("tracking_id", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tracking_id"], ["complaints.tracking_id"]),
        sa.PrimaryKeyConstraint("gateway", "idempotency_key"),
    )
    with op.batch_alter_table("intake_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intake_requests_tracking_id"), ["tracking_id"], unique=False
        )

    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER complaint_attachments_gc AFTER DELETE ON complaint_attachments "
            f"BEGIN {_GC_WHERE}; END"
        )
    else:
        op.execute(
            "CREATE FUNCTION lapor_attachment_blobs_gc() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {_GC_WHERE}; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER complaint_attachments_gc AFTER DELETE ON complaint_attachments "
            "FOR EACH ROW EXECUTE FUNCTION lapor_attachment_blobs_gc()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS complaint_attachments_gc")
    else:
        op.execute("DROP TRIGGER IF EXISTS complaint_attachments_gc ON complaint_attachments")
        op.execute("DROP FUNCTION IF EXISTS lapor_attachment_blobs_gc()")
    with op.batch_alter_table("intake_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intake_requests_tracking_id"))
    op.drop_table("intake_requests")
    with op.batch_alter_table("complaint_attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_complaint_attachments_sha256"))
    op.drop_table("complaint_attachments")
    op.drop_table("attachment_blobs")
