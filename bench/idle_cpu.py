"""CPU an idle node burns: a province and a regency, linked, as real `lapor-node serve`
processes with nothing to do, measured from /proc/<pid>/stat (user + system time) over a
window after they settled. Prints milliseconds of CPU per second of wall time for each
process and, on PostgreSQL, for the server backends serving each node's database.

With `--baseline REF` the same pair also runs from the tree of git revision REF (extracted
with `git archive` into a temporary directory: the repository is only read), at the same
time as the working tree's pair and measured over the same window, so both see the same
load on a shared machine; the last lines give each pair's total and the ratio.

Usage (from the repository root):
    python bench/idle_cpu.py [--seconds 30] [--settle 10] [--database sqlite,postgresql]
                             [--baseline REF]
The target (issue 20.5) is under 5 ms per second per node.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from bench.referral_throughput import PG_ADMIN, database_url, drop_databases  # noqa: E402
from node.services import links  # noqa: E402
from tests.support.nodes import TestNode, link, make_node  # noqa: E402
from tests.support.waits import wait_until  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
CURRENT = "this tree"


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


def extract(ref: str, into: Path) -> Path:
    """The package and migrations of git revision `ref`, as files under `into`."""
    archive = into / "tree.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--output", str(archive), ref, "node", "migrations"],
        check=True,
    )
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def start(node: TestNode, tree: Path | None) -> None:
    """`serve` for `node`, from `tree` (None: this tree, as the tests start it). `python -m`
    puts its working directory first on the path, so the process imports `tree`'s node."""
    if tree is None:
        node.start()
        return
    log = node.log_path.open("ab")
    node.process = subprocess.Popen(
        [sys.executable, "-m", "node.cli.main", "serve", "--config", str(node.config)],
        stdout=log,
        stderr=log,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        start_new_session=True,
    )
    log.close()


@contextmanager
def idle_pair(kind: str, root: Path, tree: Path | None) -> Iterator[dict[str, list[int]]]:
    """A linked province and regency serving from `tree`; the pids to watch by name."""
    root.mkdir(parents=True)
    urls = [database_url(kind, root, "id-64"), database_url(kind, root, "id-64-02")]
    nodes: list[TestNode] = []
    try:
        province = make_node(root, "id-64", "Provinsi Kalimantan Timur", urls[0])
        regency = make_node(root, "id-64-02", "Kabupaten Kutai Kartanegara", urls[1])
        nodes = [province, regency]
        link(province, regency)
        for node in nodes:
            start(node, tree)

        def linked() -> bool:
            views = links.list_links(regency.ctx())
            return any(v.connected for v in views)

        wait_until(linked, what="the regency to connect to its province")
        watched: dict[str, list[int]] = {}
        for node, url in zip(nodes, urls, strict=True):
            assert node.process is not None
            watched[f"{node.node_id} serve"] = [node.process.pid]
            pids = backends(url)
            if pids:
                watched[f"{node.node_id} postgres backends ({len(pids)})"] = pids
        yield watched
    finally:
        for node in nodes:
            node.close()
        drop_databases(urls)


def measure(
    kind: str, seconds: float, settle: float, trees: dict[str, Path | None]
) -> dict[str, dict[str, float]]:
    """ms of CPU per second for each process of an idle linked pair on `kind`, one pair
    per tree, all idle over the same window."""
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        watched = {
            label: stack.enter_context(idle_pair(kind, tmp / f"pair{n}", tree))
            for n, (label, tree) in enumerate(trees.items())
        }
        time.sleep(settle)
        pids = {(label, name): p for label, w in watched.items() for name, p in w.items()}
        before = {key: sum(cpu_seconds(p) for p in ps) for key, ps in pids.items()}
        begun = time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - begun
        after = {key: sum(cpu_seconds(p) for p in ps) for key, ps in pids.items()}
        figures: dict[str, dict[str, float]] = {label: {} for label in trees}
        for label, name in pids:
            spent = after[label, name] - before[label, name]
            figures[label][name] = spent * 1000 / wall
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="the measured window")
    parser.add_argument("--settle", type=float, default=10.0, help="idle time before it")
    parser.add_argument("--database", default="sqlite,postgresql")
    parser.add_argument(
        "--baseline", metavar="REF", help="also run git revision REF's tree, side by side"
    )
    args = parser.parse_args()
    print(f"idle CPU over {args.seconds:g} s, after {args.settle:g} s settled (ms CPU / s)")
    with tempfile.TemporaryDirectory() as tmp_name:
        trees: dict[str, Path | None] = {}
        if args.baseline:
            trees[args.baseline] = extract(args.baseline, Path(tmp_name))
        trees[CURRENT] = None
        for kind in args.database.split(","):
            figures = measure(kind, args.seconds, args.settle, trees)
            for label, by_name in figures.items():
                for name, ms in by_name.items():
                    print(f"  {kind:10s} {label:10.10s} {name:34s} {ms:7.2f}")
            if args.baseline:
                for name in figures[CURRENT]:
                    if name.endswith("serve"):
                        was, now = figures[args.baseline][name], figures[CURRENT][name]
                        ratio = f"{now / was:5.2f}" if was else "  n/a"
                        print(f"  {kind:10s} {name:45s} {was:7.2f} -> {now:7.2f}  x{ratio}")


if __name__ == "__main__":
    main()
