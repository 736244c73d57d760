"""Walking a chain of trust from the national node's key (node.ledger.trust.walk_chain):
agreements, rotations and revocations reach keys; every broken link is named by its step."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from node._proto.lapor.v1 import trust_pb2
from node.crypto.linking import make_agreement, node_keys, sign_revocation, verify_chain
from node.crypto.rotation import sign_rotation
from node.crypto.signing import LINK_AGREEMENT_PURPOSE, SigningKey
from node.crypto.tls import generate_tls_identity
from node.ids import NodeId
from node.ledger.export import vkey_for
from node.ledger.trust import ChainError, TrustError, walk_chain

NOW = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


@dataclass
class Keys:
    """A node's keys as a test holds them: signing keys in order (the last in force), and
    the certificate in force."""

    node_id: str
    signing: list[SigningKey] = field(default_factory=lambda: [SigningKey.generate()])
    cert: bytes = b""

    def __post_init__(self) -> None:
        self.cert = generate_tls_identity(NodeId(self.node_id), NOW).cert_pem

    @property
    def key(self) -> SigningKey:
        return self.signing[-1]

    @property
    def public(self) -> trust_pb2.NodeKeys:
        return node_keys(self.node_id, self.node_id, self.key.public, self.cert)

    @property
    def vkey(self) -> str:
        return vkey_for(self.node_id, self.key.public.raw)


def agreement(parent: Keys, child: Keys) -> trust_pb2.TrustStep:
    data = make_agreement(parent.public, child.public, NOW, "0" * 32)
    step = trust_pb2.TrustStep()
    step.agreement.CopyFrom(
        trust_pb2.SignedLinkAgreement(
            agreement=data,
            parent_signature=parent.key.sign(LINK_AGREEMENT_PURPOSE, data),
            child_signature=child.key.sign(LINK_AGREEMENT_PURPOSE, data),
        )
    )
    return step


def rotation(node: Keys, *, old: SigningKey | None = None) -> trust_pb2.TrustStep:
    """`node` rotates (from `old`, by default its key in force) to a new key and cert."""
    new = SigningKey.generate()
    cert = generate_tls_identity(NodeId(node.node_id), NOW).cert_pem
    step = trust_pb2.TrustStep()
    step.rotation.CopyFrom(
        sign_rotation(
            old or node.key,
            new,
            node_id=node.node_id,
            new_tls_cert_pem=cert,
            rotated_at=NOW,
            old_tls_valid_until=NOW,
        )
    )
    node.signing.append(new)
    node.cert = cert
    return step


def revocation(parent: Keys, child: Keys, *, by: Keys | None = None) -> trust_pb2.TrustStep:
    signer = by or parent
    step = trust_pb2.TrustStep()
    step.revocation.CopyFrom(
        sign_revocation(
            signer.key,
            parent_id=parent.node_id,
            parent_signing_key=parent.key.public.raw,
            child_id=child.node_id,
            child_signing_key=child.key.public.raw,
            revoked_by=signer.node_id,
            revoked_at=NOW,
            reason="test",
        )
    )
    return step


@pytest.fixture
def tree() -> tuple[Keys, Keys, Keys]:
    return Keys("id"), Keys("id-64"), Keys("id-64-02")


def test_agreements_reach_down_to_the_regency(tree: tuple[Keys, Keys, Keys]) -> None:
    """national -> province -> regency: the regency's key is reached, by that path."""
    national, province, regency = tree
    chain = [agreement(national, province), agreement(province, regency)]
    trusted = walk_chain(chain, national.vkey, reach=("id-64-02", regency.key.public.raw))
    assert trusted.path("id-64-02") == ("id", "id-64", "id-64-02")
    trusted.check("id-64", province.key.public.raw)


def test_rotations_reach_new_keys_and_keep_earlier_ones(tree: tuple[Keys, Keys, Keys]) -> None:
    """A rotation of the province before the regency joined, and one of the regency after:
    both new keys are reached, and the keys before them stay reached."""
    national, province, regency = tree
    first_province = province.key.public.raw
    chain = [agreement(national, province), rotation(province), agreement(province, regency)]
    chain.append(rotation(regency))
    trusted = walk_chain(chain, national.vkey, reach=("id-64-02", regency.key.public.raw))
    trusted.check("id-64", first_province)
    trusted.check("id-64-02", regency.signing[0].public.raw)


def test_a_national_key_read_after_its_rotation_reaches_what_the_old_one_signed(
    tree: tuple[Keys, Keys, Keys],
) -> None:
    """The auditor holds the national node's current key; the province's agreement was signed
    with the key before it, handed over by a rotation in the chain."""
    national, province, regency = tree
    chain = [agreement(national, province), rotation(national), agreement(province, regency)]
    trusted = walk_chain(chain, national.vkey, reach=("id-64-02", regency.key.public.raw))
    assert trusted.path("id-64-02") == ("id", "id-64", "id-64-02")


def _broken(tree: tuple[Keys, Keys, Keys], breaking: str) -> list[trust_pb2.TrustStep]:
    """A chain from the national node whose step named by `breaking` breaks a rule."""
    national, province, regency = tree
    stranger = Keys("id-99")
    chain = [agreement(national, province)]
    if breaking == "forged-signature":
        forged = agreement(province, regency)
        forged.agreement.child_signature = bytes(64)
        chain.append(forged)
    elif breaking == "unreached-parent":
        chain.append(agreement(stranger, regency))
    elif breaking == "unreached-rotation":
        chain.append(rotation(province, old=SigningKey.generate()))
    elif breaking == "rotation-replaced-key":
        old = province.key
        chain.append(rotation(province))
        chain.append(rotation(province, old=old))
    elif breaking == "after-revocation":
        chain.append(revocation(national, province))
        chain.append(agreement(province, regency))
    elif breaking == "old-key-agreement":
        old = list(province.signing)
        chain.append(rotation(province))
        province.signing = old  # the province signs with the key it handed over
        chain.append(agreement(province, regency))
    elif breaking == "twice":
        chain.append(agreement(national, regency))
        chain.append(agreement(province, regency))
    else:
        chain.append(trust_pb2.TrustStep())
    return chain


@pytest.mark.parametrize(
    ("breaking", "step", "message"),
    [
        pytest.param("forged-signature", 1, "not signed by its child", id="forged-signature"),
        pytest.param("unreached-parent", 1, "not reached by the chain", id="unreached-parent"),
        pytest.param("unreached-rotation", 1, "does not reach it", id="rotation-unreached-key"),
        pytest.param("rotation-replaced-key", 2, "replaced before", id="rotation-replaced-key"),
        pytest.param("after-revocation", 2, "reaches nothing any more", id="after-revocation"),
        pytest.param("old-key-agreement", 2, "replaced by a rotation", id="agreement-old-key"),
        pytest.param("twice", 2, "reached before", id="child-twice"),
        pytest.param("empty", 1, "empty step", id="empty-step"),
    ],
)
def test_each_broken_step_is_named(
    tree: tuple[Keys, Keys, Keys], breaking: str, step: int, message: str
) -> None:
    """Every kind of broken link stops the walk at its step, saying why."""
    national = tree[0]
    chain = _broken(tree, breaking)
    with pytest.raises(ChainError, match=message) as raised:
        walk_chain(chain, national.vkey)
    assert raised.value.step == step
    assert f"chain step {step}" in str(raised.value)


def test_a_chain_that_does_not_end_at_the_exporter_is_refused(
    tree: tuple[Keys, Keys, Keys],
) -> None:
    """A chain to the province does not make the regency's key reached."""
    national, province, regency = tree
    chain = [agreement(national, province)]
    with pytest.raises(ChainError, match="does not end at id-64-02") as raised:
        walk_chain(chain, national.vkey, reach=("id-64-02", regency.key.public.raw))
    assert raised.value.step is None
    assert "id -> id-64" in str(raised.value)


def test_the_wrong_national_key_reaches_nothing(tree: tuple[Keys, Keys, Keys]) -> None:
    """Another key under the national node's name: the first agreement is not reached."""
    national, province, regency = tree
    chain = [agreement(national, province), agreement(province, regency)]
    with pytest.raises(ChainError, match="chain step 0") as raised:
        walk_chain(chain, Keys("id").vkey)
    assert raised.value.step == 0


def test_a_revocation_cuts_off_the_child_and_everything_below_it(
    tree: tuple[Keys, Keys, Keys],
) -> None:
    """After national revokes the province, neither the province's nor the regency's key
    speaks; a child leaving its parent (signed by the child) cuts it off too."""
    national, province, regency = tree
    chain = [
        agreement(national, province),
        agreement(province, regency),
        revocation(national, province),
    ]
    trusted = walk_chain(chain, national.vkey)
    with pytest.raises(TrustError, match="revoked by id at chain step 2"):
        trusted.check("id-64", province.key.public.raw)
    with pytest.raises(TrustError, match="which cut off id-64"):
        trusted.check("id-64-02", regency.key.public.raw)
    left = [agreement(national, province), revocation(national, province, by=province)]
    with pytest.raises(ChainError, match="does not end at id-64"):
        walk_chain(left, national.vkey, reach=("id-64", province.key.public.raw))


def test_a_revocation_not_signed_by_the_key_in_force_is_refused(
    tree: tuple[Keys, Keys, Keys],
) -> None:
    """A revocation signed with the national node's key from before its rotation."""
    national, province, _ = tree
    old = list(national.signing)
    chain = [agreement(national, province), rotation(national)]
    current = national.vkey
    national.signing = old
    chain.append(revocation(national, province))
    with pytest.raises(ChainError, match="not its key in force") as raised:
        walk_chain(chain, current)
    assert raised.value.step == 2


@pytest.mark.parametrize(
    "breaking",
    [
        "forged-signature",
        "unreached-parent",
        "unreached-rotation",
        "rotation-replaced-key",
        "after-revocation",
        "old-key-agreement",
        "twice",
        "empty",
    ],
)
def test_a_joining_child_and_an_auditor_stop_at_the_same_step(
    tree: tuple[Keys, Keys, Keys], breaking: str
) -> None:
    """verify_chain (a child, from the chain's first node) and walk_chain (an auditor, from
    the national key) are one implementation: the same ChainError at the same step."""
    national = tree[0]
    chain = _broken(tree, breaking)
    with pytest.raises(ChainError) as auditor:
        walk_chain(chain, national.vkey)
    with pytest.raises(ChainError) as child:
        verify_chain(chain, tree[2].public)
    assert child.value.step == auditor.value.step is not None
    assert str(child.value) == str(auditor.value).replace(
        "from id (the trusted key of id)", "from id (the first node of the chain)"
    )
