"""Failover of a province served by two `serve` processes on a Patroni cluster.

The province (PostgreSQL: three members under Patroni, synchronous_mode_strict, brought up
by scripts/ha-cluster, reached through a libpq multi-host URL) runs two `serve` processes
from two copies of its data directory; two regencies (SQLite) dial it through a round-robin
balancer each (tests/support/ha.py), as through a TCP load balancer. While the province
refers complaints down and the regencies send status updates up, each fault strikes in turn:
  a  SIGKILL the leading `serve` (restarted afterwards, as a standby);
  b  SIGKILL the PostgreSQL primary (its Patroni and its postmaster; the member rejoins);
  c  both at once;
  d  SIGSTOP the leading `serve` until the other took over, then SIGCONT it.
After each fault the load stops, the tree settles, and it prints:
  failover: the seconds until the other `serve` led (a, c, d) and until the database took
            writes again (b, c: a commit on a new connection, through the synchronous
            standby),
  lost: N, duplicated: N (tests/fault/invariants.py: outboxes against inboxes and ledgers),
  forks: N (a checkpoint the province signed, in its database or in either host's fence
            file, whose root is not its ledger's at that size; a regency's link suspended
            for fork evidence),
  ledgers verified: yes|no, reconciled: yes|no (`audit verify` and `audit reconcile` of
            every ledger's export, as an auditor runs them).
Targets: 0, 0, 0, yes, yes; `serve` failover <= 10 s (after the database took writes
again, for b and c), database <= 30 s. The exit status is 0 only if every fault met them
(with --no-timing-targets, the first five only).

Usage (from the repository root, as root or the cluster's owner; a few minutes):
    python bench/failover.py [--faults abcd] [--load-seconds 4] [--keep-cluster]
                             [--no-timing-targets]
Environment: LAPOR_HA_DIR and LAPOR_HA_PORT_BASE choose the cluster (scripts/ha-cluster).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from node.services import complaints, fence, lifecycle, links  # noqa: E402
from node.services.context import NodeContext  # noqa: E402
from node.store import tree  # noqa: E402
from node.store.models import CheckpointRow  # noqa: E402
from tests.fault.conftest import draft  # noqa: E402
from tests.fault.invariants import Tally, check_tree, quiet  # noqa: E402
from tests.support.ha import Balancer, leader_pid, standby_of  # noqa: E402
from tests.support.nodes import TestNode, make_node  # noqa: E402

CLUSTER = ROOT / "scripts" / "ha-cluster"
SERVE_TARGET = 10.0
DATABASE_TARGET = 30.0
SETTLE_SECONDS = 180.0
FAULTS = {
    "a": "SIGKILL the leading serve",
    "b": "SIGKILL the PostgreSQL primary",
    "c": "SIGKILL the leading serve and the PostgreSQL primary",
    "d": "SIGSTOP the leading serve until the other leads, then SIGCONT",
}


def cluster(*args: str) -> str:
    done = subprocess.run([str(CLUSTER), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"scripts/ha-cluster {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout.strip()


def with_database(url: str, name: str) -> str:
    """The multi-host `url` with its database replaced by `name`."""
    return url.replace("@/postgres?", f"@/{name}?", 1)


def wait(predicate: Callable[[], object], seconds: float, what: str) -> float:
    """Poll until true; the seconds it took. Errors count as not yet (a failover)."""
    start = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - start
        except Exception:  # noqa: S110 - the database may be failing over
            pass
        if time.monotonic() - start > seconds:
            raise SystemExit(f"timed out after {seconds:.0f}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Province:
    hosts: list[TestNode]  # the two serve hosts of id-64
    regencies: list[TestNode]
    balancers: list[Balancer]
    errors: int = 0  # operator actions refused while the database failed over (retried)
    referred: int = 0
    updates: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def ctx(self) -> NodeContext:
        return self.hosts[0].ctx()

    def leader(self) -> TestNode | None:
        pid = leader_pid(self.hosts[0])
        return next((h for h in self.hosts if h.process and h.process.pid == pid), None)

    def other(self, host: TestNode) -> TestNode:
        return self.hosts[1] if host is self.hosts[0] else self.hosts[0]

    def contexts(self) -> list[NodeContext]:
        return [self.ctx, *(r.ctx() for r in self.regencies)]

    def pairs(self) -> list[tuple[str, str]]:
        return [("id-64", r.node_id) for r in self.regencies]

    # The load: referrals down, status updates up -------------------------------------

    def push(self) -> None:
        """Until stopped: refer 2 complaints to each regency and post a follow-up on every
        complaint a regency has accepted, a few times a second. An action refused by a
        database failing over is counted and tried again at the next round."""
        while not self._stop.is_set():
            for regency in self.regencies:
                try:
                    start = self.referred
                    ids = complaints.submit_many(self.ctx, [draft(start), draft(start + 1)])
                    complaints.refer_many(self.ctx, ids, regency.node_id)
                    self.referred += len(ids)
                except Exception:  # a failover: the operator retries
                    self.errors += 1
                try:
                    accepted = complaints.list_complaints(
                        regency.ctx(), status="accepted", holder=regency.node_id, limit=0
                    )
                    for view in accepted:
                        lifecycle.follow_up(regency.ctx(), view.tracking_id, "Tim sudah turun")
                        self.updates += 1
                except Exception:  # SQLite busy under load: next round
                    self.errors += 1
            time.sleep(0.2)

    def load(self, seconds: float) -> threading.Thread:
        self._stop.clear()
        thread = threading.Thread(target=self.push, daemon=True)
        thread.start()
        time.sleep(seconds)
        return thread

    def stop_load(self, thread: threading.Thread) -> None:
        self._stop.set()
        thread.join(60)

    # The checks ------------------------------------------------------------------------

    def forks(self) -> list[str]:
        """Signed checkpoints (stored, or fenced on a host) that disagree with the ledger,
        and regency links suspended for fork evidence."""
        found = []
        with self.ctx.db.read() as session:
            for row in session.execute(select(CheckpointRow)).scalars():
                if tree.root(session, row.size) != row.root:
                    found.append(f"stored checkpoint at size {row.size}")
            for host in self.hosts:
                fenced = fence.read(host.ctx().config)
                if fenced is None:
                    continue
                checkpoint = fenced.checkpoint
                if tree.root(session, checkpoint.size) != checkpoint.root:
                    found.append(f"{host.directory.name}'s fence at size {checkpoint.size}")
        for regency in self.regencies:
            for view in links.list_links(regency.ctx()):
                if view.suspended_by_entry is not None:
                    found.append(f"{regency.node_id} suspended its link for fork evidence")
        return found

    def settle(self) -> tuple[Tally, list[str]]:
        wait(lambda: quiet(self.contexts()), SETTLE_SECONDS, "every outbox to drain")
        return check_tree(self.contexts(), self.pairs()), self.forks()


def build(root: Path, url: str) -> Province:
    first = make_node(root, "id-64", "Provinsi Kalimantan Timur", url)
    regencies = [
        make_node(root, f"id-64-0{i}", f"Kabupaten {i}", f"sqlite:///{root / f'r{i}.db'}")
        for i in (1, 2)
    ]
    second = standby_of(first, root / "id-64-b")
    balancers = []
    for regency in regencies:
        balancer = Balancer([first.address, second.address]).start()
        links.add_link(first.ctx(), regency.card(), "child")
        enrollment = first.ctx().config.server.enrollment_address
        links.add_link(regency.ctx(), first.card(), "parent", balancer.address, enrollment)
        balancers.append(balancer)
    return Province([first, second], regencies, balancers)


class WritesAgain:
    """Whether the database takes a write again, as the node needs it: a row inserted on a new
    connection each time (a pooled one may still reach a backend of the killed primary,
    orphaned but answering for a moment), through the multi-host URL's read-write target,
    whose commit returns only once the synchronous standby has it (synchronous_mode_strict).
    A bare `SELECT 1` answered a millisecond after the kill; a transaction that only takes a
    transaction id writes no WAL before its commit, so PostgreSQL does not make it wait for
    the standby: both answered while the new primary could not yet acknowledge a write."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 2})
        with self.engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS failover_probe (at timestamptz)"))

    def __call__(self) -> bool:
        with self.engine.begin() as conn:
            conn.execute(text("INSERT INTO failover_probe VALUES (clock_timestamp())"))
        return True

    def close(self) -> None:
        self.engine.dispose()


def strike(province: Province, fault: str, writes_again: WritesAgain) -> dict[str, float]:
    """Make `fault` happen; how long the failovers it causes took."""
    leader = province.leader()
    assert leader is not None and leader.process is not None
    other = province.other(leader)
    took: dict[str, float] = {}
    started = time.monotonic()

    def new_leader() -> bool:
        return province.leader() is other

    if fault in "ac":
        leader.process.kill()
    if fault in "bc":
        member = cluster("kill-primary")
        started = time.monotonic()
        took["database"] = wait(writes_again, 120, "database writes")
    if fault == "d":
        stepped_down = leader.log_path.read_text().count("leader.stepped_down")
        leader.process.send_signal(signal.SIGSTOP)
    if fault in "acd":
        wait(new_leader, 120, "the other serve to lead")
        took["serve"] = time.monotonic() - started
    if fault == "b":
        # The leader may have stepped down while the database was away; one leads again.
        took["serve"] = (
            wait(lambda: province.leader() is not None, 120, "a leader") + took["database"]
        )
    if fault == "d":
        leader.process.send_signal(signal.SIGCONT)
        wait(
            lambda: leader.log_path.read_text().count("leader.stepped_down") > stepped_down,
            60,
            "the resumed serve to step down",
        )
    if fault in "ac":
        leader.process.wait()
        leader.start()  # back as a standby
    if fault in "bc":
        cluster("restart-member", member)
    return took


def run(
    faults: str, load_seconds: float, url: str
) -> list[tuple[str, dict[str, float], Tally, list[str]]]:
    results = []
    name = f"lapor_failover_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    writes_again = WritesAgain(with_database(url, name))
    with tempfile.TemporaryDirectory(prefix="lapor-failover-") as tmp:
        province = build(Path(tmp), with_database(url, name))
        try:
            province.hosts[0].start()
            wait(lambda: province.leader() is province.hosts[0], 60, "the first serve to lead")
            for node in (province.hosts[1], *province.regencies):
                node.start()
            for fault in faults:
                print(f"fault {fault}: {FAULTS[fault]}", flush=True)
                thread = province.load(load_seconds)
                took = strike(province, fault, writes_again)
                time.sleep(load_seconds)
                province.stop_load(thread)
                tally, forks = province.settle()
                results.append((fault, took, tally, forks))
                report(took, tally, forks)
            print(
                f"referred: {province.referred}, status updates: {province.updates}, "
                f"actions retried during failovers: {province.errors}"
            )
        finally:
            for node in (*province.regencies, *province.hosts):
                if node.process is not None and node.process.poll() is None:
                    node.process.send_signal(signal.SIGCONT)
                node.close()
            for balancer in province.balancers:
                balancer.close()
            writes_again.close()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    return results


def report(took: dict[str, float], tally: Tally, forks: list[str]) -> None:
    parts = [f"{what} {seconds:.1f}s" for what, seconds in took.items()]
    print(f"  failover: {', '.join(parts)}")
    for line in tally.lines()[:2]:
        print(f"  {line}")
    print(f"  forks: {len(forks)}")
    for line in tally.lines()[2:]:
        print(f"  {line}")
    for problem in [*tally.problems, *forks][:10]:
        print(f"    {problem}")


def met(took: dict[str, float], tally: Tally, forks: list[str], *, timing: bool = True) -> bool:
    """The targets: nothing lost, duplicated or forked, every ledger verified and reconciled,
    and (`timing`) `serve` led again within SERVE_TARGET of the database taking writes, the
    database within DATABASE_TARGET."""
    return (
        tally.ok
        and not forks
        and (
            not timing
            or (
                took.get("serve", 0.0) <= SERVE_TARGET + took.get("database", 0.0)
                and took.get("database", 0.0) <= DATABASE_TARGET
            )
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", default="abcd", help="which faults, in order (a-d)")
    parser.add_argument("--load-seconds", type=float, default=4.0)
    parser.add_argument("--keep-cluster", action="store_true", help="leave it running")
    parser.add_argument(
        "--no-timing-targets",
        action="store_true",
        help="judge the exit status by loss, duplicates, forks, verification and "
        "reconciliation only; the failover seconds are printed, not judged (the test suite's "
        "short run: timings on a shared machine are noisy, and belong to the bench's output)",
    )
    args = parser.parse_args()
    if set(args.faults) - set(FAULTS):
        parser.error(f"--faults takes letters of {''.join(FAULTS)}, found {args.faults!r}")
    was_up = subprocess.run([str(CLUSTER), "status"], capture_output=True, check=False)
    url = cluster("up").splitlines()[-1]
    print(f"cluster: {url}", flush=True)
    try:
        results = run(args.faults, args.load_seconds, url)
    finally:
        if was_up.returncode != 0 and not args.keep_cluster:
            cluster("down")
    timing = not args.no_timing_targets
    ok = all(met(took, tally, forks, timing=timing) for _, took, tally, forks in results)
    print(
        json.dumps(
            {
                f: {"failover": t, "ok": met(t, y, k, timing=timing), "timing_met": met(t, y, k)}
                for f, t, y, k in results
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("LAPOR_LOG_LEVEL", "info")
    sys.exit(main())
