"""Real nodes for tests: data directories made with `init`, linked with cards, and
`lapor-node serve` run as separate processes on loopback ports."""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from node.crypto.card import NodeCard
from node.crypto.signing import VerifyKey
from node.envelopes import OpenedAhead
from node.services import exchange, links
from node.services.context import NodeContext
from node.services.setup import init_node
from tests.support import zygote
from tests.support.cli import run_cli
from tests.support.waits import (
    COMMAND_BOUND,
    STOP_BOUND,
    TEST_FEDERATION,
    TEST_GRACE_SECONDS,
    wait_until,
)


def free_port() -> int:
    return free_ports(1)[0]


# Test ports come from below the kernel's ephemeral range (32768-60999 here): a port the
# kernel picked for `bind(0)` could be handed to any outgoing connection before the node
# bound it (a CI run lost a dashboard port that way). Each pytest-xdist worker takes its own
# slice, and walks it in turn, so two workers never pick the same port and one worker comes
# back to a port only after thousands of others.
_PORTS_LOW, _PORTS_HIGH = 20000, 32768
_SLICES = 4
_cursor: dict[str, int] = {}


def _slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) % _SLICES if worker.isdigit() else 0
    size = (_PORTS_HIGH - _PORTS_LOW) // _SLICES
    return range(_PORTS_LOW + index * size, _PORTS_LOW + (index + 1) * size)


def free_ports(n: int) -> list[int]:
    """`n` distinct loopback ports free now, from this worker's slice below the ephemeral
    range (each checked by binding it)."""
    ports = _slice()
    key = str(os.getpid())
    if key not in _cursor:  # processes of one worker (a bench, a forked test) start apart
        _cursor[key] = random.randrange(len(ports))
    chosen: list[int] = []
    for _ in range(len(ports)):
        port = ports[_cursor[key] % len(ports)]
        _cursor[key] += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == n:
            return chosen
    raise AssertionError(f"fewer than {n} free ports in {ports.start}-{ports.stop - 1}")


@dataclass
class TestNode:
    """One node: its directory, config, port, and (when serving) its process."""

    __test__ = False  # a helper, not a test class

    node_id: str
    name: str
    directory: Path
    port: int
    database_url: str
    process: subprocess.Popen[bytes] | zygote.ForkedProcess | None = None
    _ctx: NodeContext | None = field(default=None, repr=False)

    @property
    def config(self) -> Path:
        return self.directory / "node.yaml"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "serve.log"

    def ctx(self) -> NodeContext:
        if self._ctx is None:
            self._ctx = NodeContext.open(self.config)
        return self._ctx

    def card(self) -> NodeCard:
        return links.own_card(self.ctx())

    def cli(
        self, *args: str, check: bool = True, in_process: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `lapor-node ARGS --config <this node>` as an operator would (in this process
        unless `in_process=False`: tests/support/cli.py)."""
        result = run_cli([*args, "--config", str(self.config)], in_process=in_process)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def start(self, *, until_serving: bool = True) -> None:
        """Run `serve` and return once it says it serves (`node.started` in its log). Not
        merely once its port takes connections: gRPC listens from the moment the port is
        bound, before the node has opened its other ports, and a node that then stops on
        one of them (a port taken) would pass for a started one, leaving the test to
        time out on whatever it waits for next. A node that exits fails here with its log.
        `until_serving=False`: return once the port takes connections, for a node armed to
        crash, which may reach its fault point before it says it serves."""
        assert self.process is None or self.process.poll() is not None
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        args = ["serve", "--config", str(self.config)]
        if zygote.enabled():
            self.process = zygote.spawn_serve(args, self.log_path)
        else:
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "node.cli.main", *args],
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )

        def serving() -> bool:
            self.check_alive()
            if not until_serving:
                with socket.socket() as s:
                    return s.connect_ex(("127.0.0.1", self.port)) == 0
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return b'"node.started"' in f.read()

        wait_until(serving, timeout=COMMAND_BOUND, what=f"{self.node_id} to serve on {self.port}")

    def check_alive(self) -> None:
        """Fail with the node's log if its `serve` has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"{self.node_id} exited ({self.process.returncode}):\n{self.log_path.read_text()}"
            )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_BOUND) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.node_id} did not stop within {timeout}s") from None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None


def make_node(root: Path, node_id: str, name: str, database_url: str) -> TestNode:
    port, enrollment_port = free_ports(2)
    directory = root / node_id
    init_node(directory, node_id, name, listen=f"127.0.0.1:{port}", database_url=database_url)
    # Tests want quick reconnects and an idle poll that does not slow them down.
    node = TestNode(node_id, name, directory, port, database_url)
    fed = TEST_FEDERATION
    configure(node, reconnect_min_ms=fed.reconnect_min_ms, reconnect_max_ms=fed.reconnect_max_ms)
    text = node.config.read_text()
    text = text.replace("grace_seconds: 5", f"grace_seconds: {TEST_GRACE_SECONDS}")
    # A free enrollment port of its own (the default, the port after `listen`, may be another
    # test node's).
    text = text.replace(
        f'listen: "127.0.0.1:{port}"',
        f'listen: "127.0.0.1:{port}"\n  enrollment_listen: "127.0.0.1:{enrollment_port}"',
    )
    node.config.write_text(text)
    return node


def stop_together(*nodes: TestNode) -> None:
    """Stop `nodes`: each serving one is signalled first, then each is waited for, so their
    grace periods (open streams, the server's) pass together instead of one after another.
    (A second SIGTERM, from stop(), only sets `serve`'s stop event again.)"""
    for node in nodes:
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGTERM)
    for node in nodes:
        node.stop()


def configure(node: TestNode, **federation: int) -> None:
    """Set `federation.<key>: value` in `node`'s node.yaml (before it starts)."""
    text = node.config.read_text()
    for key, value in federation.items():
        text, n = re.subn(rf"(?m)^  {key}: \d+", f"  {key}: {value}", text)
        assert n == 1, f"federation.{key} not found in {node.config}"
    node.config.write_text(text)


def link(parent: TestNode, child: TestNode) -> None:
    """Pin each other's cards, as two operators would with `link add`."""
    links.add_link(parent.ctx(), child.card(), "child")
    enrollment = parent.ctx().config.server.enrollment_address
    links.add_link(child.ctx(), parent.card(), "parent", parent.address, enrollment)


WITNESS_TABLES = frozenset({"witnessed_logs", "cosignatures"})


def snapshot(node: TestNode) -> dict[str, object]:
    """Everything a refused message must leave unchanged: row counts of every table, the
    ledger's bytes, and each link's sequence counters. Not what this node witnessed of its
    peers' logs (WITNESS_TABLES): a running link cosigns the peer's checkpoints whenever
    they come, whatever else it refuses meanwhile."""
    from sqlalchemy import select, text

    from node.store.models import Base, LedgerEntryRow, Link

    state: dict[str, object] = {}
    with node.ctx().db.read() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in WITNESS_TABLES:
                continue
            state[table.name] = session.execute(
                text(f"SELECT count(*) FROM {table.name}")  # noqa: S608 - our own table names
            ).scalar_one()
        state["ledger"] = [
            r.entry
            for r in session.execute(select(LedgerEntryRow).order_by(LedgerEntryRow.idx)).scalars()
        ]
        state["links"] = [
            (link.peer_id, link.next_out_seq, link.last_in_seq)
            for link in session.execute(select(Link)).scalars()
        ]
    return state


def status_of(node: TestNode, tracking_id: str) -> tuple[str, str] | None:
    """(status, holder) of a complaint on `node`, or None if the node does not have it."""
    from node.errors import NotFoundError
    from node.services import complaints

    try:
        view = complaints.show(node.ctx(), tracking_id)
    except NotFoundError:
        return None
    return view.status, view.holder


def hand_over(
    sender: TestNode,
    receiver: TestNode,
    limit: int = 1000,
    held: int | None = None,
    *,
    ahead: bool = False,
) -> exchange.BatchResult:
    """Carry the sender's unacknowledged envelopes to the receiver in one batch, as a link
    session would (Hello state, witness proofs, acknowledgement), without the network;
    `held` (the size of the receiver's checkpoint the sender holds) asks the receiver for
    its responses ready to send (exchange.Outgoing); `ahead`: open the envelopes before
    the receiver's transaction, as a session does (node.envelopes.OpenedAhead)."""
    s_ctx, r_ctx = sender.ctx(), receiver.ctx()
    state = exchange.hello_state(r_ctx, s_ctx.node_id)
    exchange.check_peer_holds(s_ctx, state.held_checkpoint_size, state.held_checkpoint_root)
    rows, _ = exchange.pending(
        s_ctx, r_ctx.node_id, state.last_received, limit, state.held_checkpoint_size
    )
    deliveries = [d for _, d in rows]
    opened = None
    if ahead:
        opened = OpenedAhead.opening(
            [d.envelope for d in deliveries],
            peer=s_ctx.node_id,
            peer_key=VerifyKey(state.signing_key),
            me=r_ctx.node_id,
        )
    result = exchange.receive_batch(r_ctx, s_ctx.node_id, deliveries, held, opened)
    if result.committed_through:
        exchange.acknowledge(s_ctx, r_ctx.node_id, result.committed_through)
    return result


def carry(sender: TestNode, receiver: TestNode) -> int:
    """`hand_over` for a test that expects every envelope to be taken: a refused one fails
    the test; return how many were applied."""
    result = hand_over(sender, receiver)
    assert result.error is None, result.error
    return result.applied
