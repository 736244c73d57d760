"""Migration 0012 (decision 0020): a database whose outbox rows carry acked_at upgrades
with every row kept, acknowledged by the link's acked_out_seq from then on; the downgrade
gives the column back, filled from the link."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, create_engine, inspect, text

from node.store.db import migrations_dir

AT = dt.datetime(2021, 2, 1, 9, 0, tzinfo=dt.UTC)
ACKED = dt.datetime(2021, 2, 1, 9, 5, tzinfo=dt.UTC)


def _migrate(connection: Connection, url: str, target: str, *, down: bool = False) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(cfg, target)


@pytest.fixture
def at_0011(database_url: str) -> Iterator[str]:
    """A database at revision 0011 with a link and four outbox rows, two acknowledged."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        _migrate(conn, database_url, "0011")
        conn.execute(
            text(
                "INSERT INTO links (peer_id, role, name, signing_key, tls_cert_pem, "
                "tls_fingerprint, created_at, next_out_seq, acked_out_seq, last_in_seq, "
                "peer_checkpoint_size, last_seen_at) VALUES ('id-64-02', 'child', 'Kutai', "
                ":key, '', :key, :at, 5, 2, 0, 0, :acked)"
            ),
            {"key": bytes(32), "at": AT, "acked": ACKED},
        )
        for sequence in range(1, 5):
            conn.execute(
                text(
                    "INSERT INTO outbox (peer_id, sequence, message_id, kind, carries_content, "
                    "body, key_id, signature, created_at, acked_at) VALUES ('id-64-02', :seq, "
                    ":mid, 'referral', false, :body, :key, :sig, :at, :acked)"
                ),
                {
                    "seq": sequence,
                    "mid": f"01a227c1-b5b4-7000-8000-{sequence:012d}",
                    "body": b"body",
                    "key": bytes(32),
                    "sig": bytes(64),
                    "at": AT,
                    "acked": ACKED if sequence <= 2 else None,
                },
            )
    engine.dispose()
    yield database_url


def test_upgrade_keeps_the_rows_and_drops_the_column(at_0011: str) -> None:
    engine = create_engine(at_0011)
    with engine.begin() as conn:
        _migrate(conn, at_0011, "0012")
        columns = {c["name"] for c in inspect(conn).get_columns("outbox")}
        indexes = {i["name"] for i in inspect(conn).get_indexes("outbox")}
        rows = conn.execute(text("SELECT sequence FROM outbox ORDER BY sequence")).scalars().all()
    engine.dispose()
    assert "acked_at" not in columns
    assert "ix_outbox_pending" not in indexes
    assert rows == [1, 2, 3, 4]


def test_downgrade_fills_acked_at_from_the_link(at_0011: str) -> None:
    engine = create_engine(at_0011)
    with engine.begin() as conn:
        _migrate(conn, at_0011, "0012")
        conn.execute(text("UPDATE links SET acked_out_seq = 3"))  # an Ack after the upgrade
        _migrate(conn, at_0011, "0011", down=True)
        acked = (
            conn.execute(
                text("SELECT sequence FROM outbox WHERE acked_at IS NOT NULL ORDER BY sequence")
            )
            .scalars()
            .all()
        )
        indexes = {i["name"] for i in inspect(conn).get_indexes("outbox")}
    engine.dispose()
    assert acked == [1, 2, 3]
    assert "ix_outbox_pending" in indexes
