"""Engines, sessions and schema upgrades.

SQLite (the embedded default) runs in WAL mode with foreign keys on, a busy timeout, and
`synchronous=FULL` so a committed ledger entry survives a power cut. Writers open their
transaction with BEGIN IMMEDIATE: two processes (a running node and an operator's CLI)
then queue for the write lock instead of failing on a lock upgrade. PostgreSQL writers do
the same with a transaction-level advisory lock taken first (WRITE_LOCK), so writers of
one node's database are serialized as on SQLite: nearly every write appends to the ledger
and would queue on its head anyway, and with one lock taken first no two writers can
deadlock over the rows they then lock (links, ledger head, complaints) in different
orders. Within a transaction they still lock the rows they advance with SELECT ... FOR
UPDATE.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from node.errors import ConfigError

__all__ = ["WRITE_LOCK", "CommitProbe", "Database", "migrations_dir"]

WRITE_LOCK = 0x6C61706F72
"""PostgreSQL advisory lock key ("lapor") that every write transaction takes first."""


def migrations_dir() -> Path:
    """The Alembic environment: inside the wheel, or at the top of a source checkout."""
    packaged = resources.files("node") / "_migrations"
    if packaged.is_dir():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / "migrations"
    if source.is_dir():
        return source
    raise ConfigError("the Alembic migrations are missing from this installation")


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Database:
    """A node's database: `write()` and `read()` give sessions in one transaction each."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self._writer = _sqlite_engine(url, immediate=True)
            self._reader = _sqlite_engine(url, immediate=False)
        else:
            self._writer = create_engine(url, pool_pre_ping=True)
            self._reader = self._writer
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self._writer.dialect.name

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any exception."""
        with self._write_sessions() as session, session.begin():
            if not self.is_sqlite:
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})
            yield session

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """One read-only snapshot transaction."""
        with self._read_sessions() as session, session.begin():
            yield session

    def upgrade(self) -> None:
        """Bring the schema to Alembic's head (idempotent)."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(migrations_dir()))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        try:
            with self._writer.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as e:
            raise ConfigError(f"cannot open the database at {self.safe_url}: {e.orig}") from e

    def check_reachable(self) -> None:
        try:
            with self._reader.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as e:
            raise ConfigError(f"cannot open the database at {self.safe_url}: {e.orig}") from e

    @property
    def safe_url(self) -> str:
        """The URL without any password, for messages."""
        return self._writer.url.render_as_string(hide_password=True)

    def commit_probe(self) -> CommitProbe:
        """A CommitProbe for this database (module CommitProbe)."""
        if self.is_sqlite:
            return _SqliteProbe(self._writer.url.database or "")
        return _OutboxSequenceProbe(self._writer)

    def dispose(self) -> None:
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()


class CommitProbe(Protocol):
    """What the outbox watcher asks every few milliseconds instead of reading the outbox:
    a version that moves when the outbox may have changed, far cheaper to read. The
    watcher reads the outbox when the version moved, and counts it seen once the read
    covered it (`covered`). `version` may run on any thread, and `close` may be called
    from another while it does (a watcher cancelled mid-read): `close` waits for it."""

    def version(self) -> int: ...

    def covered(self, version: int, top: int) -> bool:
        """Whether a read of the outbox whose highest row id was `top`, made after
        `version` was read, saw everything that moved it."""
        ...

    def close(self) -> None: ...


class _ProbeConnection:
    """A probe's own DBAPI connection and the lock that keeps `close` from freeing it
    under a query still running on another thread (for sqlite3, a use after free)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    def fetchone(self, query: str) -> tuple[Any, ...]:
        with self._lock, contextlib.closing(self._conn.cursor()) as cur:
            cur.execute(query)
            row = cur.fetchone()
        if row is None:
            raise ConfigError(f"the commit probe's query returned nothing: {query}")
        return tuple(row)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _SqliteProbe:
    """SQLite's `PRAGMA data_version` on a connection of its own: it moves whenever any
    other connection (of this process or another) commits, so any read made after it saw
    the commit. A read of the WAL index: no transaction, no table read."""

    def __init__(self, path: str) -> None:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn = _ProbeConnection(conn)

    def version(self) -> int:
        (version,) = self._conn.fetchone("PRAGMA data_version")
        return int(version)

    def covered(self, version: int, top: int) -> bool:
        return True

    def close(self) -> None:
        self._conn.close()


class _OutboxSequenceProbe:
    """PostgreSQL: the outbox id sequence's last value, on a connection of its own in
    autocommit (one round trip, no snapshot). An insert moves it before it commits, so a
    read counts only once its highest id reaches it; until then the watcher reads at each
    look. (An insert rolled back leaves the sequence ahead of every row: the watcher then
    reads at each look until the next row is committed.)"""

    def __init__(self, engine: Engine) -> None:
        # A DBAPI connection outside the pool: a pooled one would go back in autocommit.
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        conn = engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
        conn.autocommit = True
        self._conn = _ProbeConnection(conn)
        (sequence,) = self._conn.fetchone("SELECT pg_get_serial_sequence('outbox', 'id')")
        if sequence is None:
            self._conn.close()
            raise ConfigError("the outbox table has no id sequence; run the migrations")
        self._query = f"SELECT last_value, is_called FROM {sequence}"  # noqa: S608 - catalog name

    def version(self) -> int:
        last_value, is_called = self._conn.fetchone(self._query)
        return int(last_value) if is_called else 0

    def covered(self, version: int, top: int) -> bool:
        return top >= version

    def close(self) -> None:
        self._conn.close()
