"""`lapor-node serve` for tests, forked from a process that has already imported it.

A test node is a separate process running `serve`, as in production. Started with
`python -m node.cli.main serve`, each one first spends about a second of CPU importing
SQLAlchemy, grpc, pydantic and the node's own modules: on this 2-core machine the suite
starts some thousand nodes, and those imports were a large part of its time (decision 0042).

So each test process keeps one zygote: a child process that imports what `serve` imports,
then waits on a Unix socket. For each node it forks; the fork becomes the node (its own
session, environment, working directory, argv, stdout and stderr to the node's log) and
runs the same `main()` the `lapor-node` entry point runs, in a process of its own that
the test signals, kills and waits for by pid. What the fork inherits is imported modules
only: the zygote starts no thread, no event loop, no gRPC channel, engine or log setup
before forking (checked at its start; with any thread running it refuses, and nodes run
as plain processes instead). Fault points and the fake clock read the environment when
first used, in the node.

`ForkedProcess` answers the part of `subprocess.Popen` tests use (pid, poll, wait,
returncode, send_signal, kill, terminate); the zygote, the node's parent, reaps it and
tells the test its exit status. LAPOR_TEST_ZYGOTE=0 turns it off (every node a plain
`python -m node.cli.main serve`), and outside a test (the benchmarks) it is off.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["ForkedProcess", "enabled", "spawn_serve"]

ENV = "LAPOR_TEST_ZYGOTE"
READY = b"zygote ready\n"


def enabled() -> bool:
    """In a test (pytest sets PYTEST_CURRENT_TEST while one runs), unless turned off. The
    benchmarks, which measure a node's CPU and memory, start plain processes."""
    return "PYTEST_CURRENT_TEST" in os.environ and os.environ.get(ENV, "1") != "0"


# --- the zygote's side ----------------------------------------------------------------------


def _warm() -> None:
    """Import what `serve` imports, and nothing that starts a thread."""
    import node.cli.commands_node
    import node.cli.main
    import node.federation.runtime
    import node.web  # noqa: F401


def _child(request: dict[str, Any], listener: socket.socket, conn: socket.socket) -> None:
    """In the fork: become the node, run `lapor-node ARGS`, exit with its status."""
    code = 1
    try:
        listener.close()
        conn.close()
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = ["lapor-node", *request["args"]]
        from node.cli.main import main

        try:
            main()  # reads sys.argv, as the entry point does
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        else:
            code = 0
    except BaseException:  # the node's own errors were handled by main(); this is ours
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            import atexit

            atexit._run_exitfuncs()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _serve(path: str) -> None:
    _warm()
    threads = sum(1 for _ in Path("/proc/self/task").iterdir())
    if threads != 1:
        sys.stderr.write(f"zygote: {threads} threads after imports; a fork would lose them\n")
        sys.exit(3)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    sys.stdout.buffer.write(READY)
    sys.stdout.flush()
    conn, _ = listener.accept()
    statuses: dict[int, int] = {}
    with conn, conn.makefile("rwb") as stream:
        for line in stream:
            request = json.loads(line)
            if request["op"] == "spawn":
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(request, listener, conn)
                answer: dict[str, Any] = {"pid": pid}
            else:  # "status": the exit status of a node that ended, or null
                pid = int(request["pid"])
                if pid not in statuses:
                    with contextlib.suppress(ChildProcessError):
                        done, status = os.waitpid(pid, os.WNOHANG)
                        if done == pid:
                            statuses[pid] = os.waitstatus_to_exitcode(status)
                answer = {"returncode": statuses.get(pid)}
            stream.write(json.dumps(answer).encode() + b"\n")
            stream.flush()


# --- the test's side ------------------------------------------------------------------------


class _Zygote:
    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="lapor-zygote-")
        path = str(Path(self._dir) / "socket")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.zygote", path],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        if ready != READY:
            self.process.wait()
            raise RuntimeError(f"the test zygote did not start ({ready!r})")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(path)
        self._stream = self._sock.makefile("rwb")
        self._lock = threading.Lock()

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._stream.write(json.dumps(request).encode() + b"\n")
            self._stream.flush()
            answer: dict[str, Any] = json.loads(self._stream.readline())
            return answer

    def alive(self) -> bool:
        return self.process.poll() is None


_zygote: dict[int, _Zygote] = {}


def _the_zygote() -> _Zygote:
    """This process's zygote (one per pid: a forked test process makes its own)."""
    mine = _zygote.get(os.getpid())
    if mine is None or not mine.alive():
        mine = _zygote[os.getpid()] = _Zygote()
    return mine


class ForkedProcess:
    """A node forked by the zygote, as much of subprocess.Popen as tests use."""

    def __init__(self, zygote: _Zygote, pid: int, args: list[str]) -> None:
        self._zygote = zygote
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except OSError:  # exited and reaped already, or no pidfd here
            self._pidfd = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._zygote.ask({"op": "status", "pid": self.pid})["returncode"]
            if self.returncode is not None and self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else _now() + timeout
        while self.poll() is None:
            left = 0.05 if deadline is None else min(0.05, deadline - _now())
            if left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            # A pidfd turns readable once the process has exited (the zygote then reaps it).
            select.select([] if self._pidfd is None else [self._pidfd], [], [], left)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def _now() -> float:
    return time.monotonic()


def spawn_serve(args: list[str], log: Path) -> ForkedProcess:
    """`lapor-node ARGS` forked from this process's zygote, output appended to `log`."""
    zygote = _the_zygote()
    log.touch()  # there before this returns, as when the caller opens it for Popen
    request = {"op": "spawn", "args": args, "env": dict(os.environ), "cwd": str(Path.cwd())}
    request["log"] = str(log)
    pid = int(zygote.ask(request)["pid"])
    return ForkedProcess(zygote, pid, ["lapor-node", *args])


if __name__ == "__main__":
    _serve(sys.argv[1])
