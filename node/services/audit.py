"""The auditor's use cases on this node: export the ledger, prove an entry's inclusion, and
the reads behind the Audit service (node.federation.audit_service).

Each read runs in one snapshot transaction, so it sees one consistent state and never
blocks the writer. The export holds every stored checkpoint, even one beyond the entries
found: that is how a truncated ledger shows.

The Audit service's reads are read-only (they never sign) and check their arguments
against the ledger's size, raising ValidationError (INVALID_ARGUMENT) for a range outside
it. Streams are served a page at a time, one short read transaction per page: entries
below the ledger size never change (the ledger is insert-only), so pages need no common
snapshot, and a slow reader holds no transaction open.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from sqlalchemy.orm import Session

from node.errors import NotFoundError, ProofError, StateError, ValidationError
from node.ledger.audit import (
    AuditReport,
    ExportHeader,
    export_lines,
    proof_document,
    verify_export,
    vkey_for,
)
from node.ledger.merkle import leaf_hash, verify_inclusion
from node.services import checkpoints, cosigning
from node.services.context import NodeContext
from node.services.trust import ledger_keys
from node.store import queries, tree, witnessed
from node.transparency.tiles import Tile, encode_bundle, tiles_for_size

__all__ = [
    "CHECKPOINT_PAGE",
    "ENTRY_PAGE",
    "AuditHead",
    "ConsistencyProof",
    "ExportSummary",
    "InclusionProof",
    "SignedHead",
    "StoredCheckpoint",
    "TilesSummary",
    "check_checkpoint_range",
    "check_entry_range",
    "checkpoint_body_and_signatures",
    "checkpoints_page",
    "consistency",
    "entries_page",
    "export",
    "head",
    "inclusion",
    "inclusion_proof",
    "tile_data",
    "verify_own",
    "write_tiles",
]

ENTRY_PAGE = 1000
"""Entries read per transaction when streaming a range."""
CHECKPOINT_PAGE = 500
"""Checkpoints read per transaction when streaming them."""


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    entries: int
    checkpoints: int


def export(
    ctx: NodeContext, out: TextIO, *, progress: Callable[[int, int], None] | None = None
) -> ExportSummary:
    """Write this node's ledger in the audit export format (node.ledger.audit) to `out`.

    The export holds the entries exactly as stored (commitments only, no personal data),
    the leaf hash stored when each was appended, every signed checkpoint, the public key
    that started the ledger and the one in force at its head (they differ after `keys
    rotate`), and this node's chain of trust from the national node
    (node.services.trust). `progress(done, total)` is called every 4096 entries.
    """
    with ctx.db.read() as session:
        size, lines = _export_lines(ctx, session)
        n_entries = n_checkpoints = 0
        for line in lines:
            out.write(line)
            if line.startswith('{"type":"entry"'):
                n_entries += 1
                if progress is not None and n_entries % 4096 == 0:
                    progress(n_entries, size)
            elif line.startswith('{"type":"checkpoint"'):
                n_checkpoints += 1
    if progress is not None:
        progress(n_entries, size)
    return ExportSummary(n_entries, n_checkpoints)


def _export_lines(ctx: NodeContext, session: Session) -> tuple[int, Iterator[str]]:
    """The ledger's size and its export's lines, streamed from one snapshot."""
    tree.snapshot(session)
    size = queries.ledger_size(session)
    keys = ledger_keys(session, ctx.signing_key.public.raw, size)
    header = ExportHeader(
        node_id=ctx.node_id,
        vkey=vkey_for(ctx.node_id, keys.first),
        signing_public_key=keys.first,
        size=size,
        exported_at=ctx.clock.now().isoformat(),
        current_vkey=vkey_for(ctx.node_id, keys.current),
        trust_chain=keys.chain.SerializeToString(),
    )
    entries = tree.iter_entries_with_leaves(session, stop=size)
    cps = ((row.size, row.note) for row in tree.iter_checkpoints(session))
    return size, export_lines(header, entries, cosigning.with_cosignatures(session, cps))


def verify_own(ctx: NodeContext) -> AuditReport:
    """Verify this node's own ledger as an auditor would (node.ledger.audit.verify_export),
    against the key in this node's signing key file, before `serve` signs anything over
    it: every entry's signatures, leaves and tree, every stored checkpoint. Raises
    AuditFailure (an IntegrityError) at the first finding: an entry written into the
    database by anything but this node, or a ledger changed after it was committed."""
    trusted = vkey_for(ctx.node_id, ctx.signing_key.public.raw)
    with ctx.db.read() as session:
        _, lines = _export_lines(ctx, session)
        return verify_export(lines, trusted_vkey=trusted)


def inclusion_proof(ctx: NodeContext, index: int) -> dict[str, Any]:
    """The inclusion proof of entry `index` in the latest signed checkpoint, as documented
    JSON (node.ledger.audit.proof_document). Signs a checkpoint first if none covers it."""
    with ctx.db.read() as session:
        size = queries.ledger_size(session)
        if not 0 <= index < size:
            raise NotFoundError(f"expected an entry index in [0, {size}), found {index}")
        covering = tree.checkpoint_covering(session, index)
    if covering is None:
        checkpoints.sign(ctx)
    with ctx.db.read() as session:
        cp = tree.checkpoint_covering(session, index)
        if cp is None:  # pragma: no cover - sign() just covered it
            raise NotFoundError(f"no checkpoint covers entry {index}")
        entry = next(iter(queries.iter_ledger(session, index, index + 1))).entry
        path = tree.inclusion_proof(session, index, cp.size)
        if not hmac.compare_digest(tree.root(session, cp.size), cp.root):
            raise ProofError(
                f"expected the stored tree at size {cp.size} to have the signed "
                "root, found another; the ledger tree was changed"
            )
        verify_inclusion(leaf_hash(entry), index, cp.size, path, cp.root)
        return proof_document(
            origin=checkpoints.origin(ctx),
            index=index,
            size=cp.size,
            entry=entry,
            path=path,
            root=cp.root,
            # cp is the latest checkpoint: served with the cosignatures it gathered, so a
            # tlog-proof made from this document satisfies a witness policy offline.
            note=cosigning.cosigned_checkpoint(session) or cp.note,
        )


# --- the Audit service's reads -----------------------------------------------------------


@dataclass(frozen=True)
class StoredCheckpoint:
    """A checkpoint this node signed, with its note exactly as signed."""

    size: int
    note: bytes
    signed_at: dt.datetime


@dataclass(frozen=True)
class AuditHead:
    """The ledger's size now, the latest checkpoint (if any), this node's vkey, the vkey
    that started its ledger (they differ after a key rotation) and its chain of trust."""

    ledger_size: int
    checkpoint: StoredCheckpoint | None
    vkey: str
    first_vkey: str = ""
    trust_chain: bytes = b""


@dataclass(frozen=True)
class InclusionProof:
    """PATH(index, D[size]) from the stored tree, with the entry and the tree's root; `note`
    is the stored checkpoint of that size, if this node signed one."""

    index: int
    size: int
    entry: bytes
    path: tuple[bytes, ...]
    root: bytes
    note: bytes | None

    @property
    def leaf_hash(self) -> bytes:
        """SHA-256(0x00 || entry): the leaf the path starts from."""
        return leaf_hash(self.entry)


@dataclass(frozen=True)
class ConsistencyProof:
    """PROOF(first, D[second]) from the stored tree, with both roots and the stored
    checkpoints of those sizes, where this node signed them."""

    first: int
    second: int
    proof: tuple[bytes, ...]
    first_root: bytes
    second_root: bytes
    first_note: bytes | None
    second_note: bytes | None


def head(ctx: NodeContext) -> AuditHead:
    """The ledger's size and the latest signed checkpoint, read in one snapshot."""
    with ctx.db.read() as session:
        tree.snapshot(session)
        size = queries.ledger_size(session)
        row = tree.latest_checkpoint(session)
        latest = None if row is None else StoredCheckpoint(row.size, row.note, row.signed_at)
        keys = ledger_keys(session, ctx.signing_key.public.raw, size)
    return AuditHead(
        size,
        latest,
        checkpoints.verifier_key(ctx),
        vkey_for(ctx.node_id, keys.first),
        keys.chain.SerializeToString(),
    )


def check_entry_range(ctx: NodeContext, start: int, end: int) -> None:
    """Entries [start, end) exist: start <= end <= the ledger size; else ValidationError."""
    if start > end:
        raise ValidationError(f"expected start <= end, found start {start} > end {end}")
    with ctx.db.read() as session:
        size = queries.ledger_size(session)
    if end > size:
        raise ValidationError(
            f"expected end at most the ledger size {size}, found {end}; "
            "GetCheckpoint tells the ledger size"
        )


def entries_page(ctx: NodeContext, start: int, stop: int) -> list[tuple[int, bytes, bytes | None]]:
    """(index, entry, stored leaf hash or None) for [start, min(stop, start + ENTRY_PAGE))."""
    with ctx.db.read() as session:
        return tree.entries_with_leaves(session, start, min(stop, start + ENTRY_PAGE))


def check_checkpoint_range(ctx: NodeContext, first: int, last: int) -> None:
    """first <= last <= the ledger size; else ValidationError."""
    if first > last:
        raise ValidationError(
            f"expected first_size <= last_size, found first_size {first} > last_size {last}"
        )
    with ctx.db.read() as session:
        size = queries.ledger_size(session)
    if last > size:
        raise ValidationError(f"expected last_size at most the ledger size {size}, found {last}")


def checkpoints_page(ctx: NodeContext, first: int, last: int) -> list[tuple[int, bytes]]:
    """(size, note) of up to CHECKPOINT_PAGE stored checkpoints with first <= size <= last,
    each with the cosignatures it gathered, as the offline export carries them."""
    with ctx.db.read() as session:
        rows = tree.checkpoints_between(session, first, last, CHECKPOINT_PAGE)
        if not rows:
            return []
        lines = witnessed.cosignature_lines_between(session, rows[0].size, rows[-1].size)
        return [(row.size, row.note + "".join(lines.get(row.size, ())).encode()) for row in rows]


def _size_or_latest(session: Session, size: int, what: str) -> int:
    """`size`, or the latest checkpoint's size when it is 0 (StateError if none is signed)."""
    if size:
        return size
    latest = tree.latest_checkpoint(session)
    if latest is None:
        raise StateError(
            f"{what} 0 means the latest checkpoint, and this node has signed none yet; "
            "ask for an explicit size, or again after its next checkpoint"
        )
    return latest.size


def _note_at(session: Session, size: int) -> bytes | None:
    row = tree.checkpoint_at(session, size)
    return None if row is None else row.note


def inclusion(ctx: NodeContext, index: int, size: int) -> InclusionProof:
    """PATH(index, D[size]) from the stored tree; size 0 means the latest checkpoint's size."""
    with ctx.db.read() as session:
        tree.snapshot(session)
        ledger = queries.ledger_size(session)
        size = _size_or_latest(session, size, "tree_size")
        if size > ledger:
            raise ValidationError(
                f"expected a tree size at most the ledger size {ledger}, found {size}"
            )
        if index >= size:
            raise ValidationError(
                f"expected a leaf index below the tree size {size}, found {index}"
            )
        found = tree.entries_with_leaves(session, index, index + 1)
        if not found:
            raise NotFoundError(f"expected ledger entry {index} in the store, found none")
        return InclusionProof(
            index=index,
            size=size,
            entry=found[0][1],
            path=tuple(tree.inclusion_proof(session, index, size)),
            root=tree.root(session, size),
            note=_note_at(session, size),
        )


def consistency(ctx: NodeContext, first: int, second: int) -> ConsistencyProof:
    """PROOF(first, D[second]) from the stored tree; second 0 means the latest checkpoint's
    size."""
    with ctx.db.read() as session:
        tree.snapshot(session)
        ledger = queries.ledger_size(session)
        second = _size_or_latest(session, second, "second_size")
        if first > second:
            raise ValidationError(
                f"expected first_size <= second_size, found first_size {first} > "
                f"second_size {second}"
            )
        if second > ledger:
            raise ValidationError(
                f"expected second_size at most the ledger size {ledger}, found {second}"
            )
        return ConsistencyProof(
            first=first,
            second=second,
            proof=tuple(tree.consistency_proof(session, first, second)),
            first_root=tree.root(session, first),
            second_root=tree.root(session, second),
            first_note=_note_at(session, first),
            second_note=_note_at(session, second),
        )


# --- the ledger as C2SP tlog-tiles (node.transparency) ----------------------------------


@dataclass(frozen=True)
class SignedHead:
    """The latest signed checkpoint as served at `checkpoint`: its body (the checkpoint
    text) and its signature lines, each ending in a newline."""

    size: int
    body: bytes
    signatures: tuple[bytes, ...]

    @property
    def note(self) -> bytes:
        """The signed note: body, blank line, signature lines (c2sp.org/signed-note)."""
        return self.body + b"\n" + b"".join(self.signatures)


def checkpoint_body_and_signatures(ctx: NodeContext) -> SignedHead | None:
    """The latest signed checkpoint split into body and signature lines (None before the
    first). This is where cosignatures join the served note: a witness's lines for the
    same body are appended to `signatures` here (c2sp.org/tlog-cosignature), and both the
    tiles' `checkpoint` and `audit export --tiles` serve what this returns."""
    with ctx.db.read() as session:
        row = tree.latest_checkpoint(session)
        if row is None:
            return None
        return _signed_head(row.size, cosigning.cosigned_checkpoint(session) or row.note)


def _signed_head(size: int, note: bytes) -> SignedHead:
    cut = note.rfind(b"\n\n")
    if cut < 0:  # pragma: no cover - every stored note was signed by sign_note
        raise ValidationError(f"expected the checkpoint of size {size} as a signed note")
    lines = note[cut + 2 :].splitlines(keepends=True)
    return SignedHead(size, note[: cut + 1], tuple(lines))


def tile_data(ctx: NodeContext, tile: Tile) -> bytes | None:
    """The bytes of a hash tile or entry bundle of the tree at the latest checkpoint, read
    with one range query from the persisted tree (never recomputed); None if that
    checkpoint does not hold the tile (node.transparency.tiles, invariant 2)."""
    with ctx.db.read() as session:
        row = tree.latest_checkpoint(session)
        if row is None or not tile.exists_in(row.size):
            return None
        return _read_tile(session, tile)


def _read_tile(session: Session, tile: Tile) -> bytes:
    start, stop = tile.first_node, tile.first_node + tile.width
    if tile.is_bundle:
        rows = tree.entries_with_leaves(session, start, stop)
        found = [entry for _, entry, _ in rows]
    else:
        found = tree.node_run(session, tile.tree_level, start, stop)
    if len(found) != tile.width:
        raise NotFoundError(
            f"expected {tile.width} stored items for {tile.path()}, found {len(found)}; "
            "the ledger tree is incomplete"
        )
    return encode_bundle(found) if tile.is_bundle else b"".join(found)


@dataclass(frozen=True)
class TilesSummary:
    """What `write_tiles` wrote: the checkpoint's size and the files written or kept."""

    size: int
    written: int
    kept: int


def write_tiles(
    ctx: NodeContext, write: Callable[[str, bytes], None], exists: Callable[[str], bool]
) -> TilesSummary:
    """Write the tree at the latest checkpoint as tlog-tiles files through `write(path,
    data)`: every hash tile and entry bundle, then `checkpoint` last, so a reader of the
    files never finds a checkpoint whose tiles are missing. Full tiles never change, so
    those `exists` reports are kept, not read again (an incremental export). One snapshot;
    one tile in memory at a time."""
    with ctx.db.read() as session:
        tree.snapshot(session)
        row = tree.latest_checkpoint(session)
        if row is None:
            raise StateError(
                "this node has signed no checkpoint yet; run `lapor-node audit checkpoint` first"
            )
        head = _signed_head(row.size, row.note)
        written = kept = 0
        for tile in tiles_for_size(head.size, bundles=True):
            if not tile.is_partial and exists(tile.path()):
                kept += 1
                continue
            write(tile.path(), _read_tile(session, tile))
            written += 1
    write("checkpoint", head.note)
    return TilesSummary(head.size, written + 1, kept)
