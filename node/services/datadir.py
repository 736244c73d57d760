"""One `serve` per node, on a private data directory.

The data directory (the folder that holds node.yaml) holds reporters' names, phone
numbers and NIKs in its database: `init` makes it 0700 and every file it writes 0600
(`private_files`), and `serve` refuses to start while the folder, the keys folder or a
database file is open to other users (`check_private`), naming the command that fixes it.

Invariant: while a `serve` process runs, it holds an exclusive advisory lock (flock) on
`<data directory>/serve.lock`, the folder that holds node.yaml. A second `serve` of the
same node (the same node.yaml, or another config pointing at the same folder) fails to
take it and stops at once with one line naming the process that holds it. The lock is
the kernel's: it goes with the process, however the process ends (SIGKILL included), so
a crash never leaves a stale lock behind. The file only says who holds it (pid), for the
message.

On PostgreSQL the lock still keeps one `serve` per data directory, and several `serve`
processes of one node run from several data directories (one per host, each a copy of the
first: node.yaml, keys): the leader lease decides which one writes (node.store.lease,
docs/decisions/0024-fenced-single-writer.md).

CLI commands do not take this lock: they queue on the database's own write lock, as they
always have (docs/decisions/0012-one-writer-at-a-time.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from node.config import NodeConfig
from node.errors import ConfigError

__all__ = ["LOCK_NAME", "DataDirLock", "check_private", "hold", "private_files"]

LOCK_NAME = "serve.lock"


class DataDirLock:
    """The held lock; `release()` (or the process ending) lets another `serve` start."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def hold(config: NodeConfig) -> DataDirLock:
    """Take the data directory's lock for this process, or raise ConfigError naming the
    process that holds it."""
    path = config.base_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise ConfigError(
            f"another `lapor-node serve`{holder} is already running for the node in "
            f"{config.base_dir} (it holds {path}); a node runs one serve at a time: stop "
            f"that one first, or check that this node.yaml is the one you meant"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return DataDirLock(path, fd)


def _holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Files and folders created inside are readable by their owner only (umask 077)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _sqlite_files(database_url: str) -> list[Path]:
    if not database_url.startswith("sqlite:///"):
        return []
    db = Path(database_url.removeprefix("sqlite:///"))
    return [p for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()]


def check_private(config: NodeConfig) -> None:
    """Raise ConfigError, naming the fix, if the data directory, the keys folder or a
    SQLite database file can be read by anyone but their owner."""
    folders = [config.base_dir, config.signing_key.parent]
    files = _sqlite_files(config.database_url)
    open_to_others = [p for p in [*folders, *files] if stat.S_IMODE(p.stat().st_mode) & 0o077 != 0]
    if not open_to_others:
        return
    fixes = [f"chmod 700 {p}" for p in open_to_others if p.is_dir()]
    fixes += [f"chmod 600 {p}" for p in open_to_others if not p.is_dir()]
    raise ConfigError(
        f"{', '.join(str(p) for p in open_to_others)} can be read by other users of this "
        f"machine, and the node's data holds reporters' personal data; make them private "
        f"({'; '.join(fixes)}) and start again"
    )
