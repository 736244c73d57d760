"""The Intake service over real TLS: a node served in-process (its NodeRuntime on a loop in
a thread), gateways calling it with the client, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select, text

from node._proto.lapor.v1 import complaint_pb2, intake_pb2
from node.complaints import AttachmentRef, ComplaintDraft
from node.crypto.keyfiles import read_file
from node.crypto.tls import fingerprint
from node.errors import ConfigError, IntegrityError, TooLargeError, ValidationError
from node.federation.intake_client import IntakeCallError, IntakeClient, Upload, submission_for
from node.federation.runtime import NodeRuntime
from node.ids import parse_tracking_id, tracking_origin
from node.metrics import REGISTRY
from node.services import complaints, intake
from node.services.context import NodeContext
from node.services.setup import init_node
from node.store import intake_rows as store
from node.store import queries
from node.store.models import Base, ComplaintContentRow
from tests.support.nodes import free_port, free_ports

pytestmark = pytest.mark.slow

MAX_FILE = 64 * 1024
MAX_TOTAL = 96 * 1024
PHOTO = Upload("foto-jalan.jpg", "image/jpeg", bytes(range(256)) * 300)  # 76,800 bytes
RECEIPT = Upload("kuitansi.pdf", "application/pdf", b"%PDF-1.7 kuitansi" * 100)


def _draft(n: int = 1, channel: str = "sms_1708") -> ComplaintDraft:
    return ComplaintDraft(
        title=f"Jalan berlubang {n}",
        description="Lubang besar di Jl. Poros Tenggarong, sudah tiga bulan",
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.02",
        channel=channel,
        reporter_name="Siti Aminah",
        reporter_contact="0812000000",
    )


@dataclass
class Served:
    ctx: NodeContext
    address: str
    fingerprint: bytes
    tokens: dict[str, str]

    def client(self, gateway: str = "sms") -> IntakeClient:
        return IntakeClient(self.address, self.tokens[gateway], self.fingerprint)


def _intake_section(port: int, tokens: dict[str, str]) -> str:
    sms, web = (intake.token_sha256(tokens[g]).hex() for g in ("sms", "web"))
    return (
        "intake:\n"
        f'  listen: "127.0.0.1:{port}"\n'
        f"  max_attachment_bytes: {MAX_FILE}\n"
        f"  max_total_bytes: {MAX_TOTAL}\n"
        "  gateways:\n"
        f'    - {{name: sms-kaltim, channels: [sms_1708], token_sha256: "{sms}"}}\n'
        f'    - {{name: web-kaltim, channels: [web, api], token_sha256: "{web}"}}\n'
    )


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[Served]:
    """A node with intake on a free loopback port and two gateways (sms, web), running
    NodeRuntime on its own event loop until the test ends."""
    tokens = {"sms": intake.new_token(), "web": intake.new_token()}
    port, listen_port = free_ports(2)
    path = init_node(
        tmp_path / "node",
        "id-64",
        "Provinsi Kalimantan Timur",
        listen=f"127.0.0.1:{listen_port}",
        database_url=database_url,
    )
    config = path.read_text()
    config = config.replace("grace_seconds: 5", 'grace_seconds: 1\n  enrollment_listen: ""')
    config += _intake_section(port, tokens)
    path.write_text(config)
    ctx = NodeContext.open(path)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runtime = NodeRuntime(ctx)
    asyncio.run_coroutine_threadsafe(runtime.start(), loop).result(30)
    try:
        cert = read_file(ctx.config.tls_cert, "TLS certificate")
        yield Served(ctx, f"127.0.0.1:{port}", fingerprint(cert), tokens)
    finally:
        asyncio.run_coroutine_threadsafe(runtime.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        ctx.close()


def _counts(ctx: NodeContext) -> dict[str, int]:
    """Rows in every table, and the ledger's size."""
    with ctx.db.read() as session:
        return {
            table.name: session.execute(
                text(f"SELECT count(*) FROM {table.name}")  # noqa: S608 - our own table names
            ).scalar_one()
            for table in Base.metadata.sorted_tables
        }


def _refused(call: Callable[[], object]) -> IntakeCallError:
    with pytest.raises(IntakeCallError) as caught:
        call()
    return caught.value


def test_a_submission_with_attachments_is_registered_and_kept_by_hash(served: Served) -> None:
    """A gateway's complaint gets a tracking id numbered by this node; its content lists
    the attachments, whose bytes are stored once each under their SHA-256."""
    small = replace(PHOTO, data=PHOTO.data[:40_000])
    with served.client() as client:
        response = client.submit(
            submission_for(_draft(), "sms-0001", [small, RECEIPT]),
            [small, RECEIPT],
            chunk_bytes=7_000,
        )
    tracking_id = parse_tracking_id(response.tracking_id)
    assert tracking_origin(tracking_id) == "id-64"
    assert response.tracking_id.startswith(f"id-64.{dt.datetime.now(dt.UTC).year}.")
    assert not response.duplicate
    with served.ctx.db.read() as session:
        row = session.get(ComplaintContentRow, response.tracking_id)
        assert row is not None
        content = complaint_pb2.ComplaintContent.FromString(row.content)
        assert [(a.name, a.media_type, a.size, a.sha256) for a in content.attachments] == [
            (u.name, u.media_type, len(u.data), hashlib.sha256(u.data).digest())
            for u in (small, RECEIPT)
        ]
        assert store.blob_count(session) == 2
        complaint = queries.get_complaint(session, response.tracking_id)
        assert complaint is not None and complaint.channel == "sms_1708"
    for upload in (small, RECEIPT):
        ref, data = intake.attachment(
            served.ctx, response.tracking_id, hashlib.sha256(upload.data).digest()
        )
        assert (ref.name, data) == (upload.name, upload.data)


def test_a_retry_returns_the_first_tracking_id_and_stores_nothing(served: Served) -> None:
    """The same key and submission again: the first tracking id, duplicate = true, and no
    new row anywhere; the metric counts it as a duplicate."""
    submission = submission_for(_draft(), "sms-0002", [RECEIPT])
    with served.client() as client:
        first = client.submit(submission, [RECEIPT])
        before = _counts(served.ctx)
        again = client.submit(submission, [RECEIPT])
        status = client.status(first.tracking_id)
    assert (again.tracking_id, again.duplicate) == (first.tracking_id, True)
    assert _counts(served.ctx) == before
    assert status.status == "submitted"
    assert (
        REGISTRY.get_sample_value(
            "lapor_node_intake_submissions_total", {"channel": "sms_1708", "outcome": "duplicate"}
        )
        or 0
    ) >= 1


def test_a_key_reused_for_another_submission_is_refused(served: Served) -> None:
    """The same key with a different complaint: ALREADY_EXISTS naming the first one, and
    nothing stored."""
    with served.client() as client:
        first = client.submit(submission_for(_draft(1), "sms-0003"))
        before = _counts(served.ctx)
        error = _refused(lambda: client.submit(submission_for(_draft(2), "sms-0003")))
    assert error.code == grpc.StatusCode.ALREADY_EXISTS
    assert first.tracking_id in str(error)
    assert _counts(served.ctx) == before


@pytest.mark.parametrize(
    ("case", "uploads", "declared", "code"),
    [
        pytest.param(
            "over the per-file limit",
            [PHOTO],
            None,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            id="file-too-large",
        ),
        pytest.param(
            "over the total limit",
            [
                replace(PHOTO, data=PHOTO.data[:50_000]),
                replace(PHOTO, name="b.jpg", data=PHOTO.data[1:50_001]),
            ],
            None,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            id="total-too-large",
        ),
        pytest.param(
            "bytes differ from the declared hash",
            [RECEIPT],
            [replace(RECEIPT, data=RECEIPT.data[:-1] + b"X")],
            grpc.StatusCode.INVALID_ARGUMENT,
            id="bad-hash",
        ),
        pytest.param(
            "more bytes than declared",
            [RECEIPT],
            [replace(RECEIPT, data=RECEIPT.data[:-10])],
            grpc.StatusCode.INVALID_ARGUMENT,
            id="longer-than-declared",
        ),
        pytest.param(
            "fewer bytes than declared",
            [replace(RECEIPT, data=RECEIPT.data[:-10])],
            [RECEIPT],
            grpc.StatusCode.INVALID_ARGUMENT,
            id="shorter-than-declared",
        ),
    ],
)
def test_a_bad_attachment_is_refused_and_nothing_is_stored(
    served: Served,
    case: str,
    uploads: list[Upload],
    declared: list[Upload] | None,
    code: grpc.StatusCode,
) -> None:
    """Oversized, truncated, overlong or corrupted attachments: refused with the right code,
    and not a row written (complaint, blob, key or ledger entry)."""
    before = _counts(served.ctx)
    submission = submission_for(_draft(), f"sms-{case}".replace(" ", "-"), declared or uploads)
    with served.client() as client:
        error = _refused(lambda: client.submit(submission, uploads))
    assert error.code == code, case
    assert _counts(served.ctx) == before


def test_a_malformed_submission_is_refused(served: Served) -> None:
    """A bad field, a bad key, or chunks without a submission: INVALID_ARGUMENT, nothing
    stored."""
    before = _counts(served.ctx)
    bad_region = submission_for(replace(_draft(), region_code="Kaltim"), "sms-0004")
    bad_key = submission_for(_draft(), "no spaces allowed")
    with served.client() as client:
        for submission in (bad_region, bad_key):
            error = _refused(lambda s=submission: client.submit(s))  # type: ignore[misc]
            assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert _counts(served.ctx) == before


def test_unknown_tokens_and_foreign_channels_are_refused(served: Served) -> None:
    """A token no gateway has: UNAUTHENTICATED; the SMS gateway submitting for the web
    channel: PERMISSION_DENIED; a status asked for another gateway's complaint: NOT_FOUND."""
    before = _counts(served.ctx)
    stranger = IntakeClient(served.address, intake.new_token(), served.fingerprint)
    with stranger:
        error = _refused(lambda: stranger.submit(submission_for(_draft(), "x-1")))
    assert error.code == grpc.StatusCode.UNAUTHENTICATED
    with served.client("sms") as client:
        error = _refused(lambda: client.submit(submission_for(_draft(channel="web"), "x-2")))
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    assert _counts(served.ctx) == before
    with served.client("web") as web:
        mine = web.submit(submission_for(_draft(channel="api"), "web-1"))
    with served.client("sms") as client:
        error = _refused(lambda: client.status(mine.tracking_id))
    assert error.code == grpc.StatusCode.NOT_FOUND


def test_a_wrong_certificate_stops_the_client_before_sending(served: Served) -> None:
    """A gateway pinned to another fingerprint refuses the node's certificate."""
    with pytest.raises(IntegrityError, match="not the pinned"):
        IntakeClient(served.address, served.tokens["sms"], bytes(32))


def test_concurrent_retries_register_one_complaint(served: Served) -> None:
    """Eight simultaneous tries of one submission over the wire: one complaint, and every
    caller gets its tracking id."""
    submission = submission_for(_draft(), "sms-burst", [RECEIPT])

    def one(_: int) -> intake_pb2.SubmitResponse:
        with served.client() as client:
            return client.submit(submission, [RECEIPT])

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(one, range(8)))
    assert len({r.tracking_id for r in responses}) == 1
    assert sum(not r.duplicate for r in responses) == 1
    with served.ctx.db.read() as session:
        assert len(queries.list_complaints(session)) == 1


def test_concurrent_first_tries_in_the_database_register_one_complaint(served: Served) -> None:
    """Straight against the database, past the server's single writer: concurrent
    transactions with one key commit one complaint; the other is answered as a retry.
    Writers queue on both databases (SQLite: BEGIN IMMEDIATE; PostgreSQL: the advisory
    write lock, node.store.db), so the second sees the first's key."""
    draft = _draft()
    gateway = served.ctx.config.intake.gateways[0]
    original = intake.submit_in
    registrations: list[int] = []

    def counting(session, ctx, d):  # type: ignore[no-untyped-def]
        registrations.append(1)
        return original(session, ctx, d)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(intake, "submit_in", counting)
        with ThreadPoolExecutor(2) as pool:
            results = list(
                pool.map(
                    lambda _: intake.accept(served.ctx, draft, gateway=gateway, key="race-1"),
                    range(2),
                )
            )
    assert len({r.tracking_id for r in results}) == 1
    assert sorted(r.duplicate for r in results) == [False, True]
    assert len(registrations) == 1
    with served.ctx.db.read() as session:
        assert len(queries.list_complaints(session)) == 1
        assert session.execute(select(func.count()).select_from(ComplaintContentRow)).scalar() == 1


def test_a_try_that_missed_the_first_key_is_rolled_back_and_answered_as_a_retry(
    served: Served,
) -> None:
    """Defence in depth: a transaction that did not see the first try's key registers a
    complaint, meets the unique key at commit, is rolled back whole, and is answered as
    the retry it is."""
    draft = _draft()
    gateway = served.ctx.config.intake.gateways[0]
    first = intake.accept(served.ctx, draft, gateway=gateway, key="race-2")
    real = store.get_request
    calls: list[int] = []

    def blind_once(session, gw, key):  # type: ignore[no-untyped-def]
        calls.append(1)
        return None if len(calls) == 1 else real(session, gw, key)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "get_request", blind_once)
        second = intake.accept(served.ctx, draft, gateway=gateway, key="race-2")
    assert (second.tracking_id, second.duplicate) == (first.tracking_id, True)
    assert len(calls) == 2
    with served.ctx.db.read() as session:
        assert len(queries.list_complaints(session)) == 1
        assert session.execute(select(func.count()).select_from(ComplaintContentRow)).scalar() == 1


def test_erasing_the_content_erases_its_attachments(served: Served) -> None:
    """`complaint erase` removes the content; its attachment links go with it, and a blob
    goes with the last complaint that lists it."""
    shared, own = RECEIPT, Upload("a.png", "image/png", b"\x89PNG" * 1000)
    with served.client() as client:
        one = client.submit(submission_for(_draft(1), "sms-e1", [shared, own]), [shared, own])
        two = client.submit(submission_for(_draft(2), "sms-e2", [shared]), [shared])
    with served.ctx.db.read() as session:
        assert store.blob_count(session) == 2
        assert store.attachment_count(session) == 3
    complaints.erase(served.ctx, one.tracking_id, "permintaan penghapusan data no. 12")
    with served.ctx.db.read() as session:
        assert store.blob_count(session) == 1  # the PNG went; the shared receipt stays
        assert store.attachment_count(session) == 1
    _, data = intake.attachment(served.ctx, two.tracking_id, hashlib.sha256(shared.data).digest())
    assert data == shared.data
    complaints.erase(served.ctx, two.tracking_id, "permintaan penghapusan data no. 13")
    with served.ctx.db.read() as session:
        assert store.blob_count(session) == 0
        assert store.attachment_count(session) == 0


def test_a_taken_intake_port_stops_the_node(tmp_path: Path, database_url: str) -> None:
    """intake.listen on a port in use: start fails with a ConfigError naming the key."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        path = init_node(
            tmp_path / "node", "id-64", "X", listen=f"127.0.0.1:{free_port()}",
            database_url=database_url,
        )  # fmt: skip
        text = path.read_text().replace(
            "grace_seconds: 5", 'grace_seconds: 1\n  enrollment_listen: ""'
        )
        path.write_text(text + f'intake:\n  listen: "127.0.0.1:{port}"\n')
        ctx = NodeContext.open(path)

        async def main() -> None:
            runtime = NodeRuntime(ctx)
            try:
                with pytest.raises(ConfigError, match=r"intake\.listen"):
                    await runtime.start()
            finally:
                await runtime.stop()

        try:
            asyncio.run(main())
        finally:
            ctx.close()


def test_the_service_refuses_what_the_wire_cannot_send(served: Served) -> None:
    """Called directly (as the CLI does): a gateway without a key, files other than the
    declared ones, and walk-in files over the total limit are refused; nothing stored."""
    gateway = served.ctx.config.intake.gateways[0]
    before = _counts(served.ctx)
    with pytest.raises(ValidationError, match="idempotency_key"):
        intake.accept(served.ctx, _draft(), gateway=gateway)
    files = [
        intake.Received(replace(_ref_of(data), name=f"f{n}.bin"), data)
        for n, data in enumerate((b"a" * 60_000, b"b" * 60_000))
    ]
    with pytest.raises(ValidationError, match="not the ones the draft declares"):
        intake.accept(served.ctx, _draft(channel="walk_in"), files[:1])
    with pytest.raises(TooLargeError, match="max_total_bytes"):
        intake.accept(
            served.ctx,
            replace(_draft(channel="walk_in"), attachments=tuple(f.ref for f in files)),
            files,
        )
    assert _counts(served.ctx) == before


def _ref_of(data: bytes) -> AttachmentRef:
    return AttachmentRef(
        "f.bin", "application/octet-stream", len(data), hashlib.sha256(data).digest()
    )
