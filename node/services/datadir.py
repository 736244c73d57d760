"""One `serve` per node: an exclusive lock on the node's data directory.

Invariant: while a `serve` process runs, it holds an exclusive advisory lock (flock) on
`<data directory>/serve.lock`, the folder that holds node.yaml. A second `serve` of the
same node (the same node.yaml, or another config pointing at the same folder) fails to
take it and stops at once with one line naming the process that holds it. The lock is
the kernel's: it goes with the process, however the process ends (SIGKILL included), so
a crash never leaves a stale lock behind. The file only says who holds it (pid), for the
message.

CLI commands do not take this lock: they queue on the database's own write lock, as they
always have (docs/decisions/0012-one-writer-at-a-time.md).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from node.config import NodeConfig
from node.errors import ConfigError

__all__ = ["LOCK_NAME", "DataDirLock", "hold"]

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
