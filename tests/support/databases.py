"""Test databases: a fresh SQLite file or a fresh PostgreSQL database per test.

PostgreSQL is the local server on 127.0.0.1:5432 (trust auth) unless LAPOR_TEST_PG_URL
names another. Without it the PostgreSQL cases skip with a clear message, except under
CI=true, where they fail: CI must test PostgreSQL.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
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


# One database at Alembic's head per test process and kind, copied for every node a test
# makes: running every revision costs each node 0.4 s on SQLite and 1.2 s on PostgreSQL;
# a copy costs a millisecond (a file) or a template clone. Dropped at the process's exit.
_templates: dict[str, str] = {}


def _migrated_template(kind: str) -> str:
    """The path (SQLite) or database name (PostgreSQL) of this process's migrated template."""
    if kind in _templates:
        return _templates[kind]
    from node.store.db import Database

    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="lapor-template-"))
        path = folder / "template.db"
        db = Database(f"sqlite:///{path}")
        db.upgrade()
        db.dispose()
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _templates[kind] = str(path)
        return str(path)
    name = f"lapor_test_template_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    db = Database(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    db.upgrade()
    db.dispose()
    atexit.register(_drop_database, name)
    _templates[kind] = name
    return name


def _drop_database(name: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@contextmanager
def fresh_database(kind: str, tmp: Path, *, migrated: bool = False) -> Iterator[str]:
    """Yield the URL of an empty database of `kind` ('sqlite' or 'postgresql'); with
    `migrated`, one already at Alembic's head (a copy of this process's template)."""
    if kind == "sqlite":
        path = tmp / f"node-{uuid.uuid4().hex[:8]}.db"
        if migrated:
            shutil.copyfile(_migrated_template(kind), path)
            path.chmod(0o600)
        yield f"sqlite:///{path}"
        return
    require_postgres()
    name = f"lapor_test_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{_migrated_template(kind)}"' if migrated else ""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{template}'))
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
