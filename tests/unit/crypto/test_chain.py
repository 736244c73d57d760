"""node.crypto.linking.verify_chain, as a joining child runs it on its parent's chain:
rotations change the keys in force, revocations cut the child side off. It walks the chain
by the one implementation (node.crypto.chain) that an auditor's walk_chain uses too, so a
broken chain is a ChainError naming the step, whichever of the two meets it."""

from __future__ import annotations

import pytest

from node._proto.lapor.v1 import trust_pb2
from node.crypto.chain import ChainError
from node.crypto.linking import verify_chain
from node.errors import SignatureError
from tests.unit.ledger.test_trust import Keys, agreement, revocation, rotation


def test_a_chain_with_rotations_ends_at_the_keys_in_force() -> None:
    """After the province rotated, the chain ends at its new signing key and certificate;
    its keys from before the rotation no longer end it."""
    national, province = Keys("id"), Keys("id-64")
    chain = [agreement(national, province), rotation(national)]
    before = province.public
    chain.append(rotation(province))
    verify_chain(chain, province.public)
    with pytest.raises(ChainError, match="chain of trust ends at id-64 with other keys") as raised:
        verify_chain(chain, before)
    assert raised.value.step is None


def test_a_chain_missing_a_rotation_is_refused() -> None:
    """A province that rotated but hands out its chain from before: it ends at old keys."""
    national, province = Keys("id"), Keys("id-64")
    chain = [agreement(national, province)]
    rotation(province)  # made, but left out of the chain
    with pytest.raises(ChainError, match="ends at id-64 with other keys"):
        verify_chain(chain, province.public)


def test_the_national_nodes_own_rotations_make_a_chain() -> None:
    """A national node that rotated hands out its rotations: they end at its keys."""
    national = Keys("id")
    chain = [rotation(national), rotation(national)]
    verify_chain(chain, national.public)
    verify_chain([], national.public)  # no rotation: an empty chain, as before


@pytest.mark.parametrize(
    ("breaking", "at", "message"),
    [
        pytest.param("rotation-from-unknown", 1, "does not start", id="rotation"),
        pytest.param("forged-rotation", 1, "not signed by its new key", id="forged"),
        pytest.param("after-revocation", 2, "is not a node", id="revoked-parent"),
        pytest.param("revoked-last", None, "cut off by a revocation", id="revoked"),
        pytest.param("empty", 1, "empty step", id="empty"),
    ],
)
def test_broken_chains_are_refused(breaking: str, at: int | None, message: str) -> None:
    """Each broken step stops verify_chain with what is wrong."""
    national, province, regency = Keys("id"), Keys("id-64"), Keys("id-64-02")
    chain = [agreement(national, province)]
    last = province
    if breaking == "rotation-from-unknown":
        chain.append(rotation(Keys("id-64")))
    elif breaking == "forged-rotation":
        step = rotation(province)
        step.rotation.new_signature = bytes(64)
        chain.append(step)
    elif breaking == "after-revocation":
        chain.append(revocation(national, province))
        chain.append(agreement(province, regency))
        last = regency
    elif breaking == "revoked-last":
        chain.append(revocation(national, province))
    else:
        chain.append(trust_pb2.TrustStep())
    with pytest.raises(ChainError, match=message) as raised:
        verify_chain(chain, last.public)
    assert raised.value.step == at
    if breaking == "forged-rotation":
        assert isinstance(raised.value.__cause__, SignatureError)
