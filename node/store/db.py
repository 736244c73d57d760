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

A `serve` on PostgreSQL fences its writes with the leader lease (node.store.lease,
docs/decisions/0024-fenced-single-writer.md): after `fence_writes()`, `write()` refuses at
once with NotLeaderError while the process is a standby (`lead(None)`), and a leader's
transaction begins by checking its epoch, so a leader that lost the lease (paused, cut off)
neither writes nor signs. Writers' connections end a transaction left idle for
IDLE_IN_TRANSACTION_SECONDS, so a paused process cannot hold its locks for ever. The CLI's
writers are not fenced: each of their transactions reads the ledger's head under the write
lock, as any writer does (decision 0024 says why that cannot fork the ledger).
"""

from __future__ import annotations

import collections
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from node.aio import readable
from node.errors import ConfigError, PeerUnavailableError
from node.store import lease
from node.store._wal_watch import OwnWrites, open_wal_watch

__all__ = [
    "IDLE_IN_TRANSACTION_SECONDS",
    "OUTBOX_CHANNEL",
    "PING_AFTER_IDLE_SECONDS",
    "WRITE_LOCK",
    "DataVersionProbe",
    "Database",
    "DatabaseUnavailableError",
    "OutboxNotifications",
    "migrations_dir",
    "retry_uncommitted",
]

T = TypeVar("T")

WRITE_LOCK = 0x6C61706F72
"""PostgreSQL advisory lock key ("lapor") that every write transaction takes first."""

IDLE_IN_TRANSACTION_SECONDS = 5
"""PostgreSQL ends a writer's session whose transaction waits this long between statements
(a paused process's), releasing its locks: the lease's takeover never waits longer."""


_HEADS: dict[str, tuple[str, ...]] = {}


def _heads(cfg: AlembicConfig) -> tuple[str, ...]:
    """The head revisions of the migrations at `cfg`'s script location, read once."""
    location = cfg.get_main_option("script_location") or ""
    if location not in _HEADS:
        _HEADS[location] = tuple(ScriptDirectory.from_config(cfg).get_heads())
    return _HEADS[location]


def migrations_dir() -> Path:
    """The Alembic environment: inside the wheel, or at the top of a source checkout."""
    packaged = resources.files("node") / "_migrations"
    if packaged.is_dir():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / "migrations"
    if source.is_dir():
        return source
    raise ConfigError("the Alembic migrations are missing from this installation")


BUSY_TIMEOUT_SECONDS = 30.0
"""SQLite: how long a transaction waits for another process's write lock before it fails
with "database is locked" (the CLI says so in words, node.cli._common)."""


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    busy = BUSY_TIMEOUT_SECONDS
    engine = create_engine(url, connect_args={"timeout": busy}, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


RETRY_SECONDS = 30.0
"""How long a write that surely did not commit is tried again while the database fails over
(Patroni promotes a replica within ~30 s; the URL's hosts are tried in turn)."""


class DatabaseUnavailableError(PeerUnavailableError):
    """The database connection was lost inside a write transaction. `committed` is False when
    the loss came before COMMIT was sent (nothing was written: safe to run again), None when
    it came during COMMIT (unknown: only an idempotent retry is safe)."""

    def __init__(self, message: str, *, committed: bool | None) -> None:
        super().__init__(message)
        self.committed = committed


def retry_uncommitted(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`, a whole write use case, run again while it fails on a lost connection
    before its commit (DatabaseUnavailableError with committed False): the pool's pre-ping
    then connects afresh, to the new primary of a multi-host URL. Up to RETRY_SECONDS; an
    unknown outcome (lost during COMMIT) is raised at once, for the caller's idempotent path
    (a link resends, its peer deduplicates)."""
    deadline = time.monotonic() + RETRY_SECONDS
    pause = 0.2
    while True:
        try:
            return fn(*args)
        except DatabaseUnavailableError as e:
            if e.committed is not False or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 2.0)


PING_AFTER_IDLE_SECONDS = 1.0
"""A pooled PostgreSQL connection idle at least this long is pinged as it is checked out
(and replaced if its server is gone); one used again sooner is not (decision 0043)."""


def _postgresql_engine(
    url: str, *, idle_seconds: int | None, pool_size: int = 5, ping_every_checkout: bool = False
) -> Engine:
    """An engine whose pool pings a connection at checkout only after it sat idle for
    PING_AFTER_IDLE_SECONDS (`ping_every_checkout`: always, SQLAlchemy's pre-ping: the
    readers' and the lease's). The writer under load checks its connection out back to
    back, and a ping each time was a round trip more per transaction (2 % of its time at
    1,200 children); a connection that died within that second fails its transaction
    before commit, which retry_uncommitted runs again on a fresh one (the pool discards
    the dead)."""
    engine = create_engine(
        url, pool_pre_ping=ping_every_checkout, hide_parameters=True, pool_size=pool_size
    )
    if not ping_every_checkout:
        _ping_when_idle(engine)
    if idle_seconds is not None:

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            with dbapi_conn.cursor() as cur:
                cur.execute(f"SET idle_in_transaction_session_timeout = '{idle_seconds}s'")
            dbapi_conn.commit()

    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Ping a connection at checkout if it was checked in PING_AFTER_IDLE_SECONDS ago or
    more; a dead one is replaced (DisconnectionError makes the pool connect again)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("checked_in_at")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # new (just connected), or back from use a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as e:
            if not engine.dialect.is_disconnect(e, dbapi_conn, None):
                raise
            alive = False
        if not alive:
            raise DisconnectionError("the pooled connection's server is gone")


class Database:
    """A node's database: `write()` and `read()` give sessions in one transaction each."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self._writer = _sqlite_engine(url, immediate=True)
            self._reader = _sqlite_engine(url, immediate=False)
        else:
            self._writer = _postgresql_engine(url, idle_seconds=IDLE_IN_TRANSACTION_SECONDS)
            # Readers may stream to a slow auditor: no idle limit on theirs. A read is not
            # run again after a lost connection, as a write is: each checkout is pinged.
            self._reader = _postgresql_engine(url, idle_seconds=None, ping_every_checkout=True)
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)
        # The lease's own connection (lease_connection), made on first use: never one of
        # the readers' pool, which 1,200 links' reads may hold (decision 0041).
        self._lease: Engine | None = None
        self._lease_made = threading.Lock()
        self._fenced = False
        self._epoch: int | None = None
        # SQLite: this process's write transactions, for the outbox watcher's probe.
        self._own_writes = OwnWrites(self._writer.url.database or "") if self.is_sqlite else None
        self._standby_reason = "this serve process is a standby: only the leader writes"

    def fence_writes(self) -> None:
        """From now on every write needs the leader lease (a `serve` on PostgreSQL); until
        `lead(epoch)`, writes are refused."""
        if self.is_sqlite:
            raise ConfigError("SQLite's single writer is the data directory's lock, not a lease")
        self._fenced = True

    def lead(self, epoch: int | None, reason: str | None = None) -> None:
        """Write as the leader of `epoch` from now on; None: as a standby (refused, saying
        `reason`)."""
        self._epoch = epoch
        if reason is not None:
            self._standby_reason = reason

    @property
    def fenced(self) -> bool:
        return self._fenced

    @property
    def epoch(self) -> int | None:
        return self._epoch

    @contextlib.contextmanager
    def lease_connection(self) -> Iterator[Connection]:
        """An autocommit connection for the lease's own statements (node.store.lease): they
        neither wait for the write lock nor check the epoch they move, nor for a reader's
        connection (on PostgreSQL an engine of their own, with one connection kept)."""
        engine = self._reader
        if not self.is_sqlite:
            with self._lease_made:
                if self._lease is None:
                    self._lease = _postgresql_engine(
                        self.url, idle_seconds=None, pool_size=1, ping_every_checkout=True
                    )
                engine = self._lease
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @property
    def dialect(self) -> str:
        return self._writer.dialect.name

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any exception."""
        epoch = self._epoch
        if self._fenced and epoch is None:
            raise lease.NotLeaderError(self._standby_reason)
        committing = False
        own = self._own_writes
        if own is not None:
            own.begin()
        try:
            with self._write_sessions() as session, session.begin():
                if not self.is_sqlite:
                    if epoch is not None:  # the lease, then the write lock: one statement
                        lease.check(session, epoch, write_lock=WRITE_LOCK)
                    else:
                        session.execute(
                            text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK}
                        )
                yield session
                committing = True
        except DBAPIError as e:
            if self.is_sqlite or not e.connection_invalidated:
                raise
            raise DatabaseUnavailableError(
                f"the connection to the database at {self.safe_url} was lost "
                + (
                    "while committing: the transaction may or may not have committed"
                    if committing
                    else "before commit: nothing was written"
                ),
                committed=None if committing else False,
            ) from e
        finally:
            if own is not None:
                own.end()

    @contextlib.contextmanager
    def read(self) -> Iterator[Session]:
        """One read-only snapshot transaction."""
        with self._read_sessions() as session, session.begin():
            yield session

    def upgrade(self) -> None:
        """Bring the schema to Alembic's head (idempotent). A database already there is
        told by its alembic_version row alone: running Alembic's command loads and compiles
        every revision file again (20 ms), and tests make a node a thousand times a run."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(migrations_dir()))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        try:
            with self._writer.connect() as conn:
                if MigrationContext.configure(conn).get_current_heads() == _heads(cfg):
                    return
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
        assert self._own_writes is not None
        return DataVersionProbe(self._writer.url.database or "", self._own_writes)

    def outbox_notifications(self) -> OutboxNotifications:
        """PostgreSQL: the outbox watcher's notifications (OutboxNotifications)."""
        if self.is_sqlite:
            raise ConfigError("SQLite has no notifications; its watcher polls data_version")
        return OutboxNotifications(self._writer)

    def dispose(self) -> None:
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()
        if self._lease is not None:
            self._lease.dispose()


class DataVersionProbe:
    """What SQLite's outbox watcher asks instead of reading the outbox: `PRAGMA
    data_version` on a connection of its own. It moves whenever another connection (of
    this process or another) commits, so a read of the outbox made after it saw the
    commit. A read of the WAL index: no transaction, no table read.

    `changes_fileno()`, where Linux inotify gives one (node.store._wal_watch), is a
    descriptor readable after any process wrote to the database, so the watcher can wait
    for that instead of asking at intervals; `take_changes()` reads its events.

    `all_seen()` is True when every write to the database so far is visible, because the
    last was this process's own and its transaction has ended (node.store._wal_watch.
    OwnWrites): the watcher then need not look again until the next write.

    `version` may run on any thread, and `close` may be called from another while it does
    (a watcher cancelled mid-read): the lock makes `close` wait for it, where sqlite3
    would free the connection under the running query."""

    def __init__(self, path: str, own_writes: OwnWrites) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._own_writes = own_writes
        self.version()  # opening the database makes its -wal file, which the watch needs
        self._wal = open_wal_watch(path)

    def version(self) -> int:
        with self._lock:
            (version,) = self._conn.execute("PRAGMA data_version").fetchone()
        return int(version)

    def all_seen(self) -> bool:
        return self._own_writes.all_seen()

    def changes_fileno(self) -> int | None:
        """Readable after a write to the database by any process; None: no such signal
        (not Linux, or the watch was lost), ask `version` at intervals."""
        return None if self._wal is None else self._wal.fileno()

    def take_changes(self) -> bool:
        """Read the pending change events (never blocks); whether there were any. A watch
        that no longer covers every write is dropped: `changes_fileno()` is None from then
        on. May run on any thread, like `version`."""
        with self._lock:
            if self._wal is None:
                return False
            written, intact = self._wal.drain()
            if not intact:
                self._wal.close()
                self._wal = None
            return written

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._wal is not None:
                self._wal.close()
                self._wal = None


OUTBOX_CHANNEL = "lapor_outbox"


class OutboxNotifications:
    """PostgreSQL's outbox watcher: the peer of each row queued in the outbox, from the
    notification that migration 0011's trigger sends on OUTBOX_CHANNEL. PostgreSQL
    delivers it when the transaction that queued the row commits, whichever process made
    it, so a read made after it sees the row; one per peer per transaction.

        async with db.outbox_notifications() as queued:
            async for peer in queued: ...

    On a connection of its own (psycopg's, async, in autocommit) for as long as the block
    runs; a notification sent while no block listens is not kept.

    Waiting costs nothing while nothing is sent (issue 20.5): the event loop watches the
    connection's socket (`add_reader`) and libpq reads it only once it is readable.
    psycopg's own `notifies()` woke every 0.1 s to look (its fixed wait interval), ten
    wake-ups a second on an idle node. Invariants:
      - a notification psycopg reads while the LISTEN runs reaches `pending` through the
        notify handler, registered before it; every later one, through `_consume`;
      - a wait that is cancelled loses nothing: the bytes stay in the socket for the next;
      - a connection the server closed makes the socket readable and `_consume` raise
        (psycopg.OperationalError): the iteration ends with that error."""

    def __init__(self, engine: Engine) -> None:
        self._args = engine.dialect.create_connect_args(engine.url)
        self._conn: Any = None
        self._pending: collections.deque[str] = collections.deque()

    async def __aenter__(self) -> OutboxNotifications:
        import psycopg  # lazy: only a PostgreSQL node listens, and SQLite ones need no driver

        cargs, cparams = self._args
        self._conn = await psycopg.AsyncConnection.connect(*cargs, autocommit=True, **cparams)
        try:
            self._conn.add_notify_handler(self._noted)
            await self._conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
        except BaseException:
            await self._conn.close()
            raise
        return self

    def _noted(self, note: Any) -> None:
        self._pending.append(str(note.payload))

    def __aiter__(self) -> OutboxNotifications:
        return self

    async def __anext__(self) -> str:
        """The next peer notified, once the socket has something to read."""
        assert self._conn is not None, "use OutboxNotifications in `async with`"
        while not self._pending:
            await readable(self._conn.fileno())
            self._consume()
        return self._pending.popleft()

    def _consume(self) -> None:
        """Read what the socket holds (it does not block: it was readable) and take the
        notifications among it; other messages (a parameter status) are libpq's alone."""
        pgconn = self._conn.pgconn
        pgconn.consume_input()
        encoding = self._conn.info.encoding
        while (note := pgconn.notifies()) is not None:
            self._pending.append(note.extra.decode(encoding))

    async def __aexit__(self, *exc: object) -> None:
        await self._conn.close()
