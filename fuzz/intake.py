"""Intake requests as a gateway sends them: the bytes of each SubmitRequest are parsed as
gRPC would while the servicer reads the stream (node.federation.intake_port), with edge-valued
text (control characters, NUL, long runs of spaces), sizes and hashes; a submission that
passes is registered by node.services.intake.accept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import strategies as st

from fuzz._harness import Harness
from fuzz._nodes import Pair, linked_pair
from fuzz._values import short_bytes, texts, u32, u64
from node._proto.lapor.v1 import complaint_pb2, intake_pb2
from node.config import GatewayConfig
from node.errors import NodeError
from node.federation.intake_port import IntakeServicer
from node.services import intake

__all__ = ["HARNESS"]

_ENUM = st.integers(-(1 << 31), (1 << 31) - 1)

GATEWAY = GatewayConfig(
    "fuzz", ("web", "sms_1708", "twitter", "mobile_app", "walk_in", "api"), bytes(32)
)


@st.composite
def _submission(draw: st.DrawFn) -> bytes:
    content = complaint_pb2.ComplaintContent(
        title=draw(st.one_of(st.just("Jalan rusak"), texts(), st.just("x" + " " * 300))),
        description=draw(st.one_of(st.just("Lubang besar"), texts(300))),
        location=draw(texts()),
        reporter=complaint_pb2.Reporter(name=draw(texts()), contact=draw(texts())),
    )
    refs = [
        complaint_pb2.AttachmentRef(
            name=draw(texts(20)),
            media_type=draw(st.one_of(st.just("image/jpeg"), texts(20))),
            size=draw(u64()),
            sha256=draw(short_bytes(40)),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    submission = intake_pb2.Submission(
        idempotency_key=draw(st.one_of(st.just("sms-1"), texts(140))),
        channel=draw(st.one_of(st.just(2), _ENUM)),  # type: ignore[arg-type]
        classification=draw(st.one_of(st.just(1), _ENUM)),  # type: ignore[arg-type]
        category=draw(st.one_of(st.just("jalan"), texts())),
        region_code=draw(st.one_of(st.just("64.02"), texts())),
        content=content,
        attachments=refs,
    )
    return intake_pb2.SubmitRequest(submission=submission).SerializeToString()


@st.composite
def _streams(draw: st.DrawFn) -> list[bytes]:
    first = draw(st.one_of(_submission(), st.binary(max_size=200)))
    rest = []
    for _ in range(draw(st.integers(0, 2))):
        chunk = intake_pb2.AttachmentChunk(index=draw(u32()), data=draw(st.binary(max_size=64)))
        raw = intake_pb2.SubmitRequest(chunk=chunk).SerializeToString()
        rest.append(draw(st.one_of(st.just(raw), st.binary(max_size=64))))
    return [first, *rest]


async def _parsed(messages: list[bytes]) -> AsyncIterator[intake_pb2.SubmitRequest]:
    for raw in messages:  # as grpc's deserializer does, while the servicer iterates
        yield intake_pb2.SubmitRequest.FromString(raw)


def _target(pair: Pair, messages: list[bytes]) -> None:
    servicer = IntakeServicer(pair.parent, None)  # type: ignore[arg-type]  # no db needed
    try:
        draft, key, files = asyncio.run(servicer._receive(_parsed(messages), GATEWAY))
    except NodeError:  # refused as a gateway is told (node.federation.error_edge)
        return
    intake.accept(pair.parent, draft, files, gateway=GATEWAY, key=key)


HARNESS = Harness("intake", _streams(), _target, linked_pair)
