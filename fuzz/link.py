"""Hello and Ack frames as a peer sends them, through a real LinkSession (the parent's side
of its child's stream) over an in-memory transport: edge-valued sequences and checkpoint
sizes, arbitrary roots, then Acks and unexpected frames. A refusal is RefusedError
wrapping one of the project's errors, or one of the project's errors itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf.message import DecodeError
from hypothesis import strategies as st

from fuzz._harness import Harness
from fuzz._nodes import PairOnLoop, pair_on_loop
from fuzz._values import short_bytes, u32, u64
from node._proto.lapor.v1 import federation_pb2
from node.federation.session import LinkSession, RefusedError
from node.ids import NodeId

__all__ = ["HARNESS"]

T = TypeVar("T")
# Generous: a frame that makes the session wait for more is not a crash.
SESSION_SECONDS = 10.0


class _Transport:
    def __init__(self, frames: list[federation_pb2.Frame]) -> None:
        self.frames = list(frames)
        self.written: list[federation_pb2.Frame] = []

    async def read(self) -> federation_pb2.Frame | None:
        return self.frames.pop(0) if self.frames else None

    async def write(self, frame: federation_pb2.Frame) -> None:
        self.written.append(frame)

    async def finish(self) -> None:
        return None


class _Db:
    """Runs database work inline: the harness has one session at a time."""

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)


# Built once (see fuzz._values).
_VERSION = st.one_of(st.just(1), u32())
_SEQUENCE = st.one_of(st.just(0), u64())
_MORE = st.integers(0, 2)
_KIND = st.sampled_from(["ack", "hello", "rejection", "raw"])
_RAW = st.binary(max_size=60)


@st.composite
def _frames(draw: st.DrawFn) -> list[federation_pb2.Frame]:
    hello = federation_pb2.Hello(
        protocol_version=draw(_VERSION),
        last_received_sequence=draw(_SEQUENCE),
        held_checkpoint_size=draw(_SEQUENCE),
        held_checkpoint_root=draw(short_bytes(40)),
        max_frame_deliveries=draw(u32()),
        max_frame_bytes=draw(u32()),
    )
    frames = [federation_pb2.Frame(hello=hello)]
    for _ in range(draw(_MORE)):
        kind = draw(_KIND)
        if kind == "ack":
            frames.append(federation_pb2.Frame(ack=federation_pb2.Ack(sequence=draw(u64()))))
        elif kind == "hello":
            frames.append(federation_pb2.Frame(hello=hello))
        elif kind == "rejection":
            rejection = federation_pb2.Rejection(sequence=draw(u64()), code=draw(u32()))
            frames.append(federation_pb2.Frame(rejection=rejection))
        else:
            frame = federation_pb2.Frame()
            with contextlib.suppress(DecodeError):  # gRPC itself would not deliver these
                frame.ParseFromString(draw(_RAW))
                frames.append(frame)
    return frames


def _target(state: PairOnLoop, frames: list[federation_pb2.Frame]) -> None:
    session = LinkSession(
        state.pair.parent, NodeId("id-64-02"), _Transport(frames), _Db(), asyncio.Event()
    )

    async def run() -> None:
        async with asyncio.timeout(SESSION_SECONDS):
            await session.run()

    try:
        state.loop.run(run())
    except RefusedError as e:
        raise e.error from e


HARNESS = Harness("hello-ack", _frames(), _target, pair_on_loop)
