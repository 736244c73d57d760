"""The audit export format: the header and the lines that `export_lines` writes.

Pure: values in, lines out; no database, no files. Memory stays bounded: `export_lines`
holds one entry and one checkpoint at a time, whatever the ledger's size.

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

Invariants: lines are compact JSON (node.ledger._fields.line), one per line, entries in
index order with no gap, each checkpoint right after the entry that completes it; the
trailer counts what was written. node.ledger.verify reads exactly this format, and its
fast path depends on the entry line's exact shape (`"type"`, `"index"`, `"entry"`,
`"leaf"`, in that order, without spaces): change both together.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from node.ledger._fields import b64, line
from node.ledger.checkpoint import origin_for
from node.ledger.note import format_vkey

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "ExportHeader", "export_lines", "vkey_for"]

EXPORT_FORMAT = "lapor-node/audit-export"
EXPORT_VERSION = 1


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
            "signing_public_key": b64(self.signing_public_key),
            "size": self.size,
            "exported_at": self.exported_at,
            "current_vkey": self.current_vkey or self.vkey,
        }
        if self.trust_chain is not None:
            fields["trust_chain"] = b64(self.trust_chain)
        return line(fields)


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
        yield line(
            {
                "type": "entry",
                "index": index,
                "entry": b64(entry),
                "leaf": None if leaf is None else b64(leaf),
            }
        )
        count += 1
    while pending is not None:
        yield _checkpoint_line(*pending)
        n_checkpoints += 1
        pending = next(cps, None)
    yield line({"type": "end", "entries": count, "checkpoints": n_checkpoints})


def _checkpoint_line(size: int, note: bytes) -> str:
    return line({"type": "checkpoint", "size": size, "note": note.decode("utf-8")})


def vkey_for(node_id: str, public_key: bytes) -> str:
    """The verifier key of a node's signing key under its origin."""
    return format_vkey(origin_for(node_id), public_key)
