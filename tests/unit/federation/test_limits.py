"""node.federation.limits: the descriptor limit raised at start, each gRPC port's options
and connection cap, and the warning when a port refuses connections (issue 21.9)."""

from __future__ import annotations

import http.server
import resource
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from structlog.testing import capture_logs

from node.federation import limits
from tests.support.waits import bound


@pytest.mark.parametrize(
    ("soft", "cap"),
    [
        pytest.param(1024, (1024 - limits.RESERVED_FILES) // limits.PORTS, id="systemd"),
        pytest.param(300, limits.MIN_CONNECTIONS, id="tiny"),
        pytest.param(1 << 20, limits.MAX_CONNECTIONS, id="large"),
        pytest.param(resource.RLIM_INFINITY, limits.MAX_CONNECTIONS, id="unlimited"),
    ],
)
def test_the_ports_together_stay_within_the_descriptor_limit(soft: int, cap: int) -> None:
    """Each port's cap is its share of what is left after the reserve, within bounds."""
    assert limits.connection_cap(soft) == cap
    if soft == 1024:
        assert limits.PORTS * cap + limits.RESERVED_FILES <= soft


def test_server_options_close_slow_handshakes_and_idle_connections() -> None:
    """Defaults, then node.yaml's optional keys, then explicit arguments."""
    options = dict(limits.server_options(None))
    assert options["grpc.server_handshake_timeout_ms"] == limits.DEFAULT_HANDSHAKE_SECONDS * 1000
    assert options["grpc.max_connection_idle_ms"] == limits.DEFAULT_IDLE_SECONDS * 1000
    assert options["grpc.max_allowed_incoming_connections"] == limits.connection_cap()
    server = SimpleNamespace(
        handshake_timeout_seconds=2, idle_timeout_seconds=30, max_connections_per_port=50
    )
    assert dict(limits.server_options(server)) == {
        "grpc.server_handshake_timeout_ms": 2000,
        "grpc.max_connection_idle_ms": 30_000,
        "grpc.max_allowed_incoming_connections": 50,
    }
    assert (
        dict(limits.server_options(server, connections=7))["grpc.max_allowed_incoming_connections"]
        == 7
    )


def test_serve_raises_the_soft_limit_to_the_hard_limit() -> None:
    """Under `prlimit --nofile=512:4096` the soft limit becomes 4096."""
    code = (
        "import resource; from node.federation.limits import raise_open_files; "
        "f = raise_open_files(); "
        "print(f.before, f.soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    ran = subprocess.run(
        ["prlimit", "--nofile=512:4096", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert ran.stdout.splitlines()[-1].split() == ["512", "4096", "4096"]


TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1D28 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1
   1: 0100007F:1D28 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 2
   2: 0100007F:1D28 0100007F:C351 01 00000000:00000000 00:00000000 00000000  1000        0 3
   3: 0100007F:1D28 0100007F:C352 06 00000000:00000000 00:00000000 00000000  1000        0 4
   4: 0100007F:C350 0100007F:1D28 01 00000000:00000000 00:00000000 00000000  1000        0 5
   5: 0100007F:1D29 0100007F:C353 03 00000000:00000000 00:00000000 00000000  1000        0 6
"""


def test_connections_are_counted_per_local_port(tmp_path: Path) -> None:
    """Established and half-open connections to our ports; not listeners, not our own
    outgoing sockets, not closing ones."""
    table = tmp_path / "tcp"
    table.write_text(TABLE)
    assert limits.count_connections([0x1D28, 0x1D29, 7], [table]) == {
        0x1D28: 2,
        0x1D29: 1,
        7: 0,
    }
    assert limits.count_connections([0x1D28], [tmp_path / "absent"]) is None


def test_a_port_at_its_cap_is_named_in_a_warning_once() -> None:
    """The warning comes when the port reaches its cap, not again while it stays there;
    an info line when it is below again."""
    watch = limits.ConnectionWatch({"main": 7464, "intake": 7466, "enrollment": 0}, cap=3)
    with capture_logs() as logs:
        assert watch.check({7464: 3, 7466: 1}) == {"main"}
        assert watch.check({7464: 5, 7466: 1}) == {"main"}
        assert watch.check({7464: 1, 7466: 1}) == set()
    assert [(e["event"], e["log_level"], e["port_name"]) for e in logs] == [
        ("limits.connections_refused", "warning", "main"),
        ("limits.connections_accepted_again", "info", "main"),
    ]
    assert logs[0]["port"] == 7464 and logs[0]["cap"] == 3


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: object) -> None:
        pass


def _closed_by_server(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_an_http_port_caps_connections_and_closes_idle_ones() -> None:
    """limit_http_server: past the cap a new connection is closed at once; a connection
    that sends nothing is closed after the idle time, and the port answers again."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    limits.limit_http_server(server, connections=2, idle_seconds=0.5)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    try:
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        extra = socket.create_connection(("127.0.0.1", port))
        assert _closed_by_server(extra, bound())
        for s in idle:
            assert _closed_by_server(s, bound(0.5))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=bound()) as answer:
            assert answer.read() == b"ok\n"
        for s in (*idle, extra):
            s.close()
    finally:
        server.shutdown()
        server.server_close()


def test_open_descriptors_count_this_process_s_own() -> None:
    """Each socket this process opens is one more descriptor in /proc/self/fd."""
    before = limits.open_descriptors()
    assert before is not None
    with socket.socket() as s:
        assert s.fileno() >= 0
        assert limits.open_descriptors() == before + 1
    assert limits.open_descriptors() == before
    assert limits.open_descriptors(Path("/absent/fd")) is None


@pytest.mark.parametrize(
    ("cap", "expected"),
    [
        pytest.param(6, {0x1D28: 0, 0x1D29: 0}, id="fewer-descriptors-than-the-cap-no-read"),
        pytest.param(5, {0x1D28: 2, 0x1D29: 1}, id="as-many-as-the-cap-the-table-is-read"),
    ],
)
def test_the_tables_are_read_only_when_a_port_could_be_at_its_cap(
    tmp_path: Path, cap: int, expected: dict[int, int]
) -> None:
    """With fewer descriptors open (5 here) than the cap, gRPC cannot hold the cap on any
    port: the counts are 0 without reading the tables (which say otherwise); at the cap
    or above, the tables are read."""
    listing = tmp_path / "fd"
    listing.mkdir()
    for n in range(5):
        (listing / str(n)).touch()
    table = tmp_path / "tcp"
    table.write_text(TABLE)
    assert limits.count_if_reachable([0x1D28, 0x1D29, 0], cap, listing, [table]) == expected


def test_without_proc_self_fd_the_tables_are_read(tmp_path: Path) -> None:
    """A host without /proc/self/fd still has its ports counted from the tables."""
    table = tmp_path / "tcp"
    table.write_text(TABLE)
    counts = limits.count_if_reachable([0x1D28], 1, tmp_path / "absent", [table])
    assert counts == {0x1D28: 2}


def _request_threads() -> list[threading.Thread]:
    """The live threads of a socketserver's requests."""
    return [t for t in threading.enumerate() if "process_request" in t.name and t.is_alive()]


def test_an_http_port_gives_no_thread_to_connections_that_send_nothing() -> None:
    """Twenty connections that send nothing hold no thread (the port's gate holds them);
    a request after them still gets its answer."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    limits.limit_http_server(server, connections=50, idle_seconds=300)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        # Accepted in order: once a later request is answered, the idle ones are taken in.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=bound()) as answer:
            assert answer.read() == b"ok\n"
        assert len(_request_threads()) <= 1  # at most the answered request's, ending
    finally:
        for s in idle:
            s.close()
        server.shutdown()
        server.server_close()


def test_the_metrics_port_closes_a_timed_out_request_without_a_traceback(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """prometheus_client's server (wsgiref: a timed-out read is an exception that
    socketserver prints with its traceback) closes a half-sent request at the idle time
    and says nothing on stderr: under a flood, those tracebacks were the log's bulk."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=CollectorRegistry())
    limits.limit_http_server(server, idle_seconds=0.5)
    port = server.server_address[1]
    try:
        half = socket.create_connection(("127.0.0.1", port))
        half.sendall(b"GET /metrics HTTP/1.1\r\n")  # and never the rest
        assert _closed_by_server(half, bound(0.5))
        half.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=bound()) as answer:
            assert answer.status == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join(bound())
    assert "Traceback" not in capfd.readouterr().err
