"""The checks a ledger entry gets for its kind, beyond parsing (step 2 of node.ledger.verify).

Pure. `EntryChecks` holds the node's id and its KeysInForce (node.ledger.trust), and each
check reads and updates those keys only: it pins a peer's key (LinkEstablished, LinkAgreed),
unpins it (LinkRevoked), switches this node's key in force (KeyRotated, and
HistoryDiscontinued, which also ends a lost history: node.ledger.discontinuity) or adds a
peer's new key (PeerKeyRotated), and verifies the signatures an entry embeds under the keys in
force at that entry. Under `trust` each signing key must also be one the chain of trust
reached and no revocation cut off.

Invariants: a check raises AuditFailure (node.ledger.findings) naming entry i, or returns
having changed the keys exactly as the entry records; `by_kind` is the only table of
checks, so the verifier's two parse paths (node.ledger.verify) apply the same ones.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError

from node._proto.lapor.v1 import envelope_pb2, ledger_pb2, trust_pb2
from node.crypto.linking import open_agreement, open_revocation
from node.crypto.rotation import open_rotation
from node.crypto.signing import VerifyKey
from node.envelopes import open_envelope
from node.errors import NodeError, ProofError, SignatureError, ValidationError
from node.ids import NodeId
from node.ledger.checkpoint import origin_for
from node.ledger.discontinuity import Discontinuity, open_discontinuity
from node.ledger.findings import fail
from node.ledger.merkle import verify_consistency
from node.ledger.note import Verifier, open_checkpoint
from node.ledger.trust import KeysInForce, TrustError, short_key

__all__ = ["EntryChecks", "trusted_check"]

Check = Callable[[int, ledger_pb2.LedgerEntry], None]


class EntryChecks:
    """The per-kind checks of one node's ledger, over the keys in force as it is read."""

    def __init__(
        self, node_id: str, keys: KeysInForce, root: Callable[[], bytes] | None = None
    ) -> None:
        self.node_id, self.keys = node_id, keys
        self.root = root
        """The recomputed root of the entries before the one being checked; the verifier
        gives it (and checks history_discontinued entries on its general path only)."""
        self.discontinuities: list[tuple[int, Discontinuity]] = []
        """The explained gaps met so far: (entry index, statement)."""
        self.by_kind: dict[str, Check] = {
            "link_established": self._link_established,
            "referral_sent": self._envelope_sent,
            "referral_received": self._envelope_received,
            "receipt_received": self._envelope_received,
            "status_update_sent": self._envelope_sent,
            "status_update_received": self._envelope_received,
            "reply_sent": self._envelope_sent,
            "reply_received": self._envelope_received,
            "sealed_identity_sent": self._envelope_sent,
            "sealed_identity_received": self._envelope_received,
            "link_agreed": self._link_agreed,
            "link_revoked": self._link_revoked,
            "key_rotated": self._key_rotated,
            "peer_key_rotated": self._peer_key_rotated,
            "history_discontinued": self._history_discontinued,
            "peer_fork_detected": self._peer_fork_detected,
        }
        """The checks an entry of each kind gets beyond parsing, by kind; the others get
        none. Both parse paths of the verifier read this table."""

    def check(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """The checks of entry i's kind: the one of `by_kind`, if it has one."""
        kind = entry.WhichOneof("kind")
        if kind is None:
            raise fail("malformed-entry", "expected one entry kind, found none", index=i)
        check = self.by_kind.get(kind)
        if check is not None:
            check(i, entry)

    def _link_established(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """A link made by hand: pins the peer's key. It reaches nothing under `trust`."""
        link = entry.link_established
        try:
            self.keys.pin(link.peer_id, VerifyKey(link.peer_signing_key))
        except ValidationError as e:
            raise fail("malformed-entry", f"link to {link.peer_id!r}: {e}", index=i) from e
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
            signer=NodeId(self.node_id),
            key=self.keys.own_key,
            recipient=recipient,
            whose="this node's key in force",
        )
        trusted_check(i, kind, self.keys.check_own, index=i)
        if recipient not in self.keys.peers:
            raise fail(
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
            raise fail(
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
            recipient=NodeId(self.node_id),
            whose=f"{signed.signer}'s key from its link entry",
        )
        trusted_check(i, str(kind), self.keys.check_peer, signed.signer, key)

    def _link_agreed(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """A link agreement signed by both sides, naming this node with its key in force:
        the peer's key from it. Under `trust`, an agreement with a child reaches the
        child's keys; one with the parent must name the parent's keys the chain reached."""
        me = self.node_id
        try:
            agreement = open_agreement(entry.link_agreed.agreement)
        except SignatureError as e:
            raise fail("bad-signature", f"link agreement: {e}", index=i) from e
        except ValidationError as e:
            raise fail("malformed-entry", f"link agreement: {e}", index=i) from e
        if agreement.parent.node_id == me:
            own, peer = agreement.parent, agreement.child
        elif agreement.child.node_id == me:
            own, peer = agreement.child, agreement.parent
        else:
            raise fail(
                "foreign-entry",
                f"expected a link agreement naming {me}, found one between "
                f"{agreement.parent.node_id} and {agreement.child.node_id}",
                index=i,
            )
        if not hmac.compare_digest(own.signing_key, self.keys.own_key.raw):
            raise fail(
                "bad-signature",
                "expected the agreement to name this node's key in force, found another",
                index=i,
            )
        self.keys.pin(peer.node_id, VerifyKey(peer.signing_key))
        trusted = self.keys.trusted
        if trusted is None:
            return
        if own is agreement.parent:
            trusted_check(i, "link_agreed", self.keys.check_own, index=i)
            trusted_check(
                i, "link_agreed", trusted.reach_child, me, own, peer, f"entry {i}", in_force=False
            )
        else:
            trusted_check(
                i, "link_agreed", self.keys.check_peer, peer.node_id, VerifyKey(peer.signing_key)
            )

    def _link_revoked(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """A revocation signed by the node that made it, naming this node (with its key in
        force, if this node made it); the peer's key speaks for nothing after it. Under
        `trust` the peer's side is cut off: a child and all below it, or, when this node
        left its parent, this node itself for every signature after this entry."""
        me = self.node_id
        try:
            revocation = open_revocation(entry.link_revoked.revocation)
        except SignatureError as e:
            raise fail("bad-signature", f"link revocation: {e}", index=i) from e
        except ValidationError as e:
            raise fail("malformed-entry", f"link revocation: {e}", index=i) from e
        if me not in (revocation.parent_id, revocation.child_id):
            raise fail(
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
            raise fail(
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
            trusted_check(i, "link_revoked", self.keys.check_own, index=i)
            self.keys.own_cut = (i, f"its link to {peer} was revoked by entry {i}")
            trusted.cut(me, why)
        else:
            trusted.cut(peer, why)

    def _key_rotated(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """This node's rotation, signed by both keys, from its key in force: from the next
        entry on (and for checkpoints of size above i + 1) the new key is in force."""
        rotation = self._rotation(i, entry.key_rotated.rotation)
        me = self.node_id
        if rotation.node_id != me:
            raise fail(
                "foreign-entry",
                f"expected a key rotation of {me}, found one of {rotation.node_id}",
                index=i,
            )
        if not hmac.compare_digest(rotation.old_signing_key, self.keys.own_key.raw):
            raise fail(
                "bad-signature",
                f"expected a rotation from this node's key in force "
                f"{short_key(self.keys.own_key.raw)}, found one from key "
                f"{short_key(rotation.old_signing_key)}",
                index=i,
            )
        self.keys.rotate_own(i, VerifyKey(rotation.new_signing_key))
        if self.keys.trusted is not None:
            trusted_check(i, "key_rotated", self.keys.check_own, index=i)
            trusted_check(i, "key_rotated", self.keys.trusted.rotate, rotation, f"entry {i}")

    def _history_discontinued(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """This node lost the end of its ledger (node.ledger.discontinuity): the statement
        is signed by its key in force and restarts exactly here (size i, the recomputed
        root); the new key is in force from the next entry on and for checkpoints of size
        above i, so the old key signs nothing of the history that follows."""
        signed = entry.history_discontinued.rotation
        try:
            stated = open_discontinuity(signed)
        except SignatureError as e:
            raise fail("bad-signature", f"discontinuity: {e}", index=i) from e
        except ValidationError as e:
            raise fail("malformed-entry", f"discontinuity: {e}", index=i) from e
        if stated.node_id != self.node_id:
            raise fail(
                "foreign-entry",
                f"expected a discontinuity of {self.node_id}, found one of {stated.node_id}",
                index=i,
            )
        if not hmac.compare_digest(stated.old_key, self.keys.own_key.raw):
            raise fail(
                "bad-signature",
                f"expected a discontinuity signed by this node's key in force "
                f"{short_key(self.keys.own_key.raw)}, found one by key "
                f"{short_key(stated.old_key)}",
                index=i,
            )
        root = b"" if self.root is None else self.root()
        if stated.restart_size != i or not hmac.compare_digest(stated.restart_root, root):
            raise fail(
                "malformed-entry",
                f"expected a discontinuity that restarts at size {i} with root {root.hex()} "
                f"(recomputed), found one that states size {stated.restart_size} with root "
                f"{stated.restart_root.hex()}",
                index=i,
            )
        if self.keys.trusted is not None:
            trusted_check(i, "history_discontinued", self.keys.check_own, index=i)
            trusted_check(
                i,
                "history_discontinued",
                self.keys.trusted.rotate,
                open_rotation(signed),
                f"entry {i}",
            )
        # Checkpoints of size i + 1 on are the new key's: own_key_at(i) is the new key.
        self.keys.rotate_own(i - 1, VerifyKey(stated.new_key))
        self.discontinuities.append((i, stated))

    def _peer_key_rotated(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """A linked peer's rotation, signed by both keys, from the key pinned for it: the
        new key is pinned beside the earlier ones."""
        rotation = self._rotation(i, entry.peer_key_rotated.rotation)
        peer = rotation.node_id
        keys = self.keys.peers.get(peer)
        if not keys:
            raise fail(
                "unknown-peer",
                f"expected a key rotation of a linked peer, found one of {peer!r}, "
                f"{self.keys.unknown_peer(peer)}",
                index=i,
            )
        if not hmac.compare_digest(rotation.old_signing_key, keys[-1].raw):
            raise fail(
                "bad-signature",
                f"expected a rotation of {peer} from the key pinned for it "
                f"{short_key(keys[-1].raw)}, found one from key "
                f"{short_key(rotation.old_signing_key)}",
                index=i,
            )
        keys.append(VerifyKey(rotation.new_signing_key))
        trusted = self.keys.trusted
        if trusted is not None:
            trusted_check(
                i,
                "peer_key_rotated",
                self.keys.check_peer,
                peer,
                VerifyKey(rotation.old_signing_key),
            )
            trusted_check(i, "peer_key_rotated", trusted.rotate, rotation, f"entry {i}")

    def _rotation(self, i: int, signed: trust_pb2.SignedKeyRotation) -> trust_pb2.KeyRotation:
        try:
            return open_rotation(signed)
        except SignatureError as e:
            raise fail("bad-signature", f"key rotation: {e}", index=i) from e
        except ValidationError as e:
            raise fail("malformed-entry", f"key rotation: {e}", index=i) from e

    def _peer_fork_detected(self, i: int, entry: ledger_pb2.LedgerEntry) -> None:
        """Fork evidence: both notes signed by the linked peer, and truly contradictory."""
        fork = entry.peer_fork_detected
        keys = self.keys.peers.get(fork.peer_id)
        if not keys:
            raise fail(
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
            trusted_check(i, "peer_fork_detected", self.keys.check_peer, fork.peer_id, key)
            break
        if held is None or presented is None:
            raise fail(
                "bad-signature", f"fork evidence against {fork.peer_id}: {error}", index=i
            ) from error
        first, second = (held, presented) if held.size <= presented.size else (presented, held)
        try:
            verify_consistency(
                first.size, second.size, first.root, second.root, list(fork.consistency_proof)
            )
        except ProofError:
            return  # contradictory, as claimed
        raise fail(
            "malformed-entry",
            f"fork evidence against {fork.peer_id}: the two checkpoints are consistent",
            index=i,
        )

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
            raise fail(
                "bad-signature", f"expected the envelope signed by {whose}: {e}", index=i
            ) from e
        except NodeError as e:
            raise fail("bad-envelope", f"the embedded envelope does not open: {e}", index=i) from e


def trusted_check(
    i: int | None, what: str, check: Callable[..., None], *args: Any, **kw: Any
) -> None:
    """Run a `trust` check for entry `i` of kind `what` (or this node's checkpoint of
    size kw["size"]); its TrustError becomes an `untrusted-key` finding."""
    try:
        check(*args, **kw)
    except TrustError as e:
        raise fail("untrusted-key", f"{what}: {e}", index=i, checkpoint_size=kw.get("size")) from e
    except ValidationError as e:
        raise fail("malformed-entry", f"{what}: {e}", index=i) from e


def _peek_recipient(signed: envelope_pb2.SignedEnvelope) -> str:
    """The recipient an envelope names, read before its signature is checked."""
    env = envelope_pb2.Envelope()
    try:
        env.ParseFromString(signed.body)
    except DecodeError:
        return ""
    return env.recipient
