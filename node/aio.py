"""Waiting on a descriptor with asyncio, shared by the store's PostgreSQL notifications and
the federation's SQLite write watch (neither layer imports the other)."""

from __future__ import annotations

import asyncio

__all__ = ["readable"]


async def readable(fd: int) -> None:
    """Until `fd` is readable, with nothing on the event loop's clock meanwhile."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
