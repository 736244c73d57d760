"""The children of bench/fan_in.py: one process plays a slice of the N regencies.

Each child has its own signing key and TLS certificate (linked at the province by card),
dials the province over its own mutual-TLS channel and speaks the link protocol as a
regency's node does on the wire:
  - down: it takes the province's referrals and acknowledges each Deliveries frame;
  - up: for each referral it holds it sends, as a real regency would after handling it,
    a signed receipt (naming the referral's message id and body hash) and three signed
    status updates (follow_up: accepted -> in_progress, follow_up again, resolve:
    in_progress -> resolved), in one Deliveries frame, at the pace the bench asks for.
Every upward envelope is built and signed with the project's own code (node.envelopes.seal)
and carries the child's signed checkpoint (a C2SP note signed with its signing key, of a
log larger than every entry index its receipts name): the province verifies the signature,
witnesses the checkpoint, checks sequence, authority and lifecycle, ledgers each envelope
and acknowledges it. The child learns the commit time of sequence s from the province's
first Ack >= s; send -> Ack is the latency reported.

What is simplified: the child writes no database of its own, and it presents one
checkpoint for the whole run (so the province verifies one consistency-free adoption per
link, then compares the note it holds, as it does between a regency's checkpoints).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from google.protobuf.timestamp_pb2 import Timestamp

from node._proto.lapor.v1 import envelope_pb2, federation_pb2, federation_pb2_grpc
from node.crypto.signing import SigningKey
from node.crypto.tls import dns_name
from node.envelopes import seal
from node.ids import new_message_id
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.note import sign_checkpoint

# The size of the log the children's checkpoint states: larger than any entry index a
# receipt names (the province checks receipt.entry_index < checkpoint size).
CHILD_LOG_SIZE = 1_000_000
UPDATES = (  # (action, status after it): the lifecycle after the receipt's accept
    ("follow_up", "in_progress"),
    ("follow_up", "in_progress"),
    ("resolve", "resolved"),
)
ENVELOPES_PER_REFERRAL = 1 + len(UPDATES)


@dataclass(frozen=True)
class ChildSpec:
    node_id: str
    signing_pem: bytes
    tls_key_pem: bytes
    tls_cert_pem: bytes


@dataclass(frozen=True)
class Plan:
    """What every child of a run does (picklable, sent to each process)."""

    address: str
    province_id: str
    province_cert: bytes
    send_up: bool  # answer referrals with receipts and status updates
    respond_live: bool  # also answer referrals that arrive after `go` (direction both)
    interval: float  # seconds between one child's upward frames (0: all at once)


@dataclass
class ChildState:
    spec: ChildSpec
    key: SigningKey
    checkpoint: bytes
    held: list[envelope_pb2.Envelope] = field(default_factory=list)  # referrals to answer
    received: dict[str, float] = field(default_factory=dict)  # tracking id -> when
    next_seq: int = 1
    unacked: dict[int, float] = field(default_factory=dict)  # sequence -> sent at
    latencies: list[float] = field(default_factory=list)  # ms, send -> province's Ack
    acked_envelopes: int = 0
    last_ack: float = 0.0
    connected: bool = False
    entry: int = 0


def child_state(spec: ChildSpec) -> ChildState:
    private = load_pem_private_key(spec.signing_pem, password=None)
    assert isinstance(private, Ed25519PrivateKey)
    root = hashlib.sha256(spec.node_id.encode()).digest()
    note = sign_checkpoint(
        Checkpoint(origin_for(spec.node_id), CHILD_LOG_SIZE, root),
        origin_for(spec.node_id),
        private,
    )
    return ChildState(spec, SigningKey(private), note)


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def upward(
    child: ChildState, plan: Plan, referral: envelope_pb2.Envelope, body: bytes
) -> list[federation_pb2.Delivery]:
    """The four signed envelopes a regency sends up for one referral it handled."""
    tracking_id = referral.referral.complaint.tracking_id
    me = child.spec.node_id
    child.entry += 1
    payloads: list[dict[str, Any]] = [
        {
            "receipt": envelope_pb2.Receipt(
                referral_message_id=referral.message_id,
                referral_body_sha256=hashlib.sha256(body).digest(),
                tracking_id=tracking_id,
                entry_index=child.entry,
            )
        }
    ]
    for action, status in UPDATES:
        update = envelope_pb2.StatusUpdate(
            tracking_id=tracking_id, action=action, status=status, holder=me, actor=me
        )
        update.at.CopyFrom(_now())
        payloads.append({"status_update": update})
    out = []
    for payload in payloads:
        env = envelope_pb2.Envelope(
            message_id=new_message_id(),
            sender=me,
            recipient=plan.province_id,
            sequence=child.next_seq,
            checkpoint=child.checkpoint,
            **payload,
        )
        env.sent_at.CopyFrom(_now())
        child.next_seq += 1
        out.append(federation_pb2.Delivery(envelope=seal(env, child.key)))
    return out


async def run_child(child: ChildState, plan: Plan, go: asyncio.Event, stop: asyncio.Event) -> None:
    creds = grpc.ssl_channel_credentials(
        root_certificates=plan.province_cert,
        private_key=child.spec.tls_key_pem,
        certificate_chain=child.spec.tls_cert_pem,
    )
    options = [
        ("grpc.ssl_target_name_override", dns_name(plan.province_id)),
        ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ]
    outgoing: asyncio.Queue[federation_pb2.ExchangeRequest | None] = asyncio.Queue()

    def put(frame: federation_pb2.Frame) -> None:
        outgoing.put_nowait(federation_pb2.ExchangeRequest(frame=frame))

    put(
        federation_pb2.Frame(
            hello=federation_pb2.Hello(
                protocol_version=1, max_frame_deliveries=64, max_frame_bytes=1 << 20
            )
        )
    )
    pending: asyncio.Queue[tuple[envelope_pb2.Envelope, bytes]] = asyncio.Queue()

    async def requests():  # type: ignore[no-untyped-def]
        while (item := await outgoing.get()) is not None:
            yield item

    def send_up(referral: envelope_pb2.Envelope, body: bytes) -> None:
        first = child.next_seq
        items = upward(child, plan, referral, body)
        now = time.monotonic()
        for seq in range(first, child.next_seq):
            child.unacked[seq] = now
        put(federation_pb2.Frame(deliveries=federation_pb2.Deliveries(items=items)))

    async def pace() -> None:
        await go.wait()
        # Spread the children's frames over the interval (random phase), then one frame
        # per interval per child.
        await asyncio.sleep(random.random() * plan.interval)
        while not stop.is_set():
            referral, body = await pending.get()
            send_up(referral, body)
            if plan.interval:
                await asyncio.sleep(plan.interval)

    async with grpc.aio.secure_channel(plan.address, creds, options=options) as channel:
        stub = federation_pb2_grpc.FederationServiceStub(channel)  # type: ignore[no-untyped-call]
        call = stub.Exchange(requests())
        pacer = asyncio.ensure_future(pace()) if plan.send_up else None
        reader = asyncio.ensure_future(_read(child, plan, call, put, pending, go))
        await stop.wait()
        outgoing.put_nowait(None)
        for task in (reader, pacer):
            if task is not None:
                task.cancel()
        call.cancel()


async def _read(
    child: ChildState,
    plan: Plan,
    call: Any,
    put: Any,
    pending: asyncio.Queue[tuple[envelope_pb2.Envelope, bytes]],
    go: asyncio.Event,
) -> None:
    async for response in call:
        frame = response.frame
        kind = frame.WhichOneof("kind")
        if kind == "hello":
            child.connected = True
        elif kind == "ack":
            now = time.monotonic()
            for seq in [s for s in child.unacked if s <= frame.ack.sequence]:
                child.latencies.append((now - child.unacked.pop(seq)) * 1000)
                child.acked_envelopes += 1
                child.last_ack = now
        elif kind in ("delivery", "deliveries"):
            items = [frame.delivery] if kind == "delivery" else list(frame.deliveries.items)
            last = 0
            for item in items:
                env = envelope_pb2.Envelope.FromString(item.envelope.body)
                last = env.sequence
                if env.WhichOneof("payload") == "referral":
                    child.received[env.referral.complaint.tracking_id] = time.monotonic()
                    if plan.send_up and (plan.respond_live or not go.is_set()):
                        pending.put_nowait((env, item.envelope.body))
            put(federation_pb2.Frame(ack=federation_pb2.Ack(sequence=last)))


async def _run_all(specs: list[ChildSpec], plan: Plan, conn: Any) -> dict[str, Any]:
    children = [child_state(s) for s in specs]
    go, stop = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.ensure_future(run_child(c, plan, go, stop)) for c in children]
    loop = asyncio.get_running_loop()
    while True:  # report progress until told to go; then until told to stop
        if await loop.run_in_executor(None, conn.poll, 0.5):
            command = conn.recv()
            if command == "go":
                go.set()
            elif command == "stop":
                break
        conn.send(
            (
                "status",
                sum(c.connected for c in children),
                sum(len(c.received) for c in children),
                sum(c.acked_envelopes for c in children),
            )
        )
    stop.set()
    await asyncio.wait(tasks, timeout=10)
    return {
        "latencies": [x for c in children for x in c.latencies],
        "acked": sum(c.acked_envelopes for c in children),
        "sent": sum(c.next_seq - 1 for c in children),
        "last_ack": max((c.last_ack for c in children), default=0.0),
        "received": {t: at for c in children for t, at in c.received.items()},
    }


def worker(specs: list[ChildSpec], plan: Plan, conn: Any) -> None:
    """A child process: run `specs` until the bench says stop; send back the figures."""
    result = asyncio.run(_run_all(specs, plan, conn))
    conn.send(("done", result))
