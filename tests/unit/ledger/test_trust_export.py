"""Exports of a node that rotated its keys (node.services.audit.export, node.ledger.verify):
the header names the key that started the ledger and the one in force, the verifier switches
at each KeyRotated entry, and old exports (one key, no chain) still verify."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json

import pytest

from node._proto.lapor.v1 import ledger_pb2
from node.complaints import ComplaintDraft
from node.crypto.rotation import sign_rotation
from node.crypto.signing import SigningKey
from node.crypto.tls import generate_tls_identity
from node.ledger.export import vkey_for
from node.ledger.findings import AuditFailure
from node.ledger.verify import AuditReport, verify_export
from node.services import audit, checkpoints, complaints, rotation
from node.services._ledger import record
from node.services.context import NodeContext
from tests.conftest import NodeFactory

DRAFT = ComplaintDraft(
    title="Jalan rusak",
    description="Lubang besar",
    classification="pengaduan",
    category="infrastruktur",
    region_code="64.02",
    channel="walk_in",
)


def _export(ctx: NodeContext) -> list[str]:
    out = io.StringIO()
    audit.export(ctx, out)
    return out.getvalue().splitlines(keepends=True)


def _header(lines: list[str]) -> dict[str, object]:
    header = json.loads(lines[0])
    assert isinstance(header, dict)
    return header


def _failure(lines: list[str], **kwargs: str) -> AuditFailure:
    with pytest.raises(AuditFailure) as raised:
        verify_export(lines, **kwargs)
    return raised.value


def _with_header(lines: list[str], **changes: object) -> list[str]:
    header = _header(lines)
    header.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del header[key]
    return [json.dumps(header) + "\n", *lines[1:]]


def test_a_rotated_nodes_export_verifies_with_either_key(nodes: NodeFactory) -> None:
    """Checkpoints before the rotation (and the one covering it) under the old key, after it
    under the new one; --vkey may be the first key or the one in force, not another."""
    ctx = nodes("id-64-02", "Kabupaten Kutai Kartanegara").ctx()
    complaints.submit(ctx, DRAFT)
    checkpoints.sign(ctx)
    first = checkpoints.verifier_key(ctx)
    rotated = rotation.rotate(ctx, dt.timedelta(0))
    complaints.submit(ctx, DRAFT)
    checkpoints.sign(ctx)
    current = checkpoints.verifier_key(ctx)
    assert current != first and rotated.ledger_index == 1

    lines = _export(ctx)
    header = _header(lines)
    assert (header["vkey"], header["current_vkey"]) == (first, current)
    report = verify_export(lines)
    assert (report.entries, report.checkpoints) == (3, 3)
    assert (report.vkey, report.current_vkey) == (first, current)
    assert verify_export(lines, trusted_vkey=first) == report
    assert verify_export(lines, trusted_vkey=current) == report
    stranger = vkey_for("id-64-02", SigningKey.generate().public.raw)
    assert _failure(lines, trusted_vkey=stranger).finding.kind == "key"


def test_a_header_that_hides_the_rotation_fails(nodes: NodeFactory) -> None:
    """The header must start from the first key and end at the key in force: naming the new
    key as the first, or the old one as current, is found."""
    ctx = nodes("id-64-02", "Kabupaten Kutai Kartanegara").ctx()
    first = checkpoints.verifier_key(ctx)
    complaints.submit(ctx, DRAFT)
    rotation.rotate(ctx, dt.timedelta(0))
    current = checkpoints.verifier_key(ctx)
    checkpoints.sign(ctx)
    lines = _export(ctx)
    stale = _failure(_with_header(lines, current_vkey=first))
    assert stale.finding.kind == "key" and "current_vkey" in stale.finding.detail
    header = _header(lines)
    swapped = _with_header(
        lines,
        vkey=current,
        signing_public_key=base64.b64encode(ctx.signing_key.public.raw).decode(),
    )
    found = _failure(swapped).finding
    assert (found.kind, found.index) == ("bad-signature", 1)  # the rotation is not from it
    assert header["vkey"] == first


def test_checkpoints_signed_with_the_old_key_after_the_rotation_fail(
    nodes: NodeFactory,
) -> None:
    """A node that recorded a rotation and went on signing with the old key: the first
    checkpoint beyond the one covering the rotation is named."""
    ctx = nodes("id-64-02", "Kabupaten Kutai Kartanegara").ctx()
    complaints.submit(ctx, DRAFT)
    new = SigningKey.generate()
    signed = sign_rotation(
        ctx.signing_key,
        new,
        node_id="id-64-02",
        new_tls_cert_pem=generate_tls_identity(ctx.node_id, ctx.clock.now()).cert_pem,
        rotated_at=ctx.clock.now(),
        old_tls_valid_until=ctx.clock.now(),
    )
    with ctx.db.write() as session:
        record(
            session, ctx, ledger_pb2.LedgerEntry(key_rotated=ledger_pb2.KeyRotated(rotation=signed))
        )
        checkpoints.sign_in(session, ctx)  # size 2: the old key, as it must
    complaints.submit(ctx, DRAFT)
    checkpoints.sign(ctx)  # size 3: still the old key, which was handed over
    found = _failure(_export(ctx)).finding
    assert (found.kind, found.checkpoint_size) == ("checkpoint-signature", 3)


def test_a_rotation_from_another_key_is_named(nodes: NodeFactory) -> None:
    """A KeyRotated entry whose old key is not the node's key in force is named."""
    ctx = nodes("id-64-02", "Kabupaten Kutai Kartanegara").ctx()
    complaints.submit(ctx, DRAFT)
    other = SigningKey.generate()
    signed = sign_rotation(
        other,
        SigningKey.generate(),
        node_id="id-64-02",
        new_tls_cert_pem=generate_tls_identity(ctx.node_id, ctx.clock.now()).cert_pem,
        rotated_at=ctx.clock.now(),
        old_tls_valid_until=ctx.clock.now(),
    )
    with ctx.db.write() as session:
        record(
            session, ctx, ledger_pb2.LedgerEntry(key_rotated=ledger_pb2.KeyRotated(rotation=signed))
        )
    checkpoints.sign(ctx)
    # The export reads the first key off the rotation; the auditor's header names the real one.
    lines = _with_header(
        _export(ctx),
        vkey=checkpoints.verifier_key(ctx),
        signing_public_key=base64.b64encode(ctx.signing_key.public.raw).decode(),
    )
    found = _failure(lines).finding
    assert (found.kind, found.index) == ("bad-signature", 1)
    assert "key in force" in found.detail


def test_an_export_without_the_new_header_fields_still_verifies(nodes: NodeFactory) -> None:
    """A version-1 export written before rotations (no current_vkey, no trust_chain)
    verifies as before; --trust asks for a new export."""
    ctx = nodes("id-64", "Provinsi Kalimantan Timur").ctx()
    complaints.submit(ctx, DRAFT)
    checkpoints.sign(ctx)
    lines = _with_header(_export(ctx), current_vkey=None, trust_chain=None)
    assert "current_vkey" not in _header(lines)
    report: AuditReport = verify_export(lines, trusted_vkey=checkpoints.verifier_key(ctx))
    assert report.current_vkey == report.vkey
    found = _failure(lines, trust=checkpoints.verifier_key(ctx)).finding
    assert found.kind == "trust-chain" and "older lapor-node" in found.detail
