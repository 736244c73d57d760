"""The runtime in-process: interval checkpoints (an injected short interval), what stops
them, the metrics endpoint, and the Audit service's paged streams."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from node.complaints import ComplaintDraft
from node.errors import InconsistentCheckpointError
from node.federation.audit_client import AuditClient, CallerIdentity
from node.federation.runtime import NodeRuntime
from node.metrics import REGISTRY
from node.services import audit, checkpoints, complaints, links
from node.services.context import NodeContext
from node.services.setup import init_node
from node.store import tree
from tests.support.nodes import free_port
from tests.support.waits import bound, wait_until_async

INTERVAL = 0.02


def _draft(n: int) -> ComplaintDraft:
    return ComplaintDraft(
        title=f"Lampu jalan mati {n}",
        description="Sudah dua minggu",
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.72",
        channel="web",
    )


def _make(tmp_path: Path, database_url: str, extra: Callable[[str], str] = str) -> NodeContext:
    path = init_node(
        tmp_path / "node",
        "id-64",
        "Provinsi Kalimantan Timur",
        listen=f"127.0.0.1:{free_port()}",
        database_url=database_url,
    )
    text = path.read_text().replace(
        "checkpoint_interval_seconds: 60", f"checkpoint_interval_seconds: {INTERVAL}"
    )
    path.write_text(extra(text))
    return NodeContext.open(path)


@pytest.fixture
def ctx(tmp_path: Path, database_url: str) -> Iterator[NodeContext]:
    context = _make(tmp_path, database_url)
    yield context
    context.close()


def _checkpoint_sizes(ctx: NodeContext) -> list[int]:
    with ctx.db.read() as session:
        return [row.size for row in tree.iter_checkpoints(session)]


async def _rounds(runtime: NodeRuntime, n: int) -> None:
    """Wait until `n` more checkpoint rounds have run."""
    target = runtime.checkpoint_rounds + n
    await wait_until_async(
        lambda: runtime.checkpoint_rounds >= target,
        timeout=bound(n * INTERVAL),
        interval=INTERVAL / 2,
        what=f"{n} checkpoint rounds",
    )


def _run(ctx: NodeContext, scenario: Callable[[NodeRuntime], Any]) -> None:
    async def main() -> None:
        runtime = NodeRuntime(ctx)
        await runtime.start()
        try:
            await scenario(runtime)
        finally:
            await runtime.stop()

    asyncio.run(main())


def test_serve_signs_each_interval_only_when_the_ledger_grew(ctx: NodeContext) -> None:
    """No checkpoint for an empty ledger; one per growth, none while it stays the same; the
    ledger and checkpoint gauges follow."""

    async def scenario(runtime: NodeRuntime) -> None:
        await _rounds(runtime, 3)
        assert _checkpoint_sizes(ctx) == []
        complaints.submit(ctx, _draft(1))
        await _rounds(runtime, 2)
        assert _checkpoint_sizes(ctx) == [1]
        await _rounds(runtime, 3)
        assert _checkpoint_sizes(ctx) == [1]
        before = time.time()  # the checkpoint of size 3 is signed after this
        complaints.submit(ctx, _draft(2))
        complaints.submit(ctx, _draft(3))
        await _rounds(runtime, 2)
        assert _checkpoint_sizes(ctx) == [1, 3]
        assert REGISTRY.get_sample_value("lapor_node_ledger_entries") == 3
        assert REGISTRY.get_sample_value("lapor_node_checkpoint_size") == 3
        age = REGISTRY.get_sample_value("lapor_node_checkpoint_age_seconds")
        assert age is not None and 0 <= age <= time.time() - before

    _run(ctx, scenario)


def test_an_inconsistent_checkpoint_stops_signing_loudly_not_the_server(
    ctx: NodeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When signing finds the tree does not extend the signed one, a critical log says so,
    signing stops for good (the gauges go on), and the server keeps answering."""
    attempts: list[int] = []

    def refuse(context: NodeContext) -> object:
        attempts.append(1)
        raise InconsistentCheckpointError("expected the new tree to extend size 1, found not")

    monkeypatch.setattr(checkpoints, "sign", refuse)
    before = REGISTRY.get_sample_value(
        "lapor_node_checkpoint_failures_total", {"kind": "InconsistentCheckpointError"}
    )

    async def scenario(runtime: NodeRuntime) -> None:
        complaints.submit(ctx, _draft(1))
        await wait_until_async(
            lambda: runtime.signing_stopped,
            timeout=bound(INTERVAL),
            interval=INTERVAL / 2,
            what="signing to stop",
        )
        await _rounds(runtime, 5)  # the gauges go on; signing is not tried again
        complaints.submit(ctx, _draft(2))
        await _rounds(runtime, 2)
        assert REGISTRY.get_sample_value("lapor_node_ledger_entries") == 2
        _, writer = await asyncio.open_connection("127.0.0.1", runtime.port)
        writer.close()
        await writer.wait_closed()

    with capture_logs() as logs:
        _run(ctx, scenario)
    assert attempts == [1]
    stopped = [e for e in logs if e["event"] == "checkpoint.signing_stopped"]
    assert len(stopped) == 1 and stopped[0]["log_level"] == "critical"
    assert "extend size 1" in stopped[0]["error"]
    after = REGISTRY.get_sample_value(
        "lapor_node_checkpoint_failures_total", {"kind": "InconsistentCheckpointError"}
    )
    assert after == (before or 0) + 1


def test_a_transient_failure_is_logged_and_retried(
    ctx: NodeContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure that is not about integrity (the database hiccups) is logged as an error,
    and the next interval signs."""
    real = checkpoints.sign
    failures = [RuntimeError("database is locked")]

    def flaky(context: NodeContext) -> Any:
        if failures:
            raise failures.pop()
        return real(context)

    monkeypatch.setattr(checkpoints, "sign", flaky)

    async def scenario(runtime: NodeRuntime) -> None:
        complaints.submit(ctx, _draft(1))
        async with asyncio.timeout(bound(2 * INTERVAL)):  # the failed round, then the next
            while _checkpoint_sizes(ctx) != [1]:
                await _rounds(runtime, 1)
        assert not runtime.signing_stopped

    with capture_logs() as logs:
        _run(ctx, scenario)
    failed = [e for e in logs if e["event"] == "checkpoint.failed"]
    assert [(e["log_level"], e["error"]) for e in failed] == [("error", "database is locked")]


def test_metrics_and_paged_streams_over_the_wire(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With metrics.listen set, /metrics serves the registry, counting the auditor's calls;
    GetEntries and ListCheckpoints cross page boundaries without losing or repeating rows."""
    monkeypatch.setattr(audit, "ENTRY_PAGE", 2)
    monkeypatch.setattr(audit, "CHECKPOINT_PAGE", 2)
    identity = tmp_path / "ombudsman-ri"
    CallerIdentity.create("Ombudsman RI", identity, dt.datetime.now(dt.UTC))
    port = free_port()

    def configure(text: str) -> str:
        text = text.replace('listen: ""', f'listen: "127.0.0.1:{port}"')
        # Nothing signs behind the test's back: the checkpoints are the ones it made.
        text = text.replace(f"interval_seconds: {INTERVAL}", "interval_seconds: 3600")
        listed = f'  - name: "Ombudsman RI"\n    certificate: {identity / "auditor.crt"}\n'
        return text.replace("auditors: []\n", "auditors:\n" + listed)

    ctx = _make(tmp_path, database_url, configure)
    try:
        for n in range(7):
            complaints.submit(ctx, _draft(n))
            if n % 2:
                checkpoints.sign(ctx)
        card = links.own_card(ctx)
        with ctx.db.read() as session:
            expected = list(tree.iter_entries_with_leaves(session))
            stored = [(row.size, row.note) for row in tree.iter_checkpoints(session)]

        def read() -> tuple[list[Any], list[Any], list[Any], str]:
            loaded = CallerIdentity.load(identity)
            with AuditClient(
                f"127.0.0.1:{ctx.config.server.listen.split(':')[1]}", card, loaded
            ) as c:
                entries, middle = list(c.entries(0, 7)), list(c.entries(1, 6))
                listed = list(c.checkpoints(0, 7))
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url) as response:
                return entries, middle, listed, response.read().decode()

        async def scenario(runtime: NodeRuntime) -> None:
            assert runtime.metrics_port == port
            entries, middle, listed, metrics = await asyncio.to_thread(read)
            assert entries == expected and middle == expected[1:6]
            assert listed == stored and len(stored) == 3
            calls = 'lapor_node_audit_calls_total{caller_kind="auditor",method="GetEntries"}'
            assert f"{calls} " in metrics
            assert "lapor_node_ledger_entries 7.0" in metrics

        _run(ctx, scenario)
    finally:
        ctx.close()
