"""The auditor's use cases on this node: export the ledger, prove an entry's inclusion.

Both read in one snapshot transaction, so they see one consistent state and never block
the writer. The export holds every stored checkpoint, even one beyond the entries found:
that is how a truncated ledger shows.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from node.errors import NotFoundError, ProofError
from node.ledger.audit import ExportHeader, export_lines, proof_document
from node.ledger.merkle import leaf_hash, verify_inclusion
from node.services import checkpoints
from node.services.context import NodeContext
from node.store import queries, tree

__all__ = ["ExportSummary", "export", "inclusion_proof"]


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
    the leaf hash stored when each was appended, every signed checkpoint, and the public
    key that verifies them. `progress(done, total)` is called every 4096 entries.
    """
    with ctx.db.read() as session:
        tree.snapshot(session)
        size = queries.ledger_size(session)
        header = ExportHeader(
            node_id=ctx.node_id,
            vkey=checkpoints.verifier_key(ctx),
            signing_public_key=ctx.signing_key.public.raw,
            size=size,
            exported_at=ctx.clock.now().isoformat(),
        )
        entries = tree.iter_entries_with_leaves(session, stop=size)
        cps = ((row.size, row.note) for row in tree.iter_checkpoints(session))
        n_entries = n_checkpoints = 0
        for line in export_lines(header, entries, cps):
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
            note=cp.note,
        )
