"""Test databases: a fresh SQLite file or a fresh PostgreSQL database per test.

PostgreSQL is the local server on 127.0.0.1:5432 (trust auth) unless LAPOR_TEST_PG_URL
names another. Without it the PostgreSQL cases skip with a clear message, except under
CI=true, where they fail: CI must test PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

PG_ADMIN_URL = os.environ.get(
    "LAPOR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_pg_state: dict[str, str | None] = {}


def postgres_unavailable() -> str | None:
    """None if the test server answers, else why not (cached for the run)."""
    if "reason" not in _pg_state:
        try:
            engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            engine.dispose()
            _pg_state["reason"] = None
        except OperationalError as e:
            _pg_state["reason"] = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {e.orig}"
    return _pg_state["reason"]


def require_postgres() -> None:
    reason = postgres_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true requires PostgreSQL: {reason}")
    pytest.skip(f"{reason} (start it, or set LAPOR_TEST_PG_URL)")


@contextmanager
def fresh_database(kind: str, tmp: Path) -> Iterator[str]:
    """Yield the URL of an empty database of `kind` ('sqlite' or 'postgresql')."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'node-{uuid.uuid4().hex[:8]}.db'}"
        return
    require_postgres()
    name = f"lapor_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def alembic_config(url: str) -> AlembicConfig:
    """Alembic's configuration for upgrading the database at `url` to a given revision
    (the migrations as shipped, node.store.db.migrations_dir)."""
    from node.store.db import migrations_dir

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg
