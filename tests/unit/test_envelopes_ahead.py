"""Envelopes opened ahead of the writer (node.envelopes.OpenedAhead, decision 0041): the
writer gets the outcome kept for an envelope only when it asks for that very envelope with
the peer, key and recipient it was opened for, gets exactly what open_envelope gives or
raises then, and otherwise opens it itself; and the checkpoint an envelope carries, opened
ahead under the peer's key, is what the witness takes for that key only (decision 0043)."""

from __future__ import annotations

import pytest

from node._proto.lapor.v1 import envelope_pb2, federation_pb2
from node.crypto.signing import SigningKey, VerifyKey
from node.envelopes import OpenedAhead, open_envelope, seal
from node.errors import NodeError, PermissionDeniedError, SignatureError, StateError
from node.ledger.checkpoint import Checkpoint, origin_for
from node.ledger.note import Verifier, sign_checkpoint
from node.services import witness
from node.store.models import Link
from tests.unit.test_envelopes import CHILD, PARENT, PARENT_KEY, _envelope

OTHER_KEY = SigningKey.generate()


def _tampered() -> envelope_pb2.SignedEnvelope:
    signed = seal(_envelope(), PARENT_KEY)
    signed.signature = bytes(64)
    return signed


def _refusal(signed: envelope_pb2.SignedEnvelope, **kwargs: object) -> NodeError:
    args: dict[str, object] = {"peer": PARENT, "peer_key": PARENT_KEY.public, "me": CHILD}
    args.update(kwargs)
    with pytest.raises(NodeError) as caught:
        open_envelope(signed, **args)  # type: ignore[arg-type]
    return caught.value


def test_kept_outcome_is_what_open_envelope_gives_and_is_used_once_per_ask() -> None:
    """An envelope opened ahead: the writer's open gives the same envelope and body, and
    counts one use, without verifying again."""
    signed = seal(_envelope(), PARENT_KEY)
    ahead = OpenedAhead.opening([signed], peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD)
    opened = open_envelope(signed, peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD, ahead=ahead)
    direct = open_envelope(signed, peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD)
    assert opened.signed is signed
    assert opened.envelope == direct.envelope
    assert ahead.used == 1


@pytest.mark.parametrize(
    ("name", "make", "kwargs", "error"),
    [
        ("bad signature", _tampered, {}, SignatureError),
        ("for another node", lambda: seal(_envelope(), PARENT_KEY), {"me": PARENT}, StateError),
        ("unknown key", lambda: seal(_envelope(), OTHER_KEY), {}, SignatureError),
    ],
)
def test_a_refusal_opened_ahead_is_raised_as_open_envelope_raises_it(
    name: str, make: object, kwargs: dict[str, object], error: type[NodeError] | None
) -> None:
    """A refused envelope opened ahead: the writer gets the same error class and message
    as open_envelope gives it, from the kept outcome."""
    signed = make()  # type: ignore[operator]
    args: dict[str, object] = {"peer": PARENT, "peer_key": PARENT_KEY.public, "me": CHILD}
    args.update(kwargs)
    expected = _refusal(signed, **kwargs)
    if error is not None:
        assert isinstance(expected, error), name
    ahead = OpenedAhead.opening([signed], **args)  # type: ignore[arg-type]
    with pytest.raises(type(expected)) as caught:
        open_envelope(signed, ahead=ahead, **args)  # type: ignore[arg-type]
    assert str(caught.value) == str(expected)
    assert ahead.used == 1


def test_an_envelope_signed_as_another_node_is_refused_from_the_kept_outcome() -> None:
    """The sender check is kept too: an envelope whose signer is not the peer."""
    signed = seal(_envelope(sender=CHILD), PARENT_KEY)
    ahead = OpenedAhead.opening([signed], peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD)
    with pytest.raises(PermissionDeniedError):
        open_envelope(signed, peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD, ahead=ahead)
    assert ahead.used == 1


@pytest.mark.parametrize(
    ("name", "peer", "key", "me"),
    [
        ("another key pinned since", PARENT, OTHER_KEY.public, CHILD),
        ("another peer", CHILD, PARENT_KEY.public, CHILD),
        ("another recipient", PARENT, PARENT_KEY.public, PARENT),
    ],
)
def test_an_outcome_is_not_used_for_another_key_peer_or_recipient(
    name: str, peer: str, key: VerifyKey, me: str
) -> None:
    """Asked with anything other than what it was opened for, the envelope is opened again
    under what is asked: a key pinned since (a rotation) decides, not the one before."""
    signed = seal(_envelope(), PARENT_KEY)
    ahead = OpenedAhead.opening([signed], peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD)
    expected = _refusal(signed, peer=peer, peer_key=key, me=me)
    with pytest.raises(type(expected)):
        open_envelope(signed, peer=peer, peer_key=key, me=me, ahead=ahead)  # type: ignore[arg-type]
    assert ahead.used == 0, name


def test_an_equal_copy_of_an_envelope_is_opened_again() -> None:
    """The kept outcome belongs to the envelope object opened, not to an equal one."""
    signed = seal(_envelope(), PARENT_KEY)
    ahead = OpenedAhead.opening([signed], peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD)
    copy = envelope_pb2.SignedEnvelope.FromString(signed.SerializeToString())
    opened = open_envelope(copy, peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD, ahead=ahead)
    assert opened.signed is copy
    assert ahead.used == 0


def _with_checkpoint(key: SigningKey, size: int = 3) -> envelope_pb2.SignedEnvelope:
    """An envelope from the parent carrying a checkpoint of the parent's log signed by
    `key`."""
    origin = origin_for(PARENT)
    note = sign_checkpoint(Checkpoint(origin, size, bytes(32)), origin, key.ed25519)
    return seal(_envelope(checkpoint=note), PARENT_KEY)


def _link() -> Link:
    return Link(peer_id=PARENT, signing_key=PARENT_KEY.public.raw, peer_checkpoint=None)


def _verified(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Record each checkpoint signature verified (by public key)."""
    seen: list[bytes] = []
    verify = Verifier.verify

    def counted(self: Verifier, text: bytes, signature: bytes) -> None:
        seen.append(self.public_key)
        verify(self, text, signature)

    monkeypatch.setattr(Verifier, "verify", counted)
    return seen


def test_the_checkpoint_opened_ahead_is_the_one_the_witness_adopts_unverified_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two envelopes carrying one checkpoint, opened ahead: the note is verified once, and
    the witness adopts it (size 3) from the kept outcome without verifying it again."""
    seen = _verified(monkeypatch)
    first = _with_checkpoint(PARENT_KEY)
    second = seal(_envelope(checkpoint=first_note(first), sequence=2), PARENT_KEY)
    ahead = OpenedAhead.opening([first, second], peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD)
    assert len(seen) == 1
    opened = open_envelope(first, peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD, ahead=ahead)
    link = _link()
    witness.check(link, opened, federation_pb2.Delivery(envelope=first))
    assert len(seen) == 1
    assert (link.peer_checkpoint, link.peer_checkpoint_size) == (first_note(first), 3)


def first_note(signed: envelope_pb2.SignedEnvelope) -> bytes:
    return envelope_pb2.Envelope.FromString(signed.body).checkpoint


@pytest.mark.parametrize(
    ("name", "pinned_then"),
    [
        ("the peer's key was rotated since", OTHER_KEY),
        ("the checkpoint was signed by another key", PARENT_KEY),
    ],
)
def test_a_checkpoint_not_opened_ahead_under_the_pinned_key_is_verified_by_the_witness(
    name: str, pinned_then: SigningKey
) -> None:
    """A checkpoint opened ahead under a key that is no longer the link's, or one that did
    not open ahead: the witness opens it under the link's key itself, and refuses it (the
    kept outcome of the first would have been adopted)."""
    signer = PARENT_KEY if pinned_then is OTHER_KEY else OTHER_KEY
    signed = _with_checkpoint(signer)
    ahead = OpenedAhead.opening([signed], peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD)
    opened = open_envelope(signed, peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD, ahead=ahead)
    link = _link()
    link.signing_key = pinned_then.public.raw
    with pytest.raises(SignatureError, match="signature"):
        witness.check(link, opened, federation_pb2.Delivery(envelope=signed))
    assert link.peer_checkpoint is None, name


def test_the_checkpoint_held_already_is_not_opened_ahead_nor_by_the_witness(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An envelope carrying the very checkpoint the link holds (the session passes it as
    `held_note`): neither opening ahead nor the witness verifies it again."""
    signed = _with_checkpoint(PARENT_KEY)
    note = first_note(signed)
    seen = _verified(monkeypatch)
    ahead = OpenedAhead.opening(
        [signed], peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD, held_note=note
    )
    opened = open_envelope(signed, peer=PARENT, peer_key=PARENT_KEY.public, me=CHILD, ahead=ahead)
    assert opened.checkpoint_ahead is None
    link = _link()
    link.peer_checkpoint, link.peer_checkpoint_size = note, 3
    witness.check(link, opened, federation_pb2.Delivery(envelope=signed))
    assert seen == []
