"""`lapor-node keys rotate`: a new signing key and TLS certificate, a rotation signed by the
old and the new key in the ledger and sent to every peer, which re-pins; old entries still
verify; the old certificate is accepted for a grace period only; a peer that was away
follows the rotation when it returns (docs/decisions/0008-key-rotation.md)."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from node._proto.lapor.v1 import ledger_pb2, trust_pb2
from node.clock import FixedClock
from node.complaints import ComplaintDraft
from node.crypto.rotation import sign_rotation
from node.crypto.signing import SigningKey
from node.crypto.tls import fingerprint, generate_tls_identity
from node.errors import IntegrityError, SignatureError, StateError, ValidationError
from node.federation.audit_client import AuditClient, CallerIdentity
from node.ids import NodeId
from node.ledger.audit import verify_export
from node.ledger.reconcile import reconcile_exports
from node.services import _keys, audit, complaints, exchange, links, rotation
from node.services.context import NodeContext
from node.store import queries
from node.store.models import PeerKey
from tests.conftest import NodeFactory
from tests.integration.test_audit_service import list_auditor
from tests.support.nodes import TestNode, hand_over, link, status_of, wait_until
from tests.support.peers import delivery, envelope, sealed
from tests.support.waits import pin_change_bound, reconnect_bound, recovery_bound

START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def _draft(n: int) -> ComplaintDraft:
    return ComplaintDraft(
        title=f"Lampu jalan padam {n}",
        description="Lampu jalan di Jl. Gajah Mada padam sejak seminggu.",
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.02",
        channel="web",
    )


def _refer(parent: TestNode, child: TestNode, n: int) -> str:
    ctx = parent.ctx()
    tracking_id = complaints.submit(ctx, _draft(n))
    complaints.refer(ctx, tracking_id, child.node_id)
    return tracking_id


def _round_trip(parent: TestNode, child: TestNode) -> None:
    """Deliver everything queued both ways, checking each batch is accepted."""
    for sender, receiver in ((parent, child), (child, parent), (parent, child)):
        result = hand_over(sender, receiver)
        assert result.error is None, result.error


def _entries(ctx: NodeContext, kind: str) -> list[tuple[int, ledger_pb2.LedgerEntry]]:
    found = []
    with ctx.db.read() as session:
        for index, data in session.execute(text("SELECT idx, entry FROM ledger_entries")):
            entry = ledger_pb2.LedgerEntry.FromString(bytes(data))
            if entry.WhichOneof("kind") == kind:
                found.append((index, entry))
    return found


def _export(ctx: NodeContext) -> list[str]:
    out = io.StringIO()
    audit.export(ctx, out)
    return out.getvalue().splitlines(keepends=True)


def _pinned(ctx: NodeContext, peer: str) -> tuple[bytes, bytes]:
    with ctx.db.read() as session:
        row = queries.get_link(session, peer)
        assert row is not None
        return row.signing_key, row.tls_fingerprint


@pytest.fixture
def pair(nodes: NodeFactory) -> Iterator[tuple[TestNode, TestNode]]:
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    for node in (province, regency):
        node.ctx().clock = FixedClock(START)
    _refer(province, regency, 1)
    _round_trip(province, regency)
    yield province, regency


def test_rotation_is_recorded_sent_and_followed(pair: tuple[TestNode, TestNode]) -> None:
    province, regency = pair
    ctx = regency.ctx()
    old_key = ctx.signing_key.public.raw
    old_cert = ctx.config.tls_cert.read_bytes()

    done = rotation.rotate(ctx, dt.timedelta(hours=24))

    # The rotating node: new key files in place, the old signing key gone, the old TLS
    # identity kept for its grace period, the rotation in its ledger.
    assert ctx.signing_key.public.raw == done.new_key != old_key
    assert SigningKey.from_pem(ctx.config.signing_key.read_bytes()).public.raw == done.new_key
    assert fingerprint(ctx.config.tls_cert.read_bytes()) == done.new_tls_fingerprint
    assert _keys.retired_path(ctx.config.tls_cert, old_key).read_bytes() == old_cert
    assert not list(ctx.config.signing_key.parent.glob("*.next"))
    assert not list(ctx.config.signing_key.parent.glob("signing.pem.*"))
    [(index, entry)] = _entries(ctx, "key_rotated")
    assert index == done.ledger_index
    assert done.peers == ("id-64",)
    opened = trust_pb2.KeyRotation.FromString(entry.key_rotated.rotation.rotation)
    assert (opened.old_signing_key, opened.new_signing_key) == (old_key, done.new_key)

    # The peer re-pins when the rotation envelope arrives, and records it.
    _round_trip(province, regency)
    assert _pinned(province.ctx(), "id-64-02") == (done.new_key, done.new_tls_fingerprint)
    [(_, followed)] = _entries(province.ctx(), "peer_key_rotated")
    assert followed.peer_key_rotated.rotation == entry.key_rotated.rotation

    # Later traffic is signed with the new key and accepted both ways.
    tracking_id = _refer(province, regency, 2)
    _round_trip(province, regency)
    assert status_of(province, tracking_id) == ("accepted", "id-64-02")
    assert rotation.generations(ctx)[-1].signing_key == done.new_key
    assert [g.retired_at is None for g in rotation.generations(ctx)] == [False, True]

    # Both ledgers still verify across the rotation, and still reconcile with each other.
    lines = {node.node_id: _export(node.ctx()) for node in (province, regency)}
    for node_lines in lines.values():
        verify_export(node_lines, trusted_vkey=None)
    result = reconcile_exports(
        lambda: lines["id-64"], lambda: lines["id-64-02"], slack=dt.timedelta(0)
    )
    assert result.ok, [str(f) for f in result.discrepancies]


def test_old_certificate_is_accepted_for_the_grace_period_only(
    pair: tuple[TestNode, TestNode],
) -> None:
    province, regency = pair
    old_fp = fingerprint(regency.ctx().config.tls_cert.read_bytes())
    done = rotation.rotate(regency.ctx(), dt.timedelta(hours=24))
    _round_trip(province, regency)

    [pin] = [p for p in links.pins(province.ctx()) if p.peer_id == "id-64-02"]
    assert pin.fingerprints == (done.new_tls_fingerprint, old_fp)

    clock = province.ctx().clock
    assert isinstance(clock, FixedClock)
    clock.advance(dt.timedelta(hours=24, seconds=1))
    [pin] = [p for p in links.pins(province.ctx()) if p.peer_id == "id-64-02"]
    assert pin.fingerprints == (done.new_tls_fingerprint,)


def test_the_rotating_node_presents_the_old_certificate_until_safe(
    pair: tuple[TestNode, TestNode],
) -> None:
    """As a server: the old certificate until the grace period ends. As a client: the old
    one until the parent acknowledged the rotation."""
    province, regency = pair
    ctx = regency.ctx()
    old_cert = ctx.config.tls_cert.read_bytes()
    rotation.rotate(ctx, dt.timedelta(hours=24))
    new_cert = ctx.config.tls_cert.read_bytes()

    server, client = rotation.presented_identities(ctx, "id-64")
    assert (server.cert_pem, client.cert_pem) == (old_cert, old_cert)

    assert hand_over(regency, province).error is None  # delivered and acknowledged
    server, client = rotation.presented_identities(ctx, "id-64")
    assert (server.cert_pem, client.cert_pem) == (old_cert, new_cert)

    clock = ctx.clock
    assert isinstance(clock, FixedClock)
    clock.advance(dt.timedelta(hours=25))
    server, client = rotation.presented_identities(ctx, "id-64")
    assert (server.cert_pem, client.cert_pem) == (new_cert, new_cert)


def test_a_peer_that_was_away_follows_fetched_rotations(pair: tuple[TestNode, TestNode]) -> None:
    """The province rotates twice while the regency is away, with a referral queued before
    each rotation. The regency fetches the rotations (as from the province's enrollment
    port), follows them from its pinned key, and then accepts the backlog, including the
    envelopes signed with the keys the province no longer has."""
    province, regency = pair
    first = _refer(province, regency, 2)
    rotation.rotate(province.ctx())
    second = _refer(province, regency, 3)
    done = rotation.rotate(province.ctx())

    chain = rotation.own_rotations_of(province.ctx())
    assert len(chain) == 2
    followed = rotation.follow_fetched(regency.ctx(), NodeId("id-64"), chain)
    assert len(followed) == 2
    assert _pinned(regency.ctx(), "id-64") == (done.new_key, done.new_tls_fingerprint)
    assert rotation.follow_fetched(regency.ctx(), NodeId("id-64"), chain) == []

    _round_trip(province, regency)
    assert status_of(province, first) == ("accepted", "id-64-02")
    assert status_of(province, second) == ("accepted", "id-64-02")
    # Both in-band rotations arrived: the old keys sign nothing more from now on.
    with regency.ctx().db.read() as session:
        rows = session.scalars(select(PeerKey).where(PeerKey.peer_id == "id-64")).all()
        assert [row.in_band_pending for row in rows] == [False, False]
    # Each rotation was recorded once, when it was fetched.
    assert len(_entries(regency.ctx(), "peer_key_rotated")) == 2


def test_a_rotation_from_a_key_never_pinned_is_refused(pair: tuple[TestNode, TestNode]) -> None:
    province, regency = pair
    stranger, new = SigningKey.generate(), SigningKey.generate()
    cert = generate_tls_identity(NodeId("id-64-02"), START).cert_pem
    forged = sign_rotation(
        stranger,
        new,
        node_id="id-64-02",
        new_tls_cert_pem=cert,
        rotated_at=START,
        old_tls_valid_until=START,
    )
    before = _pinned(province.ctx(), "id-64-02")
    with pytest.raises(SignatureError, match="starts from the key pinned"):
        rotation.follow_fetched(province.ctx(), NodeId("id-64-02"), [forged])
    # In band: an envelope signed with the pinned key, carrying someone else's rotation.
    with regency.ctx().db.read() as session:
        link_row = queries.get_link(session, "id-64")
        assert link_row is not None
        sequence = link_row.next_out_seq
    env = envelope("id-64-02", "id-64", sequence, key_rotation=forged)
    result = exchange.receive_batch(
        province.ctx(), NodeId("id-64-02"), [delivery(sealed(regency, env)).delivery]
    )
    assert isinstance(result.error, SignatureError)
    assert "signed with the key it rotates from" in str(result.error)
    assert _pinned(province.ctx(), "id-64-02") == before
    assert _entries(province.ctx(), "peer_key_rotated") == []


def test_a_rotation_of_another_node_is_refused(pair: tuple[TestNode, TestNode]) -> None:
    province, regency = pair
    old = SigningKey.from_pem(regency.ctx().config.signing_key.read_bytes())
    cert = generate_tls_identity(NodeId("id-64-03"), START).cert_pem
    other = sign_rotation(
        old,
        SigningKey.generate(),
        node_id="id-64-03",
        new_tls_cert_pem=cert,
        rotated_at=START,
        old_tls_valid_until=START,
    )
    with pytest.raises(ValidationError, match="id-64-03"):
        rotation.follow_fetched(province.ctx(), NodeId("id-64-02"), [other])


def test_bad_grace_and_unfinished_rotation(pair: tuple[TestNode, TestNode]) -> None:
    _, regency = pair
    ctx = regency.ctx()
    with pytest.raises(ValidationError, match="grace"):
        rotation.rotate(ctx, dt.timedelta(days=91))
    stray = _keys.next_path(ctx.config.signing_key)
    stray.write_bytes(SigningKey.generate().to_pem())
    with pytest.raises(StateError, match="did not finish"):
        rotation.rotate(ctx)
    assert _entries(ctx, "key_rotated") == []
    # Opening the node settles it: a rotation that never committed is undone.
    NodeContext.open(regency.config).close()
    assert not stray.exists()


def test_a_crash_after_commit_is_finished_at_the_next_start(
    pair: tuple[TestNode, TestNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, regency = pair
    ctx = regency.ctx()

    def crash(*args: object) -> bool:
        raise RuntimeError("power cut")

    monkeypatch.setattr(rotation, "settle_files", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        rotation.rotate(ctx)
    monkeypatch.undo()
    [(_, entry)] = _entries(ctx, "key_rotated")
    new_key = trust_pb2.KeyRotation.FromString(entry.key_rotated.rotation.rotation).new_signing_key
    assert SigningKey.from_pem(ctx.config.signing_key.read_bytes()).public.raw != new_key

    reopened = NodeContext.open(regency.config)
    try:
        assert reopened.signing_key.public.raw == new_key
        assert not list(ctx.config.signing_key.parent.glob("*.next"))
    finally:
        reopened.close()


def test_key_files_from_another_backup_are_refused(pair: tuple[TestNode, TestNode]) -> None:
    _, regency = pair
    ctx = regency.ctx()
    old_pem = ctx.config.signing_key.read_bytes()
    rotation.rotate(ctx)
    ctx.config.signing_key.write_bytes(old_pem)  # an operator restores last month's keys
    with pytest.raises(IntegrityError, match="different backups"):
        NodeContext.open(regency.config)


def test_a_signing_process_picks_up_a_rotation_made_by_another(
    pair: tuple[TestNode, TestNode],
) -> None:
    """`serve` keeps its key in memory; `keys rotate` runs in another process. The serving
    context signs nothing with the retired key once the rotation committed."""
    province, regency = pair
    serving = regency.ctx()
    operator = NodeContext.open(regency.config)
    try:
        operator.clock = FixedClock(START)
        done = rotation.rotate(operator)
    finally:
        operator.close()
    assert serving.signing_key.public.raw != done.new_key
    tracking_id = _refer(province, regency, 2)
    _round_trip(province, regency)  # the regency's receipt is signed by `serving`
    assert serving.signing_key.public.raw == done.new_key
    assert status_of(province, tracking_id) == ("accepted", "id-64-02")


def test_rotation_while_serving(nodes: NodeFactory) -> None:
    """Real processes over mTLS: the regency, then the province, rotates with `keys
    rotate` while both serve; referrals keep flowing and nothing restarts."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    province.start()
    regency.start()
    try:
        for n, rotating in enumerate((regency, province), start=1):
            out = rotating.cli("keys", "rotate", "--grace", "1h").stdout
            assert "keys rotated" in out
            tracking_id = _refer(province, regency, n)
            wait_until(
                lambda t=tracking_id: status_of(province, t) == ("accepted", "id-64-02"),
                timeout=pin_change_bound() + recovery_bound(),  # re-pinned, reconnected
                what=f"the referral after {rotating.node_id} rotated",
            )
        shown = regency.cli("keys", "show").stdout
        assert "current" in shown and "retired" in shown
        assert len(_entries(province.ctx(), "peer_key_rotated")) == 1
        assert len(_entries(regency.ctx(), "peer_key_rotated")) == 1
    finally:
        province.stop()
        regency.stop()


def test_a_child_offline_through_the_grace_period_catches_up(nodes: NodeFactory) -> None:
    """The province rotates with no grace period while the regency is switched off, so
    the province presents only its new certificate. When the regency returns, its TLS
    handshake fails; it fetches the province's rotations from the enrollment port,
    follows them from the key it pins, reconnects and takes the backlog."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    province.start()
    try:
        before = _refer(province, regency, 1)
        province.cli("keys", "rotate", "--grace", "0s")
        after = _refer(province, regency, 2)
        regency.start()
        for tracking_id in (before, after):
            wait_until(
                lambda t=tracking_id: status_of(province, t) == ("accepted", "id-64-02"),
                # A connect refused, the rotations fetched and followed, then a reconnect.
                timeout=reconnect_bound() + pin_change_bound() + recovery_bound(),
                what="the backlog after the regency followed the rotation",
            )
        [(_, entry)] = _entries(regency.ctx(), "peer_key_rotated")
        new_key = trust_pb2.KeyRotation.FromString(entry.peer_key_rotated.rotation.rotation)
        assert _pinned(regency.ctx(), "id-64")[0] == new_key.new_signing_key
        assert "peer.key_rotated" in regency.log_path.read_text()
    finally:
        regency.stop()
        province.stop()


def test_an_auditor_holding_the_old_card_verifies_over_the_wire(
    nodes: NodeFactory, tmp_path: Path
) -> None:
    """The Audit service serves the key that started the ledger and the chain of trust,
    so `audit verify --node` with a card from before the rotation still checks the whole
    ledger, across the KeyRotated entry."""
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    regency = nodes("id-64-02", "Kabupaten Kutai Kartanegara")
    link(province, regency)
    ombudsman = tmp_path / "ombudsman-ri"
    CallerIdentity.create("Ombudsman RI", ombudsman, START)
    list_auditor(province, "Ombudsman RI", ombudsman)
    old_card = province.card()
    _refer(province, regency, 1)
    _round_trip(province, regency)
    rotation.rotate(province.ctx())
    _refer(province, regency, 2)
    _round_trip(province, regency)
    province.start()
    try:
        client = AuditClient(province.address, old_card, CallerIdentity.load(ombudsman))
        with client:
            total, lines = client.export_lines(dt.datetime.now(dt.UTC))
            report = verify_export(lines, trusted_vkey=client.vkey)
        assert report.entries == total
        assert len(_entries(province.ctx(), "key_rotated")) == 1
    finally:
        province.stop()
