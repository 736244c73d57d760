"""PostgreSQL: a notification for each peer whose outbox rows a transaction queued.

A statement-level trigger on `outbox` sends `pg_notify('lapor_outbox', peer_id)` once per
peer among the rows the statement inserted. PostgreSQL delivers notifications when the
transaction commits (one per channel and payload per transaction), so the running node
(node.store.db.OutboxNotifications) wakes the session of that peer as soon as a referral
an operator's CLI queued is committed, instead of polling. SQLite has no notifications:
its watcher polls `PRAGMA data_version`, and this migration does nothing there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 10:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION lapor_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('lapor_outbox', peer_id)
            FROM (SELECT DISTINCT peer_id FROM queued) AS peers;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
        REFERENCING NEW TABLE AS queued
        FOR EACH STATEMENT EXECUTE FUNCTION lapor_outbox_notify()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION lapor_outbox_notify()")
