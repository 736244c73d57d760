"""How long a scheduler pass over N open complaints holds a node's database writer.

`serve` runs the scheduler (node.federation.periodic) as: `due_now` on a reader thread
(one streamed read over the open complaints, deadline arithmetic in Python, holding the
GIL the event loop also needs), then `run_due` on the node's ONE writer thread, which
every link commit (and the group writer, decision 0031) also waits for. While `run_due`
runs, no link commits: its duration is the stall a link sees. This bench makes a node
(fresh PostgreSQL database, or SQLite) holding N complaints received --age-days ago and
never verified (each has missed its verify deadline, so every one is due: reported as
late, and escalated where the lifecycle allows it), and times both halves, in-process,
with the same functions and the same threads' work `serve` does. Asserts nothing. Usage:
    python bench/scheduler_stall.py [--open 100000] [--database postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.referral_throughput import DRAFT, database_url, drop_databases  # noqa: E402
from node.clock import FixedClock  # noqa: E402
from node.services import complaints, scheduler  # noqa: E402
from node.services.context import NodeContext  # noqa: E402
from node.services.setup import init_node  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=100_000, help="open complaints held")
    parser.add_argument("--age-days", type=int, default=30)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lapor-sched-") as tmp:
        root = Path(tmp)
        (root / "node").mkdir()
        url = database_url(args.database, root, "node")
        try:
            config = init_node(root / "node", "id-64", "Provinsi", database_url=url)
            now = dt.datetime.now(dt.UTC)
            old = NodeContext.open(config, clock=FixedClock(now - dt.timedelta(args.age_days)))
            t0 = time.monotonic()
            for start in range(0, args.open, 2000):
                complaints.submit_many(old, [DRAFT] * min(2000, args.open - start))
            made_s = time.monotonic() - t0
            old.close()
            ctx = NodeContext.open(config)
            t0, c0 = time.monotonic(), time.process_time()
            listed = scheduler.due_now(ctx, now)
            list_s, list_cpu = time.monotonic() - t0, time.process_time() - c0
            t0 = time.monotonic()
            done = scheduler.run_due(ctx, listed, now)
            run_s = time.monotonic() - t0
            ctx.close()
        finally:
            drop_databases([url])
    print(f"{args.database}, {args.open} open complaints (load average {load:.1f} at start):")
    print(f"  made in {made_s:.0f} s")
    print(
        f"  due_now (reader thread): {len(listed)} due, {list_s:.1f} s "
        f"({list_cpu:.1f} s CPU under the GIL)"
    )
    print(
        f"  run_due (the writer thread, links wait): {run_s:.1f} s, "
        f"{run_s / max(1, len(listed)) * 1000:.2f} ms per complaint; late {len(done.overdue)}, "
        f"escalated {len(done.escalated)}, closed {len(done.closed)}"
    )


if __name__ == "__main__":
    main()
