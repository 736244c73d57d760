"""Referral round trips and health probes of a province, quiet and under hostile load (issue
17.6): a province and its regency as real `lapor-node serve` processes, the province with
all five ports open (main, enrollment, intake, metrics, dashboard) and node.yaml's shipped
throttle.

Two runs of `--referrals` referrals each, one after the other (refer at the province,
wait until the regency's receipt has made it `accepted` there):
  quiet   nothing else happens;
  loaded  300 idle TCP connections held on each port (reopened as the node closes them)
          and bad join attempts from 4 concurrent clients (at least 1,000, and on until
          the referrals are done) against the enrollment port.
The load runs in a process of its own (its threads would otherwise take the GIL from the
timing in this one). A health prober calls the province's gRPC health service every 0.2 s
throughout both runs.
Printed: each run's round-trip p50 and p99, the loaded/quiet p99 ratio (target <= 2x), the
probes' p99 and maximum latency under load (target: max < 1 s), and what the bad joins got.

`--against REV` measures a baseline in the same session: the bench of REV (exported with
`git archive` to a temporary directory) and the bench of this tree run one after the
other for each database, each in a process of its own started from its tree (so its
`serve` processes run that tree's code); then both outputs and a table of the figures
side by side, with the ratio this tree / baseline. This machine's load moves the figures
by tens of percent from one run to the next: read ratios of runs made together only.

Usage (from the repository root):
    python bench/hostile_load.py [--referrals 200] [--database sqlite|postgresql|both]
                                 [--against REV]
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.referral_throughput import database_url, drop_databases  # noqa: E402
from tests.support.hostile import (  # noqa: E402
    BAD_JOINS,
    IDLE_PER_PORT,
    JOIN_CLIENTS,
    HealthProber,
    IdleFlood,
    bad_joins_at,
    connected,
    quantile,
    round_trip,
    serve_every_port,
)
from tests.support.nodes import TestNode, link, make_node  # noqa: E402
from tests.support.waits import DELIVERY_BOUND, RECOVERY_BOUND, wait_until  # noqa: E402


def load(
    ports: list[int],
    enrollment: str,
    cert: bytes,
    node_id: str,
    ready: Event,
    done: Event,
    out: Any,
) -> None:
    """The hostile load, in its own process: idle connections on `ports`, and bad joins
    from JOIN_CLIENTS clients until `done` (at least BAD_JOINS); then the figures to `out`."""
    with IdleFlood(ports) as flood:
        held = len(flood.held)
        codes: Counter[str] = Counter()
        joins = threading.Thread(
            target=lambda: codes.update(
                bad_joins_at(enrollment, cert, node_id, BAD_JOINS, JOIN_CLIENTS, done)
            )
        )
        joins.start()
        ready.set()
        joins.join()
        out.put((held, flood.reopened, dict(codes)))


def trips(province: TestNode, regency: TestNode, first: int, count: int) -> list[float]:
    return [round_trip(province, regency, first + n, DELIVERY_BOUND) for n in range(count)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def run(args: argparse.Namespace, root: Path) -> int:
    urls = [database_url(args.database, root, n) for n in ("id-64", "id-64-02")]
    province = make_node(root, "id-64", "Provinsi Kalimantan Timur", urls[0])
    regency = make_node(root, "id-64-02", "Kabupaten Kutai Kartanegara", urls[1])
    try:
        link(province, regency)
        ports = serve_every_port(province)
        province.start()
        regency.start()
        wait_until(
            lambda: connected(province, regency),
            timeout=RECOVERY_BOUND,
            what="the regency to connect",
        )
        trips(province, regency, 0, 5)  # warm up: the first TLS sessions, caches
        with HealthProber(province, regency) as quiet_probes:
            quiet = trips(province, regency, 10, args.referrals)
        spawn = multiprocessing.get_context("spawn")
        ready, done, out = spawn.Event(), spawn.Event(), spawn.Queue()
        cert = province.ctx().config.tls_cert.read_bytes()
        address = f"127.0.0.1:{ports['enrollment']}"
        worker = spawn.Process(
            target=load,
            args=(list(ports.values()), address, cert, province.node_id, ready, done, out),
        )
        worker.start()
        with HealthProber(province, regency) as probes:
            if not ready.wait(300):
                raise SystemExit("the load process did not start")
            loaded = trips(province, regency, 10 + args.referrals, args.referrals)
            done.set()
            held, reopened, counted = out.get(timeout=600)
            worker.join(60)
        codes = Counter(counted)
    finally:
        for node in (regency, province):
            node.close()
        drop_databases(urls)

    q50, q99 = quantile(quiet, 0.5), quantile(quiet, 0.99)
    l50, l99 = quantile(loaded, 0.5), quantile(loaded, 0.99)
    ratio = l99 / q99
    worst = max(probes.latencies)
    print(f"hostile load ({args.database}, {args.referrals} referrals per run)")
    print(f"  quiet     round trip p50 {ms(q50)}  p99 {ms(q99)}")
    print(f"  loaded    round trip p50 {ms(l50)}  p99 {ms(l99)}")
    verdict = "ok" if ratio <= 2 else "MISSED"
    print(f"  p99 ratio loaded/quiet {ratio:.2f}x (target <= 2x): {verdict}")
    print(
        f"  health probes: quiet max {ms(max(quiet_probes.latencies))}; loaded max {ms(worst)} "
        f"over {len(probes.latencies)} probes, {len(probes.failures)} failed "
        f"(target < 1 s): {'ok' if worst < 1 and not probes.failures else 'MISSED'}; "
        f"loaded p99 {ms(quantile(probes.latencies, 0.99))}"
    )
    print(
        f"  load: {held} idle connections ({IDLE_PER_PORT} on each of {len(ports)} ports), "
        f"{reopened} reopened after the node closed them; {sum(codes.values())} bad joins "
        f"from {JOIN_CLIENTS} clients: "
        + ", ".join(f"{code} {n}" for code, n in codes.most_common())
    )
    return 0


# What --against reads from each run's output (the baseline's bench may be older: only
# these lines are relied on).
FIGURES = {
    "quiet p99": r"quiet\s+round trip p50\s+[\d.]+ ms\s+p99\s+([\d.]+) ms",
    "loaded p99": r"loaded\s+round trip p50\s+[\d.]+ ms\s+p99\s+([\d.]+) ms",
    "p99 ratio": r"p99 ratio loaded/quiet ([\d.]+)x",
    "health max": r"loaded max\s+([\d.]+) ms",
}


def figures(output: str) -> dict[str, float]:
    """The FIGURES found in one run's output."""
    found = {}
    for name, pattern in FIGURES.items():
        match = re.search(pattern, output)
        if match is not None:
            found[name] = float(match[1])
    return found


def one_run(tree: Path, database: str, referrals: int) -> str:
    """This bench as `tree` has it, in a process of its own started from `tree`."""
    argv = [sys.executable, "bench/hostile_load.py", "--referrals", str(referrals)]
    ran = subprocess.run(
        [*argv, "--database", database], cwd=tree, capture_output=True, text=True, check=False
    )
    if ran.returncode != 0:
        raise SystemExit(f"the bench of {tree} failed ({ran.returncode}):\n{ran.stderr[-3000:]}")
    return ran.stdout


def against(args: argparse.Namespace, databases: list[str]) -> int:
    """Baseline (REV) and this tree, one after the other for each database; the figures
    side by side."""
    table: list[tuple[str, str, float | None, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="lapor-hostile-baseline-") as tmp:
        exported = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.against], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=exported.stdout, check=True)
        for database in databases:
            runs = {}
            for label, tree in (("baseline " + args.against, Path(tmp)), ("this tree", ROOT)):
                output = one_run(tree, database, args.referrals)
                print(f"--- {label}, {database} ---\n{output}", flush=True)
                runs[label] = figures(output)
            base, ours = runs.values()
            table += [(database, name, base.get(name), ours.get(name)) for name in FIGURES]
    print(f"{'database':<11} {'figure':<11} {'baseline':>10} {'this tree':>10} {'ratio':>6}")
    for database, name, b, o in table:
        unit = "x" if name == "p99 ratio" else "ms"
        cell = [f"{v:.2f}{unit}" if v is not None else "-" for v in (b, o)]
        ratio = f"{o / b:.2f}" if b and o is not None else "-"
        print(f"{database:<11} {name:<11} {cell[0]:>10} {cell[1]:>10} {ratio:>6}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--referrals", type=int, default=200, help="per run (default 200)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument(
        "--against", metavar="REV", help="also run the bench of git revision REV (a baseline)"
    )
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    if args.against:
        return against(args, databases)
    for database in databases:
        args.database = database
        with tempfile.TemporaryDirectory(prefix="lapor-hostile-") as tmp:
            run(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
