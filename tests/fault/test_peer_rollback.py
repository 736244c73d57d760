"""A node whose database was rolled back, cut back consistently or rewritten (its signing
fence removed, so it starts) meets its honest peer: the honest side records the evidence its
peer's Hello shows (ledger entry, suspended link, critical log line, fork metric), and the
tampered side says its own history is contradicted (link error, critical line, metric),
whichever side of the link was tampered (node.services.peer_evidence)."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from node._proto.lapor.v1 import ledger_pb2
from node.ledger.verify import verify_export
from node.services import audit, checkpoints, exchange, fence
from node.services._ledger import record
from node.services.context import NodeContext
from node.store import queries
from tests.fault.conftest import Link
from tests.support.nodes import TestNode, free_ports
from tests.support.waits import recovery_bound, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

Tamper = Callable[[TestNode, "Rounds"], None]


@dataclass
class Rounds:
    """What the honest side held of the tampered side's log after each round of referrals,
    and the tampered side's database file after the first (SQLite)."""

    held_first: int
    held_second: int
    copy: Path | None


# Tampering, as an intruder with database access and the node's files ------------------


def _sql(ctx: NodeContext, *statements: str, **params: object) -> None:
    """Run `statements` past the ledger tables' insert-only triggers."""
    tables = ("ledger_entries", "ledger_nodes", "checkpoints", "ledger_trust_entries")
    with ctx.db.write() as session:
        if ctx.db.is_sqlite:
            for table in tables:
                session.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
        else:
            for table in tables:
                session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER ALL"))
        for statement in statements:
            session.execute(text(statement), params)


def _copy_sqlite(source: str, target: str) -> None:
    """Copy one SQLite database over another through SQLite (its WAL included)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def _sqlite_path(node: TestNode) -> str:
    return node.database_url.removeprefix("sqlite:///")


def roll_back(node: TestNode, rounds: Rounds) -> None:
    """The database file restored from the copy taken after the first round."""
    assert rounds.copy is not None
    node.close()
    _copy_sqlite(str(rounds.copy), _sqlite_path(node))


def cut_back(node: TestNode, rounds: Rounds) -> None:
    """The ledger cut back to the checkpoint the peer held after the first round: entries,
    tree nodes and checkpoints past it deleted, the head set back; the rest kept."""
    size = rounds.held_first
    _sql(
        node.ctx(),
        "DELETE FROM ledger_entries WHERE idx >= :size",
        "DELETE FROM ledger_trust_entries WHERE idx >= :size",
        "DELETE FROM ledger_nodes WHERE ((idx + 1) << level) > :size",
        "DELETE FROM checkpoints WHERE size > :size",
        "UPDATE ledger_head SET size = :size",
        size=size,
    )
    node.close()


def rewrite(node: TestNode, rounds: Rounds) -> None:
    """The ledger rebuilt with the entries the peer holds, each recorded again (another
    time, so other leaves), and signed at the size the peer holds with the node's key."""
    ctx = node.ctx()
    with ctx.db.read() as session:
        kept = [
            ledger_pb2.LedgerEntry.FromString(row.entry)
            for row in queries.iter_ledger(session)
            if row.idx < rounds.held_second
        ]
    _sql(
        ctx,
        "DELETE FROM ledger_entries",
        "DELETE FROM ledger_trust_entries",
        "DELETE FROM ledger_nodes",
        "DELETE FROM cosignatures",  # witnesses' lines on the checkpoints rewritten away
        "DELETE FROM checkpoints",
        "UPDATE ledger_head SET size = 0",
    )
    with ctx.db.write() as session:
        for entry in kept:
            record(session, ctx, entry)
    fence.fence_path(ctx.config).unlink()
    signed, _ = checkpoints.sign(ctx)
    assert signed.size == rounds.held_second
    node.close()


# The pair -------------------------------------------------------------------------------


@pytest.fixture
def watched(link: Link) -> Iterator[tuple[Link, dict[str, int]]]:
    """The fault suite's pair, each node serving /metrics on a port of its own."""
    ports = dict(zip((link.parent.node_id, link.child.node_id), free_ports(2), strict=True))
    for node in link.nodes:
        config = node.config.read_text().replace(
            'metrics:\n  listen: ""', f'metrics:\n  listen: "127.0.0.1:{ports[node.node_id]}"'
        )
        assert f"127.0.0.1:{ports[node.node_id]}" in config
        node.config.write_text(config)
    yield link, ports


def _held(holder: TestNode, of: TestNode) -> int:
    return exchange.hello_state(holder.ctx(), of.ctx().node_id).held_checkpoint_size


def _run_rounds(link: Link, honest: TestNode, tampered: TestNode) -> Rounds:
    """Two rounds of referrals, each settled; a copy of the tampered side's SQLite file
    between them."""
    first = link.refer(2)
    link.settle(first)
    held_first = _held(honest, tampered)
    copy = None
    if tampered.database_url.startswith("sqlite:///"):
        copy = tampered.directory / "yesterday.db"
        _copy_sqlite(_sqlite_path(tampered), str(copy))
    link.settle(first + link.refer(2, start=2))
    held_second = _held(honest, tampered)
    assert 0 < held_first < held_second
    return Rounds(held_first, held_second, copy)


def _forks(ctx: NodeContext) -> list[tuple[int, ledger_pb2.PeerForkDetected]]:
    found = []
    with ctx.db.read() as session:
        for row in queries.iter_ledger(session):
            entry = ledger_pb2.LedgerEntry.FromString(row.entry)
            if entry.WhichOneof("kind") == "peer_fork_detected":
                found.append((row.idx, entry.peer_fork_detected))
    return found


def _link_row(node: TestNode, peer: str) -> dict[str, object]:
    rows = json.loads(node.cli("link", "list", "--json").stdout)
    (row,) = [r for r in rows if r["peer_id"] == peer]
    return dict(row)


def _metric(port: int, peer: str, kind: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    pattern = r"^lapor_node_peer_forks_total\{([^}]*)\} (\S+)$"
    for labels, value in re.findall(pattern, body, re.M):
        if f'peer="{peer}"' in labels and f'kind="{kind}"' in labels:
            return float(value)
    return None


def _critical(node: TestNode, event: str) -> list[dict[str, object]]:
    lines = []
    for line in node.log_path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        data = json.loads(line)
        if data.get("event") == event and data.get("level") == "critical":
            lines.append(data)
    return lines


CASES = {
    "child-rolled-back": ("child", roll_back, ledger_pb2.FORK_KIND_ROLLBACK),
    "child-cut-back": ("child", cut_back, ledger_pb2.FORK_KIND_ROLLBACK),
    "child-rewritten": ("child", rewrite, ledger_pb2.FORK_KIND_SAME_SIZE),
    "parent-rolled-back": ("parent", roll_back, ledger_pb2.FORK_KIND_ROLLBACK),
    "parent-rewritten": ("parent", rewrite, ledger_pb2.FORK_KIND_SAME_SIZE),
}
KIND_NAMES = {
    ledger_pb2.FORK_KIND_ROLLBACK: "rollback",
    ledger_pb2.FORK_KIND_SAME_SIZE: "same-size",
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_honest_side_records_what_the_hello_shows(
    watched: tuple[Link, dict[str, int]], db_kind: str, case: str
) -> None:
    """Either side tampered: the other records fork or rollback evidence, suspends the link
    and says so; the tampered one refuses and says its own history is contradicted."""
    link, ports = watched
    side, tamper, kind = CASES[case]
    if tamper is roll_back and db_kind != "sqlite":
        pytest.skip("restoring a database file from a copy is the SQLite case")
    tampered, honest = (link.child, link.parent) if side == "child" else link.nodes
    for node in link.nodes:
        link.start(node)
    rounds = _run_rounds(link, honest, tampered)
    tampered.stop()
    tamper(tampered, rounds)
    fence_file = fence.fence_path(tampered.ctx().config)
    fence_file.unlink(missing_ok=True)  # the intruder removes it, so the node starts
    tampered.close()
    link.start(tampered)
    peer, other = tampered.node_id, honest.node_id

    # The honest side: one evidence entry, verifiable by an auditor; the link suspended.
    wait_until(lambda: _forks(honest.ctx()), timeout=recovery_bound(), what="fork evidence")
    ((index, evidence),) = _forks(honest.ctx())
    assert evidence.peer_id == peer and evidence.kind == kind
    out = io.StringIO()
    audit.export(honest.ctx(), out)
    verify_export(out.getvalue().splitlines(keepends=True), trusted_vkey=None)
    row = _link_row(honest, peer)
    assert row["suspended_by_entry"] == index
    assert f"ledger entry {index}" in str(row["last_error"])
    assert _metric(ports[other], peer, KIND_NAMES[kind]) == 1
    (line,) = _critical(honest, "peer.fork_detected")
    assert line["peer"] == peer and line["kind"] == KIND_NAMES[kind]
    assert line["held_size"] == rounds.held_second
    assert {"held_root", "presented_size", "presented_root"} <= line.keys()

    # The tampered side: refuses, names its own contradicted history, appends nothing.
    def tampered_reported() -> bool:
        return "own-history" in str(_link_row(tampered, other)["last_error"])

    wait_until(tampered_reported, timeout=recovery_bound(), what="the tampered side's error")
    assert _forks(tampered.ctx()) == []
    assert _metric(ports[peer], other, "own-history") == 1
    (own,) = _critical(tampered, "ledger.history_contradicted")
    assert own["peer"] == other and own["kind"] == "own-history"
    assert own["held_size"] == rounds.held_second
    assert len(_forks(honest.ctx())) == 1
    assert len(_critical(honest, "peer.fork_detected")) == 1
