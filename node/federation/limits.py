"""Limits that keep a node answering under connection floods and slow callers (issue 21.9).

What holds, whatever a peer, gateway or stranger does with its connections:
  1. At start the soft RLIMIT_NOFILE is raised to the hard limit (`raise_open_files`):
     systemd starts services with 1,024, far below what a node may need.
  2. Every gRPC port gets `server_options`: connections whose TLS handshake does not end
     within `handshake_seconds` are closed; connections with no call for `idle_seconds`
     are closed; and each port takes at most `connection_cap` connections at once, so the
     gRPC ports together never use more than the descriptors left after RESERVED_FILES
     (the database, log and key files, the dashboard and metrics ports, outgoing
     channels). gRPC closes a connection over the cap as soon as it is accepted.
  3. The plain-HTTP ports (metrics, dashboard: threaded servers) get the same cap through
     `limit_http_server`. A connection gets a thread only once it has sent something: until
     then one gate thread per port holds it in a selector, and closes it, silently, when
     `HTTP_IDLE_SECONDS` pass without a byte. A connection that has a thread and then sends
     nothing for that long (a request half sent, a kept-alive one left idle) is closed too,
     freeing its thread; a client that drops or stalls is its own problem, never a
     traceback in the log. So idle floods cost no threads, and slow clients cannot pile up
     threads and descriptors (before this, every idle connection held a thread and each
     timeout printed a traceback: a flood of 600 made the whole process wait on the GIL).
  4. `ConnectionWatch` looks at the ports' connections every WATCH_SECONDS (Linux:
     /proc/net/tcp*) and logs a warning naming the port when one is at its cap, i.e.
     when gRPC is refusing connections there, and when it stops. A look first counts the
     process's open descriptors (/proc/self/fd): while they are fewer than the cap, gRPC
     holds fewer connections than that on any port, and the tables, whose read walks
     every socket of the host (tens of milliseconds of CPU with a few thousand, most of an
     idle node's CPU before; issue 20.5), are not read.
Intake's per-gateway call limits and per-call deadline live in node.federation.intake_port.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import selectors
import socket
import socketserver
import ssl
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.logs import get_logger

__all__ = [
    "DEFAULT_HANDSHAKE_SECONDS",
    "DEFAULT_IDLE_SECONDS",
    "GRPC_PORTS",
    "RESERVED_FILES",
    "ConnectionWatch",
    "OpenFiles",
    "connection_cap",
    "count_connections",
    "count_if_reachable",
    "limit_http_server",
    "open_descriptors",
    "raise_open_files",
    "server_options",
    "watch",
]

# Descriptors kept for the node's own work, never given to incoming gRPC connections.
RESERVED_FILES = 256
# The gRPC ports a node may open: federation, enrollment, intake.
GRPC_PORTS = 3
# The plain-HTTP ports: metrics, dashboard.
HTTP_PORTS = 2
PORTS = GRPC_PORTS + HTTP_PORTS
# Fewest connections a port takes, however low the descriptor limit (a node under a
# limit this low is told so in the log at start).
MIN_CONNECTIONS = 16
# Most connections a port takes, however high the limit: a node has tens of peers and
# gateways, never thousands.
MAX_CONNECTIONS = 4096
DEFAULT_HANDSHAKE_SECONDS = 10.0
DEFAULT_IDLE_SECONDS = 300.0
HTTP_IDLE_SECONDS = 30.0
HTTP_BACKLOG = 128  # a plain-HTTP port's accept queue (werkzeug's; socketserver's is 5)
WATCH_SECONDS = 5.0  # a flood shorter than the handshake timeout (10 s) must still be seen

_ESTABLISHED = "01"
_SYN_RECV = "03"
_PROC_TCP = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_OWN_FDS = Path("/proc/self/fd")


@dataclass(frozen=True)
class OpenFiles:
    """The process's descriptor limit before and after `raise_open_files`."""

    before: int
    soft: int
    hard: int


def raise_open_files() -> OpenFiles:
    """Raise the soft RLIMIT_NOFILE to the hard limit (the most an unprivileged process
    may), log what it is, and warn when it leaves little room for connections."""
    log = get_logger()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = soft
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("limits.open_files_not_raised", soft=soft, hard=hard, error=str(e))
    files = OpenFiles(before, soft, hard)
    caps = connection_cap(soft)
    if soft - RESERVED_FILES < PORTS * 64:
        log.warning(
            "limits.open_files_low",
            soft=soft,
            hard=hard,
            connections_per_port=caps,
            action="raise the service's open-file limit (systemd: LimitNOFILE=65536) so "
            "the node can take more connections",
        )
    else:
        log.info("limits.open_files", before=before, soft=soft, hard=hard, per_port=caps)
    return files


def connection_cap(soft_limit: int | None = None) -> int:
    """How many connections one port (gRPC or HTTP) takes at once under the descriptor
    limit: its share of what is left after RESERVED_FILES."""
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit == resource.RLIM_INFINITY or soft_limit <= 0:
        return MAX_CONNECTIONS
    share = (soft_limit - RESERVED_FILES) // PORTS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, share))


def server_options(
    server: Any = None,
    *,
    handshake_seconds: float | None = None,
    idle_seconds: float | None = None,
    connections: int | None = None,
) -> list[tuple[str, int]]:
    """gRPC server options for one port: handshake timeout, idle timeout, connection cap.
    `server` is node.yaml's `server:` section (or None); its optional keys
    `handshake_timeout_seconds`, `idle_timeout_seconds` and `max_connections_per_port`
    override the defaults, and explicit arguments override both."""
    if handshake_seconds is None:
        handshake_seconds = float(
            getattr(server, "handshake_timeout_seconds", DEFAULT_HANDSHAKE_SECONDS)
        )
    if idle_seconds is None:
        idle_seconds = float(getattr(server, "idle_timeout_seconds", DEFAULT_IDLE_SECONDS))
    if connections is None:
        connections = getattr(server, "max_connections_per_port", None) or connection_cap()
    return [
        ("grpc.server_handshake_timeout_ms", max(1, int(handshake_seconds * 1000))),
        ("grpc.max_connection_idle_ms", max(1, int(idle_seconds * 1000))),
        ("grpc.max_allowed_incoming_connections", int(connections)),
    ]


def limit_http_server(
    server: socketserver.BaseServer,
    *,
    connections: int | None = None,
    idle_seconds: float = HTTP_IDLE_SECONDS,
) -> None:
    """Bound a threaded HTTP server (socketserver), before it serves: at most `connections`
    (default: `connection_cap()`) at once, those over it closed as they are accepted; a
    connection waits in the port's gate (no thread) until it sends its first byte, and is
    closed if that takes `idle_seconds`; once it has a thread, its socket times out after
    `idle_seconds` without data, which ends its request and its thread. A client's
    dropped or timed-out connection is closed without a word; any other failure of a
    request is logged once, by kind (`http.request_failed`)."""
    cap = connections or connection_cap()
    handler: Any = server.RequestHandlerClass
    server.RequestHandlerClass = type(handler.__name__, (handler,), {"timeout": idle_seconds})
    accepted: set[int] = set()
    lock = threading.Lock()
    verify, shutdown = server.verify_request, server.shutdown_request
    close_server = server.server_close

    def verify_request(request: Any, client_address: Any) -> bool:
        with lock:
            if len(accepted) >= cap:
                return False  # socketserver then closes it (shutdown_request)
            accepted.add(id(request))
        return verify(request, client_address)

    def shutdown_request(request: Any) -> None:
        with lock:
            accepted.discard(id(request))
        shutdown(request)

    gate = _Gate(server.process_request, shutdown_request, idle_seconds)
    # socketserver listens with a queue of 5 (prometheus_client's metrics server keeps it):
    # with a sixth connection arriving before the serving thread accepts, the kernel drops
    # its SYN and the client, a scrape among them, waits a second for its retry. A second
    # listen() on a listening socket only changes the queue.
    if isinstance(server, socketserver.TCPServer):
        server.socket.listen(HTTP_BACKLOG)

    def server_close() -> None:
        gate.stop()
        close_server()

    server.verify_request = verify_request  # type: ignore[method-assign]
    server.shutdown_request = shutdown_request  # type: ignore[method-assign]
    server.process_request = gate.add  # type: ignore[method-assign]
    server.handle_error = _quiet_error  # type: ignore[method-assign]
    server.server_close = server_close  # type: ignore[method-assign]


def _quiet_error(request: Any, client_address: Any) -> None:
    """socketserver's handle_error, called inside the `except` of a failed request: a
    client's connection that dropped or timed out is no news; anything else is logged
    by kind, without socketserver's traceback on stderr (which the log would carry line
    by line)."""
    error = sys.exc_info()[1]
    if isinstance(error, OSError):
        return
    get_logger().error("http.request_failed", error_kind=type(error).__name__)


class _Gate:
    """Connections accepted on an HTTP port that have not sent a byte yet, held in a
    selector by one thread instead of a thread each. A connection that sends something
    goes to `start` (the server's thread-per-request `process_request`); one that closes
    first, or sends nothing for `idle_seconds`, goes to `close`. Connections are taken
    in by `add` from the serving thread and registered by the gate's own thread (the
    selector is only ever touched there)."""

    def __init__(
        self,
        start: Callable[[Any, Any], None],
        close: Callable[[Any], None],
        idle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._start = start
        self._close = close
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._incoming: deque[tuple[Any, Any]] = deque()
        # Waiting connections by descriptor, oldest first (one idle time for all: the
        # first is always the next to expire).
        self._waiting: OrderedDict[int, tuple[Any, Any, float]] = OrderedDict()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()

    def add(self, request: Any, client_address: Any) -> None:
        """Hold a connection just accepted until it sends something (the gate's thread
        starts with the first one)."""
        if self._stopped:
            self._close(request)
            return
        self._incoming.append((request, client_address))
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="http-gate", daemon=True)
                self._thread.start()
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # already woken, or stopped
            self._wake_write.send(b"\0")

    def stop(self) -> None:
        """Close every waiting connection and end the gate's thread."""
        self._stopped = True
        self._wake()
        with self._thread_lock:
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        else:
            self._wake_read.close()
        with contextlib.suppress(OSError):
            self._wake_write.close()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_read, selectors.EVENT_READ)
        try:
            while not self._stopped:
                timeout = None
                if self._waiting:
                    first = next(iter(self._waiting.values()))
                    timeout = max(0.0, first[2] - self._clock())
                for key, _ in selector.select(timeout):
                    if key.fileobj is self._wake_read:
                        with contextlib.suppress(BlockingIOError, OSError):
                            self._wake_read.recv(4096)
                        continue
                    selector.unregister(key.fileobj)
                    request, client_address, _ = self._waiting.pop(key.fd)
                    self._ready(request, client_address)
                self._take_incoming(selector)
                self._expire(selector)
        finally:
            for request, _, _ in self._waiting.values():
                self._close(request)
            while self._incoming:
                self._close(self._incoming.popleft()[0])
            self._waiting.clear()
            selector.close()
            self._wake_read.close()

    def _take_incoming(self, selector: selectors.BaseSelector) -> None:
        deadline = self._clock() + self.idle_seconds
        while self._incoming:
            request, client_address = self._incoming.popleft()
            try:
                selector.register(request, selectors.EVENT_READ)
            except (OSError, ValueError):  # closed already
                self._close(request)
                continue
            self._waiting[request.fileno()] = (request, client_address, deadline)

    def _expire(self, selector: selectors.BaseSelector) -> None:
        now = self._clock()
        while self._waiting:
            fd, (request, _, deadline) = next(iter(self._waiting.items()))
            if deadline > now:
                return
            del self._waiting[fd]
            selector.unregister(request)
            self._close(request)

    def _ready(self, request: Any, client_address: Any) -> None:
        """A waiting connection is readable: its first bytes (a thread for them), or its
        end (closed here, no thread)."""
        if not isinstance(request, ssl.SSLSocket):
            try:
                first = request.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                first = b"?"
            except OSError:
                first = b""
            if not first:
                self._close(request)
                return
        try:
            self._start(request, client_address)
        except Exception:  # pragma: no cover - no thread to be had: drop this one
            self._close(request)


def _connection_pattern(ports: Iterable[int]) -> re.Pattern[bytes]:
    """Rows of /proc/net/tcp(6) whose local port is one of `ports` and whose state is
    established or half-open (SYN_RECV), found by one C-level scan of the table: under a
    flood of thousands of rows, parsing them line by line in Python held the interpreter
    (and so every other thread of the node) for tens of ms every few seconds. A row is
    `sl: LOCAL:PORT REMOTE:PORT STATE ...`; ":PORT " followed by an address, a port and
    a state is the local port: nothing else in a row has four hex digits between a colon
    and a space."""
    alternatives = b"|".join(b"%04X" % port for port in sorted(set(ports)))
    return re.compile(
        rb":("
        + alternatives
        + rb") [0-9A-F]+:[0-9A-F]{4} (?:"
        + _ESTABLISHED.encode()
        + b"|"
        + _SYN_RECV.encode()
        + rb") "
    )


def count_connections(
    ports: Iterable[int], tables: Sequence[Path] = _PROC_TCP
) -> dict[int, int] | None:
    """Established (or half-open) TCP connections to each of `ports` on this host, from
    /proc/net/tcp and tcp6; None where those files do not exist (not Linux)."""
    wanted = {p: 0 for p in ports if p}
    pattern = _connection_pattern(wanted) if wanted else None
    found = False
    for table in tables:
        try:
            text = table.read_bytes()
        except OSError:
            continue
        found = True
        if pattern is not None:
            for port in pattern.findall(text):
                wanted[int(port, 16)] += 1
    return wanted if found else None


def open_descriptors(listing: Path = _OWN_FDS) -> int | None:
    """How many descriptors this process has open (the entries of /proc/self/fd); None
    where that cannot be read. Every connection a port of ours has accepted is one of
    them, so no port holds more connections than this."""
    try:
        return sum(1 for _ in listing.iterdir())
    except OSError:
        return None


def count_if_reachable(
    ports: Iterable[int],
    cap: int,
    listing: Path = _OWN_FDS,
    tables: Sequence[Path] = _PROC_TCP,
) -> dict[int, int] | None:
    """`count_connections(ports)`, unless this process has fewer descriptors open than
    `cap` (open_descriptors): then gRPC holds fewer than `cap` connections on any port, so
    refuses none, and every count is 0 without reading the tables."""
    held = open_descriptors(listing)
    if held is not None and held < cap:
        return {p: 0 for p in ports if p}
    return count_connections(ports, tables)


class ConnectionWatch:
    """Logs a warning when a gRPC port is at its connection cap (gRPC then closes every
    new connection to it at once), naming the port, and a line when it is below again."""

    def __init__(self, ports: dict[str, int], cap: int, interval: float = WATCH_SECONDS) -> None:
        self.ports = {name: port for name, port in ports.items() if port}
        self.cap = cap
        self.interval = interval
        self.full: set[str] = set()
        self.log = get_logger()

    def check(self, counts: dict[int, int] | None = None) -> set[str]:
        """Look once; return the names of the ports at their cap."""
        if counts is None:
            counts = count_if_reachable(self.ports.values(), self.cap)
        if counts is None:
            return set()
        full = {name for name, port in self.ports.items() if counts.get(port, 0) >= self.cap}
        for name in sorted(full - self.full):
            self.log.warning(
                "limits.connections_refused",
                port_name=name,
                port=self.ports[name],
                connections=counts.get(self.ports[name], 0),
                cap=self.cap,
                action="new connections to this port are closed until some end; if these "
                "are not your peers or gateways, block their addresses at the firewall",
            )
        for name in sorted(self.full - full):
            self.log.info("limits.connections_accepted_again", port_name=name, cap=self.cap)
        self.full = full
        return full

    async def run(self) -> None:
        """Look every `interval`: on the event loop while the process's descriptors are
        fewer than the cap (a directory listing of /proc/self/fd, nothing to wait on), on
        a thread when the tables must be read."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                held = open_descriptors()
                if held is not None and held < self.cap:
                    self.check({port: 0 for port in self.ports.values()})
                else:
                    await asyncio.to_thread(self.check)
            except Exception as e:  # pragma: no cover - best effort: keep watching
                self.log.warning("limits.watch_failed", error_kind=type(e).__name__)


async def watch(server: Any, **ports: int) -> None:
    """Run a ConnectionWatch over the named `ports` (0: not open) with the cap that
    `server_options(server)` gives them."""
    cap = getattr(server, "max_connections_per_port", None) or connection_cap()
    await ConnectionWatch(ports, int(cap)).run()
