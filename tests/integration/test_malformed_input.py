"""Malformed input on a link is the caller's error, precisely (issue 21.10): numbers beyond
what the database holds and nested messages that do not parse are answered
INVALID_ARGUMENT with a message that says what was wrong, logged at warning with the peer,
recorded as the link's last error, and leave nothing stored."""

from __future__ import annotations

import json

import grpc
import pytest
from sqlalchemy import select

from node._proto.lapor.v1 import federation_pb2, trust_pb2
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


def _warnings(node: TestNode, event: str) -> list[dict[str, object]]:
    lines = [line for line in node.log_path.read_text().splitlines() if line.startswith("{")]
    events = [json.loads(line) for line in lines]
    return [e for e in events if e.get("event") == event and e.get("level") == "warning"]


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
