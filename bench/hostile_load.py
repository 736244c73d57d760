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
probes' maximum latency under load (target < 1 s), and what the bad joins got.

Usage (from the repository root):
    python bench/hostile_load.py [--referrals 200] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import multiprocessing
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
from node.services import links  # noqa: E402
from tests.support.hostile import (  # noqa: E402
    BAD_JOINS,
    IDLE_PER_PORT,
    JOIN_CLIENTS,
    HealthProber,
    IdleFlood,
    bad_joins_at,
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
            lambda: any(v.connected for v in links.list_links(regency.ctx())),
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
        f"(target < 1 s): {'ok' if worst < 1 and not probes.failures else 'MISSED'}"
    )
    print(
        f"  load: {held} idle connections ({IDLE_PER_PORT} on each of {len(ports)} ports), "
        f"{reopened} reopened after the node closed them; {sum(codes.values())} bad joins "
        f"from {JOIN_CLIENTS} clients: "
        + ", ".join(f"{code} {n}" for code, n in codes.most_common())
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--referrals", type=int, default=200, help="per run (default 200)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lapor-hostile-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
