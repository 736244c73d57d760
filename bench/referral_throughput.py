"""Referral throughput and handover latency, province -> regency, against a bare gRPC baseline.

Two `lapor-node serve` processes on loopback with mutual TLS and their own databases:
  1. throughput: N referrals are queued at the province (through the real services, in
     batches), then both nodes start; the clock runs from the province listening until every
     signed receipt is verified and recorded at the province. Each referral is signed,
     verified, committed with its ledger entry on both sides, and receipted. This is also
     the catch-up case (a regency offline while N queue, then reconnected): the drain time
     and the peak RSS of both processes (VmHWM) are printed.
  2. latency at low load: referrals made one at a time (as an operator's CLI would, from
     another process), each timed from `refer` returning to the receipt being recorded.
  3. baseline: two bare grpc.aio processes with the same mTLS certificates stream N messages
     of the same size as a referral frame, the receiver answering each with a small ack.
Prints figures only; it asserts nothing. Usage:
    python bench/referral_throughput.py [--n 5000] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from node._proto.lapor.v1 import federation_pb2, federation_pb2_grpc  # noqa: E402
from node.complaints import ComplaintDraft  # noqa: E402
from node.crypto.tls import dns_name  # noqa: E402
from node.federation.runtime import exchange_service  # noqa: E402
from node.services import complaints, exchange, links  # noqa: E402
from node.services.context import NodeContext  # noqa: E402
from node.services.setup import init_node  # noqa: E402
from node.store.models import Complaint, Link  # noqa: E402
from tests.support.nodes import free_port, free_ports  # noqa: E402

DRAFT = ComplaintDraft(
    title="Jalan poros Tenggarong-Samarinda berlubang di km 12",
    description="Lubang besar di badan jalan, sudah beberapa pengendara jatuh. " * 6,
    classification="pengaduan",
    category="infrastruktur",
    region_code="64.02",
    channel="web",
    reporter_name="Nama Pelapor",
    reporter_contact="081200000000",
)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.01)
    raise SystemExit(f"nothing listening on {port}")


def database_url(kind: str, tmp: Path, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / name / 'node.db'}"
    from sqlalchemy import create_engine, text

    db = f"lapor_bench_{uuid.uuid4().hex[:10]}"
    with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + db


def drop_databases(urls: list[str]) -> None:
    """Remove the PostgreSQL databases a run created (SQLite files go with the temp dir)."""
    from sqlalchemy import create_engine, text

    names = [u.rsplit("/", 1)[1] for u in urls if u.startswith("postgresql")]
    if not names:
        return
    with create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT").connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def serve(config: Path, log: Path, profile: Path | None = None) -> subprocess.Popen[bytes]:
    """`lapor-node serve` in its own process; watched by py-spy (collapsed stacks written
    to `profile` when the process ends) when one is given."""
    cmd = [sys.executable, "-m", "node.cli.main", "serve", "--config", str(config)]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=out)
        if profile is not None:
            spy = Path(sys.executable).with_name("py-spy")
            subprocess.Popen(
                [
                    str(spy),
                    "record",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--rate",
                    "100",
                    "-o",
                    str(profile),
                    "--pid",
                    str(proc.pid),
                ],
                stdout=out,
                stderr=out,
            )
        return proc


def peak_rss_mb(pid: int) -> float:
    """The peak resident set size of process `pid` so far, in MB (0 where /proc has none)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used so far, in seconds (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_accepted(ctx: NodeContext) -> int:
    """How many complaints the province holds as accepted (one COUNT, read once at the end:
    it reads every complaint, so polling it would take CPU from the nodes measured)."""
    with ctx.db.read() as session:
        return (
            session.scalar(
                select(func.count()).select_from(Complaint).where(Complaint.status == "accepted")
            )
            or 0
        )


def receipts_in(ctx: NodeContext, peer: str) -> int:
    """The last sequence the province committed from `peer`: the regency sends it nothing
    but receipts, one per referral, so this counts them with a read of one row."""
    with ctx.db.read() as session:
        return session.scalar(select(Link.last_in_seq).where(Link.peer_id == peer)) or 0


def status_of(ctx: NodeContext, tracking_id: str) -> str | None:
    """A complaint's status at the province (one small query: the latency poll must not
    take CPU from the nodes being measured)."""
    with ctx.db.read() as session:
        return session.scalar(select(Complaint.status).where(Complaint.tracking_id == tracking_id))


def frame_size(ctx: NodeContext, peer: str) -> int:
    rows, _ = exchange.pending(ctx, peer, 0, 1, 0)  # type: ignore[arg-type]
    return federation_pb2.Frame(delivery=rows[0][1]).ByteSize()


def bench_nodes(
    n: int, kind: str, samples: int, tmp: Path, profile: Path | None = None
) -> dict[str, float]:
    pp, rp = free_ports(2)
    prov = init_node(
        tmp / "prov",
        "id-64",
        "Provinsi Kalimantan Timur",
        listen=f"127.0.0.1:{pp}",
        database_url=database_url(kind, tmp, "prov"),
    )
    reg = init_node(
        tmp / "reg",
        "id-64-02",
        "Kabupaten Kutai Kartanegara",
        listen=f"127.0.0.1:{rp}",
        database_url=database_url(kind, tmp, "reg"),
    )
    p, r = NodeContext.open(prov), NodeContext.open(reg)
    links.add_link(p, links.own_card(r), "child")
    links.add_link(r, links.own_card(p), "parent", f"127.0.0.1:{pp}")
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        ids = complaints.submit_many(p, [DRAFT] * min(500, n - start))
        complaints.refer_many(p, ids, "id-64-02")
    queue_s = time.perf_counter() - t0
    size = frame_size(p, "id-64-02")
    procs = [serve(reg, tmp / "reg.log", profile and profile / "regency.txt")]
    wait_port(rp)
    procs.append(serve(prov, tmp / "prov.log", profile and profile / "province.txt"))
    try:
        wait_port(pp)
        t0 = time.perf_counter()
        first = receipts_in(p, "id-64-02")
        while first == 0:
            time.sleep(0.005)
            first = receipts_in(p, "id-64-02")
        # The steady rate is counted from the first receipts seen: the time before them is
        # the regency's dial (its backoff while the province was starting) and the first
        # batch, which the catch-up figure (drain_s) includes and the rate does not.
        t_first = time.perf_counter()
        cpu_first = [cpu_seconds(proc.pid) for proc in procs]
        while receipts_in(p, "id-64-02") < n:
            time.sleep(0.02)
        t_end = time.perf_counter()
        cpu_used = [cpu_seconds(proc.pid) - c for proc, c in zip(procs, cpu_first, strict=True)]
        drain_s = t_end - t0
        steady = n - first
        accepted = count_accepted(p)
        if accepted != n:
            raise SystemExit(f"{n} receipts arrived but {accepted} complaints are accepted")
        # Peak resident memory of each process over the catch-up (Linux: VmHWM).
        peak_mb = [peak_rss_mb(proc.pid) for proc in procs]
        latencies = []
        for _ in range(samples):
            tid = complaints.submit(p, DRAFT)
            t1 = time.perf_counter()
            complaints.refer(p, tid, "id-64-02")
            t2 = time.perf_counter()
            while status_of(p, tid) != "accepted":
                time.sleep(0.002)
            latencies.append(time.perf_counter() - t2)
            del t1
            time.sleep(0.1)  # about 10 referrals per second
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
        p.close()
        r.close()
        drop_databases([p.config.database_url, r.config.database_url])
    latencies.sort()
    return {
        "queue_s": queue_s,
        "drain_s": drain_s,
        "rate": steady / (t_end - t_first) if steady else n / drain_s,
        "first_s": t_first - t0,
        "regency_cpu_us": cpu_used[0] / max(steady, 1) * 1e6,
        "province_cpu_us": cpu_used[1] / max(steady, 1) * 1e6,
        "frame": size,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "regency_peak_mb": peak_mb[0],
        "province_peak_mb": peak_mb[1],
        "tls": (tmp / "prov"),  # type: ignore[dict-item]
    }


# Bare baseline ---------------------------------------------------------------------------


async def bare_server(port: int, key: bytes, cert: bytes, peer_cert: bytes) -> None:
    async def exchange_handler(request_iterator, context):  # type: ignore[no-untyped-def]
        n = 0
        async for _ in request_iterator:
            n += 1
            yield federation_pb2.ExchangeResponse(
                frame=federation_pb2.Frame(ack=federation_pb2.Ack(sequence=n))
            )

    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4 << 20)])
    server.add_generic_rpc_handlers((exchange_service(exchange_handler),))
    creds = grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=peer_cert, require_client_auth=True
    )
    server.add_secure_port(f"127.0.0.1:{port}", creds)
    await server.start()
    await server.wait_for_termination()


async def bare_client(
    port: int, n: int, size: int, key: bytes, cert: bytes, server_cert: bytes, server_id: str
) -> float:
    creds = grpc.ssl_channel_credentials(server_cert, key, cert)
    payload = os.urandom(max(0, size - 8))
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{port}", creds, options=[("grpc.ssl_target_name_override", dns_name(server_id))]
    ) as channel:
        await channel.channel_ready()
        call = federation_pb2_grpc.FederationServiceStub(channel).Exchange()
        t0 = time.perf_counter()

        async def send() -> None:
            for _ in range(n):
                await call.write(
                    federation_pb2.ExchangeRequest(
                        frame=federation_pb2.Frame(
                            delivery=federation_pb2.Delivery(content=payload)
                        )
                    )
                )
            await call.done_writing()

        sender = asyncio.create_task(send())
        got = 0
        async for _ in call:
            got += 1
        await sender
        return n / (time.perf_counter() - t0) if got == n else 0.0


def bench_bare(n: int, size: int, prov_dir: Path, reg_dir: Path) -> float:
    port = free_port()
    keys = {
        d: ((d / "keys" / "tls.key").read_bytes(), (d / "keys" / "tls.crt").read_bytes())
        for d in (prov_dir, reg_dir)
    }
    server = subprocess.Popen(
        [sys.executable, __file__, "--bare-server", str(port), str(prov_dir), str(reg_dir)]
    )
    try:
        wait_port(port)
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--bare-client",
                str(port),
                str(n),
                str(size),
                str(reg_dir),
                str(prov_dir),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return float(out.stdout.strip())
    finally:
        server.terminate()
        server.wait(10)
        del keys


def signature_costs(samples: int = 2000) -> tuple[float, float]:
    """Microseconds per Ed25519 signature and per verification of a referral-sized body
    on this machine now (the node's own signing code)."""
    from node.crypto.signing import SigningKey
    from node.envelopes import ENVELOPE_PURPOSE

    key = SigningKey.generate()
    body = os.urandom(900)
    t0 = time.perf_counter()
    for _ in range(samples):
        signature = key.sign(ENVELOPE_PURPOSE, body)
    t1 = time.perf_counter()
    for _ in range(samples):
        key.public.verify(ENVELOPE_PURPOSE, body, signature)
    t2 = time.perf_counter()
    return (t1 - t0) / samples * 1e6, (t2 - t1) / samples * 1e6


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-server":
        port, own, peer = int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
        asyncio.run(
            bare_server(
                port,
                (own / "keys/tls.key").read_bytes(),
                (own / "keys/tls.crt").read_bytes(),
                (peer / "keys/tls.crt").read_bytes(),
            )
        )
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-client":
        port, n, size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        own, server = Path(sys.argv[5]), Path(sys.argv[6])
        print(
            asyncio.run(
                bare_client(
                    port,
                    n,
                    size,
                    (own / "keys/tls.key").read_bytes(),
                    (own / "keys/tls.crt").read_bytes(),
                    (server / "keys/tls.crt").read_bytes(),
                    "id-64",
                )
            )
        )
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="referrals for the throughput run")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--latency-samples", type=int, default=50)
    parser.add_argument(
        "--profile",
        type=Path,
        help="run both nodes under py-spy; collapsed stacks go to DIR/province.txt and "
        "DIR/regency.txt",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lapor-bench-") as tmp:
        result = bench_nodes(args.n, args.database, args.latency_samples, Path(tmp), args.profile)
        bare = bench_bare(args.n, int(result["frame"]), Path(tmp) / "prov", Path(tmp) / "reg")
    print(f"database:                 {args.database}")
    print(f"referral frame size:      {int(result['frame'])} bytes")
    print(f"queued at the province:   {args.n} referrals in {result['queue_s']:.1f} s")
    print(
        f"throughput:               {result['rate']:.0f} referrals/s "
        f"(steady, from the first receipts; signed, verified, ledgered, receipted)"
    )
    print(
        f"drained:                  {args.n} in {result['drain_s']:.2f} s from the province's "
        f"start ({args.n / result['drain_s']:.0f}/s; first receipts after "
        f"{result['first_s']:.2f} s)"
    )
    print(
        f"CPU per referral:         province {result['province_cpu_us']:.0f} us, "
        f"regency {result['regency_cpu_us']:.0f} us (user + system, steady part)"
    )
    print(
        f"catch-up peak RSS:        province {result['province_peak_mb']:.0f} MB, "
        f"regency {result['regency_peak_mb']:.0f} MB (both started after {args.n} were queued)"
    )
    print(f"bare grpc.aio stream:     {bare:.0f} messages/s (same size, mTLS, acked)")
    print(f"ratio node/bare:          {result['rate'] / bare:.3f}" if bare else "ratio: n/a")
    sign_us, verify_us = signature_costs()
    print(
        f"signature floor:          Ed25519 sign {sign_us:.0f} us, verify {verify_us:.0f} us; "
        f"the regency verifies each referral and signs its receipt: at most "
        f"{1e6 / (sign_us + verify_us):.0f} referrals/s on signatures alone"
    )
    print(
        f"latency at ~10/s:         p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms "
        f"(refer -> verified receipt at the province, {args.latency_samples} samples)"
    )


if __name__ == "__main__":
    main()
