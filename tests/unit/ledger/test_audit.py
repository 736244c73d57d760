"""The audit export format and its offline verification (node.ledger.export, .verify,
.proofs; node.ledger.audit re-exports them), on synthetic ledgers built in memory."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.crypto.signing import SigningKey
from node.envelopes import seal
from node.errors import ProofError, SignatureError
from node.ids import new_message_id
from node.ledger import audit
from node.ledger.checkpoint import Checkpoint
from node.ledger.export import ExportHeader, export_lines, vkey_for
from node.ledger.findings import AuditFailure
from node.ledger.merkle import MemoryTree, leaf_hash
from node.ledger.note import sign_checkpoint
from node.ledger.proofs import check_proof_document, proof_document
from node.ledger.verify import verify_export

ME, PEER = "id-64", "id-64-02"
KEY, PEER_KEY = SigningKey.generate(), SigningKey.generate()
VKEY = vkey_for(ME, KEY.public.raw)


def _envelope(sender: str, recipient: str, key: SigningKey) -> envelope_pb2.SignedEnvelope:
    env = envelope_pb2.Envelope(
        message_id=new_message_id(),
        sender=sender,
        recipient=recipient,
        sequence=1,
        receipt=envelope_pb2.Receipt(tracking_id="t"),
    )
    env.sent_at.GetCurrentTime()
    return seal(env, key)


def _entries(node_id: str = ME) -> list[bytes]:
    link = ledger_pb2.LedgerEntry(
        node_id=node_id,
        link_established=ledger_pb2.LinkEstablished(
            peer_id=PEER, role=ledger_pb2.PEER_ROLE_CHILD, peer_signing_key=PEER_KEY.public.raw
        ),
    )
    sent = ledger_pb2.LedgerEntry(
        node_id=node_id, referral_sent=ledger_pb2.ReferralSent(envelope=_envelope(ME, PEER, KEY))
    )
    got = ledger_pb2.LedgerEntry(
        node_id=node_id,
        receipt_received=ledger_pb2.ReceiptReceived(envelope=_envelope(PEER, ME, PEER_KEY)),
    )
    plain = [
        ledger_pb2.LedgerEntry(
            node_id=node_id, complaint_registered=ledger_pb2.ComplaintRegistered()
        )
        for _ in range(4)
    ]
    return [e.SerializeToString() for e in (link, *plain[:2], sent, got, *plain[2:])]


def _export(
    entries: list[bytes] | None = None, cp_sizes: tuple[int, ...] = (0, 3, 7), **header: Any
) -> list[str]:
    entries = _entries() if entries is None else entries
    tree = MemoryTree(leaf_hash(e) for e in entries)
    cps = [
        (
            s,
            sign_checkpoint(
                Checkpoint(f"lapor-node/{ME}", s, tree.root(s)), f"lapor-node/{ME}", KEY.ed25519
            ),
        )
        for s in cp_sizes
    ]
    fields: dict[str, Any] = {
        "node_id": ME,
        "vkey": VKEY,
        "signing_public_key": KEY.public.raw,
        "size": len(entries),
        "exported_at": "2026-12-01T00:00:00+00:00",
    }
    fields.update(header)
    rows = [(i, e, leaf_hash(e)) for i, e in enumerate(entries)]
    return list(export_lines(ExportHeader(**fields), rows, cps))


def _kind(lines: list[str], **kwargs: Any) -> tuple[str, int | None]:
    with pytest.raises(AuditFailure) as info:
        verify_export(lines, **kwargs)
    return info.value.finding.kind, info.value.finding.index


def _edit(lines: list[str], n: int, **changes: Any) -> list[str]:
    obj = json.loads(lines[n])
    obj.update(changes)
    return [*lines[:n], json.dumps(obj) + "\n", *lines[n + 1 :]]


def test_an_honest_export_verifies_and_reports_what_it_covered() -> None:
    """Entries, envelopes and three checkpoints verify against the trusted key."""
    seen: list[int] = []
    entries = _entries()
    report = verify_export(_export(entries), trusted_vkey=VKEY, progress=seen.append)
    assert (report.entries, report.checkpoints, report.last_checkpoint_size) == (7, 3, 7)
    assert report.root == MemoryTree(leaf_hash(e) for e in entries).root()
    assert seen[-1] == 7


def test_checkpoints_sit_right_after_the_entries_they_cover() -> None:
    """A checkpoint of size s follows entry s - 1; size 0 follows the header."""
    kinds = [
        (o["type"], o.get("index", o.get("size") if o["type"] == "checkpoint" else None))
        for o in map(json.loads, _export())
    ]
    assert kinds[:3] == [("header", None), ("checkpoint", 0), ("entry", 0)]
    assert kinds[kinds.index(("entry", 2)) + 1] == ("checkpoint", 3)
    assert kinds[-2:] == [("checkpoint", 7), ("end", None)]


def test_a_checkpoint_beyond_the_entries_means_a_truncated_tail() -> None:
    """A checkpoint of size 7 over 5 exported entries names entry 5 as missing."""
    entries = _entries()
    lines = _export(entries)
    cut = [x for x in lines if not any(f'"index":{i},' in x for i in (5, 6))]
    cut = _edit(_edit(cut, 0, size=5), len(cut) - 1, entries=5)
    assert _kind(cut) == ("missing", 5)


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        pytest.param({"version": 2}, "format", id="unknown-version"),
        pytest.param({"origin": "lapor-node/id"}, "key", id="origin-not-the-node"),
        pytest.param(
            {"signing_public_key": base64.b64encode(PEER_KEY.public.raw).decode()},
            "key",
            id="vkey-not-the-signing-key",
        ),
        pytest.param({"node_id": "Bad Id"}, "format", id="malformed-node-id"),
    ],
)
def test_a_bad_header_is_refused(changes: dict[str, Any], kind: str) -> None:
    """The header must name a valid node whose vkey carries the exported signing key."""
    assert _kind(_edit(_export(), 0, **changes)) == (kind, None)


def test_a_trusted_vkey_that_differs_is_a_key_failure() -> None:
    """Pinning another node's key fails at the header, before any entry."""
    assert _kind(_export(), trusted_vkey=vkey_for(ME, PEER_KEY.public.raw)) == ("key", None)


def _entry_line(lines: list[str], index: int) -> int:
    return next(n for n, x in enumerate(lines) if f'"index":{index},' in x)


def _replace_entry(lines: list[str], index: int, data: bytes) -> list[str]:
    return _edit(
        lines,
        _entry_line(lines, index),
        entry=base64.b64encode(data).decode(),
        leaf=base64.b64encode(leaf_hash(data)).decode(),
    )


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        pytest.param(b"\xff\xff\xff", "malformed-entry", id="not-a-ledger-entry"),
        pytest.param(
            ledger_pb2.LedgerEntry(
                node_id="id", complaint_registered=ledger_pb2.ComplaintRegistered()
            ).SerializeToString(),
            "foreign-entry",
            id="other-node",
        ),
        pytest.param(
            ledger_pb2.LedgerEntry(node_id=ME).SerializeToString(), "malformed-entry", id="no-kind"
        ),
        pytest.param(
            ledger_pb2.LedgerEntry(
                node_id=ME,
                receipt_received=ledger_pb2.ReceiptReceived(
                    envelope=_envelope("id-64-08", ME, PEER_KEY)
                ),
            ).SerializeToString(),
            "unknown-peer",
            id="envelope-from-unlinked-peer",
        ),
        pytest.param(
            ledger_pb2.LedgerEntry(
                node_id=ME,
                receipt_received=ledger_pb2.ReceiptReceived(envelope=_envelope(PEER, ME, KEY)),
            ).SerializeToString(),
            "bad-signature",
            id="received-signed-by-wrong-key",
        ),
        pytest.param(
            ledger_pb2.LedgerEntry(
                node_id=ME,
                referral_sent=ledger_pb2.ReferralSent(envelope=_envelope(ME, "id-64-08", KEY)),
            ).SerializeToString(),
            "unknown-peer",
            id="sent-to-unlinked-peer",
        ),
    ],
)
def test_entry_invariants_are_checked(data: bytes, kind: str) -> None:
    """An entry rehashed to fit its leaf still fails its own invariants at its index."""
    assert _kind(_replace_entry(_export(), 2, data)) == (kind, 2)


def test_an_entry_without_its_committed_leaf_is_forged() -> None:
    """An entry with no leaf stored at append time was not appended by the node."""
    lines = _export()
    assert _kind(_edit(lines, _entry_line(lines, 4), leaf=None)) == ("forged", 4)


def test_a_rehashed_unsigned_entry_is_caught_by_the_next_checkpoint() -> None:
    """Changing entry 5 and its leaf is found by the checkpoint at 7, naming entries 3..6."""
    lines = _replace_entry(
        _export(),
        5,
        ledger_pb2.LedgerEntry(
            node_id=ME,
            link_established=ledger_pb2.LinkEstablished(
                peer_id="id-64-08", peer_signing_key=KEY.public.raw
            ),
        ).SerializeToString(),
    )
    assert _kind(lines) == ("checkpoint-mismatch", 3)


@pytest.mark.parametrize(
    ("mutate", "kind"),
    [
        pytest.param(lambda ls: ls[:-1], "missing", id="no-end-line"),
        pytest.param(lambda ls: [*ls, ls[-1]], "format", id="content-after-end"),
        pytest.param(
            lambda ls: _edit(ls, len(ls) - 1, checkpoints=9), "format", id="end-miscounts"
        ),
        pytest.param(lambda ls: ["not json\n", *ls], "format", id="not-json"),
        pytest.param(
            lambda ls: [ls[0], '{"type":"mystery"}\n', *ls[1:]], "format", id="unknown-line-type"
        ),
    ],
)
def test_a_malformed_file_is_refused(mutate: Any, kind: str) -> None:
    """The file's framing (header, types, end line) is part of what is verified."""
    assert _kind(mutate(_export()))[0] == kind


def test_a_checkpoint_placed_late_or_repeated_is_refused() -> None:
    """Checkpoints must come in place and in increasing size."""
    lines = _export()
    cp3 = next(n for n, x in enumerate(lines) if '"type":"checkpoint","size":3,' in x)
    late = [*lines[:cp3], *lines[cp3 + 1 : cp3 + 3], lines[cp3], *lines[cp3 + 3 :]]
    assert _kind(late)[0] == "format"
    cp7 = next(n for n, x in enumerate(lines) if '"type":"checkpoint","size":7,' in x)
    assert _kind([*lines[: cp7 + 1], lines[cp7], *lines[cp7 + 1 :]])[0] == "checkpoint-order"


def test_a_proof_document_checks_out_and_a_bent_one_does_not() -> None:
    """The inclusion proof JSON verifies under the vkey; a changed path or key fails."""
    entries = _entries()
    tree = MemoryTree(leaf_hash(e) for e in entries)
    note = sign_checkpoint(
        Checkpoint(f"lapor-node/{ME}", 7, tree.root()), f"lapor-node/{ME}", KEY.ed25519
    )
    doc = proof_document(
        origin=f"lapor-node/{ME}",
        index=3,
        size=7,
        entry=entries[3],
        path=tree.inclusion_proof(3),
        root=tree.root(),
        note=note,
    )
    assert check_proof_document(json.loads(json.dumps(doc)), VKEY).size == 7
    bent = {**doc, "audit_path": [base64.b64encode(bytes(32)).decode(), *doc["audit_path"][1:]]}
    with pytest.raises(ProofError):
        check_proof_document(bent, VKEY)
    with pytest.raises(SignatureError):
        check_proof_document(doc, vkey_for(ME, PEER_KEY.public.raw))


def test_the_former_module_re_exports_the_audit() -> None:
    """node.ledger.audit still offers every name it had, as the objects of the new modules."""
    assert audit.verify_export is verify_export
    assert audit.export_lines is export_lines
    assert audit.AuditFailure is AuditFailure
    assert audit.check_proof_document is check_proof_document
    assert set(audit.__all__) >= {"AuditReport", "Finding", "ExportHeader", "vkey_for"}
    assert all(hasattr(audit, name) for name in audit.__all__)


def test_a_line_that_is_not_utf8_is_a_format_finding() -> None:
    """Bytes lines are decoded by the verifier: one that is not UTF-8 names its line."""
    lines = [x.encode() for x in _export()]
    lines[4] = lines[4][:20] + b"\xff" + lines[4][20:]
    with pytest.raises(AuditFailure) as info:
        verify_export(lines)
    assert (info.value.finding.kind, info.value.finding.detail) == ("format", "line 5 is not UTF-8")
