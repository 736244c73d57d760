"""A descriptor that becomes readable when any process writes to a SQLite database in WAL
mode: Linux inotify on its `-wal` file (IN_MODIFY), for the outbox watcher to wait on
instead of looking at `PRAGMA data_version` at intervals (issue 20.5).

Invariants:
  - Every commit in WAL mode appends frames to the `-wal` file with write(2), so it raises
    IN_MODIFY, whichever process commits. The event comes before the commit is visible
    (the wal-index in `-shm`, written through mmap, raises no event, and is updated after
    the frames and their fsync): a reader woken by it must look again shortly if the
    version has not moved yet.
  - The file stays while any connection to the database is open (SQLite deletes it only
    at the last close); the probe that owns this watch keeps one open. If it goes all the
    same (moved, deleted), `drain` says so and the owner stops relying on it.
  - Where inotify is missing (not Linux) or its limits are reached, `open_wal_watch`
    returns None and the caller keeps looking at intervals.
  - `OwnWrites` (decision 0040): writers take the database's write lock in turn, so a
    write to the `-wal` file made before a commit ended is visible once it has. After the
    last of this process's write transactions in flight ends, the file's (inode, size,
    modification time) are noted; while the file still shows exactly that, every write
    to it so far is this process's or came before, and all of them are visible: the
    watcher need not look again. A write by anyone else since changes the size or the
    time, except one made within the same clock tick after the note and over frames
    already in the file (after a checkpoint started the WAL over): then its commit shows
    at the next outbox poll instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
import threading
from pathlib import Path

__all__ = ["OwnWrites", "WalWatch", "open_wal_watch"]

Mark = tuple[int, int, int]

_IN_MODIFY = 0x0002
_IN_DELETE_SELF = 0x0400
_IN_MOVE_SELF = 0x0800
_IN_Q_OVERFLOW = 0x4000
_IN_IGNORED = 0x8000
_GONE = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_IGNORED
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then name)


class WalWatch:
    """The inotify descriptor watching one `-wal` file; `fileno()` is readable after a
    write to it, until `drain()` reads the events."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd

    def drain(self) -> tuple[bool, bool]:
        """Read every pending event (never blocks): (whether there was any, whether the
        watch is intact: False once the file was moved or deleted, or events were lost, so
        that the watch no longer covers every write)."""
        written, intact = False, True
        while True:
            try:
                data = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return written, intact
            written = written or bool(data)
            offset = 0
            while offset + _EVENT.size <= len(data):
                _wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                if mask & (_GONE | _IN_Q_OVERFLOW):
                    intact = False
                offset += _EVENT.size + length

    def close(self) -> None:
        os.close(self._fd)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.inotify_init1  # noqa: B018 - missing outside Linux: AttributeError
    except (OSError, AttributeError):
        return None
    return libc


def open_wal_watch(database: str) -> WalWatch | None:
    """A watch on `database`'s `-wal` file (which must exist: open the database first), or
    None where inotify cannot give one."""
    libc = _libc()
    if libc is None:
        return None
    fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
    if fd < 0:
        return None
    wal = os.fsencode(database + "-wal")
    if libc.inotify_add_watch(fd, wal, _IN_MODIFY | _IN_DELETE_SELF | _IN_MOVE_SELF) < 0:
        os.close(fd)
        return None
    return WalWatch(fd)


def _mark(wal: Path) -> Mark | None:
    try:
        st = wal.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class OwnWrites:
    """This process's write transactions on one SQLite database, and the `-wal` file as
    the last of them left it (the module's invariants). Thread-safe."""

    def __init__(self, database: str) -> None:
        self._wal = Path(database + "-wal")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._mark: Mark | None = None

    def begin(self) -> None:
        """A write transaction of this process starts (before it takes the write lock)."""
        with self._lock:
            self._in_flight += 1
            self._mark = None

    def end(self) -> None:
        """It ended (committed or rolled back): the last one in flight notes the file."""
        with self._lock:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._mark = _mark(self._wal)

    def all_seen(self) -> bool:
        """True: no write of this process is in flight and the `-wal` file is as the last
        one left it, so every write to it so far is visible to a read that starts now."""
        with self._lock:
            return self._mark is not None and self._mark == _mark(self._wal)
