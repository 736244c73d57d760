"""The schema: Alembic migrations match the models, upgrades are idempotent, and SQLite
connections run with the durability pragmas."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from node.errors import ConfigError
from node.ledger.merkle import leaf_hash
from node.store import queries
from node.store.db import Database, migrations_dir
from node.store.models import Base
from tests.support.databases import fresh_database

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


def _head() -> str:
    config = AlembicConfig()
    config.set_main_option("script_location", str(migrations_dir()))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


def test_models_and_migrations_do_not_drift(db: Database) -> None:
    """After upgrade to head, autogenerate finds no difference from the models."""
    with db.read() as session:
        context = MigrationContext.configure(
            session.connection(), opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_creates_every_model_table(db: Database) -> None:
    """Every model table exists after upgrade, with alembic_version at the single head."""
    with db.read() as session:
        tables = set(inspect(session.connection()).get_table_names())
        version = session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert set(Base.metadata.tables) <= tables
    assert version == _head()


def test_upgrading_twice_changes_nothing(db: Database) -> None:
    """A second upgrade is a no-op: same version, the ledger and its head untouched, no drift."""
    with db.write() as session:
        queries.append_ledger_row(session, b"entry 0", leaf_hash(b"entry 0"), NOW)
    db.upgrade()
    with db.read() as session:
        assert session.execute(text("SELECT version_num FROM alembic_version")).all() == [
            (_head(),)
        ]
        assert session.execute(text("SELECT id, size FROM ledger_head")).all() == [(1, 1)]
        assert [r.entry for r in queries.iter_ledger(session)] == [b"entry 0"]
        context = MigrationContext.configure(session.connection())
        assert compare_metadata(context, Base.metadata) == []


def test_migrations_ship_with_the_source() -> None:
    """migrations_dir finds the Alembic environment, whose history starts at revision 0001."""
    folder = migrations_dir()
    assert (folder / "env.py").is_file()
    assert (folder / "versions" / "0001_initial_schema.py").is_file()
    config = AlembicConfig()
    config.set_main_option("script_location", str(folder))
    assert ScriptDirectory.from_config(config).get_base() == "0001"


def test_unreachable_database_is_a_config_error(tmp_path: Path) -> None:
    """Upgrading a database that cannot be opened raises ConfigError naming its URL."""
    url = f"sqlite:///{tmp_path / 'missing' / 'node.db'}"
    db = Database(url)
    try:
        with pytest.raises(ConfigError, match="cannot open the database"):
            db.upgrade()
        with pytest.raises(ConfigError, match="cannot open the database"):
            db.check_reachable()
    finally:
        db.dispose()


def test_safe_url_hides_the_password() -> None:
    """safe_url, used in messages, never shows the database password."""
    db = Database("postgresql+psycopg://lapor:s3cret@db.example:5432/lapor")
    assert "s3cret" not in db.safe_url
    assert "db.example" in db.safe_url
    db.dispose()


# SQLite pragmas --------------------------------------------------------------------------

PRAGMAS = {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 2, "busy_timeout": 30000}


def _pragmas(session: object) -> dict[str, object]:
    conn = session.connection()  # type: ignore[attr-defined]
    return {name: conn.exec_driver_sql(f"PRAGMA {name}").scalar() for name in PRAGMAS}


def test_sqlite_pragmas_hold_on_every_connection(tmp_path: Path) -> None:
    """WAL, foreign_keys=1, synchronous=2 (FULL), busy timeout on every writer/reader connection."""
    with fresh_database("sqlite", tmp_path) as url:
        db = Database(url)
        try:
            db.upgrade()
            with db.write() as writer, db.read() as reader1, db.read() as reader2:
                seen = [_pragmas(writer), _pragmas(reader1), _pragmas(reader2)]
                connections = {
                    id(s.connection().connection.dbapi_connection)
                    for s in (writer, reader1, reader2)
                }
            with db.read() as again:
                seen.append(_pragmas(again))
        finally:
            db.dispose()
    assert len(connections) == 3
    assert seen == [PRAGMAS] * 4


def test_sqlite_foreign_keys_are_enforced(tmp_path: Path) -> None:
    """A complaint_contents row for a missing complaint is refused by the database."""
    from sqlalchemy.exc import IntegrityError

    with fresh_database("sqlite", tmp_path) as url:
        db = Database(url)
        try:
            db.upgrade()
            with pytest.raises(IntegrityError), db.write() as session:
                session.execute(
                    text(
                        "INSERT INTO complaint_contents (tracking_id, content, salt) "
                        "VALUES ('id-64.2026.000001', x'00', x'00')"
                    )
                )
        finally:
            db.dispose()
