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
from collections.abc import AsyncGenerator, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from node.errors import ConfigError

__all__ = [
    "OUTBOX_CHANNEL",
    "WRITE_LOCK",
    "DataVersionProbe",
    "Database",
    "OutboxNotifications",
    "migrations_dir",
]

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
    engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

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
            self._writer = create_engine(url, pool_pre_ping=True, hide_parameters=True)
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

    def check_file_exists(self) -> None:
        """Raise ConfigError if this is a SQLite database whose file does not exist
        (connecting would create an empty one)."""
        path = self._reader.url.database if self.is_sqlite else None
        if path and path != ":memory:" and not Path(path).exists():
            raise ConfigError(
                f"cannot open the database at {self.safe_url}: the file {path} does not "
                f"exist. If this node already ran, restore its database from a backup "
                f"(docs/operator-guide.md, 'The signing fence'); a new node is made with "
                f"`lapor-node init`"
            )

    def check_reachable(self) -> None:
        """Raise ConfigError unless the database answers and holds a node's schema (a
        missing or emptied database is told as such, never as a missing table later)."""
        self.check_file_exists()
        try:
            with self._reader.connect() as conn:
                conn.execute(text("SELECT 1"))
                has_schema = inspect(conn).has_table("alembic_version")
        except OperationalError as e:
            raise ConfigError(f"cannot open the database at {self.safe_url}: {e.orig}") from e
        if not has_schema:
            raise ConfigError(
                f"the database at {self.safe_url} holds no lapor-node tables: it is missing, "
                f"empty or not this node's. If this node already ran, restore its database "
                f"from a backup (docs/operator-guide.md, 'The signing fence'); a new node is "
                f"made with `lapor-node init`"
            )

    @property
    def safe_url(self) -> str:
        """The URL without any password, for messages."""
        return self._writer.url.render_as_string(hide_password=True)

    def data_version_probe(self) -> DataVersionProbe:
        """SQLite: the outbox watcher's probe (DataVersionProbe)."""
        if not self.is_sqlite:
            raise ConfigError("the data_version probe is SQLite's; PostgreSQL notifies")
        return DataVersionProbe(self._writer.url.database or "")

    def outbox_notifications(self) -> OutboxNotifications:
        """PostgreSQL: the outbox watcher's notifications (OutboxNotifications)."""
        if self.is_sqlite:
            raise ConfigError("SQLite has no notifications; its watcher polls data_version")
        return OutboxNotifications(self._writer)

    def dispose(self) -> None:
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()


class DataVersionProbe:
    """What SQLite's outbox watcher asks every few milliseconds instead of reading the
    outbox: `PRAGMA data_version` on a connection of its own. It moves whenever another
    connection (of this process or another) commits, so a read of the outbox made after
    it saw the commit. A read of the WAL index: no transaction, no table read.

    `version` may run on any thread, and `close` may be called from another while it does
    (a watcher cancelled mid-read): the lock makes `close` wait for it, where sqlite3
    would free the connection under the running query."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()

    def version(self) -> int:
        with self._lock:
            (version,) = self._conn.execute("PRAGMA data_version").fetchone()
        return int(version)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


OUTBOX_CHANNEL = "lapor_outbox"


class OutboxNotifications:
    """PostgreSQL's outbox watcher: the peer of each row queued in the outbox, from the
    notification that migration 0011's trigger sends on OUTBOX_CHANNEL. PostgreSQL
    delivers it when the transaction that queued the row commits, whichever process made
    it, so a read made after it sees the row; one per peer per transaction.

        async with db.outbox_notifications() as queued:
            async for peer in queued: ...

    On a connection of its own (psycopg's, async, in autocommit) for as long as the block
    runs; a notification sent while no block listens is not kept."""

    def __init__(self, engine: Engine) -> None:
        self._args = engine.dialect.create_connect_args(engine.url)
        self._conn: Any = None
        self._notes: AsyncGenerator[Any, None] | None = None

    async def __aenter__(self) -> OutboxNotifications:
        import psycopg  # lazy: only a PostgreSQL node listens, and SQLite ones need no driver

        cargs, cparams = self._args
        self._conn = await psycopg.AsyncConnection.connect(*cargs, autocommit=True, **cparams)
        try:
            await self._conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
        except BaseException:
            await self._conn.close()
            raise
        return self

    def __aiter__(self) -> OutboxNotifications:
        return self

    async def __anext__(self) -> str:
        """The next peer notified. A wait cancelled (a timeout) loses nothing: psycopg keeps
        what arrives meanwhile for the next one."""
        assert self._conn is not None, "use OutboxNotifications in `async with`"
        if self._notes is None:
            self._notes = self._conn.notifies()
        try:
            note = await anext(self._notes)
        except BaseException:
            self._notes = None  # psycopg's generator ends with the wait that failed
            raise
        return str(note.payload)

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._notes is not None:
                await self._notes.aclose()
        finally:
            await self._conn.close()
