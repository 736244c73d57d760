"""Chains of trust from the national node's key, for an auditor. Pure: no I/O.

An auditor trusts one key, the national node's (its C2SP vkey, `lapor-node identity show`).
`walk_chain` walks a chain (trust.proto TrustChain) from that key by the rules of the one
chain-of-trust implementation, node.crypto.chain (agreements reach children, rotations
reach new keys, revocations cut off; ChainError names the step that breaks one), which a
joining child also runs on its parent's chain (node.crypto.linking.verify_chain). What
this module adds is the anchor:
  1. the national node is reached with the vkey's key. If the chain holds rotations of the
     national node that lead up to that key, the walk starts from the first of their old
     keys: each was handed over, under both keys, towards the trusted one, so a vkey read
     after a rotation still reaches what was signed before it;
  2. with `reach`, the walk must reach that node's key (any key it reached), not cut off.
`TrustedKeys` is the walk's result, and the ledger verifier (node.ledger.verify) goes on
applying the rules to the entries of the exported ledger (agreements with children, their
rotations, revocations) with `reach_child`, `rotate` and `cut`, keeping the keys in force
entry by entry in `KeysInForce`, and asks `check` about every signature it verifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import trust_pb2
from node.crypto.chain import ChainError, ReachedNode, TrustedKeys, TrustError, short_key, walk
from node.crypto.linking import open_agreement, open_revocation
from node.crypto.signing import VerifyKey
from node.ledger.checkpoint import ORIGIN_PREFIX
from node.ledger.note import parse_vkey

__all__ = [
    "ChainError",
    "KeysInForce",
    "ReachedNode",
    "TrustError",
    "TrustedKeys",
    "anchor_from_vkey",
    "short_key",
    "walk_chain",
]


def anchor_from_vkey(vkey: str) -> tuple[str, bytes]:
    """(node id, public key) of a C2SP verifier key of a lapor-node origin; ValidationError
    (via parse_vkey) or TrustError if it is not one."""
    verifier = parse_vkey(vkey)
    if not verifier.name.startswith(ORIGIN_PREFIX):
        raise TrustError(
            f"expected the verifier key of a lapor-node origin (lapor-node/<node id>), "
            f"found one named {verifier.name!r}"
        )
    return verifier.name[len(ORIGIN_PREFIX) :], verifier.public_key


def walk_chain(
    steps: Sequence[trust_pb2.TrustStep],
    trusted_vkey: str,
    *,
    reach: tuple[str, bytes] | None = None,
) -> TrustedKeys:
    """Walk `steps` from the node of `trusted_vkey` (module docstring); return what they
    reach. With `reach` = (node id, key), the walk must reach that key of that node, not
    cut off. Raises ChainError naming the step at fault."""
    anchor_id, anchor_key = anchor_from_vkey(trusted_vkey)
    trusted = TrustedKeys(anchor_id)
    start = _anchor_start(steps, anchor_id, anchor_key)
    trusted.nodes[anchor_id] = ReachedNode(
        anchor_id, [start], None, None, f"the trusted key of {anchor_id}"
    )
    walk(steps, trusted, open_agreement=open_agreement, open_revocation=open_revocation)
    if reach is not None:
        node_id, key = reach
        try:
            trusted.check(node_id, key)
        except TrustError as e:
            ends = trusted.path(node_id) or _ends(trusted)
            raise ChainError(
                f"the chain of trust from {anchor_id} does not end at {node_id} with the "
                f"key it signs with: {e} (the chain reaches {' -> '.join(ends)})",
                None,
            ) from e
    return trusted


def _ends(trusted: TrustedKeys) -> tuple[str, ...]:
    """The longest path the walk reached, to say where a chain that falls short ends."""
    return max((trusted.path(n) for n in trusted.nodes), key=len, default=(trusted.anchor,))


def _anchor_start(steps: Sequence[trust_pb2.TrustStep], anchor_id: str, key: bytes) -> bytes:
    """Rule 1: the first key of the anchor's rotations in the chain that lead up to `key`
    (read unverified here; the walk verifies each of them in its turn)."""
    back: dict[bytes, bytes] = {}
    for step in steps:
        if step.WhichOneof("kind") != "rotation":
            continue
        try:
            rotation = trust_pb2.KeyRotation.FromString(step.rotation.rotation)
        except DecodeError:
            continue  # the walk reports it at its step
        if rotation.node_id == anchor_id:
            back.setdefault(bytes(rotation.new_signing_key), bytes(rotation.old_signing_key))
    start, seen = key, {key}
    while start in back and back[start] not in seen:
        start = back[start]
        seen.add(start)
    return start


@dataclass
class KeysInForce:
    """The signing keys in force as an export's entries are read in order
    (node.ledger.verify): this node's (the header's first key, switched at each KeyRotated
    entry), each linked peer's (pinned by LinkAgreed or LinkEstablished, switched at each
    PeerKeyRotated entry; a peer's earlier keys still sign what it sent before its rotation
    arrived), and, with `trusted`, what the chain of trust reaches.

    Invariant: `own[k]` = (index of the KeyRotated entry that made it, -1 for the first
    key; the key), in ledger order. Entry j's own key is the last one made at an index
    below j; a checkpoint of size s is signed by entry s - 1's own key (so the old key
    signs the checkpoint that covers its own hand-over).
    """

    me: str
    own: list[tuple[int, VerifyKey]]
    trusted: TrustedKeys | None = None
    peers: dict[str, list[VerifyKey]] = field(default_factory=dict)
    hand_links: dict[str, int] = field(default_factory=dict)
    revoked: dict[str, int] = field(default_factory=dict)
    own_cut: tuple[int, str] | None = None

    @property
    def own_key(self) -> VerifyKey:
        """This node's key in force for the entry being read."""
        return self.own[-1][1]

    def own_key_at(self, index: int) -> VerifyKey:
        """This node's key in force at entry `index` (-1: before any entry)."""
        key = self.own[0][1]
        for made_at, later in self.own:
            if made_at >= index:
                break
            key = later
        return key

    def rotate_own(self, index: int, new: VerifyKey) -> None:
        self.own.append((index, new))

    def pin(self, peer: str, key: VerifyKey) -> None:
        """A link entry pins `peer` with `key` (its keys before, if any, are forgotten)."""
        self.peers[peer] = [key]
        self.revoked.pop(peer, None)

    def peer_key(self, peer: str, key_id: bytes) -> VerifyKey | None:
        """The key of `peer` with `key_id` among those pinned so far, else the one in
        force; None if `peer` is not linked."""
        keys = self.peers.get(peer)
        if not keys:
            return None
        return next((k for k in reversed(keys) if k.key_id == key_id), keys[-1])

    def unknown_peer(self, peer: str) -> str:
        """Why `peer` has no key here, for a finding."""
        if peer in self.revoked:
            return f"its link was revoked by entry {self.revoked[peer]}"
        return "never linked before this entry"

    def check_own(self, *, index: int | None = None, size: int | None = None) -> None:
        """With `trusted`: TrustError if this node's link to its parent was revoked before
        the signature at entry `index` (or on the checkpoint of `size`) was made."""
        if self.trusted is None or self.own_cut is None:
            return
        cut_at, why = self.own_cut
        if (index is not None and index > cut_at) or (size is not None and size > cut_at + 1):
            raise TrustError(
                f"{self.me}'s key {short_key(self.own_key.raw)} reaches nothing: {why}"
            )

    def check_peer(self, peer: str, key: VerifyKey) -> None:
        """With `trusted`: TrustError unless the chain of trust (or this ledger's agreements
        with children, and the rotations after them) reaches `key` of `peer`."""
        if self.trusted is None:
            return
        try:
            self.trusted.check(peer, key.raw)
        except TrustError as e:
            if peer in self.hand_links and (
                self.trusted.node(peer) is None or key.raw not in self.trusted.nodes[peer].keys
            ):
                raise TrustError(
                    f"{e}: its link was made by hand (link add, entry "
                    f"{self.hand_links[peer]}), and a link made by hand reaches nothing"
                ) from e
            raise
