"""A small TCP proxy the fault tests control: it stands between a child and its parent
(the child's link `address` points at it) and breaks the link on command.

It runs an asyncio loop in a background thread; every control method is called from the
test's thread and returns once the proxy has acted. Faults, as a network has them:
  cut()            close every live connection (RST) and refuse new ones until heal();
  heal()           forward again (new connections only: the cut ones stay cut);
  delay(s, j)      hold every chunk s seconds (plus up to j seconds of jitter) before
                   forwarding it; order within a direction is kept, as TCP keeps it;
  cut_after(n)     let n more bytes through (counted over both directions, or one), then
                   cut mid-stream: the receiver gets a truncated frame (a TLS record cut in
                   two), the connection is reset; new connections are accepted;
  stall(d)         hold the live connections' bytes in direction d (UP, DOWN, "both")
                   without closing anything; release() delivers them, late, all at once;
  blackhole()      swallow everything until heal(), as a route that drops packets: the live
                   connections' bytes are held both ways (and delivered late at heal(), as
                   TCP retransmits them), new connections never reach the target and get
                   nothing back (their handshakes hang until the dialer gives up);
  strand()         reset the child's side of the live connections but keep the parent's
                   side open, so bytes held there reach the parent after the child has
                   reconnected: the late frames of a dead connection, as a NAT or a
                   middlebox that lost its state can deliver them.
`forwarded` reports the bytes forwarded each way; `accepted` and `refused` count
connections, so a test can see the dialer back off while the link is down; `cuts` counts
the cuts that fired (a test waits on it, not on the clock), and `in_flight` the bytes read
but not yet delivered (held, delayed or queued), so a test can wait for released bytes to
have reached their receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

UP, DOWN = "up", "down"  # up: child -> parent (client -> server); down: the other way
CHUNK = 16 * 1024


@dataclass(eq=False)  # held in a set by identity
class _Conn:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    held: dict[str, asyncio.Event] = field(default_factory=dict)
    open_directions: int = 2
    in_flight: int = 0  # bytes read from one side, not yet written to the other
    aborted: bool = False  # reset: what it still held will never be delivered

    def abort(self) -> None:
        self.aborted = True
        for writer in (self.client, self.server):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class Proxy:
    """Forward 127.0.0.1:<port> to `target` ("HOST:PORT") until told otherwise."""

    def __init__(self, target: str, *, seed: int = 0) -> None:
        host, _, port = target.rpartition(":")
        self.target = (host, int(port))
        self.port = 0
        self.forwarded = {UP: 0, DOWN: 0}
        self.accepted = 0
        self.refused = 0
        self.cuts = 0
        self.swallowed = 0  # connections taken in by a black hole
        self._blackhole = False
        self._swallowing: set[asyncio.StreamWriter] = set()
        self._random = random.Random(seed)
        self._down = False
        self._delay = (0.0, 0.0)
        self._budget: dict[str, int | None] = {UP: None, DOWN: None, "both": None}
        self._conns: set[_Conn] = set()
        self._stranded: set[_Conn] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # Lifecycle ------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        self._thread.start()
        self._call(self._start)
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> Proxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Faults ---------------------------------------------------------------------------

    def cut(self) -> None:
        """Reset every live connection and refuse new ones until heal()."""

        async def act() -> None:
            self._down = True
            self.cuts += 1
            self._abort_all()

        self._call(act)

    def blackhole(self) -> None:
        """Swallow everything until heal(): hold the live connections' bytes both ways and
        take new connections in without ever answering them."""

        async def act() -> None:
            self._blackhole = True
            for conn in self._conns:
                for d in (UP, DOWN):
                    conn.held.setdefault(d, asyncio.Event())

        self._call(act)

    def heal(self) -> None:
        """Forward new connections again, with no delay, stall or pending cut (the held bytes
        of a stall or a black hole go on, late; the connections a black hole swallowed are
        reset)."""

        async def act() -> None:
            self._blackhole = False
            for writer in self._swallowing:
                writer.transport.abort()
            self._swallowing.clear()
            self._down = False
            self._delay = (0.0, 0.0)
            self._budget = {UP: None, DOWN: None, "both": None}
            self._release()

        self._call(act)

    def delay(self, seconds: float, jitter: float = 0.0) -> None:
        async def act() -> None:
            self._delay = (seconds, jitter)

        self._call(act)

    def cut_after(self, n: int, direction: str = "both") -> None:
        """Cut the live connections once `n` more bytes went through in `direction`
        (UP, DOWN or "both")."""
        if direction not in self._budget:
            raise ValueError(f"direction must be {UP!r}, {DOWN!r} or 'both', found {direction!r}")

        async def act() -> None:
            self._budget[direction] = n

        self._call(act)

    def stall(self, direction: str = "both") -> None:
        """Hold the live connections' bytes in `direction` until release()."""
        directions = (UP, DOWN) if direction == "both" else (direction,)

        async def act() -> None:
            for conn in self._conns:
                for d in directions:
                    conn.held.setdefault(d, asyncio.Event())

        self._call(act)

    def strand(self) -> None:
        """Reset the child's side of the live connections, keep the parent's side."""

        async def act() -> None:
            for conn in list(self._conns):
                with contextlib.suppress(Exception):
                    conn.client.transport.abort()
                self._conns.discard(conn)
                self._stranded.add(conn)

        self._call(act)

    def release(self) -> None:
        async def act() -> None:
            self._release()

        self._call(act)

    @property
    def live(self) -> int:
        return len(self._conns)

    @property
    def total(self) -> int:
        return self.forwarded[UP] + self.forwarded[DOWN]

    @property
    def in_flight(self) -> int:
        """Bytes read from one side and not yet written to the other, over the live and the
        stranded connections (0 once everything released has been delivered)."""

        async def count() -> int:
            conns = self._conns | self._stranded
            return sum(conn.in_flight for conn in conns if not conn.aborted)

        return self._call(count)

    # Inside the loop ------------------------------------------------------------------

    def _call(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(10)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        sock: socket.socket = self._server.sockets[0]
        self.port = int(sock.getsockname()[1])

    async def _close(self) -> None:
        for writer in self._swallowing:
            writer.transport.abort()
        self._abort_all()
        for conn in self._stranded:
            conn.abort()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def _abort_all(self) -> None:
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()

    def _release(self) -> None:
        for conn in self._conns | self._stranded:
            for event in conn.held.values():
                event.set()
            conn.held.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._blackhole:
            self.swallowed += 1
            self._swallowing.add(writer)
            with contextlib.suppress(ConnectionError, OSError):
                while await reader.read(CHUNK):  # into the void
                    pass
            self._swallowing.discard(writer)
            return
        if self._down:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            self.refused += 1
            writer.transport.abort()
            return
        self.accepted += 1
        conn = _Conn(writer, up_writer)
        self._conns.add(conn)
        conn.tasks = [
            asyncio.create_task(self._pump(conn, reader, up_writer, UP)),
            asyncio.create_task(self._pump(conn, up_reader, writer, DOWN)),
        ]

    def _allowance(self, direction: str, size: int) -> int | None:
        """How much of a `size`-byte chunk may pass before a pending cut fires (None: all)."""
        allowed: int | None = None
        for key in (direction, "both"):
            budget = self._budget[key]
            if budget is not None:
                allowed = budget if allowed is None else min(allowed, budget)
        if allowed is None or allowed >= size:
            for key in (direction, "both"):
                if self._budget[key] is not None:
                    self._budget[key] = self._budget[key] - size  # type: ignore[operator]
            return None
        return allowed

    async def _pump(
        self,
        conn: _Conn,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: str,
    ) -> None:
        """Read one direction and hand each chunk, stamped with when it may be delivered,
        to its writer: latency without a bandwidth cap, order kept."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliver = asyncio.create_task(self._deliver(conn, queue, writer, direction))
        conn.tasks.append(deliver)
        loop = asyncio.get_running_loop()
        due = 0.0
        try:
            while True:
                data = await reader.read(CHUNK)
                seconds, jitter = self._delay
                due = max(due, loop.time() + seconds + self._random.uniform(0, jitter))
                conn.in_flight += len(data)
                await queue.put((due, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            conn.abort()
            self._conns.discard(conn)
        except asyncio.CancelledError:
            pass

    async def _deliver(
        self,
        conn: _Conn,
        queue: asyncio.Queue[tuple[float, bytes]],
        writer: asyncio.StreamWriter,
        direction: str,
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                held = conn.held.get(direction)
                if held is not None:
                    await held.wait()
                if not data:
                    with contextlib.suppress(Exception):
                        writer.write_eof()
                    conn.open_directions -= 1
                    if not conn.open_directions:  # closed both ways: no longer live
                        self._conns.discard(conn)
                    return
                allowed = self._allowance(direction, len(data))
                if allowed is not None:
                    # The cut fires inside this chunk: deliver its first `allowed` bytes only.
                    self._budget = {UP: None, DOWN: None, "both": None}
                    self.cuts += 1
                    if allowed:
                        writer.write(data[:allowed])
                        self.forwarded[direction] += allowed
                        with contextlib.suppress(Exception):
                            await writer.drain()
                    self._abort_all()
                    return
                writer.write(data)
                self.forwarded[direction] += len(data)
                conn.in_flight -= len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            conn.abort()
            self._conns.discard(conn)
        except asyncio.CancelledError:
            pass
