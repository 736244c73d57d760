"""Tamper tests: a real node's ledger, changed behind its back, fails `audit verify` at the
right entry with the right kind; an untouched one verifies and holds no personal data."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.complaints import ComplaintDraft
from node.crypto.keyfiles import write_private
from node.crypto.signing import SigningKey
from node.envelopes import seal
from node.errors import SignatureError
from node.ids import new_message_id
from node.ledger.findings import AuditFailure
from node.ledger.merkle import leaf_hash
from node.ledger.note import sign_note, split_note
from node.ledger.proofs import check_proof_document
from node.ledger.verify import verify_export
from node.services import audit, checkpoints, complaints
from node.services.context import NodeContext
from tests.conftest import NodeFactory
from tests.support.cli import run_cli
from tests.support.nodes import TestNode, hand_over, link

REPORTER = {
    "reporter_name": "Siti Aminah Rahmawati",
    "reporter_contact": "081355501234",
    "reporter_id_number": "6402011203850001",
}


def _draft(n: int) -> ComplaintDraft:
    return ComplaintDraft(
        title=f"Jalan poros rusak {n}",
        description="Lubang besar di jalan poros Tenggarong",
        classification="pengaduan",
        category="infrastruktur",
        region_code="64.02",
        channel="walk_in",
        **REPORTER,
    )


def _deliver(sender: TestNode, receiver: TestNode) -> None:
    """Hand the sender's pending envelopes to the receiver, as the stream would."""
    assert hand_over(sender, receiver).error is None


@dataclass
class Federation:
    """National (the audited node) and its child province, with this ledger at national:
    0 link, 1-2 complaints registered | cp 3 (signed to ride on referral 1) |
    3 referral sent | cp 4 | 4 referral sent,
    5-6 receipts received | cp 7 | 7 complaint registered | cp 8."""

    national: TestNode
    province: TestNode

    @property
    def ctx(self) -> NodeContext:
        return self.national.ctx()


@pytest.fixture
def fed(nodes: NodeFactory) -> Federation:
    national = nodes("id", "Nasional")
    province = nodes("id-64", "Provinsi Kalimantan Timur")
    link(national, province)
    first, second = (complaints.submit(national.ctx(), _draft(n)) for n in (1, 2))
    complaints.refer(national.ctx(), first, "id-64")
    checkpoints.sign(national.ctx())
    complaints.refer(national.ctx(), second, "id-64")
    _deliver(national, province)
    _deliver(province, national)
    checkpoints.sign(national.ctx())
    complaints.submit(national.ctx(), _draft(3))
    checkpoints.sign(national.ctx())
    return Federation(national, province)


def _export(ctx: NodeContext) -> list[str]:
    out = io.StringIO()
    audit.export(ctx, out)
    return out.getvalue().splitlines(keepends=True)


def _failure(lines: list[str], **kwargs: Any) -> AuditFailure:
    with pytest.raises(AuditFailure) as info:
        verify_export(lines, **kwargs)
    return info.value


def _sql(ctx: NodeContext, *statements: str, **params: Any) -> None:
    """Run statements with the insert-only triggers bypassed, as an intruder with DB access."""
    with ctx.db.write() as session:
        if ctx.db.is_sqlite:
            for table in ("ledger_entries", "checkpoints"):
                for verb in ("update", "delete"):
                    session.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{verb}"))
        else:
            for table in ("ledger_entries", "checkpoints", "ledger_nodes"):
                session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER ALL"))
        for statement in statements:
            session.execute(text(statement), params)


def _entry_bytes(ctx: NodeContext, index: int) -> bytes:
    with ctx.db.read() as session:
        return bytes(
            session.execute(
                text("SELECT entry FROM ledger_entries WHERE idx = :i"), {"i": index}
            ).scalar_one()
        )


def test_an_untouched_export_verifies_against_the_trusted_key(fed: Federation) -> None:
    """The honest ledger verifies: 8 entries, 3 checkpoints, the last at size 8."""
    report = verify_export(_export(fed.ctx), trusted_vkey=checkpoints.verifier_key(fed.ctx))
    assert (report.entries, report.checkpoints, report.last_checkpoint_size) == (8, 4, 8)
    assert verify_export(_export(fed.province.ctx())).entries == 3


def test_the_export_holds_no_personal_data(fed: Federation) -> None:
    """Neither the export text nor any entry's bytes contain a reporter's name, phone or NIK."""
    lines = _export(fed.ctx)
    blobs = ["".join(lines).encode()]
    blobs += [base64.b64decode(json.loads(x)["entry"]) for x in lines if '"entry"' in x]
    for value in REPORTER.values():
        for blob in blobs:
            assert value.encode() not in blob
            assert value.split()[0].encode() not in blob


def _change_entry(fed: Federation) -> None:
    data = bytearray(_entry_bytes(fed.ctx, 2))
    data[data.index(b"infrastruktur")] ^= 0x20  # 'i' -> 'I'
    _sql(fed.ctx, "UPDATE ledger_entries SET entry = :e WHERE idx = 2", e=bytes(data))


def _swap_entries(fed: Federation) -> None:
    one, two = _entry_bytes(fed.ctx, 1), _entry_bytes(fed.ctx, 2)
    _sql(
        fed.ctx,
        "UPDATE ledger_entries SET entry = :a WHERE idx = 2",
        "UPDATE ledger_entries SET entry = :b WHERE idx = 1",
        a=one,
        b=two,
    )


def _truncate_tail(fed: Federation) -> None:
    _sql(fed.ctx, "DELETE FROM ledger_entries WHERE idx >= 6", "UPDATE ledger_head SET size = 6")


def _append_forged_row(fed: Federation) -> None:
    forged = ledger_pb2.LedgerEntry(
        node_id="id", complaint_registered=ledger_pb2.ComplaintRegistered()
    ).SerializeToString()
    _sql(
        fed.ctx,
        "INSERT INTO ledger_entries (idx, entry, leaf_hash, recorded_at) "
        "VALUES (8, :e, :h, CURRENT_TIMESTAMP)",
        "UPDATE ledger_head SET size = 9",
        e=forged,
        h=leaf_hash(forged),
    )


def _replace_checkpoint_signature(fed: Federation) -> None:
    _sql(
        fed.ctx,
        "UPDATE checkpoints SET note = :n WHERE size = 4",
        n=_bad_signature(_note_of(fed, 4)),
    )


def _note_of(fed: Federation, size: int) -> bytes:
    with fed.ctx.db.read() as session:
        return bytes(
            session.execute(
                text("SELECT note FROM checkpoints WHERE size = :s"), {"s": size}
            ).scalar_one()
        )


def _bad_signature(note: bytes) -> bytes:
    """The same note with the same key name and key ID, and a signature that is not its own."""
    body, (sig,) = split_note(note)
    blob = sig.key_id + bytes(reversed(sig.signature))
    return body + f"\n\u2014 {sig.name} {base64.b64encode(blob).decode()}\n".encode()


DB_CASES: list[Any] = [
    pytest.param(_change_entry, "altered", 2, id="entry-bytes-changed"),
    pytest.param(
        lambda f: _sql(f.ctx, "DELETE FROM ledger_entries WHERE idx = 4"),
        "missing",
        4,
        id="entry-deleted",
    ),
    pytest.param(_swap_entries, "reordered", 1, id="two-entries-swapped"),
    pytest.param(_truncate_tail, "missing", 6, id="tail-truncated-before-checkpoint"),
    pytest.param(_append_forged_row, "forged", 8, id="forged-entry-appended"),
    pytest.param(
        _replace_checkpoint_signature,
        "checkpoint-signature",
        None,
        id="checkpoint-signature-replaced",
    ),
]


@pytest.mark.parametrize(("tamper", "kind", "index"), DB_CASES)
def test_tampering_with_the_database_is_named(
    fed: Federation, tamper: Callable[[Federation], None], kind: str, index: int | None
) -> None:
    """Each change made in the database past its triggers fails verify at its index and kind."""
    tamper(fed)
    found = _failure(_export(fed.ctx)).finding
    assert (found.kind, found.index) == (kind, index), str(found)
    if index is None:
        assert found.checkpoint_size == 4


def test_a_substituted_signing_key_is_caught(fed: Federation) -> None:
    """A new key in place of the node's: signing refuses, and verify names the first thing
    the old key signed (here the checkpoint at size 3, which rode on the first referral),
    or the key itself when the auditor pins the real one."""
    trusted = checkpoints.verifier_key(fed.ctx)
    config = fed.ctx.config.signing_key
    config.unlink()
    write_private(config, SigningKey.generate().to_pem())
    ctx = NodeContext.open(fed.national.config)
    try:
        complaints.submit(ctx, _draft(4))
        with pytest.raises(SignatureError):
            checkpoints.sign(ctx)
        lines = _export(ctx)
    finally:
        ctx.close()
    found = _failure(lines).finding
    assert (found.kind, found.checkpoint_size) == ("checkpoint-signature", 3), str(found)
    assert _failure(lines, trusted_vkey=trusted).finding.kind == "key"


# --- tampering with the export file ------------------------------------------------------


def _entries(lines: list[str]) -> dict[int, int]:
    """Entry index -> line number."""
    return {json.loads(x)["index"]: n for n, x in enumerate(lines) if '"type":"entry"' in x}


def _file_swap(lines: list[str]) -> list[str]:
    at = _entries(lines)
    lines[at[5]], lines[at[6]] = lines[at[6]], lines[at[5]]
    return lines


def _file_forge(lines: list[str]) -> list[str]:
    """Insert, before entry 5, a receipt signed by an intruder's key in the province's name,
    renumbering what follows and giving it a correct leaf hash."""
    intruder = SigningKey.generate()
    env = envelope_pb2.Envelope(
        message_id=new_message_id(),
        sender="id-64",
        recipient="id",
        sequence=9,
        receipt=envelope_pb2.Receipt(tracking_id="x"),
    )
    env.sent_at.GetCurrentTime()
    entry = ledger_pb2.LedgerEntry(
        node_id="id", receipt_received=ledger_pb2.ReceiptReceived(envelope=seal(env, intruder))
    ).SerializeToString()
    at = _entries(lines)
    out = []
    for n, line in enumerate(lines):
        obj = json.loads(line)
        if n == at[5]:
            out.append(
                json.dumps(
                    {
                        "type": "entry",
                        "index": 5,
                        "entry": base64.b64encode(entry).decode(),
                        "leaf": base64.b64encode(leaf_hash(entry)).decode(),
                    }
                )
                + "\n"
            )
        if obj["type"] == "entry" and obj["index"] >= 5:
            obj["index"] += 1
        if obj["type"] == "header":
            obj["size"] += 1
        out.append(json.dumps(obj) + "\n")
    return out


def _file_change_and_rehash(lines: list[str]) -> list[str]:
    """Change the referral in entry 3 and recompute its leaf: the signature still catches it."""
    at = _entries(lines)
    obj = json.loads(lines[at[3]])
    data = bytearray(base64.b64decode(obj["entry"]))
    data[data.index(b"infrastruktur")] ^= 0x20
    obj["entry"] = base64.b64encode(bytes(data)).decode()
    obj["leaf"] = base64.b64encode(leaf_hash(bytes(data))).decode()
    lines[at[3]] = json.dumps(obj) + "\n"
    return lines


def _file_replace_key(lines: list[str]) -> list[str]:
    """Swap in an intruder's key and re-sign every checkpoint with it."""
    from node.ledger.note import format_vkey

    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes_raw()
    out = []
    for line in lines:
        obj = json.loads(line)
        if obj["type"] == "header":
            obj["vkey"] = format_vkey(obj["origin"], raw)
            obj["signing_public_key"] = base64.b64encode(raw).decode()
        if obj["type"] == "checkpoint":
            body, _ = split_note(obj["note"].encode())
            obj["note"] = sign_note(body, "lapor-node/id", key).decode()
        out.append(json.dumps(obj) + "\n")
    return out


def _file_checkpoint_signature(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        obj = json.loads(line)
        if obj["type"] == "checkpoint" and obj["size"] == 7:
            obj["note"] = _bad_signature(obj["note"].encode()).decode()
        out.append(json.dumps(obj) + "\n")
    return out


FILE_CASES: list[Any] = [
    pytest.param(_file_swap, "reordered", 5, id="lines-swapped"),
    pytest.param(
        lambda ls: [x for x in ls if '"index":4,' not in x], "missing", 4, id="line-deleted"
    ),
    pytest.param(_file_forge, "bad-signature", 5, id="forged-receipt-inserted"),
    pytest.param(_file_change_and_rehash, "bad-signature", 3, id="signed-entry-changed"),
    pytest.param(_file_replace_key, "bad-signature", 3, id="signing-key-substituted"),
    pytest.param(
        _file_checkpoint_signature, "checkpoint-signature", None, id="checkpoint-signature-replaced"
    ),
    pytest.param(lambda ls: ls[:-3], "missing", 7, id="file-cut-short"),
]


@pytest.mark.parametrize("db_kind", ["sqlite"])
@pytest.mark.parametrize(("tamper", "kind", "index"), FILE_CASES)
def test_tampering_with_the_export_is_named(
    fed: Federation, tamper: Callable[[list[str]], list[str]], kind: str, index: int | None
) -> None:
    """Each edit of the export file fails verify at its index and kind."""
    found = _failure(tamper(_export(fed.ctx))).finding
    assert (found.kind, found.index) == (kind, index), str(found)


@pytest.mark.parametrize("db_kind", ["sqlite"])
def test_cli_verify_exit_codes_and_proof(fed: Federation, tmp_path: Path) -> None:
    """verify exits 0 on the export and 1 naming the entry once altered, or with a format
    finding for a line that is not UTF-8; proof checks out."""
    out = tmp_path / "audit.jsonl"
    fed.national.cli("audit", "export", "--out", str(out))
    vkey = json.loads(fed.national.cli("audit", "checkpoint", "--json").stdout)["vkey"]
    verify = ["audit", "verify", str(out)]
    ok = run_cli([*verify, "--vkey", vkey, "--json"])
    assert ok.returncode == 0 and json.loads(ok.stdout)["entries"] == 8
    out.write_text("".join(_file_change_and_rehash(out.read_text().splitlines(True))))
    bad = run_cli(verify)
    assert bad.returncode == 1 and "entry 3: bad-signature" in bad.stderr
    out.write_bytes(out.read_bytes().replace(b'"type":"header"', b'"type":"\xffheader"'))
    garbled = run_cli([*verify, "--json"])
    assert garbled.returncode == 1
    assert json.loads(garbled.stdout)["detail"] == "line 1 is not UTF-8"
    doc = json.loads(fed.national.cli("audit", "proof", "--index", "5", "--json").stdout)
    assert check_proof_document(doc, vkey).size == 8
