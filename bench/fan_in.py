"""Fan-in: one province holding the streams of many regencies, envelopes flowing both ways.

A real `lapor-node serve` province (mutual TLS, its own fresh database: SQLite, or a new
PostgreSQL database on 127.0.0.1:5432) links N children by card. A few client processes
(bench/_fan_in_children.py) play the N children, each with its own key and certificate
and its own mTLS channel. Before the measured window the province refers K complaints to
each child (queued through the services, as `complaint refer` does); the children take
and acknowledge them (down). Then, for --seconds:
  - up (--direction up|both): every child answers each referral it holds as a regency's
    node would, with a signed receipt and three signed status updates (follow_up,
    follow_up, resolve), one frame of four envelopes every N*4/--up-rate seconds (so the
    children together offer --up-rate envelopes/s). The province verifies, ledgers and
    acknowledges each; the child times send -> the province's Ack of that sequence;
  - down (--direction down|both): the province refers new complaints at --rate per second,
    round-robin over the children (from this process, through the services), timed from
    `refer` returning to the child receiving it; with `both` the children answer those too.
With --profile-window, py-spy watches the province over the measured window only.
Prints per run: upward envelopes/s achieved (and offered), upward p50/p99 (send -> commit
Ack), downward p50/p99, the province's peak RSS (VmHWM), its CPU seconds in the window,
and the load average when the run began (the machine is shared). Asserts nothing. Usage:
    python bench/fan_in.py [--children 500] [--direction both] [--database postgresql]
    python bench/fan_in.py --sweep             # PostgreSQL 100/500/1200, SQLite 100/500
    python bench/fan_in.py --group-commit compare --children 1200   # before/after
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench._fan_in_children import ENVELOPES_PER_REFERRAL, ChildSpec, Plan, worker  # noqa: E402
from bench.referral_throughput import (  # noqa: E402
    DRAFT,
    cpu_seconds,
    database_url,
    drop_databases,
    free_port,
    peak_rss_mb,
    serve,
    wait_port,
)
from node.crypto.card import NodeCard  # noqa: E402
from node.crypto.signing import SigningKey  # noqa: E402
from node.crypto.tls import generate_tls_identity  # noqa: E402
from node.ids import NodeId  # noqa: E402
from node.services import complaints, links  # noqa: E402
from node.services.context import NodeContext  # noqa: E402
from node.services.setup import init_node  # noqa: E402
from node.store.models import Link  # noqa: E402

PROVINCE = "id-64"


def _set_group_commit(config: Path, on: bool | None) -> None:
    """Write federation.group_commit into the province's node.yaml (None: leave it)."""
    if on is None:
        return
    text = config.read_text()
    line = f"  group_commit: {'true' if on else 'false'}\n"
    lines = text.splitlines(keepends=True)
    kept = [x for x in lines if not x.startswith("  group_commit:")]
    at = kept.index("federation:\n") + 1
    config.write_text("".join([*kept[:at], line, *kept[at:]]))


def _children(ctx: NodeContext, n: int) -> list[ChildSpec]:
    now = ctx.clock.now()
    specs = []
    for i in range(n):
        node_id = f"id-64-{i:04d}"
        tls = generate_tls_identity(NodeId(node_id), now)
        key = SigningKey.generate()
        links.add_link(ctx, NodeCard(NodeId(node_id), node_id, key.public, tls.cert_pem), "child")
        specs.append(ChildSpec(node_id, key.to_pem(), tls.key_pem, tls.cert_pem))
    return specs


def _refer(ctx: NodeContext, specs: list[ChildSpec], per_child: int) -> None:
    """Queue `per_child` referrals to every child (before the province serves)."""
    for spec in specs:
        tids = complaints.submit_many(ctx, [DRAFT] * per_child)
        complaints.refer_many(ctx, tids, spec.node_id)


class Workers:
    """The client processes and what they last reported."""

    def __init__(self, specs: list[ChildSpec], plan: Plan, procs: int) -> None:
        mp = multiprocessing.get_context("spawn")
        self.conns = []
        self.procs = []
        for i in range(procs):
            mine = specs[i::procs]
            if not mine:
                continue
            here, there = mp.Pipe()
            proc = mp.Process(target=worker, args=(mine, plan, there), daemon=True)
            proc.start()
            self.conns.append(here)
            self.procs.append(proc)
        self.status = [(0, 0, 0)] * len(self.conns)

    def poll(self) -> tuple[int, int, int]:
        """(streams connected, referrals received, upward envelopes acknowledged)."""
        for i, conn in enumerate(self.conns):
            while conn.poll():
                message = conn.recv()
                if message[0] == "status":
                    self.status[i] = message[1:]
        return tuple(sum(s[k] for s in self.status) for k in range(3))  # type: ignore[return-value]

    def send(self, command: str) -> None:
        for conn in self.conns:
            conn.send(command)

    def finish(self) -> list[dict[str, Any]]:
        self.send("stop")
        results = []
        for conn in self.conns:
            while True:
                message = conn.recv()
                if message[0] == "done":
                    results.append(message[1])
                    break
        for proc in self.procs:
            proc.join(30)
        return results


def _wait(workers: Workers, test: Any, timeout: float) -> tuple[int, int, int]:
    deadline = time.monotonic() + timeout
    status = workers.poll()
    while time.monotonic() < deadline and not test(status):
        time.sleep(0.25)
        status = workers.poll()
    return status


def _wait_acked(ctx: NodeContext, per_child: int, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    query = select(func.count()).select_from(Link).where(Link.acked_out_seq >= per_child)
    while time.monotonic() < deadline:
        with ctx.db.read() as session:
            if (session.scalar(query) or 0) >= n:
                return
        time.sleep(0.5)


def _refer_steadily(
    ctx: NodeContext, specs: list[ChildSpec], rate: float, seconds: float, made: dict[str, float]
) -> None:
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        tid = complaints.submit(ctx, DRAFT)
        complaints.refer(ctx, tid, specs[n % len(specs)].node_id)
        made[tid] = time.monotonic()
        n += 1
        time.sleep(max(0.0, start + n / rate - time.monotonic()))


def _profile_window(args: argparse.Namespace, pid: int, kind: str, n: int) -> None:
    """py-spy on the province over the measured window only (streams connected), idle
    threads included, each stack under its thread: PATH.<db>.<n>.txt (raw)."""
    out = Path(args.profile_window).with_suffix(f".{kind}.{n}.txt")
    spy = Path(sys.executable).with_name("py-spy")
    subprocess.Popen(
        [
            str(spy),
            "record",
            "--nonblocking",
            "--idle",
            "--threads",
            "--format",
            "raw",
            "--rate",
            "100",
            "--duration",
            str(int(args.seconds)),
            "-o",
            str(out),
            "--pid",
            str(pid),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def run(args: argparse.Namespace, kind: str, n: int, group: bool | None) -> dict[str, Any]:
    """One province, `n` children, one measured window; its figures."""
    load = os.getloadavg()[0]
    up = args.direction in ("up", "both")
    down = args.direction in ("down", "both")
    interval = n * ENVELOPES_PER_REFERRAL / args.up_rate if up else 0.0
    per_child = max(1, math.ceil(args.seconds / interval)) if up else 1
    with tempfile.TemporaryDirectory(prefix="lapor-fan-in-") as tmp:
        root = Path(tmp)
        port = free_port()
        (root / "province").mkdir()
        url = database_url(kind, root, "province")
        try:
            config = init_node(
                root / "province",
                PROVINCE,
                "Provinsi Kalimantan Timur",
                listen=f"127.0.0.1:{port}",
                database_url=url,
            )
            _set_group_commit(config, group)
            ctx = NodeContext.open(config)
            t0 = time.monotonic()
            specs = _children(ctx, n)
            _refer(ctx, specs, per_child)
            prep_s = time.monotonic() - t0
            province_cert = links.own_card(ctx).tls_cert_pem
            profile = root / "profile.txt" if args.profile else None
            proc = serve(config, root / "province.log", profile)
            try:
                wait_port(port, 60)
                plan = Plan(f"127.0.0.1:{port}", PROVINCE, province_cert, up, down, interval)
                workers = Workers(specs, plan, args.procs)
                t0 = time.monotonic()
                status = _wait(
                    workers, lambda s: s[0] == n and s[1] >= n * per_child, args.connect_timeout
                )
                # The province has taken the children's Acks of those referrals: what
                # connecting queued on its writer is done before the window opens.
                _wait_acked(ctx, per_child, n, args.connect_timeout)
                connect_s = time.monotonic() - t0
                rss_up = peak_rss_mb(proc.pid)
                cpu0 = cpu_seconds(proc.pid)
                go = time.monotonic()
                if args.profile_window:
                    _profile_window(args, proc.pid, kind, n)
                workers.send("go")
                made: dict[str, float] = {}
                refer = None
                if down:
                    refer = threading.Thread(
                        target=_refer_steadily, args=(ctx, specs, args.rate, args.seconds, made)
                    )
                    refer.start()
                time.sleep(args.seconds)
                if refer is not None:
                    refer.join()
                offered = n * per_child * ENVELOPES_PER_REFERRAL if up else 0
                if up:  # let what was sent be acknowledged (bounded)
                    _wait(
                        workers,
                        lambda s: s[2] >= offered + len(made) * ENVELOPES_PER_REFERRAL,
                        args.drain_timeout,
                    )
                elif down:
                    time.sleep(2)
                cpu = cpu_seconds(proc.pid) - cpu0
                rss_end = peak_rss_mb(proc.pid)
                results = workers.finish()
            finally:
                proc.terminate()
                proc.wait(60)
                ctx.close()
            log = (root / "province.log").read_text(errors="replace")
            if args.log:
                Path(args.log).with_suffix(f".{kind}.{n}.log").write_text(log)
            refusals = log.count("link.refused") + log.count("link.task_failed")
            if profile is not None and profile.exists():
                out = Path(args.profile).with_suffix(f".{kind}.{n}.txt")
                out.write_bytes(profile.read_bytes())
        finally:
            drop_databases([url])
    lat = [x for r in results for x in r["latencies"]]
    acked = sum(r["acked"] for r in results)
    sent = sum(r["sent"] for r in results)
    last = max((r["last_ack"] for r in results), default=0.0)
    received = {t: at for r in results for t, at in r["received"].items()}
    down_lat = [(received[t] - at) * 1000 for t, at in made.items() if t in received]
    return {
        "kind": kind,
        "children": n,
        "group": group,
        "load": load,
        "prep_s": prep_s,
        "connected": status[0],
        "connect_s": connect_s,
        "offered": offered,
        "sent": sent,
        "offered_rate": args.up_rate if up else 0,
        "acked": acked,
        "rate": acked / (last - go) if acked and last > go else 0.0,
        "p50": _pct(lat, 0.5),
        "p99": _pct(lat, 0.99),
        "down_made": len(made),
        "down_got": len(down_lat),
        "down_p50": _pct(down_lat, 0.5),
        "down_p99": _pct(down_lat, 0.99),
        "rss_up": rss_up,
        "rss_end": rss_end,
        "cpu": cpu,
        "refusals": refusals,
    }


def report(r: dict[str, Any]) -> None:
    gc = {None: "", True: ", group commit on", False: ", group commit off"}[r["group"]]
    print(f"{r['kind']}, {r['children']} children{gc} (load average {r['load']:.1f} at start):")
    print(
        f"  streams connected:   {r['connected']} in {r['connect_s']:.1f} s "
        f"(setup {r['prep_s']:.0f} s)"
    )
    if r["offered"]:
        print(
            f"  upward:              {r['acked']} of {r['sent']} envelopes acknowledged, "
            f"{r['rate']:.0f}/s (offered {r['offered_rate']:.0f}/s); "
            f"{r['acked'] / r['cpu'] if r['cpu'] else 0:.0f} per province CPU second"
        )
        print(f"  send -> commit Ack:  p50 {r['p50']:.0f} ms, p99 {r['p99']:.0f} ms")
    if r["down_made"]:
        print(
            f"  downward:            {r['down_got']} of {r['down_made']} referrals delivered, "
            f"p50 {r['down_p50']:.0f} ms, p99 {r['down_p99']:.0f} ms"
        )
    print(
        f"  province:            peak RSS {r['rss_end']:.0f} MB ({r['rss_up']:.0f} MB with "
        f"streams up), CPU {r['cpu']:.1f} s in the window, "
        f"{r['refusals']} links refused or failed",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=500)
    parser.add_argument("--direction", choices=("up", "down", "both"), default="both")
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--sweep", action="store_true", help="PostgreSQL 100/500/1200, SQLite 100/500"
    )
    parser.add_argument("--up-rate", type=float, default=2500.0, help="upward envelopes/s offered")
    parser.add_argument("--rate", type=float, default=20.0, help="referrals/s made at the province")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--procs", type=int, default=3, help="client processes")
    parser.add_argument(
        "--group-commit", choices=("default", "on", "off", "compare"), default="default"
    )
    parser.add_argument("--profile", help="py-spy raw stacks of the province to PATH.<db>.<n>.txt")
    parser.add_argument(
        "--profile-window",
        help="py-spy raw stacks of the province over the window only (idle threads too, "
        "by thread) to PATH.<db>.<n>.txt",
    )
    parser.add_argument("--log", help="keep the province's log as PATH.<db>.<n>.log")
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument("--drain-timeout", type=float, default=60.0)
    args = parser.parse_args()
    runs = (
        [
            ("postgresql", 100),
            ("postgresql", 500),
            ("postgresql", 1200),
            ("sqlite", 100),
            ("sqlite", 500),
        ]
        if args.sweep
        else [(args.database, args.children)]
    )
    groups: list[bool | None] = {
        "default": [None],
        "on": [True],
        "off": [False],
        "compare": [False, True],
    }[args.group_commit]
    for kind, n in runs:
        for group in groups:
            report(run(args, kind, n, group))


if __name__ == "__main__":
    main()
