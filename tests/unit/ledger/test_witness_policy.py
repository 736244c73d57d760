"""Witness policies: parsing the Sigsum-style text and checking a quorum of cosignatures."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node.errors import IntegrityError, SignatureError, ValidationError
from node.ledger.checkpoint import Checkpoint
from node.ledger.cosignature import Cosignature, CosignerKey, cosign
from node.ledger.note import Verifier, sign_checkpoint
from node.ledger.witness_policy import check, parse

LOG = Ed25519PrivateKey.from_private_bytes(bytes([9]) * 32)
ORIGIN = "lapor-node/id-64"
LOG_KEY = Verifier.from_public_key(ORIGIN, LOG.public_key())
CP = Checkpoint(ORIGIN, 12, bytes(range(32)))
KEYS = {n: Ed25519PrivateKey.from_private_bytes(bytes([i + 20]) * 32) for i, n in enumerate("ABC")}
T = 1_796_000_000


def _ckey(name: str) -> CosignerKey:
    return CosignerKey.from_public_key(f"w.example/{name}", KEYS[name].public_key())


def _note(*signers: str) -> bytes:
    note = sign_checkpoint(CP, ORIGIN, LOG)
    for name in signers:
        note += cosign(CP.to_body(), f"w.example/{name}", KEYS[name], T).line().encode()
    return note


def _policy(quorum_lines: str, *, log: bool = True) -> str:
    head = f"log {LOG_KEY.vkey}\n" if log else ""
    witnesses = "".join(f"witness {n} {_ckey(n).vkey}  # {n}\n" for n in "ABC")
    return head + witnesses + quorum_lines


@pytest.mark.parametrize(
    ("rule", "signers", "ok"),
    [
        pytest.param("quorum A\n", "A", True, id="single-present"),
        pytest.param("quorum A\n", "B", False, id="single-missing"),
        pytest.param("group g 2 A B C\nquorum g\n", "AC", True, id="two-of-three"),
        pytest.param("group g 2 A B C\nquorum g\n", "C", False, id="one-of-three"),
        pytest.param("group g any A B\nquorum g\n", "B", True, id="any"),
        pytest.param("group g all A B\nquorum g\n", "A", False, id="all-missing-one"),
        pytest.param(
            "group x any A B\ngroup y all x C\nquorum y\n", "BC", True, id="nested-groups"
        ),
        pytest.param("quorum none\n", "", True, id="none"),
    ],
)
def test_quorum(rule: str, signers: str, ok: bool) -> None:
    """The quorum holds exactly when enough valid cosignatures are present."""
    policy = parse(_policy(rule))
    if ok:
        result = check(_note(*signers), policy)
        assert set(result.witnesses) == set(signers) and result.checkpoint == CP
    else:
        with pytest.raises(SignatureError, match="expected cosignatures satisfying") as info:
            check(_note(*signers), policy)
        assert isinstance(info.value, IntegrityError)


def test_log_key_from_the_caller_when_the_policy_names_none() -> None:
    """Without a log line the caller's log key is used; a note by another log key fails."""
    policy = parse(_policy("quorum A\n", log=False))
    assert check(_note("A"), policy, [LOG_KEY]).witnesses == ("A",)
    other = Verifier.from_public_key(ORIGIN, KEYS["B"].public_key())
    with pytest.raises(SignatureError):
        check(_note("A"), policy, [other])
    with pytest.raises(ValidationError, match="log key"):
        check(_note("A"), policy)


def test_a_bad_line_from_a_known_witness_rejects_the_note() -> None:
    """A policy witness whose line does not verify makes the check fail, quorum or not."""
    good = cosign(CP.to_body(), "w.example/A", KEYS["A"], T)
    forged = Cosignature(good.name, good.key_id, T + 5, good.signature)
    note = _note("B") + forged.line().encode()
    with pytest.raises(SignatureError, match="witness 'A'"):
        check(note, parse(_policy("group g any A B\nquorum g\n")))


def test_unknown_witness_lines_are_ignored() -> None:
    """Cosignatures by witnesses outside the policy count for nothing."""
    stranger = Ed25519PrivateKey.from_private_bytes(bytes([77]) * 32)
    note = _note() + cosign(CP.to_body(), "w.example/A", stranger, T).line().encode()
    with pytest.raises(SignatureError, match="no policy witness"):
        check(note, parse(_policy("quorum A\n")))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("witness A x\nquorum A\n", "line 1", id="bad-vkey"),
        pytest.param(_policy("quorum Z\n"), "defined on an earlier line", id="undefined"),
        pytest.param(_policy("group g 4 A B C\nquorum g\n"), "from 1 to 3", id="k-too-big"),
        pytest.param(_policy("group g 0 A B\nquorum g\n"), "from 1 to 2", id="k-zero"),
        pytest.param(
            _policy("group g \u00b2 A B\nquorum g\n"), "from 1 to 2", id="k-unicode-digit"
        ),
        pytest.param(_policy("group A any B\nquorum A\n"), "new name", id="name-reused"),
        pytest.param(_policy("quorum A\nquorum B\n"), "second", id="two-quorums"),
        pytest.param(_policy(""), "quorum line", id="no-quorum"),
        pytest.param(_policy("frobnicate A\nquorum A\n"), "frobnicate", id="keyword"),
        pytest.param(_policy("group g any A A\nquorum g\n"), "once", id="member-twice"),
        pytest.param(
            f"log {_ckey('A').vkey}\nquorum none\n", "0x01", id="log-key-of-cosigner-type"
        ),
    ],
)
def test_parse_refuses(text: str, message: str) -> None:
    """A malformed policy is refused with one line that says what was expected."""
    with pytest.raises(ValidationError, match=message):
        parse(text)
