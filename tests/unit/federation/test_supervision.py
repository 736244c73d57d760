"""A link session's tasks run under supervision: when the send path fails once (a transport
whose write raises), the session ends, the failure is logged by type and recorded as the
link's last error, the child dials again, and every referral and its receipt cross."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from node._proto.lapor.v1 import federation_pb2
from node.federation import transports
from node.federation.runtime import NodeRuntime
from node.services import complaints, links
from node.services.context import NodeContext
from tests.conftest import NodeFactory
from tests.fault.conftest import draft
from tests.support.nodes import link

# More than session.READY_BATCH in one batch: the child's receipts go out through its send
# loop, not straight from the commit.
COUNT = 20


class Injected(RuntimeError):
    """The failure the test injects into one write of a Deliveries frame."""


def _fail_once(
    monkeypatch: pytest.MonkeyPatch, cls: type[Any], armed: asyncio.Event, hits: list[int]
) -> None:
    """Make `cls.write` raise Injected once, at the first frame the send loop writes after
    `armed`."""
    original: Callable[[Any, federation_pb2.Frame], Awaitable[None]] = cls.write

    async def write(self: Any, frame: federation_pb2.Frame) -> None:
        task = asyncio.current_task()
        sending = task is not None and task.get_name() == "send"  # the session's send loop
        if armed.is_set() and sending and not hits and frame.WhichOneof("kind") != "ack":
            hits.append(1)
            raise Injected("injected write failure")
        await original(self, frame)

    monkeypatch.setattr(cls, "write", write)


async def _until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


def _accepted_at(ctx: NodeContext, ids: list[str]) -> bool:
    return all(complaints.show(ctx, t).status == "accepted" for t in ids)


@pytest.mark.parametrize(
    ("side", "cls"),
    [
        pytest.param("child", transports.ClientTransport, id="child-send"),
        pytest.param("parent", transports.ServerTransport, id="parent-send"),
    ],
)
def test_a_failed_send_ends_the_session_and_the_link_recovers(
    nodes: NodeFactory, monkeypatch: pytest.MonkeyPatch, side: str, cls: type[Any]
) -> None:
    """The child's receipts (or the parent's referrals) fail to go out once: without
    supervision the link stays up, receiving and acknowledging but never sending again."""
    parent = nodes("id-64", "Provinsi Kalimantan Timur")
    child = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(parent, child)
    p_ctx, c_ctx = parent.ctx(), child.ctx()
    federation = c_ctx.config.federation
    # The session ends, the dialer waits at most reconnect_max (with jitter) and the
    # connection and Hellos take a few seconds: generous margins over those.
    bound = 3 * federation.reconnect_max_ms / 1000 + 30.0
    armed = asyncio.Event()
    hits: list[int] = []
    _fail_once(monkeypatch, cls, armed, hits)

    async def main() -> None:
        runtimes = [NodeRuntime(p_ctx), NodeRuntime(c_ctx)]
        for runtime in runtimes:
            await runtime.start()
        try:
            await _until(
                lambda: any(v.connected for v in links.list_links(c_ctx)), bound, "the link"
            )
            armed.set()
            ids = await asyncio.to_thread(
                complaints.submit_many, p_ctx, [draft(n) for n in range(COUNT)]
            )
            await asyncio.to_thread(complaints.refer_many, p_ctx, ids, c_ctx.node_id)
            await _until(lambda: bool(hits), bound, "the injected failure")
            await _until(lambda: _accepted_at(p_ctx, list(ids)), bound, "every receipt")
            assert _accepted_at(c_ctx, list(ids))
        finally:
            for runtime in reversed(runtimes):
                await runtime.stop()

    with capture_logs() as logs:
        asyncio.run(main())
    failed = [e for e in logs if e["event"] == "link.task_failed"]
    assert failed and failed[0]["task"] == "send" and failed[0]["error_kind"] == "Injected"
    assert all("injected write failure" not in str(e) for e in logs)  # no text, only its type
    # Recorded as the link's last error (cleared again by the next Hello) and logged.
    ended = [e for e in logs if e["event"] in ("link.failed", "link.down") and e.get("error")]
    assert any("send task failed (Injected)" in e["error"] for e in ended)
