"""Known-answer tests: the RFC 6962 proof vectors of tests/testdata/rfc6962, as data.

The vectors are kept inside the repository (with their Apache-2.0 LICENSE, unchanged), so
these tests run in a fresh clone and never skip. Each file holds one case (README.md
there): a happy path must verify, a `wantErr` case must raise ProofError. Where ADR 0002
(docs/decisions/0002-merkle-proof-edge-cases.md) decides the outcome instead of the RFC
algorithm, the test asserts the policy's reason.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from node.errors import ProofError
from node.ledger.merkle import HASH_SIZE, verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[2] / "testdata" / "rfc6962"

# Vectors whose outcome ADR 0002 decides, with the ProofError message it prescribes.
# Hash-length cases are not listed one by one: rule 1 covers every vector that holds a
# hash of other than 32 bytes (see `_policy_reason`).
POLICY: dict[str, str] = {
    # Rule 1 overrides wantErr=false: two equal 12-byte "roots" are not SHA-256 roots.
    "consistency/additional/sizes-are-equal-one-and-proof-is-empty": "root1 to be 32 bytes",
    # Rule 6: from size 0 the proof must be empty (and root1 must be EMPTY_ROOT).
    "consistency/1/size1-sub-@1": "empty proof from size 0",
    "consistency/3/size1-XOR-@2": "empty proof from size 0",
    "consistency/additional/consistency-check-on-empty-tree-size1-is-zero-is-useless": (
        "empty proof from size 0"
    ),
    # Rule 5: equal sizes need an empty proof.
    "consistency/additional/sizes-match-but-proof-is-not-empty-and-sizes-are-zero": (
        "empty proof for equal sizes 0"
    ),
    "consistency/additional/sizes-match-but-proof-is-not-empty-and-sizes-are-one": (
        "empty proof for equal sizes 1"
    ),
    # Rule 3: no leaf is in a tree of size 0.
    "inclusion/0/treeSize-div-@2": "below the tree size 0",
    "inclusion/additional/0/empty-root-and-random-leaf": "below the tree size 0",
    "inclusion/additional/2/empty-root-and-random-leaf": "below the tree size 0",
}
WANT_ERR_OVERRIDES = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty"}


def _cases(kind: str) -> list[Any]:
    folder = VECTORS / kind
    return [
        pytest.param(path, id=path.relative_to(VECTORS).with_suffix("").as_posix())
        for path in sorted(folder.rglob("*.json"))
    ]


def _case_id(path: Path) -> str:
    return path.relative_to(VECTORS).with_suffix("").as_posix()


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _policy_reason(case_id: str, hashes: list[bytes]) -> str | None:
    if case_id in POLICY:
        return POLICY[case_id]
    if any(len(h) != HASH_SIZE for h in hashes):
        return f"to be {HASH_SIZE} bytes"
    return None


def _check(
    case_id: str, case: dict[str, Any], hashes: list[bytes], run: Callable[[], None]
) -> None:
    reason = _policy_reason(case_id, hashes)
    if reason is not None:
        # The policy only ever rejects; and it disagrees with wantErr only where listed.
        assert case["wantErr"] or case_id in WANT_ERR_OVERRIDES
        with pytest.raises(ProofError, match=reason):
            run()
    elif case["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    """An inclusion vector verifies iff wantErr is false, or fails for ADR 0002's reason."""
    case = json.loads(path.read_text())
    leaf, root = _b64(case["leafHash"]), _b64(case["root"])
    proof = [_b64(p) for p in case["proof"] or []]
    _check(
        _case_id(path),
        case,
        [leaf, root, *proof],
        lambda: verify_inclusion(leaf, case["leafIdx"], case["treeSize"], proof, root),
    )


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vector(path: Path) -> None:
    """A consistency vector verifies iff wantErr is false, or fails for ADR 0002's reason."""
    case = json.loads(path.read_text())
    root1, root2 = _b64(case["root1"]), _b64(case["root2"])
    proof = [_b64(p) for p in case["proof"] or []]
    _check(
        _case_id(path),
        case,
        [root1, root2, *proof],
        lambda: verify_consistency(case["size1"], case["size2"], root1, root2, proof),
    )


def test_policy_table_names_existing_vectors() -> None:
    """Every vector the policy table names exists, so the table cannot silently go stale."""
    missing = [name for name in POLICY if not (VECTORS / f"{name}.json").is_file()]
    assert missing == []


def test_vectors_cover_both_outcomes() -> None:
    """The vector folders hold happy paths and rejections of both proof kinds."""
    for kind in ("inclusion", "consistency"):
        outcomes = {json.loads(p.read_text())["wantErr"] for p in (VECTORS / kind).rglob("*.json")}
        assert outcomes == {True, False}


def test_vectors_are_in_the_repository() -> None:
    """The vectors and their license live under tests/testdata, so no case can skip."""
    assert (VECTORS / "LICENSE").is_file()
    assert (VECTORS / "README.md").is_file()
    for kind in ("inclusion", "consistency"):
        assert len(list((VECTORS / kind).rglob("*.json"))) > 50
