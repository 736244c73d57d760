"""Intake requests as a gateway sends them: the bytes of each SubmitRequest are parsed as
gRPC would while the servicer reads the stream (node.federation.intake_port), with edge-valued
text (control characters, NUL, long runs of spaces), sizes and hashes; a submission that
passes is registered by node.services.intake.accept."""

from __future__ import annotations

from collections.abc import AsyncIterator

from hypothesis import strategies as st

from fuzz._harness import Harness
from fuzz._nodes import PairOnLoop, pair_on_loop
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


# Built once (see fuzz._values).
_TITLE = st.one_of(st.just("Jalan rusak"), texts(), st.just("x" + " " * 300))
_DESCRIPTION = st.one_of(st.just("Lubang besar"), texts(300))
_MEDIA_TYPE = st.one_of(st.just("image/jpeg"), texts(20))
_UP_TO_TWO = st.integers(0, 2)
_KEY = st.one_of(st.just("sms-1"), texts(140))
_CHANNEL = st.one_of(st.just(2), _ENUM)
_CLASSIFICATION = st.one_of(st.just(1), _ENUM)
_CATEGORY = st.one_of(st.just("jalan"), texts())
_REGION = st.one_of(st.just("64.02"), texts())
_RAW_FIRST = st.binary(max_size=200)
_RAW_CHUNK = st.binary(max_size=64)
_EITHER = st.integers(0, 1)


@st.composite
def _submission(draw: st.DrawFn) -> bytes:
    content = complaint_pb2.ComplaintContent(
        title=draw(_TITLE),
        description=draw(_DESCRIPTION),
        location=draw(texts()),
        reporter=complaint_pb2.Reporter(name=draw(texts()), contact=draw(texts())),
    )
    refs = [
        complaint_pb2.AttachmentRef(
            name=draw(texts(20)),
            media_type=draw(_MEDIA_TYPE),
            size=draw(u64()),
            sha256=draw(short_bytes(40)),
        )
        for _ in range(draw(_UP_TO_TWO))
    ]
    submission = intake_pb2.Submission(
        idempotency_key=draw(_KEY),
        channel=draw(_CHANNEL),  # type: ignore[arg-type]
        classification=draw(_CLASSIFICATION),  # type: ignore[arg-type]
        category=draw(_CATEGORY),
        region_code=draw(_REGION),
        content=content,
        attachments=refs,
    )
    return intake_pb2.SubmitRequest(submission=submission).SerializeToString()


_FIRST = st.one_of(_submission(), _RAW_FIRST)


@st.composite
def _streams(draw: st.DrawFn) -> list[bytes]:
    first = draw(_FIRST)
    rest = []
    for _ in range(draw(_UP_TO_TWO)):
        chunk = intake_pb2.AttachmentChunk(index=draw(u32()), data=draw(_RAW_CHUNK))
        raw = intake_pb2.SubmitRequest(chunk=chunk).SerializeToString()
        rest.append(raw if draw(_EITHER) == 0 else draw(_RAW_CHUNK))  # one or the other
    return [first, *rest]


async def _parsed(messages: list[bytes]) -> AsyncIterator[intake_pb2.SubmitRequest]:
    for raw in messages:  # as grpc's deserializer does, while the servicer iterates
        yield intake_pb2.SubmitRequest.FromString(raw)


def _target(state: PairOnLoop, messages: list[bytes]) -> None:
    servicer = IntakeServicer(state.pair.parent, None)  # type: ignore[arg-type]  # no db needed
    try:
        draft, key, files = state.loop.run(servicer._receive(_parsed(messages), GATEWAY))
    except NodeError:  # refused as a gateway is told (node.federation.error_edge)
        return
    intake.accept(state.pair.parent, draft, files, gateway=GATEWAY, key=key)


HARNESS = Harness("intake", _streams(), _target, pair_on_loop)
