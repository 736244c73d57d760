"""Intake under a gateway that stalls (issue 21.9) and bytes that are not the protocol
(issue 21.10), over real TLS on SQLite and PostgreSQL: one gateway's stalled submissions
never starve another's, a stalled submission ends at its deadline and frees its place, and
invalid UTF-8 is INVALID_ARGUMENT (which gateways do not retry), never INTERNAL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from node._proto.lapor.v1 import intake_pb2, intake_pb2_grpc
from node.crypto.keyfiles import read_file
from node.crypto.tls import dns_name, fingerprint
from node.federation.intake_client import IntakeClient, submission_for
from node.federation.intake_port import IntakeLimits, IntakeServer, start_intake
from node.services import intake
from node.services.context import NodeContext
from node.services.setup import init_node
from tests.integration.test_intake import _counts, _draft, _intake_section
from tests.support.nodes import free_ports, wait_until

pytestmark = pytest.mark.slow

T = TypeVar("T")
# Bounds for waiting on conditions (never on how fast something is).
WAIT = 60.0


class _Db:
    def __init__(self) -> None:
        self.writer = ThreadPoolExecutor(1)
        self.readers = ThreadPoolExecutor(2)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.writer, fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.readers, fn, *args)


@dataclass
class Intake:
    ctx: NodeContext
    address: str
    cert: bytes
    tokens: dict[str, str]

    def client(self, gateway: str) -> IntakeClient:
        return IntakeClient(self.address, self.tokens[gateway], fingerprint(self.cert))

    def channel(self) -> grpc.Channel:
        return grpc.secure_channel(
            self.address,
            grpc.ssl_channel_credentials(root_certificates=self.cert),
            options=[("grpc.ssl_target_name_override", dns_name(self.ctx.node_id))],
        )


Start = Callable[..., Intake]


@pytest.fixture
def start(tmp_path: Path, database_url: str) -> Iterator[Start]:
    """Serve intake (two gateways: sms, web) with the limits node.yaml gives, changed by
    the keyword arguments, on a loop in a thread, until the test ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    made: list[tuple[NodeContext, IntakeServer, _Db]] = []

    def make(**changes: float) -> Intake:
        tokens = {"sms": intake.new_token(), "web": intake.new_token()}
        port, listen_port = free_ports(2)
        path = init_node(
            tmp_path / "node",
            "id-64",
            "Provinsi Kalimantan Timur",
            listen=f"127.0.0.1:{listen_port}",
            database_url=database_url,
        )
        path.write_text(path.read_text() + _intake_section(port, tokens))
        ctx = NodeContext.open(path)
        db = _Db()
        key = read_file(ctx.config.tls_key, "TLS key")
        cert = read_file(ctx.config.tls_cert, "TLS certificate")
        limits = replace(IntakeLimits.for_config(ctx.config.intake), **changes)
        served = asyncio.run_coroutine_threadsafe(
            start_intake(ctx, db, key, cert, call_limits=limits), loop
        ).result(WAIT)
        assert served is not None
        made.append((ctx, served, db))
        return Intake(ctx, f"127.0.0.1:{port}", cert, tokens)

    yield make
    for ctx, served, db in made:
        asyncio.run_coroutine_threadsafe(served.stop(0), loop).result(WAIT)
        db.writer.shutdown()
        db.readers.shutdown()
        ctx.close()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _stalled(first: intake_pb2.SubmitRequest, release: threading.Event) -> Iterator[Any]:
    """A Submit stream that sends its submission and then sends nothing until `release`."""
    yield first
    release.wait(WAIT * 2)


def _open_stalled(
    node: Intake, channel: grpc.Channel, gateway: str, n: int, release: threading.Event
) -> list[grpc.Future]:
    stub = intake_pb2_grpc.IntakeServiceStub(channel)  # type: ignore[no-untyped-call]
    metadata = [("authorization", f"Bearer {node.tokens[gateway]}")]
    return [
        stub.Submit.future(
            _stalled(
                intake_pb2.SubmitRequest(submission=submission_for(_draft(100 + i), f"stall-{i}")),
                release,
            ),
            metadata=metadata,
        )
        for i in range(n)
    ]


def _code(future: grpc.Future) -> grpc.StatusCode:
    try:
        future.result(WAIT)
    except grpc.RpcError as e:
        return e.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_a_stalling_gateway_does_not_starve_another(start: Start) -> None:
    """Sixteen stalled Submit streams from one gateway: it is refused beyond its own share
    (RESOURCE_EXHAUSTED naming it), and the other gateway keeps submitting (before: every
    gateway got RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded")."""
    node = start(call_seconds=WAIT * 10, pause_seconds=WAIT * 10)  # stalls end when released
    share = IntakeLimits.for_config(node.ctx.config.intake).per_gateway
    assert share == 8  # sixteen calls shared by two gateways
    release = threading.Event()
    with node.channel() as channel:
        stalled = _open_stalled(node, channel, "sms", 16, release)
        try:
            wait_until(
                lambda: sum(f.done() for f in stalled) >= 16 - share,
                timeout=WAIT,
                what="the calls beyond the gateway's share to be refused",
            )
            refused = [f for f in stalled if f.done()]
            assert len(refused) == 16 - share
            for future in refused:
                assert _code(future) == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "sms-kaltim" in future.exception().details()  # type: ignore[union-attr]
            with node.client("web") as web:
                for n in range(5):
                    response = web.submit(submission_for(_draft(n, "web"), f"web-{n}"))
                    assert response.tracking_id.startswith("id-64.")
            assert not any(f.done() for f in stalled if f not in refused)
        finally:
            release.set()
        admitted = [f for f in stalled if f not in refused]
        assert [_code(f) for f in admitted] == [grpc.StatusCode.OK] * share


def test_a_stalled_submission_ends_at_its_deadline_and_frees_its_place(start: Start) -> None:
    """With one call per gateway, a stream that stalls is ended DEADLINE_EXCEEDED (telling
    the gateway to retry with the same key) and the gateway can submit again."""
    node = start(per_gateway=1, call_seconds=3.0, pause_seconds=1.0)
    release = threading.Event()
    with node.channel() as channel:
        (stalled,) = _open_stalled(node, channel, "sms", 1, release)
        try:
            assert _code(stalled) == grpc.StatusCode.DEADLINE_EXCEEDED
            assert "same idempotency key" in stalled.exception().details()  # type: ignore[union-attr]
        finally:
            release.set()
    with node.client("sms") as sms:
        response = sms.submit(submission_for(_draft(7), "after-stall"))
    assert response.tracking_id.startswith("id-64.")


# Submission { idempotency_key (1): b"\xff" } inside SubmitRequest.submission (1).
INVALID_UTF8 = b"\x0a\x03" + b"\x0a\x01\xff"


def test_invalid_utf8_is_invalid_argument_and_stores_nothing(start: Start) -> None:
    """A Submit whose text is not UTF-8 is INVALID_ARGUMENT saying so (before: INTERNAL,
    which the docs tell gateways to retry for ever), and nothing is stored."""
    node = start()
    before = _counts(node.ctx)
    with node.channel() as channel:
        submit = channel.stream_unary(
            "/lapor.v1.IntakeService/Submit",
            request_serializer=lambda raw: raw,
            response_deserializer=intake_pb2.SubmitResponse.FromString,
        )
        metadata = [("authorization", f"Bearer {node.tokens['sms']}")]
        with pytest.raises(grpc.RpcError) as caught:
            submit(iter([INVALID_UTF8]), metadata=metadata, timeout=WAIT)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "UTF-8" in caught.value.details()  # type: ignore[attr-defined]
    assert _counts(node.ctx) == before


def test_get_status_with_invalid_utf8_is_invalid_argument(start: Start) -> None:
    """GetStatus whose tracking id is not UTF-8: INVALID_ARGUMENT, not INTERNAL."""
    node = start()
    with node.channel() as channel:
        get_status = channel.unary_unary(
            "/lapor.v1.IntakeService/GetStatus",
            request_serializer=lambda raw: raw,
            response_deserializer=intake_pb2.GetStatusResponse.FromString,
        )
        metadata = [("authorization", f"Bearer {node.tokens['sms']}")]
        with pytest.raises(grpc.RpcError) as caught:
            get_status(b"\x0a\x01\xff", metadata=metadata, timeout=WAIT)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "UTF-8" in caught.value.details()  # type: ignore[attr-defined]
