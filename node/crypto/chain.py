"""Walking a chain of trust (trust.proto TrustChain): which nodes' keys it reaches from the
node it starts at. Pure: no I/O. The one implementation of the chain's rules, used by a
joining child on its parent's chain (node.crypto.linking.verify_chain, starting at the
chain's first node) and by an auditor from the national node's key
(node.ledger.trust.walk_chain, which also continues the rules over an export's entries).

Steps come in the order they happened; `walk` applies them from the start node and stops
at the first step that breaks a rule, with ChainError naming the step (0-based):
  1. an agreement, signed by both sides (node.crypto.linking.open_agreement), whose
     parent is reached, not cut off, and named with its keys in force (signing key and,
     once known, TLS SHA-256), reaches the child with the keys it names. A node is reached
     once: a second agreement for it is refused;
  2. a rotation, signed by its old and its new key (node.crypto.rotation.open_rotation), of
     a reached node not cut off, whose old key is that node's key in force, reaches the new
     key and TLS certificate, in force from then on (earlier keys stay reached: what they
     signed before stands); replaying a rotation already followed changes nothing;
  3. a revocation of a link the walk holds, signed under the key in force of the side that
     made it (node.crypto.linking.open_revocation), cuts the child side off: from then
     on the child, and every node reached through it, reaches nothing and no step may
     start from it;
  4. an empty step is refused.
Invariants: a walk raises ChainError (an IntegrityError; its cause is the SignatureError
or ValidationError of a step that does not open) or returns what it reached; it never
returns a partly walked chain. The openers of agreements and revocations are passed in
because node.crypto.linking defines them and calls `walk` (importing it here would be
an import circle).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from node._proto.lapor.v1 import trust_pb2
from node.crypto.rotation import open_rotation
from node.crypto.signing import VerifyKey
from node.errors import IntegrityError, NodeError

__all__ = [
    "AgreementOpener",
    "ChainError",
    "ReachedNode",
    "RevocationOpener",
    "TrustError",
    "TrustedKeys",
    "short_key",
    "walk",
    "walk_from_first",
]

AgreementOpener = Callable[[trust_pb2.SignedLinkAgreement], trust_pb2.LinkAgreement]
RevocationOpener = Callable[[trust_pb2.SignedLinkRevocation], trust_pb2.LinkRevocation]


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
            raise TrustError(
                f"{what}: {node_id} is not a node the chain still trusts: it reaches nothing "
                f"any more ({node.cut})"
            )
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
                f"the key rotation of {node_id} does not start from its key in force "
                f"{short_key(node.key)}: it starts from key {short_key(old)} ({why})"
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

    def check_ends_at(self, last: trust_pb2.NodeKeys) -> None:
        """Return if the walk reached `last` with exactly these keys in force (id, signing
        key, TLS certificate) and it still reaches something; else TrustError saying why."""
        node = self.nodes.get(last.node_id)
        if node is None:
            raise TrustError(
                f"the chain of trust does not reach {last.node_id}: it reaches "
                f"{', '.join(sorted(self.nodes))}"
            )
        if node.cut is not None:
            raise TrustError(
                f"the chain of trust ends at {last.node_id}, cut off by a revocation ({node.cut})"
            )
        if not (
            hmac.compare_digest(node.key, last.signing_key)
            and hmac.compare_digest(node.tls_sha256 or b"", last.tls_cert_sha256)
        ):
            raise TrustError(
                f"the chain of trust ends at {last.node_id} with other keys than those it "
                "presented (a rotation missing from the chain, or another node)"
            )

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


def walk(
    steps: Sequence[trust_pb2.TrustStep],
    trusted: TrustedKeys,
    *,
    open_agreement: AgreementOpener,
    open_revocation: RevocationOpener,
) -> TrustedKeys:
    """Apply `steps` (module docstring) to `trusted`, which holds the start node; return it.
    Raises ChainError naming the step at fault."""
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
    return trusted


def walk_from_first(
    steps: Sequence[trust_pb2.TrustStep],
    *,
    open_agreement: AgreementOpener,
    open_revocation: RevocationOpener,
) -> TrustedKeys:
    """Walk `steps` from the chain's own first node: the parent of its first agreement, with
    the keys that agreement names, or the node of its first rotation, from its old key.
    What this proves rests on the reader's trust in that node (a joining child trusts its
    parent's token). An empty chain reaches nothing. Raises ChainError naming the step."""
    if not steps:
        return TrustedKeys("")
    first = steps[0]
    kind = first.WhichOneof("kind")
    how = "the first node of the chain"
    try:
        if kind == "agreement":
            parent = open_agreement(first.agreement).parent
            start = ReachedNode(
                parent.node_id,
                [bytes(parent.signing_key)],
                bytes(parent.tls_cert_sha256),
                None,
                how,
            )
        elif kind == "rotation":
            rotation = open_rotation(first.rotation)
            start = ReachedNode(
                rotation.node_id, [bytes(rotation.old_signing_key)], None, None, how
            )
        elif kind is None:
            raise TrustError("it is an empty step")
        else:
            raise TrustError(
                f"a chain starts with an agreement or a rotation of its first node, not a {kind}"
            )
    except NodeError as e:
        raise ChainError(f"chain step 0 ({kind or 'empty'}): {e}", 0) from e
    trusted = TrustedKeys(start.node_id, {start.node_id: start})
    return walk(steps, trusted, open_agreement=open_agreement, open_revocation=open_revocation)
