"""Tiles benchmark: what serving the ledger as C2SP tlog-tiles costs, at two ledger sizes.

    .venv/bin/python bench/tiles.py [--sizes 1000,100000] [--repeat 200]

For each size (a SQLite ledger appended with record_many, a checkpoint signed at the end):
1. the median time of one request through the WSGI app (node.transparency.http), in
   process, for the checkpoint, the last full level-0 tile, the partial level-0 tile, the
   last full entry bundle (gzip) and the top partial tile: each is two small queries on
   the persisted tree, so the figures should not grow with the ledger;
2. `audit export --tiles` (node.services.audit.write_tiles) into an empty folder: files
   and entries per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from werkzeug.test import Client  # noqa: E402

from node.services import audit, checkpoints  # noqa: E402
from node.services._ledger import record_many  # noqa: E402
from node.services.context import NodeContext  # noqa: E402
from node.services.setup import init_node  # noqa: E402
from node.transparency.http import TransparencyApp  # noqa: E402
from node.transparency.tiles import Tile, tiles_for_size  # noqa: E402
from tests.support.factories import link_entry  # noqa: E402


def _grow(ctx: NodeContext, size: int) -> None:
    done = 0
    while done < size:
        batch = min(10_000, size - done)
        with ctx.db.write() as session:
            record_many(session, ctx, [link_entry(done + n) for n in range(batch)])
        done += batch
    checkpoints.sign(ctx)


def _median_ms(client: Client, path: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path, headers={"Accept-Encoding": "gzip"})
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, path
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'size':>8} {'request':<34} {'median ms':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            directory = Path(tmp) / f"n{size}"
            init_node(directory, "id-64", "Provinsi", listen="127.0.0.1:7411")
            ctx = NodeContext.open(directory / "node.yaml")
            try:
                _grow(ctx, size)
                client = Client(TransparencyApp(ctx))
                tiles = list(tiles_for_size(size, bundles=True))
                full = [t for t in tiles if t.level == 0 and not t.is_partial]
                partial = [t for t in tiles if t.level == 0 and t.is_partial]
                bundles = [t for t in tiles if t.is_bundle and not t.is_partial]
                top = tiles[-1]
                requests: list[tuple[str, Tile | None]] = [("checkpoint", None)]
                requests += [("last full level-0 tile", full[-1])] if full else []
                requests += [("partial level-0 tile", partial[-1])] if partial else []
                requests += [("last full entry bundle (gzip)", bundles[-1])] if bundles else []
                requests += [(f"top tile (level {top.level})", top)]
                for name, tile in requests:
                    path = "/checkpoint" if tile is None else "/" + tile.path()
                    print(f"{size:>8} {name:<34} {_median_ms(client, path, args.repeat):>9.3f}")
                out = Path(tmp) / f"tiles{size}"
                start = time.perf_counter()

                def write(name: str, data: bytes, out: Path = out) -> None:
                    target = out / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)

                summary = audit.write_tiles(ctx, write, lambda name: False)
                took = time.perf_counter() - start
                print(
                    f"{size:>8} export --tiles: {summary.written} files in {took:.2f} s "
                    f"({summary.written / took:,.0f} files/s, {size / took:,.0f} entries/s)"
                )
            finally:
                ctx.close()


if __name__ == "__main__":
    main()
