"""Chains of trust: which nodes' keys the national node's key reaches. Pure: no I/O.

An auditor trusts one key, the national node's (its C2SP vkey, `lapor-node identity show`).
A chain (trust.proto TrustChain) lists signed steps in the order they happened; walking it
from that key (`walk_chain`) follows these rules, and stops at the first step that breaks
one with ChainError naming the step (0-based):
  1. the anchor: the national node is reached with the vkey's key. If the chain holds
     rotations of the national node that lead up to that key, the walk starts from the
     first of their old keys: each was handed over, under both keys, towards the trusted
     one, so a vkey read after a rotation still reaches what was signed before it;
  2. an agreement, signed by both sides (node.crypto.enrollment.open_agreement), whose
     parent is reached, not cut off, and named with its keys in force (signing key and,
     once known, TLS SHA-256), reaches the child with the keys it names. A node is reached
     once: a second agreement for it is refused;
  3. a rotation, signed by its old and its new key (node.crypto.rotation.open_rotation), of
     a reached node not cut off, whose old key is that node's key in force, reaches the new
     key, in force from then on (earlier keys stay reached: what they signed before stands);
  4. a revocation, signed under the key in force of the side that made it
     (node.crypto.enrollment.open_revocation), cuts the child side off: from then on the
     child, and every node reached through it, reaches nothing and no step may start
     from it.
`TrustedKeys` is the walk's result, and the ledger verifier (node.ledger.verify) goes on
applying rules 2-4 to the entries of the exported ledger (agreements with children, their
rotations, revocations) with `reach_child`, `rotate` and `cut`, and asks `check` about
every signature it verifies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import trust_pb2
from node.crypto.enrollment import open_agreement, open_revocation
from node.crypto.rotation import open_rotation
from node.crypto.signing import VerifyKey
from node.errors import IntegrityError, NodeError
from node.ledger.checkpoint import ORIGIN_PREFIX
from node.ledger.note import parse_vkey

__all__ = [
    "ChainError",
    "ReachedNode",
    "TrustError",
    "TrustedKeys",
    "anchor_from_vkey",
    "short_key",
    "walk_chain",
]


class TrustError(IntegrityError):
    """A key, or a step, is not reached by the chain of trust from the trusted key."""


class ChainError(TrustError):
    """A step of a chain of trust breaks the rules (module docstring); `step` is its
    0-based position in the chain, or None when the chain as a whole falls short."""

    def __init__(self, message: str, step: int | None) -> None:
        super().__init__(message)
        self.step = step


def short_key(key: bytes) -> str:
    """A signing key as people compare it: the first 16 hex digits of its key id."""
    return VerifyKey(key).key_id.hex()[:16] if len(key) == 32 else key.hex()[:16]


@dataclass
class ReachedNode:
    """A node the walk reached: its signing keys in the order reached (the last one in
    force), its TLS certificate's SHA-256 in force (None until a step names it), its parent
    in the walk, how it was reached, and why it reaches nothing any more (None: it does)."""

    node_id: str
    keys: list[bytes]
    tls_sha256: bytes | None
    parent: str | None
    how: str
    cut: str | None = None

    @property
    def key(self) -> bytes:
        return self.keys[-1]


@dataclass
class TrustedKeys:
    """The nodes and keys reached from the anchor (the national node) so far."""

    anchor: str
    nodes: dict[str, ReachedNode] = field(default_factory=dict)

    def node(self, node_id: str) -> ReachedNode | None:
        return self.nodes.get(node_id)

    def path(self, node_id: str) -> tuple[str, ...]:
        """The node ids from the anchor down to `node_id` (empty if it is not reached)."""
        out: list[str] = []
        current = self.nodes.get(node_id)
        while current is not None and len(out) <= len(self.nodes):
            out.append(current.node_id)
            current = None if current.parent is None else self.nodes.get(current.parent)
        return tuple(reversed(out))

    def _live(self, node_id: str, what: str) -> ReachedNode:
        """The reached node `node_id`, not cut off; TrustError otherwise."""
        node = self.nodes.get(node_id)
        if node is None:
            raise TrustError(
                f"{what}: {node_id} is not reached by the chain of trust from {self.anchor}"
            )
        if node.cut is not None:
            raise TrustError(f"{what}: {node_id} reaches nothing any more ({node.cut})")
        return node

    def reach_child(
        self,
        parent_id: str,
        parent: trust_pb2.NodeKeys,
        child: trust_pb2.NodeKeys,
        how: str,
        *,
        in_force: bool = True,
    ) -> None:
        """Rule 2 for an agreement already opened: `parent` (as the agreement names it) must
        be reached with its keys in force; the child is reached with the keys it names.
        With `in_force` False (an agreement in a ledger, whose own entries say which key
        was in force when) any reached key of the parent will do."""
        node = self._live(parent_id, f"the agreement of {parent_id} with {child.node_id}")
        reached = parent.signing_key == node.key or (
            not in_force and parent.signing_key in node.keys
        )
        if not reached:
            raise TrustError(
                f"the agreement of {parent_id} with {child.node_id} names {parent_id}'s key "
                f"{short_key(parent.signing_key)}, and the key in force is "
                f"{short_key(node.key)}"
                + (
                    " (it was replaced by a rotation before)"
                    if parent.signing_key in node.keys
                    else f": not reached by the chain of trust from {self.anchor}"
                )
            )
        if in_force and node.tls_sha256 is not None and parent.tls_cert_sha256 != node.tls_sha256:
            raise TrustError(
                f"the agreement of {parent_id} with {child.node_id} names a TLS certificate "
                f"of {parent_id} other than the one in force"
            )
        known = self.nodes.get(child.node_id)
        if known is not None:
            raise TrustError(
                f"the agreement of {parent_id} with {child.node_id}: {child.node_id} was "
                f"reached before ({known.how}); a node links to one parent, once"
            )
        VerifyKey(child.signing_key)  # 32 bytes, or ValidationError
        self.nodes[child.node_id] = ReachedNode(
            child.node_id, [bytes(child.signing_key)], bytes(child.tls_cert_sha256), parent_id, how
        )

    def rotate(self, rotation: trust_pb2.KeyRotation, how: str) -> None:
        """Rule 3 for a rotation already opened: its old key must be the node's key in
        force. Replaying a rotation already followed (its new key reached, its old one
        before it) changes nothing."""
        node_id = rotation.node_id
        node = self._live(node_id, f"the key rotation of {node_id}")
        old, new = bytes(rotation.old_signing_key), bytes(rotation.new_signing_key)
        if new in node.keys and old in node.keys and node.keys.index(old) < node.keys.index(new):
            return
        if old != node.key:
            why = (
                "it was replaced before"
                if old in node.keys
                else f"the chain of trust from {self.anchor} does not reach it"
            )
            raise TrustError(
                f"the key rotation of {node_id} starts from key {short_key(old)}, and "
                f"{node_id}'s key in force is {short_key(node.key)} ({why})"
            )
        if new in node.keys:
            raise TrustError(f"the key rotation of {node_id} goes back to a key it had before")
        node.keys.append(new)
        node.tls_sha256 = bytes(rotation.new_tls_cert_sha256)

    def revoke(self, revocation: trust_pb2.LinkRevocation, how: str) -> None:
        """Rule 4 for a revocation already opened: signed under the key in force of the side
        that made it; cuts the child side, and all reached through it, off."""
        parent_id, child_id = revocation.parent_id, revocation.child_id
        by = revocation.revoked_by or parent_id
        signer_key = (
            revocation.parent_signing_key if by == parent_id else revocation.child_signing_key
        )
        what = f"the revocation of the link {parent_id} -> {child_id}"
        signer = self._live(by, what)
        if signer_key != signer.key:
            raise TrustError(
                f"{what} is signed by {by}'s key {short_key(signer_key)}, not its key in "
                f"force {short_key(signer.key)}"
            )
        child = self.nodes.get(child_id)
        if child is None or child.parent != parent_id:
            raise TrustError(f"{what}: the chain of trust holds no such link")
        self.cut(child_id, how)

    def cut(self, node_id: str, why: str) -> None:
        """`node_id`, and every node reached through it, reach nothing from now on."""
        cut = {node_id}
        changed = True
        while changed:
            changed = False
            for node in self.nodes.values():
                if node.node_id not in cut and node.parent in cut:
                    cut.add(node.node_id)
                    changed = True
        for name in cut:
            reached = self.nodes.get(name)
            if reached is not None and reached.cut is None:
                reached.cut = why if name == node_id else f"{why}, which cut off {node_id}"

    def check(self, node_id: str, key: bytes) -> None:
        """Return if `key` is a key of `node_id` the walk reached and the node still reaches
        something; else TrustError saying why."""
        node = self.nodes.get(node_id)
        if node is None or key not in node.keys:
            raise TrustError(
                f"{node_id}'s key {short_key(key)} is not reached by the chain of trust "
                f"from {self.anchor}"
            )
        if node.cut is not None:
            raise TrustError(f"{node_id}'s key {short_key(key)} reaches nothing: {node.cut}")


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
    for n, step in enumerate(steps):
        kind = step.WhichOneof("kind")
        where = f"chain step {n}"
        try:
            if kind == "agreement":
                agreement = open_agreement(step.agreement)
                trusted.reach_child(
                    agreement.parent.node_id,
                    agreement.parent,
                    agreement.child,
                    f"{where} (the agreement of {agreement.parent.node_id} with "
                    f"{agreement.child.node_id})",
                )
            elif kind == "rotation":
                trusted.rotate(open_rotation(step.rotation), where)
            elif kind == "revocation":
                revocation = open_revocation(step.revocation)
                trusted.revoke(
                    revocation,
                    f"its link with {revocation.parent_id} was revoked by "
                    f"{revocation.revoked_by or revocation.parent_id} at {where}",
                )
            else:
                raise TrustError("it is an empty step")
        except NodeError as e:
            raise ChainError(f"{where} ({kind or 'empty'}): {e}", n) from e
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
