"""Test databases: a fresh SQLite file or a fresh PostgreSQL database per test.

PostgreSQL is the local server on 127.0.0.1:5432 (trust auth) unless LAPOR_TEST_PG_URL
names another. Without it the PostgreSQL cases skip with a clear message, except under
CI=true, where they fail: CI must test PostgreSQL.
"""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import sys
import tempfile
import threading
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
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class _Dropper:
    """Drops a test's PostgreSQL databases after the test, on a thread of its own.

    DROP DATABASE waits for a checkpoint of the whole server (1-2 s each here), and a run
    makes about a thousand databases: dropped inside each test's teardown, that was a
    fifth of the suite's time. A database a test is done with is named by nobody else
    (each name is a fresh uuid), so its drop can run beside the next tests; WITH (FORCE)
    ends any connection a test left. The process waits for the queue before it exits.
    """

    def __init__(self) -> None:
        self._names: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._finished = False

    def drop_later(self, name: str) -> None:
        if self._finished:  # at exit, after the queue was drained
            _drop_database(name)
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="test-database-dropper", daemon=True
                )
                self._thread.start()
                atexit.register(self.finish)
        self._names.put(name)

    def finish(self) -> None:
        """Drop what is queued, then stop (at the process's exit)."""
        self._finished = True
        if self._thread is not None:
            self._names.put(None)
            self._thread.join()

    def _run(self) -> None:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        while (name := self._names.get()) is not None:
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            except Exception as e:  # a leftover database, never a failed test
                print(f"test database {name} not dropped: {e}", file=sys.stderr)
        admin.dispose()


_dropper = _Dropper()


def drop_later(name: str) -> None:
    """Drop the PostgreSQL database `name` on the dropper's thread (before this process
    exits)."""
    _dropper.drop_later(name)


def copy_database(url: str) -> str:
    """The URL of a new PostgreSQL database made from the one at `url`, to which nobody may
    be connected. The caller drops it (`drop_later`)."""
    return _create_database(url.rsplit("/", 1)[1])


def _create_database(template: str | None) -> str:
    """A new test database (a copy of `template`, if named); its URL."""
    name = f"lapor_test_{uuid.uuid4().hex[:12]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


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
    url = _create_database(_migrated_template(kind) if migrated else None)
    try:
        yield url
    finally:
        _dropper.drop_later(url.rsplit("/", 1)[1])


def alembic_config(url: str) -> AlembicConfig:
    """Alembic's configuration for upgrading the database at `url` to a given revision
    (the migrations as shipped, node.store.db.migrations_dir)."""
    from node.store.db import migrations_dir

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg
