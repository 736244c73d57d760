"""How long after the network heals a link works again: a province and a regency as real
`lapor-node serve` processes, the regency dialing its parent through a TCP proxy
(tests/support/proxy.py) that breaks the link on command.

Two kinds of breakage, each after the link has been up for `--up-seconds`:
  cut         every connection reset and new ones refused, healed at once (a router
              restart, a NAT losing its table): how fast the dialer notices and comes back;
  outage      every connection reset and new ones refused for L seconds: the dialer
              backs off meanwhile, its delay growing towards the maximum;
  black hole  for L seconds nothing gets through and nothing is refused (a route that
              drops packets, a satellite link in the rain): the dialer's attempts hang until
              its connect timeout, and its backoff grows while it lasts.
A referral is queued while the link is broken; the figure is the time from the heal to the
moment the regency has committed it (a working link: Hello exchanged, a frame across).
Each figure is printed, then min / median / max per kind, beside the worst case the tests
allow by the configured backoff (tests/support/waits.reconnect_bound without its margin).

Usage (from the repository root):
    python bench/reconnect.py [--cuts 5] [--outages 5,15,30] [--black-holes 5,15,30]
                              [--up-seconds 5]
                              [--reconnect-min-ms 200] [--reconnect-max-ms 30000]
                              [--keepalive-seconds 30] [--database sqlite|postgresql]
    python bench/reconnect.py --quick      # 3 cuts, an outage of 5 s, black holes of 2 and
                                           # 15 s, the test
                                           # suite's backoff (100-1000 ms) and a keepalive
                                           # of 1 s: under a minute
The defaults are node.yaml's shipped backoff and keepalive; a full run takes a few minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.referral_throughput import database_url, drop_databases  # noqa: E402
from node.config import FederationConfig  # noqa: E402
from node.services import complaints, links  # noqa: E402
from node.store.models import InboxRow  # noqa: E402
from tests.fault.conftest import draft  # noqa: E402
from tests.fault.invariants import quiet  # noqa: E402
from tests.support.nodes import configure, make_node  # noqa: E402
from tests.support.proxy import Proxy  # noqa: E402
from tests.support.waits import TEST_FEDERATION, redial_seconds  # noqa: E402

POLL = 0.005  # seconds between two looks at the regency's inbox: the figures' resolution
GIVE_UP = 600.0  # seconds: a link not back by then is reported as such, not waited for


class Pair:
    """province -> proxy -> regency, serving."""

    def __init__(self, root: Path, kind: str, federation: FederationConfig) -> None:
        self.urls = [database_url(kind, root, n) for n in ("id-64", "id-64-02")]
        self.parent = make_node(root, "id-64", "Provinsi Kalimantan Timur", self.urls[0])
        self.child = make_node(root, "id-64-02", "Kabupaten Kutai Kartanegara", self.urls[1])
        for node in (self.parent, self.child):
            configure(
                node,
                reconnect_min_ms=federation.reconnect_min_ms,
                reconnect_max_ms=federation.reconnect_max_ms,
                keepalive_seconds=federation.keepalive_seconds,
            )
        self.proxy = Proxy(self.parent.address).start()
        links.add_link(self.parent.ctx(), self.child.card(), "child")
        enrollment = self.parent.ctx().config.server.enrollment_address
        links.add_link(
            self.child.ctx(), self.parent.card(), "parent", self.proxy.address, enrollment
        )
        self.sent = 0

    def start(self) -> None:
        self.parent.start()
        self.child.start()

    def close(self) -> None:
        for node in (self.child, self.parent):
            try:
                node.close()
            except AssertionError:
                node.kill()
        self.proxy.close()
        drop_databases(self.urls)

    def committed(self) -> int:
        with self.child.ctx().db.read() as session:
            return int(session.execute(select(func.count()).select_from(InboxRow)).scalar_one())

    def refer(self) -> None:
        ctx = self.parent.ctx()
        ids = complaints.submit_many(ctx, [draft(self.sent)])
        complaints.refer_many(ctx, ids, self.child.node_id)
        self.sent += 1

    def settled(self) -> bool:
        return self.committed() == self.sent and quiet([self.parent.ctx(), self.child.ctx()])


def until(predicate: Callable[[], bool], limit: float = GIVE_UP) -> float | None:
    """Seconds until `predicate` holds (polled every POLL), or None after `limit`."""
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > limit:
            return None
        time.sleep(POLL)
    return time.monotonic() - began


def working_again(pair: Pair, break_link: Callable[[], None], up_seconds: float) -> float | None:
    """Let the link work for `up_seconds`, break it, queue a referral, heal: the seconds
    from the heal until the regency has committed that referral (None: never)."""
    if until(pair.settled) is None:
        raise SystemExit("the link did not come up to begin with: see the nodes' serve.log")
    time.sleep(up_seconds)  # a session that was up a while (its backoff may start over)
    break_link()
    pair.refer()
    target = pair.sent
    pair.proxy.heal()
    return until(lambda: pair.committed() >= target)


def summary(name: str, figures: list[float | None]) -> str:
    if not figures:
        return f"{name}: none run"
    done = sorted(f for f in figures if f is not None)
    lost = len(figures) - len(done)
    if not done:
        return f"{name}: no link came back within {GIVE_UP:.0f} s"
    text = (
        f"{name}: min {done[0]:.2f} s, median {statistics.median(done):.2f} s, "
        f"max {done[-1]:.2f} s over {len(done)}"
    )
    return text + (f"; {lost} never came back" if lost else "")


def run(args: argparse.Namespace, root: Path, federation: FederationConfig) -> None:
    pair = Pair(root, args.database, federation)
    try:
        pair.start()
        cuts: list[float | None] = []
        for n in range(args.cuts):
            seen = pair.proxy.accepted
            seconds = working_again(pair, pair.proxy.cut, args.up_seconds)
            cuts.append(seconds)
            print(
                f"cut {n + 1}: working again {fmt(seconds)} after the heal"
                f" ({pair.proxy.accepted - seen} new connection(s))",
                flush=True,
            )
        outages: list[float | None] = []
        for length in args.outages:

            def outage(length: float = length) -> None:
                pair.proxy.cut()
                time.sleep(length)  # the outage's length: what is being measured against

            seen, refused = pair.proxy.accepted, pair.proxy.refused
            seconds = working_again(pair, outage, args.up_seconds)
            outages.append(seconds)
            print(
                f"outage of {length:g} s: working again {fmt(seconds)} after it ended"
                f" ({pair.proxy.refused - refused} attempt(s) refused meanwhile)",
                flush=True,
            )
        holes: dict[float, float | None] = {}
        for length in args.black_holes:

            def hole(length: float = length) -> None:
                pair.proxy.blackhole()
                time.sleep(length)  # the black hole's length: what is being measured against

            seen, swallowed = pair.proxy.accepted, pair.proxy.swallowed
            seconds = working_again(pair, hole, args.up_seconds)
            holes[length] = seconds
            # No new connection: the old one outlived the hole (nothing found it dead).
            print(
                f"black hole of {length:g} s: working again {fmt(seconds)} after it ended"
                f" ({pair.proxy.accepted - seen} new connection(s),"
                f" {pair.proxy.swallowed - swallowed} attempt(s) swallowed by the hole)",
                flush=True,
            )
        worst = federation.connect_timeout_ms / 1000 + redial_seconds(federation)
        print(summary("cuts", cuts))
        print(summary("outages", outages))
        print(summary("black holes", list(holes.values())))
        print(
            f"worst case by the backoff ({federation.reconnect_min_ms}-"
            f"{federation.reconnect_max_ms} ms): {worst:.2f} s (connect timeout, then a"
            " jittered sleep at the maximum and grpc's own backoff)"
        )
        print(f"connections: {pair.proxy.accepted} accepted, {pair.proxy.swallowed} swallowed")
    finally:
        pair.close()


def fmt(seconds: float | None) -> str:
    return "never (gave up)" if seconds is None else f"{seconds:.2f} s"


def main() -> None:
    shipped = FederationConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run, under a minute")
    parser.add_argument("--cuts", type=int, default=5)
    parser.add_argument("--outages", default="5,15,30", help="seconds, comma-separated")
    parser.add_argument("--black-holes", default="5,15,30", help="seconds, comma-separated")
    parser.add_argument("--up-seconds", type=float, default=5.0, help="link up before a break")
    parser.add_argument("--reconnect-min-ms", type=int, default=shipped.reconnect_min_ms)
    parser.add_argument("--reconnect-max-ms", type=int, default=shipped.reconnect_max_ms)
    parser.add_argument("--keepalive-seconds", type=int, default=shipped.keepalive_seconds)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    if args.quick:
        # One black hole longer than keepalive + its 10 s timeout: the old connection is
        # found dead and the dialer tries into the hole; a short one the connection outlives.
        args.cuts, args.outages, args.black_holes, args.up_seconds = 3, "5", "2,15", 1.0
        args.reconnect_min_ms = TEST_FEDERATION.reconnect_min_ms
        args.reconnect_max_ms = TEST_FEDERATION.reconnect_max_ms
        args.keepalive_seconds = 1
    for name in ("outages", "black_holes"):
        try:
            lengths = [float(x) for x in str(getattr(args, name)).split(",") if x.strip()]
        except ValueError:
            parser.error(f"--{name.replace('_', '-')} takes seconds separated by commas: 5,15")
        if any(x <= 0 for x in lengths):
            parser.error(f"--{name.replace('_', '-')}: each length must be more than 0 s")
        setattr(args, name, lengths)
    if args.cuts < 0 or args.up_seconds < 0:
        parser.error("--cuts and --up-seconds must not be negative")
    if not 0 < args.reconnect_min_ms <= args.reconnect_max_ms:
        parser.error("need 0 < --reconnect-min-ms <= --reconnect-max-ms")
    federation = FederationConfig(
        reconnect_min_ms=args.reconnect_min_ms,
        reconnect_max_ms=args.reconnect_max_ms,
        keepalive_seconds=args.keepalive_seconds,
    )
    print(
        f"reconnect ({args.database}): backoff {federation.reconnect_min_ms}-"
        f"{federation.reconnect_max_ms} ms, keepalive {federation.keepalive_seconds} s; "
        f"{args.cuts} cuts, outages of {', '.join(f'{x:g}' for x in args.outages)} s, "
        f"black holes of {', '.join(f'{x:g}' for x in args.black_holes)} s,"
        f" each after {args.up_seconds:g} s up",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="lapor-reconnect-") as tmp:
        run(args, Path(tmp), federation)


if __name__ == "__main__":
    main()
