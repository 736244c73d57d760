"""node.logs: what a line on stderr becomes (gRPC core lines as structlog events), and the
relay that routes file descriptor 2 through structlog while `serve` runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from node.logs import core_line

HANDSHAKE = (
    "I1207 14:20:46.896031    9843 ssl_transport_security.cc:2563] Handshake failed with "
    "error SSL_ERROR_SSL: error:100000c0:SSL routines:OPENSSL_internal:"
    "PEER_DID_NOT_RETURN_A_CERTIFICATE: Invalid certificate verification context\n"
)


@pytest.mark.parametrize(
    ("line", "level", "event", "fields"),
    [
        pytest.param(
            HANDSHAKE,
            "info",
            "grpc.handshake_failed",
            {"source": "grpc-core", "origin": "ssl_transport_security.cc:2563"},
            id="handshake",
        ),
        pytest.param(
            "E1207 01:02:03.000004 17 chttp2_transport.cc:12] closed ipv4:10.0.0.7:50412: x",
            "error",
            "grpc.core",
            {"source": "grpc-core", "peer_address": "ipv4:10.0.0.7:50412"},
            id="error-with-peer",
        ),
        pytest.param(
            "W1207 01:02:03.000004 17 tcp.cc:9] from ipv6:[::1]:7464 reset",
            "warning",
            "grpc.core",
            {"peer_address": "ipv6:[::1]:7464"},
            id="ipv6-peer",
        ),
        pytest.param(
            "Traceback (most recent call last):",
            "warning",
            "stderr",
            {"source": "stderr", "text": "Traceback (most recent call last):"},
            id="other-text",
        ),
    ],
)
def test_a_line_becomes_one_event(
    line: str, level: str, event: str, fields: dict[str, str]
) -> None:
    """Core lines keep their severity, origin and text; other text is a stderr event."""
    parsed = core_line(line)
    assert parsed is not None
    assert parsed[:2] == (level, event)
    assert fields.items() <= parsed[2].items()


def test_a_json_line_passes_through() -> None:
    """Our own events are not wrapped again."""
    assert core_line('{"event": "link.up", "level": "info"}\n') is None


def test_a_long_line_is_cut() -> None:
    """An event per line stays bounded."""
    parsed = core_line("x" * 10_000)
    assert parsed is not None and len(parsed[2]["text"]) == 2000


def test_descriptor_two_goes_through_structlog_and_comes_back() -> None:
    """Inside the relay, what C code writes on fd 2 comes out as JSON on the real stderr,
    nothing is lost when it ends, and fd 2 is the real stderr again afterwards."""
    script = textwrap.dedent(
        f"""
        import os
        from node.logs import core_lines_to_structlog, get_logger
        with core_lines_to_structlog():
            os.write(2, {HANDSHAKE.encode()!r})
            get_logger(node_id="id-64").info("ours")
            os.write(2, b"plain text\\n")
        os.write(2, b"after\\n")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
        check=True,
    )
    lines = done.stderr.splitlines()
    assert lines[-1] == "after"
    # Relayed lines come out when the relay thread gets to them: in any order with ours.
    events = {e["event"]: e for e in (json.loads(line) for line in lines[:-1])}
    assert sorted(events) == ["grpc.handshake_failed", "ours", "stderr"]
    core = events["grpc.handshake_failed"]
    assert core["source"] == "grpc-core" and core["level"] == "info"
    assert events["stderr"]["text"] == "plain text"
