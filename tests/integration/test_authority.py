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

RPCs: FederationService.Exchange with each envelope payload, every AuditService method,
and EnrollmentService.GetKeyRotations. Join and Confirm take no caller identity at all (a
join token and keys proved inside the request: tests/integration/test_enrollment.py), and
IntakeService authenticates gateways by token, not node certificates
(tests/integration/test_intake.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from node._proto.lapor.v1 import (
    complaint_pb2,
    envelope_pb2,
    federation_pb2,
    federation_pb2_grpc,
    privacy_pb2,
)
from node.crypto.keyfiles import write_private, write_public
from node.crypto.rotation import sign_rotation
from node.crypto.signing import SigningKey
from node.crypto.tls import dns_name, generate_tls_identity
from node.errors import NodeError
from node.federation.audit_client import AuditCallError, AuditClient, CallerIdentity
from node.federation.enrollment_port import fetch_key_rotations
from node.federation.status import status_for
from node.ids import NodeId, new_message_id
from node.services import links
from tests.conftest import NodeFactory
from tests.integration.test_audit_service import list_auditor
from tests.support.nodes import TestNode, link
from tests.support.peers import envelope, sealed, signing_key
from tests.support.waits import DELIVERY_BOUND

pytestmark = pytest.mark.slow

OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED
NO_TLS = grpc.StatusCode.UNAVAILABLE  # the TLS handshake fails: the certificate is not trusted
STATE = grpc.StatusCode.FAILED_PRECONDITION
INVALID = grpc.StatusCode.INVALID_ARGUMENT
Row = dict[str, grpc.StatusCode]


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
            for response in stub.Exchange(iter(requests), timeout=DELIVERY_BOUND):
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
    elif payload == "receipt":
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
    elif payload == "status_update":
        update = envelope_pb2.StatusUpdate(
            tracking_id="id-64.2026.000001",
            action="follow_up",
            status="in_progress",
            holder=caller.node_id,
            actor=caller.node_id,
        )
        update.at.GetCurrentTime()
        env = envelope(caller.node_id, "id-64", 1, status_update=update)
    elif payload == "reporter_reply":
        reply = envelope_pb2.ReporterReply(
            tracking_id="id-64.2026.000001", text_commitment=b"\0" * 32
        )
        reply.at.GetCurrentTime()
        env = envelope(caller.node_id, "id-64", 1, reporter_reply=reply)
    elif payload == "key_rotation":
        # A rotation of another node than the sender, signed by keys the sender holds.
        old = signing_key(caller.node)
        cert = generate_tls_identity(NodeId("id-64-03"), dt.datetime.now(dt.UTC)).cert_pem
        rotation = sign_rotation(
            old,
            SigningKey.generate(),
            node_id="id-64-03",
            new_tls_cert_pem=cert,
            rotated_at=dt.datetime.now(dt.UTC),
            old_tls_valid_until=dt.datetime.now(dt.UTC),
        )
        env = envelope(caller.node_id, "id-64", 1, key_rotation=rotation)
    else:
        box = privacy_pb2.SealedIdentity(
            tracking_id="id-64.2026.000001", recipient_node="id-64", recipient_key=b"\0" * 32
        )
        env = envelope(caller.node_id, "id-64", 1, sealed_identity=box)
    return sealed(caller.node, env)


_AUDIT_CALLS: dict[str, Callable[[AuditClient], object]] = {
    "GetCheckpoint": lambda c: c.get_checkpoint(),
    "GetEntries": lambda c: list(c.entries(0, 1)),
    "ListCheckpoints": lambda c: list(c.checkpoints(0, 1)),
    "GetInclusionProof": lambda c: c.get_inclusion_proof(0, 1),
    "GetConsistencyProof": lambda c: c.get_consistency_proof(1, 1),
}


def _audit(world: World, caller: Caller, method: str) -> grpc.StatusCode:
    try:
        with AuditClient(world.province.address, world.province.card(), caller.identity) as c:
            _AUDIT_CALLS[method](c)
    except AuditCallError as e:
        return e.code
    return OK


def _key_rotations(world: World, caller: Caller, _: str) -> grpc.StatusCode:
    """The enrollment port asks for no client certificate: the rotations are public (each
    signed by the old and the new key), whoever asks."""
    address = world.province.ctx().config.server.enrollment_address
    try:
        fetch_key_rotations(address, NodeId("id-64"))
    except NodeError as e:
        return status_for(e)
    return OK


EXCHANGE_PAYLOADS = (
    "referral",
    "receipt",
    "status_update",
    "reporter_reply",
    "key_rotation",
    "sealed_identity",
)
RPCS: dict[str, Callable[[World, Caller, str], grpc.StatusCode]] = {
    **{f"Exchange/{payload}": _exchange for payload in EXCHANGE_PAYLOADS},
    **{f"Audit/{method}": _audit for method in _AUDIT_CALLS},
    "Enrollment/GetKeyRotations": _key_rotations,
}

OUTSIDERS = ("sibling", "unlinked", "revoked", "expired")


def _row(parent: grpc.StatusCode, child: grpc.StatusCode, auditor: grpc.StatusCode) -> Row:
    """Expected outcomes by caller; every caller this node does not trust fails TLS."""
    return {
        "parent": parent,
        "child": child,
        **dict.fromkeys(OUTSIDERS, NO_TLS),
        "auditor": auditor,
    }


# rpc -> caller -> expected status
TABLE: dict[str, Row] = {
    # Only children dial in; a referral comes only from the parent, which never dials.
    "Exchange/referral": _row(parent=DENIED, child=DENIED, auditor=DENIED),
    # A child may send receipts, but only for referrals this node sent it.
    "Exchange/receipt": _row(parent=DENIED, child=STATE, auditor=DENIED),
    # A child reports changes only of complaints this node referred to it.
    "Exchange/status_update": _row(parent=DENIED, child=STATE, auditor=DENIED),
    # Reporter replies and sealed identities come down from the parent only.
    "Exchange/reporter_reply": _row(parent=DENIED, child=DENIED, auditor=DENIED),
    "Exchange/sealed_identity": _row(parent=DENIED, child=DENIED, auditor=DENIED),
    # A node rotates only its own keys.
    "Exchange/key_rotation": _row(parent=DENIED, child=INVALID, auditor=DENIED),
    # Linked peers and listed auditors may read the ledger; nobody else gets in.
    **{f"Audit/{method}": _row(parent=OK, child=OK, auditor=OK) for method in _AUDIT_CALLS},
    # Public: signed records, served to anyone on the enrollment port.
    "Enrollment/GetKeyRotations": {
        "parent": OK,
        "child": OK,
        **dict.fromkeys(OUTSIDERS, OK),
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
