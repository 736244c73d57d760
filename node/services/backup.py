"""Backups that cannot fork a node: `backup create`, `backup verify`, `backup restore`.

A backup is a folder (0700, files 0600) holding:
  - the database, copied online and consistently: SQLite's backup API (`node.db`), or
    `pg_dump --format=custom` of a snapshot exported by the transaction that reads the
    ledger head (`node.pgdump`), so the manifest's ledger figures are the dump's own;
  - node.yaml and the keys folder's files, the signing fence included;
  - `manifest.json`: the node, the time, the SHA-256 of every file, the ledger's size and
    root in the copy, and the fenced checkpoint when the backup was made.

Invariants:
  1. `verify` recomputes every checksum; for a SQLite copy it also opens the copy and
     recomputes the ledger's size and root from its tree, which must be the manifest's.
  2. `restore` never gives a node a database older than what the node has signed: the
     backup's ledger must be a consistent extension of the node's current signing fence
     (keys/signed-checkpoint), checked on the copy's own tree before anything is replaced.
     An older backup is refused with what to do (node.services.fence: a signed
     discontinuity is the only way past a lost history, and not an automatic one).
  3. `restore` refuses while `serve` runs (the data directory's lock), replaces the SQLite
     file atomically (copy beside it, fsync, rename) or restores the dump into the
     configured PostgreSQL database, which must hold no tables (or only the empty schema
     a refused `serve` made, which is dropped); the keys are left as they
     are (they must be the node's own: the backup's signing key must equal them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, make_url

from node.config import NodeConfig
from node.errors import ConfigError, FenceError, IntegrityError, ValidationError
from node.ledger.checkpoint import origin_for
from node.services import datadir, fence
from node.store import queries, tree
from node.store.db import Database

__all__ = ["MANIFEST", "Manifest", "create", "restore", "verify"]

RECOVERY_PATH = (
    "if no backup holds what it signed, take the recovery path: lapor-node backup restore "
    'FOLDER --recover --reason "..." (docs/operator-guide.md, "Recovering from a lost '
    'database")'
)
MANIFEST = "manifest.json"
FORMAT = "lapor-node-backup/v1"
_SQLITE_COPY = "node.db"
_PG_DUMP = "node.pgdump"


@dataclass(frozen=True)
class Manifest:
    """What a backup folder holds, as its manifest.json says."""

    node_id: str
    created_at: str
    database_kind: str
    database_file: str
    ledger_size: int
    ledger_root: bytes
    fence_size: int | None
    files: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "node_id": self.node_id,
            "created_at": self.created_at,
            "database": {"kind": self.database_kind, "file": self.database_file},
            "ledger": {"size": self.ledger_size, "root": self.ledger_root.hex()},
            "fence": None if self.fence_size is None else {"size": self.fence_size},
            "files": self.files,
        }

    @classmethod
    def from_json(cls, obj: Any) -> Manifest:
        try:
            if obj["format"] != FORMAT:
                raise ValidationError(f"expected a {FORMAT} manifest, found {obj['format']!r}")
            return cls(
                node_id=str(obj["node_id"]),
                created_at=str(obj["created_at"]),
                database_kind=str(obj["database"]["kind"]),
                database_file=str(obj["database"]["file"]),
                ledger_size=int(obj["ledger"]["size"]),
                ledger_root=bytes.fromhex(obj["ledger"]["root"]),
                fence_size=None if obj["fence"] is None else int(obj["fence"]["size"]),
                files={str(k): str(v) for k, v in obj["files"].items()},
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValidationError(f"expected a backup manifest, found a damaged one ({e})") from e


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# libpq parameters a node's URL may carry in its query, as the environment variables
# pg_dump and pg_restore read (host and port are handled apart: they may list several).
LIBPQ_QUERY_ENV = {
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "application_name": "PGAPPNAME",
}


def _query_values(value: str | tuple[str, ...] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _hosts_and_ports(url: URL) -> tuple[str | None, str | None]:
    """PGHOST and PGPORT for `url`: its host and port, or the hosts its query lists (a
    multi-host URL, `?host=h1:5432&host=h2:5432` or `?host=h1,h2&port=5432,5433`), so
    pg_dump reaches the same primary as the node (with `target_session_attrs`)."""
    listed = [h for value in _query_values(url.query.get("host")) for h in value.split(",")]
    if not listed:
        return url.host, None if url.port is None else str(url.port)
    ports = [p for value in _query_values(url.query.get("port")) for p in value.split(",")]
    hosts = []
    for n, item in enumerate(listed):
        given = ports[n] if n < len(ports) else (ports[-1] if ports else "")
        if item.startswith("["):  # [IPv6]:port
            address, _, rest = item[1:].partition("]")
            hosts.append((address, rest.lstrip(":") or given))
        elif item.count(":") == 1:  # host:port
            name, _, port = item.partition(":")
            hosts.append((name, port or given))
        else:  # a bare host (or a bare IPv6 address)
            hosts.append((item, given))
    port_list = [port or "5432" for _, port in hosts]
    return ",".join(h for h, _ in hosts), ",".join(port_list)


def _libpq_env(url: str) -> dict[str, str]:
    """The connection as libpq environment variables: no password on a command line."""
    u = make_url(url)
    host, port = _hosts_and_ports(u)
    env = {**os.environ}
    for key, value in (
        ("PGHOST", host),
        ("PGPORT", port),
        ("PGUSER", u.username),
        ("PGPASSWORD", u.password),
        ("PGDATABASE", u.database),
        *((name, ",".join(_query_values(u.query.get(k)))) for k, name in LIBPQ_QUERY_ENV.items()),
    ):
        if value:
            env[key] = str(value)
    return env


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError as e:
        raise ConfigError(
            f"{what} needs {argv[0]} (Debian: apt-get install postgresql-client)"
        ) from e
    if done.returncode != 0:
        raise ConfigError(f"{what} failed: {done.stderr.strip()[-500:]}")


def _ledger_of(db: Database) -> tuple[int, bytes]:
    try:
        with db.read() as session:
            size = queries.ledger_size(session)
            return size, tree.root(session, size)
    finally:
        db.dispose()


def _copy_files(config: NodeConfig, out: Path) -> list[Path]:
    copied = [out / "node.yaml"]
    shutil.copyfile(config.path, copied[0])
    keys = out / "keys"
    keys.mkdir()
    for path in sorted(config.signing_key.parent.iterdir()):
        if path.is_file() and not path.name.endswith((".lock", ".tmp")):
            shutil.copyfile(path, keys / path.name)
            copied.append(keys / path.name)
    return copied


def create(config: NodeConfig, db: Database, out: Path, now: dt.datetime) -> Manifest:
    """Back up the node of `config` into the new folder `out`, online."""
    if out.exists():
        raise ValidationError(f"{out} already exists: a backup goes into a new folder")
    fenced = fence.read(config)
    with datadir.private_files():
        out.mkdir(parents=True)
        try:
            if db.is_sqlite:
                kind, name = "sqlite", _SQLITE_COPY
                _sqlite_backup(config.database_url, out / name)
                size, root = _ledger_of(Database(f"sqlite:///{out / name}"))
            else:
                kind, name = "postgresql", _PG_DUMP
                size, root = _pg_dump(db, out / name)
            files = [out / name, *_copy_files(config, out)]
            manifest = Manifest(
                node_id=config.node_id,
                created_at=now.isoformat(),
                database_kind=kind,
                database_file=name,
                ledger_size=size,
                ledger_root=root,
                fence_size=None if fenced is None else fenced.size,
                files={str(p.relative_to(out)): _sha256(p) for p in files},
            )
            (out / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
        except BaseException:
            shutil.rmtree(out, ignore_errors=True)
            raise
    return manifest


def _sqlite_backup(url: str, dst: Path) -> None:
    src = sqlite3.connect(url.removeprefix("sqlite:///"))
    target = sqlite3.connect(dst)
    try:
        with target:
            src.backup(target)
    finally:
        src.close()
        target.close()


def _pg_dump(db: Database, dst: Path) -> tuple[int, bytes]:
    """pg_dump of the snapshot in which the ledger's size and root are read."""
    with db.read() as session:
        session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        snapshot = session.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        size = queries.ledger_size(session)
        root = tree.root(session, size)
        _run(
            ["pg_dump", "--format=custom", f"--snapshot={snapshot}", f"--file={dst}"],
            _libpq_env(db.url),
            "pg_dump",
        )
    return size, root


def verify(folder: Path) -> Manifest:
    """Check a backup folder (invariant 1); return its manifest. Raises IntegrityError
    naming the first file or figure that does not match."""
    try:
        manifest = Manifest.from_json(json.loads((folder / MANIFEST).read_text()))
    except FileNotFoundError as e:
        raise ValidationError(f"{folder} holds no {MANIFEST}: not a lapor-node backup") from e
    except json.JSONDecodeError as e:
        raise ValidationError(f"{folder / MANIFEST} is not JSON ({e})") from e
    for name, digest in sorted(manifest.files.items()):
        path = folder / name
        if not path.is_file():
            raise IntegrityError(f"expected {name} in the backup, found none")
        if _sha256(path) != digest:
            raise IntegrityError(f"expected {name} to have SHA-256 {digest}, found another")
    if manifest.database_kind == "sqlite":
        copy = folder / manifest.database_file
        size, root = _ledger_of(Database(f"sqlite:///{copy}"))
        if (size, root) != (manifest.ledger_size, manifest.ledger_root):
            raise IntegrityError(
                f"expected the copy's ledger at size {manifest.ledger_size} with root "
                f"{manifest.ledger_root.hex()}, found size {size} with root {root.hex()}"
            )
    return manifest


def _check_size_against_fence(config: NodeConfig, manifest: Manifest) -> None:
    """Refuse, before anything is touched, a backup whose ledger is shorter than the fence."""
    fenced = fence.read(config)
    if fenced is not None and manifest.ledger_size < fenced.size:
        raise FenceError(
            f"expected a backup whose ledger holds at least {fenced.size} entries (this node "
            f"signed a checkpoint of that size, kept in {fenced.path}), found "
            f"{manifest.ledger_size}: restoring it would make the node sign a second history. "
            f"Use a more recent backup; {RECOVERY_PATH}"
        )


def _check_extends_fence(config: NodeConfig, db: Database, manifest: Manifest) -> None:
    """The restored (or staged) ledger has the fenced root at the fenced size."""
    with db.read() as session:
        try:
            fence.check_in(session, config, origin_for(config.node_id), manifest.ledger_size)
        except FenceError as e:
            raise FenceError(f"{e} ({RECOVERY_PATH})") from e


Recover = Callable[[Database, Manifest], None]
"""The recovery path's step on the restored database before it is put in place
(node.services.recovery): instead of the fence check, it ends the lost history."""


def restore(config: NodeConfig, folder: Path, *, recover: Recover | None = None) -> Manifest:
    """Restore the backup in `folder` as the database of the node of `config`
    (invariants 2 and 3); with `recover`, a backup older than the fence is restored and
    `recover` runs on it before it replaces the database (node.services.recovery)."""
    manifest = verify(folder)
    if manifest.node_id != config.node_id:
        raise ValidationError(
            f"expected a backup of {config.node_id}, found one of {manifest.node_id}"
        )
    own_key = config.signing_key.read_bytes()
    if (folder / "keys" / config.signing_key.name).read_bytes() != own_key:
        raise ValidationError(
            "expected the backup's signing key to be this node's, found another: restore the "
            "keys folder that belongs with this backup first, or use a backup of these keys"
        )
    if recover is None:
        _check_size_against_fence(config, manifest)
    lock = datadir.hold(config)  # refuses while serve runs
    try:
        with datadir.private_files():
            if manifest.database_kind == "sqlite":
                _restore_sqlite(config, folder / manifest.database_file, manifest, recover)
            else:
                _restore_postgresql(config, folder / manifest.database_file, manifest, recover)
    finally:
        lock.release()
    return manifest


def _restore_sqlite(
    config: NodeConfig, copy: Path, manifest: Manifest, recover: Recover | None
) -> None:
    if not config.database_url.startswith("sqlite:///"):
        raise ValidationError("expected a node on SQLite for a SQLite backup")
    target = Path(config.database_url.removeprefix("sqlite:///"))
    staged = target.with_name(target.name + ".restoring")
    if recover is None:
        staged_db = Database(f"sqlite:///{copy}")
        try:
            _check_extends_fence(config, staged_db, manifest)
        finally:
            staged_db.dispose()
        shutil.copyfile(copy, staged)
    else:  # the recovery writes its entries into the staged copy, then it is put in place
        for suffix in ("", "-wal", "-shm"):
            Path(f"{staged}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(copy, staged)
        staged_db = Database(f"sqlite:///{staged}")
        try:
            recover(staged_db, manifest)
        except BaseException:
            staged_db.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{staged}{suffix}").unlink(missing_ok=True)
            raise
        staged_db.dispose()
        _checkpoint_wal(staged)
    with staged.open("rb") as f:
        os.fsync(f.fileno())
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    staged.replace(target)
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checkpoint_wal(path: Path) -> None:
    """Fold a staged SQLite copy's WAL into its file before the file is moved."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _restore_postgresql(
    config: NodeConfig, dump: Path, manifest: Manifest, recover: Recover | None
) -> None:
    if config.database_url.startswith("sqlite"):
        raise ValidationError("expected a node on PostgreSQL for a PostgreSQL backup")
    db = Database(config.database_url)
    try:
        with db.read() as session:
            tables = inspect(session.connection()).get_table_names()
            # What a refused `serve` leaves (the schema, no ledger) holds nothing to keep.
            blank = "ledger_entries" in tables and queries.ledger_size(session) == 0
        if blank:
            _drop_all(db)
        elif tables:
            raise ValidationError(
                f"expected an empty database at {db.safe_url} to restore into, found "
                f"{len(tables)} tables: create a new database, point node.yaml at it, and "
                f"restore again"
            )
        env = _libpq_env(db.url)
        _run(
            [
                "pg_restore",
                "--no-owner",
                "--exit-on-error",
                f"--dbname={env['PGDATABASE']}",
                str(dump),
            ],
            env,
            "pg_restore",
        )
        try:
            if recover is None:
                _check_extends_fence(config, db, manifest)
            else:
                recover(db, manifest)
        except BaseException:
            _drop_all(db)
            raise
    finally:
        db.dispose()


def _drop_all(db: Database) -> None:
    """Leave the database empty again after a refused restore (no partial state)."""
    with db.write() as session:
        session.execute(text("DROP SCHEMA public CASCADE"))
        session.execute(text("CREATE SCHEMA public"))
