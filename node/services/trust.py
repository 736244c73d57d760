"""This node's chain of trust and signing keys, read from its own ledger.

The chain (trust.proto TrustChain) is what an auditor holding only the national node's key
walks (node.ledger.trust) to reach this node's keys, and what a parent hands a child that
joins it (node.services.invites). Built from this node's ledger, in ledger order:
  1. the `parent_chain` of the LinkAgreed entry that made its link to its parent (the
     link row's `agreement_entry`: the chain its parent handed it at join, national ->
     ... -> parent, with their rotations and revocations), then that agreement itself;
  2. every KeyRotated entry of this node after the join, and every PeerKeyRotated entry of
     its parent (rotations it learnt), interleaved as they were recorded. Its own
     rotations before the join are left out: the agreement names the key in force then;
  3. a node with no LinkAgreed as child (the national node, or one linked to its parent by
     hand) has a chain of its own rotations only.
Its own LinkRevoked entries are not steps: an export carries them as entries, where the
verifier sees exactly which signatures came after them; a parent whose link to its own
parent is revoked hands joining children an empty chain, as one linked by hand.

The ledger's keys (`ledger_keys`): the signing key that started the ledger is the old key
of its first KeyRotated entry (or the key in force, if it never rotated); the key in force
at the head is the new key of the last. Both read only the entries of the kinds above:
record_many names each in ledger_trust_entries as it appends it (migration 0010 named
those of older ledgers), so neither reads the rest of the ledger, which the checkpoint
signer (every minute) and the Audit service's GetCheckpoint would otherwise read whole
(docs/decisions/0015-trust-entries-indexed.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from node._proto.lapor.v1 import ledger_pb2, trust_pb2
from node.crypto.linking import open_agreement
from node.store import queries

__all__ = ["TRUST_KINDS", "LedgerKeys", "chain_of_trust", "ledger_keys"]

TRUST_KINDS = frozenset({"link_agreed", "key_rotated", "peer_key_rotated", "history_discontinued"})
"""The LedgerEntry kinds the chain of trust and the ledger's keys are read from."""


@dataclass(frozen=True)
class LedgerKeys:
    """The signing key that started the ledger, the one in force at its head, and the
    chain of trust to export with it."""

    first: bytes
    current: bytes
    chain: trust_pb2.TrustChain


def _trust_entries(
    session: Session, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, ledger_pb2.LedgerEntry]]:
    """(index, entry) of the entries of a trust kind in [start, stop), in index order."""
    for idx, data in queries.trust_entries(session, start, stop):
        entry = ledger_pb2.LedgerEntry.FromString(data)
        if entry.WhichOneof("kind") in TRUST_KINDS:
            yield idx, entry


def _build(session: Session, stop: int | None) -> tuple[trust_pb2.TrustChain, bytes, bytes]:
    """(chain, first key, last key) from entries [0, stop); the keys are b"" if the
    ledger records no rotation of this node."""
    joined = _join_entry(session)
    prefix: list[trust_pb2.TrustStep] = []
    after: list[trust_pb2.TrustStep] = []
    parent: str | None = None
    seen: set[bytes] = set()  # rotations already steps (one fetched again is not repeated)
    first = last = b""
    for index, entry in _trust_entries(session, 0, stop):
        kind = entry.WhichOneof("kind")
        if kind == "link_agreed":
            if index != joined:
                continue  # an agreement with a child: not on the path up
            parent = open_agreement(entry.link_agreed.agreement).parent.node_id
            prefix = [*entry.link_agreed.parent_chain.steps, trust_pb2.TrustStep()]
            seen = {bytes(step.rotation.rotation) for step in prefix if step.HasField("rotation")}
            prefix[-1].agreement.CopyFrom(entry.link_agreed.agreement)
            # Own rotations before this join are not steps: the agreement names the key.
            after = []
        elif kind in ("key_rotated", "history_discontinued"):  # the latter: ADR 0023
            rotation = (
                entry.key_rotated.rotation
                if kind == "key_rotated"
                else entry.history_discontinued.rotation
            )
            opened = trust_pb2.KeyRotation.FromString(rotation.rotation)
            first = first or bytes(opened.old_signing_key)
            last = bytes(opened.new_signing_key)
            seen.add(bytes(rotation.rotation))
            step = trust_pb2.TrustStep()
            step.rotation.CopyFrom(rotation)
            after.append(step)
        elif kind == "peer_key_rotated" and parent is not None:
            rotation = entry.peer_key_rotated.rotation
            opened = trust_pb2.KeyRotation.FromString(rotation.rotation)
            if opened.node_id == parent and bytes(rotation.rotation) not in seen:
                seen.add(bytes(rotation.rotation))
                step = trust_pb2.TrustStep()
                step.rotation.CopyFrom(rotation)
                after.append(step)
    chain = trust_pb2.TrustChain()
    chain.steps.extend([*prefix, *after])
    return chain, first, last


def _join_entry(session: Session) -> int | None:
    """The index of the LinkAgreed entry that made this node's link to its parent (the
    latest, if it left one parent and joined another); None if it joined none."""
    made = [
        link.agreement_entry
        for link in queries.list_links(session)
        if link.role == "parent" and link.agreement_entry is not None
    ]
    return max(made, default=None)


def chain_of_trust(session: Session) -> trust_pb2.TrustChain:
    """The chain a parent hands a joining child: empty if this node's link to its parent
    is revoked (or it has none), else built as in the module docstring."""
    parents = [link for link in queries.list_links(session) if link.role == "parent"]
    if parents and all(link.revoked_at is not None for link in parents):
        return trust_pb2.TrustChain()
    return _build(session, None)[0]


def ledger_keys(session: Session, key_in_force: bytes, size: int) -> LedgerKeys:
    """The keys and chain of entries [0, size) (module docstring); `key_in_force` stands
    for both keys when the ledger records no rotation."""
    chain, first, last = _build(session, size)
    return LedgerKeys(first or key_in_force, last or key_in_force, chain)
