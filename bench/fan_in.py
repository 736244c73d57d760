"""Fan-in: one province process holding the streams of many children while referrals flow.

A real `lapor-node serve` province (mutual TLS, its own database) links N children by
card. One client process (this one) plays all N children: each has its own key and
certificate, dials the province over its own mTLS channel, says Hello and acknowledges
every delivery, as a regency's stream does (it does not ledger them or answer with
receipts: the province's side of fan-in is what is measured). With every stream up,
referrals are made at the province at a steady rate, round-robin over the children, from
another process's point of view (through the services, as `complaint refer` does).

Prints: streams connected, the province's peak RSS (VmHWM) with them all up and after the
referrals, and the delivery latency (refer committed -> envelope received by the child)
p50 / p99, with a baseline measured in the same run: the same referrals to ONE child with
no other stream open. Asserts nothing. Usage:
    python bench/fan_in.py [--children 500] [--rate 20] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from bench.referral_throughput import (  # noqa: E402
    DRAFT,
    free_port,
    peak_rss_mb,
    serve,
    wait_port,
)
from node._proto.lapor.v1 import envelope_pb2, federation_pb2, federation_pb2_grpc  # noqa: E402
from node.crypto.card import NodeCard  # noqa: E402
from node.crypto.signing import SigningKey  # noqa: E402
from node.crypto.tls import dns_name, generate_tls_identity  # noqa: E402
from node.ids import NodeId  # noqa: E402
from node.services import complaints, links  # noqa: E402
from node.services.context import NodeContext  # noqa: E402
from node.services.setup import init_node  # noqa: E402


class Child:
    """One simulated child: its identity, and when each tracking id reached it."""

    def __init__(self, node_id: str, now: object) -> None:
        self.node_id = node_id
        self.tls = generate_tls_identity(NodeId(node_id), now)  # type: ignore[arg-type]
        self.key = SigningKey.generate()
        self.received: dict[str, float] = {}
        self.connected = asyncio.Event()

    def card(self) -> NodeCard:
        return NodeCard(NodeId(self.node_id), self.node_id, self.key.public, self.tls.cert_pem)


async def run_child(child: Child, address: str, province_cert: bytes, stop: asyncio.Event) -> None:
    creds = grpc.ssl_channel_credentials(
        root_certificates=province_cert,
        private_key=child.tls.key_pem,
        certificate_chain=child.tls.cert_pem,
    )
    options = [
        ("grpc.ssl_target_name_override", dns_name("id-64")),
        ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ]
    outgoing: asyncio.Queue[federation_pb2.ExchangeRequest | None] = asyncio.Queue()
    outgoing.put_nowait(
        federation_pb2.ExchangeRequest(
            frame=federation_pb2.Frame(hello=federation_pb2.Hello(protocol_version=1))
        )
    )

    async def requests():  # type: ignore[no-untyped-def]
        while (item := await outgoing.get()) is not None:
            yield item

    async with grpc.aio.secure_channel(address, creds, options=options) as channel:
        stub = federation_pb2_grpc.FederationServiceStub(channel)  # type: ignore[no-untyped-call]
        call = stub.Exchange(requests())
        reader = asyncio.ensure_future(_read(child, call, outgoing))
        await stop.wait()
        outgoing.put_nowait(None)
        reader.cancel()
        call.cancel()


async def _read(child: Child, call: object, outgoing: asyncio.Queue) -> None:  # type: ignore[type-arg]
    async for response in call:  # type: ignore[attr-defined]
        frame = response.frame
        kind = frame.WhichOneof("kind")
        if kind == "hello":
            child.connected.set()
        elif kind == "delivery":
            env = envelope_pb2.Envelope.FromString(frame.delivery.envelope.body)
            if env.WhichOneof("payload") == "referral":
                child.received[env.referral.complaint.tracking_id] = time.perf_counter()
            outgoing.put_nowait(
                federation_pb2.ExchangeRequest(
                    frame=federation_pb2.Frame(ack=federation_pb2.Ack(sequence=env.sequence))
                )
            )


def refer_steadily(
    ctx: NodeContext, children: list[Child], rate: float, seconds: float
) -> dict[str, float]:
    """Refer at `rate` per second for `seconds`, round-robin; tracking id -> refer time."""
    made: dict[str, float] = {}
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < seconds:
        child = children[n % len(children)]
        tid = complaints.submit(ctx, DRAFT)
        complaints.refer(ctx, tid, child.node_id)
        made[tid] = time.perf_counter()
        n += 1
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
    return made


def latencies(made: dict[str, float], children: list[Child], wait: float = 30) -> list[float]:
    deadline = time.perf_counter() + wait
    got: dict[str, float] = {}
    while time.perf_counter() < deadline:
        got = {t: at for c in children for t, at in c.received.items()}
        if all(t in got for t in made):
            break
        time.sleep(0.1)
    return sorted((got[t] - made[t]) * 1000 for t in made if t in got)


def phase(root: Path, label: str, n_children: int, rate: float, seconds: float) -> dict[str, float]:
    port = free_port()
    config = init_node(
        root / label,
        "id-64",
        "Provinsi Kalimantan Timur",
        listen=f"127.0.0.1:{port}",
        database_url=f"sqlite:///{root / label / 'node.db'}",
    )
    ctx = NodeContext.open(config)
    now = ctx.clock.now()
    children = [Child(f"id-64-{n:04d}", now) for n in range(n_children)]
    for child in children:
        links.add_link(ctx, child.card(), "child")
    province_cert = links.own_card(ctx).tls_cert_pem
    proc = serve(config, root / f"{label}.log")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        wait_port(port)
        stop = asyncio.Event()
        for child in children:
            asyncio.run_coroutine_threadsafe(
                run_child(child, f"127.0.0.1:{port}", province_cert, stop), loop
            )
        t0 = time.perf_counter()
        deadline = t0 + 120
        while time.perf_counter() < deadline:
            up = sum(c.connected.is_set() for c in children)
            if up == n_children:
                break
            time.sleep(0.2)
        connect_s = time.perf_counter() - t0
        rss_up = peak_rss_mb(proc.pid)
        made = refer_steadily(ctx, children, rate, seconds)
        lat = latencies(made, children)
        rss_end = peak_rss_mb(proc.pid)
        loop.call_soon_threadsafe(stop.set)
        return {
            "connected": float(sum(c.connected.is_set() for c in children)),
            "connect_s": connect_s,
            "rss_up": rss_up,
            "rss_end": rss_end,
            "referrals": float(len(made)),
            "delivered": float(len(lat)),
            "p50": statistics.median(lat) if lat else float("nan"),
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
        }
    finally:
        proc.terminate()
        proc.wait(60)
        loop.call_soon_threadsafe(loop.stop)
        ctx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=500)
    parser.add_argument("--rate", type=float, default=20.0, help="referrals per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lapor-fan-in-") as tmp:
        root = Path(tmp)
        base = phase(root, "baseline", 1, args.rate, args.seconds)
        fan = phase(root, "fan-in", args.children, args.rate, args.seconds)
    for label, r in (("baseline (1 child)", base), (f"fan-in ({args.children})", fan)):
        print(f"{label}:")
        print(f"  streams connected:      {int(r['connected'])} in {r['connect_s']:.1f} s")
        print(
            f"  province peak RSS:      {r['rss_up']:.0f} MB with streams up, "
            f"{r['rss_end']:.0f} MB after the referrals"
        )
        print(
            f"  referrals delivered:    {int(r['delivered'])} of {int(r['referrals'])} "
            f"at {args.rate:.0f}/s"
        )
        print(f"  delivery latency:       p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms")
    print(f"p99 fan-in / baseline:    {fan['p99'] / base['p99']:.2f}")
    print(f"RSS fan-in / baseline:    {fan['rss_end'] / base['rss_end']:.2f}")


if __name__ == "__main__":
    main()
