"""The authority rules of DESIGN.md, as a table: every RPC a node serves, called by every
kind of caller, against a real province node over real mutual TLS.

Callers, relative to the province id-64 (the node under test):
  parent   id (national), linked as its parent
  child    id-64-02, linked as its child
  sibling  id-65, another province under national: never linked to id-64
  unlinked id-99, a node nobody linked
  revoked  id-64-07, linked as a child, then revoked
  expired  id-64-09, linked as a child with a certificate that has since expired
  auditor  Ombudsman RI, listed in id-64's node.yaml
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from node._proto.lapor.v1 import complaint_pb2, envelope_pb2, federation_pb2, federation_pb2_grpc
from node.crypto.keyfiles import write_private, write_public
from node.crypto.tls import dns_name, generate_tls_identity
from node.federation.audit_client import AuditCallError, AuditClient, CallerIdentity
from node.ids import NodeId, new_message_id
from node.services import links
from tests.conftest import NodeFactory
from tests.integration.test_audit_service import list_auditor
from tests.support.nodes import TestNode, link
from tests.support.peers import envelope, sealed

pytestmark = pytest.mark.slow

OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED
NO_TLS = grpc.StatusCode.UNAVAILABLE  # the TLS handshake fails: the certificate is not trusted
STATE = grpc.StatusCode.FAILED_PRECONDITION


@dataclass
class Caller:
    name: str
    node_id: str
    identity: CallerIdentity
    node: TestNode | None  # None for the auditor (no signing key)


@dataclass
class World:
    province: TestNode
    callers: dict[str, Caller]


def _expire(node: TestNode) -> None:
    """Give `node` a certificate that expired yesterday (same node id)."""
    cfg = node.ctx().config
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    identity = generate_tls_identity(NodeId(node.node_id), past, valid_days=29)
    cfg.tls_key.unlink()
    cfg.tls_cert.unlink()
    write_private(cfg.tls_key, identity.key_pem)
    write_public(cfg.tls_cert, identity.cert_pem)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    # Module scope: one set of nodes for the whole table (on SQLite; the rules do not
    # depend on the database, and every other integration test runs both).
    from tests.support.databases import fresh_database
    from tests.support.nodes import make_node

    tmp = tmp_path_factory.mktemp("authority")
    stack: list[object] = []
    made: list[TestNode] = []

    def factory(node_id: str, name: str) -> TestNode:
        cm = fresh_database("sqlite", tmp)
        stack.append(cm)
        node = make_node(tmp, node_id, name, cm.__enter__())
        made.append(node)
        return node

    yield _build(factory, tmp)  # type: ignore[misc]
    for node in made:
        node.close()
    for cm in reversed(stack):
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]


def _build(factory: NodeFactory, tmp: Path) -> World:
    national = factory("id", "Nasional")
    province = factory("id-64", "Provinsi Kalimantan Timur")
    child = factory("id-64-02", "Kabupaten Kutai Kartanegara")
    sibling = factory("id-65", "Provinsi Kalimantan Utara")
    unlinked = factory("id-99", "Simpul tak dikenal")
    revoked = factory("id-64-07", "Kabupaten Kutai Barat")
    expired = factory("id-64-09", "Kabupaten Penajam Paser Utara")
    _expire(expired)
    link(national, province)
    link(national, sibling)
    for c in (child, revoked, expired):
        link(province, c)
    links.revoke(province.ctx(), "id-64-07", "unit merged; link ended by the province")
    auditor_dir = tmp / "ombudsman"
    auditor_dir.mkdir()
    CallerIdentity.create("Ombudsman RI", auditor_dir, dt.datetime.now(dt.UTC))
    list_auditor(province, "Ombudsman RI", auditor_dir)
    province.start()

    def caller(name: str, node: TestNode) -> Caller:
        return Caller(name, node.node_id, CallerIdentity.load(node.directory / "keys"), node)

    callers = {
        "parent": caller("parent", national),
        "child": caller("child", child),
        "sibling": caller("sibling", sibling),
        "unlinked": caller("unlinked", unlinked),
        "revoked": caller("revoked", revoked),
        "expired": caller("expired", expired),
        "auditor": Caller("auditor", "", CallerIdentity.load(auditor_dir), None),
    }
    return World(province, callers)


def _exchange(world: World, caller: Caller, payload: str) -> grpc.StatusCode:
    """Dial the province's FederationService as `caller`, say Hello, deliver one envelope."""
    frames = [federation_pb2.Frame(hello=federation_pb2.Hello(protocol_version=1))]
    if caller.node is not None:
        env = _envelope(caller, payload)
        frames.append(federation_pb2.Frame(delivery=federation_pb2.Delivery(envelope=env)))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=world.province.card().tls_cert_pem,
        private_key=caller.identity.key_pem,
        certificate_chain=caller.identity.cert_pem,
    )
    options = [("grpc.ssl_target_name_override", dns_name("id-64"))]
    requests = [federation_pb2.ExchangeRequest(frame=f) for f in frames]
    with grpc.secure_channel(world.province.address, credentials, options=options) as channel:
        stub = federation_pb2_grpc.FederationServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            for response in stub.Exchange(iter(requests), timeout=10):
                if response.frame.WhichOneof("kind") == "rejection":
                    return grpc.StatusCode(_by_value(response.frame.rejection.code))
        except grpc.RpcError as e:
            return e.code()  # type: ignore[no-any-return]
    return OK


def _by_value(code: int) -> tuple[int, str]:
    return next(c.value for c in grpc.StatusCode if c.value[0] == code)


def _envelope(caller: Caller, payload: str) -> envelope_pb2.SignedEnvelope:
    assert caller.node is not None
    if payload == "referral":
        summary = complaint_pb2.ComplaintSummary(
            tracking_id=f"{caller.node_id}.2026.000001",
            origin_node=caller.node_id,
            classification=complaint_pb2.CLASSIFICATION_PENGADUAN,
            category="infrastruktur",
            region_code="64.02",
            channel=complaint_pb2.CHANNEL_WEB,
            content_commitment=b"\0" * 32,
        )
        summary.submitted_at.GetCurrentTime()
        env = envelope(
            caller.node_id, "id-64", 1, referral=envelope_pb2.Referral(complaint=summary)
        )
    else:
        env = envelope(
            caller.node_id,
            "id-64",
            1,
            receipt=envelope_pb2.Receipt(
                referral_message_id=new_message_id(),
                referral_body_sha256=b"\0" * 32,
                tracking_id="id-64.2026.000001",
            ),
        )
    return sealed(caller.node, env)


def _audit(world: World, caller: Caller, _: str) -> grpc.StatusCode:
    try:
        with AuditClient(world.province.address, world.province.card(), caller.identity) as c:
            c.get_checkpoint()
    except AuditCallError as e:
        return e.code
    return OK


RPCS: dict[str, Callable[[World, Caller, str], grpc.StatusCode]] = {
    "Exchange/referral": _exchange,
    "Exchange/receipt": _exchange,
    "Audit/GetCheckpoint": _audit,
}

# rpc -> caller -> expected status
TABLE: dict[str, dict[str, grpc.StatusCode]] = {
    # Only children dial in; a referral comes only from the parent, which never dials.
    "Exchange/referral": {
        "parent": DENIED,
        "child": DENIED,
        "sibling": NO_TLS,
        "unlinked": NO_TLS,
        "revoked": NO_TLS,
        "expired": NO_TLS,
        "auditor": DENIED,
    },
    # A child may send receipts, but only for referrals this node sent it.
    "Exchange/receipt": {
        "parent": DENIED,
        "child": STATE,
        "sibling": NO_TLS,
        "unlinked": NO_TLS,
        "revoked": NO_TLS,
        "expired": NO_TLS,
        "auditor": DENIED,
    },
    # Linked peers and listed auditors may read the ledger; nobody else gets in.
    "Audit/GetCheckpoint": {
        "parent": OK,
        "child": OK,
        "sibling": NO_TLS,
        "unlinked": NO_TLS,
        "revoked": NO_TLS,
        "expired": NO_TLS,
        "auditor": OK,
    },
}

CASES = [
    pytest.param(rpc, who, expected, id=f"{rpc}-{who}")
    for rpc, row in TABLE.items()
    for who, expected in row.items()
]


@pytest.mark.parametrize(("rpc", "who", "expected"), CASES)
def test_authority(world: World, rpc: str, who: str, expected: grpc.StatusCode) -> None:
    payload = rpc.split("/")[-1]
    got = RPCS[rpc](world, world.callers[who], payload)
    assert got == expected, f"{who} calling {rpc}: expected {expected.name}, got {got.name}"


def test_refusals_leave_no_trace(world: World) -> None:
    """Nothing any refused caller sent is stored: no complaint, no inbox row."""
    ctx = world.province.ctx()
    from node.services import complaints

    assert complaints.list_complaints(ctx) == []
    with ctx.db.read() as session:
        from sqlalchemy import text

        assert session.execute(text("SELECT count(*) FROM inbox")).scalar_one() == 0
