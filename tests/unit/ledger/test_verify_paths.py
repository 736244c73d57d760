"""The verifier's two parse paths agree (node.ledger.verify): the fast path that slices an
entry line as `export_lines` writes it, and the general path (json.loads per line) that
every line takes with `fast=False`. Over honest exports and exports tampered at random
(characters flipped or inserted; lines dropped, duplicated and reordered; fields changed;
entries re-signed or re-hashed; invalid UTF-8), both give the same report, or the same
finding (kind, detail, entry index, checkpoint size), and report the same progress.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2
from node.crypto.rotation import sign_rotation
from node.crypto.signing import SigningKey
from node.crypto.tls import generate_tls_identity
from node.envelopes import seal
from node.ids import NodeId
from node.ledger import verify
from node.ledger._fields import line
from node.ledger.checkpoint import Checkpoint
from node.ledger.export import ExportHeader, export_lines, vkey_for
from node.ledger.findings import AuditFailure, Finding
from node.ledger.merkle import MemoryTree, leaf_hash
from node.ledger.note import sign_checkpoint

ME, PEER = "id-64", "id-64-02"
KEY, NEW_KEY, PEER_KEY = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
ROTATED_AT = 6
"""The index of the KeyRotated entry: KEY signs up to it, NEW_KEY after it."""


def _envelope(sender: str, recipient: str, key: SigningKey, n: int) -> envelope_pb2.SignedEnvelope:
    env = envelope_pb2.Envelope(
        message_id=f"0193a000-0000-7000-8000-{n:012d}",
        sender=sender,
        recipient=recipient,
        sequence=n,
        receipt=envelope_pb2.Receipt(tracking_id=f"t{n}"),
    )
    env.sent_at.FromDatetime(NOW)
    return seal(env, key)


def _entries() -> list[bytes]:
    """A ledger with every check the verifier runs: a link, envelopes both ways, a rotation
    of this node's key with envelopes under each key, and plain entries between."""
    tls = generate_tls_identity(NodeId(ME), NOW).cert_pem
    rotation = sign_rotation(
        KEY, NEW_KEY, node_id=ME, new_tls_cert_pem=tls, rotated_at=NOW, old_tls_valid_until=NOW
    )
    plain = ledger_pb2.LedgerEntry(
        node_id=ME, complaint_registered=ledger_pb2.ComplaintRegistered()
    )
    entries = [
        ledger_pb2.LedgerEntry(
            node_id=ME,
            link_established=ledger_pb2.LinkEstablished(
                peer_id=PEER, role=ledger_pb2.PEER_ROLE_CHILD, peer_signing_key=PEER_KEY.public.raw
            ),
        ),
        plain,
        ledger_pb2.LedgerEntry(
            node_id=ME, referral_sent=ledger_pb2.ReferralSent(envelope=_envelope(ME, PEER, KEY, 1))
        ),
        plain,
        ledger_pb2.LedgerEntry(
            node_id=ME,
            receipt_received=ledger_pb2.ReceiptReceived(envelope=_envelope(PEER, ME, PEER_KEY, 2)),
        ),
        plain,
        ledger_pb2.LedgerEntry(node_id=ME, key_rotated=ledger_pb2.KeyRotated(rotation=rotation)),
        ledger_pb2.LedgerEntry(
            node_id=ME,
            referral_sent=ledger_pb2.ReferralSent(envelope=_envelope(ME, PEER, NEW_KEY, 3)),
        ),
        plain,
        plain,
    ]
    assert entries[ROTATED_AT].WhichOneof("kind") == "key_rotated"
    return [e.SerializeToString() for e in entries]


def _export(entries: list[bytes], cp_sizes: tuple[int, ...] = (0, 3, 7, 10)) -> list[str]:
    tree = MemoryTree(leaf_hash(e) for e in entries)
    origin = f"lapor-node/{ME}"
    cps = []
    for s in cp_sizes:
        key = KEY if s <= ROTATED_AT + 1 else NEW_KEY  # the old key signs its hand-over
        cps.append((s, sign_checkpoint(Checkpoint(origin, s, tree.root(s)), origin, key.ed25519)))
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


ENTRIES = _entries()
HONEST = _export(ENTRIES)
OTHER = _export([*ENTRIES[:3], *ENTRIES[4:], ENTRIES[3]])  # other bytes, same shape


def _outcome(
    lines: list[str] | list[bytes], *, fast: bool, **kwargs: Any
) -> tuple[verify.AuditReport | Finding, list[int]]:
    """What verifying `lines` by one path gives: the report or the finding, and progress."""
    seen: list[int] = []
    verifier = verify._Verifier(iter(lines), kwargs.get("trusted_vkey"), seen.append, fast=fast)
    try:
        return verifier.run(), seen
    except AuditFailure as e:
        return e.finding, seen


def _assert_same(lines: list[str] | list[bytes], **kwargs: Any) -> None:
    assert _outcome(lines, fast=True, **kwargs) == _outcome(lines, fast=False, **kwargs)


# --- tampering ----------------------------------------------------------------------------

CHARS = 'A/+=0129xQ",:{}[] \\\n'
"""Replacement characters that matter: base64 digits and padding, JSON syntax, a newline."""


def _edit_json(text: str, change: Callable[[dict[str, Any]], None]) -> str:
    """The line with a field changed, written back as `export_lines` writes (compact)."""
    try:
        obj = json.loads(text)
    except ValueError:
        return text
    if not isinstance(obj, dict):
        return text
    change(obj)
    return line(obj)


def _reentry(text: str, edit: Callable[[ledger_pb2.LedgerEntry], None], rehash: bool) -> str:
    """An entry line whose LedgerEntry is edited, its leaf recomputed or not."""

    def change(obj: dict[str, Any]) -> None:
        if obj.get("type") != "entry" or not isinstance(obj.get("entry"), str):
            return
        try:
            entry = ledger_pb2.LedgerEntry.FromString(base64.b64decode(obj["entry"]))
        except (ValueError, DecodeError):  # an earlier edit broke it: leave it broken
            return
        edit(entry)
        data = entry.SerializeToString()
        obj["entry"] = base64.b64encode(data).decode()
        if rehash:
            obj["leaf"] = base64.b64encode(leaf_hash(data)).decode()

    return _edit_json(text, change)


def _flip_signature(entry: ledger_pb2.LedgerEntry) -> None:
    kind = entry.WhichOneof("kind")
    envelope = None if kind is None else getattr(getattr(entry, kind), "envelope", None)
    if isinstance(envelope, envelope_pb2.SignedEnvelope) and envelope.signature:
        envelope.signature = bytes([envelope.signature[0] ^ 1]) + envelope.signature[1:]
    else:
        entry.node_id = PEER


ENTRY_EDITS: list[Callable[[ledger_pb2.LedgerEntry], None]] = [
    lambda e: setattr(e, "node_id", PEER),
    lambda e: e.ClearField("complaint_registered"),
    _flip_signature,
    lambda e: e.link_established.CopyFrom(ledger_pb2.LinkEstablished(peer_id="id-99")),
]


def _field_edits(other: list[str]) -> list[Callable[[dict[str, Any]], None]]:
    def entry_of(n: int) -> Callable[[dict[str, Any]], None]:
        def change(obj: dict[str, Any]) -> None:
            src = json.loads(other[n % len(other)])
            for key in ("entry", "leaf"):
                if key in src and key in obj:
                    obj[key] = src[key]

        return change

    return [
        lambda o: o.update(index=o["index"] + 1) if isinstance(o.get("index"), int) else None,
        lambda o: o.update(index=o["index"] - 1) if isinstance(o.get("index"), int) else None,
        lambda o: o.update(leaf=None),
        lambda o: o.pop("leaf", None),
        lambda o: o.update(size=o["size"] + 1) if isinstance(o.get("size"), int) else None,
        lambda o: o.update(size=o["size"] - 1) if isinstance(o.get("size"), int) else None,
        lambda o: o.update(entry="AAAA"),
        lambda o: o.update(leaf=o.get("entry")),
        lambda o: o.update(entries=0),
        lambda o: o.update(type="entry"),
        entry_of(3),
        entry_of(7),
    ]


FIELD_EDITS = _field_edits(OTHER)


OPS = ("flip", "insert", "base64", "drop", "dup", "swap", "move", "field", "entry", "entry")
"""Edits, weighted toward those that keep a line's shape (the fast path's concern)."""


@st.composite
def tampered(draw: st.DrawFn) -> list[str] | list[bytes]:
    """An honest export after one to three random edits, given as str or as bytes lines."""
    lines = list(draw(st.sampled_from([HONEST, OTHER])))
    for _ in range(draw(st.integers(1, 3))):
        n = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(OPS))
        if op == "flip" and lines[n]:
            at = draw(st.integers(0, len(lines[n]) - 1))
            lines[n] = lines[n][:at] + draw(st.sampled_from(CHARS)) + lines[n][at + 1 :]
        elif op == "insert":
            at = draw(st.integers(0, len(lines[n])))
            lines[n] = lines[n][:at] + draw(st.sampled_from(CHARS)) + lines[n][at:]
        elif op == "base64" and '"entry":"' in lines[n]:
            # Inside an entry's base64: what a lenient decoder would skip, a strict one refuses.
            start, end = lines[n].index('"entry":"') + 9, len(lines[n].rstrip("\n")) - 2
            at = draw(st.integers(start, max(start, end)))
            lines[n] = lines[n][:at] + draw(st.sampled_from(CHARS)) + lines[n][at:]
        elif op == "drop":
            del lines[n]
        elif op == "dup":
            lines.insert(draw(st.integers(0, len(lines))), lines[n])
        elif op == "swap":
            m = draw(st.integers(0, len(lines) - 1))
            lines[n], lines[m] = lines[m], lines[n]
        elif op == "move":
            moved = lines.pop(n)
            lines.insert(draw(st.integers(0, len(lines))), moved)
        elif op == "field":
            lines[n] = _edit_json(lines[n], draw(st.sampled_from(FIELD_EDITS)))
        elif op == "entry":
            edit = draw(st.sampled_from(ENTRY_EDITS))
            lines[n] = _reentry(lines[n], edit, rehash=draw(st.booleans()))
        if not lines:
            break
    if not draw(st.booleans()):
        return lines
    data = [x.encode("utf-8") for x in lines]
    if data and draw(st.integers(0, 3)) == 0:  # a byte that is not UTF-8, somewhere
        n = draw(st.integers(0, len(data) - 1))
        at = draw(st.integers(0, len(data[n])))
        data[n] = data[n][:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80"])) + data[n][at:]
    return data


# --- tests --------------------------------------------------------------------------------


def test_an_honest_export_takes_the_fast_path_and_both_paths_agree() -> None:
    """Every honest entry line is read by the fast path (json.loads is not called on it),
    and the report is the one the general path gives."""
    calls: list[int] = []
    parse = verify._parse

    def counting(text: str, line_no: int) -> dict[str, Any] | None:
        calls.append(line_no)
        return parse(text, line_no)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(verify, "_parse", counting)
        fast, _ = _outcome(HONEST, fast=True)
        entry_lines = {n for n, x in enumerate(HONEST, 1) if x.startswith('{"type":"entry"')}
        assert calls and not entry_lines & set(calls)
        calls.clear()
        general, _ = _outcome(HONEST, fast=False)
        assert entry_lines <= set(calls)
    assert isinstance(fast, verify.AuditReport)
    assert (fast.entries, fast.checkpoints, fast.current_vkey) == (
        len(ENTRIES),
        4,
        vkey_for(ME, NEW_KEY.public.raw),
    )
    assert fast == general


@pytest.mark.parametrize(
    ("name", "lines"),
    [
        pytest.param("dropped entry", [x for x in HONEST if '"index":4,' not in x], id="drop"),
        pytest.param("duplicate", [*HONEST[:5], HONEST[4], *HONEST[5:]], id="duplicate"),
        pytest.param("swapped", [*HONEST[:2], HONEST[3], HONEST[2], *HONEST[4:]], id="swap"),
        pytest.param(
            "re-signed",
            [_reentry(x, _flip_signature, rehash=True) if '"index":2,' in x else x for x in HONEST],
            id="bad-signature",
        ),
        pytest.param(
            "header below the entries",
            [_edit_json(HONEST[0], lambda o: o.update(size=len(ENTRIES) - 1)), *HONEST[1:]],
            id="entry-beyond-the-head",
        ),
        pytest.param(
            "space in base64",
            [x.replace('"entry":"', '"entry":" ') if '"index":2,' in x else x for x in HONEST],
            id="lenient-base64",
        ),
        pytest.param(
            "bytes",
            [x.encode() if i != 3 else x.encode() + b"\xff" for i, x in enumerate(HONEST)],
            id="not-utf8",
        ),
    ],
)
def test_named_tamperings_give_one_finding_by_either_path(
    name: str, lines: list[str] | list[bytes]
) -> None:
    """Each named tampering is found, and found alike by both paths."""
    fast, _ = _outcome(lines, fast=True)
    assert isinstance(fast, Finding), name
    _assert_same(lines)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(lines=tampered(), trusted=st.booleans())
def test_both_paths_give_the_same_outcome_on_tampered_exports(
    lines: list[str] | list[bytes], trusted: bool
) -> None:
    """Whatever was tampered with, the fast and the general path agree exactly."""
    _assert_same(lines, trusted_vkey=vkey_for(ME, KEY.public.raw) if trusted else None)
