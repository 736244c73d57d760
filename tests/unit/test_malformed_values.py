"""Numbers and times from outside that no database or calendar holds are refused as the
caller's error (ValidationError, INVALID_ARGUMENT at the edge), never an OverflowError or
ValueError from deep inside (issue 21.10); on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from node._proto.lapor.v1 import complaint_pb2, enrollment_pb2, envelope_pb2, federation_pb2
from node.clock import FixedClock
from node.complaints import check_summary
from node.crypto.linking import open_join_request, sign_join
from node.crypto.signing import SigningKey
from node.envelopes import open_envelope, seal
from node.errors import ValidationError
from node.ids import NodeId, new_message_id
from node.services import exchange, invites, join_answers, joining, links
from node.services.context import NodeContext
from node.store import queries, tree
from node.store.models import Link
from tests.conftest import NodeFactory
from tests.unit.services.test_enrollment import ADDRESSES, NOW, TTL

OUT_OF_RANGE = [
    pytest.param(1 << 63, id="2^63"),
    pytest.param((1 << 64) - 1, id="2^64-1"),
    pytest.param(-1, id="negative"),
]


@pytest.fixture
def pair(nodes: NodeFactory) -> Iterator[tuple[NodeContext, NodeContext]]:
    parent = NodeContext.open(nodes("id-64", "Provinsi").config, clock=FixedClock(NOW))
    child = NodeContext.open(nodes("id-64-02", "Kabupaten").config, clock=FixedClock(NOW))
    links.add_link(parent, links.own_card(child), "child")
    yield parent, child
    parent.close()
    child.close()


@pytest.mark.parametrize("size", OUT_OF_RANGE)
def test_no_checkpoint_has_a_size_beyond_64_bits(
    pair: tuple[NodeContext, NodeContext], size: int
) -> None:
    """checkpoint_of_size answers None for a size no ledger can have (was OverflowError)."""
    parent, _ = pair
    with parent.db.read() as session:
        assert tree.checkpoint_of_size(session, size) is None


@pytest.mark.parametrize("value", OUT_OF_RANGE[:2])
def test_update_returning_refuses_a_value_the_column_cannot_hold(
    pair: tuple[NodeContext, NodeContext], value: int
) -> None:
    """A value beyond 64 bits is a ValidationError and changes nothing."""
    parent, _ = pair
    with pytest.raises(ValidationError, match="out of the range"), parent.db.write() as session:
        queries.update_returning(
            session, Link.next_out_seq, Link.peer_id == "id-64-02", acked_out_seq=value
        )
    with parent.db.read() as session:
        link = queries.get_link(session, "id-64-02", lock=False)
        assert link is not None and link.acked_out_seq == 0


@pytest.mark.parametrize("value", OUT_OF_RANGE)
def test_hello_and_ack_numbers_are_checked_at_the_edge(
    pair: tuple[NodeContext, NodeContext], value: int
) -> None:
    """A Hello or Ack number outside 0..2^63-1 is refused before it reaches the database."""
    parent, _ = pair
    if value >= 0:
        with pytest.raises(ValidationError, match="last received sequence"):
            exchange.check_hello(federation_pb2.Hello(last_received_sequence=value))
        with pytest.raises(ValidationError, match="held checkpoint size"):
            exchange.check_hello(federation_pb2.Hello(held_checkpoint_size=value))
    with pytest.raises(ValidationError, match="between 0 and 2\\^63-1"):
        exchange.acknowledge(parent, NodeId("id-64-02"), value)
    with pytest.raises(ValidationError, match="between 0 and 2\\^63-1"):
        exchange.check_peer_holds(parent, value)


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        pytest.param(253402300800, 0, id="after-year-9999"),
        pytest.param(-62135596801, 0, id="before-year-1"),
        pytest.param(1 << 62, 0, id="huge"),
        pytest.param(1_772_438_400, -1, id="negative-nanos"),
        pytest.param(1_772_438_400, 1_000_000_000, id="nanos-overflow"),
    ],
)
def test_a_join_time_out_of_the_calendar_is_invalid_argument(
    pair: tuple[NodeContext, NodeContext], seconds: int, nanos: int
) -> None:
    """A signed join transcript whose time no calendar holds is a ValidationError, logged at
    most as a warning (was ValueError: INTERNAL with an error-level log)."""
    parent, child = pair
    token = invites.invite(parent, "id-64-03", "Kabupaten", TTL, "auto", ADDRESSES)
    honest = joining.join_request(child, token, parent.config.tls_cert.read_bytes())
    transcript = enrollment_pb2.JoinTranscript.FromString(honest.transcript)
    transcript.requested_at.seconds, transcript.requested_at.nanos = seconds, nanos
    data = transcript.SerializeToString()
    ed, tls = sign_join(data, child.signing_key, child.config.tls_key.read_bytes())
    request = enrollment_pb2.JoinRequest(
        transcript=data,
        signing_signature=ed,
        tls_signature=tls,
        child_tls_cert_pem=honest.child_tls_cert_pem,
        secret=honest.secret,
    )
    with pytest.raises(ValidationError, match="time is out of range"):
        open_join_request(request)
    with capture_logs() as logs, pytest.raises(ValidationError, match="time is out of range"):
        join_answers.check_join(parent, request)
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]


@pytest.mark.parametrize(("seconds", "nanos"), [(253402300800, 0), (-62135596801, 0), (0, -1)])
def test_an_envelope_time_out_of_the_calendar_is_refused_at_the_edge(
    seconds: int, nanos: int
) -> None:
    """open_envelope refuses a sent_at no calendar holds, and check_summary a submitted_at:
    later code turns them into datetimes (which raised ValueError)."""
    key = SigningKey.generate()
    env = envelope_pb2.Envelope(
        message_id=new_message_id(), sender="id-64-02", recipient="id-64", sequence=1
    )
    env.receipt.SetInParent()
    env.sent_at.seconds, env.sent_at.nanos = seconds, nanos
    with pytest.raises(ValidationError, match="sent_at is not a time between"):
        open_envelope(
            seal(env, key), peer=NodeId("id-64-02"), peer_key=key.public, me=NodeId("id-64")
        )
    summary = complaint_pb2.ComplaintSummary(
        tracking_id="id-64.2026.000001",
        origin_node="id-64",
        classification=complaint_pb2.CLASSIFICATION_PENGADUAN,
        category="jalan",
        region_code="64.02",
        channel=complaint_pb2.CHANNEL_WEB,
        content_commitment=bytes(32),
    )
    summary.submitted_at.seconds, summary.submitted_at.nanos = seconds, nanos
    with pytest.raises(ValidationError, match="submitted_at is not a time between"):
        check_summary(summary)
