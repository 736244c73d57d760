"""A signed discontinuity in a ledger (node.ledger.discontinuity, ADR 0023): the offline
verifier passes it and reports it; the old key signing the history after it, a statement
that does not restart where it stands, a last checkpoint the old key never signed, and a
key change without any statement all fail."""

from __future__ import annotations

import datetime as dt

import pytest

from node._proto.lapor.v1 import ledger_pb2, trust_pb2
from node.crypto.rotation import sign_rotation
from node.crypto.signing import SigningKey
from node.crypto.tls import generate_tls_identity
from node.ids import NodeId
from node.ledger import verify
from node.ledger.checkpoint import Checkpoint
from node.ledger.export import ExportHeader, export_lines, vkey_for
from node.ledger.findings import AuditFailure
from node.ledger.merkle import MemoryTree, leaf_hash
from node.ledger.note import sign_checkpoint

ME = "id-64-02"
ORIGIN = f"lapor-node/{ME}"
KEY, NEW_KEY, STRANGER = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
NOW = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
RESTART = 4
"""The restored ledger's size: the HistoryDiscontinued entry's index."""


def _plain(n: int) -> bytes:
    entry = ledger_pb2.LedgerEntry(
        node_id=ME, content_erased=ledger_pb2.ContentErased(tracking_id=f"t{n}")
    )
    return entry.SerializeToString()


def _note(entries: list[bytes], size: int, key: SigningKey) -> bytes:
    root = MemoryTree(leaf_hash(e) for e in entries).root(size)
    return sign_checkpoint(Checkpoint(ORIGIN, size, root), ORIGIN, key.ed25519)


def _statement(kept: list[bytes], **changes: object) -> bytes:
    lost = [*kept, *(_plain(100 + n) for n in range(3))]  # the history that was lost
    stated = trust_pb2.Discontinuity(
        fenced_checkpoint=_note(lost, len(lost), KEY),
        fenced_size=len(lost),
        fenced_root=MemoryTree(leaf_hash(e) for e in lost).root(len(lost)),
        restart_size=len(kept),
        restart_root=MemoryTree(leaf_hash(e) for e in kept).root(len(kept)),
        reason="disk lost",
    )
    for name, value in changes.items():
        setattr(stated, name, value)
    stated.declared_at.FromDatetime(NOW)
    tls = generate_tls_identity(NodeId(ME), NOW).cert_pem
    rotation = sign_rotation(
        KEY,
        NEW_KEY,
        node_id=ME,
        new_tls_cert_pem=tls,
        rotated_at=NOW,
        old_tls_valid_until=NOW,
        discontinuity=stated,
    )
    entry = ledger_pb2.LedgerEntry(
        node_id=ME, history_discontinued=ledger_pb2.HistoryDiscontinued(rotation=rotation)
    )
    return entry.SerializeToString()


def _export(
    *,
    statement: dict[str, object] | None = None,
    signer_after: SigningKey = NEW_KEY,
    with_statement: bool = True,
) -> list[str]:
    kept = [_plain(n) for n in range(RESTART)]
    gap = _statement(kept, **(statement or {})) if with_statement else _plain(RESTART)
    entries = [*kept, gap, _plain(RESTART + 1)]
    cps = [(2, _note(entries, 2, KEY)), (RESTART, _note(entries, RESTART, KEY))]
    cps += [(s, _note(entries, s, signer_after)) for s in (RESTART + 1, RESTART + 2)]
    header = ExportHeader(
        node_id=ME,
        vkey=vkey_for(ME, KEY.public.raw),
        signing_public_key=KEY.public.raw,
        size=len(entries),
        exported_at=NOW.isoformat(),
        current_vkey=vkey_for(ME, NEW_KEY.public.raw),
    )
    rows = [(i, e, leaf_hash(e)) for i, e in enumerate(entries)]
    return list(export_lines(header, rows, cps))


@pytest.mark.parametrize("fast", [True, False], ids=["fast path", "general path"])
def test_an_explained_gap_verifies_and_is_reported(fast: bool) -> None:
    """The statement at its own index, the new key after it: verified, reported."""
    report = verify._Verifier(iter(_export()), None, None, fast=fast).run()
    assert report.current_vkey == vkey_for(ME, NEW_KEY.public.raw)
    [(index, gap)] = report.discontinuities
    assert (index, gap.restart_size, gap.fenced_size, gap.reason) == (
        RESTART,
        RESTART,
        RESTART + 3,
        "disk lost",
    )
    assert gap.old_key == KEY.public.raw and gap.new_key == NEW_KEY.public.raw


@pytest.mark.parametrize(
    ("kwargs", "kind", "where"),
    [
        pytest.param(
            {"signer_after": KEY},
            "checkpoint-signature",
            {"checkpoint_size": RESTART + 1},
            id="old key signs after the gap",
        ),
        pytest.param(
            {"statement": {"restart_root": b"\x01" * 32}},
            "malformed-entry",
            {"index": RESTART},
            id="restarts with another root",
        ),
        pytest.param(
            {"statement": {"restart_size": RESTART - 1}},
            "malformed-entry",
            {"index": RESTART},
            id="restarts at another size",
        ),
        pytest.param(
            {"statement": {"fenced_checkpoint": _note([_plain(0)], 1, STRANGER)}},
            "bad-signature",
            {"index": RESTART},
            id="last checkpoint not the old key's",
        ),
        pytest.param(
            {"statement": {"reason": " "}}, "malformed-entry", {"index": RESTART}, id="no reason"
        ),
        pytest.param(
            {"with_statement": False},
            "checkpoint-signature",
            {"checkpoint_size": RESTART + 1},
            id="key change without a statement",
        ),
    ],
)
def test_an_unexplained_or_broken_gap_fails(
    kwargs: dict[str, object], kind: str, where: dict[str, int]
) -> None:
    """Each way a gap is not explained is its own finding, at the entry or checkpoint."""
    with pytest.raises(AuditFailure) as caught:
        verify.verify_export(_export(**kwargs))  # type: ignore[arg-type]
    finding = caught.value.finding
    assert finding.kind == kind, finding
    for name, value in where.items():
        assert getattr(finding, name) == value, finding
