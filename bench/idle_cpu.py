"""CPU an idle node burns: a province and a regency, linked, as real `lapor-node serve`
processes with nothing to do, measured from /proc/<pid>/stat (user + system time) over a
window after they settled. Prints milliseconds of CPU per second of wall time for each
process and, on PostgreSQL, for the server backends serving each node's database.

Usage (from the repository root):
    python bench/idle_cpu.py [--seconds 30] [--settle 10] [--database sqlite,postgresql]
The target (issue 20.5) is under 5 ms per second per node.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.referral_throughput import PG_ADMIN, database_url, drop_databases  # noqa: E402
from node.services import links  # noqa: E402
from tests.support.nodes import TestNode, link, make_node  # noqa: E402
from tests.support.waits import wait_until  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of `pid` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the name may hold spaces: split after it
    return (int(fields[11]) + int(fields[12])) / TICK


def backends(url: str) -> list[int]:
    """The PostgreSQL backend processes connected to `url`'s database (none for SQLite)."""
    if not url.startswith("postgresql"):
        return []
    name = url.rsplit("/", 1)[1]
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = :n"), {"n": name}
        ).all()
    engine.dispose()
    return [int(row[0]) for row in rows]


def measure(kind: str, seconds: float, settle: float) -> dict[str, float]:
    """ms of CPU per second for each process of an idle linked pair on `kind`."""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        urls = [database_url(kind, tmp, "id-64"), database_url(kind, tmp, "id-64-02")]
        nodes: list[TestNode] = []
        try:
            province = make_node(tmp, "id-64", "Provinsi Kalimantan Timur", urls[0])
            regency = make_node(tmp, "id-64-02", "Kabupaten Kutai Kartanegara", urls[1])
            nodes = [province, regency]
            link(province, regency)
            for node in nodes:
                node.start()

            def linked() -> bool:
                views = links.list_links(regency.ctx())
                return any(v.connected for v in views)

            wait_until(linked, what="the regency to connect to its province")
            time.sleep(settle)
            watched: dict[str, list[int]] = {}
            for node, url in zip(nodes, urls, strict=True):
                assert node.process is not None
                watched[f"{kind} {node.node_id} serve"] = [node.process.pid]
                pids = backends(url)
                if pids:
                    watched[f"{kind} {node.node_id} postgres backends ({len(pids)})"] = pids
            before = {name: sum(cpu_seconds(p) for p in pids) for name, pids in watched.items()}
            start = time.monotonic()
            time.sleep(seconds)
            wall = time.monotonic() - start
            after = {name: sum(cpu_seconds(p) for p in pids) for name, pids in watched.items()}
            return {name: (after[name] - before[name]) * 1000 / wall for name in watched}
        finally:
            for node in nodes:
                node.close()
            drop_databases(urls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="the measured window")
    parser.add_argument("--settle", type=float, default=10.0, help="idle time before it")
    parser.add_argument("--database", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"idle CPU over {args.seconds:g} s, after {args.settle:g} s settled (ms CPU / s)")
    for kind in args.database.split(","):
        for name, ms in measure(kind, args.seconds, args.settle).items():
            print(f"  {name:48s} {ms:7.2f}")


if __name__ == "__main__":
    main()
