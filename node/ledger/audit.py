"""Offline audit of a node's ledger: the export format, its verification, inclusion proofs.

Pure: lines in, lines out; no database, no network, no files. Memory stays bounded: entries
are streamed and only the tree's frontier (log2 n hashes, and at most 4096 verified leaf
hashes waiting to join it), the node's and its peers' keys (node.ledger.trust.KeysInForce)
and, with `trust`, the keys the chain of trust reached are kept.

Export format `lapor-node/audit-export` version 1 (docs/auditor-guide.md): JSON lines,
  1. a header  {"type": "header", "format", "version", "node_id", "origin", "vkey",
               "signing_public_key", "size", "exported_at", "current_vkey", "trust_chain"}:
               vkey and signing_public_key are the key that started the ledger,
               current_vkey the one in force at its head (optional: the same as vkey),
               trust_chain the base64 TrustChain from the national node (optional);
  2. entries   {"type": "entry", "index", "entry", "leaf"} in index order (base64: the
               LedgerEntry bytes as stored, and the leaf hash stored when it was appended);
     each checkpoint {"type": "checkpoint", "size", "note"} placed right after entry
     size - 1 (a checkpoint beyond the last entry comes after it);
  3. a trailer {"type": "end", "entries", "checkpoints"}.

Verification (`verify_export`) takes these steps and stops at the first failure, raising
AuditFailure whose Finding names the kind and the first entry index at fault:
  1. the header is well-formed; its vkeys are the C2SP verifier keys of keys under the
     origin `lapor-node/<node_id>`, vkey that of signing_public_key; the auditor's trusted
     vkey, if given, is vkey or current_vkey; with `trust` (the national node's vkey), the
     chain of trust reaches this node's first key from it (node.ledger.trust.walk_chain);
  2. for each entry i: the index is i (else missing or reordered); SHA-256(0x00 || entry)
     equals the leaf committed at append time (else altered, or moved from index j); the
     bytes parse as lapor.v1.LedgerEntry of this node; an embedded SignedEnvelope verifies
     (c.f. node.envelopes): sent ones under this node's key in force, received ones under
     a key of the peer pinned earlier in this same ledger (LinkAgreed, LinkEstablished,
     then each PeerKeyRotated); a KeyRotated entry, signed by both keys from the key in
     force, switches this node's key from entry i + 1 on; with `trust`, every signature is
     by a key the chain (or this ledger's agreements with children, and rotations after
     them) reached and no revocation cut off; the leaf is appended to the recomputed
     RFC 6962 tree (RFC 9162 section 2.1.1);
  3. for each checkpoint of size s: its note verifies under this node's key in force at
     entry s - 1 (c2sp.org/signed-note; so the old key signs the checkpoint that covers
     its own hand-over), its body parses strictly with this origin
     (c2sp.org/tlog-checkpoint), sizes increase, and its root equals the recomputed root
     at its size. Every checkpoint is a prefix of the one recomputed tree, so successive
     checkpoints are consistent (RFC 9162 2.1.4);
  4. the trailer counts what came, the entry count equals the header's size, and the
     ledger's rotations end at current_vkey.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2, trust_pb2
from node.crypto.enrollment import open_agreement, open_revocation
from node.crypto.rotation import open_rotation
from node.crypto.signing import VerifyKey
from node.envelopes import open_envelope
from node.errors import IntegrityError, NodeError, ProofError, SignatureError, ValidationError
from node.ids import NodeId
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.merkle import Frontier, leaf_hash, verify_consistency, verify_inclusion
from node.ledger.note import Verifier, format_vkey, open_checkpoint, parse_vkey
from node.ledger.trust import (
    ChainError,
    KeysInForce,
    TrustedKeys,
    TrustError,
    anchor_from_vkey,
    short_key,
    walk_chain,
)

__all__ = [
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "PROOF_FORMAT",
    "PROOF_VERSION",
    "AuditFailure",
    "AuditReport",
    "ExportHeader",
    "Finding",
    "check_proof_document",
    "export_lines",
    "proof_document",
    "verify_export",
    "vkey_for",
]

EXPORT_FORMAT = "lapor-node/audit-export"
EXPORT_VERSION = 1
PROOF_FORMAT = "lapor-node/inclusion-proof"
PROOF_VERSION = 1
LOOKAHEAD = 10_000
"""How many further lines verification reads to tell a reordering from a loss."""


@dataclass(frozen=True)
class Finding:
    """What is wrong with an export: a kind (docs/auditor-guide.md), where, and the detail."""

    kind: str
    detail: str
    index: int | None = None
    checkpoint_size: int | None = None

    def __str__(self) -> str:
        where = "export"
        if self.index is not None:
            where = f"entry {self.index}"
        elif self.checkpoint_size is not None:
            where = f"checkpoint at size {self.checkpoint_size}"
        return f"{where}: {self.kind}: {self.detail}"


class AuditFailure(IntegrityError):
    """An export does not verify; `finding` names the first fault. The cause, if any, is
    the underlying SignatureError, ProofError or ValidationError."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(str(finding))
        self.finding = finding


@dataclass(frozen=True)
class ExportHeader:
    """The first line of an export: whose ledger, which key, how many entries."""

    node_id: str
    vkey: str
    """The verifier key of the signing key that started the ledger."""
    signing_public_key: bytes
    size: int
    exported_at: str
    current_vkey: str = ""
    """The verifier key in force at the ledger's head ("": the same as `vkey`)."""
    trust_chain: bytes | None = None
    """The serialized TrustChain from the national node to this node (None: not given)."""

    @property
    def origin(self) -> str:
        return origin_for(self.node_id)

    def to_line(self) -> str:
        fields: dict[str, Any] = {
            "type": "header",
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "node_id": self.node_id,
            "origin": self.origin,
            "vkey": self.vkey,
            "signing_public_key": _b64(self.signing_public_key),
            "size": self.size,
            "exported_at": self.exported_at,
            "current_vkey": self.current_vkey or self.vkey,
        }
        if self.trust_chain is not None:
            fields["trust_chain"] = _b64(self.trust_chain)
        return _line(fields)


@dataclass(frozen=True)
class AuditReport:
    """What a successful verification covered."""

    node_id: str
    origin: str
    vkey: str
    entries: int
    checkpoints: int
    root: bytes
    last_checkpoint_size: int | None
    current_vkey: str = ""
    """The key in force at the head (differs from `vkey` after a rotation)."""
    trusted_by: str | None = None
    """With `trust`: the national node whose key reached this node's keys."""
    trust_path: tuple[str, ...] = ()
    """With `trust`: the node ids from the national node down to this one."""


# --- writing ----------------------------------------------------------------------------


def export_lines(
    header: ExportHeader,
    entries: Iterable[tuple[int, bytes, bytes | None]],
    checkpoints: Iterable[tuple[int, bytes]],
) -> Iterator[str]:
    """Yield the export's lines (each ending in a newline) from two sorted streams.

    `entries` gives (index, entry bytes, committed leaf hash or None) in index order;
    `checkpoints` gives (size, signed note) in size order. Nothing is held but one of each.
    """
    yield header.to_line()
    cps = iter(checkpoints)
    pending = next(cps, None)
    count = n_checkpoints = 0
    for index, entry, leaf in entries:
        while pending is not None and pending[0] <= count:
            yield _checkpoint_line(*pending)
            n_checkpoints += 1
            pending = next(cps, None)
        yield _line(
            {
                "type": "entry",
                "index": index,
                "entry": _b64(entry),
                "leaf": None if leaf is None else _b64(leaf),
            }
        )
        count += 1
    while pending is not None:
        yield _checkpoint_line(*pending)
        n_checkpoints += 1
        pending = next(cps, None)
    yield _line({"type": "end", "entries": count, "checkpoints": n_checkpoints})


def _checkpoint_line(size: int, note: bytes) -> str:
    return _line({"type": "checkpoint", "size": size, "note": note.decode("utf-8")})


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- verifying --------------------------------------------------------------------------


def verify_export(
    lines: Iterable[str | bytes],
    *,
    trusted_vkey: str | None = None,
    trust: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> AuditReport:
    """Verify an export streamed line by line (see the module docstring); raise AuditFailure.

    `trusted_vkey` is the node's verifier key as the auditor knows it independently (from
    the node's parent, or `identity show` read in person): the key that started the ledger
    or the one in force at its head; without it the export's own key is used, which proves
    internal consistency but not whose ledger it is. `trust` is the national node's
    verifier key: every signature must then be made by a key the export's chain of trust
    reaches from it (node.ledger.trust; ValidationError if it is not a vkey).
    `progress(n)` is called with the number of entries verified, every 4096 entries.
    """
    if trust is not None:
        anchor_from_vkey(trust)
    return _Verifier(iter(lines), trusted_vkey, progress, trust).run()


class _Verifier:
    def __init__(
        self,
        lines: Iterator[str | bytes],
        trusted_vkey: str | None,
        progress: Callable[[int], None] | None,
        trust: str | None = None,
    ) -> None:
        self.lines = lines
        self.trusted_vkey = trusted_vkey
        self.trust = trust
        self.progress = progress
        self.frontier = Frontier()
        self.verifiers: dict[bytes, Verifier] = {}
        self.checkpoints = 0
        self.last_cp: Checkpoint | None = None
        self.pending: list[tuple[int, bytes]] = []
        self.line_no = 0

    # 1. The header.
    def _header(self) -> ExportHeader:
        obj = self._next()
        if obj is None or obj.get("type") != "header":
            raise _fail("format", "expected a header as the first line")
        if obj.get("format") != EXPORT_FORMAT or obj.get("version") != EXPORT_VERSION:
            raise _fail(
                "format",
                f"expected format {EXPORT_FORMAT} version {EXPORT_VERSION}, "
                f"found {obj.get('format')!r} version {obj.get('version')!r}",
            )
        try:
            header = ExportHeader(
                node_id=_str(obj, "node_id"),
                vkey=_str(obj, "vkey"),
                signing_public_key=_bytes(obj, "signing_public_key"),
                size=_int(obj, "size"),
                exported_at=_str(obj, "exported_at"),
                current_vkey=_str(obj, "current_vkey") if "current_vkey" in obj else "",
                trust_chain=_bytes(obj, "trust_chain") if "trust_chain" in obj else None,
            )
            origin = header.origin
            verifier = parse_vkey(header.vkey)
            current = parse_vkey(header.current_vkey or header.vkey)
            own = VerifyKey(header.signing_public_key)
            chain = None if header.trust_chain is None else _parse_chain(header.trust_chain)
        except ValidationError as e:
            raise _fail("format", f"malformed header: {e}") from e
        if obj.get("origin") != origin or verifier.name != origin or current.name != origin:
            raise _fail(
                "key",
                f"expected the origin and key names {origin!r}, found "
                f"{obj.get('origin')!r}, {verifier.name!r} and {current.name!r}",
            )
        if verifier.public_key != header.signing_public_key:
            raise _fail(
                "key",
                "expected the vkey to carry the exported signing public key, "
                f"found another (key ID {verifier.key_id.hex()})",
            )
        if self.trusted_vkey is not None and self.trusted_vkey not in (
            header.vkey,
            header.current_vkey or header.vkey,
        ):
            raise _fail(
                "key",
                f"expected the trusted verifier key {self.trusted_vkey}, found "
                f"{header.vkey}: this export is signed with another key",
            )
        self.header, self.current_key = header, current.public_key
        self.keys = KeysInForce(header.node_id, [(-1, own)])
        if self.trust is not None:
            self.keys.trusted = self._walk(chain, own)
        return header

    def _walk(self, chain: trust_pb2.TrustChain | None, own: VerifyKey) -> TrustedKeys:
        """The chain of trust from `self.trust`, which must reach this node's first key."""
        assert self.trust is not None
        if chain is None:
            raise _fail(
                "trust-chain",
                "expected the header to carry the chain of trust from the national node "
                "(trust_chain), found none: the export was made by an older lapor-node; "
                "ask for a new export",
            )
        try:
            return walk_chain(chain.steps, self.trust, reach=(self.header.node_id, own.raw))
        except ChainError as e:
            hint = (
                ""
                if chain.steps
                else " (the chain is empty: the node holds no link agreement with a parent, "
                "e.g. it was linked by hand with `link add`)"
            )
            raise _fail("trust-chain", f"{e}{hint}") from e

    def run(self) -> AuditReport:
        header = self._header()
        obj = self._body()
        # 4. The trailer and the size.
        count = self.frontier.size
        if self.pending:
            size = self.pending[0][0]
            raise _fail(
                "missing",
                f"expected {size} entries as the checkpoint at size {size} "
                f"was signed, found {count}: the ledger's tail is truncated",
                index=count,
            )
        if obj.get("entries") != count or obj.get("checkpoints") != self.checkpoints:
            raise _fail(
                "format",
                f"expected the end line to count {count} entries and "
                f"{self.checkpoints} checkpoints, found {obj.get('entries')} and "
                f"{obj.get('checkpoints')}",
            )
        if count < header.size:
            raise _fail(
                "missing",
                f"expected {header.size} entries (the ledger head), found "
                f"{count}: the tail is truncated",
                index=count,
            )
        if self._next() is not None:
            raise _fail("format", "expected nothing after the end line, found more")
        in_force = self.keys.own_key
        if in_force.raw != self.current_key:
            raise _fail(
                "key",
                "expected the ledger's key rotations to end at the header's current_vkey "
                f"(key {short_key(self.current_key)}), found them ending at key "
                f"{short_key(in_force.raw)}",
            )
        if self.progress is not None:
            self.progress(count)
        trusted = self.keys.trusted
        return AuditReport(
            header.node_id,
            header.origin,
            header.vkey,
            count,
            self.checkpoints,
            self.frontier.root(),
            None if self.last_cp is None else self.last_cp.size,
            current_vkey=vkey_for(header.node_id, in_force.raw),
            trusted_by=None if trusted is None else trusted.anchor,
            trust_path=() if trusted is None else trusted.path(header.node_id),
        )

    def _body(self) -> dict[str, Any]:
        """Steps 2 and 3 for every line up to the end line; return the end line.

        The next entry line exactly as `export_lines` writes it (`_entry_prefix(i)`, strict
        base64, `_ENTRY_LEAF`, strict base64, `"}` and a newline or not) is verified here,
        inline, by the checks of `_entry` in the same order: on such a line json.loads and
        _bytes would give the very values read here. Any other line, and any entry that
        fails a check, goes through `_parse` and `_entry`, the general path that makes the
        finding, so the finding is the same whichever path a line takes.
        """
        frontier, pending, progress = self.frontier, self.pending, self.progress
        node_id, head_size = self.header.node_id, self.header.size
        message = ledger_pb2.LedgerEntry()
        sha256, a2b, compare = hashlib.sha256, binascii.a2b_base64, hmac.compare_digest
        leaf_mark, leaf_at, kind_checks = _ENTRY_LEAF, len(_ENTRY_LEAF), _KIND_CHECKS
        leaves: list[bytes] = []  # verified, not yet in the frontier: at most 4096
        i = frontier.size
        prefix = _entry_prefix(i)
        for line_no, raw in enumerate(self.lines, self.line_no + 1):
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
            data: bytes | None = None
            committed = b""
            if text.startswith(prefix) and i < head_size:
                end = -3 if text.endswith('"}\n') else -2 if text.endswith('"}') else 0
                leaf_from = text.find(leaf_mark, len(prefix))
                # Overlapping or empty slices decode to bytes that fail the leaf check.
                if end and leaf_from > 0:
                    try:
                        data = a2b(text[len(prefix) : leaf_from], strict_mode=True)
                        committed = a2b(text[leaf_from + leaf_at : end], strict_mode=True)
                    except ValueError:
                        data = None
            kind = None
            if data is not None:
                leaf = sha256(b"\x00" + data).digest()
                if compare(leaf, committed):
                    try:
                        message.ParseFromString(data)
                    except DecodeError:
                        pass
                    else:
                        if message.node_id == node_id:
                            kind = message.WhichOneof("kind")
            if kind is None:
                frontier.extend(leaves)
                leaves.clear()
                self.line_no = line_no
                obj = _parse(text, line_no)
                if obj is None:
                    continue
                line_type = obj.get("type")
                if line_type == "entry":
                    self._entry(obj)
                elif line_type == "checkpoint":
                    self._checkpoint(obj)
                elif line_type == "end":
                    return obj
                else:
                    raise _fail("format", f"unexpected line type {line_type!r} at line {line_no}")
                i = frontier.size
                prefix = _entry_prefix(i)
                continue
            check = kind_checks.get(kind)
            if check is not None:
                check(self, i, message)
            leaves.append(leaf)
            i += 1
            prefix = f'{{"type":"entry","index":{i},"entry":"'  # _entry_prefix(i), inlined
            if pending or not i & 4095:  # a checkpoint may be due; or keep memory bounded
                frontier.extend(leaves)
                leaves.clear()
                self._due_checkpoints()
                if progress is not None and not i & 4095:
                    progress(i)
        frontier.extend(leaves)
        raise _fail(
            "missing",
            "expected an end line, found the file ends: the export was cut short",
            index=frontier.size,
        )

    # 2. One entry.
    def _entry(self, obj: dict[str, Any]) -> None:
        i = self.frontier.size
        try:
            index = _int(obj, "index")
            data = _bytes(obj, "entry")
            committed = None if obj.get("leaf") is None else _bytes(obj, "leaf")
        except ValidationError as e:
            raise _fail("format", f"malformed entry line: {e}", index=i) from e
        if index != i:
            self._misplaced(i, index)
        if index >= self.header.size:
            raise _fail(
                "forged",
                f"expected at most {self.header.size} entries (the ledger "
                f"head), found entry {index} beyond it",
                index=index,
            )
        leaf = leaf_hash(data)
        if committed is None:
            raise _fail(
                "forged",
                "expected the leaf hash stored when the entry was "
                "appended, found none: the entry was added outside the ledger",
                index=i,
            )
        if not hmac.compare_digest(leaf, committed):
            self._altered(i, data, committed)
        entry = ledger_pb2.LedgerEntry()
        try:
            entry.ParseFromString(data)
        except DecodeError as e:
            raise _fail(
                "malformed-entry",
                "expected a lapor.v1.LedgerEntry, found bytes that do not parse",
                index=i,
            ) from e
        if entry.node_id != self.header.node_id:
            raise _fail(
                "foreign-entry",
                f"expected node_id {self.header.node_id!r}, found {entry.node_id!r}",
                index=i,
            )
        self._invariants(i, entry)
        self.frontier.append(leaf)
        self._due_checkpoints()
        if self.progress is not None and self.frontier.size % 4096 == 0:
            self.progress(self.frontier.size)

    def _invariants(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """The checks of the entry's kind: the one of _KIND_CHECKS, if it has one."""
        kind = entry.WhichOneof("kind")
        if kind is None:
            raise _fail("malformed-entry", "expected one entry kind, found none", index=i)
        check = _KIND_CHECKS.get(kind)
        if check is not None:
            check(self, i, entry)

    def _link_established(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """A link made by hand: pins the peer's key. It reaches nothing under `trust`."""
        link = entry.link_established
        try:
            self.keys.pin(link.peer_id, VerifyKey(link.peer_signing_key))
        except ValidationError as e:
            raise _fail("malformed-entry", f"link to {link.peer_id!r}: {e}", index=i) from e
        self.keys.hand_links[link.peer_id] = i

    def _envelope_sent(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """referral_sent, status_update_sent, reply_sent: signed by this node's key in
        force, to a peer linked before."""
        kind = str(entry.WhichOneof("kind"))
        signed = getattr(entry, kind).envelope
        recipient = _peek_recipient(signed)
        self._envelope(
            i,
            signed,
            signer=NodeId(self.header.node_id),
            key=self.keys.own_key,
            recipient=recipient,
            whose="this node's key in force",
        )
        self._trusted(i, kind, self.keys.check_own, index=i)
        if recipient not in self.keys.peers:
            raise _fail(
                "unknown-peer",
                f"expected an envelope to a linked peer, found one "
                f"to {recipient!r}, {self.keys.unknown_peer(recipient)}",
                index=i,
            )

    def _envelope_received(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """referral_received, receipt_received, status_update_received, reply_received:
        signed by a peer linked before, with its key in force or one it had before (sent
        before its rotation arrived)."""
        kind = entry.WhichOneof("kind")
        signed = getattr(entry, str(kind)).envelope
        key = self.keys.peer_key(signed.signer, signed.key_id)
        if key is None:
            raise _fail(
                "unknown-peer",
                f"expected an envelope from a linked peer, found one signed as "
                f"{signed.signer!r}, {self.keys.unknown_peer(signed.signer)}",
                index=i,
            )
        self._envelope(
            i,
            signed,
            signer=NodeId(signed.signer),
            key=key,
            recipient=NodeId(self.header.node_id),
            whose=f"{signed.signer}'s key from its link entry",
        )
        self._trusted(i, str(kind), self.keys.check_peer, signed.signer, key)

    def _link_agreed(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """A link agreement signed by both sides, naming this node with its key in force:
        the peer's key from it. Under `trust`, an agreement with a child reaches the
        child's keys; one with the parent must name the parent's keys the chain reached."""
        me = self.header.node_id
        try:
            agreement = open_agreement(entry.link_agreed.agreement)
        except SignatureError as e:
            raise _fail("bad-signature", f"link agreement: {e}", index=i) from e
        except ValidationError as e:
            raise _fail("malformed-entry", f"link agreement: {e}", index=i) from e
        if agreement.parent.node_id == me:
            own, peer = agreement.parent, agreement.child
        elif agreement.child.node_id == me:
            own, peer = agreement.child, agreement.parent
        else:
            raise _fail(
                "foreign-entry",
                f"expected a link agreement naming {me}, found one between "
                f"{agreement.parent.node_id} and {agreement.child.node_id}",
                index=i,
            )
        if not hmac.compare_digest(own.signing_key, self.keys.own_key.raw):
            raise _fail(
                "bad-signature",
                "expected the agreement to name this node's key in force, found another",
                index=i,
            )
        self.keys.pin(peer.node_id, VerifyKey(peer.signing_key))
        trusted = self.keys.trusted
        if trusted is None:
            return
        if own is agreement.parent:
            self._trusted(i, "link_agreed", self.keys.check_own, index=i)
            self._trusted(
                i, "link_agreed", trusted.reach_child, me, own, peer, f"entry {i}", in_force=False
            )
        else:
            self._trusted(
                i, "link_agreed", self.keys.check_peer, peer.node_id, VerifyKey(peer.signing_key)
            )

    def _link_revoked(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """A revocation signed by the node that made it, naming this node (with its key in
        force, if this node made it); the peer's key speaks for nothing after it. Under
        `trust` the peer's side is cut off: a child and all below it, or, when this node
        left its parent, this node itself for every signature after this entry."""
        me = self.header.node_id
        try:
            revocation = open_revocation(entry.link_revoked.revocation)
        except SignatureError as e:
            raise _fail("bad-signature", f"link revocation: {e}", index=i) from e
        except ValidationError as e:
            raise _fail("malformed-entry", f"link revocation: {e}", index=i) from e
        if me not in (revocation.parent_id, revocation.child_id):
            raise _fail(
                "foreign-entry",
                f"expected a revocation naming {me}, found one between "
                f"{revocation.parent_id} and {revocation.child_id}",
                index=i,
            )
        by = revocation.revoked_by or revocation.parent_id
        mine = (
            revocation.parent_signing_key
            if by == revocation.parent_id
            else revocation.child_signing_key
        )
        if by == me and not hmac.compare_digest(mine, self.keys.own_key.raw):
            raise _fail(
                "bad-signature",
                "expected the revocation to be signed by this node's key in force, found "
                f"key {short_key(mine)}",
                index=i,
            )
        peer = revocation.child_id if revocation.parent_id == me else revocation.parent_id
        self.keys.peers.pop(peer, None)
        self.keys.revoked[peer] = i
        trusted = self.keys.trusted
        if trusted is None:
            return
        why = f"its link was revoked by entry {i}"
        if revocation.child_id == me:
            self._trusted(i, "link_revoked", self.keys.check_own, index=i)
            self.keys.own_cut = (i, f"its link to {peer} was revoked by entry {i}")
            trusted.cut(me, why)
        else:
            trusted.cut(peer, why)

    def _key_rotated(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """This node's rotation, signed by both keys, from its key in force: from the next
        entry on (and for checkpoints of size above i + 1) the new key is in force."""
        rotation = self._rotation(i, entry.key_rotated.rotation)
        me = self.header.node_id
        if rotation.node_id != me:
            raise _fail(
                "foreign-entry",
                f"expected a key rotation of {me}, found one of {rotation.node_id}",
                index=i,
            )
        if not hmac.compare_digest(rotation.old_signing_key, self.keys.own_key.raw):
            raise _fail(
                "bad-signature",
                f"expected a rotation from this node's key in force "
                f"{short_key(self.keys.own_key.raw)}, found one from key "
                f"{short_key(rotation.old_signing_key)}",
                index=i,
            )
        self.keys.rotate_own(i, VerifyKey(rotation.new_signing_key))
        if self.keys.trusted is not None:
            self._trusted(i, "key_rotated", self.keys.check_own, index=i)
            self._trusted(i, "key_rotated", self.keys.trusted.rotate, rotation, f"entry {i}")

    def _peer_key_rotated(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """A linked peer's rotation, signed by both keys, from the key pinned for it: the
        new key is pinned beside the earlier ones."""
        rotation = self._rotation(i, entry.peer_key_rotated.rotation)
        peer = rotation.node_id
        keys = self.keys.peers.get(peer)
        if not keys:
            raise _fail(
                "unknown-peer",
                f"expected a key rotation of a linked peer, found one of {peer!r}, "
                f"{self.keys.unknown_peer(peer)}",
                index=i,
            )
        if not hmac.compare_digest(rotation.old_signing_key, keys[-1].raw):
            raise _fail(
                "bad-signature",
                f"expected a rotation of {peer} from the key pinned for it "
                f"{short_key(keys[-1].raw)}, found one from key "
                f"{short_key(rotation.old_signing_key)}",
                index=i,
            )
        keys.append(VerifyKey(rotation.new_signing_key))
        trusted = self.keys.trusted
        if trusted is not None:
            self._trusted(
                i,
                "peer_key_rotated",
                self.keys.check_peer,
                peer,
                VerifyKey(rotation.old_signing_key),
            )
            self._trusted(i, "peer_key_rotated", trusted.rotate, rotation, f"entry {i}")

    def _rotation(self, i: int, signed: trust_pb2.SignedKeyRotation) -> trust_pb2.KeyRotation:
        try:
            return open_rotation(signed)
        except SignatureError as e:
            raise _fail("bad-signature", f"key rotation: {e}", index=i) from e
        except ValidationError as e:
            raise _fail("malformed-entry", f"key rotation: {e}", index=i) from e

    def _peer_fork_detected(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """Fork evidence: both notes signed by the linked peer, and truly contradictory."""
        fork = entry.peer_fork_detected
        keys = self.keys.peers.get(fork.peer_id)
        if not keys:
            raise _fail(
                "unknown-peer",
                f"fork evidence against {fork.peer_id!r}, {self.keys.unknown_peer(fork.peer_id)}",
                index=i,
            )
        held = presented = None
        error: NodeError | None = None
        for key in reversed(keys):  # the key in force, or one the peer had before
            try:
                verifier = Verifier.from_public_key(origin_for(fork.peer_id), key.raw)
                held = open_checkpoint(fork.held_checkpoint, verifier)
                presented = open_checkpoint(fork.presented_checkpoint, verifier)
            except (SignatureError, ValidationError) as e:
                error = error or e
                continue
            self._trusted(i, "peer_fork_detected", self.keys.check_peer, fork.peer_id, key)
            break
        if held is None or presented is None:
            raise _fail(
                "bad-signature", f"fork evidence against {fork.peer_id}: {error}", index=i
            ) from error
        first, second = (held, presented) if held.size <= presented.size else (presented, held)
        try:
            verify_consistency(
                first.size, second.size, first.root, second.root, list(fork.consistency_proof)
            )
        except ProofError:
            return  # contradictory, as claimed
        raise _fail(
            "malformed-entry",
            f"fork evidence against {fork.peer_id}: the two checkpoints are consistent",
            index=i,
        )

    def _trusted(
        self, i: int | None, what: str, check: Callable[..., None], *args: Any, **kw: Any
    ) -> None:
        """Run a `trust` check for entry `i` of kind `what` (or this node's checkpoint of
        size kw["size"]); its TrustError becomes an `untrusted-key` finding."""
        try:
            check(*args, **kw)
        except TrustError as e:
            raise _fail(
                "untrusted-key", f"{what}: {e}", index=i, checkpoint_size=kw.get("size")
            ) from e
        except ValidationError as e:
            raise _fail("malformed-entry", f"{what}: {e}", index=i) from e

    def _envelope(
        self,
        i: int,
        signed: envelope_pb2.SignedEnvelope,
        *,
        signer: NodeId,
        key: VerifyKey,
        recipient: str,
        whose: str,
    ) -> None:
        try:
            open_envelope(signed, peer=signer, peer_key=key, me=NodeId(recipient))
        except SignatureError as e:
            raise _fail(
                "bad-signature", f"expected the envelope signed by {whose}: {e}", index=i
            ) from e
        except NodeError as e:
            raise _fail("bad-envelope", f"the embedded envelope does not open: {e}", index=i) from e

    def _misplaced(self, i: int, found: int) -> None:
        """Entry i is not where it should be: look a little further to say why."""
        if found < i:
            raise _fail(
                "reordered", f"expected entry {i}, found entry {found} again or late", index=found
            )
        for _ in range(LOOKAHEAD):
            obj = self._next()
            if obj is None:
                break
            if obj.get("type") == "entry" and obj.get("index") == i:
                raise _fail(
                    "reordered",
                    f"expected entry {i} here, found entry {found}; "
                    f"entry {i} comes later: entries were swapped or moved",
                    index=i,
                )
        raise _fail(
            "missing",
            f"expected entry {i}, found entry {found}: entries {i}..{found - 1} were deleted",
            index=i,
        )

    def _altered(self, i: int, data: bytes, committed: bytes) -> None:
        """Entry i's bytes are not those committed at i: moved from elsewhere, or changed."""
        leaf = leaf_hash(data)
        for _ in range(LOOKAHEAD):
            obj = self._next()
            if obj is None or obj.get("type") == "end":
                break
            if obj.get("type") != "entry":
                continue
            try:
                other, other_leaf = _bytes(obj, "entry"), obj.get("leaf")
            except ValidationError:
                break
            if other_leaf == _b64(leaf) or hmac.compare_digest(leaf_hash(other), committed):
                raise _fail(
                    "reordered",
                    f"expected the bytes committed at {i}, found those "
                    f"committed at {obj.get('index')}: entries were swapped",
                    index=i,
                )
        raise _fail(
            "altered",
            f"expected bytes with leaf hash {committed.hex()} as committed "
            f"when appended, found bytes hashing to {leaf.hex()}",
            index=i,
        )

    # 3. One checkpoint.
    def _checkpoint(self, obj: dict[str, Any]) -> None:
        try:
            size = _int(obj, "size")
            note = _str(obj, "note").encode("utf-8")
        except ValidationError as e:
            raise _fail("format", f"malformed checkpoint line: {e}") from e
        if size < self.frontier.size:
            raise _fail(
                "format",
                f"expected the checkpoint of size {size} right after entry "
                f"{size - 1}, found it after entry {self.frontier.size - 1}",
                checkpoint_size=size,
            )
        if self.pending and size <= self.pending[-1][0]:
            raise _fail(
                "checkpoint-order", "expected checkpoint sizes to increase", checkpoint_size=size
            )
        self.pending.append((size, note))
        self._due_checkpoints()

    def _due_checkpoints(self) -> None:
        while self.pending and self.pending[0][0] == self.frontier.size:
            self._check_checkpoint(*self.pending.pop(0))

    def _own_verifier(self, size: int) -> Verifier:
        """The note verifier of the key that signs this node's checkpoint of `size`."""
        key = self.keys.own_key_at(size - 1)
        verifier = self.verifiers.get(key.raw)
        if verifier is None:
            verifier = Verifier.from_public_key(self.header.origin, key.raw)
            self.verifiers[key.raw] = verifier
        return verifier

    def _check_checkpoint(self, size: int, note: bytes) -> None:
        verifier = self._own_verifier(size)
        try:
            cp = open_checkpoint(note, verifier)
        except SignatureError as e:
            raise _fail(
                "checkpoint-signature",
                f"expected a signature by {verifier.name} (key ID {verifier.key_id.hex()}): {e}",
                checkpoint_size=size,
            ) from e
        except ValidationError as e:
            raise _fail("format", f"malformed checkpoint note: {e}", checkpoint_size=size) from e
        if cp.origin != self.header.origin or cp.size != size:
            raise _fail(
                "checkpoint-order",
                f"expected a checkpoint of {self.header.origin} at "
                f"size {size}, found {cp.origin} at size {cp.size}",
                checkpoint_size=size,
            )
        previous = 0 if self.last_cp is None else self.last_cp.size
        if self.last_cp is not None and cp.size <= self.last_cp.size:
            raise _fail(
                "checkpoint-order",
                f"expected a size above {self.last_cp.size}",
                checkpoint_size=size,
            )
        root = self.frontier.root()
        if not hmac.compare_digest(root, cp.root):
            first = previous if previous < size else 0
            raise _fail(
                "checkpoint-mismatch",
                f"expected the signed root {cp.root.hex()} at "
                f"size {size}, recomputed {root.hex()}: an entry in {first}..{size - 1} "
                "was changed, inserted or removed",
                index=first,
            )
        self._trusted(None, "checkpoint", self.keys.check_own, size=size)
        self.last_cp = cp
        self.checkpoints += 1

    def _next(self) -> dict[str, Any] | None:
        for raw in self.lines:
            self.line_no += 1
            obj = _parse(raw.decode("utf-8") if isinstance(raw, bytes) else raw, self.line_no)
            if obj is not None:
                return obj
        return None


_KIND_CHECKS: dict[str, Callable[[_Verifier, int, ledger_pb2.LedgerEntry], None]] = {
    "link_established": _Verifier._link_established,
    "referral_sent": _Verifier._envelope_sent,
    "referral_received": _Verifier._envelope_received,
    "receipt_received": _Verifier._envelope_received,
    "status_update_sent": _Verifier._envelope_sent,
    "status_update_received": _Verifier._envelope_received,
    "reply_sent": _Verifier._envelope_sent,
    "reply_received": _Verifier._envelope_received,
    "sealed_identity_sent": _Verifier._envelope_sent,
    "sealed_identity_received": _Verifier._envelope_received,
    "link_agreed": _Verifier._link_agreed,
    "link_revoked": _Verifier._link_revoked,
    "key_rotated": _Verifier._key_rotated,
    "peer_key_rotated": _Verifier._peer_key_rotated,
    "peer_fork_detected": _Verifier._peer_fork_detected,
}
"""The checks an entry of each kind gets beyond parsing (step 2), by kind; the others
get none. The fast path in `_Verifier._body` reads this table too, so a check added here
applies whichever path an entry takes."""


def _parse(text: str, line_no: int) -> dict[str, Any] | None:
    """One line as a JSON object, or None for a blank line; AuditFailure if neither."""
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise _fail("format", f"line {line_no} is not JSON") from e
    if not isinstance(obj, dict):
        raise _fail("format", f"line {line_no} is not a JSON object")
    return obj


_ENTRY_LEAF = '","leaf":"'


def _entry_prefix(index: int) -> str:
    """How `export_lines` begins the line of entry `index`, up to its base64 bytes."""
    return f'{{"type":"entry","index":{index},"entry":"'


def _parse_chain(data: bytes) -> trust_pb2.TrustChain:
    """The header's trust_chain as a TrustChain; ValidationError if it does not parse."""
    try:
        return trust_pb2.TrustChain.FromString(data)
    except DecodeError as e:
        raise ValidationError("expected trust_chain to be a lapor.v1.TrustChain") from e


def _peek_recipient(signed: envelope_pb2.SignedEnvelope) -> str:
    """The recipient an envelope names, read before its signature is checked."""
    env = envelope_pb2.Envelope()
    try:
        env.ParseFromString(signed.body)
    except DecodeError:
        return ""
    return env.recipient


def _fail(
    kind: str, detail: str, *, index: int | None = None, checkpoint_size: int | None = None
) -> AuditFailure:
    return AuditFailure(Finding(kind, detail, index, checkpoint_size))


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ValidationError(f"expected {key} as a string, found {type(value).__name__}")
    return value


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"expected {key} as a non-negative integer, found {value!r}")
    return value


def _bytes(obj: dict[str, Any], key: str) -> bytes:
    text = _str(obj, key)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValidationError(f"expected {key} in base64") from e


# --- inclusion proofs -------------------------------------------------------------------


def proof_document(
    *,
    origin: str,
    index: int,
    size: int,
    entry: bytes,
    path: Iterable[bytes],
    root: bytes,
    note: bytes,
) -> dict[str, Any]:
    """The documented JSON form of an inclusion proof with its signed checkpoint."""
    return {
        "format": PROOF_FORMAT,
        "version": PROOF_VERSION,
        "origin": origin,
        "leaf_index": index,
        "tree_size": size,
        "entry": _b64(entry),
        "leaf_hash": _b64(leaf_hash(entry)),
        "audit_path": [_b64(p) for p in path],
        "root": _b64(root),
        "checkpoint": note.decode("utf-8"),
    }


def check_proof_document(doc: dict[str, Any], vkey: str) -> Checkpoint:
    """Verify a proof document against a trusted vkey; return the checkpoint it proves into.

    Steps: 1. the checkpoint note verifies under `vkey` and names the proof's size and
    root; 2. the leaf hash is SHA-256(0x00 || entry); 3. the audit path leads from the leaf
    to the root (RFC 9162 section 2.1.3.2). Raises SignatureError, ProofError or
    ValidationError.
    """
    if doc.get("format") != PROOF_FORMAT or doc.get("version") != PROOF_VERSION:
        raise ValidationError(f"expected {PROOF_FORMAT} version {PROOF_VERSION}")
    verifier = parse_vkey(vkey)
    cp = open_checkpoint(_str(doc, "checkpoint").encode("utf-8"), verifier)
    size, index, root = _int(doc, "tree_size"), _int(doc, "leaf_index"), _bytes(doc, "root")
    if cp.size != size or cp.root != root:
        raise ValidationError(
            f"expected the checkpoint to be of size {size} with the proof's "
            f"root, found size {cp.size}"
        )
    leaf = _bytes(doc, "leaf_hash")
    if "entry" in doc and leaf_hash(_bytes(doc, "entry")) != leaf:
        raise ValidationError("expected leaf_hash = SHA-256(0x00 || entry), found another")
    path = doc.get("audit_path")
    if not isinstance(path, list):
        raise ValidationError("expected audit_path as a list")
    verify_inclusion(leaf, index, size, [_bytes({"p": p}, "p") for p in path], root)
    return cp


def vkey_for(node_id: str, public_key: bytes) -> str:
    """The verifier key of a node's signing key under its origin."""
    return format_vkey(origin_for(node_id), public_key)
