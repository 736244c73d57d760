"""structlog set-up: JSON lines on stderr, with node id, peer, message id and complaint id
bound by the code that knows them. Never log complaint content or reporter identity.

gRPC's C core writes its own lines to file descriptor 2 (`I1207 14:20:46.896031 9843
ssl_transport_security.cc:2563] Handshake failed ...`), past Python. While `serve` runs,
`core_lines_to_structlog` routes that descriptor through a pipe: each core line becomes one
structlog event (`source="grpc-core"`, its severity as the level, the source file, the
text, and the peer's address when the line names one), filtered by the configured level
like every other event; other text written there (a Python warning) becomes a `stderr`
event; JSON lines pass through unchanged. Decision 0029.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any, TextIO

import structlog

__all__ = ["configure_logging", "core_line", "core_lines_to_structlog", "get_logger"]

# absl's (and gpr's) prefix: severity, MMDD, time, thread id, file:line, then the text.
_CORE_LINE = re.compile(
    r"^(?P<severity>[IWEF])\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+"
    r"(?P<origin>[^\s\]]+:\d+)\] ?(?P<text>.*)$"
)
_SEVERITY = {"I": "info", "W": "warning", "E": "error", "F": "critical"}
# How the core names an address: ipv4:1.2.3.4:5, ipv6:[::1]:5, or a bare host:port after
# "peer" / "from" / "to".
_ADDRESS = re.compile(
    r"(?P<address>ipv4:\d{1,3}(?:\.\d{1,3}){3}:\d+|ipv6:\[[0-9a-fA-F:.%\w]+\]:\d+|"
    r"(?<=peer[ =:])\s*\d{1,3}(?:\.\d{1,3}){3}:\d+)"
)
# Core lines are plain text; one longer than this is cut (a bounded event per line).
MAX_LINE = 2000


def configure_logging(level: str = "info", fmt: str = "json", file: TextIO | None = None) -> None:
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=file or sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: object) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(**bound)  # type: ignore[no-any-return]


def core_line(line: str) -> tuple[str, str, dict[str, Any]] | None:
    """What one line on stderr becomes: (level, event, fields), or None for a JSON line
    (already ours: passed through). Pure, for the reader thread and for tests."""
    line = line.rstrip("\r\n")[:MAX_LINE]
    if line.startswith("{"):
        with contextlib.suppress(ValueError):
            json.loads(line)
            return None
    found = _CORE_LINE.match(line)
    if found is None:
        return "warning", "stderr", {"source": "stderr", "text": line}
    text = found["text"]
    fields: dict[str, Any] = {"source": "grpc-core", "origin": found["origin"], "text": text}
    address = _ADDRESS.search(text)
    if address is not None:
        fields["peer_address"] = address["address"].strip()
    event = "grpc.handshake_failed" if "andshake failed" in text else "grpc.core"
    return _SEVERITY[found["severity"]], event, fields


@contextlib.contextmanager
def core_lines_to_structlog(
    level: str = "info", fmt: str = "json", **bound: object
) -> Iterator[None]:
    """While inside: file descriptor 2 goes through a pipe whose reader turns each line into
    a structlog event (module docstring) with `bound` (the node id); structlog writes to the
    real stderr. On leaving, descriptor 2 is restored and every line written before is
    emitted."""
    sys.stderr.flush()
    real = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    out = os.fdopen(real, "w", buffering=1, encoding="utf-8", errors="replace")
    configure_logging(level, fmt, file=out)
    reader = threading.Thread(
        target=_relay, args=(read_end, out, bound), name="stderr-relay", daemon=True
    )
    reader.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(out.fileno(), 2)  # the pipe's last writer goes: the reader reads to its end
        reader.join(timeout=5)
        configure_logging(level, fmt)
        out.close()


def _relay(read_end: int, out: IO[str], bound: dict[str, object]) -> None:
    log = get_logger(**bound)
    with os.fdopen(read_end, "r", encoding="utf-8", errors="replace") as pipe:
        for line in pipe:
            parsed = core_line(line)
            if parsed is None:
                out.write(line if line.endswith("\n") else line + "\n")
                continue
            level, event, fields = parsed
            getattr(log, level)(event, **fields)
