"""Scripted peers that speak the federation protocol over real mutual TLS, for tests that
need to send what a correct node never would (bad signatures, gaps, duplicates)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc

from node._proto.lapor.v1 import envelope_pb2, federation_pb2, federation_pb2_grpc
from node.crypto.signing import SigningKey
from node.crypto.tls import dns_name
from node.envelopes import seal
from node.federation.runtime import exchange_service
from node.ids import new_message_id
from node.services import checkpoints
from tests.support.nodes import TestNode
from tests.support.waits import DELIVERY_BOUND, RECOVERY_BOUND


def hello(last: int = 0) -> federation_pb2.Frame:
    return federation_pb2.Frame(
        hello=federation_pb2.Hello(protocol_version=1, last_received_sequence=last)
    )


def envelope(
    sender: str, recipient: str, sequence: int, **payload: object
) -> envelope_pb2.Envelope:
    env = envelope_pb2.Envelope(
        message_id=new_message_id(),
        sender=sender,
        recipient=recipient,
        sequence=sequence,
        **payload,
    )  # type: ignore[arg-type]
    env.sent_at.FromDatetime(dt.datetime.now(dt.UTC))
    return env


def delivery(
    signed: envelope_pb2.SignedEnvelope, content: bytes = b"", salt: bytes = b""
) -> federation_pb2.Frame:
    return federation_pb2.Frame(
        delivery=federation_pb2.Delivery(envelope=signed, content=content, content_salt=salt)
    )


def signing_key(node: TestNode) -> SigningKey:
    return SigningKey.from_pem(node.ctx().config.signing_key.read_bytes())


@dataclass
class Outcome:
    frames: list[federation_pb2.Frame] = field(default_factory=list)
    code: grpc.StatusCode | None = None
    details: str = ""


async def _exchange(
    identity: TestNode,
    target: TestNode,
    frames: list[federation_pb2.Frame],
    expect: int,
    timeout: float,
    until: Callable[[list[federation_pb2.Frame]], bool] | None = None,
) -> Outcome:
    cfg = identity.ctx().config
    creds = grpc.ssl_channel_credentials(
        root_certificates=target.ctx().config.tls_cert.read_bytes(),
        private_key=cfg.tls_key.read_bytes(),
        certificate_chain=cfg.tls_cert.read_bytes(),
    )
    outcome = Outcome()
    options = [
        ("grpc.ssl_target_name_override", dns_name(target.node_id)),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ]
    async with grpc.aio.secure_channel(target.address, creds, options=options) as channel:
        call = federation_pb2_grpc.FederationServiceStub(channel).Exchange()
        try:
            for frame in frames:
                await call.write(federation_pb2.ExchangeRequest(frame=frame))
            enough = until or (lambda got: len(got) >= expect)
            async with asyncio.timeout(timeout):
                while not enough(outcome.frames):
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        break
                    outcome.frames.append(response.frame)
                if expect == 0 or enough(outcome.frames):
                    await call.done_writing()
                    while (response := await call.read()) is not grpc.aio.EOF:
                        outcome.frames.append(response.frame)
        except grpc.aio.AioRpcError as e:
            outcome.code, outcome.details = e.code(), e.details() or ""
        except TimeoutError:
            call.cancel()
        else:
            outcome.code = await call.code()
            outcome.details = await call.details() or ""
    return outcome


def exchange_as(
    identity: TestNode,
    target: TestNode,
    frames: list[federation_pb2.Frame],
    expect: int = 0,
    timeout: float = DELIVERY_BOUND,
    until: Callable[[list[federation_pb2.Frame]], bool] | None = None,
) -> Outcome:
    """Dial `target` with `identity`'s TLS keys, write `frames`, read until `expect` frames
    came back (or `until` holds of those read) then close, or the server ends the call;
    return what happened."""
    return asyncio.run(_exchange(identity, target, frames, expect, timeout, until))


class FakeParent:
    """A scripted parent server with `identity`'s keys: it answers the real child's dial with
    Hello and the given frames, and records what the child sends back."""

    def __init__(
        self,
        identity: TestNode,
        script: list[federation_pb2.Frame],
        expect: int,
        after_hello: bool = False,
    ) -> None:
        self.identity = identity
        self.script = script
        self.expect = expect
        # Write the frames after the first (Hello) only once the child's Hello was read: they
        # then reach a child whose session is up, not with its handshake.
        self.after_hello = after_hello
        self.received: list[federation_pb2.Frame] = []
        self.done = asyncio.Event()

    async def Exchange(
        self, request_iterator: AsyncIterator[object], context: grpc.aio.ServicerContext
    ) -> None:
        for n, frame in enumerate(self.script):
            if n == 1 and self.after_hello:
                request = await context.read()
                if request is grpc.aio.EOF:
                    break
                self.received.append(request.frame)
            await context.write(federation_pb2.ExchangeResponse(frame=frame))
        while len(self.received) < self.expect:
            request = await context.read()
            if request is grpc.aio.EOF:
                break
            self.received.append(request.frame)
        self.done.set()

    async def run(
        self, child: TestNode, timeout: float = RECOVERY_BOUND
    ) -> list[federation_pb2.Frame]:
        """Serve until the child (dialing with backoff, started before this server) has sent
        `expect` frames; fail after `timeout`."""
        cfg = self.identity.ctx().config
        server = grpc.aio.server()
        handler = exchange_service(self.Exchange)
        server.add_generic_rpc_handlers((handler,))
        creds = grpc.ssl_server_credentials(
            [(cfg.tls_key.read_bytes(), cfg.tls_cert.read_bytes())],
            root_certificates=child.ctx().config.tls_cert.read_bytes(),
            require_client_auth=True,
        )
        server.add_secure_port(self.identity.address, creds)
        await server.start()
        try:
            async with asyncio.timeout(timeout):
                await self.done.wait()
        finally:
            await server.stop(0.5)
        return self.received


def sealed(node: TestNode, env: envelope_pb2.Envelope) -> envelope_pb2.SignedEnvelope:
    """Sign `env` as `node`, carrying `node`'s latest checkpoint as every envelope must."""
    if not env.checkpoint:
        env.checkpoint = checkpoints.sign(node.ctx())[0].note
    return seal(env, signing_key(node))
