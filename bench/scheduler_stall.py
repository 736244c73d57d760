"""Link round trips while the scheduler passes over N open complaints: unsliced vs in slices.

Issue 18.4: the scheduler must not stall the links. A province and its regency run as real
`lapor-node serve` processes (mutual TLS, fresh databases: PostgreSQL on 127.0.0.1:5432, or
SQLite). The province runs with workflow.auto_escalate on. Two runs, one per mode, each
with fresh nodes, in this order:
  unsliced  the province's scheduler job as it was before the pass was sliced (up to
            commit 2cd5b16): the whole pass is ONE job on the node's one writer thread
            (`run_due` inside `DbWorkers.write`), so no link batch commits until it ends.
            Its transactions are today's slices (node.services.scheduler), so the pass
            itself costs what the sliced one costs; only the writer is held throughout;
  sliced    `serve` as shipped (node.federation.periodic): each slice read on a reader
            thread, then acted on in one write transaction; link batches queued for the
            writer commit between two slices.
Each run:
  1. the province refers --pool complaints to the regency, which accepts them;
  2. quiet: --trips round trips. One round trip: the regency follows up one of those
     complaints (its StatusUpdate goes up the link) and the clock runs from that commit
     until the province's row shows it, i.e. until the province's writer has committed
     the link's batch;
  3. the province stops, --open complaints received --age-days ago are made there (each
     has missed its verify deadline, so each is escalated), and the province starts
     again: its scheduler's first pass begins at start;
  4. during: round trips one after another (--gap apart) until the pass has logged its end
     (`complaints.scheduled`).
Printed per run: quiet and during p50, p99 and max (and how many trips), the pass's length
(from the province listening to its end line) and its cost per complaint; then the
sliced/unsliced ratios. The machine is shared: both runs are in one invocation, and the
load average at each start is printed. Asserts nothing. Usage:
    python bench/scheduler_stall.py [--open 100000] [--database postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.referral_throughput import DRAFT, database_url, drop_databases  # noqa: E402
from node.clock import FixedClock  # noqa: E402
from node.services import complaints, lifecycle, links, scheduler  # noqa: E402
from node.services.context import NodeContext  # noqa: E402
from node.store.models import Complaint  # noqa: E402
from tests.support.hostile import quantile  # noqa: E402
from tests.support.nodes import TestNode, link, make_node, status_of  # noqa: E402
from tests.support.waits import RECOVERY_BOUND, wait_until  # noqa: E402

POLL = 0.005  # between two looks at the province's row: the round trips' resolution
TRIP_TIMEOUT = 3600.0  # an unsliced pass may hold a trip this long

# `serve`, in the unsliced mode with the scheduler job it had before slicing: the whole
# pass as one job on the writer thread, logged as the shipped job logs it.
SERVE = """
import asyncio, sys
from node.federation import periodic
from node.services import scheduler

async def whole_pass_on_the_writer(self):
    while True:
        done = await self.db.write(scheduler.run_due, self.ctx, self.ctx.clock.now())
        self.log.info(
            "complaints.scheduled",
            closed=len(done.closed),
            escalated=len(done.escalated),
            failed=[t for t, _ in done.failed],
        )
        await asyncio.sleep(self.ctx.config.workflow.scheduler_interval_seconds)

if sys.argv[1] == "unsliced":
    periodic.PeriodicJobs.scheduler = whole_pass_on_the_writer
from node.cli.main import main
sys.argv = ["lapor-node", *sys.argv[2:]]
main()
"""


@dataclass
class Run:
    mode: str
    load: float
    quiet: list[float]
    during: list[float]
    pass_seconds: float
    slices: int | None
    escalated: int


def start(node: TestNode, mode: str) -> float:
    """Start `node`'s serve in `mode`; when it listens (monotonic)."""
    log = node.log_path.open("ab")
    node.process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVE,
            mode,
            "serve",
            "--config",
            str(node.config),
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
        cwd=ROOT,
    )
    log.close()

    def listening() -> bool:
        if node.process is not None and node.process.poll() is not None:
            raise SystemExit(f"{node.node_id} exited:\n{node.log_path.read_text()[-3000:]}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", node.port)) == 0

    wait_until(listening, timeout=120, what=f"{node.node_id} to listen")
    return time.monotonic()


def connected(regency: TestNode) -> None:
    wait_until(
        lambda: any(v.connected for v in links.list_links(regency.ctx())),
        timeout=RECOVERY_BOUND,
        what="the regency to connect",
    )


def count(ctx: NodeContext, status: str) -> int:
    with ctx.db.read() as session:
        return (
            session.scalar(
                select(func.count()).select_from(Complaint).where(Complaint.status == status)
            )
            or 0
        )


def trip(province: TestNode, regency: TestNode, tracking_id: str) -> float:
    """Follow up `tracking_id` at the regency; seconds until the province's row shows it."""
    lifecycle.follow_up(regency.ctx(), tracking_id, "sedang ditinjau")
    committed = time.monotonic()
    while time.monotonic() - committed < TRIP_TIMEOUT:
        if status_of(province, tracking_id) == ("in_progress", "id-64-02"):
            return time.monotonic() - committed
        time.sleep(POLL)
    raise SystemExit(f"{tracking_id}'s follow-up did not reach the province")


def pass_end(province: TestNode, since: int) -> tuple[dt.datetime, int, int | None] | None:
    """(time, escalated, slices) of the first `complaints.scheduled` line after byte
    `since` of the province's log, or None yet; a failed pass ends the bench."""
    with province.log_path.open("rb") as f:
        f.seek(since)
        for line in f:
            if b'"complaints.scheduler_failed"' in line:
                raise SystemExit(f"the province's scheduler pass failed: {line.decode()}")
            if b'"complaints.scheduled"' in line:
                event = json.loads(line)
                at = dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
                return at, int(event["escalated"]), event.get("slices")
    return None


def configure(province: TestNode) -> None:
    text = province.config.read_text()
    text = text.replace("auto_escalate: false", "auto_escalate: true", 1)
    text = text.replace("scheduler_interval_seconds: 300", "scheduler_interval_seconds: 86400", 1)
    province.config.write_text(text)


def run(args: argparse.Namespace, root: Path, mode: str) -> Run:
    load = os.getloadavg()[0]
    root.mkdir()
    urls = [database_url(args.database, root, n) for n in ("id-64", "id-64-02")]
    province = make_node(root, "id-64", "Provinsi Kalimantan Timur", urls[0])
    regency = make_node(root, "id-64-02", "Kabupaten Kutai Kartanegara", urls[1])
    try:
        link(province, regency)
        configure(province)
        start(province, mode)
        regency.start()
        connected(regency)
        p = province.ctx()
        pool = complaints.submit_many(p, [DRAFT] * args.pool)
        for first in range(0, len(pool), 500):
            complaints.refer_many(p, pool[first : first + 500], regency.node_id)
        wait_until(
            lambda: count(p, "accepted") == args.pool,
            timeout=600,
            what="the regency to accept the pool",
        )
        spare = iter(pool)
        quiet = [trip(province, regency, next(spare)) for _ in range(args.trips)]

        province.stop()
        now = dt.datetime.now(dt.UTC)
        old = NodeContext.open(province.config, clock=FixedClock(now - dt.timedelta(args.age_days)))
        for first in range(0, args.open, 2000):
            complaints.submit_many(old, [DRAFT] * min(2000, args.open - first))
        old.close()
        since = province.log_path.stat().st_size
        listening = start(province, mode)
        connected(regency)
        during: list[float] = []
        end = None
        while end is None:
            tracking_id = next(spare, None)
            if tracking_id is None:
                raise SystemExit("the pool ran out before the pass ended: raise --pool")
            during.append(trip(province, regency, tracking_id))
            time.sleep(args.gap)
            end = pass_end(province, since)
        at, escalated, slices = end
        # The log's wall clock, against the monotonic clock at which the province listened.
        wall_listening = dt.datetime.now(dt.UTC) - dt.timedelta(
            seconds=time.monotonic() - listening
        )
        pass_seconds = (at - wall_listening).total_seconds()
    finally:
        for node in (regency, province):
            node.close()
        drop_databases(urls)
    return Run(mode, load, quiet, during, pass_seconds, slices, escalated)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def report(r: Run, n: int) -> None:
    print(f"  {r.mode} (load average {r.load:.1f} at start):")
    for name, values in (("quiet", r.quiet), ("during the pass", r.during)):
        print(
            f"    {name:16} round trip p50 {ms(quantile(values, 0.5))}  p99 "
            f"{ms(quantile(values, 0.99))}  max {ms(max(values))}  ({len(values)} trips)"
        )
    slices = "" if r.slices is None else f" in {r.slices} slices"
    print(
        f"    pass: {r.pass_seconds:.1f} s from listening to its end line, "
        f"{r.pass_seconds / n * 1000:.2f} ms per complaint; escalated {r.escalated}{slices}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--open", type=int, default=100_000, help="open complaints (due)")
    parser.add_argument("--age-days", type=int, default=30)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--pool", type=int, default=3000, help="complaints for round trips")
    parser.add_argument("--trips", type=int, default=100, help="quiet round trips")
    parser.add_argument("--gap", type=float, default=0.05, help="seconds between trips")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lapor-sched-") as tmp:
        runs = [run(args, Path(tmp) / mode, mode) for mode in ("unsliced", "sliced")]
    print(
        f"scheduler pass over {args.open} open complaints ({args.database}), every one "
        f"escalated, slices of {scheduler.SLICE_COMPLAINTS}; round trip = a regency's "
        f"follow-up until the province committed it"
    )
    for r in runs:
        report(r, args.open)
    before, after = runs
    print(
        f"  sliced/unsliced: during-pass p99 "
        f"{quantile(after.during, 0.99) / quantile(before.during, 0.99):.3f}x, "
        f"max {max(after.during) / max(before.during):.3f}x, pass length "
        f"{after.pass_seconds / before.pass_seconds:.2f}x; during/quiet p99 sliced "
        f"{quantile(after.during, 0.99) / quantile(after.quiet, 0.99):.2f}x, unsliced "
        f"{quantile(before.during, 0.99) / quantile(before.quiet, 0.99):.2f}x"
    )


if __name__ == "__main__":
    main()
