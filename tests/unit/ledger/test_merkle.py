"""The RFC 6962 tree: hashing, proof generation and verification, appending, read counts."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import NotFoundError, ProofError, ValidationError
from node.ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)

PROPERTY = settings(max_examples=100, deadline=None, database=None)
SLOW_PROPERTY = settings(max_examples=40, deadline=None, database=None)


def _entries(min_size: int) -> st.SearchStrategy[list[bytes]]:
    """Trees of min_size..300 entries, sizes drawn uniformly: entry i is salt || i."""
    return st.builds(
        lambda n, salt: [salt + i.to_bytes(2, "big") for i in range(n)],
        st.integers(min_size, 300),
        st.binary(max_size=8),
    )


entries = _entries(0)
nonempty_entries = _entries(1)
two_or_more_entries = _entries(2)


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(8, "big")) for i in range(n)]


def _flip(value: bytes, bit: int) -> bytes:
    bit %= 8 * len(value)
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- reference: the recursive definitions of RFC 9162 sections 2.1.3.1 and 2.1.4.1 -------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _ref_path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*_ref_path(m, leaves[:k]), root_from_leaves(leaves[k:])]
    return [*_ref_path(m - k, leaves[k:]), root_from_leaves(leaves[:k])]


def _ref_subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [root_from_leaves(leaves)]
    k = _k(n)
    if m <= k:
        return [*_ref_subproof(m, leaves[:k], whole), root_from_leaves(leaves[k:])]
    return [*_ref_subproof(m - k, leaves[k:], False), root_from_leaves(leaves[:k])]


# --- hashing --------------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    """The root of the empty tree is SHA-256 of the empty string, from any source."""
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT
    assert root_from_leaves([]) == EMPTY_ROOT
    assert Frontier().root() == EMPTY_ROOT
    assert MemoryTree().root() == EMPTY_ROOT


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    """Leaves hash with prefix 0x00 and nodes with 0x01, so neither can pose as the other."""
    a, b = _leaves(2)
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(a + b) != node_hash(a, b)


# --- properties -----------------------------------------------------------------------


@PROPERTY
@given(data=st.data(), items=nonempty_entries)
def test_generated_proofs_match_the_rfc_and_verify(data: st.DataObject, items: list[bytes]) -> None:
    """Proofs equal the RFC's recursive PATH and PROOF and verify, for sampled sizes."""
    leaves = [leaf_hash(e) for e in items]
    tree = MemoryTree(leaves)
    for _ in range(4):
        size = data.draw(st.integers(1, len(leaves)), label="size")
        index = data.draw(st.integers(0, size - 1), label="index")
        size1 = data.draw(st.integers(0, size), label="size1")
        proof = tree.inclusion_proof(index, size)
        assert proof == _ref_path(index, leaves[:size])
        verify_inclusion(leaves[index], index, size, proof, root_from_leaves(leaves[:size]))
        cproof = tree.consistency_proof(size1, size)
        expected = _ref_subproof(size1, leaves[:size], True) if 0 < size1 < size else []
        assert cproof == expected
        root1, root2 = root_from_leaves(leaves[:size1]), root_from_leaves(leaves[:size])
        verify_consistency(size1, size, root1, root2, cproof)


@PROPERTY
@given(
    data=st.data(),
    items=two_or_more_entries,
    target=st.sampled_from(["proof", "root", "leaf"]),
    bit=st.integers(0, 255),
)
def test_any_flipped_bit_breaks_an_inclusion_proof(
    data: st.DataObject, items: list[bytes], target: str, bit: int
) -> None:
    """One flipped bit in the proof, the root or the leaf makes inclusion fail."""
    leaves = [leaf_hash(e) for e in items]
    tree = MemoryTree(leaves)
    size = data.draw(st.integers(2, len(leaves)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    leaf, proof, top = leaves[index], tree.inclusion_proof(index, size), tree.root(size)
    if target == "proof":
        at = data.draw(st.integers(0, len(proof) - 1), label="at")
        proof[at] = _flip(proof[at], bit)
    elif target == "root":
        top = _flip(top, bit)
    else:
        leaf = _flip(leaf, bit)
    with pytest.raises(ProofError):
        verify_inclusion(leaf, index, size, proof, top)


@PROPERTY
@given(
    data=st.data(),
    items=two_or_more_entries,
    target=st.sampled_from(["proof", "root1", "root2"]),
    bit=st.integers(0, 255),
)
def test_any_flipped_bit_breaks_a_consistency_proof(
    data: st.DataObject, items: list[bytes], target: str, bit: int
) -> None:
    """One flipped bit in the proof or either root makes consistency fail (size1 >= 1)."""
    leaves = [leaf_hash(e) for e in items]
    tree = MemoryTree(leaves)
    size2 = data.draw(st.integers(2, len(leaves)), label="size2")
    # A proof exists only for size1 < size2; equal sizes are covered through the roots.
    size1 = data.draw(st.integers(1, size2 - 1 if target == "proof" else size2), label="size1")
    proof = tree.consistency_proof(size1, size2)
    root1, root2 = tree.root(size1), tree.root(size2)
    if target == "proof":
        at = data.draw(st.integers(0, len(proof) - 1), label="at")
        proof[at] = _flip(proof[at], bit)
    elif target == "root1":
        root1 = _flip(root1, bit)
    else:
        root2 = _flip(root2, bit)
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, root1, root2, proof)


@SLOW_PROPERTY
@given(items=entries)
def test_frontier_root_equals_recursive_root_for_every_prefix(items: list[bytes]) -> None:
    """After each append the frontier's root equals MTH of the leaves so far."""
    leaves = [leaf_hash(e) for e in items]
    frontier = Frontier()
    for n, leaf in enumerate(leaves, start=1):
        frontier.append(leaf)
        assert frontier.size == n
        assert frontier.root() == root_from_leaves(leaves[:n])
        assert len(frontier.hashes) == n.bit_count()


@PROPERTY
@given(items=entries)
def test_append_reports_each_complete_node_once_with_its_subtree_root(items: list[bytes]) -> None:
    """Frontier.append returns exactly the complete nodes, each equal to MTH of its leaves."""
    leaves = [leaf_hash(e) for e in items]
    frontier, tree = Frontier(), MemoryTree()
    reported: list[tuple[int, int, bytes]] = []
    for leaf in leaves:
        completed = frontier.append(leaf)
        assert tree.append(leaf) == completed
        reported.extend(completed)
    n = len(leaves)
    expected = {(lv, i) for lv in range(n.bit_length()) for i in range(n >> lv)}
    assert sorted((lv, i) for lv, i, _ in reported) == sorted(expected)
    for level, index, h in reported:
        assert h == root_from_leaves(leaves[index << level : (index + 1) << level])
        assert tree.node(level, index) == h


@PROPERTY
@given(data=st.data(), items=entries)
def test_frontier_rebuilt_from_reader_matches_and_resumes(
    data: st.DataObject, items: list[bytes]
) -> None:
    """Frontier.from_reader(size) has the same hashes and root, and appends on correctly."""
    leaves = [leaf_hash(e) for e in items]
    tree = MemoryTree(leaves)
    size = data.draw(st.integers(0, len(leaves)))
    rebuilt = Frontier.from_reader(size, tree)
    direct = Frontier()
    for leaf in leaves[:size]:
        direct.append(leaf)
    assert rebuilt.hashes == direct.hashes
    assert rebuilt.root() == root_from_leaves(leaves[:size]) == root(size, tree)
    for leaf in leaves[size:]:
        rebuilt.append(leaf)
    assert rebuilt.root() == tree.root()


def test_small_trees_exhaustively() -> None:
    """For every tree up to 40 leaves, every inclusion and consistency proof verifies."""
    leaves = _leaves(40)
    tree = MemoryTree(leaves)
    for size in range(41):
        top = tree.root(size)
        assert top == root_from_leaves(leaves[:size])
        for index in range(size):
            verify_inclusion(leaves[index], index, size, tree.inclusion_proof(index, size), top)
        for size1 in range(size + 1):
            proof = tree.consistency_proof(size1, size)
            verify_consistency(size1, size, tree.root(size1), top, proof)


# --- O(log n) reads -------------------------------------------------------------------


class PeriodicReader:
    """Lazy reader of a huge tree whose leaf i is leaf_hash((i % 64).to_bytes(8, 'big')).

    Every complete subtree of 64 or more leaves then depends on its level alone, so any
    node is computed from memoised parts in a few hashes; `calls` counts outside reads.
    """

    PERIOD_LEVEL = 6

    def __init__(self) -> None:
        self.calls = 0
        self._memo: dict[tuple[int, int], bytes] = {}

    def node(self, level: int, index: int) -> bytes:
        self.calls += 1
        return self._compute(level, index)

    def _compute(self, level: int, index: int) -> bytes:
        period = 1 << max(self.PERIOD_LEVEL - level, 0)
        key = (level, index % period)
        if key not in self._memo:
            if level == 0:
                self._memo[key] = leaf_hash(key[1].to_bytes(8, "big"))
            else:
                left = self._compute(level - 1, 2 * key[1])
                right = self._compute(level - 1, 2 * key[1] + 1)
                self._memo[key] = node_hash(left, right)
        return self._memo[key]


def test_periodic_reader_agrees_with_the_recursive_root() -> None:
    """The lazy formula reader describes a real tree: its root matches MTH of its leaves."""
    size = 4096 + 64 + 5
    leaves = [leaf_hash((i % 64).to_bytes(8, "big")) for i in range(size)]
    assert root(size, PeriodicReader()) == root_from_leaves(leaves)


@pytest.mark.parametrize("size", [1, 2, 3, 1_000_000, 2**20, 2**20 + 1, 2**40 - 1])
def test_proof_generation_reads_o_log_n_nodes(size: int) -> None:
    """root, both proofs and Frontier.from_reader read at most 2*ceil(log2 n)+2 nodes."""
    bound = 2 * math.ceil(math.log2(size)) + 2
    reader = PeriodicReader()
    top = root(size, reader)
    assert reader.calls == size.bit_count()
    Frontier.from_reader(size, reader)
    assert reader.calls == 2 * size.bit_count()
    for index in sorted({0, size // 3, size // 2, size - 1}):
        before = reader.calls
        proof = inclusion_proof(index, size, reader)
        assert reader.calls - before <= bound
        verify_inclusion(leaf_hash((index % 64).to_bytes(8, "big")), index, size, proof, top)
    for size1 in sorted({1, size // 3, size // 2 + 1, size - 1} - {0}):
        before = reader.calls
        cproof = consistency_proof(size1, size, reader)
        assert reader.calls - before <= bound
        verify_consistency(size1, size, root(size1, reader), top, cproof)


# --- edge-case policy (docs/decisions/0002-merkle-proof-edge-cases.md) ----------------

LEAVES = _leaves(8)
TREE = MemoryTree(LEAVES)
R5, R8 = TREE.root(5), TREE.root(8)
P3 = TREE.inclusion_proof(3, 5)
C58 = TREE.consistency_proof(5, 8)


@pytest.mark.parametrize(
    ("leaf", "index", "size", "proof", "top", "message"),
    [
        pytest.param(LEAVES[0], 0, 0, [], EMPTY_ROOT, "below the tree size 0", id="size-0"),
        pytest.param(LEAVES[5], 5, 5, P3, R5, "below the tree size 5", id="index-equals-size"),
        pytest.param(LEAVES[3], -1, 5, P3, R5, "non-negative", id="negative-index"),
        pytest.param(LEAVES[3][:31], 3, 5, P3, R5, "leaf hash to be 32 bytes", id="short-leaf"),
        pytest.param(LEAVES[3], 3, 5, P3, R5 + b"\x00", "root to be 32 bytes", id="long-root"),
        pytest.param(LEAVES[3], 3, 5, [b"", *P3[1:]], R5, r"proof\[0\] to be 32", id="empty-hash"),
        pytest.param(LEAVES[3], 3, 5, [*P3, R5], R5, "expected 3 proof hashes", id="too-long"),
        pytest.param(LEAVES[3], 3, 5, P3[:-1], R5, "expected 3 proof hashes", id="too-short"),
        pytest.param(LEAVES[3], 3, 5, P3, R8, "to lead to root", id="wrong-root"),
    ],
)
def test_inclusion_policy_rejections(
    leaf: bytes, index: int, size: int, proof: list[bytes], top: bytes, message: str
) -> None:
    """Inputs ADR 0002 rules out raise ProofError saying what was expected."""
    with pytest.raises(ProofError, match=message):
        verify_inclusion(leaf, index, size, proof, top)


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "message"),
    [
        pytest.param(8, 5, R8, R5, [], "size1 <= size2", id="size1-greater"),
        pytest.param(5, 5, R5, R5, [R5], "empty proof for equal sizes", id="equal-with-proof"),
        pytest.param(5, 5, R5, R8, [], "equal roots", id="equal-sizes-other-root"),
        pytest.param(0, 0, R5, R5, [], "empty-tree root", id="size-0-not-empty-root"),
        pytest.param(0, 8, EMPTY_ROOT, R8, [R8], "empty proof from size 0", id="from-0-proof"),
        pytest.param(0, 8, R5, R8, [], "empty-tree root1 for size 0", id="from-0-not-empty-root"),
        pytest.param(5, 8, R5[:16], R8, C58, "root1 to be 32 bytes", id="short-root1"),
        pytest.param(5, 8, R5, b"", C58, "root2 to be 32 bytes", id="empty-root2"),
        pytest.param(5, 8, R5, R8, [], "expected 4 proof hashes", id="empty-proof"),
        pytest.param(5, 8, R5, R8, [*C58, R8], "expected 4 proof hashes", id="too-long"),
        pytest.param(5, 8, R5, R8, C58[:-1], "expected 4 proof hashes", id="too-short"),
        pytest.param(-1, 8, R5, R8, C58, "non-negative", id="negative-size"),
        pytest.param(5, 8, R8, R8, C58, "root1", id="wrong-root1"),
        pytest.param(5, 8, R5, R5, C58, "root2", id="wrong-root2"),
    ],
)
def test_consistency_policy_rejections(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], message: str
) -> None:
    """Inputs ADR 0002 rules out raise ProofError saying what was expected."""
    with pytest.raises(ProofError, match=message):
        verify_consistency(size1, size2, root1, root2, proof)


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2"),
    [
        pytest.param(0, 0, EMPTY_ROOT, EMPTY_ROOT, id="empty-to-empty"),
        pytest.param(0, 8, EMPTY_ROOT, R8, id="empty-to-any"),
        pytest.param(5, 5, R5, R5, id="same-tree"),
    ],
)
def test_consistency_policy_acceptances(size1: int, size2: int, root1: bytes, root2: bytes) -> None:
    """Equal sizes and a size-0 start verify with the empty proof that generation returns."""
    assert TREE.consistency_proof(size1, size2) == []
    verify_consistency(size1, size2, root1, root2, [])


def test_generation_refuses_impossible_requests() -> None:
    """Asking for a proof that cannot exist raises ValidationError, not ProofError."""
    with pytest.raises(ValidationError, match=r"leaf index in \[0, 5\)"):
        inclusion_proof(5, 5, TREE)
    with pytest.raises(ValidationError, match=r"leaf index in \[0, 0\)"):
        inclusion_proof(0, 0, TREE)
    with pytest.raises(ValidationError, match="size1 <= size2"):
        consistency_proof(6, 5, TREE)
    with pytest.raises(ValidationError, match="non-negative"):
        root(-1, TREE)
    with pytest.raises(ValidationError, match="at most 8"):
        TREE.root(9)


def test_memory_tree_has_no_incomplete_nodes() -> None:
    """MemoryTree.node serves complete subtrees only and raises NotFoundError otherwise."""
    tree = MemoryTree(_leaves(5))
    assert tree.node(2, 0) == root_from_leaves(_leaves(4))
    with pytest.raises(NotFoundError, match="level 2 index 1"):
        tree.node(2, 1)
    with pytest.raises(NotFoundError):
        tree.node(3, 0)


def test_frontier_rejects_malformed_state() -> None:
    """A Frontier needs one 32-byte root per set bit of its size, and 32-byte leaves."""
    with pytest.raises(ValidationError, match="expected 2 subtree roots"):
        Frontier(5, [R5])
    with pytest.raises(ValidationError, match="32 bytes"):
        Frontier(1, [b"short"])
    with pytest.raises(ValidationError, match="32 bytes"):
        Frontier().append(b"")
    assert Frontier(5, [TREE.node(2, 0), LEAVES[4]]).root() == R5


@settings(max_examples=200, deadline=None)
@given(
    first=st.integers(min_value=0, max_value=70),
    chunks=st.lists(st.integers(min_value=0, max_value=70), max_size=5),
)
def test_frontier_extend_matches_append_one_by_one(first: int, chunks: list[int]) -> None:
    """Extending a frontier by any chunks of leaves gives the root and size that appending
    the same leaves one by one gives, whatever size the frontier starts at."""
    leaves = [hashlib.sha256(n.to_bytes(4, "big")).digest() for n in range(first + sum(chunks))]
    one_by_one, chunked = Frontier(), Frontier()
    for leaf in leaves:
        one_by_one.append(leaf)
    chunked.extend(leaves[:first])
    at = first
    for n in chunks:
        chunked.extend(leaves[at : at + n])
        at += n
    assert (chunked.size, chunked.root()) == (one_by_one.size, one_by_one.root())


def test_frontier_extend_refuses_a_short_hash_and_changes_nothing() -> None:
    frontier = Frontier()
    frontier.extend([b"\x01" * 32])
    with pytest.raises(ValidationError, match="leaf hash 1"):
        frontier.extend([b"\x02" * 32, b"\x03" * 31])
    assert frontier.size == 1
