"""Ledger benchmark: prints figures, each beside a baseline measured in the same run.

    .venv/bin/python bench/ledger.py [--size 1000000] [--skip-postgres] [--quick]

1. Durable append (SQLite with synchronous=FULL, and PostgreSQL; every transaction
   committed): record_many() with --batch entries per call and transaction, against
   record() called once per entry with the same entries per transaction. The entries are
   built before the clock starts; the figure covers stamping, serialising, hashing, the
   tree nodes, the inserts and the commits. Median of --runs runs.
2. A --size-entry ledger on each database, appended with record_many (10,000 entries per
   transaction, a checkpoint signed every 100,000), for sections 3 to 5.
3. pymerkle 7 (InmemoryTree, sha256: RFC 6962's 0x00 and 0x01 prefixes) beside
   lapor-node's in-memory MemoryTree over the same entries: roots compared (asserted),
   append rate, inclusion proofs.
4. Inclusion and consistency proofs from the stored tree at --size entries, against
   pymerkle's in-memory proofs.
5. `audit verify` (node.ledger.audit.verify_export) of real exports written by
   node.services.audit.export to a file and read back as the CLI does: the SQLite ledger
   of section 2 (plain complaint_registered entries), and a ledger whose entries nearly all
   carry a SignedEnvelope (one Ed25519 verification each). Baseline: the same file with
   its entry lines re-spaced on the fly, which sends every line down the general path
   (json.loads per line), the path every line took before the fast path existed.
Targets (issue 3): append >= 20,000 entries/s batched on SQLite; a proof <= 5 ms at 1M
entries; verify >= 200,000 entries/s.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node._proto.lapor.v1 import complaint_pb2, envelope_pb2, ledger_pb2  # noqa: E402
from node.clock import SystemClock  # noqa: E402
from node.crypto.signing import SigningKey  # noqa: E402
from node.envelopes import seal  # noqa: E402
from node.ids import new_message_id  # noqa: E402
from node.ledger.audit import verify_export  # noqa: E402
from node.ledger.merkle import MemoryTree, leaf_hash  # noqa: E402
from node.services import audit, checkpoints  # noqa: E402
from node.services._ledger import record, record_many  # noqa: E402
from node.store import tree  # noqa: E402
from node.store.db import Database  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NODE, PEER = "id-64", "id-64-02"
BUILD_BATCH = 10_000
CHECKPOINT_EVERY = 100_000
PROOF_SAMPLES = 200


# --- setup --------------------------------------------------------------------------------


@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[Database]:
    """A fresh, migrated database: a SQLite file, or a throwaway PostgreSQL database."""
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


def context(db: Database, key: SigningKey) -> Any:
    """What record(), checkpoints and the export read from a NodeContext."""
    return SimpleNamespace(node_id=NODE, clock=SystemClock(), signing_key=key, db=db)


def summary_entry(n: int) -> ledger_pb2.LedgerEntry:
    """A complaint_registered entry, the ledger's most common kind (about 150 bytes)."""
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


def referral_entry(n: int, key: SigningKey) -> ledger_pb2.LedgerEntry:
    """A referral_sent entry: a sealed envelope, verified with Ed25519 by `audit verify`."""
    env = envelope_pb2.Envelope(
        message_id=new_message_id(),
        sender=NODE,
        recipient=PEER,
        sequence=n + 1,
        referral=envelope_pb2.Referral(complaint=summary_entry(n).complaint_registered.complaint),
    )
    env.sent_at.GetCurrentTime()
    return ledger_pb2.LedgerEntry(referral_sent=ledger_pb2.ReferralSent(envelope=seal(env, key)))


def build(ctx: Any, entries: Callable[[int], ledger_pb2.LedgerEntry], size: int) -> float:
    """Append `size` entries with record_many, signing checkpoints on the way; seconds."""
    start = time.perf_counter()
    for first in range(0, size, BUILD_BATCH):
        last = min(size, first + BUILD_BATCH)
        with ctx.db.write() as session:
            record_many(session, ctx, [entries(n) for n in range(first, last)])
            if last % CHECKPOINT_EVERY == 0 or last == size:
                checkpoints.sign_in(session, ctx)
    return time.perf_counter() - start


def export_to(ctx: Any, path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        audit.export(ctx, out)


# --- reporting ----------------------------------------------------------------------------


def line(label: str, value: float, unit: str, base_label: str, base: float, *, higher: bool) -> str:
    """`label: value unit | baseline: base unit | ratio`, the ratio > 1 when we do better."""
    ratio = value / base if higher else base / value
    return (
        f"  {label}: {_num(value)} {unit}\n"
        f"    baseline, {base_label}: {_num(base)} {unit}\n"
        f"    ratio: {ratio:.2f}x {'faster' if ratio >= 1 else 'slower'} than the baseline"
    )


def _num(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3f}"


def ms(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return statistics.median(ordered) * 1e3, p95 * 1e3, ordered[-1] * 1e3


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


# --- 1. append ----------------------------------------------------------------------------


def appends(db: Database, ctx: Any, entries: list[ledger_pb2.LedgerEntry], batch: int) -> float:
    """Entries/s through record_many, `batch` per call and transaction."""
    start = time.perf_counter()
    for first in range(0, len(entries), batch):
        with db.write() as session:
            record_many(session, ctx, entries[first : first + batch])
    return len(entries) / (time.perf_counter() - start)


def single_appends(
    db: Database, ctx: Any, entries: list[ledger_pb2.LedgerEntry], batch: int
) -> float:
    """Entries/s through record(), one call per entry, `batch` per transaction."""
    start = time.perf_counter()
    for first in range(0, len(entries), batch):
        with db.write() as session:
            for entry in entries[first : first + batch]:
                record(session, ctx, entry)
    return len(entries) / (time.perf_counter() - start)


def bench_append(kind: str, tmp: Path, args: argparse.Namespace) -> float:
    key = SigningKey.generate()
    with database(kind, tmp) as db:
        ctx = context(db, key)
        base = single_appends(db, ctx, [summary_entry(n) for n in range(args.single)], args.batch)
        runs = []
        for _ in range(args.runs):
            entries = [summary_entry(n) for n in range(args.appends)]
            runs.append(appends(db, ctx, entries, args.batch))
    rate = statistics.median(runs)
    print(
        line(
            f"{kind}, record_many, {args.batch:,} entries per call and transaction "
            f"(median of {args.runs} runs of {args.appends:,}: "
            + ", ".join(_num(r) for r in runs)
            + ")",
            rate,
            "entries/s",
            f"record() once per entry, {args.batch:,} per transaction ({args.single:,} entries)",
            base,
            higher=True,
        )
    )
    return rate


# --- 2. proofs ----------------------------------------------------------------------------


def proof_latencies(db: Database, size: int) -> tuple[list[float], list[float]]:
    rng = random.Random(7)
    inclusion: list[float] = []
    consistency: list[float] = []
    with db.read() as session:
        tree.inclusion_proof(session, 0, size)  # warm the connection
        for _ in range(PROOF_SAMPLES):
            index = rng.randrange(size)
            start = time.perf_counter()
            tree.inclusion_proof(session, index, size)
            inclusion.append(time.perf_counter() - start)
            old = rng.randrange(1, size)
            start = time.perf_counter()
            tree.consistency_proof(session, old, size)
            consistency.append(time.perf_counter() - start)
    return inclusion, consistency


def pymerkle_latencies(pm: Any, size: int) -> tuple[list[float], list[float]]:
    rng = random.Random(7)
    inclusion: list[float] = []
    consistency: list[float] = []
    for _ in range(PROOF_SAMPLES):
        index = rng.randrange(size)
        start = time.perf_counter()
        pm.prove_inclusion(index + 1, size)  # pymerkle counts leaves from 1
        inclusion.append(time.perf_counter() - start)
        old = rng.randrange(1, size)
        start = time.perf_counter()
        pm.prove_consistency(old, size)
        consistency.append(time.perf_counter() - start)
    return inclusion, consistency


def print_proofs(kind: str, ours: tuple[list[float], ...], pm: tuple[list[float], ...]) -> None:
    for name, mine, theirs in zip(("inclusion", "consistency"), ours, pm, strict=True):
        med, p95, worst = ms(mine)
        pm_med, pm_p95, _ = ms(theirs)
        print(
            f"  {kind}, {name} proof: median {med:.2f} ms, p95 {p95:.2f} ms, max {worst:.2f} ms "
            f"({PROOF_SAMPLES} random proofs in one read transaction)\n"
            f"    baseline, pymerkle in memory: median {pm_med:.3f} ms, p95 {pm_p95:.3f} ms\n"
            f"    ratio: {med / pm_med:.1f}x slower than the baseline (a database query against "
            "RAM)"
        )


# --- 3. audit verify ----------------------------------------------------------------------


def respaced(lines: Iterable[str]) -> Iterator[str]:
    """The same export with a space after `"index":`: valid JSON that the fast path does not
    take, so each line goes through json.loads and the general checks."""
    for raw in lines:
        yield raw.replace('"index":', '"index": ', 1)


def verify_rate(path: Path, general: bool) -> tuple[float, float]:
    """(entries/s by the wall clock, entries/s by this process's CPU time)."""
    with path.open(encoding="utf-8") as f:
        lines: Iterable[str] = respaced(f) if general else f
        start, cpu = time.perf_counter(), time.process_time()
        report = verify_export(lines)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        return report.entries / wall, report.entries / cpu


def bench_verify(label: str, path: Path, entries: int) -> float:
    rate, rate_cpu = verify_rate(path, general=False)
    base, base_cpu = verify_rate(path, general=True)
    print(
        line(
            f"{label}: {entries:,} entries, {path.stat().st_size / 1e6:,.0f} MB file",
            rate,
            "entries/s",
            "general path (json.loads per line; lines re-spaced on the fly)",
            base,
            higher=True,
        )
    )
    print(
        f"    by CPU time instead (the CPUs are shared): {rate_cpu:,.0f} against "
        f"{base_cpu:,.0f} entries/s, {rate_cpu / base_cpu:.2f}x"
    )
    return rate


# --- 4. pymerkle --------------------------------------------------------------------------


def bench_pymerkle(db: Database, size: int) -> Any:
    """pymerkle's and our in-memory trees over the ledger's entries; roots compared."""
    from pymerkle import InmemoryTree  # type: ignore[import-not-found]

    with db.read() as session:
        entries = [bytes(e) for _, e, _ in tree.iter_entries_with_leaves(session, chunk=20_000)]
        stored_root = tree.root(session, size)
        stored_proofs = [(i, tree.inclusion_proof(session, i, size)) for i in (0, size // 3)]
    pm = InmemoryTree(algorithm="sha256")  # security on: leaf 0x00, node 0x01 prefixes
    assert (pm.algorithm, pm.leaf_prefix, pm.node_prefix) == ("sha256", b"\x00", b"\x01")
    start = time.perf_counter()
    for entry in entries:
        pm.append_entry(entry)
    pm_rate = size / (time.perf_counter() - start)
    ours = MemoryTree()
    start = time.perf_counter()
    for entry in entries:
        ours.append(leaf_hash(entry))
    our_rate = size / (time.perf_counter() - start)
    sizes = sorted({1, 2, 3, 7, 1000, 12_345, size - 1, size} & set(range(1, size + 1)))
    for n in sizes:
        assert pm.get_root(n) == ours.root(n), f"roots differ at size {n}"
    assert pm.get_root() == stored_root == ours.root()
    for i, path in stored_proofs:
        assert pm.prove_inclusion(i + 1, size).path[1:] == path == ours.inclusion_proof(i, size)
    print(
        "  pymerkle InmemoryTree(algorithm='sha256'): leaf = SHA-256(0x00 || entry), node = "
        "SHA-256(0x01 || left || right), as RFC 6962\n"
        f"  same roots: pymerkle == lapor-node stored tree == MemoryTree at sizes "
        f"{', '.join(f'{n:,}' for n in sizes)} (asserted); root at {size:,}: "
        f"{stored_root.hex()[:16]}...; inclusion paths equal (asserted)"
    )
    print(
        line(
            f"lapor-node MemoryTree.append, in memory, {size:,} entries (leaf hash included)",
            our_rate,
            "entries/s",
            "pymerkle InmemoryTree.append_entry, same entries",
            pm_rate,
            higher=True,
        )
    )
    rng = random.Random(3)
    ours_ms, pm_ms = [], []
    for _ in range(PROOF_SAMPLES):
        i = rng.randrange(size)
        start = time.perf_counter()
        ours.inclusion_proof(i, size)
        ours_ms.append(time.perf_counter() - start)
        start = time.perf_counter()
        pm.prove_inclusion(i + 1, size)
        pm_ms.append(time.perf_counter() - start)
    print(
        line(
            f"lapor-node MemoryTree inclusion proof at {size:,}, median",
            statistics.median(ours_ms) * 1e3,
            "ms",
            "pymerkle prove_inclusion, same indexes",
            statistics.median(pm_ms) * 1e3,
            higher=False,
        )
    )
    return pm


# --- main ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="entries for proofs/verify")
    parser.add_argument("--appends", type=int, default=50_000, help="entries per append run")
    parser.add_argument("--runs", type=int, default=3, help="append runs (median printed)")
    parser.add_argument("--single", type=int, default=2_000, help="entries for record()")
    parser.add_argument("--batch", type=int, default=1_000, help="entries per record_many")
    parser.add_argument("--signed", type=int, default=10_000, help="entries with envelopes")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the bench")
    args = parser.parse_args()
    if args.quick:
        args.size, args.appends, args.single, args.signed = 30_000, 5_000, 500, 500
    kinds = ["sqlite"] if args.skip_postgres else ["sqlite", "postgresql"]
    began = time.perf_counter()
    print(
        f"lapor-node ledger benchmark: python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, {platform.machine()}, {load()}"
    )
    print("Rates are wall-clock; each figure is printed above its same-run baseline.")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)

        print("\n1. Durable append (SQLite synchronous=FULL, WAL; every transaction committed)")
        for kind in kinds:
            results[f"append {kind}"] = bench_append(kind, tmp, args)

        print(f"\n2. Ledgers of {args.size:,} entries for proofs and verification")
        key = SigningKey.generate()
        with contextlib.ExitStack() as stack:
            built: dict[str, tuple[Database, float]] = {}
            for kind in kinds:
                db = stack.enter_context(database(kind, tmp))
                seconds = build(context(db, key), summary_entry, args.size)
                built[kind] = (db, seconds)
                print(
                    f"  {kind}: appended with record_many, {BUILD_BATCH:,} per transaction and "
                    f"a checkpoint every {CHECKPOINT_EVERY:,}, in {seconds:.0f} s "
                    f"({args.size / seconds:,.0f} entries/s, building the entries included)"
                )
            sqlite_db = built["sqlite"][0]

            print(f"\n3. pymerkle {_pymerkle_version()} beside lapor-node, in memory ({load()})")
            pm = bench_pymerkle(sqlite_db, args.size)
            pm_latency = pymerkle_latencies(pm, args.size)

            print(f"\n4. Proofs from the stored tree at {args.size:,} entries ({load()})")
            for kind, (db, _) in built.items():
                latencies = proof_latencies(db, args.size)
                print_proofs(kind, latencies, pm_latency)
                results[f"proof {kind}"] = max(ms(latencies[0])[0], ms(latencies[1])[0])
                results[f"proof p95 {kind}"] = max(ms(latencies[0])[1], ms(latencies[1])[1])
            del pm, pm_latency

            print(f"\n5. audit verify of exports read from a file ({load()})")
            plain = tmp / "plain.jsonl"
            export_to(context(sqlite_db, key), plain)
        results["verify plain"] = bench_verify(
            "plain entries (complaint_registered), the SQLite ledger of section 2",
            plain,
            args.size,
        )
        plain.unlink()
        with database("sqlite", tmp) as db:
            ctx = context(db, key)
            peer = SigningKey.generate()
            link = ledger_pb2.LedgerEntry(
                link_established=ledger_pb2.LinkEstablished(
                    peer_id=PEER,
                    role=ledger_pb2.PEER_ROLE_CHILD,
                    peer_signing_key=peer.public.raw,
                )
            )
            with db.write() as session:
                record(session, ctx, link)
            build(ctx, lambda n: referral_entry(n, key), args.signed)
            signed = tmp / "signed.jsonl"
            export_to(ctx, signed)
        results["verify signed"] = bench_verify(
            "1 link_established, then referral_sent entries, each with a SignedEnvelope "
            "(one Ed25519 verification each)",
            signed,
            args.signed + 1,
        )
        print("  The 200,000 entries/s target is measured on the plain-entry export.")

    print(f"\nTargets ({load()}):")
    _target("append, batched, SQLite", results["append sqlite"], ">=", 20_000, "entries/s")
    for kind in kinds:
        for which in ("median", "p95"):
            key = f"proof {kind}" if which == "median" else f"proof p95 {kind}"
            _target(
                f"proof at {args.size:,}, {kind}, {which} (the slower of inclusion and "
                "consistency)",
                results[key],
                "<=",
                5,
                "ms",
            )
    _target("audit verify, plain entries", results["verify plain"], ">=", 200_000, "entries/s")
    print(f"(ran in {time.perf_counter() - began:.0f} s)")


def _target(name: str, value: float, op: str, goal: float, unit: str) -> None:
    met = value >= goal if op == ">=" else value <= goal
    verdict = "met" if met else "NOT met"
    print(f"  {name}: {_num(value)} {unit} (target {op} {goal:,} {unit}): {verdict}")


def _pymerkle_version() -> str:
    import pymerkle  # type: ignore[import-not-found]

    return str(pymerkle.__version__)


if __name__ == "__main__":
    main()
