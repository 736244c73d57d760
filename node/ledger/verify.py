"""Offline verification of an audit export (node.ledger.export): `verify_export`.

Pure: lines in, a report out; no database, no network, no files. Memory stays bounded:
entries are streamed and only the tree's frontier (log2 n hashes, and at most 4096 verified
leaf hashes waiting to join it), the node's and its peers' keys (node.ledger.trust.
KeysInForce) and, with `trust`, the keys the chain of trust reached are kept.

Verification (`verify_export`) takes these steps and stops at the first failure, raising
AuditFailure whose Finding names the kind and the first entry index at fault:
  1. the header is well-formed; its vkeys are the C2SP verifier keys of keys under the
     origin `lapor-node/<node_id>`, vkey that of signing_public_key; the auditor's trusted
     vkey, if given, is vkey or current_vkey; with `trust` (the national node's vkey), the
     chain of trust reaches this node's first key from it (node.ledger.trust.walk_chain);
     all in node.ledger._verify_header;
  2. for each entry i: the index is i (else missing or reordered); SHA-256(0x00 || entry)
     equals the leaf committed at append time (else altered, or moved from index j); the
     bytes parse as lapor.v1.LedgerEntry of this node; an embedded SignedEnvelope verifies
     (c.f. node.envelopes): sent ones under this node's key in force, received ones under
     a key of the peer pinned earlier in this same ledger (LinkAgreed, LinkEstablished,
     then each PeerKeyRotated); a KeyRotated entry, signed by both keys from the key in
     force, switches this node's key from entry i + 1 on; with `trust`, every signature is
     by a key the chain (or this ledger's agreements with children, and rotations after
     them) reached and no revocation cut off; a HistoryDiscontinued entry (a lost tail,
     explained: node.ledger.discontinuity) must restart at its own index with the
     recomputed root, is signed by the key in force, switches to the new key for the next
     entries and for checkpoints above its index, and is reported, not failed; the leaf
     is appended to the recomputed RFC 6962 tree (RFC 9162 section 2.1.1);
  3. for each checkpoint of size s: its note verifies under this node's key in force at
     entry s - 1 (c2sp.org/signed-note; so the old key signs the checkpoint that covers
     its own hand-over), its body parses strictly with this origin
     (c2sp.org/tlog-checkpoint), sizes increase, and its root equals the recomputed root
     at its size. Every checkpoint is a prefix of the one recomputed tree, so successive
     checkpoints are consistent (RFC 9162 2.1.4);
  4. the trailer counts what came, the entry count equals the header's size, and the
     ledger's rotations end at current_vkey.

Invariants: one finding, the first in the export's order (node.ledger.findings); each
entry's kind gets the checks of node.ledger._entry_checks (one table), whichever parse
path reads its line. An entry line exactly as `export_lines` writes it is read by a fast
path (`_body`) that slices the line instead of calling json.loads and makes the checks of
`_entry` inline, in the same order; a line of any other shape, and an entry whose index,
leaf, parse or node id check fails, goes through the general path (`_parse`, `_entry`),
which makes that finding. tests/unit/ledger/test_verify_paths.py shows the two paths agree
(the same report, or the same finding at the same index) on random and tampered exports.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import ledger_pb2
from node.errors import SignatureError, ValidationError
from node.ledger._entry_checks import EntryChecks, trusted_check
from node.ledger._fields import b64, read_bytes, read_int, read_str
from node.ledger._verify_header import check_header
from node.ledger.checkpoint import Checkpoint
from node.ledger.discontinuity import Discontinuity
from node.ledger.export import ExportHeader, vkey_for
from node.ledger.findings import fail
from node.ledger.merkle import Frontier, leaf_hash
from node.ledger.note import Verifier, open_checkpoint
from node.ledger.trust import KeysInForce, anchor_from_vkey, short_key

__all__ = ["LOOKAHEAD", "AuditReport", "verify_export"]

LOOKAHEAD = 10_000
"""How many further lines verification reads to tell a reordering from a loss."""


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
    discontinuities: tuple[tuple[int, Discontinuity], ...] = ()
    """Explained gaps: (index of the HistoryDiscontinued entry, its verified statement)."""


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
        *,
        fast: bool = True,
    ) -> None:
        self.lines = lines
        self.fast = fast
        """False: every line takes the general path (for tests that compare the two)."""
        self.trusted_vkey = trusted_vkey
        self.trust = trust
        self.progress = progress
        self.frontier = Frontier()
        self.verifiers: dict[bytes, Verifier] = {}
        self.checkpoints = 0
        self.last_cp: Checkpoint | None = None
        self.pending: list[tuple[int, bytes]] = []
        self.line_no = 0

    # 1. The header (node.ledger._verify_header).
    def _header(self) -> ExportHeader:
        checked = check_header(self._next(), trusted_vkey=self.trusted_vkey, trust=self.trust)
        self.header, self.current_key = checked.header, checked.current_key
        self.keys = KeysInForce(checked.header.node_id, [(-1, checked.own)])
        self.keys.trusted = checked.trusted
        self.checks = EntryChecks(checked.header.node_id, self.keys, self.frontier.root)
        return checked.header

    def run(self) -> AuditReport:
        header = self._header()
        obj = self._body()
        # 4. The trailer and the size.
        count = self.frontier.size
        if self.pending:
            size = self.pending[0][0]
            raise fail(
                "missing",
                f"expected {size} entries as the checkpoint at size {size} "
                f"was signed, found {count}: the ledger's tail is truncated",
                index=count,
            )
        if obj.get("entries") != count or obj.get("checkpoints") != self.checkpoints:
            raise fail(
                "format",
                f"expected the end line to count {count} entries and "
                f"{self.checkpoints} checkpoints, found {obj.get('entries')} and "
                f"{obj.get('checkpoints')}",
            )
        if count < header.size:
            raise fail(
                "missing",
                f"expected {header.size} entries (the ledger head), found "
                f"{count}: the tail is truncated",
                index=count,
            )
        if self._next() is not None:
            raise fail("format", "expected nothing after the end line, found more")
        in_force = self.keys.own_key
        if in_force.raw != self.current_key:
            raise fail(
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
            discontinuities=tuple(self.checks.discontinuities),
        )

    def _body(self) -> dict[str, Any]:
        """Steps 2 and 3 for every line up to the end line; return the end line.

        The next entry line exactly as `export_lines` writes it (`_entry_prefix(i)`, strict
        base64, `_ENTRY_LEAF`, strict base64, `"}` and a newline or not) is verified here,
        inline, by the checks of `_entry` in the same order: on such a line json.loads and
        read_bytes would give the very values read here. Any other line, and any entry that
        fails a check, goes through `_parse` and `_entry`, the general path that makes the
        finding, so the finding is the same whichever path a line takes (with `fast` False
        every line goes the general way; tests/unit/ledger/test_verify_paths.py compares).
        """
        fast = self.fast
        frontier, pending, progress = self.frontier, self.pending, self.progress
        node_id, head_size = self.header.node_id, self.header.size
        message = ledger_pb2.LedgerEntry()
        sha256, a2b, compare = hashlib.sha256, binascii.a2b_base64, hmac.compare_digest
        leaf_mark, leaf_at, kind_checks = _ENTRY_LEAF, len(_ENTRY_LEAF), self.checks.by_kind
        leaves: list[bytes] = []  # verified, not yet in the frontier: at most 4096
        i = frontier.size
        prefix = _entry_prefix(i)
        for line_no, raw in enumerate(self.lines, self.line_no + 1):
            text = raw if isinstance(raw, str) else _text(raw, line_no)
            data: bytes | None = None
            committed = b""
            if fast and text.startswith(prefix) and i < head_size:
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
                            if kind == "history_discontinued":  # needs the frontier's root
                                kind = None
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
                    raise fail("format", f"unexpected line type {line_type!r} at line {line_no}")
                i = frontier.size
                prefix = _entry_prefix(i)
                continue
            check = kind_checks.get(kind)
            if check is not None:
                check(i, message)
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
        raise fail(
            "missing",
            "expected an end line, found the file ends: the export was cut short",
            index=frontier.size,
        )

    # 2. One entry.
    def _entry(self, obj: dict[str, Any]) -> None:
        i = self.frontier.size
        try:
            index = read_int(obj, "index")
            data = read_bytes(obj, "entry")
            committed = None if obj.get("leaf") is None else read_bytes(obj, "leaf")
        except ValidationError as e:
            raise fail("format", f"malformed entry line: {e}", index=i) from e
        if index != i:
            self._misplaced(i, index)
        if index >= self.header.size:
            raise fail(
                "forged",
                f"expected at most {self.header.size} entries (the ledger "
                f"head), found entry {index} beyond it",
                index=index,
            )
        leaf = leaf_hash(data)
        if committed is None:
            raise fail(
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
            raise fail(
                "malformed-entry",
                "expected a lapor.v1.LedgerEntry, found bytes that do not parse",
                index=i,
            ) from e
        if entry.node_id != self.header.node_id:
            raise fail(
                "foreign-entry",
                f"expected node_id {self.header.node_id!r}, found {entry.node_id!r}",
                index=i,
            )
        self.checks.check(i, entry)
        self.frontier.append(leaf)
        self._due_checkpoints()
        if self.progress is not None and self.frontier.size % 4096 == 0:
            self.progress(self.frontier.size)

    def _misplaced(self, i: int, found: int) -> None:
        """Entry i is not where it should be: look a little further to say why."""
        if found < i:
            raise fail(
                "reordered", f"expected entry {i}, found entry {found} again or late", index=found
            )
        for _ in range(LOOKAHEAD):
            obj = self._next()
            if obj is None:
                break
            if obj.get("type") == "entry" and obj.get("index") == i:
                raise fail(
                    "reordered",
                    f"expected entry {i} here, found entry {found}; "
                    f"entry {i} comes later: entries were swapped or moved",
                    index=i,
                )
        raise fail(
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
                other, other_leaf = read_bytes(obj, "entry"), obj.get("leaf")
            except ValidationError:
                break
            if other_leaf == b64(leaf) or hmac.compare_digest(leaf_hash(other), committed):
                raise fail(
                    "reordered",
                    f"expected the bytes committed at {i}, found those "
                    f"committed at {obj.get('index')}: entries were swapped",
                    index=i,
                )
        raise fail(
            "altered",
            f"expected bytes with leaf hash {committed.hex()} as committed "
            f"when appended, found bytes hashing to {leaf.hex()}",
            index=i,
        )

    # 3. One checkpoint.
    def _checkpoint(self, obj: dict[str, Any]) -> None:
        try:
            size = read_int(obj, "size")
            note = read_str(obj, "note").encode("utf-8")
        except ValidationError as e:
            raise fail("format", f"malformed checkpoint line: {e}") from e
        if size < self.frontier.size:
            raise fail(
                "format",
                f"expected the checkpoint of size {size} right after entry "
                f"{size - 1}, found it after entry {self.frontier.size - 1}",
                checkpoint_size=size,
            )
        if self.pending and size <= self.pending[-1][0]:
            raise fail(
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
            raise fail(
                "checkpoint-signature",
                f"expected a signature by {verifier.name} (key ID {verifier.key_id.hex()}): {e}",
                checkpoint_size=size,
            ) from e
        except ValidationError as e:
            raise fail("format", f"malformed checkpoint note: {e}", checkpoint_size=size) from e
        if cp.origin != self.header.origin or cp.size != size:
            raise fail(
                "checkpoint-order",
                f"expected a checkpoint of {self.header.origin} at "
                f"size {size}, found {cp.origin} at size {cp.size}",
                checkpoint_size=size,
            )
        previous = 0 if self.last_cp is None else self.last_cp.size
        if self.last_cp is not None and cp.size <= self.last_cp.size:
            raise fail(
                "checkpoint-order",
                f"expected a size above {self.last_cp.size}",
                checkpoint_size=size,
            )
        root = self.frontier.root()
        if not hmac.compare_digest(root, cp.root):
            first = previous if previous < size else 0
            raise fail(
                "checkpoint-mismatch",
                f"expected the signed root {cp.root.hex()} at "
                f"size {size}, recomputed {root.hex()}: an entry in {first}..{size - 1} "
                "was changed, inserted or removed",
                index=first,
            )
        trusted_check(None, "checkpoint", self.keys.check_own, size=size)
        self.last_cp = cp
        self.checkpoints += 1

    def _next(self) -> dict[str, Any] | None:
        for raw in self.lines:
            self.line_no += 1
            obj = _parse(raw if isinstance(raw, str) else _text(raw, self.line_no), self.line_no)
            if obj is not None:
                return obj
        return None


def _text(raw: bytes, line_no: int) -> str:
    """A line given as bytes, decoded; AuditFailure if it is not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise fail("format", f"line {line_no} is not UTF-8") from e


def _parse(text: str, line_no: int) -> dict[str, Any] | None:
    """One line as a JSON object, or None for a blank line; AuditFailure if neither."""
    if not text.strip():
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as e:  # RecursionError: arrays nested too deep
        raise fail("format", f"line {line_no} is not JSON") from e
    if not isinstance(obj, dict):
        raise fail("format", f"line {line_no} is not a JSON object")
    return obj


_ENTRY_LEAF = '","leaf":"'


def _entry_prefix(index: int) -> str:
    """How `export_lines` begins the line of entry `index`, up to its base64 bytes."""
    return f'{{"type":"entry","index":{index},"entry":"'
