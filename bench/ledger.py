"""Ledger benchmark: prints figures; never part of the test run.

    .venv/bin/python bench/ledger.py [--proof-size 1000000] [--skip-postgres]

1. durable append rate through node.services._ledger.record (batched: 500 entries per
   committed transaction; SQLite with synchronous=FULL, and PostgreSQL);
2. inclusion and consistency proof latency from the stored tree at --proof-size entries
   (the tree's nodes are bulk-inserted, not appended one by one: this measures proofs);
3. `audit verify` rate over an in-memory export, unsigned entries and signed referrals;
4. pymerkle's in-memory append and inclusion-proof rates, if pymerkle is importable.
Targets (issue 3): append >= 20,000/s batched on SQLite; a proof <= 5 ms at 1M; verify
>= 200,000 entries/s.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import create_engine, text

from node._proto.lapor.v1 import complaint_pb2, envelope_pb2, ledger_pb2
from node.clock import SystemClock
from node.crypto.signing import SigningKey
from node.envelopes import seal
from node.ids import new_message_id
from node.ledger.audit import ExportHeader, export_lines, verify_export, vkey_for
from node.ledger.checkpoint import Checkpoint
from node.ledger.merkle import Frontier, leaf_hash
from node.ledger.note import sign_checkpoint
from node.services._ledger import record
from node.store import tree
from node.store.db import Database

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NODE = "id-64"


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[Database]:
    if kind == "sqlite":
        db = Database(f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}")
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()
        return
    name = f"lapor_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    try:
        db.upgrade()
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def summary_entry(n: int) -> ledger_pb2.LedgerEntry:
    summary = complaint_pb2.ComplaintSummary(
        tracking_id=f"{NODE}.2026.{n:06d}",
        origin_node=NODE,
        classification=complaint_pb2.CLASSIFICATION_PENGADUAN,
        category="infrastruktur",
        region_code="64.02",
        channel=complaint_pb2.CHANNEL_WEB,
        content_commitment=hashlib.sha256(n.to_bytes(8, "big")).digest(),
    )
    summary.submitted_at.GetCurrentTime()
    return ledger_pb2.LedgerEntry(
        complaint_registered=ledger_pb2.ComplaintRegistered(complaint=summary)
    )


def bench_append(kind: str, tmp: Path, total: int, batch: int) -> float:
    ctx: Any = SimpleNamespace(node_id=NODE, clock=SystemClock())
    with database(kind, tmp) as db:
        start = time.perf_counter()
        done = 0
        while done < total:
            with db.write() as session:
                for _ in range(batch):
                    record(session, ctx, summary_entry(done))
                    done += 1
        return total / (time.perf_counter() - start)


def all_nodes(size: int) -> Iterator[tuple[int, int, bytes]]:
    frontier = Frontier()
    for i in range(size):
        yield from frontier.append(hashlib.sha256(b"\x00" + i.to_bytes(8, "big")).digest())


def bulk_load(db: Database, size: int) -> None:
    rows = all_nodes(size)
    if db.is_sqlite:
        import sqlite3

        conn = sqlite3.connect(db.url.removeprefix("sqlite:///"))
        conn.execute("PRAGMA synchronous=OFF")
        conn.executemany("INSERT INTO ledger_nodes (level, idx, hash) VALUES (?, ?, ?)", rows)
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(db.url.replace("postgresql+psycopg", "postgresql")) as conn:
        with (
            conn.cursor() as cur,
            cur.copy("COPY ledger_nodes (level, idx, hash) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        conn.execute("ANALYZE ledger_nodes")


def bench_proofs(kind: str, tmp: Path, size: int, samples: int) -> tuple[float, float, float]:
    with database(kind, tmp) as db:
        start = time.perf_counter()
        bulk_load(db, size)
        load = time.perf_counter() - start
        rng = random.Random(7)
        inc: list[float] = []
        con: list[float] = []
        with db.read() as session:
            tree.inclusion_proof(session, 0, size)  # warm the connection
            for _ in range(samples):
                index = rng.randrange(size)
                t = time.perf_counter()
                tree.inclusion_proof(session, index, size)
                inc.append(time.perf_counter() - t)
                old = rng.randrange(1, size)
                t = time.perf_counter()
                tree.consistency_proof(session, old, size)
                con.append(time.perf_counter() - t)
        return load, statistics.median(inc) * 1e3, statistics.median(con) * 1e3


def export_of(entries: list[bytes], key: SigningKey) -> list[str]:
    frontier = Frontier()
    for e in entries:
        frontier.append(leaf_hash(e))
    origin = f"lapor-node/{NODE}"
    note = sign_checkpoint(Checkpoint(origin, len(entries), frontier.root()), origin, key.ed25519)
    header = ExportHeader(
        NODE,
        vkey_for(NODE, key.public.raw),
        key.public.raw,
        len(entries),
        "2026-12-01T00:00:00+00:00",
    )
    rows = ((i, e, leaf_hash(e)) for i, e in enumerate(entries))
    return list(export_lines(header, rows, [(len(entries), note)]))


def bench_verify(count: int, signed: int) -> tuple[float, float]:
    key, peer = SigningKey.generate(), SigningKey.generate()
    plain = []
    for i in range(count):
        entry = summary_entry(i)
        entry.node_id = NODE
        plain.append(entry.SerializeToString())
    link = ledger_pb2.LedgerEntry(
        node_id=NODE,
        link_established=ledger_pb2.LinkEstablished(
            peer_id="id-64-02", role=ledger_pb2.PEER_ROLE_CHILD, peer_signing_key=peer.public.raw
        ),
    )
    sent = [link.SerializeToString()]
    for i in range(signed):
        env = envelope_pb2.Envelope(
            message_id=new_message_id(),
            sender=NODE,
            recipient="id-64-02",
            sequence=i + 1,
            referral=envelope_pb2.Referral(
                complaint=summary_entry(i).complaint_registered.complaint
            ),
        )
        env.sent_at.GetCurrentTime()
        sent.append(
            ledger_pb2.LedgerEntry(
                node_id=NODE, referral_sent=ledger_pb2.ReferralSent(envelope=seal(env, key))
            ).SerializeToString()
        )
    rates = []
    for entries in (plain, sent):
        lines = export_of(entries, key)
        start = time.perf_counter()
        verify_export(lines)
        rates.append(len(entries) / (time.perf_counter() - start))
    return rates[0], rates[1]


def bench_pymerkle(count: int) -> str:
    try:
        from pymerkle import InmemoryTree  # type: ignore[import-not-found]
    except ImportError:
        return "pymerkle not installed"
    t = InmemoryTree(algorithm="sha256")
    start = time.perf_counter()
    for i in range(count):
        t.append_entry(i.to_bytes(8, "big"))
    append = count / (time.perf_counter() - start)
    rng = random.Random(7)
    start = time.perf_counter()
    for _ in range(200):
        t.prove_inclusion(rng.randrange(1, count + 1), count)
    proof_ms = (time.perf_counter() - start) / 200 * 1e3
    return f"pymerkle in memory: append {append:,.0f} entries/s, inclusion proof {proof_ms:.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proof-size", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=5_000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    kinds = ["sqlite"] if args.skip_postgres else ["sqlite", "postgresql"]
    began = time.perf_counter()
    print(f"lapor-node ledger benchmark (python {sys.version.split()[0]})")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            rate = bench_append(kind, Path(tmp), args.appends, 500)
            print(f"append, {kind}, durable, 500 per transaction: {rate:,.0f} entries/s")
        for kind in kinds:
            load, inc, con = bench_proofs(kind, Path(tmp), args.proof_size, 200)
            print(
                f"proofs, {kind}, {args.proof_size:,} entries (tree bulk-loaded in "
                f"{load:.1f} s): inclusion {inc:.2f} ms, consistency {con:.2f} ms (median)"
            )
    plain, signed = bench_verify(200_000, 5_000)
    print(f"audit verify, unsigned entries: {plain:,.0f} entries/s")
    print(f"audit verify, signed referrals (one Ed25519 check each): {signed:,.0f} entries/s")
    print(bench_pymerkle(100_000))
    print(f"(ran in {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
