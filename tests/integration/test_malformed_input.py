"""Malformed input on a link is the caller's error, precisely (issue 21.10): numbers beyond
what the database holds and nested messages that do not parse are answered
INVALID_ARGUMENT with a message that says what was wrong, logged at warning with the peer,
recorded as the link's last error, and leave nothing stored."""

from __future__ import annotations

import datetime as dt
import json

import grpc
import pytest
from sqlalchemy import select

from node._proto.lapor.v1 import enrollment_pb2, enrollment_pb2_grpc, federation_pb2, trust_pb2
from node.crypto.linking import AddressPair, sign_join
from node.crypto.tls import dns_name
from node.services import invites, joining
from node.store.models import Link
from tests.conftest import NodeFactory
from tests.support.nodes import TestNode, link, snapshot, wait_until
from tests.support.peers import delivery, envelope, exchange_as, hello, sealed

pytestmark = pytest.mark.slow

TOO_BIG = (1 << 64) - 1


def _hello(**fields: int) -> federation_pb2.Frame:
    return federation_pb2.Frame(hello=federation_pb2.Hello(protocol_version=1, **fields))


def _garbled_rotation(p: TestNode, r: TestNode) -> list[federation_pb2.Frame]:
    rotation = trust_pb2.SignedKeyRotation(rotation=b"\xff\xff\xff not a KeyRotation")
    env = envelope(r.node_id, p.node_id, 1, key_rotation=rotation)
    return [hello(0), delivery(sealed(r, env))]


CASES = [
    pytest.param(
        lambda p, r: [_hello(last_received_sequence=TOO_BIG)],
        "last received sequence",
        id="hello-last-received-beyond-2^63",
    ),
    pytest.param(
        lambda p, r: [_hello(last_received_sequence=1 << 63)],
        "last received sequence",
        id="hello-last-received-at-2^63",
    ),
    pytest.param(
        lambda p, r: [_hello(held_checkpoint_size=TOO_BIG)],
        "held checkpoint size",
        id="hello-held-size-beyond-2^63",
    ),
    pytest.param(_garbled_rotation, "key rotation does not parse", id="garbled-key-rotation"),
]


@pytest.fixture
def province_and_child(nodes: NodeFactory) -> tuple[TestNode, TestNode]:
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    province.start()
    return province, regency


def _last_error(node: TestNode, peer: str) -> str | None:
    with node.ctx().db.read() as session:
        row = session.execute(select(Link).where(Link.peer_id == peer)).scalar_one()
        return row.last_error


def _events(node: TestNode) -> list[dict[str, object]]:
    lines = [line for line in node.log_path.read_text().splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def _warnings(node: TestNode, event: str) -> list[dict[str, object]]:
    return [e for e in _events(node) if e.get("event") == event and e.get("level") == "warning"]


@pytest.mark.parametrize(("frames", "words"), CASES)
def test_malformed_input_is_invalid_argument_logged_and_recorded(
    province_and_child: tuple[TestNode, TestNode], frames: object, words: str
) -> None:
    """INVALID_ARGUMENT naming the field, a warning naming the peer, the link's last error
    set, and no row changed (before: UNKNOWN with internal text, nothing logged)."""
    province, regency = province_and_child
    before = snapshot(province)
    outcome = exchange_as(regency, province, frames(province, regency), expect=50)  # type: ignore[operator]
    assert outcome.code == grpc.StatusCode.INVALID_ARGUMENT, outcome
    assert words in outcome.details, outcome.details
    error = wait_until(lambda: _last_error(province, regency.node_id), what="the link's last error")
    assert words in error
    refused = wait_until(lambda: _warnings(province, "link.refused"), what="a warning")
    assert any(e.get("peer") == regency.node_id for e in refused), refused
    after = snapshot(province)
    assert after == before


def test_a_join_time_out_of_the_calendar_is_invalid_argument_over_the_wire(
    province_and_child: tuple[TestNode, TestNode],
) -> None:
    """A signed Join whose time no calendar holds: INVALID_ARGUMENT saying so and a warning
    naming the caller's address (before: INTERNAL, with an error-level log)."""
    province, regency = province_and_child
    parent = province.ctx()
    addresses = [AddressPair(province.address, parent.config.server.enrollment_address)]
    token = invites.invite(
        parent, "id-64-08", "Kutai Timur", dt.timedelta(hours=1), "auto", addresses
    )
    cert = parent.config.tls_cert.read_bytes()
    honest = joining.join_request(regency.ctx(), token, cert)
    transcript = enrollment_pb2.JoinTranscript.FromString(honest.transcript)
    transcript.requested_at.seconds = 253402300800  # the first second after 9999-12-31
    data = transcript.SerializeToString()
    child = regency.ctx()
    ed, tls = sign_join(data, child.signing_key, child.config.tls_key.read_bytes())
    request = enrollment_pb2.JoinRequest(
        transcript=data,
        signing_signature=ed,
        tls_signature=tls,
        child_tls_cert_pem=honest.child_tls_cert_pem,
        secret=honest.secret,
    )
    before = snapshot(province)
    options = [("grpc.ssl_target_name_override", dns_name(province.node_id))]
    creds = grpc.ssl_channel_credentials(root_certificates=cert)
    with grpc.secure_channel(parent.config.server.enrollment_address, creds, options) as channel:
        stub = enrollment_pb2_grpc.EnrollmentServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as caught:
            stub.Join(request, timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert "time is out of range" in caught.value.details()  # type: ignore[attr-defined]
    refused = wait_until(lambda: _warnings(province, "enrollment.refused"), what="a warning")
    assert refused[0]["peer_address"]
    assert not [e for e in _events(province) if e.get("level") in ("error", "critical")]
    assert snapshot(province) == before
