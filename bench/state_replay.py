"""State check benchmark: how fast `audit state` replays a ledger and compares the tables.

    .venv/bin/python bench/state_replay.py [--n 5000] [--database sqlite|postgresql] [--quick]

Builds a province and a regency with --n complaints registered at the province, referred
to the regency, accepted there (referral, receipt), and, for half of them, followed up and
resolved by the regency with the status updates carried back up: four ledger entries per
complaint at the province on average (registration, referral, receipt, half of them two
status updates), three at the regency (the referral; for half of them two status changes
and the two updates sent up). Envelopes are carried
between the two with node.services.exchange in process (no network), as a link session
would. Then times node.services.state_check.check_state on each node (the whole ledger
replayed and every complaint compared, one pass), the same in passes of --n/4 complaints
(the bounded-memory path a very large node takes), and check_recent (serve's start-up
check). Prints entries and complaints per second; asserts every check found nothing.
--quick uses 300 complaints, to try the script in well under a minute.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from node.complaints import ComplaintDraft  # noqa: E402
from node.ids import parse_node_id  # noqa: E402
from node.services import complaints, exchange, lifecycle, links, state_check  # noqa: E402
from node.services.context import NodeContext  # noqa: E402
from node.services.setup import init_node  # noqa: E402
from node.store import queries  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CHUNK = 500
DRAFT = ComplaintDraft(
    title="Jalan poros berlubang di km 12",
    description="Lubang besar di badan jalan.",
    classification="pengaduan",
    category="infrastruktur",
    region_code="64.02",
    channel="web",
    reporter_name="Nama Pelapor",
)


def database_url(kind: str, tmp: Path, name: str, made: list[str]) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / name / 'node.db'}"
    db = f"lapor_bench_{uuid.uuid4().hex[:10]}"
    with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    made.append(db)
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + db


def drop_databases(names: list[str]) -> None:
    if not names:
        return
    with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def carry(sender: NodeContext, receiver: NodeContext) -> None:
    """Every envelope the sender owes the receiver, in batches, as a link session would."""
    peer = parse_node_id(receiver.node_id)
    me = parse_node_id(sender.node_id)
    while True:
        state = exchange.hello_state(receiver, me)
        exchange.check_peer_holds(sender, state.held_checkpoint_size, state.held_checkpoint_root)
        rows, _ = exchange.pending(
            sender, peer, state.last_received, 1000, state.held_checkpoint_size
        )
        if not rows:
            return
        result = exchange.receive_batch(receiver, me, [d for _, d in rows], None)
        if result.error is not None:
            raise SystemExit(f"the receiver refused an envelope: {result.error}")
        exchange.acknowledge(sender, peer, result.committed_through)


def build(n: int, kind: str, tmp: Path, made: list[str]) -> tuple[NodeContext, NodeContext]:
    prov = init_node(
        tmp / "prov",
        "id-64",
        "Provinsi Kalimantan Timur",
        listen="127.0.0.1:7401",  # never served: the envelopes are carried in process
        database_url=database_url(kind, tmp, "prov", made),
    )
    reg = init_node(
        tmp / "reg",
        "id-64-02",
        "Kabupaten Kutai Kartanegara",
        listen="127.0.0.1:7403",
        database_url=database_url(kind, tmp, "reg", made),
    )
    p, r = NodeContext.open(prov), NodeContext.open(reg)
    links.add_link(p, links.own_card(r), "child")
    links.add_link(r, links.own_card(p), "parent", "127.0.0.1:7401")
    for start in range(0, n, CHUNK):
        ids = complaints.submit_many(p, [DRAFT] * min(CHUNK, n - start))
        complaints.refer_many(p, ids, "id-64-02")
        carry(p, r)
        carry(r, p)
        half = ids[: len(ids) // 2]
        if half:
            lifecycle.follow_up_many(r, half, "diperiksa di lapangan")
            lifecycle.resolve_many(r, half, "lubang sudah ditambal")
        carry(r, p)
    return p, r


def timed(fn: Callable[[], state_check.StateReport]) -> tuple[float, state_check.StateReport]:
    t0 = time.perf_counter()
    report = fn()
    return time.perf_counter() - t0, report


def bench(ctx: NodeContext, n: int) -> None:
    with ctx.db.read() as session:
        size = queries.ledger_size(session)
    print(f"  {ctx.node_id}: {size} ledger entries")
    runs = [
        ("full, one pass", lambda: state_check.check_state(ctx, record=False)),
        (
            f"full, passes of {max(1, n // 4)}",
            lambda: state_check.check_state(ctx, per_pass=max(1, n // 4), record=False),
        ),
        (f"recent {state_check.RECENT} (serve start)", lambda: state_check.check_recent(ctx)),
    ]
    for label, fn in runs:
        seconds, report = min((timed(fn) for _ in range(2)), key=lambda r: r[0])  # best of 2
        assert report.ok, [d.describe() for d in report.differences[:5]]
        print(
            f"    {label:32s} {seconds:7.2f} s  {report.entries / seconds:9,.0f} entries/s  "
            f"{report.complaints / seconds:8,.0f} complaints/s  "
            f"({report.complaints} complaints, {report.entries} entries read, "
            f"{report.passes} pass(es))"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="complaints")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="300 complaints")
    args = parser.parse_args()
    n = 300 if args.quick else args.n
    made: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            t0 = time.perf_counter()
            p, r = build(n, args.database, Path(tmpdir), made)
            print(f"{args.database}: {n} complaints built in {time.perf_counter() - t0:.1f} s")
            try:
                bench(p, n)
                bench(r, n)
            finally:
                p.close()
                r.close()
    finally:
        drop_databases(made)


if __name__ == "__main__":
    main()
