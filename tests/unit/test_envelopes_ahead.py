"""Envelopes opened ahead of the writer (node.envelopes.OpenedAhead, decision 0041): the
writer gets the outcome kept for an envelope only when it asks for that very envelope with
the peer, key and recipient it was opened for, gets exactly what open_envelope gives or
raises then, and otherwise opens it itself."""

from __future__ import annotations

import pytest

from node._proto.lapor.v1 import envelope_pb2
from node.crypto.signing import SigningKey, VerifyKey
from node.envelopes import OpenedAhead, open_envelope, seal
from node.errors import NodeError, PermissionDeniedError, SignatureError, StateError
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
