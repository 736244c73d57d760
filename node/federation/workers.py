"""Work off the event loop for the running node: one writer thread (SQLite has one writer
anyway), a few reader threads, and two threads for work that needs no database (opening
the envelopes a link batch brings before the writer takes it: libsodium verifies without
the GIL, so it runs beside the writer). A LinkSession's DbRunner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from node.services.leadership import retry_uncommitted

__all__ = ["DbWorkers"]

T = TypeVar("T")


class DbWorkers:
    def __init__(self) -> None:
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="db-write")
        self._readers = ThreadPoolExecutor(4, thread_name_prefix="db-read")
        self._workers = ThreadPoolExecutor(2, thread_name_prefix="no-db")

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        # A write that surely did not commit is run again while the database fails over.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, retry_uncommitted, fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, fn, *args)

    async def work(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on a thread of its own kind: work that touches no database."""
        return await asyncio.get_running_loop().run_in_executor(self._workers, fn, *args)

    def shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self._workers.shutdown(wait=True)
